"""A workspace file applied to the stored definitions (segments/apply.py): what a plan says,
what an apply writes, drift from UI edits left alone, prune, export round trips. Every
expectation is read back from the `segment_versions` / `vocabulary_versions` rows."""

from __future__ import annotations

import json

import pytest
import yaml

from segmently.core import Project
from segmently.profile import vocabularies
from segmently.segments import definitions as d
from segmently.segments.errors import SegmentReferenceError
from segmently.segments.workspace import parse_workspace
from segmently.store import Store

pytestmark = pytest.mark.slow  # each test applies workspaces to a store

WORKSPACE = """
features:
  - name: reports
    events: [{event: report_viewed}]
segments:
  - name: busy
    rule: {all: [{kind: in_segment, segment: power}, {kind: active, at_least: 3}]}
  - name: power
    description: heavy report users
    rule: {kind: performed, event: report_viewed, at_least: 5, window: {last: 30}}
"""
ACTIVE = {"kind": "active", "unit": "day", "at_least": 3}


def rows(store: Store) -> list[tuple[str, int, bool, str | None]]:
    """(segment, version, deleted, source) of every stored version, in order."""
    d.ensure_tables(store)
    t = store.table(d.VERSIONS)
    got = t.filter(t.project_id == "p").to_pyarrow().to_pylist()
    return sorted((r["segment"], r["version"], r["deleted"], r["source"]) for r in got)


def actions(plan: object) -> dict[str, str]:
    return {f"{i.kind} {i.name}": i.action for i in plan.items if i.action != "same"}


@pytest.fixture
def project(store: Store) -> Project:
    return Project(store, "p")


def test_first_apply_writes_everything_in_one_version_each(project: Project,
                                                           store: Store) -> None:
    ws = parse_workspace(WORKSPACE)
    plan = project.plan(ws)
    assert actions(plan) == {"feature reports": "add", "segment busy": "add",
                             "segment power": "add"}
    assert rows(store) == []  # a plan writes nothing
    done = project.apply(ws)  # busy refers to power, declared after it: one transaction
    assert (done.applied, done.versions, done.vocabulary_version) == \
        (True, {"busy": 1, "power": 1}, 1)
    assert rows(store) == [("busy", 1, False, "apply"), ("power", 1, False, "apply")]
    assert [f.name for f in vocabularies.vocabulary(store, "p").features] == ["reports"]
    again = project.apply(ws)
    assert (again.applied, again.in_sync) == (False, True)
    assert rows(store) == [("busy", 1, False, "apply"), ("power", 1, False, "apply")]
    assert len(vocabularies.history(store, "p")) == 1


def test_a_changed_file_is_a_change_with_its_diff(project: Project, store: Store) -> None:
    project.apply(parse_workspace(WORKSPACE))
    changed = parse_workspace(WORKSPACE.replace("at_least: 5", "at_least: 7")
                              .replace("report_viewed}]", "report_viewed}, {event: export}]"))
    plan = project.plan(changed)
    assert actions(plan) == {"feature reports": "change", "segment power": "change"}
    diff = next(i.diff for i in plan.items if i.name == "power")
    assert "-  at_least: 5" in diff and "+  at_least: 7" in diff
    project.apply(changed)
    assert rows(store)[-1] == ("power", 2, False, "apply")
    assert d.current(store, "p")["power"].rule.at_least == 7
    assert [m.event for m in vocabularies.vocabulary(store, "p").features[0].events] == \
        ["report_viewed", "export"]


def test_a_ui_edit_is_drift_left_alone_unless_forced(project: Project, store: Store) -> None:
    ws = parse_workspace(WORKSPACE)
    project.apply(ws)
    d.save(store, "p", "power", "edited in the UI", {**ACTIVE, "at_least": 9}, source="ui")
    before = rows(store)
    plan = project.plan(ws)
    assert actions(plan) == {"segment power": "drift"}
    drift = plan.drift[0]
    assert drift.reason.startswith("changed in the UI (version 2) since the last apply")
    assert "-description: edited in the UI" in drift.diff
    done = project.apply(ws)
    assert (done.applied, rows(store)) == (False, before)  # nothing written
    assert d.current(store, "p")["power"].description == "edited in the UI"
    forced = project.apply(ws, force=True)
    assert forced.versions["power"] == 3
    assert rows(store)[-1] == ("power", 3, False, "apply")
    assert d.current(store, "p")["power"].description == "heavy report users"
    assert project.plan(ws).in_sync


def test_a_ui_deletion_is_drift_too(project: Project, store: Store) -> None:
    ws = parse_workspace(WORKSPACE.replace("in_segment, segment: power", "active, at_least: 1"))
    project.apply(ws)
    d.delete(store, "p", "power", source="ui")
    plan = project.plan(ws)
    assert actions(plan) == {"segment power": "drift"}
    assert plan.drift[0].reason.startswith("deleted in the UI (version 2)")
    project.apply(ws)
    assert "power" not in d.current(store, "p")
    project.apply(ws, force=True)
    assert rows(store)[-1] == ("power", 3, False, "apply")


def test_prune_removes_only_what_an_apply_wrote(project: Project, store: Store) -> None:
    project.apply(parse_workspace(WORKSPACE))
    d.save(store, "p", "made_in_ui", "", ACTIVE, source="ui")
    smaller = parse_workspace(WORKSPACE.split("  - name: busy")[0] + """\
  - name: power
    description: heavy report users
    rule: {kind: performed, event: report_viewed, at_least: 5, window: {last: 30}}
""")
    assert actions(project.plan(smaller)) == {"segment busy": "keep",
                                              "segment made_in_ui": "keep"}
    assert actions(project.plan(smaller, prune=True)) == {"segment busy": "remove",
                                                          "segment made_in_ui": "drift"}
    project.apply(smaller, prune=True)
    assert sorted(d.current(store, "p")) == ["made_in_ui", "power"]
    assert ("busy", 2, True, "apply") in rows(store)
    project.apply(smaller, prune=True, force=True)
    assert sorted(d.current(store, "p")) == ["power"]


def test_a_refused_apply_writes_nothing_at_all(project: Project, store: Store) -> None:
    project.apply(parse_workspace(WORKSPACE.split("segments:")[0] + "segments: []\n"))
    d.save(store, "p", "power", "", ACTIVE, source="apply")
    d.save(store, "p", "uses_power", "", {"kind": "in_segment", "segment": "power"},
           source="ui")
    before, vocab_before = rows(store), vocabularies.history(store, "p")
    # pruning power (and forcing away the UI's segment is not asked) would break uses_power
    other = parse_workspace("features: [{name: other, events: [{event: x}]}]\nsegments: []\n")
    with pytest.raises(SegmentReferenceError, match="referenced by segment 'uses_power'"):
        project.apply(other, prune=True)
    assert rows(store) == before
    assert vocabularies.history(store, "p") == vocab_before  # the feature was not written


def test_export_round_trips(project: Project, store: Store) -> None:
    project.apply(parse_workspace(WORKSPACE))
    d.save(store, "p", "made_in_ui", "from the builder", ACTIVE, source="ui")
    text = project.export()
    data = yaml.safe_load(text)
    assert [s["name"] for s in data["segments"]] == ["busy", "made_in_ui", "power"]
    assert data["features"] == [{"name": "reports", "events": [{"event": "report_viewed"}]}]
    assert "session_gap_minutes" not in data  # defaults are left out
    ws = parse_workspace(text)
    assert project.plan(ws).in_sync
    # the exported file now owns the UI's segment: a later UI edit is drift again
    project.apply(ws)
    assert project.plan(ws).in_sync


def test_history_reverts_and_renames(project: Project, store: Store) -> None:
    project.apply(parse_workspace(WORKSPACE))
    d.save(store, "p", "power", "v2", {**ACTIVE, "at_least": 4}, source="ui")
    back = project.revert("power", 1)
    assert (back.version, back.description, back.rule.at_least) == \
        (3, "heavy report users", 5)
    from segmently.segments.apply import version_diffs

    history = version_diffs(project.history("power"))
    assert [(v["version"], v["source"]) for v in history] == \
        [(1, "apply"), (2, "ui"), (3, "api")]
    assert "+description: v2" in history[1]["diff"]
    with pytest.raises(SegmentReferenceError):  # busy refers to power
        project.rename("power", "champions")
    project.delete("busy")
    moved = project.rename("power", "champions")
    assert (moved.name, moved.version, moved.rule.at_least) == ("champions", 1, 5)
    assert sorted(d.current(store, "p")) == ["champions"]
    assert json.loads(json.dumps(project.history("power")[-1].to_json()))["deleted"] is True
