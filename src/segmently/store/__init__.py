"""Event store over Ibis: schema, durable append with dedup, projects and keys."""

from segmently.store import schema
from segmently.store.backends import StoreLockedError, connect, normalize_url
from segmently.store.rows import Message, RowBatch, to_rows
from segmently.store.store import AppendResult, Store, utcnow

__all__ = [
    "AppendResult",
    "Message",
    "RowBatch",
    "Store",
    "StoreLockedError",
    "connect",
    "schema",
    "normalize_url",
    "to_rows",
    "utcnow",
]
