"""Condition kinds over the product vocabulary, profiles, feedback and payments:
used_feature, reached_milestone, journey_stage, metric, nps, survey_answer, plan, on_trial,
missed_payments.

Features, milestones, NPS and payments are event aggregates like any other, so they share
the one pass (aggregates.py); metric conditions join the profile table
(profile.build_profiles) and survey answers a small side table, only when a rule has one.
Each class docstring is the condition's semantics. Registered at the bottom.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import Field, model_validator

from segmently.profile.build import build_profiles
from segmently.profile.config import Feature, Milestone
from segmently.profile.jsonvalues import WHOLE, as_number, string_at
from segmently.profile.matchers import (
    MAX_TEXT,
    MAX_VALUES,
    EventMatcher,
    Int64,
    PropertyFilter,
    Scalar,
    Text,
    Values,
)
from segmently.profile.vocabulary import (
    NPS_EVENT,
    NPS_SCORE,
    PAYMENT_FAILED,
    PLAN_TRAIT,
    SUBSCRIPTION_CANCELLED,
    TRIAL_CONVERTED,
    TRIAL_STARTED,
)
from segmently.segments.aggregates import Agg, matcher_key, matchers_key
from segmently.segments.conditions import Condition, Strict
from segmently.segments.errors import VocabularyError
from segmently.segments.nodes import _OP_WORDS, Node, _compare_value, _days_ago, _times
from segmently.segments.registry import register
from segmently.segments.spans import events_in_span, in_span
from segmently.segments.windows import Span, Window, describe, quantity, span_of
from segmently.store.views import Persons, is_person

if TYPE_CHECKING:
    from segmently.segments.lower import Lowerer

SURVEY_QUESTION, SURVEY_ANSWER, NPS_SURVEY = "question", "answer", "survey"


NUMERIC_METRICS = (
    "days_since_last_seen", "events_total", "events_window", "active_days_window",
    "active_weeks_window", "sessions_window", "avg_session_seconds", "stickiness",
    "nps_score", "nps_responses", "payments_made", "payments_missed",
    "payments_missed_window", "revenue_to_date", "engagement_points", "engagement_score",
    "features_used", "adoption_share", "journey_step", "health_score",
)
TEXT_METRICS = ("lifecycle", "health_band", "nps_category", "plan", "journey_stage")
MILESTONE_METRICS = ("journey_step", "journey_stage")  # only with milestones declared


class Percentile(Strict):
    """`{top: 10}`: the users whose value fewer than 10% of users exceed."""

    top: float | None = Field(default=None, gt=0, le=100)
    bottom: float | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one(self) -> Percentile:
        if (self.top is None) == (self.bottom is None):
            raise ValueError("give exactly one of top, bottom (a percentage)")
        return self


class Metric(Condition):
    """A per-user profile metric (`profile.build_profiles(...).users`, computed with the
    workspace vocabulary at as_of) compared with a value, or ranked.

    Numeric metrics take eq, ne, gt, ge, lt, le, between; text metrics (lifecycle,
    health_band, nps_category, plan, journey_stage) take eq, ne, in, not_in.
    `percentile: {top: P}` holds for a user when fewer than P% of the users that have the
    metric have a strictly greater value (`bottom`: strictly smaller). Ties are in or out
    together, so a tie at the cut may make the group larger than P%; a rank is a window
    function (rank()) over the exact values, so every engine agrees. A user without the
    metric (no activity events, no NPS answer...) is never a member.
    """

    kind: Literal["metric"]
    metric: str = Field(min_length=1, max_length=64)
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "between", "in", "not_in"] | None = None
    value: Scalar | Values | None = None
    percentile: Percentile | None = None

    @model_validator(mode="after")
    def _shape(self) -> Metric:
        known = NUMERIC_METRICS + TEXT_METRICS
        if self.metric not in known:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(known)}")
        if self.percentile is not None:
            if self.op is not None or self.value is not None:
                raise ValueError("give either percentile or op/value, not both")
            if self.metric in TEXT_METRICS:
                raise ValueError(f"metric {self.metric!r} is text: percentiles need a number")
            return self
        if self.op is None or self.value is None:
            raise ValueError("give op and value, or percentile")
        text = self.metric in TEXT_METRICS
        if text and self.op not in ("eq", "ne", "in", "not_in"):
            raise ValueError(f"metric {self.metric!r} is text: use eq, ne, in or not_in")
        if not text and self.op in ("in", "not_in"):
            raise ValueError(f"metric {self.metric!r} is a number: use eq, ne, gt, ge, lt, "
                             f"le or between")
        many = self.op in ("in", "not_in", "between")
        if many != isinstance(self.value, list) or (self.op == "between"
                                                    and len(self.value) != 2):  # type: ignore[arg-type]
            raise ValueError(f"op {self.op!r} needs " + ("[low, high]" if self.op == "between"
                             else "a list" if many else "a single value"))
        values = self.value if isinstance(self.value, list) else [self.value]
        if any(isinstance(v, str) for v in values) != text or \
                any(isinstance(v, bool) for v in values):
            raise ValueError(f"metric {self.metric!r} compares with "
                             + ("text" if text else "numbers"))
        return self


class UsedFeature(Condition):
    """Used a declared feature (any of its events, track/page/screen) in the window; or,
    with `features` (distinct names), used at least `at_least` (default: all) of them, each
    at least once."""

    kind: Literal["used_feature"]
    feature: str | None = Field(default=None, min_length=1, max_length=128)
    features: list[str] | None = Field(default=None, min_length=1, max_length=100)
    at_least: int | None = Field(default=None, ge=1, le=100)
    window: Window | None = None

    @model_validator(mode="after")
    def _one(self) -> UsedFeature:
        if (self.feature is None) == (self.features is None):
            raise ValueError("give exactly one of feature, features")
        if self.features is not None and len(set(self.features)) < len(self.features):
            raise ValueError("features must be distinct")  # else "all of them" never holds
        if self.at_least is not None and (self.features is None
                                          or self.at_least > len(self.features)):
            raise ValueError("at_least goes with features and must not exceed their number")
        return self


class ReachedMilestone(Condition):
    """Reached a declared milestone (its first matching event) in the window (no window:
    ever before as_of)."""

    kind: Literal["reached_milestone"]
    milestone: str = Field(min_length=1, max_length=128)
    window: Window | None = None


class JourneyStage(Condition):
    """The user's journey stage is `stage` — the furthest milestone (in declared order)
    they have reached, as in profiles — and was reached more than `for_more_than_days`
    days before as_of (0: at that stage now). "Stuck": reached k, not k+1, for N days."""

    kind: Literal["journey_stage"]
    stage: str = Field(min_length=1, max_length=128)
    for_more_than_days: int = Field(default=0, ge=0, le=100_000)


class Nps(Condition):
    """The latest valid NPS answer (event `nps_submitted`, property `score` an integer
    0-10, as in profiles): its category (promoter 9-10, passive 7-8, detractor 0-6) is
    `category`, or its score compares with `value`. No answer: false."""

    kind: Literal["nps"]
    category: Literal["promoter", "passive", "detractor"] | None = None
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "between"] | None = None
    value: Int64 | tuple[Int64, Int64] | None = None

    @model_validator(mode="after")
    def _one(self) -> Nps:
        if (self.category is None) == (self.op is None):
            raise ValueError("give either category, or op and value")
        if self.op is not None and (self.value is None
                                    or (self.op == "between") != isinstance(self.value, tuple)):
            raise ValueError("op 'between' needs [low, high]; other ops need one integer")
        return self


class SurveyAnswer(Condition):
    """The user's latest answer to a survey question, compared like a property.

    An answer is any event whose `question` property equals `question`, its value in the
    `answer` property; an `nps_submitted` event answers the question named by its `survey`
    property (e.g. nps-2026-03), its value in `score`. An answer without a value (the
    property missing or JSON null: a skipped question) is no answer and is passed over: of
    the other answers to the question in the window, the latest one counts.
    """

    kind: Literal["survey_answer"]
    question: str = Field(min_length=1, max_length=1024)
    op: Literal["eq", "ne", "in", "not_in", "contains", "regex", "gt", "ge", "lt", "le",
                "between", "is_set"] = "is_set"
    value: Scalar | Values | None = None
    window: Window | None = None

    @model_validator(mode="after")
    def _value(self) -> SurveyAnswer:
        PropertyFilter(property="answer", op=self.op, value=self.value)  # same checks
        return self


class Plan(Condition):
    """The user's latest `plan` trait is `is`, or one of `in` (text, exact)."""

    kind: Literal["plan"]
    is_: str | None = Field(default=None, alias="is", min_length=1, max_length=MAX_TEXT)
    in_: list[Text] | None = Field(default=None, alias="in", min_length=1, max_length=MAX_VALUES)

    @model_validator(mode="after")
    def _one(self) -> Plan:
        if (self.is_ is None) == (self.in_ is None):
            raise ValueError("give exactly one of is, in")
        return self

    def plans(self) -> list[str]:
        return [self.is_] if self.is_ is not None else list(self.in_ or [])


class OnTrial(Condition):
    """Started a trial (`trial_started`) and neither converted (`trial_converted`) nor
    cancelled (`subscription_cancelled`) at or after its latest start, as in profiles."""

    kind: Literal["on_trial"]


class MissedPayments(Condition):
    """At least `at_least` `payment_failed` events in the window."""

    kind: Literal["missed_payments"]
    at_least: int = Field(default=1, ge=1, le=1_000_000_000)
    window: Window | None = None


# -- lowering ------------------------------------------------------------------------------
def compare_text(s: ir.StringValue, op: str, value: Any) -> ir.BooleanValue:
    """A text value compared as the rule's value reads (number, boolean or text), NULL
    when it does not read as that type (profile/jsonvalues.py's reading)."""
    if op == "is_set":
        return s.notnull()
    like = value[0] if isinstance(value, list) else value
    col: ir.Value = s
    if isinstance(like, bool):
        col = ibis.cases((s == "true", True), (s == "false", False), else_=ibis.null("boolean"))
    elif isinstance(like, int | float):
        col = as_number(s)
    match op:
        case "in":
            return col.isin(value)
        case "not_in":
            return ~col.isin(value)
        case "contains":
            return col.contains(value)
        case "regex":
            return col.re_search(value)
    return _compare_value(col, op, value)


def _need(op: str, value: Any) -> str:
    if op == "between":
        return f"between {value[0]} and {value[1]}"
    if op in ("in", "not_in"):
        return f"{op.replace('_', ' ')} {json.dumps(value)}"
    return f"{_OP_WORDS.get(op, op.replace('_', ' '))} {json.dumps(value)}"


# -- vocabulary ------------------------------------------------------------------


def _feature(lw: Lowerer, name: str) -> Feature:
    found = {f.name: f for f in lw.aggs.vocabulary.features}
    if name not in found:
        raise VocabularyError(f"unknown feature {name!r}; the workspace declares: "
                              f"{', '.join(found) or 'no features'}")
    return found[name]


def _milestone_index(lw: Lowerer, name: str) -> int:
    names = [m.name for m in lw.aggs.vocabulary.milestones]
    if name not in names:
        raise VocabularyError(f"unknown milestone {name!r}; the workspace declares: "
                              f"{', '.join(names) or 'no milestones'}")
    return names.index(name)


def _reached(lw: Lowerer, m: Milestone) -> str:
    """First time any of the milestone's events happened (activity events, as in profiles)."""
    return lw.aggs.column(Agg("first_ts", Span(), matchers_key(m.events), activity=True))


def lower_usedfeature(lw: Lowerer, rule: UsedFeature) -> Node:
    span, win = span_of(rule.window, lw.as_of), describe(rule.window)
    names = [rule.feature] if rule.feature is not None else list(rule.features or [])
    cols = {n: lw.aggs.column(Agg("count", span, matchers_key(_feature(lw, n).events),
                                    activity=True)) for n in names}
    k = rule.at_least or len(names)

    def used(t: ir.Table) -> ir.IntegerValue:
        return sum((ibis.cases((t[col] > 0, 1), else_=0) for col in cols.values()),
                   ibis.literal(0))

    if rule.feature is not None:
        col = cols[rule.feature]
        return Node("used_feature", f"used feature {rule.feature} {win}",
                    lambda t: t[col] > 0, lambda t: {"count": t[col]},
                    lambda o: f"used feature {rule.feature} {_times(o['count'])} {win}; "
                              f"needs at least once")
    listed = ", ".join(names)
    return Node("used_feature", f"used at least {k} of {listed} {win}",
                lambda t: used(t) >= k,
                lambda t: {"used": used(t), **{n: t[col] for n, col in cols.items()}},
                lambda o: f"used {o['used']} of {listed} {win} ("
                          + ", ".join(f"{n}: {_times(o[n])}" for n in names)
                          + f"); needs at least {k}")


def lower_reachedmilestone(lw: Lowerer, rule: ReachedMilestone) -> Node:
    m = lw.aggs.vocabulary.milestones[_milestone_index(lw, rule.milestone)]
    col, span, win = _reached(lw, m), span_of(rule.window, lw.as_of), describe(rule.window)
    return Node("reached_milestone", f"reached milestone {m.name} {win}",
                lambda t: in_span(t[col], span, t._first_seen),
                lambda t: {"reached_at": t[col]},
                lambda o: f"reached {m.name}: "
                          f"{o['reached_at'].isoformat(sep=' ') if o['reached_at'] else 'never'}"
                          f"; needs it {win}")


def lower_journeystage(lw: Lowerer, rule: JourneyStage) -> Node:
    ms = lw.aggs.vocabulary.milestones
    k = _milestone_index(lw, rule.stage)
    cols = [_reached(lw, m) for m in ms]
    bound = ibis.literal(lw.as_of - timedelta(days=rule.for_more_than_days),
                         type="timestamp")

    def truth(t: ir.Table) -> ir.BooleanValue:
        later = [t[col].isnull() for col in cols[k + 1:]]
        cond = t[cols[k]].notnull() & (t[cols[k]] < bound)
        for x in later:
            cond &= x
        return cond.fill_null(False)

    def observed(t: ir.Table) -> dict[str, ir.Value]:
        stage = ibis.cases(*[(t[cols[j]].notnull(), ms[j].name)
                             for j in reversed(range(len(ms)))], else_=ibis.null("string"))
        since = ibis.cases(*[(t[cols[j]].notnull(), t[cols[j]])
                             for j in reversed(range(len(ms)))],
                           else_=ibis.null("timestamp"))
        return {"stage": stage, "since": since}

    need = f"at stage {rule.stage}" + (
        f" for more than {quantity(rule.for_more_than_days, 'days')}"
        if rule.for_more_than_days else "")
    return Node("journey_stage", need, truth, observed,
                lambda o: f"journey stage {o['stage'] or 'none (no milestone reached)'}"
                          + (f", reached {_days_ago(lw.as_of, o['since'])}"
                             if o['since'] else "") + f"; needs {need}")


# -- feedback --------------------------------------------------------------------


def lower_nps(lw: Lowerer, rule: Nps) -> Node:
    valid = EventMatcher(event=NPS_EVENT, where=[
        PropertyFilter(property=NPS_SCORE, op="regex", value=WHOLE),
        PropertyFilter(property=NPS_SCORE, op="between", value=[0, 10])])
    col = lw.aggs.column(Agg("latest", Span(), matcher_key(valid), NPS_SCORE,
                               activity=True))

    def score(t: ir.Table) -> ir.FloatingValue:
        return as_number(t[col])

    def category(t: ir.Table) -> ir.StringValue:
        s = score(t)
        return ibis.cases((s >= 9, "promoter"), (s >= 7, "passive"), (s >= 0, "detractor"),
                          else_=ibis.null("string"))

    if rule.category is not None:
        return Node("nps", f"NPS {rule.category}",
                    lambda t: (category(t) == rule.category).fill_null(False),
                    lambda t: {"score": t[col], "category": category(t)},
                    lambda o: f"latest NPS answer {o['score'] or 'none'} "
                              f"({o['category'] or 'no category'}); needs {rule.category}")
    value = list(rule.value) if isinstance(rule.value, tuple) else rule.value
    need = _need(str(rule.op), value)
    return Node("nps", f"latest NPS score {need}",
                lambda t: _compare_value(score(t), str(rule.op), value).fill_null(False),
                lambda t: {"score": t[col]},
                lambda o: f"latest NPS score {o['score'] or 'none'}; needs {need}")


def lower_surveyanswer(lw: Lowerer, rule: SurveyAnswer) -> Node:
    key = ("survey", rule.question, json.dumps(rule_span_key(rule.window, lw.as_of)))
    col = lw.join_column(key)
    span = span_of(rule.window, lw.as_of)

    def build(store: Any, project_id: str, person: Persons) -> ir.Table:
        e = events_in_span(store, project_id, lw.as_of, person, span, lw.aggs.known_at)
        asked = string_at(e.properties, SURVEY_QUESTION) == rule.question
        nps = (e.event == NPS_EVENT) & (string_at(e.properties, NPS_SURVEY) == rule.question)
        e = e.filter(asked.fill_null(False) | nps.fill_null(False))
        value = ibis.cases((e.event == NPS_EVENT, string_at(e.properties, NPS_SCORE)),
                           else_=string_at(e.properties, SURVEY_ANSWER))
        e = e.mutate(_v=value).filter(lambda x: x._v.notnull())
        return e.group_by(_p=e.person_id).aggregate(
            **{col: e._v.argmax(e.timestamp.epoch_seconds())})

    lw.aggs.join(key, build)
    need = "an answer" if rule.op == "is_set" else _need(rule.op, rule.value)
    win = describe(rule.window)
    return Node("survey_answer", f"latest answer to {rule.question!r} {need}",
                lambda t: compare_text(t[col], rule.op, rule.value).fill_null(False),
                lambda t: {"answer": t[col]},
                lambda o: f"latest answer to {rule.question!r} {win}: "
                          f"{'none' if o['answer'] is None else json.dumps(o['answer'])}; "
                          f"needs {need}")


# -- payments --------------------------------------------------------------------


def lower_plan(lw: Lowerer, rule: Plan) -> Node:
    col, plans = lw.aggs.trait(PLAN_TRAIT), rule.plans()
    need = f"is {plans[0]}" if len(plans) == 1 else f"one of {', '.join(plans)}"
    return Node("plan", f"plan {need}",
                lambda t: string_at(t[col]).isin(plans).fill_null(False),
                lambda t: {"plan": string_at(t[col])},
                lambda o: f"plan is {o['plan'] or 'not set'}; needs {need}")


def lower_ontrial(lw: Lowerer, rule: OnTrial) -> Node:
    last = {n: lw.aggs.column(Agg("last_ts", Span(), matcher_key(EventMatcher(event=n))))
            for n in (TRIAL_STARTED, TRIAL_CONVERTED, SUBSCRIPTION_CANCELLED)}

    def truth(t: ir.Table) -> ir.BooleanValue:
        started = t[last[TRIAL_STARTED]]
        ended = [(t[last[n]].notnull() & (t[last[n]] >= started)).fill_null(False)
                 for n in (TRIAL_CONVERTED, SUBSCRIPTION_CANCELLED)]
        return (started.notnull() & ~ended[0] & ~ended[1]).fill_null(False)

    return Node("on_trial", "on trial", truth,
                lambda t: {"trial_started": t[last[TRIAL_STARTED]],
                           "converted": t[last[TRIAL_CONVERTED]],
                           "cancelled": t[last[SUBSCRIPTION_CANCELLED]]},
                lambda o: "trial started " + _days_ago(lw.as_of, o["trial_started"])
                          + ", converted " + _days_ago(lw.as_of, o["converted"])
                          + ", cancelled " + _days_ago(lw.as_of, o["cancelled"])
                          + "; needs a trial started and not converted or cancelled since")


def lower_missedpayments(lw: Lowerer, rule: MissedPayments) -> Node:
    col = lw.aggs.column(Agg("count", span_of(rule.window, lw.as_of),
                               matcher_key(EventMatcher(event=PAYMENT_FAILED))))
    win = describe(rule.window)
    return Node("missed_payments", f"missed at least {rule.at_least} payments {win}",
                lambda t: t[col] >= rule.at_least, lambda t: {"missed": t[col]},
                lambda o: f"{PAYMENT_FAILED} {_times(o['missed'])} {win}; "
                          f"needs at least {rule.at_least}")


# -- profile metrics -------------------------------------------------------------


def lower_metric(lw: Lowerer, rule: Metric) -> Node:
    if rule.metric in MILESTONE_METRICS and not lw.aggs.vocabulary.milestones:
        raise VocabularyError(f"metric {rule.metric!r} needs milestones in the workspace "
                              f"vocabulary, which declares none")
    direction = None
    if rule.percentile is not None:
        direction = "top" if rule.percentile.top is not None else "bottom"
    col = _metric_column(lw, rule.metric, direction)
    if rule.percentile is None:
        need = _need(str(rule.op), rule.value)
        return Node("metric", f"{rule.metric} {need}",
                    lambda t: compare_metric(t[col], str(rule.op), rule.value),
                    lambda t: {"value": t[col]},
                    lambda o: f"{rule.metric} is "
                              f"{'unknown' if o['value'] is None else o['value']}; "
                              f"needs {need}")
    pct = float(rule.percentile.top or rule.percentile.bottom or 0)
    need = f"the {direction} {pct:g}% by {rule.metric}"
    rank, n = col + "_r", col + "_n"
    return Node("metric", need,
                lambda t: (t[rank] * 100.0 < t[n] * pct).fill_null(False),
                lambda t: {"value": t[col], "rank": t[rank], "of": t[n]},
                lambda o: f"{rule.metric} is "
                          + ("unknown" if o["value"] is None else
                             f"{o['value']}, with {o['rank']} of {o['of']} users "
                             f"{'above' if direction == 'top' else 'below'}")
                          + f"; needs {need}")


def _metric_column(lw: Lowerer, metric: str, direction: str | None) -> str:
    """A generated column of the profile side table, one per (metric, top/bottom or None)
    asked for by any rule of this lowering; the side table is joined once."""
    metrics: dict[tuple[str, str | None], str] = lw.state("metrics", dict)
    name = metrics.setdefault((metric, direction), f"_m{len(metrics)}")

    def build(store: Any, project_id: str, person: Persons) -> ir.Table:
        return _build_metrics(lw, metrics, store, project_id, person)

    lw.aggs.join("profile", build)
    return name


def _build_metrics(lw: Lowerer, metrics: dict[tuple[str, str | None], str], store: Any,
                   project_id: str, person: Persons) -> ir.Table:
    """The requested profile columns and ranks, for every user (ranks need them all)."""
    users = build_profiles(store, project_id, lw.aggs.vocabulary, lw.as_of,
                           known_at=lw.aggs.known_at).users
    out = users.select(_p=users.user_id, **{name: users[m] for (m, d), name
                                             in metrics.items() if d is None})
    for (m, d), name in metrics.items():
        if d is None:
            continue
        has = users.filter(users[m].notnull())
        order = has[m].desc() if d == "top" else has[m].asc()
        ranked = has.select(_q=has.user_id, **{
            name: has[m], name + "_r": ibis.rank().over(order_by=order),
            name + "_n": has[m].count().over(ibis.window())})
        out = out.left_join(ranked, out._p == ranked._q).drop("_q")
    return out.filter(is_person(out._p, person)) if person is not None else out


def compare_metric(col: ir.Value, op: str, value: Any) -> ir.BooleanValue:
    if op == "in":
        return col.isin(value).fill_null(False)
    if op == "not_in":
        return (~col.isin(value)).fill_null(False)
    return _compare_value(col, op, value).fill_null(False)


def rule_span_key(window: Any, as_of: datetime) -> list[Any]:
    span = span_of(window, as_of)
    return [str(span.start), str(span.end), span.first_seen_days]


# -- registration --------------------------------------------------------------------------
register(UsedFeature, lower_usedfeature, family="product",
         fields="`feature`, or `features` + `at_least`, `window`",
         true_when="used the declared feature (any of its events), or at least K of the list",
         example={"kind": "used_feature", "feature": "buying"},
         widgets={"feature": {"widget": "feature"}, "features": {"widget": "features"}})
register(ReachedMilestone, lower_reachedmilestone, family="product",
         fields="`milestone`, `window`",
         true_when="first reached the milestone inside the window",
         example={"kind": "reached_milestone", "milestone": "answered"},
         widgets={"milestone": {"widget": "milestone"}})
register(JourneyStage, lower_journeystage, family="product",
         fields="`stage`, `for_more_than_days`",
         true_when='the furthest milestone reached is `stage`, reached more than N days ago '
                   '("stuck")',
         example={"kind": "journey_stage", "stage": "bought"},
         widgets={"stage": {"widget": "milestone"}})
register(Metric, lower_metric, family="product",
         fields="`metric`, `op` + `value`, or `percentile: {top: P}` / `{bottom: P}`",
         true_when="a profile metric (engagement_score, health_score, health_band, lifecycle, "
                   "stickiness, sessions_window, revenue_to_date, ...) compares, or ranks in "
                   "the top P% (ties are in or out together)",
         example={"kind": "metric", "metric": "nps_score", "op": "ge", "value": 0},
         widgets={"metric": {"widget": "select", "options": [*NUMERIC_METRICS, *TEXT_METRICS]},
                  "percentile": {"widget": "percentile",
                                 "options": list(Percentile.model_fields)}})
register(Nps, lower_nps, family="product",
         fields="`category: promoter\\|passive\\|detractor`, or `op` + `value`",
         true_when="the latest valid NPS answer (a whole number 0-10; `8.0` reads as 8, `8.5` "
                   "is no answer) is in the category (9-10, 7-8, 0-6) or compares",
         example={"kind": "nps", "op": "ge", "value": 0})
register(SurveyAnswer, lower_surveyanswer, family="product",
         fields="`question`, `op`, `value`, `window`",
         true_when="the latest answer to the question compares",
         example={"kind": "survey_answer", "question": "q1", "op": "gt", "value": 0},
         widgets={"question": {"widget": "text"}})
register(Plan, lower_plan, family="product", fields="`is` or `in`",
         true_when="the latest `plan` trait",
         example={"kind": "plan", "is": "pro"},
         widgets={"is": {"widget": "plan"}, "in": {"widget": "plans"}})
register(OnTrial, lower_ontrial, family="product", fields="",
         true_when="a trial started and neither converted nor was cancelled since",
         example={"kind": "on_trial"})
register(MissedPayments, lower_missedpayments, family="product",
         fields="`at_least`, `window`", true_when="at least N failed payments in the window",
         example={"kind": "missed_payments"})
