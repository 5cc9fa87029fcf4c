"""UI sessions kept in the store, so a restart of `segmently serve` signs nobody out.

A session is a random token in an HttpOnly cookie; only its SHA-256 is stored (a copy of
the database gives no usable cookie). Append-only like every table here: signing in adds
a row with the expiry, signing out adds a row with `ended_at`, and a token is valid while
it has a start row that has not expired and no end row.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa

from segmently.store.rows import arrow_schema
from segmently.store.store import Store, utcnow

SESSIONS = "ui_sessions"
SCHEMA = ibis.schema({
    "token_hash": dt.String(nullable=False),
    "project_id": dt.String(nullable=False),
    "expires_at": dt.Timestamp(nullable=False),
    "ended_at": dt.timestamp,  # set on the row that ends the session (sign-out)
})
_ARROW = arrow_schema(SCHEMA)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row(token: str, project_id: str, expires_at: datetime,
         ended_at: datetime | None) -> pa.Table:
    return pa.Table.from_pylist([{"token_hash": _digest(token), "project_id": project_id,
                                  "expires_at": expires_at, "ended_at": ended_at}],
                                schema=_ARROW)


def start(store: Store, project_id: str, lifetime: timedelta) -> tuple[str, datetime]:
    """A new session's token (shown once, for the cookie) and when it expires."""
    store.ensure_tables({SESSIONS: SCHEMA})
    token, expires_at = secrets.token_urlsafe(32), utcnow() + lifetime
    store.insert_table(SESSIONS, _row(token, project_id, expires_at, None))
    return token, expires_at


def lookup(store: Store, token: str) -> tuple[str, datetime] | None:
    """(project id, expiry) of a live session, else None (unknown, ended or expired)."""
    store.ensure_tables({SESSIONS: SCHEMA})
    t = store.table(SESSIONS)
    rows = t.filter(t.token_hash == _digest(token)).to_pyarrow().to_pylist()
    started = [r for r in rows if r["ended_at"] is None]
    if not started or len(started) < len(rows) or started[0]["expires_at"] <= utcnow():
        return None
    return started[0]["project_id"], started[0]["expires_at"]


def end(store: Store, token: str) -> None:
    """Sign-out: the session stops working here and after any restart."""
    found = lookup(store, token)
    if found is not None:
        store.insert_table(SESSIONS, _row(token, found[0], found[1], utcnow()))
