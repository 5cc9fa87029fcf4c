"""Per-user aggregates: the columns conditions are lowered to, computed in one pass.

An `Agg` is a value type (hashable), so two conditions — in one segment or in many — that
need the same aggregate share one column. `Aggregates.table` computes them all in a single
`group_by(person_id).aggregate(...)` over the events of the widest window, and left-joins
the result onto every known user (anyone with an event before as_of), so a user with no
events in a window is still a user, with count 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime

import ibis
import ibis.expr.types as ir

from segmently.profile.config import Vocabulary
from segmently.profile.matchers import EventMatcher, any_of
from segmently.profile.jsonvalues import number_at, string_at
from segmently.segments.windows import Span
from segmently.store import Store
from segmently.store.views import latest_traits, resolved_events

SECONDS_PER_DAY = 86_400
ACTIVITY_TYPES = ("track", "page", "screen")  # identify/group/alias manage data
# aggregates that are 0, not unknown, over no events
ZERO_WHEN_EMPTY = frozenset({"count", "distinct_day", "distinct_week", "sum", "distinct"})
FIRST_SEEN, LAST_SEEN = "_first_seen", "_last_seen"


@dataclass(frozen=True, slots=True)
class Agg:
    """fn over the events matching `match` (EventMatcher JSON; None = any event) in `span`.

    fn: count | distinct_day | distinct_week | sum | avg | min | max | distinct (values of
    `prop`) | first_ts | last_ts | latest (text value of `prop` on the latest matching
    event that has it). `activity` restricts to track/page/screen events. `match` is one
    EventMatcher's JSON or a JSON list of them (any of them matches).
    """

    fn: str
    span: Span
    match: str | None = None
    prop: str | None = None
    activity: bool = False


def matcher_key(m: EventMatcher) -> str:
    return m.model_dump_json()


def matchers_key(ms: list[EventMatcher]) -> str:
    """Several matchers as one `Agg.match` (an event matching any of them)."""
    return "[" + ",".join(matcher_key(m) for m in ms) + "]"


# a per-user table from (store, project_id, person or None), keyed by `_p`; its other
# columns have generated names. Conditions that need more than one pass over the events
# (profile metrics, sequences, accounts) register one; the table left-joins it.
JoinBuilder = Callable[[Store, str, "str | None"], ir.Table]


@dataclass
class Aggregates:
    """The registry conditions add to while they are lowered, then the table itself."""

    as_of: datetime
    engine: str
    aggs: dict[Agg, str] = field(default_factory=dict)
    traits: dict[str, str] = field(default_factory=dict)
    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    joins: dict[Hashable, JoinBuilder] = field(default_factory=dict)

    def column(self, agg: Agg) -> str:
        """The column name of an aggregate (generated: no user text in identifiers)."""
        return self.aggs.setdefault(agg, f"_a{len(self.aggs)}")

    def trait(self, name: str) -> str:
        return self.traits.setdefault(name, f"_t{len(self.traits)}")

    def join(self, key: Hashable, build: JoinBuilder) -> None:
        """Register a per-user side table once per key (equal conditions share it)."""
        self.joins.setdefault(key, build)

    # -- building ------------------------------------------------------------------------
    def _widest_start(self) -> datetime | None:
        starts = [a.span.start for a in self.aggs]
        if not starts or any(s is None for s in starts):
            return None
        return min(s for s in starts if s is not None)

    def _needs_first_seen(self) -> bool:
        return any(a.span.first_seen_days is not None for a in self.aggs)

    def _in_span(self, e: ir.Table, span: Span) -> ir.BooleanValue:
        cond: ir.BooleanValue = ibis.literal(True)
        if span.start is not None:
            cond &= e.timestamp >= ibis.literal(span.start, type="timestamp")
        if span.end is not None and span.end < self.as_of:
            cond &= e.timestamp < ibis.literal(span.end, type="timestamp")
        if span.first_seen_days is not None:
            cond &= e.timestamp < e._first + ibis.interval(days=span.first_seen_days)
        return cond

    def _matches(self, e: ir.Table, match: str | None) -> ir.BooleanValue:
        if match is None:
            return ibis.literal(True)
        if match.startswith("["):
            return any_of([EventMatcher.model_validate(m) for m in json.loads(match)], e)
        return EventMatcher.model_validate_json(match).expr(e)

    def _expr(self, e: ir.Table, a: Agg) -> ir.Value:
        cond = self._in_span(e, a.span) & self._matches(e, a.match)
        if a.activity:
            cond &= e.type.isin(ACTIVITY_TYPES)
        day = (e.timestamp.epoch_seconds() / SECONDS_PER_DAY).floor()
        match a.fn:
            case "count":
                return e.count(where=cond)
            case "distinct_day":
                return day.nunique(where=cond)
            case "distinct_week":  # weeks start on Monday (1970-01-01 was a Thursday)
                return ((day + 3) / 7).floor().nunique(where=cond)
            case "first_ts":
                return e.timestamp.min(where=cond)
            case "last_ts":
                return e.timestamp.max(where=cond)
            case "distinct":  # values read as text: 1 and "1" are one value
                return string_at(e.properties, a.prop).nunique(where=cond)
            case "latest":  # ties on the same second: any one of them
                text = string_at(e.properties, a.prop)
                return text.argmax(e.timestamp.epoch_seconds(), where=cond & text.notnull())
        number = number_at(e.properties, a.prop)
        return {"sum": number.sum, "avg": number.mean, "min": number.min,
                "max": number.max}[a.fn](where=cond)

    def table(self, store: Store, project_id: str, person: str | None = None) -> ir.Table:
        """One row per known user: person_id, first/last seen, every aggregate, every trait."""
        e = resolved_events(store, project_id, self.as_of, person)
        if self._needs_first_seen():
            e = e.mutate(_first=e.timestamp.min().over(group_by=e.person_id))
        base = {FIRST_SEEN: e.timestamp.min(), LAST_SEEN: e.timestamp.max()}
        start = self._widest_start()
        if start is None:  # everything in one pass over all history
            aggs = {name: self._expr(e, a) for a, name in self.aggs.items()}
            t = e.group_by("person_id").aggregate(**base, **aggs)
        else:  # known users over all history, aggregates over the widest window only
            users = e.group_by("person_id").aggregate(**base)
            w = e.filter(e.timestamp >= ibis.literal(start, type="timestamp"))
            aggs = {name: self._expr(w, a) for a, name in self.aggs.items()}
            per_user = w.group_by(_p=w.person_id).aggregate(**aggs)
            t = users.left_join(per_user, users.person_id == per_user._p).drop("_p")
        fills = {name: t[name].fill_null(0) for a, name in self.aggs.items()
                 if a.fn in ZERO_WHEN_EMPTY}
        if fills:
            t = t.mutate(**fills)
        t = self._with_traits(t, store, project_id, person)
        for build in self.joins.values():
            side = build(store, project_id, person)
            t = t.left_join(side, t.person_id == side._p).drop("_p")
        return t

    def _with_traits(self, t: ir.Table, store: Store, project_id: str,
                     person: str | None) -> ir.Table:
        if not self.traits:
            return t
        tr = latest_traits(store, project_id, "user", self.as_of)
        tr = tr.filter(tr.trait.isin(list(self.traits)))
        if person is not None:
            tr = tr.filter(tr.entity_id == person)
        wide = tr.group_by(_e="entity_id").aggregate(
            **{col: tr.value.max(where=tr.trait == name) for name, col in self.traits.items()})
        return t.left_join(wide, t.person_id == wide._e).drop("_e")
