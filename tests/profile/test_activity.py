"""Activity metrics on a hand-checked log, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from segmently.profile import activity, sessions
from segmently.store import Message, Store
from segmently.store.views import resolved_events


@pytest.fixture
def store(engine_store: Store) -> Store:
    """Profile metrics are engine work: DuckDB, PostgreSQL and Spark over Parquet."""
    return engine_store


AS_OF = datetime(2026, 3, 31, 0, 0, 0)  # a Tuesday


def ev(mid: str, user: str, at: datetime, received: datetime | None = None) -> Message:
    return Message(message_id=mid, type="track", event="clicked", timestamp=at,
                   source="native", user_id=user)


@pytest.fixture
def loaded(store: Store) -> Store:
    d = AS_OF - timedelta(days=1)  # Monday 30 March
    msgs = [
        # ann: two sessions on Monday (gap 31 min splits; gap 30 min does not), one on 2 March
        ev("a1", "ann", d.replace(hour=9)),
        ev("a2", "ann", d.replace(hour=9, minute=30)),          # +30 min: same session
        ev("a3", "ann", d.replace(hour=10, minute=1)),          # +31 min: new session
        ev("a4", "ann", d.replace(hour=10, minute=11)),
        ev("a5", "ann", datetime(2026, 3, 2, 12)),              # 29 days before as_of: in window
        ev("a6", "ann", datetime(2026, 2, 1, 12)),              # outside the 30-day window
        # bob: only long ago
        ev("b1", "bob", datetime(2026, 1, 10, 8)),
        # cat: Sunday 29 March and Monday 30 March: two days, two ISO weeks
        ev("c1", "cat", datetime(2026, 3, 29, 23, 50)),
        ev("c2", "cat", datetime(2026, 3, 30, 0, 10)),          # +20 min: same session
    ]
    store.append("p", msgs, received_at=datetime(2026, 1, 1))
    return store


def rows(store: Store) -> dict[str, dict]:
    t = activity(resolved_events(store, "p", AS_OF, known_at=AS_OF), AS_OF)
    return {r["user_id"]: r for r in t.to_pyarrow().to_pylist()}


def test_activity_metrics(loaded: Store) -> None:
    got = rows(loaded)
    ann, bob, cat = got["ann"], got["bob"], got["cat"]
    assert ann["first_seen"] == datetime(2026, 2, 1, 12)
    assert ann["last_seen"] == datetime(2026, 3, 30, 10, 11)
    assert ann["days_since_last_seen"] == 0
    assert (ann["events_total"], ann["events_window"]) == (6, 5)
    assert ann["active_days_window"] == 2  # 2 March and 30 March
    assert ann["active_weeks_window"] == 2
    # sessions in window: 2 March (1 event), 30 March 9:00-9:30, 30 March 10:01-10:11
    assert ann["sessions_window"] == 3
    assert ann["avg_session_seconds"] == pytest.approx((0 + 1800 + 600) / 3)
    assert ann["stickiness"] == pytest.approx(2 / 30)
    assert (bob["events_window"], bob["sessions_window"], bob["active_days_window"]) == (0, 0, 0)
    assert bob["days_since_last_seen"] == 79  # 10 Jan 08:00 -> 31 Mar 00:00 is 79.67 days
    assert bob["avg_session_seconds"] is None
    assert (cat["active_days_window"], cat["active_weeks_window"]) == (2, 2)
    assert (cat["sessions_window"], cat["avg_session_seconds"]) == (1, 1200)


def test_session_gap_is_configurable(loaded: Store) -> None:
    ann = resolved_events(loaded, "p", AS_OF, known_at=AS_OF).filter(
        lambda t: t.person_id == "ann")
    s = sessions(ann, gap_seconds=3600)
    spans = sorted((r["end"] - r["start"], r["events"]) for r in s.to_pyarrow().to_pylist())
    assert spans == [(0, 1), (0, 1), (4260, 4)]  # the hour gap merges the Monday sessions


def test_late_data_is_invisible_to_past_as_of(loaded: Store) -> None:
    loaded.append("p", [ev("late", "dan", datetime(2026, 3, 20))],
                  received_at=AS_OF + timedelta(days=3))
    assert "dan" not in rows(loaded)
