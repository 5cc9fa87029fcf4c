"""Per-user aggregates: the columns conditions are lowered to, computed in one pass.

An `Agg` is a value type (hashable), so two conditions — in one segment or in many — that
need the same aggregate share one column. `Aggregates.table` computes them all in a single
`group_by(person_id).aggregate(...)` over the events of the widest window, and left-joins
the result onto every known user (anyone with an event before as_of), so a user with no
events in a window is still a user, with count 0.

The kinds' lowerings (`lower.py`, `kinds/`) register the aggregates and side tables;
`evaluate.py` and `explain.py` build the table their nodes read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import ibis
import ibis.expr.types as ir

from segmently.profile.config import Vocabulary
from segmently.profile.jsonvalues import number_at, string_at
from segmently.profile.matchers import EventMatcher, any_of
from segmently.segments.windows import Span
from segmently.store import Store
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.rollups import day_of
from segmently.store.views import (
    Persons,
    has_rollups,
    latest_traits,
    resolved_daily_rows,
    resolved_events,
)

# aggregates that are 0, not unknown, over no events
ZERO_WHEN_EMPTY = frozenset({"count", "distinct_day", "distinct_week", "sum", "distinct"})
DAILY_FNS = frozenset({"count", "distinct_day", "distinct_week", "first_ts", "last_ts"})
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


@lru_cache(maxsize=1024)
def _matchers(match: str) -> tuple[EventMatcher, ...]:
    if match.startswith("["):
        return tuple(EventMatcher.model_validate(m) for m in json.loads(match))
    return (EventMatcher.model_validate_json(match),)


def _by_name_only(match: str | None) -> bool:
    """Events picked by name alone (no property filter): what daily rollups can count."""
    return match is None or not any(m.where for m in _matchers(match))


def _event_names(aggs: Iterable[Agg]) -> set[str] | None:
    """Every event name the aggregates can match; None when one matches any event."""
    names: set[str] = set()
    for a in aggs:
        if a.match is None:
            return None
        names.update(m.event for m in _matchers(a.match))
    return names


def _widest_start(aggs: Iterable[Agg]) -> datetime | None:
    starts = [a.span.start for a in aggs]
    if not starts or any(s is None for s in starts):
        return None
    return min(s for s in starts if s is not None)


def _distinct_days(day: ir.NumericValue, fn: str, cond: ir.BooleanValue) -> ir.IntegerValue:
    if fn == "distinct_day":
        return day.nunique(where=cond)
    return ((day + 3) / 7).floor().nunique(where=cond)  # weeks start on Monday (1970-01-01
    # was a Thursday)


def matcher_key(m: EventMatcher) -> str:
    return m.model_dump_json()


def matchers_key(ms: list[EventMatcher]) -> str:
    """Several matchers as one `Agg.match` (an event matching any of them)."""
    return "[" + ",".join(matcher_key(m) for m in ms) + "]"


# a per-user table from (store, project_id, person, persons or None), keyed by `_p`; its other
# columns have generated names. Conditions that need more than one pass over the events
# (profile metrics, sequences, accounts) register one; the table left-joins it.
JoinBuilder = Callable[[Store, str, Persons], ir.Table]


@dataclass
class Aggregates:
    """The registry conditions add to while they are lowered, then the table itself."""

    as_of: datetime
    aggs: dict[Agg, str] = field(default_factory=dict)
    traits: dict[str, str] = field(default_factory=dict)
    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    joins: dict[Hashable, JoinBuilder] = field(default_factory=dict)
    use_rollups: bool = True  # False: every aggregate from raw events (tests compare both)
    known_at: datetime | None = None  # what had been received (None: everything)

    def fresh(self) -> Aggregates:
        """An empty registry at the same two instants, vocabulary and mode (the inner
        rule of an account condition runs over every user)."""
        return Aggregates(self.as_of, vocabulary=self.vocabulary,
                          use_rollups=self.use_rollups, known_at=self.known_at)

    def column(self, agg: Agg) -> str:
        """The column name of an aggregate (generated: no user text in identifiers)."""
        return self.aggs.setdefault(agg, f"_a{len(self.aggs)}")

    def trait(self, name: str) -> str:
        return self.traits.setdefault(name, f"_t{len(self.traits)}")

    def join(self, key: Hashable, build: JoinBuilder) -> None:
        """Register a per-user side table once per key (equal conditions share it)."""
        self.joins.setdefault(key, build)

    # -- building ------------------------------------------------------------------------
    def _needs_first_seen(self, aggs: Iterable[Agg]) -> bool:
        return any(a.span.first_seen_days is not None for a in aggs)

    def _in_span(self, ts: ir.TimestampValue, first: ir.Value | None,
                 span: Span) -> ir.BooleanValue:
        cond: ir.BooleanValue = ibis.literal(True)
        if span.start is not None:
            cond &= ts >= ibis.literal(span.start, type="timestamp")
        if span.end is not None and span.end < self.as_of:
            cond &= ts < ibis.literal(span.end, type="timestamp")
        if span.first_seen_days is not None and first is not None:
            cond &= ts < first + ibis.interval(days=span.first_seen_days)
        return cond

    def _matches(self, e: ir.Table, match: str | None) -> ir.BooleanValue:
        if match is None:
            return ibis.literal(True)
        return any_of(_matchers(match), e)

    def _cond(self, e: ir.Table, a: Agg, ts: ir.TimestampValue) -> ir.BooleanValue:
        first = e._first if a.span.first_seen_days is not None else None
        cond = self._in_span(ts, first, a.span) & self._matches(e, a.match)
        if a.activity:
            cond &= e.type.isin(ACTIVITY_TYPES)
        return cond

    def _expr(self, e: ir.Table, a: Agg) -> ir.Value:
        """An aggregate over raw events (one row per event)."""
        cond = self._cond(e, a, e.timestamp)
        # JSON is read only on the rows the aggregate counts: an engine computes an
        # aggregate's input on every row before its FILTER (over all events, DuckDB spent
        # ~15% of the library's CPU reading NPS scores out of every event's properties)
        props = ibis.cases((cond, e.properties), else_=ibis.null("string"))
        day = day_of(e.timestamp)
        match a.fn:
            case "count":
                return e.count(where=cond)
            case "distinct_day" | "distinct_week":
                return _distinct_days(day, a.fn, cond)
            case "first_ts":
                return e.timestamp.min(where=cond)
            case "last_ts":
                return e.timestamp.max(where=cond)
            case "distinct":  # values read as text: 1 and "1" are one value
                return string_at(props, a.prop).nunique(where=cond)
            case "latest":  # ties on the same second: any one of them
                text = string_at(props, a.prop)
                return text.argmax(e.timestamp.epoch_seconds(), where=cond & text.notnull())
        number = number_at(props, a.prop)
        return {"sum": number.sum, "avg": number.mean, "min": number.min,
                "max": number.max}[a.fn](where=cond)

    def _daily_expr(self, d: ir.Table, a: Agg) -> ir.Value:
        """The same aggregate over daily rows (store/rollups.py): a row stands for `n`
        events of one day, all on the same side of every window boundary."""
        cond = self._cond(d, a, d.first_ts)
        match a.fn:
            case "count":
                return d.n.sum(where=cond)
            case "distinct_day" | "distinct_week":
                return _distinct_days(d.day, a.fn, cond)
            case "first_ts":
                return d.first_ts.min(where=cond)
        return d.last_ts.max(where=cond)

    def table(self, store: Store, project_id: str, person: Persons = None) -> ir.Table:
        """One row per known user: person_id, first/last seen, every aggregate, every trait.

        Aggregates that daily rollups can answer (counts, distinct days and weeks, first and
        last times of events picked by name, in windows fixed to as_of) are computed in one
        pass over the rollup rows; the others in one pass over the raw events of their
        widest window and names, joined on."""
        rolled = self.use_rollups and has_rollups(store)
        daily = [a for a in self.aggs if rolled and a.fn in DAILY_FNS
                 and a.span.first_seen_days is None and _by_name_only(a.match)]
        raw = [a for a in self.aggs if a not in daily]
        if daily or (rolled and not raw):  # known users come from the rollups too
            t = self._daily_table(store, project_id, person, daily)
            if raw:
                t = self._join_raw(t, store, project_id, person, raw)
        else:
            t = self._raw_table(store, project_id, person, raw)
        fills = {name: t[name].fill_null(0) for a, name in self.aggs.items()
                 if a.fn in ZERO_WHEN_EMPTY}
        if fills:
            t = t.mutate(**fills)
        t = self._with_traits(t, store, project_id, person)
        for build in self.joins.values():
            side = build(store, project_id, person)
            t = t.left_join(side, t.person_id == side._p).drop("_p")
        return t

    def _daily_table(self, store: Store, project_id: str, person: Persons,
                     daily: list[Agg]) -> ir.Table:
        bounds = {b for a in daily for b in (a.span.start, a.span.end) if b is not None}
        d = resolved_daily_rows(store, project_id, self.as_of, bounds, person, self.known_at)
        return d.group_by("person_id").aggregate(
            **{FIRST_SEEN: d.first_ts.min(), LAST_SEEN: d.last_ts.max()},
            **{self.aggs[a]: self._daily_expr(d, a) for a in daily})

    def _raw_table(self, store: Store, project_id: str, person: Persons,
                   raw: list[Agg]) -> ir.Table:
        """Everything from raw events: known users over all history, aggregates over the
        widest window only."""
        e = resolved_events(store, project_id, self.as_of, person, self.known_at)
        if self._needs_first_seen(raw):
            e = e.mutate(_first=e.timestamp.min().over(group_by=e.person_id))
        base = {FIRST_SEEN: e.timestamp.min(), LAST_SEEN: e.timestamp.max()}
        start = _widest_start(raw)
        if start is None:  # everything in one pass over all history
            return e.group_by("person_id").aggregate(
                **base, **{self.aggs[a]: self._expr(e, a) for a in raw})
        users = e.group_by("person_id").aggregate(**base)
        side = self._raw_aggregates(e, raw, start)
        return users.left_join(side, users.person_id == side._p).drop("_p")

    def _join_raw(self, t: ir.Table, store: Store, project_id: str, person: Persons,
                  raw: list[Agg]) -> ir.Table:
        """The aggregates rollups cannot answer, over the raw events they can match."""
        e = resolved_events(store, project_id, self.as_of, person, self.known_at)
        names = _event_names(raw)
        if names is not None:
            e = e.filter(e.event.isin(sorted(names)))
        if self._needs_first_seen(raw):
            seen = t.select(_q=t.person_id, _first=t[FIRST_SEEN])
            e = e.inner_join(seen, e.person_id == seen._q).drop("_q")
        side = self._raw_aggregates(e, raw, _widest_start(raw))
        return t.left_join(side, t.person_id == side._p).drop("_p")

    def _raw_aggregates(self, e: ir.Table, raw: list[Agg], start: datetime | None) -> ir.Table:
        if start is not None:
            e = e.filter(e.timestamp >= ibis.literal(start, type="timestamp"))
        return e.group_by(_p=e.person_id).aggregate(
            **{self.aggs[a]: self._expr(e, a) for a in raw})

    def _with_traits(self, t: ir.Table, store: Store, project_id: str,
                     person: Persons) -> ir.Table:
        if not self.traits:
            return t
        tr = latest_traits(store, project_id, "user", self.as_of, self.known_at, person,
                           list(self.traits))
        wide = tr.group_by(_e="entity_id").aggregate(
            **{col: tr.value.max(where=tr.trait == name) for name, col in self.traits.items()})
        return t.left_join(wide, t.person_id == wide._e).drop("_e")
