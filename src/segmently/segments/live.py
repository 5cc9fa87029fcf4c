"""What a running server keeps in memory: current memberships, and the refresh schedule.

`MembershipIndex` answers "which segments is this user in?" without touching the database
(in-app targeting wants single-digit milliseconds): per project, user id -> segment names,
read from each live segment's latest snapshot and rebuilt after every refresh. It is as
fresh as the last refresh, and says when that was.

`Refresher` runs refreshes: on request, and on a schedule in a thread. A lock per project
keeps one project's refreshes from overlapping (a scheduled tick skips a project whose
refresh is running; a requested refresh waits for that project's only), while another
project's refresh runs at the same time: a big project's long refresh never delays a
small one's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from segmently.profile import vocabularies
from segmently.segments import definitions as defs
from segmently.segments import refreshing
from segmently.segments import snapshots as snap
from segmently.settings import Settings
from segmently.store import Store
from segmently.store.projects import list_projects

log = logging.getLogger(__name__)
DEFAULT_INTERVAL = Settings().refresh_seconds  # the `refresh_seconds` setting's


@dataclass(frozen=True)
class Memberships:
    """One project's current memberships: user -> sorted segment names."""

    by_user: dict[str, tuple[str, ...]]
    as_of: dict[str, datetime]  # segment -> instant of the snapshot it comes from

    def of(self, user_id: str) -> tuple[str, ...]:
        return self.by_user.get(user_id, ())


def load_memberships(store: Store, project_id: str) -> Memberships:
    """Members of every live segment at its latest snapshot."""
    live = defs.current(store, project_id)
    latest = {name: row for name, row in snap.latest(store, project_id).items()
              if name in live}
    by_user: dict[str, list[str]] = {}
    for name in sorted(latest):
        ids = snap.members_at(store, project_id, name, latest[name]["as_of"])
        for user in ids.to_pyarrow()["user_id"].to_pylist():
            by_user.setdefault(user, []).append(name)
    return Memberships({u: tuple(s) for u, s in by_user.items()},
                       {n: row["as_of"] for n, row in latest.items()})


@dataclass
class MembershipIndex:
    store: Store
    _projects: dict[str, Memberships] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, project_id: str) -> Memberships | None:
        """The loaded memberships, or None when this project was never loaded."""
        return self._projects.get(project_id)

    def load(self, project_id: str) -> Memberships:
        """(Re)read one project's memberships and swap them in atomically."""
        fresh = load_memberships(self.store, project_id)
        with self._lock:
            self._projects[project_id] = fresh
        return fresh

    def ensure(self, project_id: str) -> Memberships:
        return self.get(project_id) or self.load(project_id)

    def forget_segment(self, project_id: str, segment: str) -> None:
        """A deleted segment stops being reported at once."""
        with self._lock:
            old = self._projects.get(project_id)
            if old is None:
                return
            by_user = {u: tuple(s for s in names if s != segment)
                       for u, names in old.by_user.items()}
            self._projects[project_id] = Memberships(
                {u: s for u, s in by_user.items() if s},
                {n: t for n, t in old.as_of.items() if n != segment})


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
        results = refreshing.refresh_stored(  # the stored vocabulary of this moment
            self.store, project_id, as_of, vocabularies.vocabulary(self.store, project_id))
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
