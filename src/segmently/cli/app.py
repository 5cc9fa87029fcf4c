"""The root `segmently` app, its global options, and `entry` (the one CLI error handler)."""

from __future__ import annotations

import json
import sys

import typer

from segmently.cli.context import Ctx
from segmently.errors import SegmentlyError
from segmently.store import normalize_url

app = typer.Typer(help="Segmently: product usage segmentation.", no_args_is_help=True)


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
