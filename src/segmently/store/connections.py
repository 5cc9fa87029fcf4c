"""Lost PostgreSQL connections: telling them apart, replacing them, and saying so.

A PostgreSQL connection dies when the server restarts or an administrator runs
`pg_terminate_backend`; psycopg does not reconnect by itself, so before this module every
call of a thread whose connection had died failed forever. Now:

- `lost(con)` notices a dead connection before it is used: psycopg marks a connection
  `closed`/`broken` once a command failed on it, and an idle connection whose socket is
  readable has been told something unasked, which on our connections (no LISTEN) is the
  server's FATAL goodbye before it closes the socket (poll with a zero timeout: a syscall,
  no round trip). A false alarm costs one reconnect, nothing else.
- `Reconnector.revive(con)` reconnects the same Ibis backend object in place (so table
  expressions bound to it keep working), pausing `RECONNECT_PAUSE` after a failed attempt
  so a server that is down is not asked again by every call.
- `DatabaseUnavailableError` is what callers get while the database cannot be reached;
  the web layer answers it (and any `is_disconnect` error) 503 with Retry-After, which
  every SDK retries. Nothing is acknowledged that was not committed, and a retried batch
  is stored once (the unique key of `store/postgres.py`).

A connection is never replaced inside one of our transactions (`transaction` counts
them on the backend): the statements after the loss would otherwise autocommit on the
new connection, half a transaction. The transaction fails instead and its retry runs on
a fresh connection.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import ibis
from ibis.backends import BaseBackend

from segmently.errors import UnavailableError

CONNECT_TIMEOUT = 3  # seconds for a new connection (libpq's minimum is 2)
RECONNECT_PAUSE = 0.5  # seconds between attempts once one failed
T = TypeVar("T")
DEPTH = "_segmently_transactions"  # attribute on a backend: our open transactions

# SQLSTATEs meaning the connection is gone or refused: class 08 (connection exception),
# admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down).
_GONE = ("57P01", "57P02", "57P03")


class DatabaseUnavailableError(UnavailableError):
    """The database cannot be reached right now (down, restarting, connection lost).
    Retrying later is the remedy: answered 503 over HTTP."""

    code = "database_unavailable"


def is_disconnect(exc: BaseException) -> bool:
    """True when `exc` says the connection was lost or the server cannot be reached,
    as opposed to an error of the statement itself (disk full, bad data, ...)."""
    if isinstance(exc, DatabaseUnavailableError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return False
    state = getattr(exc, "sqlstate", None)
    if state is None:  # raised by the client: refused, closed, lost while reading
        return True
    return state.startswith("08") or state in _GONE


def unavailable(exc: BaseException) -> DatabaseUnavailableError:
    """The error to hand to callers for a lost connection `exc`."""
    if isinstance(exc, DatabaseUnavailableError):
        return exc
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    error = DatabaseUnavailableError(f"unreachable: {first}")
    error.__cause__ = exc
    return error


def connect_postgres(url: str) -> BaseBackend:
    """An Ibis PostgreSQL backend whose connection attempts give up after
    CONNECT_TIMEOUT seconds (unless the URL sets `connect_timeout` itself); a server
    that cannot be reached raises DatabaseUnavailableError."""
    options: dict[str, Any] = {}
    if "connect_timeout=" not in url:
        options["connect_timeout"] = CONNECT_TIMEOUT
    try:
        return ibis.connect(url, **options)
    except Exception as exc:
        if is_disconnect(exc):
            raise unavailable(exc) from exc
        raise


def _readable(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    ready, _, _ = select.select([fd], [], [], 0)  # pragma: no cover - not on Linux
    return bool(ready)


def lost(con: BaseBackend) -> bool:
    """Whether this PostgreSQL backend's connection is dead (see the module docstring)."""
    raw = getattr(con, "con", None)
    if raw is None:
        return True
    if raw.closed or raw.broken:
        return True
    from psycopg.pq import TransactionStatus

    if raw.info.transaction_status != TransactionStatus.IDLE:
        return False  # busy or inside a transaction: its next statement will tell
    try:
        return _readable(raw.pgconn.socket)
    except Exception:  # noqa: BLE001 - no socket to ask: as good as dead
        return True


class Reconnector:
    """Reconnects dead backends, at most one failed attempt per RECONNECT_PAUSE for all
    threads (a down server answers every call at once, not after a connect each)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._retry_at = 0.0
        self._last = ""

    def check(self) -> None:
        """Raise at once while the pause after a failed attempt lasts."""
        with self._lock:
            if time.monotonic() < self._retry_at:
                raise DatabaseUnavailableError(self._last)

    def failed(self, exc: BaseException) -> DatabaseUnavailableError:
        error = unavailable(exc)
        with self._lock:
            self._retry_at = time.monotonic() + RECONNECT_PAUSE
            self._last = str(error)
        return error

    def succeeded(self) -> None:
        with self._lock:
            self._retry_at = 0.0

    def open(self, url: str) -> BaseBackend:
        """A new backend for a thread that has none yet."""
        self.check()
        try:
            con = connect_postgres(url)
        except DatabaseUnavailableError as exc:
            raise self.failed(exc) from exc
        self.succeeded()
        return con

    def revive(self, con: BaseBackend) -> None:
        """Replace `con`'s dead connection by a new one, in place."""
        if getattr(con, DEPTH, 0):
            raise DatabaseUnavailableError(
                "unreachable: the connection was lost inside a transaction (rolled back)")
        self.check()
        old = con.con
        try:
            old.close()
        except Exception:  # noqa: BLE001 - it is dead already
            pass
        try:
            con.reconnect()
        except Exception as exc:
            if is_disconnect(exc):
                raise self.failed(exc) from exc
            raise
        self.succeeded()


def ping(con: BaseBackend) -> None:
    """One `SELECT 1` round trip; raises DatabaseUnavailableError if it cannot be had."""
    try:
        con.con.execute("SELECT 1").fetchone()
    except Exception as exc:
        if is_disconnect(exc):
            raise unavailable(exc) from exc
        raise


# deadlock_detected, serialization_failure: the transaction was rolled back, retry it
_ROLLED_BACK = ("40P01", "40001")


def is_transient(exc: BaseException) -> bool:
    """A failure that a second attempt of the same transaction may not meet."""
    return is_disconnect(exc) or getattr(exc, "sqlstate", None) in _ROLLED_BACK


def retry_transient(engine: str, attempt: Callable[[], T]) -> T:
    """Run a transaction; on PostgreSQL run it once more after a transient failure (its
    statements must be safe to repeat: store/postgres.py's unique key makes appends so).
    A connection still lost on the second attempt raises DatabaseUnavailableError."""
    if engine != "postgres":
        return attempt()
    try:
        return attempt()
    except Exception as exc:
        if not is_transient(exc):
            raise
    try:
        return attempt()
    except Exception as exc:
        if is_disconnect(exc):
            raise unavailable(exc) from exc
        raise
