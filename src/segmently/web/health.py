"""`/healthz` and the answer to a database that cannot be reached.

`/healthz` is what a load balancer or an orchestrator asks; saying "ok" while every call
fails (what it did after PostgreSQL restarted) keeps traffic flowing to a broken
instance. So it asks the database: one `SELECT 1` on PostgreSQL, in a thread of its own
(never on the event loop: a server that does not answer would stall every request), at
most one check in flight however many probes arrive, and an answer within
HEALTH_TIMEOUT seconds whatever the database does. An embedded DuckDB cannot be
unreachable, so it is not asked.

A lost or refused connection anywhere in a request (`DatabaseUnavailableError`, or a
psycopg error that `is_disconnect` recognises) answers 503 `{"code":
"database_unavailable", "message"}` with Retry-After: SDKs retry 5xx, and the writer only
acknowledges what is committed, so nothing acknowledged is lost.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from segmently.store import Store
from segmently.store.connections import DatabaseUnavailableError, is_disconnect, unavailable

HEALTH_TIMEOUT = 2.0  # seconds /healthz waits for the database
RETRY_AFTER = "2"  # seconds, in 503 answers


def unavailable_response(message: str) -> JSONResponse:
    return JSONResponse({"code": "database_unavailable", "message": message},
                        status_code=503, headers={"Retry-After": RETRY_AFTER})


class DatabaseProbe:
    """Checks the database from one dedicated thread, one check at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segmently-health")
        self._pending: asyncio.Future[str | None] | None = None

    def _check(self) -> str | None:
        try:
            self.store.ping()
        except DatabaseUnavailableError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the database is not ready
            return str(unavailable(exc)) if is_disconnect(exc) else f"error: {exc}"
        return None

    async def problem(self) -> str | None:
        """None when the database answered; else what went wrong."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.wrap_future(self._thread.submit(self._check))
        try:
            return await asyncio.wait_for(asyncio.shield(self._pending), HEALTH_TIMEOUT)
        except TimeoutError:
            return f"unreachable: no answer within {HEALTH_TIMEOUT:g} s"


def mount_health(app: FastAPI, store: Store) -> None:
    """Add `/healthz` and the 503 handlers for an unreachable database."""
    probe = DatabaseProbe(store)

    @app.get("/healthz", tags=["ops"], responses={503: {"description": "database not ready"}})
    async def healthz() -> JSONResponse:
        """200 `{"status": "ok", "engine", "database": "ok"}` when the database answers,
        else 503 with `"status": "unavailable"` and what the database said."""
        problem = await probe.problem() if store.engine == "postgres" else None
        if problem is None:
            return JSONResponse({"status": "ok", "engine": store.engine, "database": "ok"})
        return JSONResponse({"status": "unavailable", "engine": store.engine,
                             "database": problem}, status_code=503,
                            headers={"Retry-After": RETRY_AFTER})

    @app.exception_handler(DatabaseUnavailableError)
    async def database_unavailable(request: Request, exc: DatabaseUnavailableError
                                   ) -> JSONResponse:
        return unavailable_response(f"the database cannot be reached; retry later ({exc})")

    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return

    @app.exception_handler(psycopg.Error)
    async def database_error(request: Request, exc: psycopg.Error) -> JSONResponse:
        if not is_disconnect(exc):
            raise exc  # an error of the statement itself: a 500, logged with its traceback
        return unavailable_response(
            f"the database cannot be reached; retry later ({unavailable(exc)})")
