"""The profile runs a running server keeps fresh (`profile/stored.py` stores them): found
or recorded once per (project, instant, vocabulary), in the background after a refresh for
the projects whose pages were viewed lately. Next hop: the read models that take it as
their `RunSource` (`segments/member_views.py`, `insights/basis.py`)."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from segmently.profile.config import Vocabulary
from segmently.profile.stored import Run, ensure_tables, find, record, runs, vocabulary_key
from segmently.store import Store

log = logging.getLogger(__name__)
RECENT_VIEW_SECONDS = 3600.0  # after a refresh, runs are recorded for projects viewed since


class Keeper:
    """Finds a run or records it, one computation per (project, instant, vocabulary) at a
    time: concurrent requests for a cold instant wait for the first one's run. Runs
    recorded in the background go through one worker thread, so they never pile up and
    reuse one database connection."""

    def __init__(self, recent_view: float = RECENT_VIEW_SECONDS) -> None:
        self.recent_view = recent_view
        self._viewed: dict[str, float] = {}  # project -> when a page last read a run
        self._locks: dict[tuple[str, datetime, str], threading.Lock] = {}
        self._pending: set[tuple[str, datetime, str]] = set()
        self._guard = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segmently-runs")
        self._ready: weakref.WeakSet[Store] = weakref.WeakSet()  # tables checked once

    def _tables(self, store: Store) -> None:
        """ensure_tables once per store, not on every page view (it describes each table)."""
        if store not in self._ready:
            ensure_tables(store)
            self._ready.add(store)

    def ensure(self, store: Store, project_id: str, vocab: Vocabulary,
               as_of: datetime) -> Run:
        """The run at as_of, recorded now (and waited for) when missing."""
        key = (project_id, as_of, vocabulary_key(vocab))
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        try:
            with lock:
                self._tables(store)
                return find(store, project_id, vocab, as_of) or \
                    record(store, project_id, vocab, as_of)
        finally:
            with self._guard:  # a later caller finds the stored run
                self._locks.pop(key, None)

    def current(self, store: Store, project_id: str, vocab: Vocabulary,
                as_of: datetime) -> Run:
        """What a page shows for as_of: its run; while that is being recorded (queued
        here when nobody has), the newest earlier run, so no page waits a minute after
        each refresh of a million users; recorded now only when the project has no run
        at all yet."""
        with self._guard:
            self._viewed[project_id] = time.monotonic()
        self._tables(store)
        found = [r for r in runs(store, project_id) if r.vocabulary == vocabulary_key(vocab)]
        exact = next((r for r in found if r.as_of == as_of), None)
        earlier = next((r for r in found if r.as_of < as_of), None)  # newest first
        if exact is not None:
            return exact
        if earlier is None:
            return self.ensure(store, project_id, vocab, as_of)
        self.later(store, project_id, vocab, as_of)
        return earlier

    def later(self, store: Store, project_id: str, vocab: Vocabulary, as_of: datetime,
              only_if_used: bool = False) -> None:
        """Record the run at as_of in the background (once, however often asked). With
        `only_if_used` (after a refresh), only for projects whose pages read a run within
        `recent_view` seconds: nobody looking, no minute of work every refresh; the next
        view shows the previous run and queues this one."""
        key = (project_id, as_of, vocabulary_key(vocab))
        with self._guard:
            seen = self._viewed.get(project_id)
            if only_if_used and (seen is None or time.monotonic() - seen > self.recent_view):
                return
            if key in self._pending:
                return
            self._pending.add(key)
        self._worker.submit(self._record_quietly, key, store, vocab)

    def _record_quietly(self, key: tuple[str, datetime, str], store: Store,
                        vocab: Vocabulary) -> None:
        project_id, as_of, _ = key
        try:
            self.ensure(store, project_id, vocab, as_of)
        except Exception:  # noqa: BLE001 - pages keep the earlier run; the next view retries
            log.exception("recording the profile run of %s at %s failed", project_id, as_of)
        finally:
            with self._guard:
                self._pending.discard(key)

    def wait(self) -> None:
        """Until the background runs queued so far are recorded (tests, shutdown)."""
        self._worker.submit(lambda: None).result()
