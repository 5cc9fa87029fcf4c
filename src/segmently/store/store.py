"""The event store: durable, deduplicated appends and Ibis tables to read from.

Appends come from the group-commit writer (`writer.py`, HTTP ingestion), the importer's
sink (`collect/importer.py`) and the demo (`append_new_rows`); derived rows and rollups are
written in the same transaction (`fastpath.py` on DuckDB, `postgres.py` on PostgreSQL).
Every later stage reads through `table`/`events` (and `views.py`); `replace_rows` keeps
the profile runs' cache; `core.Project.refresh` runs `compact_rollups` and
`refresh_statistics` first."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import sqlglot.expressions as sge
from ibis.backends import BaseBackend

from segmently.settings import Settings
from segmently.settings import load as load_settings
from segmently.store import schema
from segmently.store.activity import activity_expr, delete_days, received_days, reopen
from segmently.store.backends import (
    FixedBackend,
    ThreadLocalBackends,
    normalize_url,
    transaction,
)
from segmently.store.connections import retry_transient
from segmently.store.fastpath import append_new_events, insert_arrow, insert_new_events
from segmently.store.rollups import ARROW_SCHEMA as ROLLUP_ARROW
from segmently.store.rollups import compaction_rows, day_number, rollup, rollup_expr
from segmently.store.rows import Message, RowBatch, to_rows

DEFAULT_DEDUP_WINDOW = timedelta(days=7)
COMPACT_DAYS = 8  # receive days merged per transaction (a backlog: one scan for several)


@dataclass(frozen=True, slots=True)
class AppendResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def utcnow() -> datetime:
    """Naive UTC now, microsecond precision: the store's clock for received_at."""
    return datetime.utcnow().replace(tzinfo=None)  # noqa: DTZ003


class Store:
    """Tables of one Segmently database, over any Ibis backend.

    Writes go through `append`, which is safe to call from several threads (a lock makes
    this process the single writer that DuckDB requires). A message id already stored
    for the project within `dedup_window` of arrival time is skipped, so client retries
    and re-imports store nothing twice; `dedup_window=None` checks all history. `settings`
    (DuckDB's memory limit): the caller's, else the environment's (`settings.load()`).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        read_only: bool = False,
        dedup_window: timedelta | None = DEFAULT_DEDUP_WINDOW,
        settings: Settings | None = None,
    ) -> None:
        self.url = normalize_url(url)
        settings = settings if settings is not None else load_settings()  # else the env's
        self.backends = ThreadLocalBackends(self.url, read_only=read_only,
                                            memory_limit=settings.duckdb_memory_limit)
        self.read_only = read_only
        self.dedup_window = dedup_window
        self._write_lock = threading.RLock()
        self._schemas = 0  # bumped by our DDL: each connection's known tables read again
        self._existing: set[str] = set()  # tables ensure_tables found: not asked again
        if not read_only:
            self.ensure_schema()

    @classmethod
    def over(cls, con: BaseBackend) -> Store:
        """A read-only store over an existing backend whose tables are already registered
        (for example Spark over Parquet files: see store/lake.py)."""
        store = cls.__new__(cls)
        store.url = f"{con.name}://"
        store.backends = FixedBackend(con)  # type: ignore[assignment]
        store.read_only = True
        store.dedup_window = DEFAULT_DEDUP_WINDOW
        store._write_lock = threading.RLock()
        store._schemas = 0
        store._existing = set()
        return store

    # -- connections -------------------------------------------------------------------
    @property
    def con(self) -> BaseBackend:
        """The backend reads go to (writes always go to `backends`)."""
        return self.backends.get()

    @property
    def engine(self) -> str:
        return self.backends.engine

    def close(self) -> None:
        self.backends.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def write_lock(self) -> threading.RLock:
        """Held by every write; hold it to make a read-then-write sequence atomic."""
        return self._write_lock

    def ensure_schema(self) -> None:
        """Create what is missing; on PostgreSQL also the unique key on (project_id,
        message_id) that makes appends exactly once (store/postgres.py), removing the
        duplicates an older database may hold first. Serialized across processes on
        PostgreSQL: two processes may open a new database at once."""
        con = self.backends.get()
        with self._write_lock, schema_lock(con):
            had = set(con.list_tables())
            self.ensure_tables(schema.TABLES)
            if con.name == "postgres":
                from segmently.store.postgres import ensure_unique_message_ids

                ensure_unique_message_ids(con, rebuild_rollups=schema.ROLLUPS in had)
            if schema.ROLLUPS not in had:  # a database from before rollups: count it once
                with transaction(con):
                    con.insert(schema.ROLLUPS, rollup_expr(con.table(schema.EVENTS)))
            elif schema.ACTIVITY not in had:  # the days it compacted before activity_days
                with transaction(con):
                    con.insert(schema.ACTIVITY, activity_expr(
                        con.table(schema.ROLLUPS), con.table(schema.COMPACTIONS).received_day))

    def ensure_tables(self, tables: dict[str, ibis.Schema]) -> None:
        """Create the tables that do not exist yet (each stage owns its own tables). Checked
        again under the write lock (two threads may ask at once) and, on PostgreSQL, the
        schema lock (two processes may)."""
        if set(tables) <= self._existing:
            return
        con = self.backends.get()
        if set(tables) <= set(con.list_tables()):
            self._existing.update(tables)
            return
        with self._write_lock, schema_lock(con):
            existing = set(con.list_tables())
            for name, sch in tables.items():
                if name not in existing:
                    con.create_table(name, schema=sch)
            self.forget_tables()

    def ensure_columns(self, name: str, sch: ibis.Schema) -> None:
        """Add the nullable columns of `sch` that table `name` lacks (a table created by an
        older version: old rows read NULL there). DDL built by sqlglot from our own schema,
        never from input."""
        con = self.backends.get()
        missing = [c for c in sch.names if c not in con.table(name).columns]
        if not missing or self.read_only:
            return
        with self._write_lock, schema_lock(con):
            have = set(con.table(name).columns)
            for column in missing:
                if column in have:
                    continue
                kind = con.compiler.type_mapper.from_ibis(sch[column])
                ddl = sge.Alter(this=sge.to_table(name), kind="TABLE", actions=[
                    sge.ColumnDef(this=sge.to_identifier(column, quoted=True), kind=kind)])
                con.con.execute(ddl.sql(dialect=con.name))
            self.forget_tables()

    def ping(self) -> None:
        """Check that the database answers; raises DatabaseUnavailableError if not (for
        `/healthz`: call it from a thread, it may wait for a connection timeout)."""
        self.backends.ping()

    def table(self, name: str) -> ir.Table:
        """The table, its schema read once per connection: Ibis asks the catalog on every
        `con.table` (a query each, ~10 ms; a page's reads took 13 of them). Kept on the
        connection object itself (backends compare equal across threads: a shared dict
        would hand one thread's connection to another); our own DDL forgets them
        (`forget_tables`); columns another process adds are not selected until this one
        reconnects."""
        con = self.con
        mark, known = getattr(con, "_segmently_tables", (None, None))
        if mark != self._schemas or known is None:
            known = {}
            con._segmently_tables = (self._schemas, known)
        found = known.get(name)
        if found is None:
            found = known[name] = con.table(name)
        return found

    def forget_tables(self) -> None:
        """After DDL: every connection reads the schemas (and the table list) again."""
        self._schemas += 1
        self._existing.clear()

    def events(self, project_id: str) -> ir.Table:
        t = self.table(schema.EVENTS)
        return t.filter(t.project_id == project_id)

    # -- writes ------------------------------------------------------------------------
    def append(
        self, project_id: str, messages: list[Message], received_at: datetime | None = None
    ) -> AppendResult:
        """Store messages in one transaction; returns how many were new."""
        if not messages:
            return AppendResult(0, 0)
        rows = to_rows(project_id, messages, received_at or utcnow())
        return self.append_rows(project_id, rows)

    def append_rows(self, project_id: str, rows: RowBatch) -> AppendResult:
        """Store a batch of rows in one transaction: events whose message id is new for
        the project (the first occurrence of an id repeated in the batch wins), and the
        derived rows (traits, identities, account links, rollups) of the events that
        were inserted. Most batches derive nothing, and then cost one INSERT.

        On PostgreSQL the database decides what is new (a unique key, store/postgres.py),
        so other processes writing the same ids meanwhile store nothing twice; a
        transaction lost with its connection (or chosen as a deadlock victim) is retried
        once on a fresh connection, which the unique key makes safe even if it had
        committed. Still unreachable: DatabaseUnavailableError."""
        events = rows.events
        if events.num_rows == 0:
            return AppendResult(0, 0)
        oldest = self._oldest(events)
        derived = {name: table for name, table in rows.tables().items()
                   if name != schema.EVENTS and table.num_rows}
        with self._write_lock:
            new = retry_transient(self.engine, lambda: self._append_once(
                project_id, events, derived, oldest))
        return AppendResult(events.num_rows, new)

    def _append_once(self, project_id: str, events: pa.Table, derived: dict[str, pa.Table],
                     oldest: datetime | None) -> int:
        con = self.backends.get()
        with transaction(con):
            reopen(con, received_days(events), day_number(utcnow()))
            if con.name == "duckdb":  # all of it in SQL (store/fastpath.py)
                return append_new_events(con, project_id, events, derived, oldest)
            new = insert_new_events(con, project_id, events, oldest)
            written = {name: _of_messages(table, new["message_id"])
                       for name, table in derived.items()}
            written[schema.ROLLUPS] = rollup(new)
            for name, table in written.items():
                if table.num_rows:
                    insert_arrow(con, name, table)
        return new.num_rows

    def append_new_rows(self, project_id: str, rows: RowBatch) -> AppendResult:
        """Bulk append WITHOUT the dedup lookup, in one transaction.

        Only for rows whose message ids are unique by construction and absent from the
        project (generated data, e.g. `segmently demo` into an empty project): the lookup
        `append_rows` does reads every recent id of the project, which makes filling a
        project chunk by chunk quadratic. Repeated ids are NOT dropped here.
        """
        for name, table in rows.tables().items():
            if table.num_rows and not pc.all(pc.equal(table["project_id"], project_id)).as_py():
                raise ValueError(f"{name} rows of another project than {project_id}")
        tables = rows.tables() | {schema.ROLLUPS: rollup(rows.events)}
        with self._write_lock:
            con = self.backends.get()
            with transaction(con):
                reopen(con, received_days(rows.events), day_number(utcnow()))
                for name, table in tables.items():
                    if table.num_rows:  # not ibis.memtable: Ibis keeps those registered
                        insert_arrow(con, name, table)
        return AppendResult(rows.events.num_rows, rows.events.num_rows)

    def insert_table(self, name: str, table: pa.Table) -> None:
        """Insert rows that need no deduplication (projects, definitions)."""
        self.insert_tables({name: table})

    def insert_tables(self, tables: dict[str, pa.Table]) -> None:
        """Insert into several tables in one transaction (empty tables are skipped)."""
        with self._write_lock:
            con = self.backends.get()
            with transaction(con):
                for name, table in tables.items():
                    if table.num_rows:
                        insert_arrow(con, name, table)

    def replace_rows(self, project_id: str, keep: Collection[datetime],
                     tables: dict[str, pa.Table], column: str = "as_of") -> None:
        """In one transaction: delete the project's rows of each table whose `column` is
        not one of the instants in `keep`, then insert `tables`' rows. For derived tables
        that keep only their latest few instants (stored profiles). The DELETE is a
        sqlglot expression with literal values, compiled for the engine, never text
        joined from input."""
        where: sge.Condition = sge.column("project_id").eq(sge.convert(project_id))
        if keep:
            kept = [sge.cast(sge.convert(t.isoformat(sep=" ")), "timestamp") for t in keep]
            where = where.and_(sge.not_(sge.column(column).isin(*kept)))
        with self._write_lock:
            con = self.backends.get()
            with transaction(con):
                for name in tables:
                    con.raw_sql(sge.delete(name, where=where))
                for name, table in tables.items():
                    if table.num_rows:
                        insert_arrow(con, name, table)

    def refresh_statistics(self) -> list[str]:
        """On PostgreSQL, ANALYZE the tables much written since their last statistics
        (`postgres.analyze_stale`; the planner needs them for the profile's joins);
        returns their names. Nothing to do on other engines."""
        con = self.backends.get()
        if con.name != "postgres":
            return []
        from segmently.store.postgres import analyze_stale

        with self._write_lock:
            return analyze_stale(con)

    def compact_rollups(self, now: datetime | None = None) -> int:
        """Merge the rollup rows of every receive day before today's not merged yet (each
        day once; COMPACT_DAYS days a transaction) and write their activity days
        (`store/activity.py`); returns how many days. Answers never change: only the
        number of rows evaluations read. Rows written later with a receive day in the past
        (explicit historical received_at) reopen their day (`activity.reopen`), merged
        again next time."""
        today = day_number(now or utcnow())
        con = self.backends.get()
        done = con.table(schema.COMPACTIONS).received_day
        rollups = con.table(schema.ROLLUPS)
        pending = rollups.filter(rollups.received_day < today,
                                 ~rollups.received_day.isin(done)).select("received_day").distinct()
        days = sorted(pending.to_pyarrow()["received_day"].to_pylist())
        for at in range(0, len(days), COMPACT_DAYS):
            chunk = [int(d) for d in days[at:at + COMPACT_DAYS]]
            with self._write_lock, transaction(con):
                rows = con.table(schema.ROLLUPS)
                stored = rows.filter(rows.received_day.isin(chunk)).count().to_pyarrow()
                merged = compaction_rows(rows, chunk).to_pyarrow().cast(ROLLUP_ARROW)
                delete_days(con, [schema.ACTIVITY], chunk)
                if merged.num_rows < stored.as_py():  # else one row a key already (bulk)
                    delete_days(con, [schema.ROLLUPS], chunk)
                    insert_arrow(con, schema.ROLLUPS, merged)
                con.insert(schema.ACTIVITY, activity_expr(con.table(schema.ROLLUPS), chunk))
                insert_arrow(con, schema.COMPACTIONS, pa.table(
                    {"received_day": pa.array(chunk, pa.int32()),
                     "compacted_at": pa.array([utcnow()] * len(chunk), pa.timestamp("us"))}))
        return len(days)

    def _oldest(self, events: pa.Table) -> datetime | None:
        """Ids received before this are no longer deduplicated against (None: all)."""
        if self.dedup_window is None:
            return None
        return pc.min(events["received_at"]).as_py() - self.dedup_window


def schema_lock(con: BaseBackend) -> contextlib.AbstractContextManager[None]:
    """Held while creating tables: across processes on PostgreSQL (store/postgres.py),
    nothing more elsewhere (DuckDB has one writing process)."""
    if con.name != "postgres":
        return contextlib.nullcontext()
    from segmently.store import postgres  # psycopg is only imported for PostgreSQL

    return postgres.schema_lock(con)


def _of_messages(table: pa.Table, ids: pa.ChunkedArray | pa.Array) -> pa.Table:
    """The rows of a derived table written by the messages whose events were inserted."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    return table.filter(pc.is_in(table["message_id"], ids))
