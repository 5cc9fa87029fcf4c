"""Condition kinds on traits and on events counted per user: property, performed,
not_performed, active, aggregate, first_performed, last_seen, stopped, started, regularly.

Each lowers to `Agg`s of the one pass (aggregates.py: counts, distinct days, first
timestamps, property aggregates; identical ones across segments share a column) plus a
boolean over them; the Node's sentence is what explain shows. Registered at the bottom.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

import ibis
import ibis.expr.types as ir
from pydantic import Field, model_validator

from segmently.profile.jsonvalues import instant_at
from segmently.profile.matchers import EventMatcher, Finite, PropertyFilter, Scalar, Values, compare
from segmently.segments.aggregates import LAST_SEEN, Agg, matcher_key
from segmently.segments.conditions import (
    CompareOp,
    Condition,
    Count,
    EventCondition,
    PropertyName,
    PropertyOp,
)
from segmently.segments.nodes import (
    _OP_WORDS,
    Node,
    _compare_value,
    _days_ago,
    _event_label,
    _times,
)
from segmently.segments.registry import register
from segmently.segments.spans import in_span
from segmently.segments.windows import Span, Window, describe, quantity, span_of

if TYPE_CHECKING:
    from segmently.segments.lower import Lowerer


class PropertyCondition(Condition):
    """The user's latest value of a trait (see store.views.latest_traits).

    `within_last_days` / `more_than_days_ago` read the trait as an ISO date or timestamp in
    UTC ("2026-03-01", "2026-03-01T10:00:00Z"; an offset other than Z is not applied) and
    take an integer number of days as value. Values are read as the type of the rule's
    value: a number or numeric string for a number, text for a string.
    """

    kind: Literal["property"]
    property: PropertyName
    op: PropertyOp = "eq"
    value: Scalar | Values | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> PropertyCondition:
        if self.op in ("within_last_days", "more_than_days_ago"):
            if not isinstance(self.value, int) or isinstance(self.value, bool) or self.value < 0:
                raise ValueError(f"op {self.op!r} needs a whole number of days as value")
            return self
        PropertyFilter(property=self.property, op=self.op, value=self.value)  # type: ignore[arg-type]  # same checks
        return self


class Performed(EventCondition):
    """Performed the event (passing every `where` filter) a number of times in the window.

    at_least / at_most combine into "between"; `exactly` stands alone; none = at least once.
    """

    kind: Literal["performed"]
    window: Window | None = None
    at_least: Count | None = None
    at_most: Count | None = None
    exactly: Count | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Performed:
        if self.exactly is not None and (self.at_least is not None or self.at_most is not None):
            raise ValueError("use either exactly or at_least/at_most, not both")
        if self.at_least is not None and self.at_most is not None and \
                self.at_least > self.at_most:
            raise ValueError("at_least must not exceed at_most")
        return self

    def bounds(self) -> tuple[int, int | None]:
        """(minimum, maximum or None) number of times."""
        if self.exactly is not None:
            return self.exactly, self.exactly
        if self.at_least is None and self.at_most is None:
            return 1, None
        return self.at_least or 0, self.at_most


class NotPerformed(EventCondition):
    kind: Literal["not_performed"]
    window: Window | None = None


class Active(Condition):
    """Active (any track, page or screen event) on at least N distinct UTC days or
    Monday-based weeks in the window."""

    kind: Literal["active"]
    unit: Literal["day", "week"] = "day"
    at_least: Count = 1
    window: Window | None = None


class Aggregate(EventCondition):
    """sum / avg / min / max / distinct_count of a numeric event property in the window.

    Over no matching events sum and distinct_count are 0; avg, min and max are unknown,
    which makes the condition false.
    """

    kind: Literal["aggregate"]
    property: PropertyName
    agg: Literal["sum", "avg", "min", "max", "distinct_count"]
    op: CompareOp = "ge"
    value: Finite | tuple[Finite, Finite]
    window: Window | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Aggregate:
        if (self.op == "between") != isinstance(self.value, tuple):
            raise ValueError("op 'between' needs [low, high]; other ops need one number")
        return self


class FirstPerformed(EventCondition):
    """The user's first matching event ever falls inside the window."""

    kind: Literal["first_performed"]
    window: Window


class LastSeen(Condition):
    """The user's latest event (of any type) is older than N days, or within the last N."""

    kind: Literal["last_seen"]
    more_than_days_ago: Count | None = None
    within_last_days: Count | None = None

    @model_validator(mode="after")
    def _one(self) -> LastSeen:
        if (self.more_than_days_ago is None) == (self.within_last_days is None):
            raise ValueError("give exactly one of more_than_days_ago, within_last_days")
        return self


class _Change(EventCondition):
    recent_days: int = Field(ge=1, le=100_000)
    earlier_days: int = Field(ge=1, le=100_000)


class Stopped(_Change):
    """Performed the event in the `earlier_days` before the recent window, and not in the
    last `recent_days`."""

    kind: Literal["stopped"]


class Started(_Change):
    """Performed the event in the last `recent_days`, and not in the `earlier_days` before."""

    kind: Literal["started"]


class Regularly(EventCondition):
    """At least `at_least` times per period in at least `in_at_least` of the last `of_last`
    periods (periods end at as_of: the last one is [as_of - 1 period, as_of))."""

    kind: Literal["regularly"]
    at_least: int = Field(default=1, ge=1, le=1_000_000_000)
    period: Literal["day", "week"] = "week"
    in_at_least: int = Field(ge=1, le=60)
    of_last: int = Field(ge=1, le=60)

    @model_validator(mode="after")
    def _k_of_m(self) -> Regularly:
        if self.in_at_least > self.of_last:
            raise ValueError("in_at_least must not exceed of_last")
        return self


# -- lowering ------------------------------------------------------------------------------
def lower_property(lw: Lowerer, c: PropertyCondition) -> Node:
    col = lw.aggs.trait(c.property)
    as_of = lw.as_of

    def truth(t: ir.Table) -> ir.BooleanValue:
        text = t[col]  # the trait's JSON value as text
        if c.op in ("within_last_days", "more_than_days_ago"):
            days = int(c.value)  # type: ignore[arg-type]  # checked by the model
            bound = (as_of - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")
            now = as_of.strftime("%Y-%m-%d %H:%M:%S")
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


def lower_performed(lw: Lowerer, c: Performed) -> Node:
    col = lw.count(c, span_of(c.window, lw.as_of))
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


def lower_not_performed(lw: Lowerer, c: NotPerformed) -> Node:
    col = lw.count(c, span_of(c.window, lw.as_of))
    win = describe(c.window)
    return Node("not_performed", f"did not perform {_event_label(c)} {win}",
                lambda t: t[col] == 0, lambda t: {"count": t[col]},
                lambda o: f"{_event_label(c)} {_times(o['count'])} {win}; needs none")


def lower_active(lw: Lowerer, c: Active) -> Node:
    fn = "distinct_day" if c.unit == "day" else "distinct_week"
    col = lw.aggs.column(Agg(fn, span_of(c.window, lw.as_of), activity=True))
    win = describe(c.window)
    return Node("active", f"active on at least {c.at_least} {c.unit}s {win}",
                lambda t: t[col] >= c.at_least, lambda t: {c.unit + "s": t[col]},
                lambda o: f"active on {o[c.unit + 's']} distinct {c.unit}s {win}; "
                          f"needs at least {c.at_least}")


def lower_aggregate(lw: Lowerer, c: Aggregate) -> Node:
    m = EventMatcher(event=c.event, where=c.where)
    fn = "distinct" if c.agg == "distinct_count" else c.agg
    col = lw.aggs.column(Agg(fn, span_of(c.window, lw.as_of), matcher_key(m), c.property))
    win = describe(c.window)
    value = list(c.value) if isinstance(c.value, tuple) else c.value
    need = f"{_OP_WORDS[c.op]} {value[0]} and {value[1]}" if isinstance(value, list) else \
        f"{_OP_WORDS[c.op]} {value}"
    what = f"{c.agg} of {c.property} over {_event_label(c)} {win}"
    return Node("aggregate", f"{what} {need}",
                lambda t: _compare_value(t[col], c.op, value).fill_null(False),
                lambda t: {"value": t[col]},
                lambda o: f"{what} is "
                          f"{'unknown (no events)' if o['value'] is None else o['value']}; "
                          f"needs {need}")


def lower_first_performed(lw: Lowerer, c: FirstPerformed) -> Node:
    m = EventMatcher(event=c.event, where=c.where)
    col = lw.aggs.column(Agg("first_ts", Span(), matcher_key(m)))
    span = span_of(c.window, lw.as_of)
    win = describe(c.window)
    return Node("first_performed", f"first {_event_label(c)} {win}",
                lambda t: in_span(t[col], span, t._first_seen),
                lambda t: {"first": t[col]},
                lambda o: f"first {_event_label(c)}: "
                          + (o["first"].isoformat(sep=" ", timespec="seconds")
                             if o["first"] else "never")
                          + f"; needs it {win}")


def lower_last_seen(lw: Lowerer, c: LastSeen) -> Node:
    older = c.more_than_days_ago is not None
    days = int(c.more_than_days_ago if c.more_than_days_ago is not None
               else c.within_last_days or 0)
    bound = ibis.literal(lw.as_of - timedelta(days=days), type="timestamp")
    span = quantity(days, "days")
    need = f"more than {span} ago" if older else f"within the last {span}"
    as_of = lw.as_of
    return Node("last_seen", f"last seen {need}",
                lambda t: (t[LAST_SEEN] < bound) if older else (t[LAST_SEEN] >= bound),
                lambda t: {"last_seen": t[LAST_SEEN]},
                lambda o: f"last seen {_days_ago(as_of, o['last_seen'])}; needs {need}")


def _change(lw: Lowerer, c: _Change, kind: str,
            truth: Callable[[str, str], Callable[[ir.Table], ir.BooleanValue]]) -> Node:
    split = lw.as_of - timedelta(days=c.recent_days)
    earlier = Span(start=split - timedelta(days=c.earlier_days), end=split)
    early, recent = lw.count(c, earlier), lw.count(c, Span(start=split))
    name = _event_label(c)
    needs = (f"some in the {c.earlier_days} days before, none in the last {c.recent_days}"
             if kind == "stopped" else
             f"none in the {c.earlier_days} days before, some in the last {c.recent_days}")
    return Node(kind, f"{kind} {name} ({needs})", truth(early, recent),
                lambda t: {"earlier": t[early], "recent": t[recent]},
                lambda o: f"{name} {_times(o['earlier'])} in the {c.earlier_days} days "
                          f"before the last {c.recent_days}, {_times(o['recent'])} in the "
                          f"last {c.recent_days} days; needs {needs}")


def lower_stopped(lw: Lowerer, c: Stopped) -> Node:
    return _change(lw, c, "stopped", lambda early, recent:
                   lambda t: (t[early] > 0) & (t[recent] == 0))


def lower_started(lw: Lowerer, c: Started) -> Node:
    return _change(lw, c, "started", lambda early, recent:
                   lambda t: (t[early] == 0) & (t[recent] > 0))


def lower_regularly(lw: Lowerer, c: Regularly) -> Node:
    step = timedelta(days=1 if c.period == "day" else 7)
    cols = [lw.count(c, Span(start=lw.as_of - (i + 1) * step, end=lw.as_of - i * step))
            for i in range(c.of_last)]

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


# -- registration --------------------------------------------------------------------------
register(PropertyCondition, lower_property, family="events",
         fields="`property`, `op`, `value`",
         true_when="the user's latest trait compares: `eq ne in not_in contains regex gt ge "
                   "lt le between is_set is_not_set`; ISO dates with `within_last_days` / "
                   "`more_than_days_ago` (relative to as_of)",
         example={"kind": "property", "property": "seats", "op": "gt", "value": 0})
register(Performed, lower_performed, family="events",
         fields="`event`, `where`, `at_least` / `at_most` / `exactly`, `window`",
         true_when="the event (passing every `where` property filter) happened that many "
                   "times in the window",
         example={"kind": "performed", "event": "purchase",
                  "where": [{"property": "amount", "op": "ge", "value": 1}]})
register(NotPerformed, lower_not_performed, family="events",
         fields="`event`, `where`, `window`",
         true_when="the event (passing every `where` filter) did not happen in the window",
         example={"kind": "not_performed", "event": "purchase",
                  "where": [{"property": "plan", "op": "regex", "value": "^[a-z]+$"}]})
register(Active, lower_active, family="events",
         fields="`at_least`, `unit: day\\|week`, `window`",
         true_when="track/page/screen events on at least N distinct days (weeks)",
         example={"kind": "active", "at_least": 1, "window": {"last": 30}})
register(Aggregate, lower_aggregate, family="events",
         fields="`event`, `property`, `agg: sum\\|avg\\|min\\|max\\|distinct_count`, `op`, "
                "`value`, `window`",
         true_when="the aggregate of the property over the matching events compares",
         example={"kind": "aggregate", "event": "purchase", "property": "amount",
                  "agg": "sum", "op": "ge", "value": 1},
         widgets={"property": {"widget": "event_property"}})
register(FirstPerformed, lower_first_performed, family="events",
         fields="`event`, `where`, `window`",
         true_when="the user's first such event ever falls inside the window",
         example={"kind": "first_performed", "event": "purchase", "window": {"last": 7}})
register(LastSeen, lower_last_seen, family="events",
         fields="`more_than_days_ago` or `within_last_days`",
         true_when="the latest event of any kind is that old",
         example={"kind": "last_seen", "within_last_days": 7})
register(Stopped, lower_stopped, family="events",
         fields="`event`, `where`, `recent_days`, `earlier_days`",
         true_when="some in the `earlier_days` before the last `recent_days`, none in them",
         example={"kind": "stopped", "event": "purchase", "recent_days": 1,
                  "earlier_days": 7})
register(Started, lower_started, family="events",
         fields="`event`, `where`, `recent_days`, `earlier_days`",
         true_when="none in the `earlier_days` before the last `recent_days`, some in them",
         example={"kind": "started", "event": "purchase", "recent_days": 7,
                  "earlier_days": 7})
register(Regularly, lower_regularly, family="events",
         fields="`event`, `at_least`, `period: day\\|week`, `in_at_least`, `of_last`",
         true_when="at least N times a period in K of the last M periods",
         example={"kind": "regularly", "event": "purchase", "in_at_least": 1, "of_last": 2})
