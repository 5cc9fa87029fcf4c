"""Random event logs and random rule trees: the engine agrees with tests/segments/reference.py.

DuckDB in memory (the hand-checked tests cover PostgreSQL agreeing with DuckDB). Event
times are drawn on a grid that hits the window edges exactly (as_of - N days, as_of), and
often tie (sequences need strictly later steps). Identify calls (which may set `plan`) and
group calls (which set the account) are moved back by a few seconds each so no two of them
share an instant: which of two simultaneous plans or accounts is "latest" is undefined.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
import reference  # tests/segments/reference.py (pytest puts this directory on sys.path)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmently.profile.config import Feature, Vocabulary
from segmently.profile.matchers import EventMatcher, PropertyFilter
from segmently.segments import evaluate
from segmently.store import Message, Store

pytestmark = pytest.mark.slow  # hypothesis: many generated rules per test

AS_OF = datetime(2026, 3, 31)
USERS = ["u1", "u2", "u3", "u4"]
EVENTS = ["a", "b"]
PLANS = ["free", "pro", "team"]
FEATURES = {"fa": [("a", [])], "fb": [("b", [])],  # the reference's form of VOCABULARY
            "fn": [("a", [{"property": "n", "op": "ge", "value": 3}])]}
VOCABULARY = Vocabulary(features=[
    Feature(name=name, events=[EventMatcher(event=e, where=[PropertyFilter(**f) for f in w])
                               for e, w in matchers])
    for name, matchers in FEATURES.items()])
_ids = count()

offsets = st.one_of(st.sampled_from([0, 7 * 24, 30 * 24, 30 * 24 + 1]),
                    st.integers(min_value=-2, max_value=40 * 24))  # hours before as_of


def _event_st(hours: st.SearchStrategy[int], users: list[str]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({
        "user": st.sampled_from(users),
        "event": st.sampled_from([*EVENTS, *EVENTS, "payment_failed"]),
        "type": st.sampled_from(["track", "track", "page", "identify", "group"]),
        "hours_before": hours,
        "late": st.sampled_from([False, False, False, True]),  # received after as_of
        "props": st.dictionaries(st.just("n"), st.integers(0, 5), max_size=1),
        "plan": st.sampled_from([None, *PLANS]),  # set by identify calls
        "account": st.sampled_from(["x", "y"]),  # of group calls
    })


event_st = _event_st(offsets, USERS)
# sequences need events close together (and sometimes simultaneous): a few hours apart
near = st.sampled_from([0, 1, 2, 3, 24, 25, 7 * 24, 30 * 24, 30 * 24 + 1])
close_st = _event_st(st.one_of(near, st.integers(min_value=-1, max_value=8 * 24)), USERS[:3])
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
    st.builds(lambda e, w, gap, win: _cond("restarted", event=e, where=w, gap_days=gap,
                                           window=win),
              st.sampled_from(EVENTS), where_st, st.sampled_from([1, 7, 23]), window_st),
)
rule_st = st.recursive(leaf_st, lambda inner: st.one_of(
    st.builds(lambda rs: {"all": rs}, st.lists(inner, max_size=3)),
    st.builds(lambda rs: {"any": rs}, st.lists(inner, max_size=3)),
    st.builds(lambda r: {"not": r}, inner)), max_leaves=6)


def _events(drawn: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, d in enumerate(drawn):
        ts = AS_OF - timedelta(hours=d["hours_before"])
        if d["type"] in ("identify", "group"):
            ts -= timedelta(seconds=i + 1)
        out.append({"user": d["user"], "event": d["event"], "type": d["type"], "ts": ts,
                    "received": AS_OF + timedelta(hours=1) if d["late"] else
                    datetime(2026, 1, 1), "props": d["props"], "id": f"m{next(_ids)}",
                    "traits": {"plan": d["plan"]} if d["type"] == "identify" and d["plan"]
                    else None,
                    "account": d["account"] if d["type"] == "group" else None})
    return out


@pytest.fixture(scope="module")
def memory() -> Iterator[Store]:
    """One in-memory DuckDB store for every example (creating the tables costs half a
    second); each example writes to a project of its own."""
    with Store("duckdb://") as store:
        yield store


def _load(store: Store, events: list[dict[str, Any]]) -> str:
    """The events in a new project; returns its id."""
    project = f"p{next(_ids)}"
    for late in (False, True):
        batch = [e for e in events if (e["received"] > AS_OF) == late]
        if batch:
            store.append(project, [Message(message_id=e["id"], type=e["type"],
                                           event=e["event"], timestamp=e["ts"],
                                           source="native", user_id=e["user"],
                                           properties=e["props"], traits=e["traits"],
                                           account_id=e["account"]) for e in batch],
                         received_at=batch[0]["received"])
    return project


def _compare(store: Store, drawn: list[dict[str, Any]], rules: list[dict[str, Any]]) -> None:
    events = _events(drawn)
    segments = {f"r{i}": rule for i, rule in enumerate(rules)}
    expected = reference.evaluate(events, segments, AS_OF, FEATURES)
    ev = evaluate(store, _load(store, events), segments, AS_OF, vocabulary=VOCABULARY,
                  known_at=AS_OF)  # the reference counts what was received by as_of
    long = ev.membership().to_pylist()
    got = {name: {r["user_id"] for r in long if r["segment"] == name and r["member"]}
           for name in segments}
    assert got == expected


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_st, min_size=1, max_size=14), st.lists(rule_st, min_size=1, max_size=5))
def test_engine_matches_reference(memory: Store, drawn: list[dict[str, Any]],
                                  rules: list[dict[str, Any]]) -> None:
    _compare(memory, drawn, rules)


def _features(names: list[str], at_least: int | None, window: Any) -> dict[str, Any]:
    if len(names) == 1 and at_least is None:
        return _cond("used_feature", feature=names[0], window=window)
    return _cond("used_feature", features=names, window=window,
                 at_least=min(at_least, len(names)) if at_least else None)


def _step(event: str, within_hours: int | None) -> dict[str, Any]:
    return {"event": event} | ({"within_hours": within_hours} if within_hours else {})


step_st = st.builds(_step, st.sampled_from(EVENTS), st.sampled_from([None, 1, 2, 24]))
plain_product_st = st.one_of(
    st.builds(_features, st.lists(st.sampled_from(list(FEATURES)), min_size=1, max_size=3,
                                  unique=True), st.sampled_from([None, 1, 2]), window_st),
    st.builds(lambda n, win: _cond("missed_payments", at_least=n, window=win),
              st.integers(1, 3), window_st),
    st.builds(lambda first, rest, win: _cond("sequence", steps=[{"event": first}, *rest],
                                             window=win),
              st.sampled_from(EVENTS), st.lists(step_st, min_size=1, max_size=2), window_st),
    st.builds(lambda plans: {"kind": "plan", "is": plans[0]} if len(plans) == 1
              else {"kind": "plan", "in": plans},
              st.lists(st.sampled_from(PLANS), min_size=1, max_size=2, unique=True)),
)
product_leaf_st = st.one_of(
    plain_product_st,
    st.builds(lambda match, inner: {"kind": "account", "match": match, "rule": inner},
              st.sampled_from(["any", "all", "none"]), st.one_of(plain_product_st, leaf_st)))
product_rule_st = st.one_of(  # mostly bare conditions: their truth is what is checked
    product_leaf_st, product_leaf_st,
    st.builds(lambda rs: {"any": rs}, st.lists(product_leaf_st, min_size=1, max_size=2)),
    st.builds(lambda r: {"not": r}, product_leaf_st))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(close_st, min_size=6, max_size=24),
       st.lists(product_rule_st, min_size=2, max_size=4))
def test_product_kinds_match_reference(memory: Store, drawn: list[dict[str, Any]],
                                       rules: list[dict[str, Any]]) -> None:
    """used_feature, missed_payments, sequence, plan and account (over any simple rule)."""
    _compare(memory, drawn, rules)
