"""`restarted` on a hand-checked log, on DuckDB, PostgreSQL and Spark over Parquet.

as_of is Tuesday 31 March 2026 00:00 UTC. Every event is report_viewed unless said; the
expected members are worked out by hand from the gaps written beside each user, never
from an engine's output. A return is an event inside the window at least gap_days after
the user's previous matching event (segments/kinds/restarted.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from conftest import ENGINES, open_engine_store
from segmently.segments import evaluate, explain
from segmently.store import Message, Store

AS_OF = datetime(2026, 3, 31)
D = timedelta(days=1)
KNOWN = datetime(2026, 1, 1)  # received long before as_of


def viewed(mid: str, user: str | None, days_before: timedelta, anon: str | None = None,
           event: str = "report_viewed", **props: Any) -> Message:
    return Message(message_id=mid, type="track", event=event, timestamp=AS_OF - days_before,
                   source="native", user_id=user, anonymous_id=anon, properties=props)


LOG = [
    viewed("a1", "ann", 32 * D), viewed("a2", "ann", 11 * D),  # back on 03-20 after 21 days
    *(viewed(f"b{n}", "bob", n * D) for n in (35, 30, 25, 20, 15, 10, 5)),  # every 5 days
    viewed("c1", "cat", 20 * D), viewed("c2", "cat", 6 * D),  # a gap of exactly 14 days
    viewed("d1", "dan", 20 * D), viewed("d2", "dan", 6 * D + timedelta(seconds=1)),  # 1 s short
    viewed("e1", "eve", 60 * D), viewed("e2", "eve", 40 * D),  # back 20 days later, 40 ago
    viewed("f1", "fay", 3 * D),  # first ever: no return
    viewed("g1", "gus", 50 * D), viewed("g2", "gus", 30 * D),  # back exactly at the 30-day edge
    viewed("h1", "hal", 40 * D), viewed("h2", "hal", 0 * D),  # back AT as_of: not yet happened
    viewed("i1", "ivy", 40 * D, plan="pro"), viewed("i2", "ivy", 20 * D, plan="free"),
    viewed("i3", "ivy", 10 * D, plan="pro"),  # gaps 20 and 10; between pro views 30
    viewed("j1", None, 40 * D, anon="anon-j"),  # jon before signing up (merged below)
    Message(message_id="j2", type="identify", event="$identify", timestamp=AS_OF - 39 * D,
            source="native", user_id="jon", alias_id="anon-j"),
    viewed("j3", "jon", 10 * D),  # 30 days after his anonymous view
    viewed("k1", "kim", 40 * D),  # kim's return (k2) arrives after as_of, below
    viewed("m1", "mia", 40 * D), viewed("m2", "mia", 10 * D), viewed("m3", "mia", 10 * D),
    viewed("z1", "zed", 10 * D, event="export"),  # never viewed a report
]


def load(store: Store) -> None:
    store.append("p", LOG, received_at=KNOWN)
    store.append("p", [viewed("k2", "kim", 5 * D)], received_at=AS_OF + timedelta(hours=1))


@pytest.fixture(scope="module", params=ENGINES)
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Store]:
    with open_engine_store(request, request.param, tmp_path_factory.mktemp("restarted"),
                           load) as s:
        yield s


def restarted(gap: int, **kw: Any) -> dict[str, Any]:
    return {"kind": "restarted", "event": "report_viewed", "gap_days": gap, **kw}


CASES = [
    # default window, the last 30 days: [03-01, 03-31)
    (restarted(14), {"ann", "cat", "gus", "ivy", "jon", "mia"}),
    (restarted(15), {"ann", "gus", "ivy", "jon", "mia"}),  # cat's 14 days fall short
    (restarted(25), {"jon", "mia"}),  # ivy's gaps are 20 and 10
    (restarted(25, where=[{"property": "plan", "op": "eq", "value": "pro"}]), {"ivy"}),
    (restarted(14, window={"last": 45}), {"ann", "cat", "eve", "gus", "ivy", "jon", "mia"}),
    (restarted(14, window={"last": 7}), {"cat"}),  # returns since 03-24: cat's on 03-25
    # eve back on 02-19; gus's return on 03-01 is the excluded end
    (restarted(14, window={"between": ["2026-02-01", "2026-03-01"]}), {"eve"}),
    # within 21 days of first seen: eve, gus, ivy back 20 days on, cat 14; ann's is day 21
    (restarted(14, window={"within_days_of_first_seen": 21}), {"cat", "eve", "gus", "ivy"}),
    (restarted(14, window={"within_days_of_first_seen": 20}), {"cat"}),
    ({"not": restarted(14)}, {"bob", "dan", "eve", "fay", "hal", "kim", "zed"}),
]


def _members(store: Store, rules: dict[str, dict[str, Any]], as_of: datetime,
             known_at: datetime) -> dict[str, set[str]]:
    ev = evaluate(store, "p", rules, as_of, known_at=known_at)
    rows = ev.membership().to_pylist()
    return {name: {r["user_id"] for r in rows if r["segment"] == name and r["member"]}
            for name in rules}


@pytest.mark.slow
def test_restarted_members(loaded: Store) -> None:
    rules = {f"case{i}": rule for i, (rule, _) in enumerate(CASES)}
    got = _members(loaded, rules, AS_OF, AS_OF)  # as known then: kim's return not yet
    assert got == {f"case{i}": want for i, (_, want) in enumerate(CASES)}


def test_restarted_at_other_instants(loaded: Store) -> None:
    # as known an hour later, kim's return on 03-26 (35 days after) counts
    later = _members(loaded, {"x": restarted(14)}, AS_OF, AS_OF + D)
    assert later["x"] == {"ann", "cat", "gus", "ivy", "jon", "kim", "mia"}
    # as of 03-21: the window is [02-19, 03-21); jon's and mia's returns (03-21) are at it
    earlier = AS_OF - 10 * D
    got = _members(loaded, {"x": restarted(14)}, earlier, earlier)
    assert got["x"] == {"ann", "eve", "gus", "ivy"}


@pytest.mark.parametrize(("user", "sentence", "truth"), [
    ("ann", "report_viewed again on 2026-03-20 after 21 days without; needs a gap of at "
            "least 14 days", True),
    ("bob", "report_viewed 6 times in the last 30 days, at most 5 days after the previous "
            "one; needs a gap of at least 14 days before one in the last 30 days", False),
    ("dan", "report_viewed 2 times in the last 30 days, at most 13.9 days after the previous "
            "one; needs a gap of at least 14 days before one in the last 30 days", False),
    ("fay", "report_viewed once in the last 30 days, never before; needs a gap of at least "
            "14 days before one in the last 30 days", False),
    ("zed", "report_viewed 0 times in the last 30 days; needs a gap of at least 14 days "
            "before one in the last 30 days", False),
])
def test_restarted_explained(loaded: Store, user: str, sentence: str, truth: bool) -> None:
    got = explain(loaded, "p", restarted(14), user, AS_OF, known_at=AS_OF)
    assert (got.kind, got.sentence, got.truth) == ("restarted", sentence, truth)
    if user == "ann":
        assert got.observed["returned_at"] == datetime(2026, 3, 20)
        assert got.observed["gap_seconds"] == 21 * 86_400
