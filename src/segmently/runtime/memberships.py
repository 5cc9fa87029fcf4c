"""What a running server keeps in memory about memberships: `MembershipIndex` answers
"which segments is this user in?" without touching the database (in-app targeting wants
single-digit milliseconds): per project, user id -> segment names, read from the stored
transitions (`segments/snapshots.py`), rebuilt after every full refresh and changed in
place by every incremental one (`runtime/refresher.py`), so a user who just became a
member is targeted within seconds.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from segmently.segments import definitions as defs
from segmently.segments import snapshots as snap
from segmently.store import Store


@dataclass(frozen=True)
class Memberships:
    """One project's current memberships: user -> sorted segment names."""

    by_user: dict[str, tuple[str, ...]]
    as_of: dict[str, datetime]  # segment -> instant of the snapshot it comes from

    def of(self, user_id: str) -> tuple[str, ...]:
        return self.by_user.get(user_id, ())


def load_memberships(store: Store, project_id: str) -> Memberships:
    """Members of every live segment now: at its latest snapshot, with the entries and
    exits incremental refreshes wrote since (`refreshing.refresh_users`)."""
    live = defs.current(store, project_id)
    latest = {name: row for name, row in snap.latest(store, project_id).items()
              if name in live}
    snap.ensure_tables(store)
    rows = snap.members_at_each(store, project_id, dict.fromkeys(live, snap.END)) \
        .order_by(["user_id", "segment"]).to_pyarrow().to_pylist() if live else []
    by_user: dict[str, list[str]] = {}
    for row in rows:
        by_user.setdefault(row["user_id"], []).append(row["segment"])
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
        # a million users' tuples live until the next load: a full collection scanning
        # them stalls every thread for a second (bench/RESULTS.md, In-app targeting)
        gc.freeze()
        with self._lock:
            self._projects[project_id] = fresh
        return fresh

    def ensure(self, project_id: str) -> Memberships:
        return self.get(project_id) or self.load(project_id)

    def apply(self, project_id: str, changes: dict[str, tuple[pa.Array, pa.Array]]) -> None:
        """An incremental refresh's entries and exits, at once (in place: a pass changes
        a few users of a big project)."""
        with self._lock:
            found = self._projects.get(project_id)
            if found is None:
                return
            for segment, (entered, exited) in changes.items():
                for user in entered.to_pylist():
                    found.by_user[user] = tuple(sorted({*found.of(user), segment}))
                for user in exited.to_pylist():
                    left = tuple(s for s in found.of(user) if s != segment)
                    if left:
                        found.by_user[user] = left
                    else:
                        found.by_user.pop(user, None)

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
