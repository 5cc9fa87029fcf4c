"""The write path's per-commit operations, with a direct route on DuckDB.

Every group commit (and every chunk of a file import) inserts the events whose message
ids are new, then a few derived Arrow tables. Through Ibis each costs a schema lookup (DESCRIBE), an expression compile and a
memtable registration: ~15 ms per call, more than the work itself for a 4,000-event group
(see bench/RESULTS.md). On DuckDB the same two operations go through DuckDB's own
relational API: typed expressions and Arrow in, nothing glued from user input, columns
matched by name. PostgreSQL has its own route (`store/postgres.py`: COPY, then INSERT ... ON CONFLICT DO
NOTHING against a unique index, so several writing processes still store an id once).
Other engines keep the Ibis path.

Deduplicating the events is one set-based statement on DuckDB (`insert_new_events`): the
staged Arrow batch, anti-joined with the project's recent message ids, first occurrence
per id kept, inserted by DuckDB itself. Looking the ids up, filtering in Arrow and
inserting what is left took three passes over the batch and most of an import's time.
"""

from __future__ import annotations

from datetime import datetime

import ibis
import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from segmently.store import schema

_ROWS_VIEW = "__segmently_rows"
_ORDER = "__segmently_i"
_ROLLED_UP = ("project_id", "message_id", "user_id", "anonymous_id", "event", "type",
              "timestamp", "received_at")

# The project's stored message ids, within the dedup window or in all history.
_RECENT = ("SELECT message_id FROM events WHERE project_id = $project "
           "AND received_at >= $oldest")
_ALL = "SELECT message_id FROM events WHERE project_id = $project"
# Every id of the batch is distinct: an anti join keeps the batch's order.
# RETURNING hands back what was inserted, for the derived rows and rollups written in the
# same transaction.
_RETURNING = " RETURNING " + ", ".join(_ROLLED_UP)
_NEW = (f"INSERT INTO events BY NAME SELECT s.* FROM {_ROWS_VIEW} s "
        "ANTI JOIN ({stored}) e USING (message_id)" + _RETURNING)
# Repeated ids: the first occurrence of each wins, and the batch's order is kept.
_NEW_FIRST = (f"INSERT INTO events BY NAME SELECT * EXCLUDE ({_ORDER}) FROM "
              f"(SELECT *, row_number() OVER () AS {_ORDER} FROM {_ROWS_VIEW}) s "
              "ANTI JOIN ({stored}) e USING (message_id) "
              f"QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY {_ORDER}) = 1 "
              f"ORDER BY {_ORDER}" + _RETURNING)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def seen_message_ids(con: BaseBackend, project_id: str, ids: pa.Array,
                     oldest: datetime | None) -> pa.Array:
    """Which of `ids` are stored for the project (received at or after `oldest`): the
    lookup of engines without a route of their own."""
    t = con.table(schema.EVENTS)
    cond = t.project_id == project_id
    if oldest is not None:
        cond &= t.received_at >= oldest
    found = (t.filter(cond)
             .semi_join(ibis.memtable(pa.table({"message_id": ids})), "message_id")
             .select("message_id")
             .to_pyarrow()["message_id"])
    return found.combine_chunks()


def insert_arrow(con: BaseBackend, name: str, table: pa.Table) -> None:
    """Append an Arrow table to table `name`, columns matched by name."""
    if con.name == "duckdb":
        raw = con.con
        raw.register(_ROWS_VIEW, table)
        try:
            raw.execute(f"INSERT INTO {_quoted(name)} BY NAME SELECT * FROM {_ROWS_VIEW}")
        finally:
            raw.unregister(_ROWS_VIEW)
        return
    con.insert(name, ibis.memtable(table))


def insert_new_events(con: BaseBackend, project_id: str, events: pa.Table,
                      oldest: datetime | None) -> pa.Table:
    """Insert the events whose message id is not stored for the project (received at or
    after `oldest`, or ever when None; on PostgreSQL ever, whatever `oldest`), the first
    occurrence of an id repeated inside the batch winning; returns the inserted rows (at
    least the message ids and the columns rollups read). Call inside a transaction."""
    if events.num_rows == 0:
        return events
    unique = len(pc.unique(events["message_id"])) == events.num_rows
    if con.name == "postgres":
        from segmently.store import postgres

        return postgres.insert_new_events(con, events if unique else first_per_message(events))
    if con.name == "duckdb":
        sql = (_NEW if unique else _NEW_FIRST).format(stored=_ALL if oldest is None else _RECENT)
        params = {"project": project_id} | ({} if oldest is None else {"oldest": oldest})
        raw = con.con
        raw.register(_ROWS_VIEW, events)
        try:
            return raw.execute(sql, params).arrow().read_all()
        finally:
            raw.unregister(_ROWS_VIEW)
    seen = seen_message_ids(con, project_id, pc.unique(events["message_id"]), oldest)
    if len(seen):
        events = events.filter(pc.invert(pc.is_in(events["message_id"], seen)))
    if not unique:
        events = first_per_message(events)
    if events.num_rows:
        insert_arrow(con, schema.EVENTS, events)
    return events


def first_per_message(events: pa.Table) -> pa.Table:
    """Drop repeated message ids inside one batch, keeping the first occurrence."""
    if len(pc.unique(events["message_id"])) == events.num_rows:
        return events
    indexed = events.append_column(_ORDER, pa.array(range(events.num_rows), pa.int64()))
    first = indexed.group_by("message_id").aggregate([(_ORDER, "min")])[f"{_ORDER}_min"]
    return events.take(pc.take(first, pc.sort_indices(first)))  # the rows, in batch order
