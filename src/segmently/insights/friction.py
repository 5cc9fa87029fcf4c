"""Friction: a funnel over any ordered event steps (not only the vocabulary's milestones,
which `journey.py` funnels as `/api/insights/funnel`), with conversion, drop-off, the time
each step took, what the users stuck at a step did instead, and each step's stuck users as
a ready segment rule.

Semantics (docs/insights/friction_lift.md):

- A user enters the funnel at their first event of step 1 inside the range (the last
  `range` days before now): that instant is their anchor. Step k+1 is reached by an event
  of step k+1 strictly later (a later timestamp) than the user's step-k time and at most
  `window` after the anchor (the conversion window, inclusive); the step-(k+1) time is the
  earliest such event. Taking the earliest match at every step is what reaches the most
  steps when the only limit is the window from the first step, so "reached step k" is
  "did steps 1..k in order within the window". Other events in between do not matter.
- Step matching is the `sequence` condition's (`segments/kinds/flows.py`): the events of
  step k+1 that follow a valid step-k event, by a running max over one time-ordered stream
  (`_next_step`, no as-of joins, so it runs on Spark too), then the earliest per user.
- Times from the previous step are seconds between the two step times; median and p90 are
  the engine's continuous percentiles (linear interpolation, numpy's default).
- "Instead": for the users stuck at step k (reached k, not k+1), the track/page/screen
  events they did after their step-k time and within their window, by users (each user
  once per event name) and events; `share` is users over the stuck users.
- `stuck_rule`: the segment of the users stuck at step k, in the rule language: steps
  1..k in order in the last `range` days (a `performed` for k = 1, else a `sequence`) and
  `not` steps 1..k+1 in order in those days (within a segment: `in_segment` too). It is
  the actionable reading, without the conversion window: "did 1..k and has not gone on to
  k+1", re-evaluated at every refresh. It equals the funnel's stuck users when every user
  who went on did so within the window; a user who went on only after the window is stuck
  in the funnel but not in the segment, one who reached k only after the window is in the
  segment of step k but stuck earlier in the funnel.

Everything is aggregated in the engine (one query for the steps, one for the instead
events); raw events are read, since order within a day is the point, but only those of
the range.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import Field

from segmently.insights.registry import Context, Csv, InsightError, Params, analysis
from segmently.segments.kinds.flows import _next_step
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.views import resolved_events

EVERYONE = ""  # the group key of the funnel over every user
MAX_STEPS = 10


class FrictionParams(Params):
    steps: Csv = Field(min_length=2, max_length=MAX_STEPS)  # event names, in order
    window: int = Field(default=7, ge=1, le=8784)  # conversion window from the first step
    unit: Literal["hours", "days"] = "days"
    range: int = Field(default=30, ge=1, le=3650)  # first step in the last N days
    segments: Csv = []  # one funnel per segment, side by side; none: every user
    instead: int = Field(default=5, ge=1, le=50)  # top events per stuck step


def window_seconds(p: FrictionParams) -> int:
    return p.window * (3600 if p.unit == "hours" else 86_400)


@analysis("friction", "Funnel over ordered event steps: conversion, drop-off, time to "
          "convert, what stuck users did instead, stuck users as a segment", FrictionParams)
def friction(ctx: Context, p: FrictionParams) -> dict[str, Any]:
    """{steps, window, range_days, start, end, funnels: [{segment, users, open_windows,
    steps: [{step, event, users, conversion_from_previous, conversion_from_first, dropped,
    median_seconds, p90_seconds, stuck, instead: [{event, users, events, share}],
    stuck_name, stuck_description, stuck_rule}]}]}"""
    _check(ctx, p)
    people = funnel_people(ctx, p)
    groups = _groups(ctx, p.segments, people)
    counts = _step_counts(people, groups, len(p.steps))
    instead = _instead(ctx, p, people, groups)
    names = p.segments or [EVERYONE]
    start = ctx.now - timedelta(days=p.range)
    return {"steps": list(p.steps),
            "window": {"value": p.window, "unit": p.unit, "seconds": window_seconds(p)},
            "range_days": p.range, "start": start.isoformat(), "end": ctx.now.isoformat(),
            "funnels": [_funnel(p, name, counts, instead) for name in names]}


def _check(ctx: Context, p: FrictionParams) -> None:
    for i, step in enumerate(p.steps):
        if len(step) > 1024:
            raise InsightError(f"friction: steps.{i}: an event name has at most 1024 "
                               "characters")
    live = set(ctx.segments())
    for name in p.segments:
        if name not in live:
            raise InsightError(f"friction: segments: no segment named {name!r}")
    if len(set(p.segments)) < len(p.segments):
        raise InsightError("friction: segments: each segment once")


def funnel_people(ctx: Context, p: FrictionParams) -> ir.Table:
    """One row per user who did step 1 in the range: person_id, _a (the anchor), t1..tn
    (each step's time, NULL when not reached)."""
    start = ctx.now - timedelta(days=p.range)
    e = resolved_events(ctx.store, ctx.project_id, ctx.now)
    e = e.filter(e.timestamp >= ibis.literal(start, type="timestamp"))
    limit = ibis.interval(seconds=window_seconds(p))

    def of(name: str) -> ir.Table:
        m = e.filter(e.event == name)
        return m.select("person_id", ts=m.timestamp)

    first = of(p.steps[0])
    valid = first.group_by("person_id").aggregate(ts=first.ts.min())
    anchors = valid.select(_p=valid.person_id, _a=valid.ts)
    parts = [valid.mutate(_k=ibis.literal(1))]
    for k, name in enumerate(p.steps[1:], 2):
        cur = of(name)
        cur = cur.inner_join(anchors, cur.person_id == anchors._p)
        cur = cur.filter(cur.ts <= cur._a + limit).select("person_id", "ts")
        nxt = _next_step(valid, cur, None)  # strictly after the user's step-(k-1) time
        valid = nxt.group_by("person_id").aggregate(ts=nxt.ts.min())  # the earliest
        parts.append(valid.mutate(_k=ibis.literal(k)))
    every = ibis.union(*parts)
    wide = every.group_by("person_id").aggregate(
        **{f"t{k}": every.ts.min(where=every._k == k) for k in range(1, len(p.steps) + 1)})
    return wide.mutate(_a=wide.t1)


def _groups(ctx: Context, segments: list[str], people: ir.Table) -> ir.Table:
    """(_g, person_id): every user under EVERYONE, or the members of each segment."""
    if not segments:
        return people.select(_g=ibis.literal(EVERYONE), _u=people.person_id)
    m = ctx.members_of(list(segments))
    return m.select(_g=m.segment, _u=m.user_id)


def _secs(ts: ir.TimestampValue) -> ir.FloatingValue:
    return ts.epoch_seconds().cast("float64")  # PostgreSQL's keeps the microseconds


def _step_counts(people: ir.Table, groups: ir.Table, n: int) -> dict[tuple[str, int], dict]:
    """(group, step) -> {users, median, p90}; and (group, 0) -> {open}: users whose window
    is still open (they may yet go on)."""
    j = people.inner_join(groups, people.person_id == groups._u)
    parts = []
    for k in range(1, n + 1):
        t = j[f"t{k}"]
        dur = (_secs(t) - _secs(j[f"t{k - 1}"])) if k > 1 else ibis.null("float64")
        part = j.filter(t.notnull()).select(_g=j._g, _k=ibis.literal(k), _d=dur)
        parts.append(part)
    long = ibis.union(*parts)
    rows = long.group_by(["_g", "_k"]).aggregate(
        users=long.count(), median=long._d.median(), p90=long._d.quantile(0.9)
    ).to_pyarrow().to_pylist()
    return {(r["_g"], int(r["_k"])): r for r in rows}


def _instead(ctx: Context, p: FrictionParams, people: ir.Table,
             groups: ir.Table) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """(group, stuck step) -> the top events after the step, within the window."""
    n = len(p.steps)
    furthest = ibis.cases(*[(people[f"t{k}"].notnull(), k) for k in range(n, 0, -1)],
                          else_=0)
    at = ibis.cases(*[(people[f"t{k}"].notnull(), people[f"t{k}"])
                      for k in range(n, 0, -1)], else_=ibis.null("timestamp"))
    stuck = people.select(_p=people.person_id, _s=furthest, _at=at, _a=people._a)
    stuck = stuck.filter(stuck._s < n)
    start = ctx.now - timedelta(days=p.range)
    e = resolved_events(ctx.store, ctx.project_id, ctx.now)
    e = e.filter(e.timestamp >= ibis.literal(start, type="timestamp"),
                 e.type.isin(ACTIVITY_TYPES))
    j = e.inner_join(stuck, e.person_id == stuck._p)
    j = j.filter(j.timestamp > j._at,
                 j.timestamp <= j._a + ibis.interval(seconds=window_seconds(p)))
    per_user = j.group_by([j.person_id, j._s, j.event]).aggregate(_n=j.count())
    g = per_user.inner_join(groups, per_user.person_id == groups._u)
    agg = g.group_by([g._g, g._s, g.event]).aggregate(users=g.count(), events=g._n.sum())
    rank = ibis.row_number().over(group_by=[agg._g, agg._s],
                                  order_by=[agg.users.desc(), agg.events.desc(), agg.event])
    top = agg.mutate(_r=rank)
    top = top.filter(top._r < p.instead).order_by(["_g", "_s", "_r"])
    out: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in top.to_pyarrow().to_pylist():
        out.setdefault((r["_g"], int(r["_s"])), []).append(
            {"event": r["event"], "users": int(r["users"]), "events": int(r["events"])})
    return out


def _funnel(p: FrictionParams, group: str, counts: dict[tuple[str, int], dict],
            instead: dict[tuple[str, int], list[dict[str, Any]]]) -> dict[str, Any]:
    n = len(p.steps)
    users = [int(counts.get((group, k), {}).get("users") or 0) for k in range(1, n + 1)]
    segment = group or None
    steps = []
    for k in range(1, n + 1):
        here, row = users[k - 1], counts.get((group, k), {})
        prev = users[k - 2] if k > 1 else here
        stuck = here - users[k] if k < n else None
        step: dict[str, Any] = {
            "step": k, "event": p.steps[k - 1], "users": here,
            "conversion_from_previous": (here / prev if prev else 0.0) if k > 1 else 1.0,
            "conversion_from_first": here / users[0] if users[0] else 0.0,
            "dropped": prev - here,
            "median_seconds": _num(row.get("median")) if k > 1 else None,
            "p90_seconds": _num(row.get("p90")) if k > 1 else None,
            "stuck": stuck, "instead": [], "stuck_name": None, "stuck_description": None,
            "stuck_rule": None}
        if stuck is not None:
            step["instead"] = [{**i, "share": i["users"] / stuck if stuck else 0.0}
                               for i in instead.get((group, k), [])]
            step["stuck_name"] = stuck_name(p.steps, k, segment)
            step["stuck_description"] = stuck_description(p.steps, k, p.range, segment)
            step["stuck_rule"] = stuck_rule(p.steps, k, p.range, segment)
        steps.append(step)
    return {"segment": segment, "users": users[0], "steps": steps}


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


# -- the stuck users as a segment ----------------------------------------------------------
def stuck_rule(steps: list[str], k: int, range_days: int,
               segment: str | None = None) -> dict[str, Any]:
    """Did steps 1..k in order in the last `range_days` days and not steps 1..k+1."""
    window = {"last": range_days}
    reached: dict[str, Any] = (
        {"kind": "performed", "event": steps[0], "window": window} if k == 1 else
        {"kind": "sequence", "steps": [{"event": s} for s in steps[:k]], "window": window})
    further = {"kind": "sequence", "steps": [{"event": s} for s in steps[:k + 1]],
               "window": window}
    inside = [{"kind": "in_segment", "segment": segment}] if segment else []
    return {"all": [*inside, reached, {"not": further}]}


def slug(text: str, limit: int = 128) -> str:
    """A segment (or campaign) name from free text: other characters become _."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", text)
    return name[:limit] or "_"


def stuck_name(steps: list[str], k: int, segment: str | None = None) -> str:
    base = f"stuck_at_{steps[k - 1]}_before_{steps[k]}"
    return slug(f"{segment}_{base}" if segment else base)


def stuck_description(steps: list[str], k: int, range_days: int,
                      segment: str | None = None) -> str:
    done = " then ".join(steps[:k])
    who = f"Members of {segment} who" if segment else "Users who"
    return (f"{who} did {done} in the last {range_days} days and have not gone on to "
            f"{steps[k]} (a friction funnel's step {k}).")
