"""Event store over Ibis: schema, durable append with dedup, projects and keys.

`Store` is what every stage reads and writes through: `collect/` and the group-commit
writer append to it, `profile/` and `segments/` read its tables (`views.py`, `rollups.py`)."""

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
