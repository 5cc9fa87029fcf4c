"""The write path's per-commit operations, with a direct route on DuckDB.

Every group commit (and every chunk of a file import) inserts the events whose message
ids are new, then a few derived Arrow tables. Through Ibis each costs a schema lookup
(DESCRIBE), an expression compile and a memtable registration: ~15 ms per call, more than
the work itself for a 4,000-event group (see bench/RESULTS.md). On DuckDB the same two
operations go through DuckDB's own relational API: typed expressions and Arrow in, nothing
glued from user input, columns matched by name. PostgreSQL has its own route
(`store/postgres.py`: COPY, then INSERT ... ON CONFLICT DO NOTHING against a unique index,
so several writing processes still store an id once). Other engines keep the Ibis path.

On DuckDB a whole append is set-based SQL in the transaction (`append_new_events`): the
staged Arrow batch's new rows (its ids looked up among the project's recent ids, first
occurrence per id kept) go to a temporary table, from which DuckDB inserts the events,
counts their rollup rows (a GROUP BY, the same rows as `rollups.rollup`) and keeps the
derived rows (traits, identities, links) of the inserted ids only. The lookup is a semi
join built on the batch and probed by a scan of the project's ids: an anti join against
the stored ids built a hash table of every recent id for every commit (a million ids:
~50 ms of a 4,000-event group commit). Neither the inserted rows nor the rollups travel
back to Python, and a plain INSERT from a table lets DuckDB write big batches straight to
the database file. Figures (a 2-million-row import, 60 group commits of 4,000 events) in
bench/RESULTS.md, "import".
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

# The project's stored message ids that the staged batch also holds (a semi join: its hash
# table is the batch's, and the project's ids are only scanned), within the dedup window
# or in all history.
_SEEN_RECENT = (f"SELECT e.message_id FROM events e SEMI JOIN {_ROWS_VIEW} r USING "
                "(message_id) WHERE e.project_id = $project AND e.received_at >= $oldest")
_SEEN_ALL = (f"SELECT e.message_id FROM events e SEMI JOIN {_ROWS_VIEW} r USING "
             "(message_id) WHERE e.project_id = $project")
_NEW_TABLE = "__segmently_new"
# Every id of the batch is distinct: the new rows are the batch less the stored ids.
_STAGE = (f"CREATE OR REPLACE TEMP TABLE {_NEW_TABLE} AS SELECT s.* FROM {_ROWS_VIEW} s "
          "ANTI JOIN ({seen}) e USING (message_id)")
# Repeated ids: the first occurrence of each wins, and the batch's order is kept.
_STAGE_FIRST = (f"CREATE OR REPLACE TEMP TABLE {_NEW_TABLE} AS SELECT * EXCLUDE ({_ORDER}) FROM "
                f"(SELECT *, row_number() OVER () AS {_ORDER} FROM {_ROWS_VIEW}) s "
                "ANTI JOIN ({seen}) e USING (message_id) "
                f"QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY {_ORDER}) = 1 "
                f"ORDER BY {_ORDER}")
_DAY = "CAST(CAST({0} AS DATE) - DATE '1970-01-01' AS INTEGER)"  # days since the epoch, floor
_ROLLUP = (f"INSERT INTO {schema.ROLLUPS} BY NAME SELECT project_id, user_id, anonymous_id, "
           f"event, type, {_DAY.format('timestamp')} AS day, "
           f"{_DAY.format('received_at')} AS received_day, count(*) AS n, "
           f"min(timestamp) AS first_ts, max(timestamp) AS last_ts FROM {_NEW_TABLE} "
           "GROUP BY ALL")


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
    least the message ids and the columns rollups read). Call inside a transaction. On
    DuckDB `append_new_events` does this and the rest of the append."""
    if events.num_rows == 0:
        return events
    unique = len(pc.unique(events["message_id"])) == events.num_rows
    if con.name == "postgres":
        from segmently.store import postgres

        return postgres.insert_new_events(con, events if unique else first_per_message(events))
    seen = seen_message_ids(con, project_id, pc.unique(events["message_id"]), oldest)
    if len(seen):
        events = events.filter(pc.invert(pc.is_in(events["message_id"], seen)))
    if not unique:
        events = first_per_message(events)
    if events.num_rows:
        insert_arrow(con, schema.EVENTS, events)
    return events


def append_new_events(con: BaseBackend, project_id: str, events: pa.Table,
                      derived: dict[str, pa.Table], oldest: datetime | None) -> int:
    """DuckDB: insert the new events of a batch (as `insert_new_events` decides them),
    their rollup rows and the rows of `derived` (table name -> Arrow rows) written by the
    inserted messages; returns how many events were new. Call inside a transaction."""
    if events.num_rows == 0:
        return 0
    unique = len(pc.unique(events["message_id"])) == events.num_rows
    seen = _SEEN_ALL if oldest is None else _SEEN_RECENT
    params = {"project": project_id} | ({} if oldest is None else {"oldest": oldest})
    raw = con.con
    raw.register(_ROWS_VIEW, events)
    try:
        raw.execute((_STAGE if unique else _STAGE_FIRST).format(seen=seen), params)
    finally:
        raw.unregister(_ROWS_VIEW)
    try:
        row = raw.execute(f"SELECT count(*) FROM {_NEW_TABLE}").fetchone()
        new = int(row[0]) if row else 0
        if new:
            raw.execute(f"INSERT INTO {schema.EVENTS} BY NAME SELECT * FROM {_NEW_TABLE}")
            raw.execute(_ROLLUP)
            for name, table in derived.items():
                raw.register(_ROWS_VIEW, table)
                try:
                    raw.execute(f"INSERT INTO {_quoted(name)} BY NAME SELECT d.* FROM "
                                f"{_ROWS_VIEW} d SEMI JOIN {_NEW_TABLE} n USING (message_id)")
                finally:
                    raw.unregister(_ROWS_VIEW)
    finally:
        raw.execute(f"DROP TABLE IF EXISTS {_NEW_TABLE}")
    return new


def first_per_message(events: pa.Table) -> pa.Table:
    """Drop repeated message ids inside one batch, keeping the first occurrence."""
    if len(pc.unique(events["message_id"])) == events.num_rows:
        return events
    indexed = events.append_column(_ORDER, pa.array(range(events.num_rows), pa.int64()))
    first = indexed.group_by("message_id").aggregate([(_ORDER, "min")])[f"{_ORDER}_min"]
    return events.take(pc.take(first, pc.sort_indices(first)))  # the rows, in batch order
