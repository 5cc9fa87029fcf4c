"""Read-time resolution of the append-only tables: identities, latest traits, users.

All of it is Ibis, so it runs on whatever engine holds the store. Two instants bound what
counts: `as_of`, what had happened (event time: `timestamp < as_of`), and `known_at`, what
had been received (knowledge time: `received_at <= known_at`; None: everything received).
Evaluating at a past as_of as known then (`known_at = as_of`) reproduces the answer given
then, however much late data or imported history arrived since; as known now (the default
of the evaluations above this layer), imported history counts at the instants it happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import ibis
import ibis.expr.types as ir

from segmently.store import schema
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.rollups import daily_rows, day_number, day_of
from segmently.store.store import Store


def _known(t: ir.Table, project_id: str, as_of: datetime | None, when: str,
           known_at: datetime | None) -> ir.Table:
    t = t.filter(t.project_id == project_id)
    if as_of is not None:
        t = t.filter(t[when] < as_of)
    if known_at is not None:
        t = t.filter(t.received_at <= known_at)
    return t


def identity_map(store: Store, project_id: str, as_of: datetime | None = None,
                 known_at: datetime | None = None) -> ir.Table:
    """alias_id -> user_id, the latest link per alias (an alias or identify merges ids)."""
    t = _known(store.table(schema.IDENTITIES), project_id, as_of, "linked_at", known_at)
    latest = t.mutate(
        _rank=ibis.row_number().over(group_by=t.alias_id, order_by=[t.linked_at.desc(),
                                                                      t.received_at.desc()])
    )
    return latest.filter(latest._rank == 0).select("alias_id", "user_id")


Persons = str | tuple[str, ...] | None  # one person, several (a tuple), or everyone


def is_person(column: ir.StringValue, person: str | tuple[str, ...]) -> ir.BooleanValue:
    """`column` is the person, or one of the persons (a semi-join on a memtable of them:
    an incremental refresh asks for thousands)."""
    if isinstance(person, str):
        return column == person
    return column.isin(ibis.memtable({"_id": list(person)}, schema={"_id": "string"})._id)


def resolved_events(store: Store, project_id: str, as_of: datetime | None = None,
                    person: Persons = None, known_at: datetime | None = None) -> ir.Table:
    """Events with `person_id`: the identified user an event belongs to (only `person`'s,
    when given).

    person_id = the user an id was merged into, else user_id, else anonymous_id.
    """
    events = _known(store.table(schema.EVENTS), project_id, as_of, "timestamp", known_at)
    return _with_person(events, identity_map(store, project_id, as_of, known_at), person)


def _with_person(t: ir.Table, ids: ir.Table, person: Persons = None) -> ir.Table:
    """Adds person_id to rows with user_id and anonymous_id. For one person, the rows of
    its own id and of the ids merged into it are picked first, so only those are joined."""
    t = t.mutate(_distinct_id=t.user_id.coalesce(t.anonymous_id))
    if person is not None:
        wanted = [person] if isinstance(person, str) else list(person)
        merged = ids.filter(is_person(ids.user_id, person)) \
            .select(id=ids.alias_id.cast("string"))
        own = ibis.memtable({"id": wanted}, schema={"id": "string"})
        # one IN over a union: DuckDB makes it a semi-join that skips the other rows; an
        # OR of `= person` and `IN (merged)` it cannot push down (every event is resolved)
        t = t.filter(t._distinct_id.isin(merged.union(own).id))
    joined = t.left_join(ids, t._distinct_id == ids.alias_id)
    joined = joined.mutate(person_id=joined.user_id_right.coalesce(joined._distinct_id)).drop(
        "_distinct_id", "alias_id", "user_id_right"
    )
    return joined if person is None else joined.filter(is_person(joined.person_id, person))


def has_rollups(store: Store) -> bool:
    """False for a lake exported before rollups existed (and for read-only old files)."""
    return schema.ROLLUPS in set(store.con.list_tables())


def resolved_daily_rows(store: Store, project_id: str, as_of: datetime,
                        boundaries: Iterable[datetime], person: Persons = None,
                        known_at: datetime | None = None) -> ir.Table:
    """Every event before as_of known at known_at as daily rows (store/rollups.py) with
    person_id: what counts, distinct days and first/last times are computed from without a
    raw scan."""
    rows = daily_rows(store.table(schema.EVENTS), store.table(schema.ROLLUPS), project_id,
                      as_of, boundaries, known_at)
    return _with_person(rows, identity_map(store, project_id, as_of, known_at), person)


def has_activity(store: Store) -> bool:
    """False for a lake exported before activity_days existed."""
    return schema.ACTIVITY in set(store.con.list_tables())


def resolved_activity_days(store: Store, project_id: str, as_of: datetime,
                           since: int | None = None, until: int | None = None,
                           distinct: bool = True) -> ir.Table:
    """(person_id, day): the days before as_of (in [since, until), day numbers) each person
    had a track, page or screen event, from the activity days of the compacted receive
    days, the rollups of the others and the raw events of as_of's day (store/activity.py):
    the set `resolved_daily_rows` gives, from a fraction of the rows. Without `distinct`,
    a (person, day) may repeat (a minimum per person does not mind, and skips a hash of
    every row)."""
    if not (has_rollups(store) and has_activity(store)):  # a lake exported before them
        if has_rollups(store):
            rows = resolved_daily_rows(store, project_id, as_of, [])
        else:
            e = resolved_events(store, project_id, as_of)
            rows = e.mutate(day=day_of(e.timestamp))
        rows = rows.filter(rows.type.isin(ACTIVITY_TYPES))
        days = _days_of(rows.select(person_id=rows.person_id.cast("string"), day=rows.day),
                        since, until)
        return days.distinct() if distinct else days
    today = day_number(as_of)
    live = daily_rows(store.table(schema.EVENTS), store.table(schema.ROLLUPS), project_id,
                      as_of, [], received=uncompacted_days(store))
    live = live.filter(live.type.isin(ACTIVITY_TYPES))
    live = live.select("user_id", "anonymous_id", "day")
    kept = store.table(schema.ACTIVITY)
    kept = kept.filter(kept.project_id == project_id, kept.day < today)
    kept = kept.select(user_id=kept.distinct_id, anonymous_id=ibis.null("string"), day=kept.day)
    ids = _days_of(kept.union(live.cast(kept.schema())), since, until)
    resolved = _with_person(ids, identity_map(store, project_id, as_of))
    resolved = resolved.select(person_id=resolved.person_id.cast("string"), day=resolved.day)
    return resolved.distinct() if distinct else resolved


def uncompacted_days(store: Store) -> list[int]:
    """The receive days of rollup rows not compacted yet (today's, yesterday's until the
    next refresh, a reopened day): one scan of one integer column."""
    def days(name: str) -> set[int]:  # each a small answer; an anti-join would hash every row
        t = store.table(name).select("received_day").distinct()
        return {int(d) for d in t.to_pyarrow()["received_day"].to_pylist()}

    return sorted(days(schema.ROLLUPS) - days(schema.COMPACTIONS))


def _days_of(rows: ir.Table, since: int | None, until: int | None) -> ir.Table:
    if since is not None:
        rows = rows.filter(rows.day >= since)
    if until is not None:
        rows = rows.filter(rows.day < until)
    return rows.mutate(day=rows.day.cast("int64"))


def latest_traits(
    store: Store, project_id: str, kind: str = "user", as_of: datetime | None = None,
    known_at: datetime | None = None, person: Persons = None,
    traits: list[str] | None = None,
) -> ir.Table:
    """(entity_id, trait, value): the latest value of each trait, or the first for set_once
    (only `person`'s, only `traits`, when given: filtered before the ranking, so one
    user's traits cost that user's rows, not the project's)."""
    t = _known(store.table(schema.TRAITS), project_id, as_of, "set_at", known_at)
    t = t.filter(t.kind == kind)
    if traits is not None:
        t = t.filter(t.trait.isin(traits))
    if kind == "user":
        ids = identity_map(store, project_id, as_of, known_at)
        t = t.left_join(ids, t.entity_id == ids.alias_id)
        t = t.mutate(entity_id=t.user_id.coalesce(t.entity_id)).drop("alias_id", "user_id")
    if person is not None:
        t = t.filter(is_person(t.entity_id, person))
    # A plain set beats any set_once; among sets the latest wins, among set_once the first.
    order = [t.once.asc(), ibis.cases((t.once, t.set_at.epoch_seconds()),
                                      else_=-t.set_at.epoch_seconds()).asc(),
             t.received_at.desc()]
    ranked = t.mutate(_rank=ibis.row_number().over(group_by=[t.entity_id, t.trait], order_by=order))
    return ranked.filter(ranked._rank == 0).select("entity_id", "trait", "value")


def users(store: Store, project_id: str, as_of: datetime | None = None,
          known_at: datetime | None = None) -> ir.Table:
    """One row per person: first and last seen, event count, latest account."""
    e = resolved_events(store, project_id, as_of, known_at=known_at)
    return e.group_by(user_id=e.person_id).aggregate(
        first_seen=e.timestamp.min(),
        last_seen=e.timestamp.max(),
        events=e.count(),
        account_id=e.account_id.argmax(e.timestamp.epoch_seconds()),
    )
