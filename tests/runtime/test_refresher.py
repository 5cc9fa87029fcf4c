"""The in-memory membership index and the refresher (never two refreshes of a project at
once)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from segmently.runtime.memberships import MembershipIndex
from segmently.runtime.refresher import Refresher
from segmently.segments import definitions as defs
from segmently.segments import snapshots as snap
from segmently.store import Message, Store
from segmently.store.projects import create_project

T = datetime(2026, 5, 1)


def track(user: str, event: str, i: int) -> Message:
    return Message(message_id=f"{user}-{event}-{i}", type="track", event=event,
                   timestamp=T - timedelta(hours=i + 1), source="test", user_id=user)


def test_refresh_fills_the_index_and_ticks_never_overlap(store: Store) -> None:
    pid = create_project(store, "live").project.project_id
    store.append(pid, [track("ann", "a", 0), track("ann", "b", 0), track("ben", "a", 0),
                       track("cid", "b", 1)], received_at=T - timedelta(minutes=1))
    defs.save(store, pid, "did_a", "", {"kind": "performed", "event": "a"})
    defs.save(store, pid, "did_b", "", {"kind": "performed", "event": "b"})
    index = MembershipIndex(store)
    refresher = Refresher(store, index, interval=0)
    results = refresher.refresh(pid, T)
    assert sorted((r.segment, r.size, r.entered) for r in results) == [("did_a", 2, 2),
                                                                       ("did_b", 2, 2)]
    known = index.get(pid)
    assert known is not None
    assert (known.of("ann"), known.of("ben"), known.of("cid"), known.of("zed")) == (
        ("did_a", "did_b"), ("did_a",), ("did_b",), ())
    assert set(known.as_of.values()) == {T}
    index.forget_segment(pid, "did_a")
    assert (index.get(pid).of("ann"), index.get(pid).of("ben")) == (("did_b",), ())

    blocked, released = threading.Event(), threading.Event()
    answers: list[list[str]] = []

    def hold() -> None:  # a refresh of the project in progress holds its lock
        with refresher._lock(pid):
            blocked.set()
            released.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    blocked.wait(10)
    assert refresher.running(pid)
    answers.append(refresher.tick())  # the project is skipped: its refresh is running
    released.set()
    holder.join()
    answers.append(refresher.tick())  # runs: refreshes every project at "now"
    assert answers == [[], [pid]]
    assert snap.snapshots(store, pid, "did_a").count().to_pyarrow().as_py() == 2
    # the tick merged the rollups of the (past) day the events arrived on
    merged = store.table("rollup_compactions").received_day.to_pyarrow().to_pylist()
    assert merged == [((T - timedelta(minutes=1)) - datetime(1970, 1, 1)).days]
