"""The demo product declared as a workspace: features, milestones, scores and segments.

`demo_vocabulary()` is the profile vocabulary (features, with the core ones flagged;
milestones in journey order; engagement weights; the default health score).
`demo_workspace()` adds the built-in segment library and the demo's in-app campaigns
(`demo_campaigns`), and `write_workspace` writes it as
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
from segmently.segments.workspace import DEFAULT_FILE, SegmentDefinition, Workspace
from segmently.store.urls import duckdb_path

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


def demo_campaigns() -> list[dict[str, Any]]:
    """In-app campaigns over the library's segments, one of each kind (docs/sdk.md): the
    seeds' "uses X and Y but not Z gets a tooltip that shows them Z", an NPS survey and a
    follow-up for detractors, an onboarding checklist, a win-back modal, a trial banner.
    The selectors are those of the sample host page (examples/host)."""
    def modal(title: str, body: str, label: str, url: str) -> dict[str, Any]:
        return {"title": title, "body": body, "button": {"label": label, "url": url}}

    return [
        {"name": "show_alerts", "kind": "tour", "priority": 30, "holdout_percent": 20,
         "description": "Uses reports and dashboards, never made an alert: show them where.",
         "audience": {"in": ["feature_discovery"]},
         "goal": {"rule": {"kind": "performed", "event": v.ALERT_CREATED}, "within_days": 14},
         "content": {"steps": [{"selector": "#alerts-button", "title": "Get told first",
                                "body": "Alerts watch a report for you and message you "
                                        "when a number moves."}]}},
        {"name": "onboarding", "kind": "checklist", "priority": 20,
         "frequency": "until_dismissed", "audience": {"in": ["stuck_in_onboarding"]},
         "goal": {"rule": {"kind": "reached_milestone", "milestone": v.TEAMMATE_INVITED},
                  "within_days": 14},
         "content": {"title": "Get set up", "tasks": [
             {"id": "workspace", "label": "Create a workspace", "milestone": v.WORKSPACE_CREATED},
             {"id": "source", "label": "Connect a data source",
              "milestone": v.DATA_SOURCE_CONNECTED},
             {"id": "report", "label": "Create your first report",
              "milestone": v.FIRST_REPORT_CREATED},
             {"id": "invite", "label": "Invite a teammate", "milestone": v.TEAMMATE_INVITED}]}},
        {"name": "detractor_follow_up", "kind": "survey", "priority": 15,
         "audience": {"in": ["detractors"]},
         "content": {"title": "Help us fix it", "questions": [
             {"id": "area", "kind": "choice", "prompt": "What disappointed you most?",
              "options": ["Speed", "Reports", "Alerts", "Pricing", "Support"]},
             {"id": "detail", "kind": "text", "prompt": "What should we change first?"}]}},
        {"name": "nps_quarterly", "kind": "nps", "priority": 10,
         "frequency": {"every_days": 90}, "trigger": {"delay_seconds": 5},
         "audience": {"in": ["regular"], "not_in": ["new_this_week"]}, "content": {}},
        {"name": "win_back", "kind": "modal", "priority": 5, "audience": {"in": ["at_risk"]},
         "goal": {"rule": {"kind": "performed", "event": v.REPORT_VIEWED,
                           "window": {"last": 7, "unit": "days"}}, "within_days": 14},
         "content": modal("Your reports missed you", "Three reports changed since your last "
                          "visit.", "See what changed", "/reports")},
        {"name": "trial_upgrade", "kind": "banner", "priority": 1,
         "audience": {"in": ["trial_likely_to_convert"]},
         "content": {"body": "Your trial ends soon: keep your reports and alerts.",
                     "button": {"label": "Choose a plan", "url": "/billing"}}},
    ]


def demo_workspace(project: str = "demo") -> Workspace:
    """The demo vocabulary, the built-in segment library over it, and the campaigns."""
    from segmently.segments.library import builtin_segments

    vocab = demo_vocabulary()
    return Workspace(project=project, segments=builtin_segments(vocab) + planted_segments(),
                     campaigns=demo_campaigns(), **vocab.model_dump())


def planted_segments() -> list[SegmentDefinition]:
    """The demo's planted retention effect as two segments (demo/planted.py): users who
    created an alert in their first week, and the others, for the retention page
    (`start_event=signed_up&segments=early_alert,no_early_alert`)."""
    early = {"kind": "performed", "event": v.ALERT_CREATED,
             "window": {"within_days_of_first_seen": 7}}
    return [SegmentDefinition(name="early_alert", description="Created an alert in their "
                              "first 7 days (the demo's planted retention driver).",
                              rule=early),
            SegmentDefinition(name="no_early_alert", description="No alert in their first "
                              "7 days.", rule={"not": early})]


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
    tidy = {k: x if k in ("segments", "campaigns") else _tidy(x) for k, x in data.items()}
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
