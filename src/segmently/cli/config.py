"""`segmently config`: every setting, its value and where it came from (segmently/settings.py)."""

from __future__ import annotations

import typer

from segmently import settings
from segmently.cli.app import app
from segmently.cli.context import Ctx
from segmently.cli.output import show

GLOBAL_OPTIONS = ("db", "config")  # the root options that are settings (same names)


def loaded(ctx: typer.Context) -> settings.Settings:
    """The settings this command line runs with: `Ctx.settings` once the root callback
    loads them, else loaded here, with the global options given on the command line
    (before the command or after it) as overrides, at the values the CLI uses (`Ctx`); an
    option typer filled from its variable counts as the environment's."""
    current = getattr(Ctx, "settings", None)
    if isinstance(current, settings.Settings):
        return current
    chain = []
    level: typer.Context | None = ctx
    while level is not None:
        chain.append(level)
        level = level.parent  # type: ignore[assignment]
    given = {name: getattr(Ctx, name) for name in GLOBAL_OPTIONS
             if any(getattr(c.get_parameter_source(name), "name", None) == "COMMANDLINE"
                    for c in chain)}
    return settings.load(given)


@app.command("config")
def config(ctx: typer.Context) -> None:
    """Every setting: its environment variable, value and source (default, environment,
    or override: a command-line option); --json adds its default and meaning (README,
    "Settings").

    Example: segmently config --db shop.duckdb
    """
    rows = settings.describe(loaded(ctx))
    if not Ctx.json:
        rows = [{key: row[key] for key in ("env", "value", "source")} for row in rows]
    show(rows, title="settings")
