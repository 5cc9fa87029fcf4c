"""The whole profile on a hand-checked product log (expected values derived in comments)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from conftest import ENGINES, open_engine_store
from segmently.profile import Vocabulary, build_profiles
from segmently.store import Message, Store

pytestmark = pytest.mark.slow  # every profile metric over a filled store


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Profile metrics are engine work: DuckDB, PostgreSQL and Spark over Parquet."""
    return request.param


AS_OF = datetime(2026, 6, 1)
D = timedelta(days=1)

VOCAB = Vocabulary.model_validate({
    "features": [
        {"name": "reports", "events": [{"event": "report_viewed"}, {"event": "report_created"}]},
        {"name": "alerts", "events": [{"event": "alert_created",
                                       "where": [{"property": "channel", "op": "in",
                                                  "value": ["email", "slack"]}]}]},
    ],
    "milestones": [
        {"name": "signed_up", "events": [{"event": "signed_up"}]},
        {"name": "connected", "events": [{"event": "data_source_connected"}]},
        {"name": "first_report", "events": [{"event": "report_created"}]},
    ],
    "engagement": {"weights": {"report_viewed": 1, "report_created": 3, "alert_created": 5},
                   "points_for_100": 20},
})


def ev(mid: str, user: str, event: str, at: datetime, **props) -> Message:  # type: ignore[no-untyped-def]
    return Message(message_id=mid, type="track", event=event, timestamp=at, source="native",
                   user_id=user, properties=props)


def fill(store: Store) -> None:
    store.append("p", [
        Message(message_id="id1", type="identify", event="$identify", timestamp=AS_OF - 60 * D,
                source="native", user_id="ann", traits={"plan": "growth"}),
        ev("a1", "ann", "signed_up", AS_OF - 60 * D),
        ev("a2", "ann", "data_source_connected", AS_OF - 59 * D),
        ev("a3", "ann", "report_created", AS_OF - 10 * D),
        ev("a4", "ann", "report_viewed", AS_OF - 3 * D + timedelta(hours=10)),
        ev("a5", "ann", "report_viewed", AS_OF - 3 * D + timedelta(hours=10, minutes=5)),
        ev("a6", "ann", "report_viewed", AS_OF - 9 * D),
        ev("a7", "ann", "report_viewed", AS_OF - 1 * D),
        ev("a8", "ann", "alert_created", AS_OF - 2 * D, channel="email"),
        ev("a9", "ann", "nps_submitted", AS_OF - 5 * D, score=9),
        ev("b1", "bob", "signed_up", AS_OF - 20 * D),
        ev("b2", "bob", "alert_created", AS_OF - 15 * D, channel="sms"),
        ev("b3", "bob", "report_viewed", AS_OF - 12 * D),
        ev("b4", "bob", "payment_failed", AS_OF - 4 * D, amount=10),
        ev("c1", "cat", "signed_up", AS_OF - 90 * D),
        ev("c2", "cat", "report_viewed", AS_OF - 80 * D),
        ev("c3", "cat", "report_viewed", AS_OF - 2 * D),
        ev("d1", "dan", "signed_up", AS_OF - 3 * D),
        ev("e1", "eve", "report_viewed", AS_OF - 10 * D),
    ], received_at=AS_OF - 100 * D)
    # known only after as_of: must change nothing
    store.append("p", [ev("late", "ann", "report_created", AS_OF - 1 * D)],
                 received_at=AS_OF + timedelta(hours=1))


@pytest.fixture(scope="module")
def profiles(request: pytest.FixtureRequest, engine: str,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The profiles of the log above, built once per engine (the tests only read them)."""
    with open_engine_store(request, engine, tmp_path_factory.mktemp("build"), fill) as s:
        built = build_profiles(s, "p", VOCAB, AS_OF, known_at=AS_OF)
        return {r["user_id"]: r for r in built.users.to_pyarrow().to_pylist()}


@pytest.fixture
def store(request: pytest.FixtureRequest, engine: str, tmp_path: Path) -> Iterator[Store]:
    """A store of its own holding the same log, for a test that adds to it."""
    with open_engine_store(request, engine, tmp_path, fill) as s:
        yield s


def test_engagement_adoption_journey(profiles: dict[str, dict]) -> None:
    ann, bob, cat, dan = (profiles[u] for u in ("ann", "bob", "cat", "dan"))
    # ann: 4 views x1 + 1 report_created x3 + 1 alert x5 = 12 points; 12/20 -> 60
    assert (ann["engagement_points"], ann["engagement_score"]) == (12, 60)
    # bob: sms alert still weighs 5 for engagement (weights ignore feature filters) + 1 view
    assert (bob["engagement_points"], bob["engagement_score"]) == (6, 30)
    assert dan["engagement_score"] == 0
    # alerts only count email/slack: bob used reports only
    assert (ann["features_used"], ann["adoption_share"]) == (2, 1.0)
    assert (bob["features_used"], bob["adoption_share"]) == (1, 0.5)
    assert (dan["features_used"], dan["adoption_share"]) == (0, 0.0)
    assert (ann["journey_stage"], ann["journey_step"], ann["stage_since"]) == (
        "first_report", 3, AS_OF - 10 * D)
    assert (cat["journey_stage"], cat["stage_since"]) == ("signed_up", AS_OF - 90 * D)
    assert profiles["eve"]["journey_stage"] is None
    assert ann["plan"] == "growth" and bob["plan"] is None
    assert ann["events_window"] == 7  # the identify call is not activity


def test_health_and_lifecycle(profiles: dict[str, dict]) -> None:
    # ann: .4*60 + .2*(1-1/30)*100 + .15*90 + .15*100 + .1*100 = 81.83
    # bob: .4*30 + .2*(1-4/30)*100 + .15*50 + .15*0 + .1*50 = 41.83 (missed a payment)
    # cat: .4*5 + .2*(1-2/30)*100 + .15*50 + .15*100 + .1*50 = 48.17
    # dan: 0 + .2*90 + 7.5 + 15 + 0 = 40.5; eve: 2 + .2*(1-10/30)*100 + 7.5 + 15 + 5 = 42.83
    expected = {"ann": (81.8, "good"), "bob": (41.8, "at_risk"), "cat": (48.2, "at_risk"),
                "dan": (40.5, "at_risk"), "eve": (42.8, "at_risk")}
    got = {u: (round(r["health_score"], 1), r["health_band"]) for u, r in profiles.items()}
    assert got == expected
    lifecycle = {u: r["lifecycle"] for u, r in profiles.items()}
    assert lifecycle == {"ann": "returning", "bob": "returning", "cat": "resurrected",
                         "dan": "new", "eve": "dormant"}


def test_vocabulary_errors_name_the_field() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"features\.0\.events\.0\.where\.0"):
        Vocabulary.model_validate({"features": [{"name": "x", "events": [
            {"event": "e", "where": [{"property": "p", "op": "between", "value": [1]}]}]}]})
    with pytest.raises(ValidationError, match="repeated: x"):
        Vocabulary.model_validate({"features": [
            {"name": "x", "events": [{"event": "a"}]}, {"name": "x", "events": [{"event": "b"}]}]})


def test_accounts_roll_users_up(store: Store, profiles: dict[str, dict]) -> None:
    from segmently.profile import build_profiles
    from segmently.profile.accounts import account_rollup, user_accounts

    store.append("p", [
        Message(message_id="g1", type="group", event="$group", timestamp=AS_OF - 50 * D,
                source="native", user_id="ann", account_id="acme"),
        Message(message_id="g2", type="group", event="$group", timestamp=AS_OF - 50 * D,
                source="native", user_id="bob", account_id="acme"),
        Message(message_id="x1", type="track", event="clicked", timestamp=AS_OF - 40 * D,
                source="native", user_id="cat", account_id="globex"),
    ], received_at=AS_OF - 100 * D)
    users = build_profiles(store, "p", VOCAB, AS_OF, known_at=AS_OF).users
    rows = {r["account_id"]: r for r in
            account_rollup(users, user_accounts(store, "p", AS_OF)).to_pyarrow().to_pylist()}
    assert set(rows) == {"acme", "globex"}
    acme = rows["acme"]
    assert (acme["users"], acme["active_users"], acme["promoters"]) == (2, 2, 1)
    assert acme["avg_engagement"] == pytest.approx((60 + 30) / 2)
    assert acme["min_health"] == pytest.approx(profiles["bob"]["health_score"])
    assert (acme["payments_missed_window"], acme["plan"]) == (1, "growth")
    assert (rows["globex"]["users"], rows["globex"]["active_share"]) == (1, 1.0)
