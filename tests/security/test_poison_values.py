"""Values that do not fit a type never break a read, on DuckDB, PostgreSQL and Spark.

Each poison value is sent through the native wire format (the path a write key takes) as an
event property, an NPS score, a survey answer, a payment amount and a trait, for a user of
its own. Then every condition kind, the profile and a refresh run over all of them. The
expectations say, by hand, which values are numbers (docs/rules.md, "Values"): only a
finite float64 in range counts; anything else is "not a number", so numeric conditions are
false for it and aggregates skip it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from conftest import ENGINES, open_engine_store
from segmently.collect.decode import parse_json
from segmently.collect.limits import Limits
from segmently.collect.native import parse_native
from segmently.profile import vocabularies
from segmently.profile.build import build_profiles
from segmently.profile.config import Vocabulary
from segmently.segments import definitions as defs
from segmently.segments import evaluate, refreshing
from segmently.segments.rules import CONDITION_KINDS, KINDS
from segmently.store import Store

AS_OF = datetime(2026, 3, 31)
SENT = AS_OF - timedelta(days=2)
RECEIVED = AS_OF - timedelta(days=1)
MB_STRING = "x" * 1_000_000  # an event may hold 1 MiB: each event below holds it once

# raw JSON text of the value -> (what a number reads as, what an integer reads as).
# None: not a number. Worked out by hand from the documented rule.
POISON: dict[str, tuple[float | None, int | None]] = {
    '"99999999999999999999"': (1e20, None),  # a number, but not an int64
    "99999999999999999999": (1e20, None),  # orjson reads it as the float 1e20
    "18446744073709551615": (1.8446744073709552e19, None),  # u64: stored as written
    '"-9223372036854775809"': (-9.223372036854775809e18, None),  # just below int64
    '"1e999"': (None, None),
    '"-1e999"': (None, None),
    '"1e-400"': (None, None),  # underflows: PostgreSQL refuses it
    '"1e+300"': (1e300, None),  # how encoders write big floats: a number
    '"NaN"': (None, None),
    '"Infinity"': (None, None),
    '"-Infinity"': (None, None),
    '"  12 "': (12.0, 12),  # spaces around a number are allowed
    '"\\t7\\n"': (None, None),  # other whitespace is not
    '"8.0"': (8.0, 8),  # a whole number written as a float
    "8.0": (8.0, 8),
    '"9" ': (9.0, 9),
    "true": (None, None),
    "false": (None, None),
    '"a\\u0000b"': (None, None),
    '"\\ud800x"': (None, None),  # a lone surrogate: stored as U+FFFD
    '"' + "9" * 400 + '"': (None, None),  # more digits than any engine's float reads
    '"' + MB_STRING + '"': (None, None),
    '{"a": {"b": [1, {"c": 2}]}}': (None, None),  # an object where a scalar is expected
    "[1, 2]": (None, None),
}
USERS = {f"p{i:02d}": raw for i, raw in enumerate(POISON)}
GOOD = "good"  # amount 5, score 9, seats 3


def _events(user: str, raw: str) -> list[dict[str, Any]]:
    """The native events of one user whose every value is `raw` (JSON text)."""
    value = parse_json(raw)
    ts = SENT.isoformat() + "Z"
    return [
        *({"type": "identify", "user_id": user, "timestamp": ts, "traits": {trait: value}}
          for trait in ("plan", "seats", "signed_up")),
        {"event": "purchase", "user_id": user, "timestamp": ts, "properties": {"amount": value}},
        {"event": "purchase", "user_id": user, "timestamp": ts, "properties": {"plan": value}},
        {"event": "nps_submitted", "user_id": user, "timestamp": ts,
         "properties": {"score": value, "survey": "nps-1"}},
        {"event": "answered", "user_id": user, "timestamp": ts,
         "properties": {"question": "q1", "answer": value}},
        {"event": "payment_succeeded", "user_id": user, "timestamp": ts,
         "properties": {"amount": value}},
        {"event": "$page", "type": "page", "user_id": user, "timestamp": ts,
         "properties": {"path": value}},
    ]


def _good() -> list[dict[str, Any]]:
    later = (SENT + timedelta(hours=1)).isoformat() + "Z"
    return _events(GOOD, "5") + [{
        "type": "identify", "user_id": GOOD, "timestamp": later,
        "traits": {"seats": 3, "plan": "pro"}}, {
        "event": "nps_submitted", "user_id": GOOD, "timestamp": later,
        "properties": {"score": 9, "survey": "nps-1"}}]


def fill(store: Store) -> None:
    """Through the native wire format, as a client with the write key would send them."""
    from segmently.store.projects import create_project

    project = create_project(store, "poison").project.project_id
    limits = Limits()
    for user, raw in [*USERS.items(), (GOOD, None)]:
        events = _good() if raw is None else _events(user, raw)
        body = orjson.dumps({"events": events})
        messages = parse_native(parse_json(body), RECEIVED, limits)
        for m in messages:
            m.message_id = f"{user}-{m.event}-{m.message_id}"
        store.append(project, messages, received_at=RECEIVED)


VOCAB = Vocabulary.model_validate({
    "features": [{"name": "buying", "events": [{"event": "purchase",
                                                "where": [{"property": "amount", "op": "gt",
                                                           "value": 1}]}]}],
    "milestones": [{"name": "bought", "events": [{"event": "purchase"}]},
                   {"name": "answered", "events": [
                       {"event": "answered", "where": [{"property": "answer", "op": "regex",
                                                        "value": "^[0-9]+$"}]}]}],
})

# One rule per condition kind, each reading the poison values where it can.
RULES: dict[str, dict[str, Any]] = {
    "property": {"kind": "property", "property": "seats", "op": "gt", "value": 0},
    "performed": {"kind": "performed", "event": "purchase",
                  "where": [{"property": "amount", "op": "ge", "value": 1}]},
    "not_performed": {"kind": "not_performed", "event": "purchase",
                      "where": [{"property": "plan", "op": "regex", "value": "^[a-z]+$"}]},
    "active": {"kind": "active", "at_least": 1, "window": {"last": 30}},
    "aggregate": {"kind": "aggregate", "event": "purchase", "property": "amount", "agg": "sum",
                  "op": "ge", "value": 1},
    "first_performed": {"kind": "first_performed", "event": "purchase", "window": {"last": 7}},
    "last_seen": {"kind": "last_seen", "within_last_days": 7},
    "stopped": {"kind": "stopped", "event": "purchase", "recent_days": 1, "earlier_days": 7},
    "started": {"kind": "started", "event": "purchase", "recent_days": 7, "earlier_days": 7},
    "regularly": {"kind": "regularly", "event": "purchase", "in_at_least": 1, "of_last": 2},
    "in_segment": {"kind": "in_segment", "segment": "aggregate"},
    "not_in_segment": {"kind": "not_in_segment", "segment": "aggregate"},
    "metric": {"kind": "metric", "metric": "nps_score", "op": "ge", "value": 0},
    "used_feature": {"kind": "used_feature", "feature": "buying"},
    "reached_milestone": {"kind": "reached_milestone", "milestone": "answered"},
    "journey_stage": {"kind": "journey_stage", "stage": "bought"},
    "nps": {"kind": "nps", "op": "ge", "value": 0},
    "survey_answer": {"kind": "survey_answer", "question": "q1", "op": "gt", "value": 0},
    "plan": {"kind": "plan", "is": "pro"},
    "on_trial": {"kind": "on_trial"},
    "missed_payments": {"kind": "missed_payments"},
    "sequence": {"kind": "sequence", "steps": [
        {"event": "purchase", "where": [{"property": "amount", "op": "lt", "value": 1e300}]},
        {"event": "answered", "where": [{"property": "answer", "op": "contains",
                                         "value": "a"}]}]},
    "account": {"kind": "account", "rule": {"kind": "property", "property": "plan",
                                            "op": "eq", "value": "pro"}},
}
# a kind written after these runs with its registered example (segments/kinds/: each picks
# one that reads values where it can), so every kind answers over the poison values
RULES.update({k: dict(KINDS[k].example) for k in CONDITION_KINDS if k not in RULES})
assert set(RULES) == set(CONDITION_KINDS), "a condition kind without a poison rule"


def _number(user: str) -> float | None:
    return 5.0 if user == GOOD else POISON[USERS[user]][0]


def _integer(user: str) -> int | None:
    return 9 if user == GOOD else POISON[USERS[user]][1]


@pytest.fixture(params=ENGINES, scope="module")
def poisoned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with open_engine_store(request, request.param, tmp_path_factory.mktemp("poison"),
                           fill) as store:
        project = store.table("projects").to_pyarrow()["project_id"][0].as_py()
        yield store, project


@pytest.mark.slow
def test_every_condition_kind_answers_and_numbers_are_read_as_documented(poisoned) -> None:  # type: ignore[no-untyped-def]
    store, project = poisoned
    ev = evaluate(store, project, RULES, AS_OF, vocabulary=VOCAB)
    members = {name: set(ids.to_pylist()) for name, ids in ev.member_ids().items()}
    everyone = {*USERS, GOOD}
    numbers = {u for u in everyone if _number(u) is not None}
    assert members["aggregate"] == {u for u in numbers if _number(u) >= 1}  # type: ignore[operator]
    assert members["performed"] == members["aggregate"]
    assert members["used_feature"] == {u for u in numbers if _number(u) > 1}  # type: ignore[operator]
    assert members["property"] == {u for u in numbers if _number(u) > 0}  # type: ignore[operator]
    assert members["survey_answer"] == members["property"]
    assert members["sequence"] == set()  # a user's events share one instant: none is later
    nps = {u for u in everyone if _integer(u) is not None and 0 <= _integer(u) <= 10}  # type: ignore[operator]
    assert members["nps"] == nps
    assert members["metric"] == nps
    assert members["not_in_segment"] == everyone - members["aggregate"]
    assert members["active"] == everyone
    assert members["plan"] == {GOOD}


def test_strings_read_alike_on_every_engine(poisoned) -> None:  # type: ignore[no-untyped-def]
    """NUL reads as U+FFFD, a lone surrogate was stored as U+FFFD, 900 KB strings match."""
    store, project = poisoned
    rules = {
        "nul": {"kind": "performed", "event": "purchase",
                "where": [{"property": "plan", "op": "eq", "value": "a\ufffdb"}]},
        "surrogate": {"kind": "performed", "event": "purchase",
                      "where": [{"property": "plan", "op": "eq", "value": "\ufffdx"}]},
        "long": {"kind": "performed", "event": "purchase",
                 "where": [{"property": "plan", "op": "regex", "value": "^x+$"}]},
        "trait": {"kind": "property", "property": "plan", "op": "contains", "value": "\ufffd"},
    }
    members = {name: set(ids.to_pylist())
               for name, ids in evaluate(store, project, rules, AS_OF).member_ids().items()}
    by_raw = {raw: user for user, raw in USERS.items()}
    assert members["nul"] == {by_raw['"a\\u0000b"']}
    assert members["surrogate"] == {by_raw['"\\ud800x"']}
    assert members["long"] == {by_raw['"' + MB_STRING + '"']}
    assert members["trait"] == {by_raw['"a\\u0000b"'], by_raw['"\\ud800x"']}


def test_profiles_read_scores_and_amounts_as_documented(poisoned) -> None:  # type: ignore[no-untyped-def]
    store, project = poisoned
    users = build_profiles(store, project, VOCAB, AS_OF).users.to_pyarrow().to_pylist()
    by_user = {row["user_id"]: row for row in users}
    assert set(by_user) == {*USERS, GOOD}
    for user, row in by_user.items():
        score = _integer(user)
        expected = score if score is not None and 0 <= score <= 10 else None
        assert row["nps_score"] == expected, (user, USERS.get(user))


@pytest.mark.slow
def test_a_refresh_records_every_segment(store: Store) -> None:
    """On the engines that hold a store (a lake is read-only)."""
    fill(store)
    project = store.table("projects").to_pyarrow()["project_id"][0].as_py()
    for name, rule in RULES.items():
        defs.save(store, project, name, "", rule)
    vocabularies.save(store, project, VOCAB)
    results = refreshing.refresh_stored(store, project, AS_OF, vocabularies.vocabulary(
        store, project))
    assert sorted(r.segment for r in results) == sorted(RULES)
