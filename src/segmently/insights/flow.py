"""Segments over time, read from the stored transitions (`segments/snapshots.py`); nothing
is re-evaluated. Three analyses (docs/insights/flow.md):

- `segment_flow`: how users moved between a set of segments (the engagement tiers by
  default) from one period boundary to the next: a transition matrix per step, totals,
  and the same counts shaped for a plotly Sankey and a heatmap.
- `segment_time`: how long memberships lasted (spells from entry to exit), with open
  spells censored at now (their count, and a Kaplan-Meier survival curve).
- `segment_next`: of the users who entered a segment, the share who entered each other
  segment within N days (trial -> paid, at_risk -> good).

A user is a member of a segment at an instant b when their latest transition at or
before b is an entry (an exit wins a tie): `snapshots.members_at`'s rule, the latest
snapshot at or before b with the changes incremental refreshes wrote since. The flow
reads it from the transitions directly (per boundary, the latest entry against the
latest exit); the other two read *spells*: per (segment, user), the transitions in time
order with repeats of the same kind dropped (a backfill may write an entry the user
already had), a spell lasting from an entry to the next exit (`until`, NULL while open),
so that a member at b is one with a spell `start <= b < until`.

A spell that starts at its segment's first snapshot is *left-censored*: the user was
already a member when the segment was first refreshed, so its start is not an entry.
`segment_time` and `segment_next` leave those out of durations and entries.

Everything is aggregated in the engine (one query for the flow, whatever the number of
boundaries or users); Python only arranges the small results.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from segmently.insights.changes import PERIODS
from segmently.insights.registry import Context, Csv, InsightError, Params, analysis
from segmently.insights.usage import period_starts
from segmently.segments import snapshots as snap
from segmently.store import Store

TIERS = ("power_users", "regular", "occasional", "dormant")  # segments/library.py
NONE = "(none)"  # in none of the segments at a boundary
NEW = "(new)"  # not yet in any of them: the first entry into one comes later
FAR = datetime(9999, 12, 31)  # the `until` of an open spell, in comparisons
DAY = 86400.0
MAX_SURVIVAL_DAYS = 400


# -- spells: the one reading of transitions ----------------------------------------------
def spells(store: Store, project_id: str, segments: list[str],
           users: ir.Column | None = None) -> ir.Table:
    """(segment, user_id, start, until, censored): one row per membership spell of the
    given segments (of `users` only, when given); `until` NULL while open; `censored`
    when it starts at the segment's first snapshot (already a member then). Two window
    passes over the transitions."""
    t = snap.transitions(store, project_id).filter(lambda x: x.segment.isin(segments))
    if users is not None:
        t = t.filter(t.user_id.isin(users))
    order = [t.as_of, t.kind]  # same instant: an entry before an exit (deterministic)
    t = t.mutate(_prev=t.kind.lag().over(group_by=[t.segment, t.user_id], order_by=order))
    changes = t.filter(ibis.ifelse(t._prev.isnull(), t.kind == "entered", t.kind != t._prev))
    changes = changes.mutate(until=changes.as_of.lead().over(
        group_by=[changes.segment, changes.user_id], order_by=[changes.as_of, changes.kind]))
    entries = changes.filter(changes.kind == "entered")
    s = snap.snapshots(store, project_id).filter(lambda x: x.segment.isin(segments))
    first = s.group_by(_seg=s.segment).aggregate(_first=s.as_of.min())
    joined = entries.left_join(first, entries.segment == first._seg)
    return joined.select(
        segment=joined.segment, user_id=joined.user_id, start=joined.as_of,
        until=joined.until,
        censored=joined._first.notnull() & (joined.as_of == joined._first))


def _check_segments(ctx: Context, names: list[str], field: str, insight: str) -> None:
    live = set(ctx.segments())
    for name in names:
        if name not in live:
            raise InsightError(f"{insight}: {field}: no segment named {name!r}")
    if len(set(names)) != len(names):
        raise InsightError(f"{insight}: {field}: a segment is named twice")


def _ts(value: datetime) -> ir.TimestampScalar:
    return ibis.literal(value, type="timestamp")


def _label(at: datetime, period: str, is_now: bool) -> str:
    if is_now:
        return "now"
    return at.strftime("%Y-%m") if period == "month" else at.strftime("%Y-%m-%d")


def _first_snapshots(store: Store, project_id: str, names: list[str]
                     ) -> dict[str, str | None]:
    s = snap.snapshots(store, project_id).filter(lambda x: x.segment.isin(names))
    rows = s.group_by("segment").aggregate(first=s.as_of.min()).to_pyarrow().to_pylist()
    found = {r["segment"]: r["first"] for r in rows}
    return {n: found[n].isoformat() if found.get(n) else None for n in names}


# -- segment_flow -------------------------------------------------------------------------
class FlowParams(Params):
    segments: Csv = []  # in priority order; default: the engagement tiers of the library
    period: Literal["day", "week", "month"] = "week"
    periods: int = 6  # steps: the boundaries are the starts of the last periods + 1
    now: bool = False  # also the present, as the last boundary
    new: bool = True  # "(new)" for users not yet in any of the segments


@analysis("segment_flow", "Segment flow: how users moved between segments from one "
          "period to the next", FlowParams)
def segment_flow(ctx: Context, p: FlowParams) -> dict[str, Any]:
    """At each boundary every user counted is in one *state*: the first of `segments` (in
    the order given) they are a member of, else "(none)", or "(new)" before their first
    entry into any of them (with `new`; else "(none)"). Users counted: those in one of
    the segments at one boundary at least, so every step's matrix sums to the same
    number (`users`) and each boundary's sizes are a row or column sum.

    {period, segments, states, users, boundaries: [{at, label, sizes: {state: n}}],
     steps: [{from, to, matrix}], totals, heatmap: {x, y, z},
     sankey: {nodes: [label], node_state, node_boundary, links: {source, target, value}},
     first_snapshots: {segment: at}}; matrix[i][j]: users in states[i] at the step's
    start and states[j] at its end."""
    names = p.segments or [n for n in TIERS if n in set(ctx.segments())]
    if not names:
        raise InsightError("segment_flow: segments: required (this project has none of "
                           f"the engagement tiers {', '.join(TIERS)})")
    _check_segments(ctx, names, "segments", "segment_flow")
    if not 1 <= p.periods <= 90:
        raise InsightError("segment_flow: periods: between 1 and 90")
    bounds = period_starts(ctx.now, p.period, p.periods + 1)
    with_now = p.now and ctx.now > bounds[-1]
    if with_now:
        bounds.append(ctx.now)
    states = [*names, NONE] + ([NEW] if p.new else [])
    none_i, new_i = len(names), len(names) + (1 if p.new else 0)
    snap.ensure_tables(ctx.store)
    rows = _flow_counts(ctx.store, ctx.project_id, names, bounds, none_i, new_i)
    steps = [[[0] * len(states) for _ in states] for _ in bounds[1:]]
    for r in rows:
        steps[int(r["k"])][int(r["state"])][int(r["next"])] += int(r["n"])
    totals = [[sum(m[i][j] for m in steps) for j in range(len(states))]
              for i in range(len(states))]
    sizes = [[sum(row) for row in m] for m in steps] + \
        [[sum(steps[-1][i][j] for i in range(len(states))) for j in range(len(states))]]
    labels = [_label(b, p.period, with_now and k == len(bounds) - 1)
              for k, b in enumerate(bounds)]
    return {
        "period": p.period, "segments": names, "states": states,
        "users": sum(sizes[0]),
        "boundaries": [{"at": b.isoformat(), "label": labels[k],
                        "sizes": dict(zip(states, sizes[k], strict=True))}
                       for k, b in enumerate(bounds)],
        "steps": [{"from": bounds[k].isoformat(), "to": bounds[k + 1].isoformat(),
                   "matrix": m} for k, m in enumerate(steps)],
        "totals": totals,
        "heatmap": {"x": states, "y": states, "z": totals},
        "sankey": _sankey(states, labels, sizes, steps),
        "first_snapshots": _first_snapshots(ctx.store, ctx.project_id, names),
    }


def _flow_counts(store: Store, project_id: str, names: list[str], bounds: list[datetime],
                 none_i: int, new_i: int) -> list[dict[str, Any]]:
    """(k, state, next, n): users in `state` at boundary k and `next` at k + 1; states are
    indexes (the segment's position in `names`, none_i, new_i). One query, of hash
    aggregations only (no window, no sort): a member at b is a (segment, user) whose
    latest entry at or before b is later than its latest exit at or before b (an exit
    wins a tie; repeated entries or exits change nothing)."""
    t = snap.transitions(store, project_id).filter(lambda x: x.segment.isin(names))
    t = t.filter(t.as_of <= _ts(bounds[-1]))
    entered, exited = t.kind == "entered", t.kind == "exited"
    last = {}
    for k, at in enumerate(bounds):
        upto = t.as_of <= _ts(at)
        last[f"e{k}"] = t.as_of.max(where=entered & upto)
        last[f"x{k}"] = t.as_of.max(where=exited & upto)
    pairs = t.group_by(["segment", "user_id"]).aggregate(
        first=t.as_of.min(where=entered), **last)
    position = ibis.cases(*[(pairs.segment == n, i) for i, n in enumerate(names)])
    outside = len(names)  # above every position: "in none" at that boundary
    tier = {}
    for k in range(len(bounds)):
        e, x = pairs[f"e{k}"], pairs[f"x{k}"]
        member = e.notnull() & (x.isnull() | (e > x))
        tier[f"t{k}"] = ibis.ifelse(member, position, outside).min()
    users = pairs.group_by("user_id").aggregate(first=pairs.first.min(), **tier)
    users = users.filter(ibis.or_(*[users[f"t{k}"] < outside for k in range(len(bounds))]))
    state = {}
    for k, at in enumerate(bounds):
        state[f"s{k}"] = ibis.ifelse(
            users[f"t{k}"] < outside, users[f"t{k}"],
            ibis.ifelse(users.first > _ts(at), new_i, none_i)).cast("int64")
    users = users.select(**state)
    steps = ibis.memtable({"k": list(range(len(bounds) - 1))}, schema={"k": "int64"})
    moves = users.cross_join(steps)
    moves = moves.select(
        "k",
        state=ibis.cases(*[(moves.k == k, moves[f"s{k}"]) for k in range(len(bounds) - 1)]),
        next=ibis.cases(*[(moves.k == k, moves[f"s{k + 1}"])
                          for k in range(len(bounds) - 1)]))
    counted = moves.group_by(["k", "state", "next"]).aggregate(n=moves.count())
    return counted.to_pyarrow().to_pylist()


def _sankey(states: list[str], labels: list[str], sizes: list[list[int]],
            steps: list[list[list[int]]]) -> dict[str, Any]:
    """Nodes "state @ label" with users (only those), links with users; plotly's shape."""
    index: dict[tuple[int, int], int] = {}
    nodes: list[str] = []
    node_state: list[str] = []
    node_boundary: list[int] = []
    for k, label in enumerate(labels):
        for i, state in enumerate(states):
            if sizes[k][i]:
                index[(k, i)] = len(nodes)
                nodes.append(f"{state} @ {label}")
                node_state.append(state)
                node_boundary.append(k)
    source: list[int] = []
    target: list[int] = []
    value: list[int] = []
    for k, m in enumerate(steps):
        for i, row in enumerate(m):
            for j, n in enumerate(row):
                if n:
                    source.append(index[(k, i)])
                    target.append(index[(k + 1, j)])
                    value.append(n)
    return {"nodes": nodes, "node_state": node_state, "node_boundary": node_boundary,
            "links": {"source": source, "target": target, "value": value}}


# -- segment_time -------------------------------------------------------------------------
class TimeParams(Params):
    segments: Csv = []  # default: every live segment
    days: int = 0  # only spells that started in the last `days` days; 0: all of them
    include_censored: bool = False  # also spells that started at the first snapshot


QUANTILES = {"p10": 0.1, "p25": 0.25, "median": 0.5, "p75": 0.75, "p90": 0.9}


@analysis("segment_time", "How long users stay in each segment: completed spells' "
          "median and quartiles, open ones, survival", TimeParams, page=False)
def segment_time(ctx: Context, p: TimeParams) -> dict[str, Any]:
    """Per segment, in days: completed spells (entered -> exited) {count, mean, min, p10,
    p25, median, p75, p90, max}; open ones (still members now) {count, median_age};
    `censored` (left out: started at the segment's first snapshot, unless
    include_censored); `survival` [{days, share}], the Kaplan-Meier share of spells
    lasting at least that many days (open spells censored at now, whole days), and
    `km_median`, the Kaplan-Meier median in whole days: the least d with at most half
    of the spells lasting more than d days (None while more than half still last)."""
    names = p.segments or ctx.segments()
    _check_segments(ctx, names, "segments", "segment_time")
    if p.days < 0:
        raise InsightError("segment_time: days: 0 (all) or more")
    snap.ensure_tables(ctx.store)
    if not names:
        return {"now": ctx.now.isoformat(), "days": p.days, "segments": []}
    sp = spells(ctx.store, ctx.project_id, names)
    now = _ts(ctx.now)
    sp = sp.filter(sp.start <= now)
    if p.days:
        sp = sp.filter(sp.start.epoch_seconds() >= _epoch(ctx.now) - p.days * DAY)
    ended = sp.until.notnull() & (sp.until <= now)
    length = (ibis.ifelse(ended, sp.until, now).epoch_seconds()
              - sp.start.epoch_seconds()).cast("float64") / DAY
    sp = sp.mutate(_days=length, _ended=ended)
    kept = sp._ended & (ibis.literal(p.include_censored) | ~sp.censored)
    live = ~sp._ended & (ibis.literal(p.include_censored) | ~sp.censored)
    # two queries: whole-day counts (Kaplan-Meier, and every count), exact quantiles
    whole = sp._days.floor().cast("int64")
    hist = sp.group_by(["segment", whole.name("day"), "_ended", "censored"]) \
        .aggregate(n=sp.count()).to_pyarrow().to_pylist()
    stats = sp.group_by("segment").aggregate(
        mean=sp._days.mean(where=kept), min=sp._days.min(where=kept),
        max=sp._days.max(where=kept), median_age=sp._days.quantile(0.5, where=live),
        **{k: sp._days.quantile(q, where=kept) for k, q in QUANTILES.items()}
    ).to_pyarrow().to_pylist()
    by_segment = {r["segment"]: r for r in stats}
    out = []
    for name in names:
        rows = [r for r in hist if r["segment"] == name]
        cens = sum(int(r["n"]) for r in rows if r["censored"])
        rows = [r for r in rows if p.include_censored or not r["censored"]]
        done = sum(int(r["n"]) for r in rows if r["_ended"])
        still = sum(int(r["n"]) for r in rows if not r["_ended"])
        d = by_segment.get(name, {})
        survival = _kaplan_meier(rows)
        out.append({
            "segment": name,
            "completed": {"count": done, **{
                k: float(d[k]) for k in ("mean", "min", *QUANTILES, "max")}}
            if done else {"count": 0},
            "open": {"count": still,
                     "median_age": float(d["median_age"]) if still else None},
            "censored": cens,
            "survival": survival,
            "km_median": next((s["days"] - 1 for s in survival if s["share"] <= 0.5), None),
        })
    return {"now": ctx.now.isoformat(), "days": p.days, "segments": out}


def _kaplan_meier(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """rows: (day, _ended, n): spells whose length in whole days is `day`, ended or open.
    An ended spell of day d is an exit during day d; an open one of day d is known to
    have lasted d days (censored after them). S(d + 1) = S(d) * (1 - exits_d / at_risk_d),
    at_risk_d the spells of length >= d days."""
    if not rows:
        return []
    exits: dict[int, int] = {}
    total: dict[int, int] = {}
    for r in rows:
        day = int(r["day"])
        total[day] = total.get(day, 0) + int(r["n"])
        if r["_ended"]:
            exits[day] = exits.get(day, 0) + int(r["n"])
    last = min(max(total), MAX_SURVIVAL_DAYS)
    at_risk = sum(total.values())
    share, out = 1.0, [{"days": 0, "share": 1.0}]
    for day in range(last + 1):
        if at_risk <= 0:
            break
        share *= 1 - exits.get(day, 0) / at_risk
        at_risk -= total.get(day, 0)
        if exits.get(day) or at_risk <= 0 or day == last:
            out.append({"days": day + 1, "share": share})
    return out


# -- segment_next -------------------------------------------------------------------------
class NextParams(Params):
    segment: str  # A: whose entrants are followed
    targets: Csv = []  # the segments B; default: every other live segment
    within_days: int = 14
    period: Literal["day", "week", "month"] = "week"
    periods: int = 12  # entries in the last `periods` periods, the current one included
    by_period: bool = False  # also per entry cohort (the period of the entry)


@analysis("segment_next", "What users did after entering a segment: the share who "
          "entered each other segment within N days", NextParams, page=False)
def segment_next(ctx: Context, p: NextParams) -> dict[str, Any]:
    """Entrants: users whose first entry into `segment` in the range (the last `periods`
    periods up to now) is a real entry (not its first snapshot). Per target B:
    `reached`, entrants who entered B after their entry into A and within `within_days`
    days of it (t_A < t_B <= t_A + N days); `share` = reached / entrants; `median_days`
    to the first such entry; `already`, entrants who were in B at their entry into A.
    `open`: entrants whose N days have not all passed yet (their share may still grow).
    With by_period, `cohorts` [{start, entrants, open, targets: [{segment, reached,
    share}]}], one per period of entry."""
    _check_segments(ctx, [p.segment], "segment", "segment_next")
    targets = p.targets or [n for n in ctx.segments() if n != p.segment]
    _check_segments(ctx, targets, "targets", "segment_next")
    if p.segment in targets:
        raise InsightError("segment_next: targets: the segment itself is not a target")
    if not 1 <= p.within_days <= 3660:
        raise InsightError("segment_next: within_days: between 1 and 3660")
    if not 1 <= p.periods <= 366:
        raise InsightError("segment_next: periods: between 1 and 366")
    snap.ensure_tables(ctx.store)
    start = period_starts(ctx.now, p.period, p.periods)[0]
    now = _ts(ctx.now)
    a = spells(ctx.store, ctx.project_id, [p.segment])
    a = a.filter(~a.censored & (a.start >= _ts(start)) & (a.start <= now))
    entrants = a.group_by(_u=a.user_id).aggregate(t0=a.start.min())
    entrants = entrants.mutate(cohort=entrants.t0.truncate(PERIODS[p.period]),
                               open=(entrants.t0.epoch_seconds() + p.within_days * DAY)
                               > _epoch(ctx.now))
    sizes = entrants.group_by("cohort").aggregate(
        entrants=entrants.count(), open=entrants.open.sum()).to_pyarrow().to_pylist()
    totals: list[dict[str, Any]] = []
    per_cohort: list[dict[str, Any]] = []
    if targets:
        b = spells(ctx.store, ctx.project_id, targets, users=entrants._u)
        b = b.filter(b.start <= now)
        j = entrants.join(b, entrants._u == b.user_id)
        gap = j.start.epoch_seconds() - j.t0.epoch_seconds()
        hit = ~j.censored & (gap > 0) & (gap <= p.within_days * DAY)
        inside = (j.start <= j.t0) & (j.until.fill_null(_ts(FAR)) > j.t0)
        each = j.group_by(["segment", "_u", "cohort"]).aggregate(
            gap=gap.min(where=hit), already=inside.any())
        reached = each.gap.notnull()
        days = each.gap.cast("float64") / DAY
        totals = each.group_by("segment").aggregate(
            reached=each.count(where=reached), already=each.already.sum(),
            median=days.quantile(0.5, where=reached)).to_pyarrow().to_pylist()
        if p.by_period:
            per_cohort = each.group_by(["segment", "cohort"]).aggregate(
                reached=each.count(where=reached)).to_pyarrow().to_pylist()
    n_all = sum(int(r["entrants"]) for r in sizes)
    found_t = {r["segment"]: r for r in totals}
    reached = {t: int(found_t[t]["reached"]) if t in found_t else 0 for t in targets}
    already = {t: int(found_t[t]["already"] or 0) if t in found_t else 0 for t in targets}
    medians: dict[str, Any] = {t: found_t[t]["median"] if t in found_t else None
                               for t in targets}
    out: dict[str, Any] = {
        "segment": p.segment, "within_days": p.within_days, "period": p.period,
        "from": start.isoformat(), "to": ctx.now.isoformat(),
        "entrants": n_all, "open": sum(int(r["open"] or 0) for r in sizes),
        "targets": [{"segment": t, "reached": reached[t],
                     "share": reached[t] / n_all if n_all else None,
                     "already": already[t],
                     "median_days": None if medians[t] is None else float(medians[t])}
                    for t in targets],
    }
    if p.by_period:
        per = {(r["segment"], r["cohort"]): int(r["reached"]) for r in per_cohort}
        found = {r["cohort"]: r for r in sizes}
        cohorts = []
        for s in period_starts(ctx.now, p.period, p.periods):
            row = found.get(s)
            n = int(row["entrants"]) if row else 0
            cohorts.append({"start": s.isoformat(), "entrants": n,
                            "open": int(row["open"] or 0) if row else 0,
                            "targets": [{"segment": t, "reached": per.get((t, s), 0),
                                         "share": per.get((t, s), 0) / n if n else None}
                                        for t in targets]})
        out["cohorts"] = cohorts
    return out


def _epoch(naive_utc: datetime) -> float:
    """Seconds since the epoch of a naive UTC instant (`.timestamp()` reads it as local)."""
    return naive_utc.replace(tzinfo=UTC).timestamp()
