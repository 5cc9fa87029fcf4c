"""`segmently demo`: generate a synthetic product's usage (`demo/`), write its workspace
file and apply it to the project (`core.Project.apply`), then show the built-in segments
evaluated on it (`segments/examples.py`)."""

from __future__ import annotations

import json
from datetime import datetime

import typer

from segmently.cli.app import app
from segmently.cli.context import Ctx, open_store
from segmently.cli.options import project_or_global
from segmently.cli.output import console, show
from segmently.store.urls import StoreLockedError


@app.command()
def demo(
    users: int = typer.Option(2000, "--users", help="How many users (accounts follow)."),
    days: int = typer.Option(90, "--days", help="Days of history, ending at --end."),
    seed: int = typer.Option(42, "--seed", help="Same seed and options, same rows."),
    project: str = typer.Option(None, "--project", callback=project_or_global,
                                show_default="demo", help="Project to fill (default: "
                                "--project before the command, else demo; created when "
                                "absent; must hold no events)."),
    end: datetime = typer.Option(None, "--end", formats=["%Y-%m-%d"],
                                 help="Exclusive end of the window, UTC (default: today"
                                 " 00:00 UTC; pass it for identical rows on any day)."),
) -> None:
    """Generate a realistic B2B SaaS product's usage: accounts, personas, onboarding,
    features, NPS, trials and payments (see docs/events.md); write the example workspace
    (--config, else segmently.yaml next to the database), apply it to the project
    (`segmently apply`) and show the built-in segment library evaluated on it.

    Example: segmently demo --users 500 --end 2026-03-01 --db demo.duckdb
    """
    from segmently.core import Project
    from segmently.demo import DemoError, DemoOptions, run_demo
    from segmently.demo.report import segment_rows, summary_tables, why_text
    from segmently.demo.workspace import workspace_path, write_workspace
    from segmently.segments.examples import segment_examples
    from segmently.segments.workspace import DEFAULT_FILE, load_workspace

    project = project or "demo"
    try:
        options = DemoOptions(users=users, days=days, seed=seed, end=end)
        store = open_store()
    except DemoError as exc:
        raise typer.BadParameter(str(exc)) from None
    except StoreLockedError:
        raise typer.BadParameter(f"{Ctx.db} is held by another process (`segmently serve`?)"
                                 "; stop it first: the demo writes in bulk") from None
    with store:
        try:
            report = run_demo(store, options, project)
        except DemoError as exc:
            raise typer.BadParameter(str(exc)) from None
        given = Ctx.config if Ctx.config != DEFAULT_FILE else None  # global --config
        workspace = write_workspace(workspace_path(Ctx.db, given), project)
        declared = load_workspace(workspace)
        applied = Project(store, report.project_id).apply(declared)  # drift stays
        examples = segment_examples(store, report.project_id, declared.rules(), report.end)
    tables = summary_tables(report)
    if Ctx.json:
        typer.echo(json.dumps({**dict(tables), "workspace": str(workspace),
                               "segments": [e.to_dict() for e in examples]},
                              default=str, indent=2))
        return
    for title, rows in tables:
        show(rows, title=title)
    console.print(f"workspace written to {workspace} and applied "
                  f"({len(applied.pending)} definitions written, {len(applied.drift)} "
                  "drifted left alone)")
    show(segment_rows(examples), title=f"built-in segments as of {report.end:%Y-%m-%d}")
    for example in examples:
        console.print(why_text(example), markup=False, highlight=False)
