"""Snapshots and transitions: sizes, enter/exit records, idempotence, backfills."""

from __future__ import annotations

from datetime import datetime, timedelta

from segmently.segments import snapshots as snap
from segmently.store import Store

T = datetime(2026, 5, 1)
H = timedelta(hours=1)


def members(store: Store, at: datetime) -> set[str]:
    return set(snap.members_at(store, "p", "power", at).to_pyarrow()["user_id"].to_pylist())


def changes(store: Store) -> list[tuple[str, str, datetime]]:
    rows = snap.transitions(store, "p", "power").to_pyarrow().to_pylist()
    return sorted((r["user_id"], r["kind"], r["as_of"]) for r in rows)


def test_transitions_between_snapshots(store: Store) -> None:
    r1 = snap.record(store, "p", "power", {"a", "b"}, T)
    r2 = snap.record(store, "p", "power", {"b", "c"}, T + H)
    assert (r1.size, r1.entered, r1.exited) == (2, 2, 0)
    assert (r2.size, r2.entered, r2.exited) == (2, 1, 1)
    assert changes(store) == [("a", "entered", T), ("a", "exited", T + H),
                              ("b", "entered", T), ("c", "entered", T + H)]
    assert members(store, T) == {"a", "b"}
    assert members(store, T + H) == {"b", "c"}
    assert members(store, T + H / 2) == {"a", "b"}  # between snapshots: the earlier one
    sizes = snap.snapshots(store, "p", "power").order_by("as_of").to_pyarrow()
    assert sizes["size"].to_pylist() == [2, 2]


def test_refreshing_the_same_instant_is_idempotent(store: Store) -> None:
    snap.record(store, "p", "power", {"a"}, T)
    again = snap.record(store, "p", "power", {"a", "z"}, T)
    assert again.skipped
    assert changes(store) == [("a", "entered", T)]
    assert snap.snapshots(store, "p", "power").count().to_pyarrow().as_py() == 1


def test_backfill_between_snapshots_keeps_later_memberships(store: Store) -> None:
    snap.record(store, "p", "power", {"a"}, T)
    snap.record(store, "p", "power", {"a", "b"}, T + 2 * H)
    snap.record(store, "p", "power", {"c"}, T + H)  # backfilled in the middle
    assert members(store, T) == {"a"}
    assert members(store, T + H) == {"c"}
    assert members(store, T + 2 * H) == {"a", "b"}


def test_segments_and_projects_are_separate(store: Store) -> None:
    snap.record(store, "p", "power", {"a"}, T)
    snap.record(store, "p", "dormant", {"b"}, T)
    snap.record(store, "q", "power", {"x"}, T)
    assert members(store, T) == {"a"}
    assert set(snap.members_at(store, "q", "power", T).to_pyarrow()["user_id"].to_pylist()) == {"x"}
