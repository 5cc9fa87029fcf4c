"""The rule language: what validates, what is refused (naming the field), references."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from segmently.segments import RuleError, SegmentReferenceError, parse_rule, rule_json
from segmently.segments.aggregates import Aggregates
from segmently.segments.evaluate import as_rules
from segmently.segments.lower import Lowerer
from segmently.segments.rules import All, Not, Performed
from segmently.segments.windows import BetweenWindow, LastWindow

AS_OF = datetime(2026, 3, 31)
VIEWED = {"kind": "performed", "event": "report_viewed", "at_least": 5,
          "window": {"last": 30, "unit": "days"}}


def test_groups_and_conditions_parse() -> None:
    rule = parse_rule({"all": [VIEWED, {"not": {"any": []}}]})
    assert isinstance(rule, All)
    first, second = rule.all
    assert isinstance(first, Performed) and first.at_least == 5
    assert first.window == LastWindow(last=30, unit="days")
    assert isinstance(second, Not)


def test_round_trip_through_json() -> None:
    data = {"any": [VIEWED, {"not": {"kind": "in_segment", "segment": "x"}},
                    {"kind": "active", "unit": "week", "at_least": 2,
                     "window": {"between": ["2026-01-01T00:00:00", "2026-02-01T00:00:00"]}}]}
    once = parse_rule(data)
    assert parse_rule(rule_json(once)) == once
    assert rule_json(once)["any"][1] == {"not": {"kind": "in_segment", "segment": "x"}}


def test_aware_window_dates_become_utc() -> None:
    w = parse_rule({**VIEWED, "window": {"between": ["2026-03-01T02:00:00+02:00",
                                                      "2026-03-02"]}}).window
    assert isinstance(w, BetweenWindow)
    assert w.between == (datetime(2026, 3, 1), datetime(2026, 3, 2))


@pytest.mark.parametrize(("data", "message"), [
    ({"all": [{**VIEWED, "at_least": -1}]},
     "rule.all[0].at_least: Input should be greater than or equal to 0"),
    ({"any": [{**VIEWED, "bogus": 1}]}, "rule.any[0].bogus: Extra inputs are not permitted"),
    ({"not": {**VIEWED, "window": {"last": 0}}},
     "rule.not.window.last: Input should be greater than or equal to 1"),
    ({**VIEWED, "window": {"lately": 3}}, "rule.window: a window is one of"),
    ({"kind": "nope"}, "rule: a rule is a group (all: [...], any: [...] or not: rule)"),
    ({"all": [], "any": []}, "rule: a rule is a group"),
    ({**VIEWED, "exactly": 3}, "use either exactly or at_least/at_most"),
    ({"kind": "property", "property": "plan", "op": "in", "value": "pro"},
     "op 'in' needs a non-empty list as value"),
    ({"kind": "property", "property": "signed_up", "op": "within_last_days", "value": "x"},
     "op 'within_last_days' needs a whole number of days"),
    ({"kind": "aggregate", "event": "e", "property": "p", "agg": "median", "value": 1},
     "rule.agg: Input should be 'sum', 'avg', 'min', 'max' or 'distinct_count'"),
    ({"kind": "last_seen"}, "give exactly one of more_than_days_ago, within_last_days"),
    ({"kind": "regularly", "event": "e", "in_at_least": 5, "of_last": 4},
     "in_at_least must not exceed of_last"),
    ({**VIEWED, "window": {"between": ["2026-03-02", "2026-03-01"]}},
     "rule.window.between: Value error, the window's start must be before its end"),
])
def test_bad_rules_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError) as err:
        parse_rule(data)
    assert message.replace("Value error, ", "") in str(err.value)


def _lower_all(segments: dict[str, Any]) -> Lowerer:
    lowerer = Lowerer(Aggregates(AS_OF), as_rules(segments))
    for name in segments:
        lowerer.segment(name)
    return lowerer


def ref(name: str) -> dict[str, str]:
    return {"kind": "in_segment", "segment": name}


def test_reference_cycle_is_named() -> None:
    with pytest.raises(SegmentReferenceError, match=r"cycle: a -> b -> a"):
        _lower_all({"a": {"all": [ref("b")]}, "b": {"any": [VIEWED, ref("a")]}})
    with pytest.raises(SegmentReferenceError, match=r"cycle: s -> s"):
        _lower_all({"s": {"not": {"kind": "not_in_segment", "segment": "s"}}})
    with pytest.raises(SegmentReferenceError, match=r"cycle: b -> c -> d -> b"):
        _lower_all({"a": ref("b"), "b": ref("c"), "c": ref("d"), "d": ref("b")})


def test_unknown_reference_is_named() -> None:
    with pytest.raises(SegmentReferenceError,
                       match=r"unknown segment 'ghost' \(in segment 'a'\); known: a"):
        _lower_all({"a": ref("ghost")})


def test_bad_segment_rule_names_the_segment() -> None:
    with pytest.raises(RuleError, match=r"power\.rule\.at_least: Input should be"):
        as_rules({"power": {**VIEWED, "at_least": "many"}})


def test_identical_conditions_share_one_aggregate() -> None:
    other = {**VIEWED, "at_least": 9}  # same count, another threshold
    lowerer = _lower_all({"a": VIEWED, "b": {"all": [other, {"not": VIEWED}]},
                          "c": {**VIEWED, "window": {"last": 7}}})
    assert len(lowerer.aggs.aggs) == 2  # the 30-day count, and the 7-day count


def test_window_spans() -> None:
    from segmently.segments.windows import FirstSeenWindow, Span, minus_months

    assert LastWindow(last=2, unit="weeks").span(AS_OF) == Span(start=datetime(2026, 3, 17))
    assert LastWindow(last=1, unit="months").span(AS_OF) == Span(start=datetime(2026, 2, 28))
    assert minus_months(datetime(2026, 1, 15, 8), 2) == datetime(2025, 11, 15, 8)
    assert BetweenWindow(between=(datetime(2026, 3, 1), datetime(2026, 5, 1))).span(AS_OF) \
        == Span(start=datetime(2026, 3, 1), end=AS_OF)  # capped at as_of
    assert FirstSeenWindow(within_days_of_first_seen=7).span(AS_OF) == Span(first_seen_days=7)
    assert LastWindow(last=1).describe() == "in the last 1 day"
