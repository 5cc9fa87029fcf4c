"""DuckDB files of a store are created readable by their owner only (0600, dirs 0700).

A DuckDB file holds every event, trait and secret-key hash. DuckDB creates the database
file, its write-ahead log `<db>.wal`, the checkpoint WAL and spill files under `<db>.tmp/`
with mode 0666 less the process umask, so with the usual umask 022 any local user could
read them. DuckDB has no setting for the mode (only its own secret files are private),
and a chmod after opening cannot cover the WAL: DuckDB deletes it at every checkpoint and
the next write creates it again, for as long as the database is open.

So while Segmently holds a DuckDB file open, the process umask includes 077, and the
previous umask comes back when the last such connection is closed (`disconnect`, or
garbage collection of a backend never closed). The umask is process-wide: a reference
count under a lock makes concurrent opens and closes from several threads (or several
stores) safe, and other files the process creates meanwhile are owner-only too (a
stricter mode, never a looser one). A umask set by other code while a store is open is
replaced by the saved one at the last close. Existing files keep their mode: only what
DuckDB creates is affected. In-memory databases touch no file and change nothing.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path
from typing import Any

import duckdb
from ibis.backends.duckdb import Backend as DuckDBBackend

OWNER_ONLY = 0o077  # bits removed from every new file's mode

_lock = threading.Lock()
_holders = 0
_saved_umask = 0


def _acquire() -> None:
    global _holders, _saved_umask
    with _lock:
        current = os.umask(OWNER_ONLY)  # reading the umask means setting it
        os.umask(current | OWNER_ONLY)  # again on every open: in case it was changed
        if _holders == 0:
            _saved_umask = current
        _holders += 1


def _release() -> None:
    global _holders
    with _lock:
        _holders -= 1
        if _holders == 0:
            os.umask(_saved_umask)


class _Hold:
    """One connection's share of the owner-only umask, given back exactly once."""

    def __init__(self) -> None:
        self._held = True
        self._lock = threading.Lock()
        _acquire()

    def release(self) -> None:
        with self._lock:
            if not self._held:
                return
            self._held = False
        _release()


class OwnerOnlyBackend(DuckDBBackend):
    """An Ibis DuckDB backend that gives its share of the owner-only umask back when it
    disconnects."""

    _hold: _Hold | None = None

    def disconnect(self) -> None:
        try:
            super().disconnect()
        finally:
            if self._hold is not None:
                self._hold.release()


def connect_duckdb(path: Path | None, *, read_only: bool,
                   config: dict[str, Any]) -> DuckDBBackend:
    """Open a DuckDB file (or `:memory:` when `path` is None) as an Ibis backend; files
    DuckDB creates for it while it is open are owner-only. DuckDB's exceptions pass
    through unchanged (nothing stays held when the open fails)."""
    if path is None:
        return DuckDBBackend.from_connection(duckdb.connect(":memory:", read_only=read_only,
                                                            config=config))
    hold = _Hold()
    try:
        raw = duckdb.connect(str(path), read_only=read_only, config=config)
    except BaseException:
        hold.release()
        raise
    backend = OwnerOnlyBackend.from_connection(raw)
    backend._hold = hold
    weakref.finalize(backend, hold.release)  # a backend dropped without disconnect()
    return backend
