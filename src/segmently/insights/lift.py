"""Feature lift: which features (the vocabulary's, or plain event names) go with an outcome,
which ones a segment's members use far more than other users, and the seeds' move built
from that: "users who use X and Y but not Z", as a ready rule and campaign.

Definitions (docs/insights/friction_lift.md). Days are UTC days; day 0 is the day of a
user's first track/page/screen event ("first seen").

- `retained_d30`: active (any track/page/screen event) on some day 23..37 after first seen,
  a 15-day band around day 30; only users first seen at least 38 days ago (the band is
  over) count. Usage: days 0..N-1.
- `trial_converted`: among users whose latest `trial_started` is decided (a
  `trial_converted` or `subscription_cancelled` at or after it, or started at least 30 days
  ago), those with a `trial_converted` at or after it. Usage: days 0..N-1 from the trial's
  start, and not after the conversion day.
- `segment`: among every user seen (first seen at least N days ago), the members of the
  target segment (`Context.members_of`: the latest snapshot of its live version, else
  evaluated now). Usage: days 0..N-1.
- `days=0` is "ever": any usage before now (for retained_d30 that includes the outcome's
  own days: association, not a cause).

Per feature, the 2x2 table (users who used it, or not, with the outcome, or not), the odds
ratio with a 95% interval by Woolf's (log) method, with Haldane's correction (0.5 added to
every cell) when a cell is zero; a two-sided p-value by Fisher's exact test when an
expected cell count is under 5, else Pearson's chi-square (1 df, no continuity
correction), both from scipy; Benjamini-Hochberg q-values across the features tested
(those used by at least `min_users`). `segment_features` reads the same table as a ratio
of usage shares (members' over other users') with its log interval. Rows are ranked by the
interval's lower bound: a strong association that is also well measured comes first.

The counting is in the engine: usage rows are the daily rollup rows
(`store/views.resolved_daily_rows`: one row per user, event and day, whatever the number
of events), raw events only when a feature's matcher filters on properties; the answer
has one row per feature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import scipy.stats
from pydantic import Field

from segmently.insights.friction import slug
from segmently.insights.registry import Context, InsightError, Params, analysis
from segmently.profile.billing import BILLING_EVENTS
from segmently.profile.matchers import EventMatcher, any_of
from segmently.profile.vocabulary import SUBSCRIPTION_CANCELLED, TRIAL_CONVERTED, TRIAL_STARTED
from segmently.segments.library import _any_of, _last, _none_of
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.rollups import day_number, day_of
from segmently.store.views import resolved_activity_days, resolved_daily_rows, resolved_events

RETAINED_FROM, RETAINED_TO = 23, 37  # retained at day 30: active on a day 23..37
TRIAL_DECIDED_DAYS = 30  # a trial this old is decided (the demo's last 14 days)
Z95 = 1.959963984540054  # the normal's 97.5% quantile
Outcome = Literal["retained_d30", "trial_converted", "segment"]
FeatureSource = Literal["vocabulary", "events"]


class LiftParams(Params):
    outcome: Outcome = "retained_d30"
    segment: str | None = None  # the target, for outcome=segment
    days: int = Field(default=7, ge=0, le=3650)  # usage in the first N days (0: ever)
    features: FeatureSource = "vocabulary"  # the vocabulary's features, or event names
    min_users: int = Field(default=10, ge=1)  # minimum support: users who used it
    alpha: float = Field(default=0.05, gt=0, lt=1)  # q-value for "significant"


class SegmentFeaturesParams(Params):
    segment: str
    days: int = Field(default=30, ge=0, le=3650)  # usage in the last N days (0: ever)
    features: FeatureSource = "vocabulary"
    min_users: int = Field(default=10, ge=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)


class DiscoveryParams(LiftParams):
    common: float = Field(default=0.5, gt=0, lt=1)  # X, Y: used by at least this share
    recent_days: int = Field(default=28, ge=1, le=3650)  # the rule's window for X and Y


# -- the analyses --------------------------------------------------------------------------
@analysis("feature_lift", "Features used early (or ever) that go with an outcome: odds "
          "ratios with confidence intervals and multiple-testing-corrected p-values",
          LiftParams)
def feature_lift(ctx: Context, p: LiftParams) -> dict[str, Any]:
    """{outcome, segment, days, features_from, definition, population, positives, rate,
    min_users, alpha, features: [row...], left_out: [{feature, users}]}; a row is
    {feature, users, share, positives_using, share_of_positives, rate_with, rate_without,
    table: {used_positive, used_negative, unused_positive, unused_negative},
    odds_ratio, ci_low, ci_high, corrected, p_value, test, q_value, significant}."""
    return lift_table(ctx, p)


@analysis("segment_features", "Features a segment's members use far more than other "
          "users: ratio of usage shares with confidence intervals and corrected p-values",
          SegmentFeaturesParams, page=False)
def segment_features(ctx: Context, p: SegmentFeaturesParams) -> dict[str, Any]:
    """{segment, days, features_from, population, members, features: [{feature, users,
    members_using, others_using, share_members, share_others, ratio, ci_low, ci_high,
    corrected, p_value, test, q_value, significant, table}], left_out}."""
    _known_segment(ctx, p.segment, "segment_features", "segment")
    items = _items(ctx, p.features, "segment_features")
    today = day_number(ctx.now)
    first = _first_days(ctx)
    members = _members(ctx, p.segment)
    pop = first.left_join(members, first.person_id == members._m)
    lo = ibis.literal(today - p.days + 1) if p.days else ibis.null("int64")
    pop = pop.select(person_id=pop.person_id, _y=pop._m.notnull(), _lo=lo,
                     _hi=ibis.null("int64"))
    counts, n, pos = _count(ctx, pop, items, [])
    rows, left_out = _rows(counts, items, n, pos, p.min_users, p.alpha, ratio=True)
    return {"segment": p.segment, "days": p.days, "features_from": p.features,
            "population": n, "members": pos, "min_users": p.min_users, "alpha": p.alpha,
            "definition": (f"usage in the last {p.days} days" if p.days else "usage ever")
            + f": members of {p.segment} against every other user seen",
            "features": rows, "left_out": left_out}


@analysis("discovery_rule", "Users who use X and Y but not Z: the two features with the "
          "highest lift most of the outcome's users use and one with high lift they rarely "
          "do, as a ready segment and campaign", DiscoveryParams, page=False)
def discovery_rule(ctx: Context, p: DiscoveryParams) -> dict[str, Any]:
    """{found, reason, x, y, z (lift rows), segment: {name, description, rule, size},
    campaign: {...act/campaigns.py format}, lift: the feature_lift answer}."""
    lift = lift_table(ctx, p)
    rows = lift["features"]
    common = [r for r in rows if r["share_of_positives"] >= p.common]
    answer: dict[str, Any] = {"found": False, "reason": None, "x": None, "y": None,
                              "z": None, "segment": None, "campaign": None, "lift": lift}
    if len(common) < 2:
        answer["reason"] = (f"fewer than two features are used by at least "
                            f"{p.common:.0%} of the outcome's users")
        return answer
    x, y = common[0], common[1]
    rare = [r for r in rows if r["feature"] not in (x["feature"], y["feature"])
            and r["significant"] and r["odds_ratio"] > 1
            and r["share_of_positives"] < p.common]
    if not rare:
        answer.update(x=x, y=y, reason="no feature with a significant lift is used by "
                      f"fewer than {p.common:.0%} of the outcome's users")
        return answer
    z = rare[0]
    matchers = {name: ms for name, ms in _items(ctx, p.features, "discovery_rule")
                or [(r["feature"], [EventMatcher(event=r["feature"])]) for r in (x, y, z)]}
    rule = {"all": [_any_of(matchers[x["feature"]], "performed", window=_last(p.recent_days)),
                    _any_of(matchers[y["feature"]], "performed", window=_last(p.recent_days)),
                    _none_of(matchers[z["feature"]])]}
    live = set(ctx.segments())
    name = _unique(slug(f"uses_{x['feature']}_and_{y['feature']}_not_{z['feature']}"), live)
    what = {"retained_d30": "retention at day 30", "trial_converted": "converting from "
            "trial", "segment": f"being in {p.segment}"}[p.outcome]
    description = (f"Uses {x['feature']} and {y['feature']} (in the last {p.recent_days} "
                   f"days) but has never used {z['feature']}, which goes with {what} "
                   f"(odds ratio {z['odds_ratio']:.2f}): the audience to introduce it to.")
    from segmently.segments.evaluate import evaluate

    size = evaluate(ctx.store, ctx.project_id, {name: rule},
                    vocabulary=ctx.vocabulary).sizes()[name]
    answer.update(found=True, x=x, y=y, z=z, segment={
        "name": name, "description": description[:2000], "rule": rule, "size": size},
        campaign=_campaign(ctx, name, x["feature"], y["feature"], z["feature"],
                           matchers[z["feature"]]))
    return answer


# -- populations ---------------------------------------------------------------------------
def lift_table(ctx: Context, p: LiftParams) -> dict[str, Any]:
    where = "feature_lift" if type(p) is LiftParams else "discovery_rule"
    items = _items(ctx, p.features, where)
    if p.outcome == "segment":
        if not p.segment:
            raise InsightError(f"{where}: segment: outcome=segment needs a segment")
        _known_segment(ctx, p.segment, where, "segment")
    elif p.segment:
        raise InsightError(f"{where}: segment: only with outcome=segment")
    if p.outcome == "retained_d30" and p.days > RETAINED_FROM:
        raise InsightError(f"{where}: days: at most {RETAINED_FROM} for retained_d30 (the "
                           f"outcome is activity on days {RETAINED_FROM}-{RETAINED_TO}), or "
                           "0 for ever")
    pop, definition = _population(ctx, p)
    excluded = list(BILLING_EVENTS) if p.outcome == "trial_converted" else []
    counts, n, pos = _count(ctx, pop, items, excluded)
    rows, left_out = _rows(counts, items, n, pos, p.min_users, p.alpha, ratio=False)
    return {"outcome": p.outcome, "segment": p.segment, "days": p.days,
            "features_from": p.features, "definition": definition, "population": n,
            "positives": pos, "rate": pos / n if n else 0.0, "min_users": p.min_users,
            "alpha": p.alpha, "features": rows, "left_out": left_out}


def _population(ctx: Context, p: LiftParams) -> tuple[ir.Table, str]:
    """(person_id, _y: the outcome, _lo, _hi: the usage days, inclusive, NULL: open)."""
    today, n = day_number(ctx.now), p.days
    first = _first_days(ctx)
    usage = f"in the first {n} days" if n else "ever"
    if p.outcome == "retained_d30":
        cohort = first.filter(first._f <= today - RETAINED_TO - 1)
        rows = resolved_activity_days(ctx.store, ctx.project_id, ctx.now)
        j = rows.inner_join(cohort, rows.person_id == cohort.person_id)
        band = (j.day >= j._f + RETAINED_FROM) & (j.day <= j._f + RETAINED_TO)
        per = j.group_by(_p=j.person_id).aggregate(_y=band.any(), _f=j._f.min())
        return per.select(person_id=per._p, _y=per._y, _lo=per._f,
                          _hi=(per._f + n - 1) if n else ibis.null("int64")), \
            f"retained at day 30 (active on days {RETAINED_FROM}-{RETAINED_TO}), usage {usage}"
    if p.outcome == "trial_converted":
        return _trials(ctx, n), f"trial converted, usage {usage} of the trial"
    members = _members(ctx, p.segment or "")
    cohort = first.filter(first._f <= today - n) if n else first
    j = cohort.left_join(members, cohort.person_id == members._m)
    return j.select(person_id=j.person_id, _y=j._m.notnull(), _lo=j._f,
                    _hi=(j._f + n - 1) if n else ibis.null("int64")), \
        f"in segment {p.segment}, usage {usage}"


def _trials(ctx: Context, n: int) -> ir.Table:
    r = _daily(ctx)
    r = r.filter(r.event.isin([TRIAL_STARTED, TRIAL_CONVERTED, SUBSCRIPTION_CANCELLED]))
    per = r.group_by("person_id").aggregate(
        _s=r.last_ts.max(where=r.event == TRIAL_STARTED),
        _c=r.last_ts.max(where=r.event == TRIAL_CONVERTED),
        _x=r.last_ts.max(where=r.event == SUBSCRIPTION_CANCELLED))
    per = per.filter(per._s.notnull())
    converted = (per._c.notnull() & (per._c >= per._s)).fill_null(False)
    cancelled = (per._x.notnull() & (per._x >= per._s)).fill_null(False)
    old = per._s < ibis.literal(ctx.now - timedelta(days=TRIAL_DECIDED_DAYS), type="timestamp")
    per = per.filter(converted | cancelled | old).mutate(_y=converted)
    start = day_of(per._s).cast("int64")
    until = day_of(per._c).cast("int64")
    hi = ibis.cases((per._y & (until < start + n - 1), until),
                    else_=start + n - 1) if n else \
        ibis.cases((per._y, until), else_=ibis.null("int64"))
    return per.select(person_id=per.person_id, _y=per._y,
                      _lo=start if n else ibis.null("int64"), _hi=hi)


# -- reading usage ------------------------------------------------------------------------
Items = list[tuple[str, list[EventMatcher]]]


def _items(ctx: Context, source: FeatureSource, where: str) -> Items | None:
    """The vocabulary's features as (name, matchers); None: every event name."""
    if source == "events":
        return None
    if not ctx.vocabulary.features:
        raise InsightError(f"{where}: features: the vocabulary declares no features; "
                           "use features=events")
    return [(f.name, list(f.events)) for f in ctx.vocabulary.features]


def _daily(ctx: Context) -> ir.Table:
    return resolved_daily_rows(ctx.store, ctx.project_id, ctx.now, [])


def _activity(ctx: Context, properties: bool = False) -> ir.Table:
    """(person_id, event, day[, properties]) of track/page/screen events: daily rollup
    rows, or raw events when a matcher reads properties."""
    if properties:
        e = resolved_events(ctx.store, ctx.project_id, ctx.now)
        e = e.filter(e.type.isin(ACTIVITY_TYPES))
        return e.select("person_id", "event", "properties",
                        day=day_of(e.timestamp).cast("int64"))
    r = _daily(ctx)
    r = r.filter(r.type.isin(ACTIVITY_TYPES))
    return r.select("person_id", "event", day=r.day.cast("int64"))


def _first_days(ctx: Context) -> ir.Table:
    a = resolved_activity_days(ctx.store, ctx.project_id, ctx.now, distinct=False)
    return a.group_by("person_id").aggregate(_f=a.day.min())


def _members(ctx: Context, segment: str) -> ir.Table:
    m = ctx.members_of([segment])
    return m.select(_m=m.user_id).distinct()


def _known_segment(ctx: Context, name: str, where: str, param: str) -> None:
    if name not in set(ctx.segments()):
        raise InsightError(f"{where}: {param}: no segment named {name!r}")


def _count(ctx: Context, pop: ir.Table, items: Items | None, excluded: list[str]
           ) -> tuple[dict[str, tuple[int, int]], int, int]:
    """feature -> (users who used it, of whom positive); the population and positives."""
    props = items is not None and any(m.where for _, ms in items for m in ms)
    rows = _activity(ctx, props)
    j = rows.inner_join(pop, rows.person_id == pop.person_id)
    j = j.filter((j._lo.isnull() | (j.day >= j._lo)) & (j._hi.isnull() | (j.day <= j._hi)))
    if items is None:
        j = j.filter(~j.event.isin(excluded)) if excluded else j
        used = j.select(j.person_id, j._y, feature=j.event)
    else:
        j = j.filter(any_of([m for _, ms in items for m in ms], j))
        used = ibis.union(*[j.filter(any_of(ms, j)).select(
            j.person_id, j._y, feature=ibis.literal(name)) for name, ms in items])
    used = used.distinct()
    per = used.group_by("feature").aggregate(users=used.count(), pos=used._y.sum())
    found = {r["feature"]: (int(r["users"]), int(r["pos"] or 0))
             for r in per.to_pyarrow().to_pylist()}
    total = pop.aggregate(n=pop.count(), pos=pop._y.sum()).to_pyarrow().to_pylist()[0]
    return found, int(total["n"] or 0), int(total["pos"] or 0)


# -- statistics ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Table2:
    """used_positive, used_negative, unused_positive, unused_negative."""

    a: int
    b: int
    c: int
    d: int

    def cells(self, corrected: bool) -> tuple[float, float, float, float]:
        k = 0.5 if corrected else 0.0
        return self.a + k, self.b + k, self.c + k, self.d + k

    @property
    def has_zero(self) -> bool:
        return min(self.a, self.b, self.c, self.d) == 0


def odds_ratio(t: Table2, z: float = Z95) -> tuple[float, float, float]:
    """(OR, low, high): Woolf's log interval, Haldane-corrected when a cell is zero."""
    a, b, c, d = t.cells(t.has_zero)
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return math.exp(log_or), math.exp(log_or - z * se), math.exp(log_or + z * se)


def share_ratio(t: Table2, z: float = Z95) -> tuple[float, float, float]:
    """(share of positives who used it / share of negatives who did, low, high): a, c the
    positives who used it or not, b, d the negatives (the log method for a ratio of
    proportions; Haldane's 0.5 in every cell when one is zero)."""
    a, b, c, d = t.cells(t.has_zero)
    log_rr = math.log((a / (a + c)) / (b / (b + d)))
    se = math.sqrt(1 / a - 1 / (a + c) + 1 / b - 1 / (b + d))
    return math.exp(log_rr), math.exp(log_rr - z * se), math.exp(log_rr + z * se)


def p_value(t: Table2) -> tuple[float, str]:
    """Fisher's exact test when an expected count is under 5, else Pearson's chi-square."""
    table = [[t.a, t.b], [t.c, t.d]]
    n = t.a + t.b + t.c + t.d
    rows, cols = (t.a + t.b, t.c + t.d), (t.a + t.c, t.b + t.d)
    expected = min((r * c / n) for r in rows for c in cols) if n else 0.0
    if expected < 5:
        return float(scipy.stats.fisher_exact(table).pvalue), "fisher"
    return float(scipy.stats.chi2_contingency(table, correction=False).pvalue), "chi2"


def bh(ps: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
    if not ps:
        return []
    return [float(q) for q in scipy.stats.false_discovery_control(ps, method="bh")]


def _rows(counts: dict[str, tuple[int, int]], items: Items | None, n: int, pos: int,
          min_users: int, alpha: float, ratio: bool
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    names = [name for name, _ in items] if items is not None else sorted(counts)
    tested, left_out = [], []
    for name in names:
        users, used_pos = counts.get(name, (0, 0))
        if users < min_users or n == 0:
            left_out.append({"feature": name, "users": users})
            continue
        tested.append((name, Table2(used_pos, users - used_pos, pos - used_pos,
                                    n - pos - (users - used_pos))))
    out: list[dict[str, Any]] = []
    for name, t in tested:
        est, low, high = share_ratio(t) if ratio else odds_ratio(t)
        p, test = p_value(t)
        users = t.a + t.b
        row: dict[str, Any] = {
            "feature": name, "users": users, "share": users / n,
            "table": {"used_positive": t.a, "used_negative": t.b,
                      "unused_positive": t.c, "unused_negative": t.d},
            "corrected": t.has_zero, "ci_low": low, "ci_high": high, "p_value": p,
            "test": test}
        if ratio:
            row.update(members_using=t.a, others_using=t.b,
                       share_members=t.a / pos if pos else 0.0,
                       share_others=t.b / (n - pos) if n - pos else 0.0, ratio=est)
        else:
            row.update(positives_using=t.a, share_of_positives=t.a / pos if pos else 0.0,
                       rate_with=t.a / users, rate_without=t.c / (n - users)
                       if n - users else 0.0, odds_ratio=est)
        out.append(row)
    for row, q in zip(out, bh([r["p_value"] for r in out]), strict=True):
        row["q_value"] = q
        row["significant"] = q < alpha
    out.sort(key=lambda r: (-r["ci_low"], r["feature"]))
    return out, left_out


# -- the suggested campaign ----------------------------------------------------------------
def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name[:120]}_{i}" in taken:
        i += 1
    return f"{name[:120]}_{i}"


def _campaign(ctx: Context, segment: str, x: str, y: str, z: str,
              matchers: list[EventMatcher]) -> dict[str, Any]:
    """A one-step tour pointing at Z for the segment's members (act/campaigns.py). The
    selector is a placeholder the product tags: `[data-segmently-feature="Z"]`."""
    from segmently.act import campaigns as camps

    camps.ensure_tables(ctx.store)
    name = _unique(slug(f"discover_{z}", 60), set(camps.current(ctx.store, ctx.project_id)))
    quoted = z.replace("\\", "\\\\").replace('"', '\\"')
    return {
        "name": name, "kind": "tour", "priority": 10, "holdout_percent": 20,
        "description": f"Shows {z} to the users of {x} and {y} who never used it "
                       f"(segment {segment})."[:2000],
        "audience": {"in": [segment]},
        "goal": {"rule": _any_of(matchers, "performed"), "within_days": 14},
        "content": {"steps": [{
            "selector": f'[data-segmently-feature="{quoted}"]'[:500],
            "title": f"Have you tried {z}?"[:120],
            "body": f"People who use {x} and {y} get more out of the product with {z}. "
                    "Here is where it lives."[:2000]}]}}
