"""`segmently stats`: row counts per project and table (`commands.stats`)."""

from __future__ import annotations

from segmently.cli.app import app
from segmently.cli.context import run
from segmently.cli.output import show


@app.command()
def stats() -> None:
    """Row counts per project and table.

    Example: segmently stats --db shop.duckdb
    """
    show(run("stats"), title="stored rows")
