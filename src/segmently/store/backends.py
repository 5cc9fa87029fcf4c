"""Opening an Ibis backend from a URL, and the little each engine needs that Ibis leaves out.

Accepted URLs: `duckdb:///abs/path.duckdb` (or `duckdb://relative.duckdb`),
`duckdb://:memory:`, a bare path (DuckDB), `postgres://user@host:port/db` /
`postgresql://...`. Everything else is passed to
`ibis.connect`, so any Ibis backend can be named.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import ibis
from ibis.backends import BaseBackend

from segmently.settings import SettingError, declared
from segmently.store.connections import DEPTH, Reconnector, connect_postgres, lost, ping
from segmently.store.urls import StoreLockedError, duckdb_path, normalize_url


def connect(url: str, *, read_only: bool = False, memory_limit: str | None = None
            ) -> BaseBackend:
    """`memory_limit`: DuckDB's (e.g. "4GB"; the `duckdb_memory_limit` setting). DuckDB
    keeps up to 80% of RAM of blocks it has read by default; on a machine shared with other
    services a limit caps it (it spills instead)."""
    url = normalize_url(url)
    if url.startswith("duckdb://"):
        import duckdb

        from segmently.store.owner_only import connect_duckdb  # new files are 0600

        try:
            return connect_duckdb(duckdb_path(url), read_only=read_only,
                                  config={"memory_limit": memory_limit} if memory_limit else {})
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(str(exc)) from exc
            raise
        except (duckdb.InvalidInputException, duckdb.ParserException) as exc:
            raise SettingError(f"{declared('duckdb_memory_limit').env}: {memory_limit!r}: {exc}"
                               ) from exc
    return ibis.connect(url)


class ThreadLocalBackends:
    """One Ibis backend per thread over the same database.

    DuckDB connections must not be shared between threads (each thread gets a cursor of
    the one process-wide connection); PostgreSQL gets one connection per thread, replaced
    in place when it is found dead (store/connections.py).
    """

    def __init__(self, url: str, *, read_only: bool = False,
                 memory_limit: str | None = None) -> None:
        self.url = normalize_url(url)
        self.read_only = read_only
        self._postgres = self.url.startswith("postgres://")
        self._reconnector = Reconnector()
        self.root = connect_postgres(self.url) if self._postgres else connect(
            self.url, read_only=read_only, memory_limit=memory_limit)
        self._local = threading.local()
        self._all: list[BaseBackend] = [self.root]
        self._lock = threading.Lock()

    @property
    def engine(self) -> str:
        return self.root.name

    def get(self) -> BaseBackend:
        """This thread's backend. On PostgreSQL a connection found dead is replaced
        first (store/connections.py); while the server cannot be reached this raises
        DatabaseUnavailableError."""
        con = getattr(self._local, "con", None)
        if con is None:
            if threading.current_thread() is threading.main_thread():
                con = self.root
            elif self.engine == "duckdb":
                con = ibis.duckdb.from_connection(self.root.con.cursor())
            elif self._postgres:
                con = self._reconnector.open(self.url)
            else:
                con = connect(self.url)
            self._local.con = con
            with self._lock:
                self._all.append(con)
        if self._postgres and lost(con):
            self._reconnector.revive(con)
        return con

    def ping(self) -> None:
        """Check the database answers (one `SELECT 1` on PostgreSQL; an embedded DuckDB
        cannot be unreachable). Raises DatabaseUnavailableError."""
        con = self.get()
        if self._postgres:
            ping(con)

    def close(self) -> None:
        with self._lock:
            for con in reversed(self._all):
                with contextlib.suppress(Exception):
                    con.disconnect()
            self._all.clear()


class FixedBackend:
    """One backend shared by every thread: engines such as Spark manage their own threads."""

    def __init__(self, con: BaseBackend) -> None:
        self.root = con
        self.url = f"{con.name}://"

    @property
    def engine(self) -> str:
        return self.root.name

    def get(self) -> BaseBackend:
        return self.root

    def ping(self) -> None:
        """The caller's backend: nothing of ours to check."""

    def close(self) -> None:
        """The caller owns the backend (a Spark session outlives the store)."""


@contextlib.contextmanager
def transaction(con: BaseBackend) -> Iterator[None]:
    """Run the enclosed Ibis inserts as one transaction (all or nothing)."""
    if con.name == "postgres":
        depth = getattr(con, DEPTH, 0)  # while open, a lost connection is not replaced
        setattr(con, DEPTH, depth + 1)
        try:
            with con.con.transaction():
                yield
        finally:
            setattr(con, DEPTH, depth)
        return
    raw: Any = con.con
    raw.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
