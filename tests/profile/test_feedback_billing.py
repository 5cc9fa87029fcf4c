"""NPS and billing metrics on hand-checked logs, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from segmently.profile import billing, nps
from segmently.store import Message, Store
from segmently.store.views import resolved_events


@pytest.fixture
def store(engine_store: Store) -> Store:
    """Profile metrics are engine work: DuckDB, PostgreSQL and Spark over Parquet."""
    return engine_store


AS_OF = datetime(2026, 6, 1)
D = timedelta(days=1)


def ev(mid: str, user: str, event: str, at: datetime, **props) -> Message:  # type: ignore[no-untyped-def]
    return Message(message_id=mid, type="track", event=event, timestamp=at, source="native",
                   user_id=user, properties=props)


def by_user(table) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {r["person_id"]: r for r in table.to_pyarrow().to_pylist()}


def test_latest_nps_answer_and_category(store: Store) -> None:
    store.append("p", [
        ev("1", "ann", "nps_submitted", AS_OF - 40 * D, score=3),
        ev("2", "ann", "nps_submitted", AS_OF - 5 * D, score=10),
        ev("3", "bob", "nps_submitted", AS_OF - 5 * D, score=7),
        ev("4", "bob", "nps_submitted", AS_OF - 1 * D, score="9"),  # a numeric string counts
        ev("5", "cat", "nps_submitted", AS_OF - 2 * D, score=6),
        ev("6", "dan", "nps_submitted", AS_OF - 2 * D, score=11),   # out of range: ignored
        ev("8", "dan", "nps_submitted", AS_OF - 1 * D, score="great"),  # not a number: ignored
        ev("9", "fay", "nps_submitted", AS_OF - 1 * D, score=8.0),  # a float, but whole
        ev("10", "gus", "nps_submitted", AS_OF - 1 * D, score=8.5),  # not a whole number
        ev("7", "eve", "report_viewed", AS_OF - 2 * D, score=10),   # not an NPS event
    ], received_at=AS_OF - 50 * D)
    got = by_user(nps(resolved_events(store, "p", AS_OF)))
    assert {u: (r["nps_score"], r["nps_category"], r["nps_responses"]) for u, r in got.items()} == {
        "ann": (10, "promoter", 2), "bob": (9, "promoter", 2), "cat": (6, "detractor", 1),
        "fay": (8, "passive", 1)}
    assert got["ann"]["nps_at"] == AS_OF - 5 * D
    # as of 10 days earlier, ann's latest answer was the 3
    earlier = by_user(nps(resolved_events(store, "p", AS_OF - 10 * D)))
    assert (earlier["ann"]["nps_score"], earlier["ann"]["nps_category"]) == (3, "detractor")


def test_payments_and_trials(store: Store) -> None:
    store.append("p", [
        ev("1", "ann", "trial_started", AS_OF - 60 * D, plan="growth"),
        ev("2", "ann", "trial_converted", AS_OF - 46 * D, plan="growth"),
        ev("3", "ann", "payment_succeeded", AS_OF - 46 * D, amount=49.0, plan="growth"),
        ev("4", "ann", "payment_failed", AS_OF - 16 * D, amount=49.0),
        ev("5", "ann", "payment_succeeded", AS_OF - 15 * D, amount=49.5),
        ev("6", "ann", "payment_failed", AS_OF - 45 * D, amount=49.0),  # outside the 30 days
        ev("7", "bob", "trial_started", AS_OF - 3 * D, plan="starter"),
        ev("8", "cat", "trial_started", AS_OF - 20 * D),
        ev("9", "cat", "subscription_cancelled", AS_OF - 10 * D),
    ], received_at=AS_OF - 70 * D)
    got = by_user(billing(resolved_events(store, "p", AS_OF), AS_OF))
    ann, bob, cat = got["ann"], got["bob"], got["cat"]
    assert (ann["payments_made"], ann["payments_missed"],
            ann["payments_missed_window"]) == (2, 2, 1)
    assert ann["revenue_to_date"] == pytest.approx(98.5)
    assert ann["last_payment_at"] == AS_OF - 15 * D
    assert (ann["on_trial"], bob["on_trial"], cat["on_trial"]) == (False, True, False)
    assert (bob["revenue_to_date"], bob["payments_made"]) == (0.0, 0)
    # before converting, ann was on trial
    before = by_user(billing(resolved_events(store, "p", AS_OF - 50 * D), AS_OF - 50 * D))
    assert before["ann"]["on_trial"] is True and before["ann"]["payments_made"] == 0
