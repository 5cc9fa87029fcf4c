"""Segment membership over time: snapshots and enter/exit transitions.

Memberships are stored as changes. Each refresh of a segment at an instant `as_of` writes
one `segment_snapshots` row (size, definition version, freshness) and one
`segment_transitions` row per user who entered or exited since the previous snapshot. The
members at any snapshot are the users whose latest transition at or before it is
"entered" — so a refresh every five minutes over a million users writes only the users who
changed, and the full membership of any past snapshot is still one query away.

Refreshing the same instant twice writes nothing (idempotent). A backfill between two
existing snapshots also writes correcting transitions at the next snapshot, so that every
snapshot's membership stays exactly what was evaluated for it.

Written by `refreshing.py`; read by `core.Project` (members, sizes, summaries),
`runtime/memberships.py` (the index) and `insights/basis.py` (the latest refresh).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from segmently.store import Store, utcnow
from segmently.store.rows import arrow_schema

SNAPSHOTS = "segment_snapshots"
END = datetime(9999, 1, 1)  # an instant after every transition: members now (incremental too)
TRANSITIONS = "segment_transitions"

SNAPSHOTS_SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "segment": dt.String(nullable=False),
    "version": dt.Int64(nullable=False),
    "as_of": dt.Timestamp(nullable=False),
    "size": dt.Int64(nullable=False),
    "computed_at": dt.Timestamp(nullable=False),
    "data_through": dt.timestamp,  # latest event time that counted
    "known_at": dt.timestamp,  # what had been received (NULL in snapshots from before:
})                             # then as_of, the only instant those were evaluated at)
TRANSITIONS_SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "segment": dt.String(nullable=False),
    "user_id": dt.String(nullable=False),
    "kind": dt.String(nullable=False),  # "entered" | "exited"
    "as_of": dt.Timestamp(nullable=False),
})
ERRORS = "segment_errors"
ERRORS_SCHEMA = ibis.schema({  # a segment that could not be refreshed, and why
    "project_id": dt.String(nullable=False),
    "segment": dt.String(nullable=False),
    "version": dt.Int64(nullable=False),
    "as_of": dt.Timestamp(nullable=False),
    "computed_at": dt.Timestamp(nullable=False),
    "message": dt.String(nullable=False),
})
TABLES = {SNAPSHOTS: SNAPSHOTS_SCHEMA, TRANSITIONS: TRANSITIONS_SCHEMA, ERRORS: ERRORS_SCHEMA}
_ARROW = {name: arrow_schema(s) for name, s in TABLES.items()}


@dataclass(frozen=True, slots=True)
class RefreshResult:
    segment: str
    as_of: datetime
    size: int
    entered: int
    exited: int
    skipped: bool = False  # a snapshot for this instant already existed
    error: str | None = None  # the segment could not be evaluated: nothing recorded for it


def ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)
    store.ensure_columns(SNAPSHOTS, SNAPSHOTS_SCHEMA)


def snapshots(store: Store, project_id: str, segment: str | None = None) -> ir.Table:
    t = store.table(SNAPSHOTS)
    t = t.filter(t.project_id == project_id)
    return t if segment is None else t.filter(t.segment == segment)


def errors(store: Store, project_id: str) -> ir.Table:
    t = store.table(ERRORS)
    return t.filter(t.project_id == project_id)


def transitions(store: Store, project_id: str, segment: str | None = None) -> ir.Table:
    t = store.table(TRANSITIONS)
    t = t.filter(t.project_id == project_id)
    return t if segment is None else t.filter(t.segment == segment)


def latest(store: Store, project_id: str) -> dict[str, dict[str, Any]]:
    """The latest snapshot of each segment: by as_of, then by computed_at (a refresh of an
    instant already stored writes nothing, so ties only come from a changed version)."""
    ensure_tables(store)
    t = snapshots(store, project_id)
    ranked = t.mutate(_r=ibis.row_number().over(
        group_by=t.segment, order_by=[t.as_of.desc(), t.computed_at.desc()]))
    rows = ranked.filter(ranked._r == 0).drop("_r").to_pyarrow().to_pylist()
    return {row["segment"]: row for row in rows}


def members_at(store: Store, project_id: str, segment: str, as_of: datetime) -> ir.Table:
    """user_id of every member at a stored instant (or the latest snapshot before it)."""
    t = transitions(store, project_id, segment)
    t = t.filter(t.as_of <= as_of)
    ranked = t.mutate(_r=ibis.row_number().over(group_by=t.user_id, order_by=t.as_of.desc()))
    return ranked.filter((ranked._r == 0) & (ranked.kind == "entered")).select("user_id")


Members: TypeAlias = pa.Array | Iterable[str]  # user ids (a refresh hands over Arrow arrays)
_NONE = pa.array([], pa.string())


def _ids(members: Members) -> pa.Array:
    if isinstance(members, pa.Array):
        return members.cast(pa.string())
    return pa.array(sorted(members), pa.string())


def _minus(a: pa.Array, b: pa.Array) -> pa.Array:
    """The ids of a that are not in b (a hash set in Arrow: no Python loop per user)."""
    return a.filter(pc.invert(pc.is_in(a, value_set=b))) if len(b) else a


def _transition_rows(project_id: str, segment: str, as_of: datetime,
                     entered: pa.Array, exited: pa.Array) -> pa.Table:
    n = len(entered) + len(exited)
    return pa.table({
        "project_id": pa.array([project_id] * n, pa.string()),
        "segment": pa.array([segment] * n, pa.string()),
        "user_id": pa.concat_arrays([entered, exited]),
        "kind": pa.array(["entered"] * len(entered) + ["exited"] * len(exited), pa.string()),
        "as_of": pa.array([as_of] * n, pa.timestamp("us")),
    }).cast(_ARROW[TRANSITIONS])


def _neighbours(store: Store, project_id: str, segments: list[str], as_of: datetime
                ) -> dict[str, dict[str, datetime | None]]:
    """Per segment: whether a snapshot exists at as_of, and the instant of the following
    one (one query for all segments)."""
    s = snapshots(store, project_id).filter(lambda t: t.segment.isin(segments))
    at = ibis.literal(as_of, type="timestamp")
    maybe = s.as_of.cast(dt.timestamp)  # nullable: a segment may have none before or after
    found = s.group_by("segment").aggregate(
        same=(s.as_of == at).any(), after=maybe.min(where=s.as_of > at)).to_pyarrow().to_pylist()
    return {r["segment"]: r for r in found}


def members_at_each(store: Store, project_id: str, instants: dict[str, datetime],
                    before: bool = False) -> ir.Table:
    """(segment, user_id): the members of several segments, each at its own stored
    instant (`before`: just before it), in one windowed query (not one per segment)."""
    t = transitions(store, project_id).filter(lambda x: x.segment.isin(list(instants)))
    bound = ibis.cases(*[(t.segment == name, ibis.literal(at, type="timestamp"))
                         for name, at in instants.items()])
    t = t.filter(t.as_of < bound if before else t.as_of <= bound)
    ranked = t.mutate(_r=ibis.row_number().over(group_by=[t.segment, t.user_id],
                                                order_by=t.as_of.desc()))
    return ranked.filter((ranked._r == 0) & (ranked.kind == "entered")).select(
        "segment", "user_id")


def _members_at_each(store: Store, project_id: str, instants: dict[str, datetime],
                     before: bool = False) -> dict[str, pa.Array]:
    if not instants:
        return {}
    rows = members_at_each(store, project_id, instants, before).to_pyarrow()
    return {name: rows["user_id"].filter(pc.equal(rows["segment"], name)).combine_chunks()
            for name in instants}


def _snapshot_row(project_id: str, segment: str, version: int, as_of: datetime, size: int,
                  data_through: datetime | None, known_at: datetime | None) -> pa.Table:
    return pa.Table.from_pydict({
        "project_id": [project_id], "segment": [segment], "version": [version],
        "as_of": [as_of], "size": [size], "computed_at": [utcnow()],
        "data_through": [data_through], "known_at": [known_at or as_of]},
        schema=_ARROW[SNAPSHOTS])


def record_all(
    store: Store,
    project_id: str,
    memberships: dict[str, Members],
    as_of: datetime,
    *,
    versions: dict[str, int] | None = None,
    data_through: datetime | None = None,
    errors: dict[str, str] | None = None,
    known_at: datetime | None = None,
    also: Callable[[dict[str, tuple[pa.Array, pa.Array]]], dict[str, pa.Table]] | None = None,
) -> list[RefreshResult]:
    """Store the memberships of several segments evaluated at `as_of`: a few queries and
    one transaction for all of them (a refresh records every segment at once). `errors`
    are the segments that could not be evaluated (name -> why), recorded in the same
    transaction. `known_at` is what had been received (default as_of), kept with each
    snapshot so its membership can be recomputed exactly. `also` is given each segment's
    (entered, exited) at as_of (not a backfill's corrections of later snapshots) and
    returns rows of other tables to write in the same transaction (the act outbox)."""
    ensure_tables(store)
    versions = versions or {}
    errors = errors or {}
    ids = {name: _ids(m) for name, m in memberships.items()}
    with store.write_lock:
        around = _neighbours(store, project_id, list(ids), as_of)
        new = {n: m for n, m in ids.items() if not around.get(n, {}).get("same")}
        # the members just before as_of: the previous snapshot's, with the changes an
        # incremental refresh wrote since (`record_changes`), so none is written twice
        before = _members_at_each(store, project_id, dict.fromkeys(new, as_of), before=True)
        after = {n: a for n in new if (a := around.get(n, {}).get("after")) is not None}
        truth = _members_at_each(store, project_id, after)
        snaps, moves, results = [], [], []
        changed: dict[str, tuple[pa.Array, pa.Array]] = {}
        for name, members in ids.items():
            if name not in new:
                results.append(RefreshResult(name, as_of, len(members), 0, 0, skipped=True))
                continue
            was = before.get(name, _NONE)
            entered, exited = _minus(members, was), _minus(was, members)
            snaps.append(_snapshot_row(project_id, name, versions.get(name, 1), as_of,
                                       len(members), data_through, known_at))
            moves.append(_transition_rows(project_id, name, as_of, entered, exited))
            if name not in after and (len(entered) or len(exited)):
                changed[name] = (entered, exited)
            if name in after:  # a backfill: keep the next snapshot's membership intact
                moves.append(_transition_rows(project_id, name, after[name],
                                              _minus(truth[name], members),
                                              _minus(members, truth[name])))
            results.append(RefreshResult(name, as_of, len(members), len(entered),
                                         len(exited)))
        tables = {ERRORS: _error_rows(project_id, errors, versions, as_of)} if errors else {}
        if snaps:
            tables.update({SNAPSHOTS: pa.concat_tables(snaps),
                           TRANSITIONS: pa.concat_tables(moves)})
        if also is not None and changed:
            tables.update(also(changed))
        if tables:
            store.insert_tables(tables)
    results += [RefreshResult(name, as_of, 0, 0, 0, error=message)
                for name, message in errors.items()]
    return results


def current_of(store: Store, project_id: str, segments: list[str],
               users: tuple[str, ...]) -> dict[str, set[str]]:
    """segment -> which of `users` are members now (their latest transitions, those of
    incremental refreshes included)."""
    if not segments or not users:
        return {}
    ensure_tables(store)
    t = transitions(store, project_id).filter(lambda x: x.segment.isin(segments))
    wanted = ibis.memtable({"_u": list(users)}, schema={"_u": "string"})
    t = t.filter(t.user_id.isin(wanted._u))
    ranked = t.mutate(_r=ibis.row_number().over(group_by=[t.segment, t.user_id],
                                                order_by=t.as_of.desc()))
    rows = ranked.filter((ranked._r == 0) & (ranked.kind == "entered")) \
        .select("segment", "user_id").to_pyarrow().to_pylist()
    out: dict[str, set[str]] = {name: set() for name in segments}
    for row in rows:
        out[row["segment"]].add(row["user_id"])
    return out


def record_changes(
    store: Store, project_id: str, changes: dict[str, tuple[pa.Array, pa.Array]],
    at: datetime,
    also: Callable[[dict[str, tuple[pa.Array, pa.Array]]], dict[str, pa.Table]] | None = None,
) -> None:
    """Transitions of some users at `at`, without a snapshot (an incremental refresh: the
    next full refresh counts from them), and `also`'s rows (the outbox), in one
    transaction."""
    changes = {n: c for n, c in changes.items() if len(c[0]) or len(c[1])}
    if not changes:
        return
    ensure_tables(store)
    tables = {TRANSITIONS: pa.concat_tables([
        _transition_rows(project_id, name, at, entered, exited)
        for name, (entered, exited) in changes.items()])}
    if also is not None:
        tables.update(also(changes))
    with store.write_lock:
        store.insert_tables(tables)


def _error_rows(project_id: str, errors: dict[str, str], versions: dict[str, int],
                as_of: datetime) -> pa.Table:
    now = utcnow()
    return pa.Table.from_pylist([
        {"project_id": project_id, "segment": name, "version": versions.get(name, 1),
         "as_of": as_of, "computed_at": now, "message": message}
        for name, message in errors.items()], schema=_ARROW[ERRORS])


def record(
    store: Store,
    project_id: str,
    segment: str,
    members: Members,
    as_of: datetime,
    *,
    version: int = 1,
    data_through: datetime | None = None,
) -> RefreshResult:
    """Store the membership of `segment` evaluated at `as_of`."""
    return record_all(store, project_id, {segment: members}, as_of,
                      versions={segment: version}, data_through=data_through)[0]
