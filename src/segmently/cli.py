"""The command line. It composes core functions; none of the logic lives here."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from segmently import control  # `commands` on first use: it imports the query layers
from segmently.errors import SegmentlyError
from segmently.store import Store, StoreLockedError, normalize_url

app = typer.Typer(help="Segmently: product usage segmentation.", no_args_is_help=True)
projects_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")
console = Console()


class Ctx:
    db: str = normalize_url(None)
    json: bool = False
    config: str = "segmently.yaml"


@app.callback()
def main(
    db: str = typer.Option(None, "--db", envvar="SEGMENTLY_DB",
                           help="Database URL: duckdb:///file.duckdb, postgres://user@host/db,"
                                " or a path. Default ./segmently.duckdb."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    config: str = typer.Option("segmently.yaml", "--config", envvar="SEGMENTLY_CONFIG",
                               help="The workspace file (features, scores, segments)."),
) -> None:
    Ctx.db = normalize_url(db)
    Ctx.json = json_output
    Ctx.config = config


def open_store() -> Store:
    return Store(Ctx.db)


def serving_control() -> control.ServerControl:
    """The server that holds the locked DuckDB file, or a clear error."""
    try:
        ctl = control.read_control(Ctx.db)
    except control.ControlFileError as exc:
        raise typer.BadParameter(str(exc)) from None
    if ctl is None:
        raise typer.BadParameter(f"{Ctx.db} is locked by another process and no running "
                                 "`segmently serve` owns it")
    return ctl


def run(command: str, **args: Any) -> Any:
    """Run a core command here, or in the server that holds the DuckDB file."""
    from segmently import commands

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


@projects_app.command("password")
def projects_password(
    name: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="The new UI password (asked when not given)."),
) -> None:
    """Set the password that signs in to the project's web UI (with the project name)."""
    try:
        show(run("projects_password", name=name, password=password))
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))


@projects_app.command("list")
def projects_list() -> None:
    show(run("projects_list"), title="projects")


@app.command()
def stats() -> None:
    """Row counts per project and table."""
    show(run("stats"), title="stored rows")


IMPORT_MEMORY = "SEGMENTLY_IMPORT_MEMORY"  # DuckDB's memory limit while importing


@contextlib.contextmanager
def _import_target(project: str | None) -> Iterator[tuple[str, Any]]:
    """(project id, sink): this process's store, or the server holding the DuckDB file.
    The store checks a file's ids against all of the project's history, not only the
    last days' (the default for live traffic): a file re-imported a month later must
    still store nothing twice."""
    from segmently.collect import importer
    from segmently.store.projects import list_projects

    try:
        store = Store(Ctx.db, dedup_window=None)
    except StoreLockedError:
        ctl = serving_control()
        pid = importer.pick_project(control.remote_call(ctl, "projects_list", {}), project)
        yield pid, importer.remote_sink(ctl, pid)
        return
    with store:
        found = [{"project_id": p.project_id, "name": p.name} for p in list_projects(store)]
        pid = importer.pick_project(found, project)
        yield pid, importer.store_sink(store, pid, os.environ.get(IMPORT_MEMORY, "512MB"))


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="A .jsonl/.ndjson/.json, .csv, .tsv or .parquet "
                                "file, optionally .gz or .zst compressed (docs/import.md)."),
    project: str = typer.Option(None, "--project", help="Project name or id (default: the"
                                " only project)."),
    source: str = typer.Option(None, "--from", help="A vendor's export: mixpanel, amplitude,"
                               " posthog or segment (each mapped field by field)."),
    fmt: str = typer.Option(None, "--format", help="jsonl, csv, tsv or parquet (default: from"
                            " the extension)."),
    mapping: str = typer.Option(None, "--map", help="Columns to fields, e.g. user_id=customer,"
                                "event=action,timestamp=ts; other columns become properties."),
    event: str = typer.Option(None, "--event", help="Every row is this event."),
    constants: list[str] = typer.Option(None, "--set", help="column=value added to every row"
                                        " (repeatable; replaces the file's column)."),
    delimiter: str = typer.Option(None, "--delimiter", help="CSV delimiter: one character or"
                                  " 'tab' (.tsv files: tab)."),
    timestamp_format: str = typer.Option(None, "--timestamp-format", help="strptime format"
                                         " of the timestamps, e.g. '%d/%m/%Y %H:%M'."),
    strict: bool = typer.Option(False, "--strict", help="Store nothing if any row is bad."),
    show_bad: int = typer.Option(20, "--show-bad", help="How many bad rows to list."),
) -> None:
    """Import events from a file, streaming; every row is kept (identical rows too), a
    re-import stores nothing twice, bad rows are listed with their line numbers."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from segmently.collect.errors import InputError
    from segmently.collect.formats import parse_constants, parse_mapping
    from segmently.collect.importer import import_file as run_import
    from segmently.collect.importer import import_options

    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                   disable=Ctx.json)
    try:
        options = import_options(format=fmt, source=source, mapping=parse_mapping(mapping),
                                 constants=parse_constants(constants), event=event,
                                 delimiter=delimiter, timestamp_format=timestamp_format,
                                 strict=strict, max_bad_reported=show_bad)
        with _import_target(project) as (project_id, sink), bar:
            task = bar.add_task(file.name, total=None, rows=0, rate=0.0)

            def progress(rows: int, position: int, total: int) -> None:
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, completed=position, total=total, rows=rows, rate=rows / elapsed)

            report = run_import(file, project_id, sink, options, progress)
    except (InputError, RuntimeError) as exc:  # RuntimeError: the server refused a batch
        from rich.markup import escape  # the message may quote the file: [ ] are text

        console.print(f"[red]error:[/red] {escape(str(getattr(exc, 'message', exc)))}",
                      soft_wrap=True, highlight=False)
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
    features, NPS, trials and payments (see docs/events.md); write the example workspace
    (--config, else segmently.yaml next to the database) and show the built-in segment
    library evaluated on it."""
    from segmently.demo import DemoError, DemoOptions, run_demo
    from segmently.demo.report import segment_rows, summary_tables, why_text
    from segmently.demo.workspace import workspace_path, write_workspace
    from segmently.segments.examples import segment_examples
    from segmently.segments.workspace import DEFAULT_FILE, load_workspace

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
        examples = segment_examples(store, report.project_id,
                                    load_workspace(workspace).rules(), report.end)
    tables = summary_tables(report)
    if Ctx.json:
        typer.echo(json.dumps({**dict(tables), "workspace": str(workspace),
                               "segments": [e.to_dict() for e in examples]},
                              default=str, indent=2))
        return
    for title, rows in tables:
        show(rows, title=title)
    console.print(f"workspace written to {workspace}")
    show(segment_rows(examples), title=f"built-in segments as of {report.end:%Y-%m-%d}")
    for example in examples:
        console.print(why_text(example), markup=False, highlight=False)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Run the HTTP server: ingestion APIs, the segment API and the UI."""
    import uvicorn

    from segmently.collect.limits import Limits
    from segmently.web.app import create_app
    from segmently.web.serving import uvicorn_options

    limits = Limits.from_env()
    store = open_store()
    try:
        local = host if host != "0.0.0.0" else "127.0.0.1"
        ctl = control.write_control(Ctx.db, f"http://{local}:{port}")
    except control.ControlFileError as exc:
        store.close()
        raise typer.BadParameter(str(exc)) from None
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again: exit through
    # the `finally` below (control file removed, store closed) rather than die there.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        # request heads and bodies have deadlines: web/serving.py, web/guard.py
        uvicorn.run(create_app(store, limits, control_token=ctl.token if ctl else None),
                    host=host, port=port, **uvicorn_options(limits))
    finally:
        control.remove_control(Ctx.db, ctl)
        store.close()


# -- segments ------------------------------------------------------------------------------
segments_app = typer.Typer(help="Segments of the workspace file: evaluate, explain, refresh.",
                           no_args_is_help=True)
app.add_typer(segments_app, name="segments")
PROJECT = typer.Option(None, "--project", help="Project name or id (default: the workspace's"
                       " `project`, else the only project).")
AS_OF = typer.Option(None, "--as-of", help="What had happened: events before this instant "
                     "count. ISO 8601 (default: now; no offset means UTC).")
KNOWN_AT = typer.Option(None, "--known-at", help="What had been received: events that "
                        "arrived by this instant count (default: now; the --as-of value "
                        "reproduces the answer given then). docs/rules.md, Time.")


def fail(message: str) -> None:
    """Print an error (JSON with --json) and exit 1."""
    if Ctx.json:
        typer.echo(json.dumps({"error": message}))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def run_segments(command: str, **args: Any) -> Any:
    """Run a segment command with the workspace file's text (parsed where it runs)."""
    path = Path(Ctx.config)
    if not path.is_file():
        fail(f"{path}: no such workspace file (pass --config, or run `segmently demo`)")
    try:
        return run(command, workspace=path.read_text(), source=str(path), **args)
    except (ValueError, LookupError, RuntimeError) as exc:
        fail(str(exc))


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the workspace file (for editor autocompletion)."""
    from segmently.segments.workspace import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@segments_app.command("list")
def segments_list(project: str = PROJECT) -> None:
    """Each segment with its size and freshness from its latest snapshot."""
    show(run_segments("segments_list", project=project), title="segments")


@segments_app.command("show")
def segments_show(name: str, project: str = PROJECT) -> None:
    """A segment's definition and its size over time (snapshots)."""
    found = run_segments("segments_show", project=project, name=name)
    if Ctx.json:
        show(found)
        return
    console.print(f"[bold]{found['name']}[/bold] (version {found['version']})  "
                  f"{found['description']}")
    console.print_json(json.dumps(found["rule"]))
    show(found["snapshots"], title="size over time")


@segments_app.command("eval")
def segments_eval(as_of: str = AS_OF, known_at: str = KNOWN_AT,
                  project: str = PROJECT) -> None:
    """Evaluate every segment at one instant (one pass) and print the sizes."""
    found = run_segments("segments_eval", project=project, as_of=as_of, known_at=known_at)
    if Ctx.json:
        show(found)
        return
    show(found["segments"], title=f"segment sizes as of {found['as_of']}, "
                                  f"known at {found['known_at']}")


@segments_app.command("members")
def segments_members(
    name: str,
    as_of: str = AS_OF,
    known_at: str = KNOWN_AT,
    project: str = PROJECT,
    fmt: str = typer.Option(None, "--format", help="csv, json or parquet (default: a table,"
                            " or JSON with --json)."),
    out: Path = typer.Option(None, "--out", help="Write to this file instead of stdout"
                             " (needed for parquet)."),
) -> None:
    """The members of one segment at an instant."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in (None, "csv", "json", "parquet"):
        fail(f"--format: {fmt!r} is not one of csv, json, parquet")
    if fmt == "parquet" and out is None:
        fail("--format parquet needs --out FILE")
    found = run_segments("segments_members", project=project, name=name, as_of=as_of,
                         known_at=known_at)
    table = pa.table({"user_id": pa.array(found["user_ids"], pa.string())})
    if fmt == "parquet":
        pq.write_table(table, out)
        return
    if fmt is None and not Ctx.json and out is None:
        show([{"user_id": u} for u in found["user_ids"]],
             title=f"{name}: {found['size']} members as of {found['as_of']}")
        return
    if fmt == "csv":
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        text = sink.getvalue().to_pybytes().decode()
    else:
        text = json.dumps(found, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)


@segments_app.command("explain")
def segments_explain(name: str, user_id: str, as_of: str = AS_OF, known_at: str = KNOWN_AT,
                     project: str = PROJECT) -> None:
    """Why a user is in or out of a segment: each rule node, true or false, and what was
    observed."""
    found = run_segments("segments_explain", project=project, name=name, user_id=user_id,
                         as_of=as_of, known_at=known_at)
    if Ctx.json:
        show(found)
        return
    verdict = "in" if found["member"] else "not in"
    typer.echo(f"{user_id} is {verdict} {name} as of {found['as_of']}\n{found['text']}")


@segments_app.command("refresh")
def segments_refresh(
    as_of: str = AS_OF,
    known_at: str = KNOWN_AT,
    project: str = PROJECT,
    backfill_from: str = typer.Option(None, "--backfill-from", help="Also store snapshots at"
                                      " every --every from this instant up to --as-of."),
    every: str = typer.Option("1d", "--every", help="Backfill step: 30m, 12h, 1d, 1w."),
    profiles: bool = typer.Option(True, "--profiles/--no-profiles", help="Also store every "
                                  "user's metrics at the latest instant, which the UI's "
                                  "member tables, breakdowns and insights read."),
) -> None:
    """Evaluate every segment once and store snapshots and enter/exit transitions."""
    found = run_segments("segments_refresh", project=project, as_of=as_of,
                         backfill_from=backfill_from, every=every, profiles=profiles,
                         known_at=known_at)
    show(found, title="refreshed")


@app.command("user")
def user(user_id: str, as_of: str = AS_OF, known_at: str = KNOWN_AT,
         project: str = PROJECT) -> None:
    """A user's profile (metrics, features, milestones) and the segments they are in."""
    found = run_segments("user_profile", project=project, user_id=user_id, as_of=as_of,
                         known_at=known_at)
    if Ctx.json:
        show(found)
        return
    show([{"metric": k, "value": v} for k, v in found["metrics"].items()],
         title=f"{user_id} as of {found['as_of']}")
    for name in ("features", "milestones"):
        if found.get(name):
            show(found[name], title=name)
    if not found["segments"]:
        typer.echo("in no segment")
    for seg in found["segments"]:
        typer.echo(f"\nin {seg['segment']}:\n{seg['text']}")



def entry() -> None:
    """`segmently`: the app under the one CLI handler of the error root (errors.py). An
    error a user caused that no command turned into a message itself is still one line
    (`error: ...`, or `{"error": ...}` with --json) and its documented exit code, never a
    traceback."""
    try:
        app(standalone_mode=True)
    except SegmentlyError as exc:
        if Ctx.json:
            typer.echo(json.dumps({"error": exc.message, "code": exc.code}))
        else:
            typer.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    entry()
