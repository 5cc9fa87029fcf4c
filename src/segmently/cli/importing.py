"""`segmently import FILE`: events from a file, into this process's store or the server's.

The file is converted by `collect/importer.py`, which hands each batch to its sink: the
store's (`Store.append_rows`), or `RemoteSink` (framed Arrow IPC to `serve`'s
`/internal/v1/append`) while `serve` holds the DuckDB file."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from segmently import control
from segmently.cli.app import app
from segmently.cli.context import Ctx, serving_control
from segmently.cli.options import project_or_global
from segmently.cli.output import console, show
from segmently.store.urls import StoreLockedError

if TYPE_CHECKING:
    from segmently.store import AppendResult, RowBatch


@dataclass
class RemoteSink:
    """The importer's sink when `segmently serve` holds the DuckDB file: converted rows
    go to it, at most `max_rows` events a request (the server reads a request whole)."""

    ctl: control.ServerControl
    project_id: str
    max_rows: int = 250_000

    def __call__(self, rows: RowBatch) -> AppendResult:
        from segmently.collect import arrow_ipc
        from segmently.store import AppendResult

        result = control.remote_append(self.ctl, self.project_id, arrow_ipc.encode(rows))
        return AppendResult(result["received"], result["stored"])


@contextlib.contextmanager
def _import_target(project: str | None) -> Iterator[tuple[str, Any]]:
    """(project id, sink): this process's store, or the server holding the DuckDB file.
    The store checks a file's ids against all of the project's history, not only the
    last days' (the default for live traffic): a file re-imported a month later must
    still store nothing twice."""
    from segmently.collect import importer
    from segmently.core.project import choose_project, find_project_id

    try:
        from segmently.store import Store

        store = Store(Ctx.db, dedup_window=None, settings=Ctx.settings)
    except StoreLockedError:
        ctl = serving_control()
        listed = control.remote_call(ctl, "projects_list", {})
        pid = choose_project([(p["project_id"], p["name"]) for p in listed], project)
        yield pid, RemoteSink(ctl, pid)
        return
    with store:
        pid = find_project_id(store, project)
        yield pid, importer.store_sink(store, pid, Ctx.settings.import_memory)


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="A .jsonl/.ndjson/.json, .csv, .tsv or .parquet "
                                "file, optionally .gz or .zst compressed (docs/import.md)."),
    project: str = typer.Option(None, "--project", callback=project_or_global,
                                help="Project name or id (default: --project before the "
                                "command, else the only project)."),
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
    re-import stores nothing twice, bad rows are listed with their line numbers.

    Example: segmently import events.csv --map user_id=customer,timestamp=ts
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from segmently.collect.formats import parse_constants, parse_mapping
    from segmently.collect.importer import import_file as run_import
    from segmently.collect.importer import import_options
    from segmently.errors import SegmentlyError

    bar = Progress(TextColumn("{task.description}"), BarColumn(),
                   TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>10,.0f} rows/s"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                   disable=Ctx.json)
    try:
        options = import_options(format=fmt, source=source, mapping=parse_mapping(mapping),
                                 constants=parse_constants(constants), event=event,
                                 delimiter=delimiter, timestamp_format=timestamp_format,
                                 strict=strict, max_bad_reported=show_bad,
                                 settings=Ctx.settings)
        with _import_target(project) as (project_id, sink), bar:
            task = bar.add_task(file.name, total=None, rows=0, rate=0.0)

            def progress(rows: int, position: int, total: int) -> None:
                elapsed = bar.tasks[0].elapsed or 1e-9
                bar.update(task, completed=position, total=total, rows=rows, rate=rows / elapsed)

            report = run_import(file, project_id, sink, options, progress)
    except (SegmentlyError, RuntimeError) as exc:  # RuntimeError: the server refused a batch
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
