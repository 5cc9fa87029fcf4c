"""`segmently serve`: the HTTP server (ingestion, segment API, UI) over the store."""

from __future__ import annotations

import signal
import sys

import typer

from segmently import control
from segmently.cli.app import app
from segmently.cli.context import Ctx, open_store


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
) -> None:
    """Run the HTTP server: ingestion APIs, the segment API and the UI.

    Example: segmently serve --port 8000 --db shop.duckdb
    """
    import uvicorn

    from segmently.collect.limits import Limits
    from segmently.web.app import create_app
    from segmently.web.serving import uvicorn_options

    limits = Limits.from_settings(Ctx.settings)
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
        uvicorn.run(create_app(store, limits, control_token=ctl.token if ctl else None,
                               settings=Ctx.settings),
                    host=host, port=port, **uvicorn_options(limits))
    finally:
        control.remove_control(Ctx.db, ctl)
        store.close()

