"""The workspace file's `campaigns:` and `in_app:` applied to the database, planned like
its segments (`segments/apply.py`: add, change, remove, keep, drift, same; the same
`Item`s, in the same plan), and exported back.

A campaign's audience may name a segment the same file adds: `check` validates every
campaign against the segments stored plus the file's, before anything is written. The
verification secret never appears in a file: `in_app` holds `cooldown_hours` and
`identity_verification`, and turning verification on makes the secret (shown by
`segmently in-app show`). Called by `core.Project.plan/apply/export`.
"""

from __future__ import annotations

from typing import Any

from segmently.act import campaigns as camps
from segmently.segments import definitions as defs
from segmently.segments.apply import APPLY, Action, Item, item
from segmently.segments.workspace import Workspace
from segmently.segments.yamlsource import WorkspaceError
from segmently.store import Store

FILE_SETTINGS = ("cooldown_hours", "identity_verification")


def parsed(workspace: Workspace) -> dict[str, camps.Campaign]:
    """The file's campaigns, validated; an error names the entry."""
    out: dict[str, camps.Campaign] = {}
    for i, data in enumerate(workspace.campaigns):
        try:
            campaign = camps.parse(data)
        except camps.CampaignError as exc:
            label = data.get("name", "") if isinstance(data, dict) else ""
            raise WorkspaceError(f"campaigns[{i}] {label}: {exc}".replace(" :", ":")) \
                from None
        if campaign.name in out:
            raise WorkspaceError(f"campaigns[{i}]: the name {campaign.name!r} is repeated")
        out[campaign.name] = campaign
    return out


def check(store: Store, project_id: str, workspace: Workspace) -> None:
    """Every campaign's audience names a segment that will exist after the apply."""
    known = set(defs.current(store, project_id)) | {s.name for s in workspace.segments}
    for name, campaign in parsed(workspace).items():
        for segment in campaign.audience.segments():
            if segment not in known:
                raise WorkspaceError(f"campaigns: {name}: audience: no segment named "
                                     f"{segment!r}")
    if workspace.in_app is not None:
        extra = set(workspace.in_app) - set(FILE_SETTINGS)
        if extra:
            raise WorkspaceError(f"in_app: {', '.join(sorted(extra))}: not a file setting "
                                 f"(give {', '.join(FILE_SETTINGS)})")
        camps.parse_settings(workspace.in_app)


def _file_settings(value: camps.InAppSettings) -> dict[str, Any]:
    return {k: v for k, v in value.model_dump(mode="json").items() if k in FILE_SETTINGS}


def items(store: Store, project_id: str, workspace: Workspace, prune: bool) -> list[Item]:
    camps.ensure_tables(store)
    latest = camps.VERSIONS.latest(store, project_id)
    wanted = {n: c.model_dump(mode="json", by_alias=True)
              for n, c in parsed(workspace).items()}
    out: list[Item] = []
    for name in sorted(set(latest) | set(wanted)):
        row = latest.get(name)
        if row is not None and row["deleted"] and name not in wanted:
            continue
        stored = None if row is None or row["deleted"] else camps.VERSIONS.live(
            store, project_id)[name]
        out.append(item("campaign", name, stored, wanted.get(name),
                        row["source"] if row else None,
                        f"version {row['version']}" if row else "", prune))
    if workspace.in_app is not None:
        row = camps.SETTINGS.latest(store, project_id).get("in_app")
        stored = _file_settings(camps.settings(store, project_id))
        wanted_settings = _file_settings(camps.parse_settings(workspace.in_app))
        out.append(item("in_app", "settings", stored, wanted_settings,
                        row["source"] if row else APPLY,
                        f"version {row['version']}" if row else "default", False))
    return out


def write(store: Store, project_id: str, workspace: Workspace, planned: list[Item],
          actions: tuple[Action, ...]) -> None:
    """Write the planned campaign and in-app items whose action is in `actions`."""
    wanted = parsed(workspace)
    for i in planned:
        if i.action not in actions:
            continue
        if i.kind == "campaign":
            if i.name in wanted:
                camps.save(store, project_id, wanted[i.name], APPLY)
            else:
                camps.delete(store, project_id, i.name, APPLY)
        elif i.kind == "in_app" and workspace.in_app is not None:
            value = camps.parse_settings(workspace.in_app, camps.settings(store, project_id))
            camps.save_settings(store, project_id, value, APPLY)


def export_data(store: Store, project_id: str) -> dict[str, Any]:
    """`campaigns:` (and `in_app:` when set) as a workspace file holds them."""
    camps.ensure_tables(store)
    out: dict[str, Any] = {}
    if camps.SETTINGS.latest(store, project_id):
        out["in_app"] = _file_settings(camps.settings(store, project_id))
    found = camps.current(store, project_id)
    if found:
        out["campaigns"] = [s.campaign.model_dump(mode="json", by_alias=True,
                                                  exclude_defaults=True) | {
            "name": s.campaign.name, "kind": s.campaign.kind, "content": s.campaign.content}
            for s in found.values()]
    return out
