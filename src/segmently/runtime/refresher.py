"""The refresh schedule of a running server. `Refresher` runs refreshes (`core.Project`):
on request, and on a schedule in a thread. A lock per project keeps one project's
refreshes from overlapping (a scheduled tick skips a project whose refresh is running; a
requested refresh waits for that project's only), while another project's refresh runs
at the same time: a big project's long refresh never delays a small one's. After each, the
membership index (`runtime/memberships.py`) is reloaded and `after` is told (the profile
runs, `runtime/profiles.py`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

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
                 after: Callable[[str, datetime], None] | None = None):
        self.store = store
        self.after = after  # (project, as_of) once a refresh is stored, e.g. to warm caches
        self.index = index
        self.interval = interval
        self._locks: dict[str, threading.Lock] = {}  # project -> held while it refreshes
        self._locks_lock = threading.Lock()
        self._ticking = threading.Lock()  # one scheduled pass (and compaction) at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
            try:  # finished days' rollups merged first: fewer rows for every evaluation
                self.store.compact_rollups()
            except Exception:  # noqa: BLE001 - an optimisation; refreshes go on without it
                log.exception("rollup compaction failed")
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

    def start(self) -> None:
        """Start the schedule (nothing when the interval is 0)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
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
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
