"""The insight answers a running server keeps: an analysis over a big project reads
millions of rollup rows (seconds at a million users), while its answer only changes as
the data does. `Answers` keeps each (project, analysis, parameters) answer until the
project's next full refresh (or a definition saved through the API, or `MAX_AGE`), and
recomputes, after each refresh, the answers asked for in the last hour, in one background
thread: a page viewed again, or viewed after a refresh, reads a kept answer.

Each answer carries `computed_at`; a parameter set nobody asked for before is computed on
request (one computation per key at a time: concurrent requests wait for the first).
Called by `web/insights_api.py`; told of refreshes by `web/state.py`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from segmently.store import utcnow

log = logging.getLogger(__name__)
MAX_AGE = 900.0  # seconds an answer is kept even without a refresh (events keep coming)
RECENT = 3600.0  # answers asked for within this long are recomputed after a refresh
MAX_KEPT = 500  # per server: the oldest are dropped first
Key = tuple[str, str, str]  # project, analysis, parameters as sorted JSON
Compute = Callable[[], dict[str, Any]]


class Answers:
    def __init__(self, max_age: float = MAX_AGE) -> None:
        self.max_age = max_age
        self._kept: dict[Key, tuple[float, dict[str, Any]]] = {}
        self._asked: dict[Key, tuple[float, Compute]] = {}
        self._locks: dict[Key, threading.Lock] = {}
        self._guard = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1,
                                          thread_name_prefix="segmently-insights")

    @staticmethod
    def key(project_id: str, name: str, params: dict[str, Any]) -> Key:
        return project_id, name, json.dumps(params, sort_keys=True, default=str)

    def get(self, key: Key, compute: Compute) -> dict[str, Any]:
        """The kept answer, else computed now (and kept)."""
        with self._guard:
            self._asked[key] = (time.monotonic(), compute)
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            found = self._kept.get(key)
            if found is not None and time.monotonic() - found[0] <= self.max_age:
                return found[1]
            return self._compute(key, compute)

    def _compute(self, key: Key, compute: Compute) -> dict[str, Any]:
        answer = {**compute(), "computed_at": utcnow().isoformat()}
        with self._guard:
            self._kept[key] = (time.monotonic(), answer)
            while len(self._kept) > MAX_KEPT:
                self._kept.pop(next(iter(self._kept)))
        return answer

    def drop(self, key: Key) -> None:
        with self._guard:
            self._kept.pop(key, None)

    def changed(self, project_id: str) -> None:
        """The project's data or definitions changed: drop its answers, and (after a
        refresh) recompute in the background those asked for lately."""
        now = time.monotonic()
        with self._guard:
            for key in [k for k in self._kept if k[0] == project_id]:
                del self._kept[key]
            again = [(k, c) for k, (at, c) in self._asked.items()
                     if k[0] == project_id and now - at <= RECENT]
            for key in [k for k, (at, _) in self._asked.items() if now - at > RECENT]:
                del self._asked[key]
        for key, compute in again:
            self._worker.submit(self._warm, key, compute)

    def _warm(self, key: Key, compute: Compute) -> None:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        try:
            with lock:
                if key not in self._kept:
                    self._compute(key, compute)
        except Exception:  # noqa: BLE001 - the next request computes it and says why
            log.exception("recomputing insight %s of project %s failed", key[1], key[0])
