"""`segmently serve`: the HTTP server (ingestion, segment API, UI) over the store.

It warns at start when the workspace file differs from the stored definitions (it serves
the database, never the file), writes the control file (`control.py`) through which other
CLI commands reach it, and runs `web/app.py`'s `create_app` under uvicorn
(`web/serving.py`) with the settings the CLI loaded."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

import typer

from segmently import control
from segmently.cli.app import app
from segmently.cli.context import Ctx, open_store, workspace_project
from segmently.errors import SegmentlyError

if TYPE_CHECKING:
    from segmently.store import Store


def warn_if_unapplied(store: Store) -> None:
    """The server serves the stored definitions, never the workspace file: when the file
    (--config) differs from what is stored, say so once at start, with the command that
    applies it (nothing is written here: a UI edit must not be overwritten silently)."""
    from pathlib import Path

    from segmently.core import Project
    from segmently.segments.workspace import load_workspace

    path = Path(Ctx.config)
    if not path.is_file():
        return
    try:
        found = Project.open(store, Ctx.project or workspace_project()) \
            .plan(load_workspace(path))
    except SegmentlyError as exc:
        typer.echo(f"warning: {path} is not applied ({exc.message}); serving the stored "
                   "definitions", err=True)
        return
    if not found.in_sync:
        typer.echo(f"warning: {path} differs from the database ({len(found.pending)} to "
                   f"write, {len(found.drift)} drifted); serving the stored definitions: "
                   f"`segmently apply {path}` applies it", err=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Run the HTTP server: ingestion APIs, the segment API and the UI, over the stored
    definitions (a workspace file that differs from them is reported at start: `apply` it).

    Example: segmently serve --port 8000 --db shop.duckdb
    """
    import uvicorn

    from segmently.collect.limits import Limits
    from segmently.web.app import create_app
    from segmently.web.serving import uvicorn_options

    limits = Limits.from_settings(Ctx.settings)
    store = open_store()
    warn_if_unapplied(store)
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
        uvicorn.run(create_app(store, limits, control_token=ctl.token if ctl else None,
                               settings=Ctx.settings),
                    host=host, port=port, **uvicorn_options(limits))
    finally:
        control.remove_control(Ctx.db, ctl)
        store.close()

