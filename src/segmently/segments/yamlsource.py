"""YAML with line numbers, so a validation error can say where in the file it is.

PyYAML's composer keeps the position of every node; we walk the node tree once to map each
path (("segments", 2, "rule")) to its line, then build plain Python values as usual.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from segmently.errors import SegmentlyError

Path = tuple[str | int, ...]


class WorkspaceError(SegmentlyError, ValueError):
    """A workspace file problem, with the file, line and field at fault in the message."""

    code = "invalid_workspace"


def _walk(node: yaml.Node, path: Path, lines: dict[Path, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            lines[(*path, k)] = key.start_mark.line + 1
            _walk(value, (*path, k), lines)
            lines[(*path, k)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines)


def load_yaml(text: str, source: str) -> tuple[Any, dict[Path, int]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WorkspaceError(f"{source}: not valid YAML: {exc}") from exc
    lines: dict[Path, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def line_for(loc: Path, lines: dict[Path, int]) -> int | None:
    """The line of the deepest known node on the path (the field, or what holds it)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def explain_validation(exc: ValidationError, lines: dict[Path, int], source: str) -> str:
    """One line per problem: `file:line: segments[2].rule.min: Input should be ...`."""
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p[:1].isupper()))
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        line = line_for(loc, lines)
        prefix = f"{source}:{line}" if line else source
        out.append(f"{prefix}: {where or '(top)'}: {err['msg']}")
    return "\n".join(out)
