"""Random event logs and random rule trees: the engine agrees with tests/segments/reference.py.

DuckDB in memory (the hand-checked tests cover PostgreSQL agreeing with DuckDB). Event
times are drawn on a grid that hits the window edges exactly (as_of - N days, as_of).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmently.segments import evaluate
from segmently.store import Message, Store
import reference  # tests/segments/reference.py (pytest puts this directory on sys.path)

AS_OF = datetime(2026, 3, 31)
USERS = ["u1", "u2", "u3", "u4"]
EVENTS = ["a", "b"]
_ids = count()

offsets = st.one_of(st.sampled_from([0, 7 * 24, 30 * 24, 30 * 24 + 1]),
                    st.integers(min_value=-2, max_value=40 * 24))  # hours before as_of
event_st = st.fixed_dictionaries({
    "user": st.sampled_from(USERS),
    "event": st.sampled_from(EVENTS),
    "type": st.sampled_from(["track", "track", "page", "identify"]),
    "hours_before": offsets,
    "late": st.sampled_from([False, False, False, True]),  # received after as_of
    "props": st.dictionaries(st.just("n"), st.integers(0, 5), max_size=1),
})
window_st = st.one_of(st.none(), st.builds(lambda n: {"last": n}, st.sampled_from([1, 7, 30])))
where_st = st.one_of(st.just([]), st.builds(
    lambda op, v: [{"property": "n", "op": op, "value": v}],
    st.sampled_from(["eq", "ge", "lt"]), st.integers(0, 5)))


def _cond(kind: str, **kw: Any) -> dict[str, Any]:
    return {"kind": kind, **{k: v for k, v in kw.items() if v is not None}}


def _performed(event: str, where: list, window: Any, bound: tuple[str, int]) -> dict[str, Any]:
    return _cond("performed", event=event, where=where, window=window, **{bound[0]: bound[1]})


leaf_st = st.one_of(
    st.builds(_performed, st.sampled_from(EVENTS), where_st, window_st,
              st.tuples(st.sampled_from(["at_least", "at_most", "exactly"]), st.integers(0, 3))),
    st.builds(lambda e, w, win: _cond("not_performed", event=e, where=w, window=win),
              st.sampled_from(EVENTS), where_st, window_st),
    st.builds(lambda n, win: _cond("active", at_least=n, window=win),
              st.integers(0, 3), window_st),
    st.builds(lambda e, agg, op, v, win: _cond("aggregate", event=e, property="n", agg=agg,
                                               op=op, value=v, window=win),
              st.sampled_from(EVENTS), st.sampled_from(["sum", "max", "distinct_count"]),
              st.sampled_from(["ge", "lt", "eq"]), st.integers(0, 6), window_st),
    st.builds(lambda e, w: _cond("first_performed", event=e, window=w),
              st.sampled_from(EVENTS), st.builds(lambda n: {"last": n},
                                                 st.sampled_from([1, 7, 30]))),
    st.builds(lambda key, n: {"kind": "last_seen", key: n},
              st.sampled_from(["more_than_days_ago", "within_last_days"]),
              st.sampled_from([0, 1, 7, 30])),
)
rule_st = st.recursive(leaf_st, lambda inner: st.one_of(
    st.builds(lambda rs: {"all": rs}, st.lists(inner, max_size=3)),
    st.builds(lambda rs: {"any": rs}, st.lists(inner, max_size=3)),
    st.builds(lambda r: {"not": r}, inner)), max_leaves=6)


def _events(drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for d in drawn:
        ts = AS_OF - timedelta(hours=d["hours_before"])
        out.append({"user": d["user"], "event": d["event"], "type": d["type"], "ts": ts,
                    "received": AS_OF + timedelta(hours=1) if d["late"] else
                    datetime(2026, 1, 1), "props": d["props"], "id": f"m{next(_ids)}"})
    return out


def _store(events: list[dict[str, Any]]) -> Store:
    store = Store("duckdb://")
    for late in (False, True):
        batch = [e for e in events if (e["received"] > AS_OF) == late]
        if batch:
            store.append("p", [Message(message_id=e["id"], type=e["type"], event=e["event"],
                                       timestamp=e["ts"], source="native", user_id=e["user"],
                                       properties=e["props"]) for e in batch],
                         received_at=batch[0]["received"])
    return store


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_st, min_size=1, max_size=14), st.lists(rule_st, min_size=1, max_size=5))
def test_engine_matches_reference(drawn: list[dict[str, Any]], rules: list[dict[str, Any]]) -> None:
    events = _events(drawn)
    segments = {f"r{i}": rule for i, rule in enumerate(rules)}
    expected = reference.evaluate(events, segments, AS_OF)
    with _store(events) as store:
        ev = evaluate(store, "p", segments, AS_OF)
        long = ev.membership().to_pylist()
    got = {name: {r["user_id"] for r in long if r["segment"] == name and r["member"]}
           for name in segments}
    assert got == expected
