"""Lowering of the product kinds (conditions.py): vocabulary, payments, NPS and metrics.

Features, milestones, NPS and payments are event aggregates like any other, so they share
the one pass; metric conditions join the profile table (profile.build_profiles) and
survey answers a small side table, only when a rule has one. `Lowerer` (lower.py) mixes
this class in; `self.aggs`, `self.as_of` and `self.lower` are the Lowerer's.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from segmently.profile.build import build_profiles
from segmently.profile.config import Feature, Milestone
from segmently.profile.jsonvalues import WHOLE, as_number, string_at
from segmently.profile.matchers import EventMatcher, PropertyFilter
from segmently.profile.vocabulary import (
    NPS_EVENT,
    NPS_SCORE,
    PAYMENT_FAILED,
    PLAN_TRAIT,
    SUBSCRIPTION_CANCELLED,
    TRIAL_CONVERTED,
    TRIAL_STARTED,
)
from segmently.segments import conditions as c
from segmently.segments.aggregates import Agg, matcher_key, matchers_key
from segmently.segments.errors import VocabularyError
from segmently.segments.lower_flows import FlowConditions, events_in_span
from segmently.segments.nodes import _OP_WORDS, Node, _compare_value, _days_ago, _times
from segmently.segments.windows import Span, describe, quantity, span_of

if TYPE_CHECKING:
    from segmently.segments.aggregates import Aggregates

SURVEY_QUESTION, SURVEY_ANSWER, NPS_SURVEY = "question", "answer", "survey"


def in_span(first: ir.Value, span: Span, first_seen: ir.Value) -> ir.BooleanValue:
    """A per-user instant (NULL: never) falls inside a resolved window."""
    cond = first.notnull()
    if span.first_seen_days is not None:
        cond &= first < first_seen + ibis.interval(days=span.first_seen_days)
    if span.start is not None:
        cond &= first >= ibis.literal(span.start, type="timestamp")
    if span.end is not None:
        cond &= first < ibis.literal(span.end, type="timestamp")
    return cond.fill_null(False)


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


class ProductConditions(FlowConditions):
    aggs: Aggregates
    as_of: datetime
    _metrics: dict[tuple[str, str | None], str]  # (metric, top/bottom or None) -> column

    # -- vocabulary ------------------------------------------------------------------
    def _feature(self, name: str) -> Feature:
        found = {f.name: f for f in self.aggs.vocabulary.features}
        if name not in found:
            raise VocabularyError(f"unknown feature {name!r}; the workspace declares: "
                                  f"{', '.join(found) or 'no features'}")
        return found[name]

    def _milestone_index(self, name: str) -> int:
        names = [m.name for m in self.aggs.vocabulary.milestones]
        if name not in names:
            raise VocabularyError(f"unknown milestone {name!r}; the workspace declares: "
                                  f"{', '.join(names) or 'no milestones'}")
        return names.index(name)

    def _reached(self, m: Milestone) -> str:
        """First time any of the milestone's events happened (activity events, as in profiles)."""
        return self.aggs.column(Agg("first_ts", Span(), matchers_key(m.events), activity=True))

    def _lower_usedfeature(self, rule: c.UsedFeature) -> Node:
        span, win = span_of(rule.window, self.as_of), describe(rule.window)
        names = [rule.feature] if rule.feature is not None else list(rule.features or [])
        cols = {n: self.aggs.column(Agg("count", span, matchers_key(self._feature(n).events),
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

    def _lower_reachedmilestone(self, rule: c.ReachedMilestone) -> Node:
        m = self.aggs.vocabulary.milestones[self._milestone_index(rule.milestone)]
        col, span, win = self._reached(m), span_of(rule.window, self.as_of), describe(rule.window)
        return Node("reached_milestone", f"reached milestone {m.name} {win}",
                    lambda t: in_span(t[col], span, t._first_seen),
                    lambda t: {"reached_at": t[col]},
                    lambda o: f"reached {m.name}: "
                              f"{o['reached_at'].isoformat(sep=' ') if o['reached_at'] else 'never'}"
                              f"; needs it {win}")

    def _lower_journeystage(self, rule: c.JourneyStage) -> Node:
        ms = self.aggs.vocabulary.milestones
        k = self._milestone_index(rule.stage)
        cols = [self._reached(m) for m in ms]
        bound = ibis.literal(self.as_of - timedelta(days=rule.for_more_than_days),
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
                              + (f", reached {_days_ago(self.as_of, o['since'])}"
                                 if o['since'] else "") + f"; needs {need}")

    # -- feedback --------------------------------------------------------------------
    def _lower_nps(self, rule: c.Nps) -> Node:
        valid = EventMatcher(event=NPS_EVENT, where=[
            PropertyFilter(property=NPS_SCORE, op="regex", value=WHOLE),
            PropertyFilter(property=NPS_SCORE, op="between", value=[0, 10])])
        col = self.aggs.column(Agg("latest", Span(), matcher_key(valid), NPS_SCORE,
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

    def _lower_surveyanswer(self, rule: c.SurveyAnswer) -> Node:
        key = ("survey", rule.question, json.dumps(rule_span_key(rule.window, self.as_of)))
        col = self._join_column(key)
        span = span_of(rule.window, self.as_of)

        def build(store: Any, project_id: str, person: str | None) -> ir.Table:
            e = events_in_span(store, project_id, self.as_of, person, span, self.aggs.known_at)
            asked = string_at(e.properties, SURVEY_QUESTION) == rule.question
            nps = (e.event == NPS_EVENT) & (string_at(e.properties, NPS_SURVEY) == rule.question)
            e = e.filter(asked.fill_null(False) | nps.fill_null(False))
            value = ibis.cases((e.event == NPS_EVENT, string_at(e.properties, NPS_SCORE)),
                               else_=string_at(e.properties, SURVEY_ANSWER))
            e = e.mutate(_v=value).filter(lambda x: x._v.notnull())
            return e.group_by(_p=e.person_id).aggregate(
                **{col: e._v.argmax(e.timestamp.epoch_seconds())})

        self.aggs.join(key, build)
        need = "an answer" if rule.op == "is_set" else _need(rule.op, rule.value)
        win = describe(rule.window)
        return Node("survey_answer", f"latest answer to {rule.question!r} {need}",
                    lambda t: compare_text(t[col], rule.op, rule.value).fill_null(False),
                    lambda t: {"answer": t[col]},
                    lambda o: f"latest answer to {rule.question!r} {win}: "
                              f"{'none' if o['answer'] is None else json.dumps(o['answer'])}; "
                              f"needs {need}")

    # -- payments --------------------------------------------------------------------
    def _lower_plan(self, rule: c.Plan) -> Node:
        col, plans = self.aggs.trait(PLAN_TRAIT), rule.plans()
        need = f"is {plans[0]}" if len(plans) == 1 else f"one of {', '.join(plans)}"
        return Node("plan", f"plan {need}",
                    lambda t: string_at(t[col]).isin(plans).fill_null(False),
                    lambda t: {"plan": string_at(t[col])},
                    lambda o: f"plan is {o['plan'] or 'not set'}; needs {need}")

    def _lower_ontrial(self, rule: c.OnTrial) -> Node:
        last = {n: self.aggs.column(Agg("last_ts", Span(), matcher_key(EventMatcher(event=n))))
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
                    lambda o: "trial started " + _days_ago(self.as_of, o["trial_started"])
                              + ", converted " + _days_ago(self.as_of, o["converted"])
                              + ", cancelled " + _days_ago(self.as_of, o["cancelled"])
                              + "; needs a trial started and not converted or cancelled since")

    def _lower_missedpayments(self, rule: c.MissedPayments) -> Node:
        col = self.aggs.column(Agg("count", span_of(rule.window, self.as_of),
                                   matcher_key(EventMatcher(event=PAYMENT_FAILED))))
        win = describe(rule.window)
        return Node("missed_payments", f"missed at least {rule.at_least} payments {win}",
                    lambda t: t[col] >= rule.at_least, lambda t: {"missed": t[col]},
                    lambda o: f"{PAYMENT_FAILED} {_times(o['missed'])} {win}; "
                              f"needs at least {rule.at_least}")

    # -- profile metrics -------------------------------------------------------------
    def _lower_metric(self, rule: c.Metric) -> Node:
        if rule.metric in c.MILESTONE_METRICS and not self.aggs.vocabulary.milestones:
            raise VocabularyError(f"metric {rule.metric!r} needs milestones in the workspace "
                                  f"vocabulary, which declares none")
        direction = None
        if rule.percentile is not None:
            direction = "top" if rule.percentile.top is not None else "bottom"
        col = self._metric_column(rule.metric, direction)
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

    def _metric_column(self, metric: str, direction: str | None) -> str:
        name = self._metrics.setdefault((metric, direction), f"_m{len(self._metrics)}")
        self.aggs.join("profile", self._build_metrics)
        return name

    def _build_metrics(self, store: Any, project_id: str, person: str | None) -> ir.Table:
        """The requested profile columns and ranks, for every user (ranks need them all)."""
        users = build_profiles(store, project_id, self.aggs.vocabulary, self.as_of,
                               known_at=self.aggs.known_at).users
        out = users.select(_p=users.user_id, **{name: users[m] for (m, d), name
                                                 in self._metrics.items() if d is None})
        for (m, d), name in self._metrics.items():
            if d is None:
                continue
            has = users.filter(users[m].notnull())
            order = has[m].desc() if d == "top" else has[m].asc()
            ranked = has.select(_q=has.user_id, **{
                name: has[m], name + "_r": ibis.rank().over(order_by=order),
                name + "_n": has[m].count().over(ibis.window())})
            out = out.left_join(ranked, out._p == ranked._q).drop("_q")
        return out.filter(out._p == person) if person is not None else out


def compare_metric(col: ir.Value, op: str, value: Any) -> ir.BooleanValue:
    if op == "in":
        return col.isin(value).fill_null(False)
    if op == "not_in":
        return (~col.isin(value)).fill_null(False)
    return _compare_value(col, op, value).fill_null(False)


def rule_span_key(window: Any, as_of: datetime) -> list[Any]:
    span = span_of(window, as_of)
    return [str(span.start), str(span.end), span.first_seen_days]
