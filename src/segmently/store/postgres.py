"""Exactly once on PostgreSQL, whatever the number of writing processes.

DuckDB allows one writing process per file, so a lookup under the process's write lock
is enough there. A PostgreSQL database takes writers from anywhere: two `serve`
processes, `segmently import` while `serve` runs. A read-then-insert under each one's
own lock let both insert the same ids (12,000 rows for 10,000 ids). So here the database
decides:

- a unique index on `events (project_id, message_id)` (`ensure_unique_message_ids`), and
- `insert_new_events`: the batch is COPYed (CSV written by Arrow, values never spliced
  into SQL text) into a temporary staging table, then `INSERT ... SELECT ... ORDER BY
  message_id ON CONFLICT (project_id, message_id) DO NOTHING RETURNING message_id`. The
  caller writes derived rows (traits, identities, account links, rollups) only for the
  ids it returns, in the same transaction. Two transactions inserting the same id: the
  second waits for the first and then does nothing (or inserts, if the first rolled
  back). Inserting in message-id order makes every writer take those waits in the same
  order, so overlapping batches cannot deadlock on one another.

On PostgreSQL a message id is therefore stored once per project for ever (the dedup
window of ARCHITECTURE.md is a lower bound elsewhere; here it is stricter).

A database written before the index may hold duplicates, and the index cannot be built
over them. `ensure_unique_message_ids` then keeps the first received copy of each id,
deletes the others with the derived rows written with them, recounts the affected
projects' rollups, creates the index, all in one transaction, and logs what it removed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from ibis.backends import BaseBackend
from psycopg import errors, sql
from psycopg.pq import TransactionStatus

from segmently.store import schema
from segmently.store.rollups import rollup_expr
from segmently.store.rows import ARROW_SCHEMAS

log = logging.getLogger(__name__)

INDEX = "events_project_message_key"
_STAGE = "segmently_stage_events"
_REMOVED = "segmently_removed_duplicates"
SCHEMA_LOCK = 0x5345474D454E544C  # pg_advisory_lock key ("SEGMENTL") for schema changes
_DERIVED = (schema.TRAITS, schema.IDENTITIES, schema.ACCOUNT_LINKS)
_CSV = pacsv.WriteOptions(include_header=False)  # strings quoted, NULL = empty unquoted


@contextlib.contextmanager
def schema_lock(con: BaseBackend) -> Iterator[None]:
    """Serialize schema changes across processes: two processes opening a new database
    at once would both CREATE the same table. A session lock (re-entrant, released with
    the connection if it dies)."""
    if con.name != "postgres":
        yield
        return
    raw = con.con
    raw.execute("SELECT pg_advisory_lock(%s)", [SCHEMA_LOCK])
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # a dead connection released it already
            raw.execute("SELECT pg_advisory_unlock(%s)", [SCHEMA_LOCK])


# A table is analyzed again once this share of its rows (and STALE_ROWS more) changed
# since it last was: autovacuum's own default threshold, applied when the store reads.
STALE_SHARE = 0.1
STALE_ROWS = 50


def analyze_stale(con: BaseBackend) -> list[str]:
    """ANALYZE this schema's tables never analyzed (`reltuples` -1: exact at once) or whose
    rows changed by more than STALE_SHARE since their last ANALYZE (the statistics
    collector's counts: other connections' writes show within seconds); returns their
    names.

    Without statistics the planner takes every aggregate of a user for one row and joins
    the profile's dozen per-user aggregates in nested loops: a 2,000-user profile run took
    minutes, all but seconds of `segments refresh` (a fresh database, or autovacuum off
    or not yet round). With them the same query is hash joins (bench/RESULTS.md). ANALYZE
    reads a bounded sample of each table, so this costs about the same at any size."""
    raw = con.con
    stale = raw.execute(
        "SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
        "WHERE s.schemaname = current_schema() "
        "AND (c.reltuples < 0 OR s.n_mod_since_analyze > %s + %s * s.n_live_tup) "
        "ORDER BY s.relname", [STALE_ROWS, STALE_SHARE]).fetchall()
    names = [name for (name,) in stale]
    for name in names:
        raw.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(name)))
    return names


def _create_index() -> sql.Composed:
    return sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (project_id, message_id)"
                   ).format(sql.Identifier(INDEX), sql.Identifier(schema.EVENTS))


def ensure_unique_message_ids(con: BaseBackend, *, rebuild_rollups: bool) -> int:
    """Create the unique index (nothing if it exists); returns how many duplicate event
    rows had to be removed first. `rebuild_rollups`: the rollups table already held
    rows counted from the duplicates (False when it is about to be filled anyway)."""
    raw = con.con
    try:
        raw.execute(_create_index())
        return 0
    except errors.UniqueViolation:
        pass
    with raw.transaction():
        removed, projects = _remove_duplicates(con)
        if rebuild_rollups and projects:
            raw.execute(sql.SQL("DELETE FROM {} WHERE project_id = ANY(%s)").format(
                sql.Identifier(schema.ROLLUPS)), [projects])
            events = con.table(schema.EVENTS)
            con.insert(schema.ROLLUPS, rollup_expr(events.filter(events.project_id.isin(projects))))
        raw.execute(_create_index())
    log.warning(
        "events held %d rows repeating a message id already stored in its project "
        "(written before message ids were unique); kept the first received copy of each, "
        "removed the others and the traits, identities and account links written with "
        "them, recounted the rollups of %d project(s): %s", removed, len(projects),
        ", ".join(projects))
    return removed


def _remove_duplicates(con: BaseBackend) -> tuple[int, list[str]]:
    """Delete every event row but the first received of each (project, message id), and
    the derived rows written with the deleted ones only. Inside a transaction."""
    raw = con.con
    events = sql.Identifier(schema.EVENTS)
    removed = sql.Identifier(_REMOVED)
    # writers wait until the index exists: no new duplicate can slip in meanwhile
    raw.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(events))
    raw.execute(sql.SQL(
        "CREATE TEMP TABLE {removed} ON COMMIT DROP AS "
        "SELECT project_id, message_id, received_at, row_id FROM ("
        " SELECT project_id, message_id, received_at, ctid AS row_id, row_number() OVER"
        " (PARTITION BY project_id, message_id ORDER BY received_at, ctid) AS n"
        " FROM {events}) d WHERE n > 1").format(removed=removed, events=events))
    raw.execute(sql.SQL("DELETE FROM {events} e USING {removed} r WHERE e.ctid = r.row_id"
                        ).format(events=events, removed=removed))
    for name in _DERIVED:  # written with a removed copy, and not with the kept one
        raw.execute(sql.SQL(
            "DELETE FROM {t} d USING {removed} r WHERE d.project_id = r.project_id"
            " AND d.message_id = r.message_id AND d.received_at = r.received_at"
            " AND NOT EXISTS (SELECT 1 FROM {events} e WHERE e.project_id = d.project_id"
            " AND e.message_id = d.message_id AND e.received_at = d.received_at)").format(
                t=sql.Identifier(name), removed=removed, events=events))
    count = raw.execute(sql.SQL("SELECT count(*) FROM {}").format(removed)).fetchone()
    projects = raw.execute(sql.SQL("SELECT DISTINCT project_id FROM {} ORDER BY 1"
                                   ).format(removed)).fetchall()
    return int(count[0] if count else 0), [p[0] for p in projects]


def insert_new_events(con: BaseBackend, events: pa.Table) -> pa.Table:
    """Insert the rows of `events` whose (project, message id) is not stored yet; returns
    the inserted rows. Message ids must be distinct within `events` (the caller keeps the
    first occurrence). Call inside a transaction, once per transaction: the staging
    table empties at COMMIT."""
    raw = con.con
    if raw.info.transaction_status != TransactionStatus.INTRANS:
        raise RuntimeError("postgres.insert_new_events must run inside a transaction")
    target = ARROW_SCHEMAS[schema.EVENTS]
    rows = events.select(target.names).cast(target)
    stage, table = sql.Identifier(_STAGE), sql.Identifier(schema.EVENTS)
    columns = sql.SQL(", ").join(sql.Identifier(n) for n in target.names)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(rows, sink, _CSV)
    with raw.cursor() as cur:
        cur.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) "
                            "ON COMMIT DELETE ROWS").format(stage, table))
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(stage, columns)
                      ) as copy:
            copy.write(memoryview(sink.getvalue()))
        cur.execute(sql.SQL(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} "
            "ORDER BY message_id ON CONFLICT (project_id, message_id) DO NOTHING "
            "RETURNING message_id").format(table=table, columns=columns, stage=stage))
        inserted = pa.array([r[0] for r in cur.fetchall()], pa.string())
    if len(inserted) == rows.num_rows:
        return rows
    return rows.filter(pc.is_in(rows["message_id"], inserted))
