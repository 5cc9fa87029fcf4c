"""Every condition kind on a hand-checked log, on DuckDB, PostgreSQL and Spark over Parquet.

as_of is Tuesday 31 March 2026 00:00 UTC. Expected members are worked out by hand from the
events below (comments say why), never from the engine's output.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from conftest import ENGINES, open_engine_store
from segmently.segments import evaluate
from segmently.store import Message, Store

AS_OF = datetime(2026, 3, 31)
DAY = timedelta(days=1)
KNOWN = datetime(2026, 1, 1)  # received long before as_of


def track(mid: str, user: str | None, event: str, at: datetime, anon: str | None = None,
          **props: Any) -> Message:
    return Message(message_id=mid, type="track", event=event, timestamp=at, source="native",
                   user_id=user, anonymous_id=anon, properties=props)


def identify(mid: str, user: str, at: datetime, alias: str | None = None,
             **traits: Any) -> Message:
    return Message(message_id=mid, type="identify", event="$identify", timestamp=at,
                   source="native", user_id=user, traits=traits or None, alias_id=alias)


LOG = [
    # ann: report_viewed exactly at the 30-day edge (in), twice yesterday, once AT as_of (out)
    track("a1", "ann", "report_viewed", AS_OF - 30 * DAY, amount=5, plan="pro"),
    track("a2", "ann", "report_viewed", AS_OF - DAY, amount=7, plan="free"),
    track("a3", "ann", "report_viewed", AS_OF - DAY + timedelta(hours=1), amount="8"),
    track("a4", "ann", "report_viewed", AS_OF, amount=100),
    track("a5", "ann", "export", AS_OF - 10 * DAY),
    # bob: report_viewed one second before the 30-day window; traits
    track("b1", "bob", "report_viewed", AS_OF - 30 * DAY - timedelta(seconds=1), amount=50),
    identify("b2", "bob", AS_OF - 2 * DAY, plan="pro", seats=9, signed_up="2026-03-20T10:00:00Z",
             company="Acme Corp"),
    # cat: two events as an anonymous visitor, later merged into cat
    track("c1", None, "report_viewed", AS_OF - 3 * DAY, anon="anon-1", amount=1),
    track("c2", None, "report_viewed", AS_OF - 2 * DAY, anon="anon-1", amount=1),
    identify("c3", "cat", AS_OF - 2 * DAY + timedelta(hours=1), alias="anon-1",
             signed_up="2025-12-01", seats="12"),
    # eve: seen long ago only; exported in two different weeks back then
    track("e1", "eve", "export", AS_OF - 100 * DAY),
    track("e2", "eve", "export", AS_OF - 90 * DAY),
]
USERS = {"ann", "bob", "cat", "eve"}


def load(store: Store) -> None:
    """The log in project "p" (read only) and in "q" (the one test that appends uses it)."""
    for project in ("p", "q"):
        store.append(project, LOG, received_at=KNOWN)
        store.append(project, [track("a6", "ann", "report_viewed", AS_OF - 5 * DAY)],
                     received_at=AS_OF)  # received exactly at as_of: counts
        store.append(project, [track("late", "dan", "report_viewed", AS_OF - 5 * DAY),
                               track("late2", "ann", "export", AS_OF - 5 * DAY)],
                     received_at=AS_OF + timedelta(seconds=1))  # known only after as_of


@pytest.fixture(scope="module", params=ENGINES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Store]:
    """The log loaded once per engine for the whole module (on Spark: one Parquet export)."""
    with open_engine_store(request, request.param, tmp_path_factory.mktemp("seg"), load) as s:
        yield s


def members(store: Store, rule: dict[str, Any], as_of: datetime = AS_OF,
            project: str = "p", **others: dict[str, Any]) -> set[str]:
    ev = evaluate(store, project, {"x": rule, **others}, as_of, only=["x"], known_at=as_of)
    return set(ev.members("x").to_pyarrow()["user_id"].to_pylist())


def performed(**kw: Any) -> dict[str, Any]:
    return {"kind": "performed", "event": "report_viewed", **kw}


LAST30 = {"last": 30}


def check(store: Store, cases: list[tuple[dict[str, Any], set[str]]]) -> None:
    """Evaluate every case as one segment of a single evaluation (one pass), then compare
    each with its hand-written members."""
    segs = {f"case{i}": rule for i, (rule, _) in enumerate(cases)}
    ev = evaluate(store, "p", segs, AS_OF, known_at=AS_OF)  # as known then: no late data
    long = ev.membership().to_pylist()
    got = {name: {r["user_id"] for r in long if r["segment"] == name and r["member"]}
           for name in segs}
    want = {f"case{i}": expected for i, (_, expected) in enumerate(cases)}
    assert got == want


def test_known_users_exclude_late_data(loaded: Store) -> None:
    assert members(loaded, {"all": []}) == USERS  # dan arrived after as_of


def test_empty_groups(loaded: Store) -> None:
    assert members(loaded, {"all": []}) == USERS
    assert members(loaded, {"any": []}) == set()
    assert members(loaded, {"not": {"any": []}}) == USERS


PERFORMED_CASES = [
    # ann in window: a1 (edge), a2, a3, a6 = 4 (a4 at as_of excluded); bob 0; cat 2; eve 0
    (performed(window=LAST30), {"ann", "cat"}),
    (performed(window=LAST30, at_least=4), {"ann"}),
    (performed(window=LAST30, at_least=5), set()),
    (performed(window=LAST30, exactly=2), {"cat"}),
    (performed(window=LAST30, at_most=2), {"bob", "cat", "eve"}),
    (performed(window=LAST30, at_least=1, at_most=3), {"cat"}),
    (performed(), {"ann", "bob", "cat"}),  # all history
    (performed(window={"last": 31}), {"ann", "bob", "cat"}),
    (performed(window=LAST30, where=[{"property": "plan", "op": "eq", "value": "pro"}]), {"ann"}),
    (performed(window=LAST30, where=[{"property": "amount", "op": "gt", "value": 6}]), {"ann"}),
    # amount >= 7 ever: ann 7 and "8" (a numeric string reads as a number), bob 50 once
    (performed(where=[{"property": "amount", "op": "ge", "value": 7}], at_least=2), {"ann"}),
    (performed(where=[{"property": "plan", "op": "is_not_set"}]), {"ann", "bob", "cat"}),
    ({"kind": "not_performed", "event": "report_viewed", "window": LAST30}, {"bob", "eve"}),
    ({"kind": "not_performed", "event": "export"}, {"bob", "cat"}),
]


def test_performed(loaded: Store) -> None:
    check(loaded, PERFORMED_CASES)


ACTIVE_CASES = [
    # active days (track/page/screen) in last 30: ann 1 Mar, 20 Mar, 26 Mar, 30 Mar = 4;
    # bob none (identify is not activity); cat 28, 29 Mar = 2; eve none
    ({"kind": "active", "at_least": 4, "window": LAST30}, {"ann"}),
    ({"kind": "active", "at_least": 2, "window": LAST30}, {"ann", "cat"}),
    # weeks: ann's 1 Mar (Sunday) and 20, 26, 30 Mar: weeks of 23 Feb, 16, 23, 30 Mar = 4
    ({"kind": "active", "unit": "week", "at_least": 4, "window": LAST30}, {"ann"}),
    # eve: 21 Dec 2025 (Sunday) and 31 Dec 2025 (Wednesday): two Monday-based weeks
    ({"kind": "active", "unit": "week", "at_least": 2,
      "window": {"between": ["2025-12-01", "2026-01-05"]}}, {"eve"}),
]


def test_active(loaded: Store) -> None:
    check(loaded, ACTIVE_CASES)


def agg(fn: str, op: str, value: Any, **kw: Any) -> dict[str, Any]:
    return {"kind": "aggregate", "event": "report_viewed", "property": "amount", "agg": fn,
            "op": op, "value": value, **kw}


AGGREGATE_CASES = [
    # amounts in the last 30 days: ann 5, 7, "8" (a numeric string reads as 8), a6 none;
    # cat 1, 1; bob and eve nothing
    (agg("sum", "eq", 20, window=LAST30), {"ann"}),
    (agg("sum", "le", 2, window=LAST30), {"bob", "cat", "eve"}),  # sum of nothing is 0
    (agg("avg", "lt", 2, window=LAST30), {"cat"}),  # avg of nothing is unknown: false
    (agg("min", "between", [4, 6], window=LAST30), {"ann"}),
    (agg("max", "ge", 50), {"bob"}),  # all history: bob's 50
    (agg("distinct_count", "eq", 1, window=LAST30), {"cat"}),
    (agg("distinct_count", "eq", 0, window=LAST30), {"bob", "eve"}),
]


def test_aggregate(loaded: Store) -> None:
    check(loaded, AGGREGATE_CASES)


PROPERTY_CASES = [
    ({"kind": "property", "property": "plan", "op": "eq", "value": "pro"}, {"bob"}),
    ({"kind": "property", "property": "plan", "op": "ne", "value": "pro"}, set()),
    ({"kind": "property", "property": "plan", "op": "is_set"}, {"bob"}),
    ({"kind": "property", "property": "plan", "op": "is_not_set"}, {"ann", "cat", "eve"}),
    ({"kind": "property", "property": "seats", "op": "gt", "value": 10}, {"cat"}),  # "12"
    ({"kind": "property", "property": "seats", "op": "between", "value": [9, 12]},
     {"bob", "cat"}),
    ({"kind": "property", "property": "seats", "op": "in", "value": [9]}, {"bob"}),
    ({"kind": "property", "property": "company", "op": "contains", "value": "Acme"}, {"bob"}),
    ({"kind": "property", "property": "company", "op": "regex", "value": "^A.*p$"}, {"bob"}),
    ({"kind": "property", "property": "company", "op": "not_in", "value": ["Acme Corp"]},
     set()),
    # signed_up: bob 20 Mar 10:00 (11 days before), cat 1 Dec 2025 (120 days before)
    ({"kind": "property", "property": "signed_up", "op": "within_last_days", "value": 14},
     {"bob"}),
    ({"kind": "property", "property": "signed_up", "op": "within_last_days", "value": 10},
     set()),
    ({"kind": "property", "property": "signed_up", "op": "more_than_days_ago", "value": 30},
     {"cat"}),
]


def test_property(loaded: Store) -> None:
    check(loaded, PROPERTY_CASES)


FIRST_AND_LAST_CASES = [
    # first report_viewed: ann 1 Mar (edge), bob 28 Feb 23:59:59, cat 28 Mar
    ({"kind": "first_performed", "event": "report_viewed", "window": LAST30}, {"ann", "cat"}),
    ({"kind": "first_performed", "event": "report_viewed", "window": {"last": 7}}, {"cat"}),
    # within 3 days of first seen: cat first seen 28 Mar (as anon-1) -> yes; ann first seen
    # 1 Mar with report_viewed -> yes; bob yes; eve never
    ({"kind": "first_performed", "event": "report_viewed",
      "window": {"within_days_of_first_seen": 3}}, {"ann", "bob", "cat"}),
    # last seen: ann 30 Mar 01:00, bob 29 Mar (identify), cat 29 Mar 01:00, eve 31 Dec 2025
    ({"kind": "last_seen", "more_than_days_ago": 30}, {"eve"}),
    ({"kind": "last_seen", "within_last_days": 1}, {"ann"}),
    ({"kind": "last_seen", "within_last_days": 2}, {"ann", "bob", "cat"}),
]


def test_first_and_last(loaded: Store) -> None:
    check(loaded, FIRST_AND_LAST_CASES)


def test_since_first_seen_window(loaded: Store) -> None:
    # export within 10 days of first seen: ann first seen 1 Mar, export 21 Mar (20 days): no;
    # eve first seen 21 Dec 2025 and exported then: yes
    rule = {"kind": "performed", "event": "export", "window": {"within_days_of_first_seen": 10}}
    assert members(loaded, rule) == {"eve"}
    rule["window"] = {"within_days_of_first_seen": 21}
    assert members(loaded, rule) == {"ann", "eve"}


CHANGE_AND_REGULARITY_CASES = [
    # report_viewed, recent = last 7 days (from 24 Mar), earlier = 22 Feb to 24 Mar:
    # ann earlier 1 Mar and recent 26, 30 Mar; bob earlier 28 Feb only; cat recent only
    ({"kind": "stopped", "event": "report_viewed", "recent_days": 7, "earlier_days": 30},
     {"bob"}),
    ({"kind": "started", "event": "report_viewed", "recent_days": 7, "earlier_days": 30},
     {"cat"}),
    # export: ann 21 Mar, recent = last 5 days: ann stopped
    ({"kind": "stopped", "event": "export", "recent_days": 5, "earlier_days": 30}, {"ann"}),
    # daily periods ending at as_of: day 0 = 30 Mar (ann 2 views), day 1 = 29 Mar (cat),
    # day 2 = 28 Mar (cat), day 4 = 26 Mar (ann)
    ({"kind": "regularly", "event": "report_viewed", "period": "day", "in_at_least": 2,
      "of_last": 3}, {"cat"}),
    ({"kind": "regularly", "event": "report_viewed", "period": "day", "in_at_least": 2,
      "of_last": 5}, {"ann", "cat"}),
    ({"kind": "regularly", "event": "report_viewed", "period": "day", "at_least": 2,
      "in_at_least": 1, "of_last": 1}, {"ann"}),
]


def test_change_and_regularity(loaded: Store) -> None:
    check(loaded, CHANGE_AND_REGULARITY_CASES)


@pytest.mark.slow
def test_groups_and_references(loaded: Store) -> None:
    viewers = performed(window=LAST30)
    pro = {"kind": "property", "property": "plan", "op": "eq", "value": "pro"}
    segs = {"viewers": viewers, "pro": pro,
            "both": {"all": [{"kind": "in_segment", "segment": "viewers"}, pro]},
            "either": {"any": [{"kind": "in_segment", "segment": "viewers"},
                               {"kind": "in_segment", "segment": "pro"}]},
            "neither": {"all": [{"kind": "not_in_segment", "segment": "either"}]}}
    ev = evaluate(loaded, "p", segs, AS_OF, known_at=AS_OF)
    got = {name: set(ev.members(name).to_pyarrow()["user_id"].to_pylist()) for name in segs}
    assert got == {"viewers": {"ann", "cat"}, "pro": {"bob"}, "both": set(),
                   "either": {"ann", "bob", "cat"}, "neither": {"eve"}}
    assert ev.sizes() == {"viewers": 2, "pro": 1, "both": 0, "either": 3, "neither": 1}
    long = ev.membership()
    assert long.num_rows == 5 * 4
    assert sorted((r for r in long.to_pylist() if r["segment"] == "neither"),
                  key=lambda r: r["user_id"]) == [
        {"user_id": u, "segment": "neither", "member": u == "eve"}
        for u in ["ann", "bob", "cat", "eve"]]


def test_time_zones_normalize_to_utc(loaded: Store) -> None:
    from datetime import timezone
    plus2 = timezone(timedelta(hours=2))
    as_of_local = datetime(2026, 3, 31, 2, 0, tzinfo=plus2)  # the same instant as AS_OF
    assert members(loaded, performed(window=LAST30), as_of_local) == {"ann", "cat"}
    # between 1 Mar 02:00+02:00 (= 1 Mar 00:00 UTC) and 2 Mar: ann's edge event only
    window = {"between": ["2026-03-01T02:00:00+02:00", "2026-03-02T00:00:00Z"]}
    assert members(loaded, performed(window=window)) == {"ann"}
    window = {"between": ["2026-03-01T02:00:01+02:00", "2026-03-02T00:00:00Z"]}
    assert members(loaded, performed(window=window)) == set()


def test_past_as_of_is_reproducible_after_late_data(loaded: Store) -> None:
    rule = performed(window=LAST30, at_least=4)
    before = members(loaded, rule, project="q")
    loaded.append("q", [track("late3", "cat", "report_viewed", AS_OF - DAY),
                        track("late4", "cat", "report_viewed", AS_OF - DAY)],
                  received_at=AS_OF + 3 * DAY)
    assert before == {"ann"}
    assert members(loaded, rule, project="q") == {"ann"}  # the past answer does not move
    # the present one does
    assert members(loaded, rule, AS_OF + 3 * DAY, project="q") == {"ann", "cat"}
