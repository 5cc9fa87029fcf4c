"""Rules that cannot run are refused when parsed, naming the field and the limit.

The regular expressions a rule may hold are the subset DuckDB (RE2), PostgreSQL and Spark
(java.util.regex) read alike (profile/regexes.py): every accepted pattern of the corpus
below is run on each engine and must match exactly what Python's `re.search` says (the
oracle, independent of the engines); every refused one names why.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from conftest import ENGINES, open_engine_store
from segmently.segments import evaluate, parse_rule
from segmently.segments.errors import RuleError
from segmently.segments.rules import MAX_CONDITIONS, MAX_DEPTH
from segmently.store import Message, Store

AS_OF = datetime(2026, 3, 31)
STRINGS = ["abc", "ABC", "a.c", "a-c", "foo@bar.com", "x1y22z333", "hello world", "tab\there",
           "", "ab", "aab", "$100", "a+b", "(paren)", "[br]", "{x}", "back\\slash", "q?",
           "star*", "c", "bbb", "x1y22"]
ACCEPTED = ["^a", "c$", "a.c", "a\\.c", "[0-9]+", "\\d{2,3}", "^[a-z]+$", "(ab)+", "a|b",
            "foo@[a-z]+\\.com", "\\s", "\\w+", "^$", "[^a-z]", "x1y2{2}z", "\\$1", "a\\+b",
            "\\(paren\\)", "\\[br\\]", "\\{x\\}", "back\\\\slash", "q\\?", "star\\*",
            "(?:ab)?c", "a{0,2}b", "[a-c-]", "^(abc|x1)", "b{3}", "\\W", "\\D\\d"]
REFUSED = {
    "(": "not a valid regex",
    "(a+)+": "a repeat inside a repeat",
    "(\\w+\\s?)*": "a repeat inside a repeat",
    "(a|ab)*": "can begin with the same character",
    "(?=a)": "only (?: ) groups",
    "(?<!a)b": "only (?: ) groups",
    "(a)\\1": "the escape \\1",
    "(?P<n>a)": "only (?: ) groups",
    "\\bx": "the escape \\b",
    "[[:alpha:]]": "POSIX classes",
    "a{300}": "at most 255",
    "(?i)abc": "only (?: ) groups",
    "\\u00e9": "the escape \\u",
    "x{,3}": "{0,n}",
    "a" * 600: "at most 512 characters",
}


def fill(store: Store) -> None:
    from segmently.store.projects import create_project

    project = create_project(store, "regex").project.project_id
    store.append(project, [
        Message(message_id=f"m{i}", type="track", event="seen", source="native",
                timestamp=AS_OF - timedelta(days=1), user_id=f"u{i:02d}", properties={"s": s})
        for i, s in enumerate(STRINGS)], received_at=AS_OF - timedelta(days=1))


@pytest.fixture(params=ENGINES, scope="module")
def regex_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    with open_engine_store(request, request.param, tmp_path_factory.mktemp("regex"),
                           fill) as store:
        yield store, store.table("projects").to_pyarrow()["project_id"][0].as_py()


def test_accepted_patterns_match_alike_on_every_engine(regex_store) -> None:  # type: ignore[no-untyped-def]
    store, project = regex_store
    rules = {f"r{i}": {"kind": "performed", "event": "seen",
                       "where": [{"property": "s", "op": "regex", "value": p}]}
             for i, p in enumerate(ACCEPTED)}
    got = evaluate(store, project, rules, AS_OF).member_ids()
    wrong = []
    for i, pattern in enumerate(ACCEPTED):
        expected = {f"u{j:02d}" for j, s in enumerate(STRINGS) if re.search(pattern, s)}
        if set(got[f"r{i}"].to_pylist()) != expected:
            wrong.append(f"{pattern!r}: {sorted(got[f'r{i}'].to_pylist())} != {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("where", ["property", "filter", "survey"])
@pytest.mark.parametrize("pattern", list(REFUSED))
def test_refused_patterns_name_the_field_and_why(pattern: str, where: str) -> None:
    rule: dict[str, Any] = {
        "property": {"kind": "property", "property": "s", "op": "regex", "value": pattern},
        "filter": {"all": [{"kind": "performed", "event": "seen",
                            "where": [{"property": "s", "op": "regex", "value": pattern}]}]},
        "survey": {"kind": "survey_answer", "question": "q", "op": "regex", "value": pattern},
    }[where]
    with pytest.raises(RuleError) as err:
        parse_rule(rule)
    path = {"property": "rule: ", "filter": "rule.all[0].where[0]: ", "survey": "rule: "}[where]
    assert str(err.value).startswith(path), str(err.value)
    assert REFUSED[pattern] in str(err.value)


def _nested(kind: str, depth: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"kind": "performed", "event": "seen"}
    for _ in range(depth):
        rule = {"not": rule} if kind == "not" else {kind: [rule]}
    return rule


@pytest.mark.parametrize("rule, message", [
    (_nested("not", 200), f"nested more than {MAX_DEPTH} deep"),
    (_nested("all", 300), f"nested more than {MAX_DEPTH} deep"),
    (_nested("any", 10_000), "nested more than"),
    ({"all": [{"kind": "performed", "event": f"e{i}"} for i in range(1000)]},
     f"more than {MAX_CONDITIONS} conditions"),
    ({"kind": "account", "rule": _nested("all", MAX_DEPTH)}, f"nested more than {MAX_DEPTH}"),
    ({"kind": "property", "property": "p", "op": "in", "value": list(range(1001))},
     "at most 1000 items"),
    ({"kind": "property", "property": "p", "value": "x" * 1025}, "at most 1024 characters"),
    ({"kind": "property", "property": "p", "op": "gt", "value": float("nan")}, "finite number"),
    ({"kind": "aggregate", "event": "e", "property": "p", "agg": "sum", "value": float("inf")},
     "finite number"),
    ({"kind": "performed", "event": "e", "window": {"between": ["0001-01-01", "2026-01-01"]}},
     "outside the supported range"),
    ({"kind": "sequence", "steps": [{"event": "a"}, {"event": "b", "within_days": 10**12}]},
     "less than or equal to 100000"),
])
def test_rules_past_a_limit_are_refused(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule(rule)
    assert message in str(err.value), str(err.value)


@pytest.mark.slow
def test_rules_at_the_limits_evaluate(regex_store) -> None:  # type: ignore[no-untyped-def]
    """The largest rules allowed run on every engine: no recursion limit on the way."""
    store, project = regex_store
    flat = {"all": [{"kind": "performed", "event": "seen",
                     "where": [{"property": "s", "op": "ne", "value": f"v{i}"}]}
                    for i in range(MAX_CONDITIONS)]}
    deep = _nested("not", MAX_DEPTH)  # an even number of nots: performed seen
    got = evaluate(store, project, {"flat": flat, "deep": deep}, AS_OF).member_ids()
    everyone = {f"u{i:02d}" for i in range(len(STRINGS))}
    assert set(got["flat"].to_pylist()) == everyone
    assert set(got["deep"].to_pylist()) == everyone


@pytest.mark.parametrize("as_of", [
    datetime(1, 1, 1), datetime(9999, 12, 31), datetime(1899, 12, 31, 23, 59),
    datetime(2200, 1, 1), datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14))),
])
def test_instants_outside_the_range_are_refused(store: Store, as_of: datetime) -> None:
    fill(store)
    project = store.table("projects").to_pyarrow()["project_id"][0].as_py()
    with pytest.raises(RuleError, match="outside the supported range"):
        evaluate(store, project, {"x": {"kind": "active"}}, as_of)


def test_instants_at_the_edges_of_the_range_evaluate(store: Store) -> None:
    fill(store)
    project = store.table("projects").to_pyarrow()["project_id"][0].as_py()
    rule = {"kind": "performed", "event": "seen", "window": {"last": 100_000}}
    for as_of in (datetime(1900, 1, 1), datetime(2199, 12, 31, 23, 59, 59),
                  datetime(1900, 1, 1, 13, tzinfo=timezone(timedelta(hours=13)))):
        got = sorted(evaluate(store, project, {"x": rule}, as_of).member_ids()["x"].to_pylist())
        assert got == ([] if as_of.year == 1900 else sorted(f"u{i:02d}" for i in
                                                             range(len(STRINGS))))
