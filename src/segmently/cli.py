"""The command line. It composes core functions; none of the logic lives here."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from segmently import commands, control
from segmently.store import Store, StoreLockedError, normalize_url

app = typer.Typer(help="Segmently: product usage segmentation.", no_args_is_help=True)
projects_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")
console = Console()


class Ctx:
    db: str = normalize_url(None)
    json: bool = False


@app.callback()
def main(
    db: str = typer.Option(None, "--db", envvar="SEGMENTLY_DB",
                           help="Database URL: duckdb:///file.duckdb, postgres://user@host/db,"
                                " or a path. Default ./segmently.duckdb."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    Ctx.db = normalize_url(db)
    Ctx.json = json_output


def open_store() -> Store:
    return Store(Ctx.db)


def serving_control() -> control.ServerControl:
    """The server that holds the locked DuckDB file, or a clear error."""
    ctl = control.read_control(Ctx.db)
    if ctl is None:
        raise typer.BadParameter(f"{Ctx.db} is locked by another process and no running "
                                 "`segmently serve` owns it")
    return ctl


def run(command: str, **args: Any) -> Any:
    """Run a core command here, or in the server that holds the DuckDB file."""
    try:
        store = open_store()
    except StoreLockedError:
        return control.remote_call(serving_control(), command, args)
    with store:
        return commands.REGISTRY[command](store, **args)


def show(rows: Any, title: str | None = None) -> None:
    if Ctx.json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    if isinstance(rows, dict):
        rows = [rows]
    if not rows:
        console.print("(nothing)")
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(str(key))
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


@projects_app.command("create")
def projects_create(name: str) -> None:
    """Create a project; prints its write key (public) and secret key (shown only once)."""
    show(run("projects_create", name=name), title="new project: keep the secret key safe")


@projects_app.command("list")
def projects_list() -> None:
    show(run("projects_list"), title="projects")


@app.command()
def stats() -> None:
    """Row counts per project and table."""
    show(run("stats"), title="stored rows")


@contextlib.contextmanager
def _import_target(project: str | None) -> Iterator[tuple[str, Any]]:
    """(project id, sink): this process's store, or the server holding the DuckDB file."""
    from segmently.collect import importer

    try:
        store = open_store()
    except StoreLockedError:
        ctl = serving_control()
        pid = importer.pick_project(control.remote_call(ctl, "projects_list", {}), project)
        yield pid, importer.remote_sink(ctl, pid)
        return
    with store:
        pid = importer.pick_project(commands.projects_list(store), project)
        yield pid, importer.store_sink(store, pid)


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="A .jsonl/.ndjson, .csv or .parquet file."),
    project: str = typer.Option(None, "--project", help="Project name or id (default: the"
                                " only project)."),
    fmt: str = typer.Option(None, "--format", help="jsonl, csv, parquet, segment or posthog"
                            " (default: from the extension)."),
    mapping: str = typer.Option(None, "--map", help="Columns to fields, e.g. user_id=customer,"
                                "event=action,timestamp=ts; other columns become properties."),
    strict: bool = typer.Option(False, "--strict", help="Store nothing if any row is bad."),
    show_bad: int = typer.Option(20, "--show-bad", help="How many bad rows to list."),
) -> None:
    """Import events from a file, streaming; bad rows are listed with their line numbers."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from segmently.collect.errors import InputError
    from segmently.collect.formats import parse_mapping
    from segmently.collect.importer import ImportOptions
    from segmently.collect.importer import import_file as run_import

    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                   disable=Ctx.json)
    try:
        options = ImportOptions(format=fmt, mapping=parse_mapping(mapping), strict=strict,
                                max_bad_reported=show_bad)
        with _import_target(project) as (project_id, sink), bar:
            task = bar.add_task(file.name, total=None, rows=0, rate=0.0)

            def progress(rows: int, position: int, total: int) -> None:
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, completed=position, total=total, rows=rows, rate=rows / elapsed)

            report = run_import(file, project_id, sink, options, progress)
    except (InputError, RuntimeError) as exc:  # RuntimeError: the server refused a batch
        console.print(f"[red]error:[/red] {getattr(exc, 'message', exc)}")
        raise typer.Exit(1) from None
    result = report.as_dict()
    if Ctx.json:
        show(result)
        return
    show({k: v for k, v in result.items() if k != "bad"}, title="import")
    if report.bad:
        show([b.as_dict() for b in report.bad], title=f"bad rows (first {len(report.bad)})")


@app.command()
def demo(
    users: int = typer.Option(2000, "--users", help="How many users (accounts follow)."),
    days: int = typer.Option(90, "--days", help="Days of history, ending at --end."),
    seed: int = typer.Option(42, "--seed", help="Same seed and options, same rows."),
    project: str = typer.Option("demo", "--project", help="Project to fill (created when"
                                " absent; must hold no events)."),
    end: datetime = typer.Option(None, "--end", formats=["%Y-%m-%d"],
                                 help="Exclusive end of the window, UTC (default: today"
                                 " 00:00 UTC; pass it for identical rows on any day)."),
) -> None:
    """Generate a realistic B2B SaaS product's usage: accounts, personas, onboarding,
    features, NPS, trials and payments (see docs/events.md)."""
    from segmently.demo import DemoError, DemoOptions, run_demo
    from segmently.demo.report import summary_tables

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
    tables = summary_tables(report)
    if Ctx.json:
        typer.echo(json.dumps(dict(tables), default=str, indent=2))
        return
    for title, rows in tables:
        show(rows, title=title)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Run the HTTP server: ingestion APIs, the segment API and the UI."""
    import uvicorn

    from segmently.web.app import create_app

    store = open_store()
    ctl = control.write_control(Ctx.db, f"http://{host if host != '0.0.0.0' else '127.0.0.1'}:{port}")
    try:
        uvicorn.run(create_app(store, control_token=ctl.token if ctl else None),
                    host=host, port=port, log_level="warning")
    finally:
        control.remove_control(Ctx.db, ctl)
        store.close()


if __name__ == "__main__":
    app()
