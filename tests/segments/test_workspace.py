"""Workspace files: valid ones load, invalid ones name the line and field."""

from __future__ import annotations

import pytest

from segmently.segments.workspace import WorkspaceError, json_schema, parse_workspace

GOOD = """\
session_gap_minutes: 20
features:
  - name: reports
    core: true
    events:
      - event: report_viewed
      - event: report_created
milestones:
  - name: signed_up
    events: [{event: signed_up}]
engagement:
  weights: {report_viewed: 1, report_created: 3}
segments:
  - name: power
    description: heavy users
    rule: {all: []}
"""


def test_good_workspace_loads() -> None:
    ws = parse_workspace(GOOD)
    assert ws.session_gap_minutes == 20
    assert [f.name for f in ws.features] == ["reports"] and ws.features[0].core
    assert [e.event for e in ws.features[0].events] == ["report_viewed", "report_created"]
    assert ws.engagement.weights == {"report_viewed": 1, "report_created": 3}
    assert ws.segment("power").description == "heavy users"


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("session_gap_minutes: 20", "session_gap_minutes: soon"),
     "segmently.yaml:1: session_gap_minutes: Input should be a valid integer"),
    (GOOD.replace("      - event: report_created", "      - evnt: report_created"),
     "segmently.yaml:7: features[0].events[1].evnt: Extra inputs are not permitted"),
    (GOOD.replace("  - name: power", "  - name: \"bad'; drop\""),
     "segmently.yaml:14: segments[0].name: String should match pattern"),
    (GOOD + "  - name: power\n    rule: {all: []}\n", "repeated: power"),
    ("features: [unclosed", "segmently.yaml: not valid YAML"),
    ("- just\n- a list\n", "segmently.yaml:1: the workspace must be a mapping"),
])
def test_errors_name_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(WorkspaceError) as info:
        parse_workspace(text)
    assert expected in str(info.value)


def test_json_schema_describes_the_file() -> None:
    schema = json_schema()
    assert {"features", "milestones", "engagement", "health", "segments"} <= \
        set(schema["properties"])
    assert "Feature" in schema["$defs"]
