"""Options: the global ones (`--db`, `--json`, `--config`, `--project`), accepted before the
command and after it, and those several commands share."""

from __future__ import annotations

from typing import Any

import typer

from segmently.cli.context import Ctx
from segmently.store.urls import normalize_url

GLOBAL_PANEL = "Global options (also accepted before the command)"
DB_HELP = ("Database URL: duckdb:///file.duckdb, postgres://user@host/db, or a path. "
           "Default: SEGMENTLY_DB, else ./segmently.duckdb.")
JSON_HELP = "Print JSON for scripts."
CONFIG_HELP = ("The workspace file (features, scores, segments) `apply` reads. Default: "
               "SEGMENTLY_CONFIG, else segmently.yaml.")
PROJECT_HELP = ("Project name or id, for the commands that act on one (default: the "
                "workspace's `project`, else the only project).")


def project_or_global(value: str | None) -> str | None:
    """A command's own --project, else the one given before the command."""
    return value if value is not None else Ctx.project


PROJECT = typer.Option(None, "--project", callback=project_or_global,
                       help="Project name or id (default: --project before the command, "
                       "else the workspace's `project`, else the only project).")
AS_OF = typer.Option(None, "--as-of", help="What had happened: events before this instant "
                     "count. ISO 8601 (default: now; no offset means UTC).")
KNOWN_AT = typer.Option(None, "--known-at", help="What had been received: events that "
                        "arrived by this instant count (default: now; the --as-of value "
                        "reproduces the answer given then). docs/rules.md, Time.")


# -- the global options after the command -------------------------------------------------
# The root callback (app.py) sets Ctx from the options before the command; these, added to
# every command and group, set it again when given after it: parsed later, they win. They
# read no environment variable (the root's do), so SEGMENTLY_DB never beats `--db` after.

def _set_db(value: str | None) -> None:
    if value is not None:
        Ctx.settings = Ctx.settings.override(db=normalize_url(value))
        Ctx.db = normalize_url(Ctx.settings.db)


def _set_json(value: bool) -> None:
    if value:
        Ctx.json = True


def _set_config(value: str | None) -> None:
    if value is not None:
        Ctx.settings = Ctx.settings.override(config=value)
        Ctx.config = Ctx.settings.config


def _set_project(value: str | None) -> None:
    if value is not None:
        Ctx.project = value


def _after_command(
    db: str = typer.Option(None, "--db", callback=_set_db, expose_value=False, help=DB_HELP,
                           rich_help_panel=GLOBAL_PANEL),
    json_output: bool = typer.Option(False, "--json", callback=_set_json, expose_value=False,
                                     help=JSON_HELP, rich_help_panel=GLOBAL_PANEL),
    config: str = typer.Option(None, "--config", callback=_set_config, expose_value=False,
                               help=CONFIG_HELP, rich_help_panel=GLOBAL_PANEL),
    project: str = typer.Option(None, "--project", callback=_set_project, expose_value=False,
                                help=PROJECT_HELP, rich_help_panel=GLOBAL_PANEL),
) -> None:
    """Only its parameters are used."""


def global_params() -> list[Any]:
    """Fresh click parameters of the global options, to add to one command."""
    holder = typer.Typer(add_completion=False)
    holder.command()(_after_command)
    return list(typer.main.get_command(holder).params)


def opt_names(params: list[Any]) -> set[str]:
    return {name for p in params for name in (*p.opts, *p.secondary_opts)}

