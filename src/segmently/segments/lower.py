"""Lowering: every condition becomes aggregate columns plus a boolean over them.

`Lowerer.lower(rule)` walks a rule tree, registers the aggregates its conditions need with
the shared `Aggregates` (identical ones across segments are one column), and returns a
`Node` tree. Once the per-user table is built, `node.truth(t)` is the rule as a boolean
column and `node.observed(t)` the values behind it, which is what explain shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from segmently.profile.jsonvalues import instant_at
from segmently.profile.matchers import EventMatcher, compare
from segmently.segments import rules as r
from segmently.segments.aggregates import LAST_SEEN, Agg, Aggregates, matcher_key
from segmently.segments.errors import SegmentReferenceError
from segmently.segments.lower_product import ProductConditions, in_span
from segmently.segments.nodes import (
    _OP_WORDS,
    Node,
    _and,
    _compare_value,
    _days_ago,
    _event_label,
    _times,
)
from segmently.segments.windows import Span, describe, quantity, span_of


class Lowerer(ProductConditions):
    """Lowers rules against one evaluation instant, sharing aggregates between them."""

    def __init__(self, aggregates: Aggregates, segments: Mapping[str, r.Rule] | None = None):
        self.aggs = aggregates
        self.as_of = aggregates.as_of
        self.segments = dict(segments or {})
        self._segment_nodes: dict[str, Node] = {}
        self._stack: list[str] = []
        self._metrics = {}
        self._joined = {}

    # -- segments and references -----------------------------------------------------
    def segment(self, name: str) -> Node:
        """The lowered tree of a named segment (once per name; cycles are errors)."""
        if name in self._stack:
            cycle = " -> ".join([*self._stack[self._stack.index(name):], name])
            raise SegmentReferenceError(f"segment reference cycle: {cycle}")
        if name not in self._segment_nodes:
            if name not in self.segments:
                where = f" (in segment {self._stack[-1]!r})" if self._stack else ""
                raise SegmentReferenceError(f"unknown segment {name!r}{where}; known: "
                                            f"{', '.join(sorted(self.segments)) or 'none'}")
            self._stack.append(name)
            try:
                self._segment_nodes[name] = self.lower(self.segments[name])
            finally:
                self._stack.pop()
        return self._segment_nodes[name]

    def lower(self, rule: r.Rule) -> Node:
        method = getattr(self, f"_lower_{type(rule).__name__.lower().rstrip('_')}")
        return method(rule)

    # -- groups ------------------------------------------------------------------------
    def _lower_all(self, rule: r.All) -> Node:
        kids = [self.lower(x) for x in rule.all]
        label = f"all of {len(kids)}" if kids else "all of none (always true)"
        return Node("all", label, lambda t: _and([k.truth(t) for k in kids], True),
                    children=kids)

    def _lower_any(self, rule: r.Any_) -> Node:
        kids = [self.lower(x) for x in rule.any]
        label = f"any of {len(kids)}" if kids else "any of none (never true)"
        return Node("any", label, lambda t: _and([k.truth(t) for k in kids], False),
                    children=kids)

    def _lower_not(self, rule: r.Not) -> Node:
        kid = self.lower(rule.not_)
        return Node("not", "not", lambda t: ~kid.truth(t), children=[kid])

    def _lower_insegment(self, rule: r.InSegment) -> Node:
        kid = self.segment(rule.segment)
        return Node("in_segment", f"in segment {rule.segment}", kid.truth, children=[kid])

    def _lower_notinsegment(self, rule: r.NotInSegment) -> Node:
        kid = self.segment(rule.segment)
        return Node("not_in_segment", f"not in segment {rule.segment}",
                    lambda t: ~kid.truth(t), children=[kid])

    # -- conditions on traits --------------------------------------------------------
    def _lower_propertycondition(self, c: r.PropertyCondition) -> Node:
        col = self.aggs.trait(c.property)

        def truth(t: ir.Table) -> ir.BooleanValue:
            text = t[col]  # the trait's JSON value as text
            if c.op in ("within_last_days", "more_than_days_ago"):
                bound = (self.as_of - timedelta(days=int(c.value))).strftime("%Y-%m-%d %H:%M:%S")
                now = self.as_of.strftime("%Y-%m-%d %H:%M:%S")
                at = instant_at(text)
                cond = ((at >= bound) & (at <= now)) if c.op == "within_last_days" else (at < bound)
                return cond.fill_null(False)
            if c.op == "is_not_set":  # a missing trait is not set
                return ~compare(text, None, "is_set", None).fill_null(False)
            return compare(text, None, c.op, c.value).fill_null(False)

        shown = "" if c.value is None else f" {json.dumps(c.value)}"
        return Node("property", f"{c.property} {c.op}{shown}", truth,
                    lambda t: {"value": t[col]},
                    lambda o: f"{c.property} is "
                              f"{'not set' if o['value'] is None else o['value']}; "
                              f"needs {c.op.replace('_', ' ')}{shown}")

    # -- conditions on events --------------------------------------------------------
    def _count(self, c: r._Events, span: Span) -> str:
        m = EventMatcher(event=c.event, where=c.where)
        return self.aggs.column(Agg("count", span, matcher_key(m)))

    def _lower_performed(self, c: r.Performed) -> Node:
        col = self._count(c, span_of(c.window, self.as_of))
        low, high = c.bounds()
        if c.exactly is not None:
            need = f"exactly {c.exactly}"
        elif high is None:
            need = f"at least {low}"
        elif c.at_least is None:
            need = f"at most {high}"
        else:
            need = f"between {low} and {high}"
        win = describe(c.window)

        def truth(t: ir.Table) -> ir.BooleanValue:
            cond = t[col] >= low
            return cond if high is None else cond & (t[col] <= high)

        return Node("performed", f"{_event_label(c)} {need} times {win}", truth,
                    lambda t: {"count": t[col]},
                    lambda o: f"{_event_label(c)} {_times(o['count'])} {win}; needs {need}")

    def _lower_notperformed(self, c: r.NotPerformed) -> Node:
        col = self._count(c, span_of(c.window, self.as_of))
        win = describe(c.window)
        return Node("not_performed", f"did not perform {_event_label(c)} {win}",
                    lambda t: t[col] == 0, lambda t: {"count": t[col]},
                    lambda o: f"{_event_label(c)} {_times(o['count'])} {win}; needs none")

    def _lower_active(self, c: r.Active) -> Node:
        fn = "distinct_day" if c.unit == "day" else "distinct_week"
        col = self.aggs.column(Agg(fn, span_of(c.window, self.as_of), activity=True))
        win = describe(c.window)
        return Node("active", f"active on at least {c.at_least} {c.unit}s {win}",
                    lambda t: t[col] >= c.at_least, lambda t: {c.unit + "s": t[col]},
                    lambda o: f"active on {o[c.unit + 's']} distinct {c.unit}s {win}; "
                              f"needs at least {c.at_least}")

    def _lower_aggregate(self, c: r.Aggregate) -> Node:
        m = EventMatcher(event=c.event, where=c.where)
        fn = "distinct" if c.agg == "distinct_count" else c.agg
        col = self.aggs.column(Agg(fn, span_of(c.window, self.as_of), matcher_key(m), c.property))
        win = describe(c.window)
        value = list(c.value) if isinstance(c.value, tuple) else c.value
        need = f"{_OP_WORDS[c.op]} {value[0]} and {value[1]}" if c.op == "between" else \
            f"{_OP_WORDS[c.op]} {value}"
        what = f"{c.agg} of {c.property} over {_event_label(c)} {win}"
        return Node("aggregate", f"{what} {need}",
                    lambda t: _compare_value(t[col], c.op, value).fill_null(False),
                    lambda t: {"value": t[col]},
                    lambda o: f"{what} is {'unknown (no events)' if o['value'] is None else o['value']}; needs {need}")

    def _lower_firstperformed(self, c: r.FirstPerformed) -> Node:
        m = EventMatcher(event=c.event, where=c.where)
        col = self.aggs.column(Agg("first_ts", Span(), matcher_key(m)))
        span = span_of(c.window, self.as_of)
        win = describe(c.window)
        return Node("first_performed", f"first {_event_label(c)} {win}",
                    lambda t: in_span(t[col], span, t._first_seen),
                    lambda t: {"first": t[col]},
                    lambda o: f"first {_event_label(c)}: "
                              f"{o['first'].isoformat(sep=' ', timespec='seconds') if o['first'] else 'never'}; "
                              f"needs it {win}")

    def _lower_lastseen(self, c: r.LastSeen) -> Node:
        days = c.more_than_days_ago if c.more_than_days_ago is not None else c.within_last_days
        bound = ibis.literal(self.as_of - timedelta(days=days), type="timestamp")
        older = c.more_than_days_ago is not None
        span = quantity(days, "days")
        need = f"more than {span} ago" if older else f"within the last {span}"
        return Node("last_seen", f"last seen {need}",
                    lambda t: (t[LAST_SEEN] < bound) if older else (t[LAST_SEEN] >= bound),
                    lambda t: {"last_seen": t[LAST_SEEN]},
                    lambda o: f"last seen {_days_ago(self.as_of, o['last_seen'])}; needs {need}")

    def _change(self, c: r._Change) -> tuple[str, str]:
        split = self.as_of - timedelta(days=c.recent_days)
        earlier = Span(start=split - timedelta(days=c.earlier_days), end=split)
        return self._count(c, earlier), self._count(c, Span(start=split))

    def _lower_stopped(self, c: r.Stopped) -> Node:
        early, recent = self._change(c)
        return self._change_node(c, "stopped", early, recent,
                                 lambda t: (t[early] > 0) & (t[recent] == 0))

    def _lower_started(self, c: r.Started) -> Node:
        early, recent = self._change(c)
        return self._change_node(c, "started", early, recent,
                                 lambda t: (t[early] == 0) & (t[recent] > 0))

    def _change_node(self, c: r._Change, kind: str, early: str, recent: str,
                     truth: Callable[[ir.Table], ir.BooleanValue]) -> Node:
        name = _event_label(c)
        needs = (f"some in the {c.earlier_days} days before, none in the last {c.recent_days}"
                 if kind == "stopped" else
                 f"none in the {c.earlier_days} days before, some in the last {c.recent_days}")
        return Node(kind, f"{kind} {name} ({needs})", truth,
                    lambda t: {"earlier": t[early], "recent": t[recent]},
                    lambda o: f"{name} {_times(o['earlier'])} in the {c.earlier_days} days "
                              f"before the last {c.recent_days}, {_times(o['recent'])} in the "
                              f"last {c.recent_days} days; needs {needs}")

    def _lower_regularly(self, c: r.Regularly) -> Node:
        step = timedelta(days=1 if c.period == "day" else 7)
        cols = [self._count(c, Span(start=self.as_of - (i + 1) * step,
                                    end=self.as_of - i * step)) for i in range(c.of_last)]

        def periods(t: ir.Table) -> ir.IntegerValue:
            out: ir.IntegerValue = ibis.literal(0)
            for col in cols:
                out = out + ibis.cases((t[col] >= c.at_least, 1), else_=0)
            return out

        need = (f"at least {_times(c.at_least)} a {c.period} in at least {c.in_at_least} of "
                f"the last {c.of_last} {c.period}s")
        return Node("regularly", f"{_event_label(c)} {need}", lambda t: periods(t) >= c.in_at_least,
                    lambda t: {"periods": periods(t)},
                    lambda o: f"{_event_label(c)} at least {_times(c.at_least)} in "
                              f"{o['periods']} of the last {c.of_last} {c.period}s; "
                              f"needs {c.in_at_least}")
