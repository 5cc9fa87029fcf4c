"""Did it work? One in-app campaign's results against its holdout, by intention to treat:
everyone assigned to treatment (shown or not) against everyone held out.

Who: the users of `campaign_assignments` (`act/assignments.py`), each at their earliest
assignment before as_of, in the arm recorded then. What: the campaign's goal (its live
version's `goal`: a rule and `within_days`), judged per user in the engine:

- a goal that is one event condition without a window (`performed` at least once,
  `reached_milestone`, `used_feature` over the vocabulary's matchers) converts a user at
  the first matching event in (assigned_at, assigned_at + within_days], read from the
  daily rollups (store/rollups.py: a row's first and last times decide the two days the
  window cuts, every day between counts whole) or, when the matcher filters properties,
  from raw events;
- any other rule is evaluated (`segments.evaluate`) per assignment day d for that day's
  users at the end of day d + within_days (capped at as_of): converted when it holds then.

Windows still open at as_of count what happened so far, in both arms alike (the arms
share their assignment times, so the comparison stays fair); `complete` counts only users
whose window had closed. The statistics are `insights/stats.py`'s: the rates' difference
and ratio with 95% intervals and p-value; CUPED with each user's active days in the
within_days days before the assignment day; the mSPRT confidence sequence and
always-valid p-value, which decide `significant` (results are looked at every day); the
sample-ratio check against each version's holdout_percent; "too early" below
`min_users` per arm or 5 conversions / 5 non-conversions in an arm. Secondary metrics:
retained at day 7 and day 30 (any activity in the 7 days from the 7th / 30th day after the
assignment day) and the engagement change (events weighted as the vocabulary's engagement
score, the within_days days after the assignment day less the same number before), each
over the users whose windows had closed. Activity leaves out the SDK's campaign events
(shown, dismissed, clicked, task completed, survey answered): only treatment sees them.
docs/insights/campaign_results.md says why.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np

from segmently.act import assignments, targeting
from segmently.act import campaigns as camps
from segmently.insights import stats
from segmently.insights.registry import Context, InsightError, Params, analysis
from segmently.profile.config import Vocabulary
from segmently.profile.jsonvalues import string_at
from segmently.profile.literals import f64
from segmently.profile.matchers import EventMatcher, any_of
from segmently.segments import definitions as defs
from segmently.segments.evaluate import evaluate
from segmently.segments.rules import parse_rule
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.rollups import EPOCH, day_number, day_of, day_start
from segmently.store.views import resolved_daily_rows, resolved_events

MIN_CONVERSIONS = 5  # and as many non-conversions, per arm: the normal approximation
RETENTION_DAYS = (7, 30)
RETENTION_WINDOW = 7
CUPED_MIN_REDUCTION = 0.05  # CUPED is the primary estimate from a 5% smaller variance
SDK_EVENTS = sorted(targeting.CAMPAIGN_EVENTS - {"nps_submitted"})
ARMS = ("treatment", "holdout")
METHOD = (
    "Intention to treat: every user assigned to treatment, shown or not, against every "
    "user held out. Significance is the mixture sequential probability ratio test (mSPRT,"
    " always valid: Johari et al. 2017; gbstats's normal-mixture confidence sequence, "
    "tuned for 5,000 users): its intervals and p-value hold however often the results are"
    " looked at, unlike the fixed-horizon z-test (also shown), whose 5% false-positive "
    "rate becomes about 20% when checked ten times. The estimate is CUPED-adjusted by "
    "each user's active days before assignment when that narrows the interval by 5% or "
    "more.")


class CampaignResultsParams(Params):
    campaign: str
    as_of: datetime | None = None  # default now
    min_users: int = 100  # per arm before a verdict


@analysis("campaign_results", "A campaign's goal conversions, treatment against holdout",
          CampaignResultsParams)
def campaign_results(ctx: Context, p: CampaignResultsParams) -> dict[str, Any]:
    stored = camps.get(ctx.store, ctx.project_id, p.campaign)  # UnknownCampaignError: 404
    goal = stored.campaign.goal
    if goal is None:
        raise InsightError(f"campaign_results: campaign: {p.campaign!r} has no goal; give it"
                           " one (goal: rule, within_days) to measure it")
    if not 10 <= p.min_users <= 1_000_000:
        raise InsightError("campaign_results: min_users: between 10 and 1000000")
    as_of = _naive(p.as_of) if p.as_of is not None else ctx.now
    if as_of > ctx.now + timedelta(days=1):
        raise InsightError("campaign_results: as_of: in the future")
    days = goal.within_days
    users = _assigned(ctx, p.campaign, as_of)
    matchers = goal_matchers(goal.rule, ctx.vocabulary)
    if matchers is not None:
        converted = _event_goal(ctx, users, matchers, days, as_of)
        judged = (f"the first matching event in (assigned_at, assigned_at + {days} days]")
    else:
        converted = _rule_goal(ctx, users, goal.rule, days, as_of)
        judged = (f"the rule evaluated at the end of the assignment day + {days} days "
                  "(capped at as_of)")
    groups = _groups(_per_user(ctx, users, converted, p.campaign, days, as_of))
    sums = _arm_sums(groups, days, day_number(as_of))
    answer = _analyse(sums, p.min_users)
    versions = _versions(ctx, p.campaign, groups)
    return {
        "campaign": p.campaign, "as_of": as_of.isoformat(), "method": METHOD,
        "goal": {"rule": goal.rule, "within_days": days, "judged": judged},
        "holdout_percent": stored.campaign.holdout_percent,
        **answer,
        "srm": _srm(sums, versions),
        "shown": {arm: int(sums[arm]["shown"]) for arm in ARMS},
        "daily": _daily(groups, as_of),
    }


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


# -- who ---------------------------------------------------------------------------------
def _assigned(ctx: Context, campaign: str, as_of: datetime) -> ir.Table:
    """One row per user: the earliest assignment before as_of (the one that counts)."""
    a = assignments.table(ctx.store, ctx.project_id, campaign)
    a = a.filter(a.assigned_at < as_of)
    key = a.assigned_at.epoch_seconds()
    g = a.group_by(a.user_id).aggregate(assigned_at=a.assigned_at.min(),
                                        arm=a.arm.argmin(key),
                                        version=a.campaign_version.argmin(key))
    return g.mutate(a_day=day_of(g.assigned_at).cast("int64"))


def _versions(ctx: Context, campaign: str, groups: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    """Users assigned under each version, with that version's holdout_percent."""
    holdout = {v.version: float(v.definition.get("holdout_percent", 10.0))
               for v in camps.history(ctx.store, ctx.project_id, campaign) if v.definition}
    users: dict[int, int] = {}
    for g in groups:
        users[int(g["version"])] = users.get(int(g["version"]), 0) + int(g["n"])
    return [{"version": v, "users": n, "holdout_percent": holdout.get(v, 10.0)}
            for v, n in sorted(users.items())]


# -- the goal ----------------------------------------------------------------------------
def goal_matchers(rule: dict[str, Any], vocabulary: Vocabulary) -> list[EventMatcher] | None:
    """The events whose first occurrence after assignment is the conversion, when the
    goal is one windowless event condition; None for any other rule."""
    parsed = parse_rule(rule, "goal.rule")
    kind = getattr(parsed, "kind", None)
    if getattr(parsed, "window", None) is not None:
        return None
    if kind == "performed" and parsed.bounds() == (1, None):  # type: ignore[union-attr]
        return [EventMatcher(event=parsed.event, where=parsed.where)]  # type: ignore[union-attr]
    if kind == "reached_milestone":
        name = parsed.milestone  # type: ignore[union-attr]
        found = {m.name: m for m in vocabulary.milestones}.get(name)
        if found is None:
            raise InsightError(f"campaign_results: goal: no milestone named {name!r} in the"
                               " vocabulary")
        return list(found.events)
    if kind == "used_feature" and parsed.feature is not None:  # type: ignore[union-attr]
        name = parsed.feature  # type: ignore[union-attr]
        feature = {f.name: f for f in vocabulary.features}.get(name)
        if feature is None:
            raise InsightError(f"campaign_results: goal: no feature named {name!r} in the "
                               "vocabulary")
        return list(feature.events)
    return None


def _event_goal(ctx: Context, users: ir.Table, matchers: list[EventMatcher], days: int,
                as_of: datetime) -> ir.Table:
    """(user_id, goal_day): the day of each user's first matching event in the window."""
    plain = [m for m in matchers if not m.where]
    filtered = [m for m in matchers if m.where]
    parts = []
    if plain:
        r = resolved_daily_rows(ctx.store, ctx.project_id, as_of, [])
        r = r.filter(r.event.isin([m.event for m in plain]))
        parts.append(r.select("person_id", "day", "first_ts", "last_ts"))
    if filtered:
        e = resolved_events(ctx.store, ctx.project_id, as_of)
        e = e.filter(any_of(filtered, e))
        parts.append(e.select("person_id", day=day_of(e.timestamp).cast("int32"),
                              first_ts=e.timestamp, last_ts=e.timestamp))
    rows = parts[0] if len(parts) == 1 else parts[0].union(parts[1].cast(parts[0].schema()))
    j = rows.inner_join(users, rows.person_id == users.user_id)
    end = j.assigned_at + ibis.interval(days=days)
    day = j.day.cast("int64")
    hit = (((day > j.a_day) & (day < j.a_day + days))
           | ((day == j.a_day) & (j.last_ts > j.assigned_at))
           | ((day == j.a_day + days) & (j.first_ts <= end)))
    j = j.filter(hit)
    return j.group_by(user_id=j.user_id).aggregate(goal_day=day.min())


def _rule_goal(ctx: Context, users: ir.Table, rule: dict[str, Any], days: int,
               as_of: datetime) -> ir.Table:
    """Any rule: evaluated once per assignment day for that day's users."""
    cohorts: dict[int, list[str]] = {}
    for row in users.select("user_id", "a_day").to_pyarrow().to_pylist():
        cohorts.setdefault(int(row["a_day"]), []).append(row["user_id"])
    if len(cohorts) > 400:
        raise InsightError("campaign_results: goal: a rule other than one event condition is"
                           " evaluated per assignment day, at most 400 of them; give as_of")
    rules: dict[str, Any] = {n: d.rule for n, d in defs.current(ctx.store, ctx.project_id)
                             .items()}
    rules["_campaign_goal"] = parse_rule(rule, "goal.rule")
    found: list[dict[str, Any]] = []
    for a_day, ids in sorted(cohorts.items()):
        at = min(day_start(a_day + 1 + days), as_of)
        ev = evaluate(ctx.store, ctx.project_id, rules, at, only=["_campaign_goal"],
                      vocabulary=ctx.vocabulary, persons=tuple(ids))
        members = ev.members("_campaign_goal").to_pyarrow()["user_id"].to_pylist()
        goal_day = day_number(at - timedelta(microseconds=1))
        found.extend({"user_id": u, "goal_day": goal_day} for u in members)
    return ibis.memtable(found or {"user_id": [], "goal_day": []},
                         schema={"user_id": "string", "goal_day": "int64"})


# -- per user, per arm -------------------------------------------------------------------
def _per_user(ctx: Context, users: ir.Table, converted: ir.Table, campaign: str,
              days: int, as_of: datetime) -> ir.Table:
    """Per assigned user: arm, version, assignment day, conversion day (null: none),
    active days before (the CUPED covariate), shown or not, retention flags, weighted
    events before and after."""
    r = resolved_daily_rows(ctx.store, ctx.project_id, as_of, [])
    r = r.filter(r.type.isin(ACTIVITY_TYPES) & ~r.event.isin(SDK_EVENTS))
    j = r.inner_join(users.select("user_id", "a_day"), r.person_id == users.user_id)
    day = j.day.cast("int64")
    weights = ctx.vocabulary.engagement.weights
    if weights:
        w = ibis.cases(*[(j.event == k, f64(v)) for k, v in weights.items()],
                       else_=f64(0.0))
    else:
        w = f64(1.0)
    points = j.n.cast("float64") * w
    before = (day >= j.a_day - days) & (day < j.a_day)
    after = (day > j.a_day) & (day <= j.a_day + days)

    def retained(k: int) -> ir.FloatingValue:
        inside = (day >= j.a_day + k) & (day < j.a_day + k + RETENTION_WINDOW)
        return _ind(inside).max()

    act = j.group_by(uid=j.user_id).aggregate(
        pre_days=day.nunique(where=before), pre_points=points.sum(where=before),
        post_points=points.sum(where=after),
        **{f"r{k}": retained(k) for k in RETENTION_DAYS})
    e = resolved_events(ctx.store, ctx.project_id, as_of)
    e = e.filter((e.event == targeting.SHOWN)
                 & (string_at(e.properties, "campaign") == campaign))
    shown = e.select(sid=e.person_id).distinct()
    u = users.left_join(converted, users.user_id == converted.user_id).drop("user_id_right")
    u = u.left_join(act, u.user_id == act.uid).drop("uid")
    u = u.left_join(shown, u.user_id == shown.sid)
    return u.mutate(x=u.pre_days.fill_null(0).cast("float64"), shown=_ind(u.sid.notnull()),
                    change=u.post_points.fill_null(f64(0.0)) - u.pre_points.fill_null(f64(0.0)),
                    **{f"r{k}": u[f"r{k}"].fill_null(f64(0.0)) for k in RETENTION_DAYS})


def _ind(cond: ir.BooleanValue) -> ir.FloatingValue:
    """1.0 where cond holds, else 0.0 (PostgreSQL casts no boolean to a number)."""
    return ibis.cases((cond, f64(1.0)), else_=f64(0.0))


def _groups(u: ir.Table) -> list[dict[str, Any]]:
    """One query: the sums per (arm, version, assignment day, conversion day), few rows
    (days x within_days), from which everything else is added up."""
    g = u.group_by(["arm", "version", "a_day", "goal_day"]).aggregate(
        n=u.count(), x=u.x.sum(), x2=(u.x * u.x).sum(), shown=u.shown.sum(),
        eng=u.change.sum(), eng2=(u.change * u.change).sum(),
        **{f"r{k}": u[f"r{k}"].sum() for k in RETENTION_DAYS})
    return g.to_pyarrow().to_pylist()


SUMS = ("n", "y", "x", "x2", "xy", "n_complete", "y_complete", "shown", "eng_n", "eng",
        "eng2", *(f"r{k}{s}" for k in RETENTION_DAYS for s in ("", "_n")))


def _arm_sums(groups: list[dict[str, Any]], days: int, today: int
              ) -> dict[str, dict[str, float]]:
    """The sufficient statistics per arm. `today` = as_of's day: a window is closed when
    its last day is before it."""
    out = {arm: dict.fromkeys(SUMS, 0.0) for arm in ARMS}
    for g in groups:
        s = out.get(g["arm"])
        if s is None:
            continue
        n, x = float(g["n"]), float(g["x"] or 0)
        conv = g["goal_day"] is not None
        closed = g["a_day"] + days < today
        s["n"] += n
        s["x"] += x
        s["x2"] += float(g["x2"] or 0)
        s["shown"] += float(g["shown"] or 0)
        if conv:
            s["y"] += n
            s["xy"] += x
        if closed:
            s["n_complete"] += n
            s["y_complete"] += n if conv else 0
            s["eng_n"] += n
            s["eng"] += float(g["eng"] or 0)
            s["eng2"] += float(g["eng2"] or 0)
        for k in RETENTION_DAYS:
            if g["a_day"] + k + RETENTION_WINDOW <= today:
                s[f"r{k}_n"] += n
                s[f"r{k}"] += float(g[f"r{k}"] or 0)
    return out


# -- the statistics ----------------------------------------------------------------------
def _num(x: Any) -> float | None:
    value = float(x)
    return None if not np.isfinite(value) else value


def _interval(estimate: Any, low: Any, high: Any) -> dict[str, float | None]:
    return {"estimate": _num(estimate), "low": _num(low), "high": _num(high)}


def _describe(e: stats.Estimate) -> dict[str, Any]:
    lo, hi, rlo, rhi = e.interval()
    seq = stats.sequential(e)
    return {"absolute": _interval(e.diff, lo, hi), "relative": _interval(e.rel, rlo, rhi),
            "p_value": _num(e.p_value()),
            "sequential": {"absolute": _interval(e.diff, seq.low, seq.high),
                           "relative": _interval(e.rel, seq.rel_low, seq.rel_high),
                           "p_value": _num(seq.p_value)}}


def _analyse(sums: dict[str, dict[str, float]], min_users: int) -> dict[str, Any]:
    t, h = sums["treatment"], sums["holdout"]
    arms = []
    for arm in ARMS:
        s = sums[arm]
        arms.append({"arm": arm, "assigned": int(s["n"]), "converted": int(s["y"]),
                     "rate": s["y"] / s["n"] if s["n"] else None,
                     "complete": int(s["n_complete"]), "converted_complete": int(s["y_complete"]),
                     "rate_complete": s["y_complete"] / s["n_complete"]
                     if s["n_complete"] else None})
    reasons = []
    for arm in ARMS:
        s = sums[arm]
        if s["n"] < min_users:
            reasons.append(f"{arm}: {int(s['n'])} users assigned, needs {min_users}")
        elif min(s["y"], s["n"] - s["y"]) < MIN_CONVERSIONS:
            reasons.append(f"{arm}: needs at least {MIN_CONVERSIONS} users converted and "
                           f"{MIN_CONVERSIONS} not")
    too_early = {"flag": bool(reasons), "reasons": reasons, "min_users_per_arm": min_users,
                 "min_conversions_per_arm": MIN_CONVERSIONS}
    out: dict[str, Any] = {"arms": arms, "too_early": too_early}
    if t["n"] < 2 or h["n"] < 2:
        out.update(raw=None, cuped=None, primary=None, significant=False,
                   verdict="too_early", secondary=[])
        return out
    arm_t = stats.Arm(t["n"], t["y"], t["y"], t["x"], t["x2"], t["xy"])
    arm_h = stats.Arm(h["n"], h["y"], h["y"], h["x"], h["x2"], h["xy"])
    raw = stats.difference(arm_t, arm_h)
    adj = stats.cuped(arm_t, arm_h)
    reduction = _num(adj.variance_reduction)
    use_cuped = reduction is not None and reduction >= CUPED_MIN_REDUCTION
    primary = adj.estimate if use_cuped else raw
    seq = stats.sequential(primary)
    p_seq = _num(seq.p_value)
    significant = not reasons and p_seq is not None and p_seq < 0.05
    diff = float(primary.diff)
    verdict = ("too_early" if reasons else
               ("positive" if diff > 0 else "negative") if significant else "inconclusive")
    out.update(raw=_describe(raw),
               cuped={**_describe(adj.estimate), "theta": _num(adj.theta),
                      "variance_reduction": reduction, "used": use_cuped,
                      "covariate": "active days in the within_days days before the "
                                   "assignment day"},
               primary="cuped" if use_cuped else "raw", significant=significant,
               verdict=verdict, secondary=_secondary(sums))
    return out


def _secondary(sums: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    t, h = sums["treatment"], sums["holdout"]
    out = []
    for k in RETENTION_DAYS:
        n_t, n_h, y_t, y_h = t[f"r{k}_n"], h[f"r{k}_n"], t[f"r{k}"], h[f"r{k}"]
        item: dict[str, Any] = {
            "metric": f"retained_d{k}", "kind": "rate",
            "description": f"any activity in days {k}-{k + RETENTION_WINDOW - 1} after the "
                           "assignment day",
            "treatment": {"n": int(n_t), "value": y_t / n_t if n_t else None},
            "holdout": {"n": int(n_h), "value": y_h / n_h if n_h else None}}
        if n_t >= 2 and n_h >= 2:
            e = stats.difference(stats.Arm(n_t, y_t, y_t), stats.Arm(n_h, y_h, y_h))
            lo, hi, _, _ = e.interval()
            item.update(absolute=_interval(e.diff, lo, hi), p_value=_num(e.p_value()))
        out.append(item)
    n_t, n_h = t["eng_n"], h["eng_n"]
    item = {"metric": "engagement_change", "kind": "mean",
            "description": "engagement points (the vocabulary's weights) in the within_days "
                           "days after the assignment day minus as many days before",
            "treatment": {"n": int(n_t), "value": t["eng"] / n_t if n_t else None},
            "holdout": {"n": int(n_h), "value": h["eng"] / n_h if n_h else None}}
    if n_t >= 2 and n_h >= 2:
        e = stats.difference(stats.Arm(n_t, t["eng"], t["eng2"]),
                             stats.Arm(n_h, h["eng"], h["eng2"]))
        lo, hi, _, _ = e.interval()
        item.update(absolute=_interval(e.diff, lo, hi), p_value=_num(e.p_value()))
    out.append(item)
    return out


def _srm(sums: dict[str, dict[str, float]], versions: list[dict[str, Any]]
         ) -> dict[str, Any]:
    n_t, n_h = sums["treatment"]["n"], sums["holdout"]["n"]
    total = sum(v["users"] for v in versions)
    expected = (sum(v["users"] * v["holdout_percent"] for v in versions) / 100 / total
                if total else None)
    out: dict[str, Any] = {"expected_holdout_share": expected,
                           "observed_holdout_share": n_h / (n_t + n_h) if n_t + n_h else None,
                           "chi2": None, "p_value": None, "flagged": False,
                           "threshold": stats.SRM_ALPHA}
    if expected is not None and 0 < expected < 1:
        chi2, p = stats.srm(n_t, n_h, expected)
        out.update(chi2=_num(chi2), p_value=_num(p), flagged=bool(p < stats.SRM_ALPHA))
    return out


def _daily(groups: list[dict[str, Any]], as_of: datetime) -> dict[str, Any]:
    """Per calendar day: cumulative users assigned and converted in each arm."""
    if not groups:
        return {"days": [], **{arm: {"assigned": [], "converted": [], "rate": []}
                               for arm in ARMS}}
    first = min(int(g["a_day"]) for g in groups)
    last = max(first, day_number(as_of - timedelta(microseconds=1)))
    span = last - first + 1
    out: dict[str, Any] = {"days": [_iso_day(first + i) for i in range(span)]}
    for arm in ARMS:
        a, k = np.zeros(span), np.zeros(span)
        for g in groups:
            if g["arm"] != arm:
                continue
            a[int(g["a_day"]) - first] += g["n"]
            if g["goal_day"] is not None and first <= int(g["goal_day"]) <= last:
                k[int(g["goal_day"]) - first] += g["n"]
        ca, ck = a.cumsum(), k.cumsum()
        out[arm] = {"assigned": [int(x) for x in ca], "converted": [int(x) for x in ck],
                    "rate": [float(b / x) if x else None for b, x in zip(ck, ca, strict=True)]}
    return out


def _iso_day(day: int) -> str:
    d: date = (EPOCH + timedelta(days=day)).date()
    return d.isoformat()
