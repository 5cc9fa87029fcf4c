"""Event store over Ibis: schema, durable append with dedup, projects and keys.

`Store` is what every stage reads and writes through: `collect/` and the group-commit
writer append to it, `profile/` and `segments/` read its tables (`views.py`, `rollups.py`).

The names below are imported on first use (PEP 562): `from segmently.store import
normalize_url` costs no engine import, so the command line starts without Ibis or Arrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_HOMES = {
    "AppendResult": "store", "Store": "store", "utcnow": "store",
    "Message": "rows", "RowBatch": "rows", "to_rows": "rows",
    "connect": "backends", "StoreLockedError": "urls", "normalize_url": "urls",
}
__all__ = ["AppendResult", "Message", "RowBatch", "Store", "StoreLockedError", "connect",
           "normalize_url", "schema", "to_rows", "utcnow"]

if TYPE_CHECKING:
    from segmently.store import schema
    from segmently.store.backends import connect
    from segmently.store.rows import Message, RowBatch, to_rows
    from segmently.store.store import AppendResult, Store, utcnow
    from segmently.store.urls import StoreLockedError, normalize_url


def __getattr__(name: str) -> Any:
    if name == "schema":
        return importlib.import_module("segmently.store.schema")
    if name not in _HOMES:
        raise AttributeError(f"module 'segmently.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"segmently.store.{_HOMES[name]}"), name)
    globals()[name] = value
    return value
