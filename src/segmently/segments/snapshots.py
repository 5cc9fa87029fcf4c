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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from segmently.store import Store, utcnow
from segmently.store.rows import arrow_schema

SNAPSHOTS = "segment_snapshots"
TRANSITIONS = "segment_transitions"

SNAPSHOTS_SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "segment": dt.String(nullable=False),
    "version": dt.Int64(nullable=False),
    "as_of": dt.Timestamp(nullable=False),
    "size": dt.Int64(nullable=False),
    "computed_at": dt.Timestamp(nullable=False),
    "data_through": dt.timestamp,  # latest event time that counted
})
TRANSITIONS_SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "segment": dt.String(nullable=False),
    "user_id": dt.String(nullable=False),
    "kind": dt.String(nullable=False),  # "entered" | "exited"
    "as_of": dt.Timestamp(nullable=False),
})
TABLES = {SNAPSHOTS: SNAPSHOTS_SCHEMA, TRANSITIONS: TRANSITIONS_SCHEMA}
_ARROW = {name: arrow_schema(s) for name, s in TABLES.items()}


@dataclass(frozen=True, slots=True)
class RefreshResult:
    segment: str
    as_of: datetime
    size: int
    entered: int
    exited: int
    skipped: bool = False  # a snapshot for this instant already existed


def ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)


def snapshots(store: Store, project_id: str, segment: str | None = None) -> ir.Table:
    t = store.table(SNAPSHOTS)
    t = t.filter(t.project_id == project_id)
    return t if segment is None else t.filter(t.segment == segment)


def transitions(store: Store, project_id: str, segment: str | None = None) -> ir.Table:
    t = store.table(TRANSITIONS)
    t = t.filter(t.project_id == project_id)
    return t if segment is None else t.filter(t.segment == segment)


def members_at(store: Store, project_id: str, segment: str, as_of: datetime) -> ir.Table:
    """user_id of every member at a stored instant (or the latest snapshot before it)."""
    t = transitions(store, project_id, segment)
    t = t.filter(t.as_of <= as_of)
    ranked = t.mutate(_r=ibis.row_number().over(group_by=t.user_id, order_by=t.as_of.desc()))
    return ranked.filter((ranked._r == 0) & (ranked.kind == "entered")).select("user_id")


def _ids(expr: ir.Table) -> set[str]:
    return set(expr.to_pyarrow()["user_id"].to_pylist())


def _transition_rows(project_id: str, segment: str, as_of: datetime,
                     entered: set[str], exited: set[str]) -> pa.Table:
    users = sorted(entered) + sorted(exited)
    kinds = ["entered"] * len(entered) + ["exited"] * len(exited)
    n = len(users)
    return pa.Table.from_pydict({
        "project_id": [project_id] * n, "segment": [segment] * n, "user_id": users,
        "kind": kinds, "as_of": [as_of] * n,
    }, schema=_ARROW[TRANSITIONS])


def _neighbour(store: Store, project_id: str, segment: str, as_of: datetime,
               later: bool) -> datetime | None:
    s = snapshots(store, project_id, segment)
    s = s.filter(s.as_of > as_of).order_by(s.as_of) if later else (
        s.filter(s.as_of < as_of).order_by(s.as_of.desc()))
    found = s.select("as_of").limit(1).to_pyarrow()["as_of"].to_pylist()
    return found[0] if found else None


def record(
    store: Store,
    project_id: str,
    segment: str,
    members: set[str],
    as_of: datetime,
    *,
    version: int = 1,
    data_through: datetime | None = None,
) -> RefreshResult:
    """Store the membership of `segment` evaluated at `as_of`."""
    ensure_tables(store)
    with store.write_lock:
        existing = snapshots(store, project_id, segment).filter(lambda t: t.as_of == as_of)
        if existing.count().to_pyarrow().as_py():
            return RefreshResult(segment, as_of, len(members), 0, 0, skipped=True)
        previous = _neighbour(store, project_id, segment, as_of, later=False)
        before = _ids(members_at(store, project_id, segment, previous)) if previous else set()
        entered, exited = members - before, before - members
        rows = {SNAPSHOTS: pa.Table.from_pydict({
            "project_id": [project_id], "segment": [segment], "version": [version],
            "as_of": [as_of], "size": [len(members)], "computed_at": [utcnow()],
            "data_through": [data_through],
        }, schema=_ARROW[SNAPSHOTS]),
            TRANSITIONS: _transition_rows(project_id, segment, as_of, entered, exited)}
        following = _neighbour(store, project_id, segment, as_of, later=True)
        if following is not None:  # a backfill: keep the next snapshot's membership intact
            truth = _ids(members_at(store, project_id, segment, following))
            fix = pa.concat_tables([rows[TRANSITIONS], _transition_rows(
                project_id, segment, following, truth - members, members - truth)])
            rows[TRANSITIONS] = fix
        store.insert_tables(rows)
    return RefreshResult(segment, as_of, len(members), len(entered), len(exited))
