"""What a running server keeps in memory about memberships: `MembershipIndex` answers
"which segments is this user in?" without touching the database (in-app targeting wants
single-digit milliseconds): per project, user id -> segment names, read from each live
segment's latest snapshot (`segments/snapshots.py`) and rebuilt after every refresh
(`runtime/refresher.py`). It is as fresh as the last refresh, and says when that was.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

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
