"""Daily rollups: written with the events they count, and read back without changing any
answer. Expectations are worked out by hand; the random test checks that evaluating with
rollups gives what the raw-event path gives (the raw path itself is checked against a
plain-Python reference in tests/segments/test_property_based.py)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ENGINES, open_engine_store
from segmently.segments import evaluate
from segmently.store import Message, Store
from segmently.store.rows import to_rows

AS_OF = datetime(2026, 3, 31, 15, 0)  # mid-afternoon: as_of's day is partly in the past
H = timedelta(hours=1)
D = timedelta(days=1)
LONG_AGO = datetime(2026, 1, 1)


def track(mid: str, user: str, event: str, at: datetime) -> Message:
    return Message(message_id=mid, type="track", event=event, timestamp=at, source="native",
                   user_id=user)


def rollup_rows(store: Store, project: str = "p") -> dict[tuple[Any, ...], int]:
    t = store.table("event_rollups")
    rows = t.filter(t.project_id == project).to_pyarrow().to_pylist()
    out: dict[tuple[Any, ...], int] = {}
    for r in rows:  # several rows of one key add up
        key = (r["user_id"], r["event"], r["day"], r["received_day"])
        out[key] = out.get(key, 0) + r["n"]
    return out


def day(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1)).days


def test_appends_write_rollups_once_per_stored_event(store: Store) -> None:
    batch = [track("m1", "ann", "viewed", AS_OF - D), track("m2", "ann", "viewed", AS_OF - D + H),
             track("m3", "ann", "viewed", AS_OF - 2 * D), track("m4", "bob", "viewed", AS_OF)]
    store.append("p", batch, received_at=AS_OF)
    store.append("p", batch[:2] + [track("m5", "ann", "viewed", AS_OF - D)],
                 received_at=AS_OF + D)  # m1, m2 are retries: not counted again
    assert rollup_rows(store) == {
        ("ann", "viewed", day(AS_OF - D), day(AS_OF)): 2,
        ("ann", "viewed", day(AS_OF - 2 * D), day(AS_OF)): 1,
        ("bob", "viewed", day(AS_OF), day(AS_OF)): 1,
        ("ann", "viewed", day(AS_OF - D), day(AS_OF + D)): 1,
    }
    t = store.table("event_rollups")
    first_last = t.filter(t.user_id == "ann", t.day == day(AS_OF - D),
                          t.received_day == day(AS_OF)).select("first_ts", "last_ts")
    assert first_last.to_pyarrow().to_pylist() == [
        {"first_ts": AS_OF - D, "last_ts": AS_OF - D + H}]


def test_bulk_appends_and_old_databases_get_rollups(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'old.duckdb'}"
    with Store(url) as s:
        s.append_new_rows("p", to_rows("p", [track("m1", "ann", "a", AS_OF - D),
                                             track("m2", "ann", "a", AS_OF - D)], LONG_AGO))
        assert rollup_rows(s) == {("ann", "a", day(AS_OF - D), day(LONG_AGO)): 2}
    raw = duckdb.connect(str(tmp_path / "old.duckdb"))
    raw.execute("DROP TABLE event_rollups")  # as a database from before rollups
    raw.close()
    with Store(url) as s:  # opening it counts what it holds once
        assert rollup_rows(s) == {("ann", "a", day(AS_OF - D), day(LONG_AGO)): 2}


# as_of is 31 March 15:00. Windows: last 1 day = [30 Mar 15:00, 31 Mar 15:00).
LOG = [
    # ann: one event exactly at the 1-day boundary (in), one a second before it (out of 1
    # day, in 2 days), one on as_of's day before as_of, one after as_of on the same day
    (track("a1", "ann", "viewed", AS_OF - D), LONG_AGO),
    (track("a2", "ann", "viewed", AS_OF - D - timedelta(seconds=1)), LONG_AGO),
    (track("a3", "ann", "viewed", AS_OF - 2 * H), LONG_AGO),
    (track("a4", "ann", "viewed", AS_OF + H), LONG_AGO),
    # bob: events days ago, but received today: one before as_of (known), one after (not)
    (track("b1", "bob", "viewed", AS_OF - 5 * D), AS_OF - H),
    (track("b2", "bob", "viewed", AS_OF - 4 * D), AS_OF + H),
    # cat: active on three whole days inside the week, twice on one of them
    (track("c1", "cat", "viewed", AS_OF - 3 * D), LONG_AGO),
    (track("c2", "cat", "viewed", AS_OF - 3 * D + H), LONG_AGO),
    (track("c3", "cat", "viewed", AS_OF - 4 * D), LONG_AGO),
    (track("c4", "cat", "viewed", AS_OF - 6 * D), LONG_AGO),
]


def load(store: Store) -> None:
    for received in sorted({r for _, r in LOG}):  # one append per arrival (a Spark sync each)
        store.append("p", [m for m, r in LOG if r == received], received_at=received)


@pytest.fixture(scope="module", params=ENGINES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with open_engine_store(request, request.param, tmp_path_factory.mktemp("roll"), load) as s:
        yield s


def counts(store: Store, as_of: datetime, **rules: dict[str, Any]) -> dict[str, set[str]]:
    ev = evaluate(store, "p", rules, as_of, known_at=as_of)
    long = ev.membership().to_pylist()
    return {n: {r["user_id"] for r in long if r["segment"] == n and r["member"]} for n in rules}


def test_window_edges_and_arrival_days_are_exact(loaded: Store) -> None:
    got = counts(loaded, AS_OF,
                 # ann: a1 (at the edge) + a3 = 2; a2 a second early, a4 after as_of
                 two_last_day={"kind": "performed", "event": "viewed", "at_least": 2,
                               "window": {"last": 1}},
                 # ann: a1 a2 a3 = 3 in two days (a4 not yet)
                 three_last_2={"kind": "performed", "event": "viewed", "at_least": 3,
                               "window": {"last": 2}},
                 # bob's b1 arrived an hour before as_of (counts); b2 after (does not)
                 one_ever={"kind": "performed", "event": "viewed", "exactly": 1},
                 # cat: 3 distinct days in the last week; ann: 30 and 31 March only
                 three_days={"kind": "active", "at_least": 3, "unit": "day",
                             "window": {"last": 7}},
                 # last seen more than 4 days ago: bob (b1, 5 days); not cat (3 days)
                 gone={"kind": "last_seen", "more_than_days_ago": 4})
    assert got == {"two_last_day": {"ann"}, "three_last_2": {"ann"}, "one_ever": {"bob"},
                   "three_days": {"cat"}, "gone": {"bob"}}


def test_a_past_instant_reads_only_what_was_known(loaded: Store) -> None:
    # the day before: bob's events were not received yet, so bob is unknown
    got = counts(loaded, AS_OF - D, any_view={"kind": "performed", "event": "viewed"})
    assert got == {"any_view": {"ann", "cat"}}


# -- rollups never change an answer -----------------------------------------------------
_ids = itertools.count()
EVENTS = ["a", "b"]
instant_st = st.integers(min_value=0, max_value=20 * 24 * 60).map(
    lambda minutes: AS_OF - timedelta(days=19) + timedelta(minutes=minutes))
event_st = st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(EVENTS),
                     st.sampled_from(["track", "page", "identify"]), instant_st,
                     st.sampled_from(["long_ago", "same_day", "after", "at_event"]))
some_window_st = st.one_of(
    st.builds(lambda n: {"last": n}, st.integers(1, 12)),
    st.builds(lambda n: {"last": n, "unit": "weeks"}, st.integers(1, 2)),
    st.builds(lambda a, b: {"between": sorted([a, b])}, instant_st, instant_st)
    .filter(lambda w: w["between"][0] < w["between"][1]))  # an empty window is refused
window_st = st.one_of(st.none(), some_window_st)


def _rule(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}  # no window: all history


leaf_st = st.one_of(
    st.builds(lambda e, n, w: _rule(kind="performed", event=e, at_least=n, window=w),
              st.sampled_from(EVENTS), st.integers(1, 3), window_st),
    st.builds(lambda n, unit, w: _rule(kind="active", at_least=n, unit=unit, window=w),
              st.integers(1, 3), st.sampled_from(["day", "week"]), window_st),
    st.builds(lambda e, w: _rule(kind="first_performed", event=e, window=w),
              st.sampled_from(EVENTS), some_window_st),
    st.builds(lambda n: {"kind": "last_seen", "more_than_days_ago": n}, st.integers(0, 9)),
    st.builds(lambda e, r, k: {"kind": "stopped", "event": e, "recent_days": r,
                               "earlier_days": k},
              st.sampled_from(EVENTS), st.integers(1, 5), st.integers(1, 5)),
    st.builds(lambda e, n: {"kind": "regularly", "event": e, "at_least": 1, "period": "day",
                            "in_at_least": n, "of_last": 4},
              st.sampled_from(EVENTS), st.integers(1, 3)))


def _received(how: str, at: datetime, as_of: datetime) -> datetime:
    return {"long_ago": LONG_AGO, "same_day": as_of - timedelta(minutes=30),
            "after": as_of + H, "at_event": at + timedelta(minutes=5)}[how]


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_st, min_size=1, max_size=25), st.lists(leaf_st, min_size=1, max_size=6),
       st.integers(min_value=0, max_value=3 * 24 * 60))
def test_rollups_give_the_raw_answer(drawn: list[tuple[Any, ...]], rules: list[dict[str, Any]],
                                     back_minutes: int) -> None:
    as_of = AS_OF - timedelta(minutes=back_minutes)  # any time of day, past events too
    segments = {f"r{i}": rule for i, rule in enumerate(rules)}
    with Store("duckdb://") as store:
        for user, event, kind, at, how in drawn:
            message = Message(message_id=f"m{next(_ids)}", type=kind,
                              event=event if kind != "identify" else "$identify",
                              timestamp=at, source="native", user_id=user)
            store.append("p", [message], received_at=_received(how, at, as_of))
        answers = [evaluate(store, "p", segments, as_of, rollups=on, known_at=as_of).membership()
                   .sort_by([("segment", "ascending"), ("user_id", "ascending")]).to_pylist()
                   for on in (True, False)]
    assert answers[0] == answers[1]


def test_compaction_merges_finished_days_and_changes_no_answer(store: Store) -> None:
    # live traffic: ann's views of 29 March arrive in three commits on that day, one more
    # arrives today (31 March), so only the finished day is merged
    for i, hour in enumerate((9, 10, 11)):
        store.append("p", [track(f"v{i}", "ann", "viewed", datetime(2026, 3, 29, hour))],
                     received_at=datetime(2026, 3, 29, hour, 5))
    store.append("p", [track("v3", "ann", "viewed", datetime(2026, 3, 29, 23))],
                 received_at=datetime(2026, 3, 31, 8))
    rule = {"r": {"kind": "performed", "event": "viewed", "at_least": 4,
                  "window": {"last": 3}}}
    before = counts(store, AS_OF, **rule)
    assert store.compact_rollups(now=AS_OF) == 1
    assert store.compact_rollups(now=AS_OF) == 0  # each day once
    t = store.table("event_rollups").order_by("received_day")
    assert t.select("day", "received_day", "n", "first_ts", "last_ts").to_pyarrow().to_pylist() == [
        {"day": day(datetime(2026, 3, 29)), "received_day": day(datetime(2026, 3, 29)), "n": 3,
         "first_ts": datetime(2026, 3, 29, 9), "last_ts": datetime(2026, 3, 29, 11)},
        {"day": day(datetime(2026, 3, 29)), "received_day": day(AS_OF), "n": 1,
         "first_ts": datetime(2026, 3, 29, 23), "last_ts": datetime(2026, 3, 29, 23)}]
    assert counts(store, AS_OF, **rule) == before == {"r": {"ann"}}


instant_or_none_st = st.one_of(st.none(), st.integers(min_value=-3 * 24 * 60,
                                                      max_value=3 * 24 * 60))


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["u1", "u2", "u3"]), st.sampled_from(EVENTS),
                          instant_st, st.integers(min_value=0, max_value=4 * 24 * 60)),
                min_size=1, max_size=25),
       st.lists(leaf_st, min_size=1, max_size=6),
       st.integers(min_value=0, max_value=3 * 24 * 60), instant_or_none_st)
def test_rollups_give_the_raw_answer_for_any_two_instants(
        drawn: list[tuple[Any, ...]], rules: list[dict[str, Any]], back_minutes: int,
        known_minutes: int | None) -> None:
    """as_of and known_at drawn independently (known_at before, at or after as_of, or
    None: everything received), each event received any time up to four days after it
    happened: the one pass over rollups counts what the raw events say."""
    as_of = AS_OF - timedelta(minutes=back_minutes)
    known_at = None if known_minutes is None else AS_OF - timedelta(minutes=known_minutes)
    segments = {f"r{i}": rule for i, rule in enumerate(rules)}
    with Store("duckdb://") as store:
        for user, event, at, delay in drawn:
            message = Message(message_id=f"m{next(_ids)}", type="track", event=event,
                              timestamp=at, source="native", user_id=user)
            store.append("p", [message], received_at=at + timedelta(minutes=delay))
        answers = [evaluate(store, "p", segments, as_of, rollups=on, known_at=known_at)
                   .membership().sort_by([("segment", "ascending"), ("user_id", "ascending")])
                   .to_pylist() for on in (True, False)]
        # and one count worked out in Python from the drawn log, as the oracle
        rule = {"kind": "performed", "event": "a", "window": {"last": 2}}
        got = set(evaluate(store, "p", {"r": rule}, as_of, known_at=known_at)
                  .member_ids()["r"].to_pylist())
    assert answers[0] == answers[1]
    since = as_of - timedelta(days=2)
    expected = {user for user, event, at, delay in drawn if event == "a"
                and since <= at < as_of
                and (known_at is None or at + timedelta(minutes=delay) <= known_at)}
    assert got == expected
