"""`segmently config`: every setting, its value and where it came from (segmently/settings.py)."""

from __future__ import annotations

from segmently import settings
from segmently.cli.app import app
from segmently.cli.context import Ctx
from segmently.cli.output import show


@app.command("config")
def config() -> None:
    """Every setting: its environment variable, value and source (default, environment,
    or override: a command-line option); --json adds its default and meaning (README,
    "Settings").

    Example: segmently config --db shop.duckdb
    """
    rows = settings.describe(Ctx.settings)  # loaded once, by the root callback
    if not Ctx.json:
        rows = [{key: row[key] for key in ("env", "value", "source")} for row in rows]
    show(rows, title="settings")
