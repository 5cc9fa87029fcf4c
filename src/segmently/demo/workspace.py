"""The demo product declared as a workspace: features, milestones, scores and segments.

`demo_vocabulary()` is the profile vocabulary (features, with the core ones flagged;
milestones in journey order; engagement weights; the default health score).
`demo_workspace()` adds the built-in segment library, and `write_workspace` writes it as
the segmently.yaml a team would keep in git, which `segments.workspace.load_workspace`
reads back and `segmently demo` applies to the project (`cli/demo.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from segmently.demo import vocabulary as v
from segmently.profile.config import EngagementScore, Feature, HealthScore, Milestone, Vocabulary
from segmently.profile.matchers import EventMatcher
from segmently.segments.workspace import DEFAULT_FILE, Workspace
from segmently.store.backends import duckdb_path

ENGAGEMENT_WEIGHTS = {v.REPORT_VIEWED: 1.0, v.DASHBOARD_VIEWED: 1.0, v.REPORT_CREATED: 3.0,
                      v.ALERT_CREATED: 3.0, v.EXPORT_DOWNLOADED: 2.0, v.API_CALLED: 2.0,
                      v.SQL_QUERY_RUN: 2.0}

HEADER = """\
# Segmently workspace for the demo product (written by `segmently demo`).
# Features, journey milestones, engagement and health scores describe the product once;
# segments are rules over them (the built-in library). Keep this file in git and edit it:
# `segmently schema` prints the JSON Schema for editor autocompletion.
"""


def demo_vocabulary() -> Vocabulary:
    """Features (core ones flagged), milestones in journey order, engagement weights."""
    features = [Feature(name=name, core=name in v.CORE_FEATURES,
                        events=[EventMatcher(event=name)]) for name in v.FEATURES]
    milestones = [Milestone(name=name, events=[EventMatcher(event=name)])
                  for name in v.MILESTONES]
    return Vocabulary(features=features, milestones=milestones,
                      engagement=EngagementScore(weights=ENGAGEMENT_WEIGHTS),
                      health=HealthScore())


def demo_workspace(project: str = "demo") -> Workspace:
    """The demo vocabulary plus the built-in segment library over it."""
    from segmently.segments.library import builtin_segments

    vocab = demo_vocabulary()
    return Workspace(project=project, segments=builtin_segments(vocab),
                     **vocab.model_dump())


def _tidy(value: Any) -> Any:
    """Drop empty descriptions and filter lists, which are the defaults (vocabulary only:
    in a rule `all: []` means something)."""
    if isinstance(value, dict):
        return {k: _tidy(x) for k, x in value.items() if x not in ("", [])}
    if isinstance(value, list):
        return [_tidy(x) for x in value]
    return value


def workspace_yaml(workspace: Workspace) -> str:
    data = workspace.model_dump(mode="json", exclude_none=True)
    tidy = {k: x if k == "segments" else _tidy(x) for k, x in data.items()}
    return HEADER + yaml.safe_dump(tidy, sort_keys=False, width=100)


def workspace_path(db_url: str, config: str | Path | None = None) -> Path:
    """--config when given, else segmently.yaml next to a DuckDB file (or here)."""
    if config is not None:
        return Path(config)
    db = duckdb_path(db_url)
    return (db.parent if db is not None else Path.cwd()) / DEFAULT_FILE


def write_workspace(path: Path, project: str = "demo") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(workspace_yaml(demo_workspace(project)))
    return path
