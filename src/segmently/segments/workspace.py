"""The workspace file (`segmently.yaml`): the product vocabulary plus segments, as code.

Teams keep it in git. It is validated by pydantic; every error names the file, line and
field at fault. `segmently schema` exports the JSON Schema for editor autocompletion.

Next hop: `apply.py` (`segmently apply`, `Segmently.apply`) writes a workspace to the
database, and `export` writes one back; the shells' segment verbs (`core.Project`)
evaluate what is stored, not the file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from segmently.profile.config import Vocabulary
from segmently.segments.errors import RuleError, SegmentReferenceError
from segmently.segments.rules import Rule, RuleModel, parse_rule
from segmently.segments.yamlsource import WorkspaceError, explain_validation, line_for, load_yaml

DEFAULT_FILE = "segmently.yaml"


class SegmentDefinition(BaseModel):
    """A named segment and the rule its members satisfy."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]*$")
    description: str = ""
    rule: dict[str, Any]


class Workspace(Vocabulary):
    """Vocabulary (features, milestones, scores, sessions), segment definitions, and the
    in-app campaigns and settings (kept as data here: `act/applying.py` validates them,
    a later stage than segments)."""

    project: str | None = None
    segments: list[SegmentDefinition] = Field(default_factory=list)
    campaigns: list[dict[str, Any]] = Field(default_factory=list, max_length=500)
    in_app: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _unique_segments(self) -> Workspace:
        names = [s.name for s in self.segments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"segment names must be unique; repeated: {', '.join(dupes)}")
        return self

    def rules(self) -> dict[str, Rule]:
        """Every segment's parsed rule, by name (the workspace was validated on load)."""
        return {s.name: parse_rule(s.rule, f"{s.name}.rule") for s in self.segments}

    def segment(self, name: str) -> SegmentDefinition:
        for s in self.segments:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.segments)
        raise KeyError(f"no segment named {name!r}; known: {known}")


def parse_workspace(text: str, source: str = DEFAULT_FILE) -> Workspace:
    data, lines = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WorkspaceError(f"{source}:1: the workspace must be a mapping of keys to values")
    try:
        workspace = Workspace.model_validate(data)
    except ValidationError as exc:
        raise WorkspaceError(explain_validation(exc, lines, source)) from exc
    _check_rules(workspace, lines, source)
    return workspace


_PATH_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def _path(text: str) -> tuple[str | int, ...]:
    """`segments[0].rule.all[1].min` -> ("segments", 0, "rule", "all", 1, "min")."""
    return tuple(int(index) if index else key for key, index in _PATH_PART.findall(text))


def _check_rules(workspace: Workspace, lines: dict[Any, int], source: str) -> None:
    """Parse every rule (the field type stays a dict for callers) and check references and
    cycles the way evaluation will, so a bad file fails when loaded, naming the line."""
    problems: list[str] = []
    for i, seg in enumerate(workspace.segments):
        try:
            parse_rule(seg.rule, f"segments[{i}].rule")
        except RuleError as exc:
            for message in str(exc).splitlines():
                where = message.partition(": ")[0]
                line = line_for(_path(where), lines)
                problems.append(f"{source}:{line}: {message}" if line else f"{source}: {message}")
    if problems:
        raise WorkspaceError("\n".join(problems))
    _check_references(workspace, lines, source)


def _check_references(workspace: Workspace, lines: dict[Any, int], source: str) -> None:
    from segmently.segments.aggregates import Aggregates
    from segmently.segments.lower import Lowerer
    from segmently.store import utcnow

    lowerer = Lowerer(Aggregates(utcnow(), vocabulary=workspace), workspace.rules())
    for i, seg in enumerate(workspace.segments):
        try:
            lowerer.segment(seg.name)
        except SegmentReferenceError as exc:
            line = line_for(("segments", i, "rule"), lines)
            prefix = f"{source}:{line}" if line else source
            raise WorkspaceError(f"{prefix}: segments[{i}].rule: {exc}") from exc


def load_workspace(path: str | Path = DEFAULT_FILE) -> Workspace:
    path = Path(path)
    if not path.exists():
        raise WorkspaceError(f"{path}: no such workspace file (create one, or run "
                             "`segmently demo`)")
    return parse_workspace(path.read_text(), str(path))


def json_schema() -> dict[str, Any]:
    """The workspace file's JSON Schema, with the full rule language under each segment's
    `rule` (the model keeps rules as plain data; they are parsed on load)."""
    schema = Workspace.model_json_schema()
    rule = RuleModel.model_json_schema()
    defs = schema.setdefault("$defs", {})
    defs.update(rule.get("$defs", {}))
    defs["SegmentDefinition"]["properties"]["rule"] = rule["properties"]["rule"]
    return schema
