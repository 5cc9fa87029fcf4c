"""`segmently apply`, `segmently export` and `segmently segments history|revert|rename|delete`:
the stored definitions (the database is their one home) and the workspace file that
writes them, as `terraform plan`/`apply` and `kubectl apply` do (`segments/apply.py`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from segmently.cli.app import app
from segmently.cli.context import Ctx, run_segments, workspace_text
from segmently.cli.options import PROJECT
from segmently.cli.output import console, show
from segmently.cli.segments import segments_app

EXIT_DRIFT = 4  # README, "Errors": the database and the file differ (apply --check, drift)
MARKS = {"add": "+", "change": "~", "remove": "-", "drift": "!", "keep": " "}
STYLES = {"add": "green", "change": "yellow", "remove": "red", "drift": "bold magenta",
          "keep": "dim"}


def _print_plan(found: dict[str, Any]) -> None:
    for item in found["items"]:
        action = item["action"]
        console.print(f"[{STYLES[action]}]{MARKS[action]} {item['kind']} {item['name']}"
                      f"[/]: {item['reason']}", highlight=False)
        if action in ("change", "drift", "remove"):
            for line in item["diff"][2:]:  # the ---/+++ header says nothing new
                console.print(f"    {line}", markup=False, highlight=False)
    counts = {a: sum(i["action"] == a for i in found["items"])
              for a in ("add", "change", "remove", "drift")}
    console.print(f"{counts['add']} to add, {counts['change']} to change, "
                  f"{counts['remove']} to remove, {counts['drift']} drifted", highlight=False)


@app.command("apply")
def apply_command(
    file: Path = typer.Argument(None, help="The workspace file (default: --config, "
                                "segmently.yaml)."),
    project: str = PROJECT,
    prune: bool = typer.Option(False, "--prune", help="Also delete what the file no longer"
                               " declares (only what an earlier apply wrote)."),
    force: bool = typer.Option(False, "--force", help="Also overwrite drift: definitions "
                               "changed in the UI or over the API since the last apply."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 4 if applying "
                               "would change anything or the database drifted (for CI)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan, write nothing."),
) -> None:
    """Write the workspace file's vocabulary and segments to the database as new versions,
    printing what changes (+ add, ~ change, - remove, ! drift). A definition edited in the
    UI since the last apply is drift: reported, left alone unless --force. Exit 4 when
    drift is left (or, with --check, when anything differs).

    Example: segmently apply segmently.yaml --check
    """
    if file is not None:
        Ctx.config = str(file)
    text, source = workspace_text()
    found = run_segments("apply", workspace=text, source=source, project=project,
                         prune=prune, force=force, dry_run=check or dry_run)
    if Ctx.json:
        show(found)
    else:
        _print_plan(found)
        if found["applied"]:
            console.print("applied", highlight=False)
        elif check or dry_run:
            console.print("nothing written (--check)" if check else "nothing written "
                          "(--dry-run)", highlight=False)
    drift = any(i["action"] == "drift" for i in found["items"])
    if (check and not found["in_sync"]) or (drift and not force):
        raise typer.Exit(EXIT_DRIFT)


@app.command("export")
def export_command(
    project: str = PROJECT,
    out: Path = typer.Option(None, "--out", help="Write to this file instead of stdout."),
) -> None:
    """Print the stored definitions (vocabulary and segments) as a workspace file: apply it
    and nothing changes.

    Example: segmently export --out segmently.yaml
    """
    text = run_segments("export", project=project)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        console.print(f"written to {out}", highlight=False)


@segments_app.command("history")
def segments_history(name: str, project: str = PROJECT) -> None:
    """Every version of a segment, oldest first, who wrote it and what changed.

    Example: segmently segments history dormant
    """
    found = run_segments("segments_history", name=name, project=project)
    if Ctx.json:
        typer.echo(json.dumps(found, indent=2))
        return
    for v in found:
        what = "deleted" if v["deleted"] else (v["description"] or "")
        console.print(f"[bold]version {v['version']}[/] {v['created_at'][:19]} "
                      f"by {v['source'] or 'unknown'}  {what}", highlight=False)
        for line in v["diff"][2:]:
            console.print(f"    {line}", markup=False, highlight=False)


@segments_app.command("revert")
def segments_revert(name: str, version: int, project: str = PROJECT) -> None:
    """Store an earlier version again, as the next version (the history keeps both).

    Example: segmently segments revert dormant 1
    """
    show(run_segments("segments_revert", name=name, version=version, project=project))


@segments_app.command("rename")
def segments_rename(name: str, new_name: str, project: str = PROJECT) -> None:
    """Move a segment to a new name (the old name is deleted; its history stays).

    Example: segmently segments rename dormant sleeping
    """
    show(run_segments("segments_rename", name=name, new_name=new_name, project=project))


@segments_app.command("delete")
def segments_delete(name: str, project: str = PROJECT) -> None:
    """Delete a segment (a tombstone version; its history and snapshots stay).

    Example: segmently segments delete dormant
    """
    show(run_segments("segments_delete", name=name, project=project))
