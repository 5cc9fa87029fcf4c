"""The refresh schedule of a running server. `Refresher` runs refreshes (`core.Project`):
on request, and on a schedule in a thread. A lock per project keeps one project's
refreshes from overlapping (a scheduled tick skips a project whose refresh is running; a
requested refresh waits for that project's only), while another project's refresh runs
at the same time: a big project's long refresh never delays a small one's. After each, the
membership index (`runtime/memberships.py`) is reloaded and `after` is told (the profile
runs, `runtime/profiles.py`).

Between full refreshes, an incremental pass every `incremental` seconds re-evaluates only
the users the app `touch`ed (new events committed) in the segments that depend on the user
alone (`core.Project.refresh_users`), writes their entries and exits, changes the index in
place and tells `after_changes` (the deliverer): targeting and webhooks follow a user's
action within seconds, not at the next full refresh.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import pyarrow as pa

from segmently.core import Project
from segmently.runtime.memberships import MembershipIndex
from segmently.segments import snapshots as snap
from segmently.settings import Settings
from segmently.store import Store
from segmently.store.projects import list_projects

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = Settings().refresh_seconds  # the `refresh_seconds` setting's


class Refresher:
    """Refreshes projects (never two of one project at once) and keeps the index in step."""

    def __init__(self, store: Store, index: MembershipIndex, interval: float = DEFAULT_INTERVAL,
                 after: Callable[[str, datetime], None] | None = None,
                 incremental: float = 0.0):
        self.store = store
        self.after = after  # (project, as_of) once a refresh is stored, e.g. to warm caches
        self.after_changes: Callable[[str], None] | None = None  # after an incremental pass
        self.index = index
        self.interval = interval
        self._locks: dict[str, threading.Lock] = {}  # project -> held while it refreshes
        self._locks_lock = threading.Lock()
        self._ticking = threading.Lock()  # one scheduled pass at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.incremental = incremental  # seconds between incremental passes (0: none)
        self._touched: dict[str, set[str]] = {}  # project -> users with new events
        self._touched_lock = threading.Lock()
        self._inc_thread: threading.Thread | None = None
        self._counting: dict[str, set[str]] = {}  # project -> segments being counted
        self._counting_lock = threading.Lock()

    def _lock(self, project_id: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(project_id, threading.Lock())

    def running(self, project_id: str) -> bool:
        """Whether a refresh of the project is under way."""
        return self._lock(project_id).locked()

    def refresh(self, project_id: str, as_of: datetime | None = None
                ) -> list[snap.RefreshResult]:
        """Refresh one project now, after any refresh of the same project under way."""
        with self._lock(project_id):
            return self._refresh(project_id, as_of)

    def _refresh(self, project_id: str, as_of: datetime | None) -> list[snap.RefreshResult]:
        results = Project(self.store, project_id).refresh(as_of)
        self.index.load(project_id)
        if self.after is not None and results:
            self.after(project_id, results[0].as_of)
        return results

    def tick(self) -> list[str]:
        """Refresh every project whose refresh is not already running (those are skipped:
        the running one is as fresh); returns the ids of the projects refreshed."""
        done: list[str] = []
        if not self._ticking.acquire(blocking=False):
            return done
        try:
            for project in list_projects(self.store):
                lock = self._lock(project.project_id)
                if not lock.acquire(blocking=False):
                    continue
                try:
                    self._refresh(project.project_id, None)
                    done.append(project.project_id)
                except Exception:  # noqa: BLE001 - one project's failure must not stop others
                    log.exception("scheduled refresh of project %s failed", project.project_id)
                finally:
                    lock.release()
        finally:
            self._ticking.release()
        return done

    # -- a segment just saved -------------------------------------------------------------
    def count(self, project_id: str, name: str) -> None:
        """Snapshot a segment just saved, in the background (`core.Project.count`), so its
        pages read stored members instead of evaluating it on every view; `counting`
        says so meanwhile (the page shows "counting")."""
        with self._counting_lock:
            self._counting.setdefault(project_id, set()).add(name)
        threading.Thread(target=self._count, args=(project_id, name), daemon=True,
                         name=f"segmently-count-{name}").start()

    def counting(self, project_id: str) -> set[str]:
        """The segments of a project being counted now."""
        with self._counting_lock:
            return set(self._counting.get(project_id, ()))

    def _count(self, project_id: str, name: str) -> None:
        try:
            with self._lock(project_id):  # after a refresh under way: maybe counted there
                done = Project(self.store, project_id).count(name)
                if done is not None:
                    self.index.load(project_id)
                    if self.after is not None and done.error is None:
                        self.after(project_id, done.as_of)
        except Exception:  # noqa: BLE001 - e.g. deleted meanwhile: the refresh counts it
            log.exception("counting segment %s of project %s failed", name, project_id)
        finally:
            with self._counting_lock:
                self._counting.get(project_id, set()).discard(name)

    # -- incremental ----------------------------------------------------------------------
    def touch(self, project_id: str, users: set[str]) -> None:
        """Users with newly committed events: the next incremental pass re-evaluates them."""
        if self.incremental <= 0 or not users:
            return
        with self._touched_lock:
            self._touched.setdefault(project_id, set()).update(users)

    def refresh_touched(self, project_id: str) -> dict[str, tuple[pa.Array, pa.Array]]:
        """One incremental pass over a project's touched users, unless its full refresh is
        running (they wait for the next pass); the index changes in place."""
        lock = self._lock(project_id)
        if not lock.acquire(blocking=False):
            return {}
        try:
            with self._touched_lock:
                users = self._touched.pop(project_id, set())
            if not users:
                return {}
            try:
                changes = Project(self.store, project_id).refresh_users(tuple(sorted(users)))
            except Exception:
                with self._touched_lock:  # the database away: the next pass tries again
                    self._touched.setdefault(project_id, set()).update(users)
                raise
            if changes:
                self.index.ensure(project_id)
                self.index.apply(project_id, changes)
                if self.after_changes is not None:
                    self.after_changes(project_id)
            return changes
        finally:
            lock.release()

    def _incremental_loop(self) -> None:
        while not self._stop.wait(self.incremental):
            with self._touched_lock:
                projects = list(self._touched)
            for project_id in projects:
                try:
                    self.refresh_touched(project_id)
                except Exception:  # noqa: BLE001 - one project's failure must not stop others
                    log.exception("incremental refresh of project %s failed", project_id)

    def start(self) -> None:
        """Start the schedules (the full one unless its interval is 0, the incremental one
        unless its is)."""
        self._stop.clear()
        if self.incremental > 0 and self._inc_thread is None:
            self._inc_thread = threading.Thread(target=self._incremental_loop,
                                                name="segmently-incremental", daemon=True)
            self._inc_thread.start()
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="segmently-refresh",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - e.g. the database down: the next tick retries
                log.exception("scheduled refresh failed")

    def stop(self) -> None:
        self._stop.set()
        for thread in (self._thread, self._inc_thread):
            if thread is not None:
                thread.join(timeout=60)
        self._thread = self._inc_thread = None
