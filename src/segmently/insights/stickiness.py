"""How sticky the product and its features are, and who the active users are, by segment.

- `stickiness`: per day of the last `days` days, the distinct users active that day (DAU),
  in the 7 days ending that day (WAU) and in the 30 (MAU), with DAU/MAU and WAU/MAU; and
  the days-active-per-week distribution: for each user active in a week (Monday to
  Sunday), on how many distinct days (1..7), over the last `weeks` weeks.
- `feature_stickiness`: per feature of the vocabulary, over the last `days` days: its
  users, adoption (its users / the active users), stickiness (the feature's DAU/MAU: its
  mean daily users over the window / its users in the window) and its users per week;
  features ranked by everyone's adoption (the most popular first).
- `lifecycle`: per period, the active users who are new (first active ever in this
  period), returning (active the previous period too), resurrected (not the previous
  period, but before it), and the dormant (active the previous period, not this one:
  a negative count, as PostHog draws it).

Days are UTC days; the series end with yesterday, the last complete day (`partial`: with
today), and periods with the last complete one (`partial`: with the current one). A
segment's numbers are its members' at its latest refresh (Context.members_of), beside
everyone's. All of it is counted from the daily rollups (`insights/usage.py`); a
feature whose events have property filters reads its raw events, within the window only.

WAU and MAU per day are one pass over the active days, not a join of every day with its
window: the engine counts the users active each day by the days since their previous
active day (capped at 30), and a user active on day d after a gap of g days joins the
w-day windows of the days [d + max(0, w - g), d + w - 1], those their previous day did
not cover, so a running sum of +1 and -1 marks counts distinct users exactly.
"""

from __future__ import annotations

from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from segmently.insights import usage
from segmently.insights.registry import Context, Csv, InsightError, Params, analysis
from segmently.profile.config import Feature
from segmently.profile.matchers import any_of
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.rollups import day_number, day_of, day_start
from segmently.store.views import resolved_events

WINDOWS = {"dau": 1, "wau": 7, "mau": 30}
MAX_DAYS = 366
MAX_WEEKS = 104
ACTIVE = ""  # the feature name the active users of feature_stickiness are counted under


def _last_day(ctx: Context, partial: bool) -> int:
    """The last day of a series: yesterday, or today with `partial`."""
    today = day_number(ctx.now)
    return today if partial else today - 1


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


# -- stickiness -----------------------------------------------------------------------------
class StickinessParams(Params):
    days: int = 30  # the DAU/WAU/MAU series: this many days, ending yesterday
    weeks: int = 8  # the days-per-week distribution: this many weeks, ending last week
    segments: Csv = []
    partial: bool = False  # end with today and the current week (incomplete)


def _counts(active: ir.Table, groups: ir.Table | None, weeks: list[int]) -> ir.Table:
    """One query for both parts of the answer, rows (kind, group, a, b, users):
    - kind "gap": a = day, b = the days since the user's previous active day (capped at
      the widest window; none before: the cap), users active that day with that gap;
    - kind "week": a = week index (of `weeks`), b = days active in it, users."""
    cap = max(WINDOWS.values())
    w = ibis.window(group_by=active.person_id, order_by=active.day)
    a = active.mutate(b=ibis.least(active.day - active.day.lag().over(w), cap).fill_null(cap))
    a = usage.grouped(a, groups)
    gaps = a.group_by(["group", "day", "b"]).aggregate(users=a.count())
    gaps = gaps.select(kind=ibis.literal("gap", type="string"), group=gaps.group,
                       a=gaps.day.cast("int64"), b=gaps.b.cast("int64"),
                       users=gaps.users.cast("int64"))
    in_weeks = active.filter(active.day >= weeks[0], active.day < weeks[-1] + 7)
    in_weeks = in_weeks.mutate(week=usage.index_of(in_weeks.day, "week", weeks))
    per = in_weeks.group_by(["person_id", "week"]).aggregate(days=in_weeks.count())
    per = usage.grouped(per, groups)
    hist = per.group_by(["group", "week", "days"]).aggregate(users=per.count())
    hist = hist.select(kind=ibis.literal("week", type="string"), group=hist.group,
                       a=hist.week.cast("int64"), b=hist.days.cast("int64"),
                       users=hist.users.cast("int64"))
    return gaps.union(hist)


def _series(gaps: dict[tuple[int, int], int], days: list[int], width: int) -> list[int]:
    """Distinct users active in the `width` days ending on each day. A user active on
    day d, `gap` days after their previous active day, is counted in the windows of the
    days [d + max(0, width - gap), d + width - 1]: the ones their previous day did not
    cover; a running sum of +1 at the first and -1 after the last counts each once."""
    first, last = days[0], days[-1]
    delta: dict[int, int] = {}
    for (day, gap), users in gaps.items():
        for pos, sign in ((day + max(0, width - gap), 1), (day + width, -1)):
            if pos <= last:
                delta[max(pos, first)] = delta.get(max(pos, first), 0) + sign * users
    running, out = 0, []
    for day in days:
        running += delta.get(day, 0)
        out.append(running)
    return out


@analysis("stickiness", "DAU, WAU, MAU, their ratios and days active per week, per segment",
          StickinessParams)
def stickiness(ctx: Context, p: StickinessParams) -> dict[str, Any]:
    """{days: [day...], weeks: [week start...], groups: [{name, dau, wau, mau, dau_mau,
    wau_mau (one per day), days_per_week: {histogram: [users with 1..7 days, summed over
    the weeks], share, weeks: [{start, histogram}]}}]}."""
    usage.check_range("stickiness", "days", p.days, high=MAX_DAYS)
    usage.check_range("stickiness", "weeks", p.weeks, high=MAX_WEEKS)
    usage.check_segments(ctx, "stickiness", p.segments)
    last = _last_day(ctx, p.partial)
    first = last - p.days + 1
    this_week = usage.week_start(day_number(ctx.now))
    weeks = usage.starts(this_week if p.partial else this_week - 7, "week", p.weeks)
    since = min(first - 2 * WINDOWS["mau"], weeks[0])
    active = usage.active_days(ctx, since=since, until=last + 1)
    found = _counts(active, usage.members(ctx, p.segments), weeks).to_pyarrow().to_pylist()
    gaps: dict[str, dict[tuple[int, int], int]] = {}
    hist: dict[tuple[str, int, int], int] = {}
    for r in found:
        if r["kind"] == "gap":
            gaps.setdefault(r["group"], {})[(int(r["a"]), int(r["b"]))] = int(r["users"])
        else:
            hist[(r["group"], int(r["a"]), int(r["b"]))] = int(r["users"])
    days = list(range(first, last + 1))
    out = []
    for name in usage.group_names(p.segments):
        series = {window: _series(gaps.get(name, {}), days, width)
                  for window, width in WINDOWS.items()}
        per_week = [[hist.get((name, w, n), 0) for n in range(1, 8)]
                    for w in range(len(weeks))]
        total = [sum(week[n] for week in per_week) for n in range(7)]
        out.append({
            "name": name, **series,
            "dau_mau": [_ratio(d, m) for d, m in zip(series["dau"], series["mau"],
                                                     strict=True)],
            "wau_mau": [_ratio(w, m) for w, m in zip(series["wau"], series["mau"],
                                                     strict=True)],
            "days_per_week": {
                "histogram": total,
                "share": [_ratio(n, sum(total)) or 0.0 for n in total],
                "weeks": [{"start": usage.iso(s), "histogram": h}
                          for s, h in zip(weeks, per_week, strict=True)]}})
    return {"days": [usage.iso(d) for d in days], "weeks": [usage.iso(w) for w in weeks],
            "groups": out}


# -- feature stickiness -------------------------------------------------------------------
class FeatureParams(Params):
    days: int = 30  # the window of adoption and stickiness, ending yesterday
    weeks: int = 8  # weekly users: this many weeks, ending last week
    features: Csv = []  # default: every feature of the vocabulary
    segments: Csv = []
    partial: bool = False  # end with today and the current week (incomplete)


def _feature_days(ctx: Context, features: list[Feature], since: int, until: int
                  ) -> ir.Table | None:
    """(feature, person_id, day), distinct: the days each person used each feature.
    Features named by events alone read the rollups (one join with the event -> feature
    pairs); features with property filters read their raw events in [since, until)."""
    plain = [f for f in features if all(not m.where for m in f.events)]
    filtered = [f for f in features if f not in plain]
    parts = []
    if plain:
        pairs = sorted({(m.event, f.name) for f in plain for m in f.events})
        names = ibis.memtable({"_event": [e for e, _ in pairs], "feature": [n for _, n in pairs]},
                              schema={"_event": "string", "feature": "string"})
        rows = usage.daily(ctx, since=since, until=until)
        rows = rows.filter(rows.event.isin([e for e, _ in pairs]))
        j = rows.inner_join(names, rows.event == names._event)
        parts.append(j.select(feature=j.feature, person_id=j.person_id, day=j.day))
    if filtered:
        e = resolved_events(ctx.store, ctx.project_id, ctx.now)
        e = e.filter(e.type.isin(ACTIVITY_TYPES), e.timestamp >= day_start(since),
                     e.timestamp < day_start(until))
        e = e.filter(any_of([m for f in filtered for m in f.events], e))
        for f in filtered:
            used = e.filter(any_of(f.events, e))
            parts.append(used.select(feature=ibis.literal(f.name, type="string"),
                                     person_id=used.person_id.cast("string"),
                                     day=day_of(used.timestamp).cast("int64")))
    if not parts:
        return None
    return ibis.union(*parts).distinct()


@analysis("feature_stickiness", "Per feature: adoption, stickiness (DAU/MAU) and weekly "
          "users, ranked, per segment", FeatureParams, page=False)
def feature_stickiness(ctx: Context, p: FeatureParams) -> dict[str, Any]:
    """{window: {start, end}, weeks: [start...], features: [name...] ranked by everyone's
    adoption, groups: [{name, active_users, features: [{feature, users, adoption,
    stickiness, weekly: [users per week]}]}]} (`end` exclusive)."""
    usage.check_range("feature_stickiness", "days", p.days, high=MAX_DAYS)
    usage.check_range("feature_stickiness", "weeks", p.weeks, high=MAX_WEEKS)
    usage.check_segments(ctx, "feature_stickiness", p.segments)
    known = {f.name: f for f in ctx.vocabulary.features}
    for name in p.features:
        if name not in known:
            raise InsightError(f"feature_stickiness: features: no feature named {name!r}"
                               " in the vocabulary")
    features = [known[n] for n in p.features] if p.features else list(known.values())
    last = _last_day(ctx, p.partial)
    first = last - p.days + 1
    this_week = usage.week_start(day_number(ctx.now))
    weeks = usage.starts(this_week if p.partial else this_week - 7, "week", p.weeks)
    since, until = min(first, weeks[0]), max(last + 1, weeks[-1] + 7)
    # the window's active users ride along as the feature "" (a feature's name is never
    # empty): one query answers everything
    active = usage.active_days(ctx, since=first, until=last + 1)
    used = active.select(feature=ibis.literal(ACTIVE, type="string"),
                         person_id=active.person_id, day=active.day)
    days = _feature_days(ctx, features, since, until) if features else None
    if days is not None:
        used = used.union(days.select("feature", "person_id", "day"))
    used = used.mutate(week=usage.index_of(used.day, "week", weeks))
    g = usage.grouped(used, usage.members(ctx, p.segments))
    inside = (g.day >= first) & (g.day <= last)
    totals = g.group_by(["group", "feature"]).aggregate(
        week=ibis.literal(-1, type="int64"), users=g.person_id.nunique(where=inside),
        user_days=g.count(where=inside))
    in_weeks = g.filter((g.week >= 0) & (g.week < len(weeks)) & (g.feature != ACTIVE))
    per_week = in_weeks.group_by(["group", "feature", "week"]).aggregate(
        users=in_weeks.person_id.nunique(), user_days=ibis.literal(0, type="int64"))
    both = totals.select("group", "feature", "week", "users", "user_days").union(
        per_week.select("group", "feature", week=per_week.week.cast("int64"),
                        users=per_week.users, user_days=per_week.user_days))
    window: dict[tuple[str, str], dict[str, Any]] = {}
    weekly: dict[tuple[str, str, int], int] = {}
    for r in both.to_pyarrow().to_pylist():
        if r["week"] < 0:
            window[(r["group"], r["feature"])] = r
        else:
            weekly[(r["group"], r["feature"], int(r["week"]))] = int(r["users"])
    sizes = {group: int(r["users"] or 0) for (group, feature), r in window.items()
             if feature == ACTIVE}
    out: list[dict[str, Any]] = []
    for name in usage.group_names(p.segments):
        active_users = sizes.get(name, 0)
        rows: list[dict[str, Any]] = []
        for f in features:
            r = window.get((name, f.name), {})
            users, user_days = int(r.get("users") or 0), int(r.get("user_days") or 0)
            rows.append({"feature": f.name, "users": users,
                         "adoption": _ratio(users, active_users) or 0.0,
                         "stickiness": _ratio(user_days, users * p.days),
                         "weekly": [weekly.get((name, f.name, w), 0)
                                    for w in range(len(weeks))]})
        out.append({"name": name, "active_users": active_users, "features": rows})
    everyone = {r["feature"]: r["adoption"] for r in out[0]["features"]}
    ranked = sorted((f.name for f in features), key=lambda n: (-everyone[n], n))
    for group in out:
        group["features"].sort(key=lambda r: ranked.index(r["feature"]))
    return {"window": {"start": usage.iso(first), "end": usage.iso(last + 1)},
            "weeks": [usage.iso(w) for w in weeks], "features": ranked, "groups": out}


# -- lifecycle -----------------------------------------------------------------------------
class LifecycleParams(Params):
    period: Literal["day", "week", "month"] = "week"
    periods: int = 12  # how many, ending with the last complete one
    segments: Csv = []
    partial: bool = False  # end with the current (incomplete) period


STATES = ("new", "returning", "resurrected", "dormant")


@analysis("lifecycle", "New, returning, resurrected and dormant users per period, per "
          "segment", LifecycleParams, page=False)
def lifecycle(ctx: Context, p: LifecycleParams) -> dict[str, Any]:
    """{period, starts: [start...], groups: [{name, periods: [{start, new, returning,
    resurrected, dormant}]}]}: dormant is negative (users lost since the period before)."""
    usage.check_range("lifecycle", "periods", p.periods)
    usage.check_segments(ctx, "lifecycle", p.segments)
    current = usage.current_start(ctx.now, p.period)
    last = current if p.partial else usage.starts(current, p.period, 2)[0]
    # one more period before the first shown: who was active the period before it
    first = usage.starts(last, p.period, p.periods + 1)
    until = usage.next_start(last, p.period)
    seen = usage.first_days(ctx)
    active = usage.active_days(ctx, since=first[0], until=until, distinct=False)
    active = active.mutate(i=usage.index_of(active.day, p.period, first))
    per = active.select("person_id", "i").distinct()
    per = per.inner_join(seen, per.person_id == seen.person_id)
    per = per.select(person_id=per.person_id, i=per.i,
                     born=usage.index_of(per.first, p.period, first))
    w = ibis.window(group_by=per.person_id, order_by=per.i)
    per = per.mutate(_prev=per.i.lag().over(w), _next=per.i.lead().over(w))
    state = ibis.cases((per.born == per.i, "new"), (per._prev == per.i - 1, "returning"),
                       else_="resurrected")
    here = per.select(person_id=per.person_id, i=per.i, state=state)
    gone = per.filter(per._next.isnull() | (per._next > per.i + 1))
    gone = gone.select(person_id=gone.person_id, i=gone.i + 1,
                       state=ibis.literal("dormant", type="string"))
    states = ibis.union(here.select("person_id", i=here.i.cast("int64"),
                                    state=here.state.cast("string")),
                        gone.select("person_id", i=gone.i.cast("int64"), state=gone.state))
    states = states.filter((states.i >= 1) & (states.i <= p.periods))
    g = usage.grouped(states, usage.members(ctx, p.segments))
    counts = g.group_by(["group", "i", "state"]).aggregate(users=g.count())
    found = {(r["group"], int(r["i"]), r["state"]): int(r["users"])
             for r in counts.to_pyarrow().to_pylist()}
    return {"period": p.period, "starts": [usage.iso(s) for s in first[1:]],
            "groups": [{"name": name, "periods": [
                {"start": usage.iso(s),
                 **{k: (-1 if k == "dormant" else 1) * found.get((name, i, k), 0)
                    for k in STATES}}
                for i, s in enumerate(first[1:], start=1)]}
                for name in usage.group_names(p.segments)]}
