"""The root `segmently` app, its global options, and `entry` (the one CLI error handler).

`entry` is the console script; the root callback loads the settings once into
`Ctx.settings` (`cli/context.py`), which every command's store, server and import use."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from segmently import settings
from segmently.cli.context import Ctx
from segmently.cli.options import CONFIG_HELP, DB_HELP, JSON_HELP, PROJECT_HELP, global_params
from segmently.errors import SegmentlyError
from segmently.store.urls import normalize_url


def _add_global_options(command: Any) -> None:
    """Give a command (and, in a group, each of its commands) the global options, except
    those it declares itself (`--project` of the commands that act on one project)."""
    own = {name for p in command.params for name in (*p.opts, *p.secondary_opts)}
    command.params.extend(p for p in global_params() if not own & set(p.opts))
    for sub in getattr(command, "commands", {}).values():
        _add_global_options(sub)


class GlobalOptionsGroup(TyperGroup):
    """The root group: `--db`, `--json`, `--config` and `--project` are accepted after the
    command as well as before it (`segmently segments list --json`); given after, they win.
    Every command, also one a new module registers, gets them here."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for command in self.commands.values():
            _add_global_options(command)


app = typer.Typer(help="Segmently: product usage segmentation. The global options (--db, "
                  "--json, --config, --project) go before the command or after it; given "
                  "after it, they win.", no_args_is_help=True,
                  cls=GlobalOptionsGroup,
                  epilog="Example: segmently --db shop.duckdb segments list --json")


@app.callback()
def main(
    db: str = typer.Option(None, "--db", help=DB_HELP),
    json_output: bool = typer.Option(False, "--json", help=JSON_HELP),
    config: str = typer.Option(None, "--config", help=CONFIG_HELP),
    project: str = typer.Option(None, "--project", help=PROJECT_HELP),
) -> None:
    """The settings are loaded once here (segmently/settings.py: option > SEGMENTLY_*
    variable > default) and every command reads them from `Ctx.settings`."""
    Ctx.settings = settings.load({"db": normalize_url(db) if db else None, "config": config})
    Ctx.db = normalize_url(Ctx.settings.db)
    Ctx.json = json_output
    Ctx.config = Ctx.settings.config
    Ctx.project = project


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
