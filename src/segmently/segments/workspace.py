"""The workspace file (`segmently.yaml`): the product vocabulary plus segments, as code.

Teams keep it in git. It is validated by pydantic; every error names the file, line and
field at fault. `segmently schema` exports the JSON Schema for editor autocompletion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from segmently.profile.config import Vocabulary
from segmently.segments.yamlsource import WorkspaceError, explain_validation, load_yaml

DEFAULT_FILE = "segmently.yaml"


class SegmentDefinition(BaseModel):
    """A named segment and the rule its members satisfy."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]*$")
    description: str = ""
    rule: dict[str, Any]


class Workspace(Vocabulary):
    """Vocabulary (features, milestones, scores, sessions) and segment definitions."""

    project: str | None = None
    segments: list[SegmentDefinition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_segments(self) -> Workspace:
        names = [s.name for s in self.segments]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"segment names must be unique; repeated: {', '.join(dupes)}")
        return self

    def segment(self, name: str) -> SegmentDefinition:
        for s in self.segments:
            if s.name == name:
                return s
        raise KeyError(f"no segment named {name!r}; known: {', '.join(s.name for s in self.segments)}")


def parse_workspace(text: str, source: str = DEFAULT_FILE) -> Workspace:
    data, lines = load_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise WorkspaceError(f"{source}:1: the workspace must be a mapping of keys to values")
    try:
        return Workspace.model_validate(data)
    except ValidationError as exc:
        raise WorkspaceError(explain_validation(exc, lines, source)) from exc


def load_workspace(path: str | Path = DEFAULT_FILE) -> Workspace:
    path = Path(path)
    if not path.exists():
        raise WorkspaceError(f"{path}: no such workspace file (create one, or run `segmently demo`)")
    return parse_workspace(path.read_text(), str(path))


def json_schema() -> dict[str, Any]:
    return Workspace.model_json_schema()
