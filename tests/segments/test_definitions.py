"""Stored segment definitions: versions, no-op saves, tombstones, reference checks (the
workspace file applied to them: test_apply.py)."""

from __future__ import annotations

import json

import pytest

from segmently.segments import definitions as d
from segmently.segments.errors import RuleError, SegmentReferenceError
from segmently.store import Store

POWER = {"kind": "performed", "event": "report_viewed", "at_least": 5,
         "window": {"last": 30, "unit": "days"}}
ACTIVE = {"kind": "active", "unit": "day", "at_least": 3}


def stored_rows(store: Store) -> list[tuple[str, str, int, bool]]:
    d.ensure_tables(store)
    rows = store.table(d.VERSIONS).to_pyarrow().to_pylist()
    return sorted((r["project_id"], r["segment"], r["version"], r["deleted"]) for r in rows)


def test_versions_only_when_the_definition_changes(store: Store) -> None:
    assert d.save(store, "p", "power", "heavy report users", POWER) == 1
    assert d.save(store, "p", "power", "heavy report users", POWER) == 1  # same: no row
    assert d.save(store, "p", "power", "renamed description", POWER) == 2
    assert d.save(store, "p", "power", "renamed description", {**POWER, "at_least": 6}) == 3
    assert stored_rows(store) == [("p", "power", 1, False), ("p", "power", 2, False),
                                  ("p", "power", 3, False)]
    live = d.current(store, "p")
    assert list(live) == ["power"]
    assert live["power"].version == 3
    assert live["power"].description == "renamed description"
    assert live["power"].rule.at_least == 6
    hist = d.history(store, "p", "power")
    assert [(v.version, v.description, v.rule["at_least"]) for v in hist] == [
        (1, "heavy report users", 5), (2, "renamed description", 5),
        (3, "renamed description", 6)]


def test_definition_is_stored_as_json_text(store: Store) -> None:
    d.save(store, "p", "power", "x", POWER)
    row = store.table(d.VERSIONS).to_pyarrow().to_pylist()[0]
    assert json.loads(row["definition"]) == {
        "name": "power", "description": "x",
        "rule": {"kind": "performed", "event": "report_viewed", "at_least": 5, "where": [],
                 "window": {"last": 30, "unit": "days"}}}


def test_delete_is_a_tombstone_and_history_stays(store: Store) -> None:
    d.save(store, "p", "power", "", POWER)
    assert d.delete(store, "p", "power") == 2
    assert d.current(store, "p") == {}
    with pytest.raises(d.UnknownSegmentError):
        d.get(store, "p", "power")
    with pytest.raises(d.UnknownSegmentError):
        d.delete(store, "p", "power")
    assert d.save(store, "p", "power", "", POWER) == 3  # recreated: a new version
    assert [(v.version, v.deleted, v.rule is None) for v in d.history(store, "p", "power")] \
        == [(1, False, False), (2, True, True), (3, False, False)]


def test_invalid_rules_and_names_write_nothing(store: Store) -> None:
    with pytest.raises(RuleError, match=r"rule\.at_least"):
        d.save(store, "p", "power", "", {**POWER, "at_least": -1})
    with pytest.raises(RuleError, match="name"):
        d.save(store, "p", "bad/name", "", POWER)
    assert stored_rows(store) == []


def test_references_are_checked_against_live_definitions(store: Store) -> None:
    with pytest.raises(SegmentReferenceError, match="unknown segment 'power'"):
        d.save(store, "p", "busy", "", {"kind": "in_segment", "segment": "power"})
    d.save(store, "p", "power", "", POWER)
    d.save(store, "p", "busy", "", {"all": [{"kind": "in_segment", "segment": "power"}, ACTIVE]})
    with pytest.raises(SegmentReferenceError, match="cycle: power -> busy -> power"):
        d.save(store, "p", "power", "", {"not": {"kind": "not_in_segment", "segment": "busy"}})
    with pytest.raises(SegmentReferenceError, match="referenced by segment 'busy'"):
        d.delete(store, "p", "power")
    assert d.current(store, "p")["power"].version == 1
    assert stored_rows(store) == [("p", "busy", 1, False), ("p", "power", 1, False)]


def test_projects_are_separate(store: Store) -> None:
    d.save(store, "p", "power", "", POWER)
    d.save(store, "q", "other", "", ACTIVE)
    assert list(d.current(store, "p")) == ["power"]
    assert list(d.current(store, "q")) == ["other"]
    with pytest.raises(SegmentReferenceError):  # q cannot refer to p's segment
        d.save(store, "q", "x", "", {"kind": "in_segment", "segment": "power"})
