"""Profile runs kept in the store: what a run holds (worked out by hand below), which
runs are kept, and that one project's runs never touch another's."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import pytest

from segmently.profile import Vocabulary, stored
from segmently.runtime.profiles import Keeper
from segmently.store import Message, Store

pytestmark = pytest.mark.slow  # stored profile runs: every metric, recorded

AS_OF = datetime(2026, 6, 1)
D = timedelta(days=1)
VOCAB = Vocabulary.model_validate({
    "features": [{"name": "reports", "events": [{"event": "report_viewed"}]},
                 {"name": "alerts", "events": [{"event": "alert_created"}]}],
    "milestones": [{"name": "signed_up", "events": [{"event": "signed_up"}]},
                   {"name": "first_report", "events": [{"event": "report_created"}]}],
})
HOSTILE = "p'; DROP TABLE events; --"


def ev(mid: str, user: str, event: str, at: datetime) -> Message:
    return Message(message_id=mid, type="track", event=event, timestamp=at, source="native",
                   user_id=user)


def fill(store: Store, project: str) -> None:
    store.append(project, [
        Message(message_id="i1", type="identify", event="$identify", timestamp=AS_OF - 40 * D,
                source="native", user_id="ann", traits={"plan": "growth"}),
        Message(message_id="g1", type="group", event="$group", timestamp=AS_OF - 40 * D,
                source="native", user_id="ann", account_id="acme"),
        ev("a1", "ann", "signed_up", AS_OF - 40 * D),
        ev("a2", "ann", "report_created", AS_OF - 20 * D),
        ev("a3", "ann", "report_viewed", AS_OF - 2 * D + timedelta(hours=10)),
        ev("a4", "ann", "report_viewed", AS_OF - 2 * D + timedelta(hours=10, minutes=10)),
        ev("a5", "ann", "report_viewed", AS_OF - 1 * D),
        ev("b1", "bob", "signed_up", AS_OF - 3 * D),
    ], received_at=AS_OF - 50 * D)
    # known only after AS_OF: a run at AS_OF must not see it
    store.append(project, [ev("late", "bob", "alert_created", AS_OF - 1 * D)],
                 received_at=AS_OF + timedelta(hours=1))


@pytest.fixture
def filled(store: Store) -> Store:
    fill(store, "p")
    fill(store, HOSTILE)
    return store


def _rows(table) -> list[dict]:  # type: ignore[no-untyped-def]
    return sorted(table.to_pyarrow().to_pylist(), key=lambda r: tuple(map(str, r.values())))


def test_a_run_holds_each_users_metrics_features_and_milestones(filled: Store) -> None:
    run = stored.record(filled, "p", VOCAB, AS_OF)
    # no weights: a point an event in 30 days; ann's 4 make the scale, bob's 1 scores 25
    assert (run.as_of, run.users, run.engagement_scale) == (AS_OF, 2, 4.0)
    assert (run.people, run.events) == (2, 8)  # identify and group count as events, not activity
    active = {r["day"]: r["users"]
              for r in stored.daily_active(filled, run).to_pyarrow().to_pylist()}
    assert active == {(AS_OF - k * D).date(): 1 for k in (40, 20, 3, 2, 1)}
    users = {r["user_id"]: r for r in stored.users(filled, run).to_pyarrow().to_pylist()}
    ann, bob = users["ann"], users["bob"]
    # ann in the 30-day window: report_created (-20d) and three views; 5 events in all
    assert (ann["events_window"], ann["events_total"]) == (4, 5)
    # days -20, -2, -1; the two views ten minutes apart are one session
    assert (ann["active_days_window"], ann["sessions_window"]) == (3, 3)
    assert (ann["plan"], ann["account_id"], ann["journey_stage"]) == ("growth", "acme",
                                                                       "first_report")
    assert ann["last_seen"] == AS_OF - D
    assert ann["lifecycle"] == "resurrected"  # active this week, not the week before
    assert (bob["events_window"], bob["sessions_window"], bob["lifecycle"]) == (1, 1, "new")
    assert (ann["engagement_score"], bob["engagement_score"]) == (100.0, 25.0)
    assert (bob["plan"], bob["account_id"], bob["journey_stage"]) == (None, None, "signed_up")
    # bob's alert arrived after AS_OF: nobody used alerts at AS_OF
    assert _rows(stored.features_used(filled, run)) == [{"user_id": "ann",
                                                         "feature": "reports"}]
    assert _rows(stored.milestones(filled, run)) == [
        {"user_id": "ann", "step": 1, "reached_at": AS_OF - 40 * D},
        {"user_id": "ann", "step": 2, "reached_at": AS_OF - 20 * D},
        {"user_id": "bob", "step": 1, "reached_at": AS_OF - 3 * D}]


def test_only_the_latest_instants_are_kept_per_project(filled: Store) -> None:
    other = stored.record(filled, HOSTILE, VOCAB, AS_OF - 10 * D)
    instants = [AS_OF - k * D for k in range(stored.KEEP + 1, -1, -1)]  # oldest first
    for when in instants:
        stored.record(filled, "p", VOCAB, when)
    again = stored.record(filled, "p", VOCAB, instants[-1])  # same instant: replaced
    t = filled.table(stored.USERS)
    kept = t.filter(t.project_id == "p").group_by("as_of").aggregate(n=lambda x: x.count())
    assert sorted(r["as_of"] for r in kept.to_pyarrow().to_pylist()) == \
        instants[-stored.KEEP:]
    assert {r["n"] for r in kept.to_pyarrow().to_pylist()} == {2}  # no duplicate rows
    assert stored.find(filled, "p", VOCAB, instants[0]) is None
    assert stored.find(filled, "p", VOCAB, instants[-1]) == again
    # the other project's run (with a quote in its id) is untouched, events too
    assert stored.find(filled, HOSTILE, VOCAB, AS_OF - 10 * D) == other
    assert stored.users(filled, other).count().to_pyarrow().as_py() == 1  # bob: not yet
    assert filled.events(HOSTILE).count().to_pyarrow().as_py() == 9


def test_keeper_records_once_and_follows_refreshes_only_where_looked_at(filled: Store) -> None:
    keeper = Keeper()
    keeper.later(filled, "p", VOCAB, AS_OF, only_if_used=True)  # after a refresh
    keeper.wait()
    assert stored.find(filled, "p", VOCAB, AS_OF) is None  # never looked at: no work
    first = keeper.current(filled, "p", VOCAB, AS_OF)  # a page: recorded now
    assert keeper.ensure(filled, "p", VOCAB, AS_OF) == first  # read, not recomputed
    keeper.later(filled, "p", VOCAB, AS_OF + D, only_if_used=True)  # viewed just now
    keeper.wait()
    followed = stored.find(filled, "p", VOCAB, AS_OF + D)
    assert followed is not None and followed.computed_at > first.computed_at
    idle = Keeper(recent_view=0.0)  # nobody has looked for longer than that
    idle.current(filled, "p", VOCAB, AS_OF)
    idle.later(filled, "p", VOCAB, AS_OF + 2 * D, only_if_used=True)
    idle.wait()
    assert stored.find(filled, "p", VOCAB, AS_OF + 2 * D) is None
    # another vocabulary gives other numbers: its run is computed, not reused
    fewer = Vocabulary.model_validate({"features": VOCAB.model_dump()["features"][:1]})
    assert stored.find(filled, "p", fewer, AS_OF) is None
    assert keeper.ensure(filled, "p", fewer, AS_OF).vocabulary != first.vocabulary


def test_one_persons_profile_with_the_runs_scale_scores_as_among_everyone(filled: Store
                                                                          ) -> None:
    from segmently.profile import build_profiles

    run = stored.record(filled, "p", VOCAB, AS_OF)
    bob = build_profiles(filled, "p", VOCAB, AS_OF, person="bob", known_at=AS_OF,
                         engagement_scale=run.engagement_scale).users.to_pyarrow().to_pylist()
    assert [(r["user_id"], r["engagement_score"]) for r in bob] == [("bob", 25.0)]
    alone = build_profiles(filled, "p", VOCAB, AS_OF, person="bob", known_at=AS_OF,
                           engagement_scale=None).users.to_pyarrow().to_pylist()
    assert alone[0]["engagement_score"] == 25.0  # read from every user's rollups instead


def test_tables_of_an_older_layout_are_replaced(filled: Store) -> None:
    stored.ensure_tables(filled)
    filled.con.drop_table(stored.RUNS)
    filled.con.create_table(stored.RUNS, schema=ibis.schema({"project_id": "string",
                                                            "as_of": "timestamp"}))
    run = Keeper().ensure(filled, "p", VOCAB, AS_OF)
    assert stored.find(filled, "p", VOCAB, AS_OF) == run and run.users == 2


def test_pages_read_the_previous_run_while_a_new_one_is_recorded(filled: Store) -> None:
    keeper = Keeper()
    first = keeper.current(filled, "p", VOCAB, AS_OF - D)  # none at all: computed now
    assert first.as_of == AS_OF - D
    assert keeper.current(filled, "p", VOCAB, AS_OF) == first  # the new one in background
    assert keeper.current(filled, "p", VOCAB, AS_OF) == first  # asked again meanwhile
    keeper.wait()
    assert keeper.current(filled, "p", VOCAB, AS_OF).as_of == AS_OF
    runs = filled.table(stored.RUNS)
    assert runs.filter(runs.as_of == AS_OF).count().to_pyarrow().as_py() == 1


def test_threads_racing_to_create_the_tables_all_succeed(filled: Store) -> None:
    """A page view and the refresher's follow-up can both be first: neither may fail."""
    import threading

    for _ in range(5):
        for name in set(stored.TABLES) & set(filled.con.list_tables()):
            filled.con.drop_table(name)
        start, errors = threading.Barrier(4), []

        def create() -> None:
            start.wait()
            try:
                stored.ensure_tables(filled)
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=create) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert set(stored.TABLES) <= set(filled.con.list_tables())
