"""What every command shares: the global options' values (`Ctx`), the store, and running a
core command here or in the `segmently serve` that holds the DuckDB file.

`run` calls `commands.REGISTRY` on this process's store, or ships the call through
`control.py` to `/internal/v1/call` (`web/internal_routes.py`) when the file is locked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from segmently import control  # `commands` and the store on first use: they import the
from segmently.settings import Settings  # engines (Ibis, Arrow), a second of the CLI start
from segmently.store.urls import StoreLockedError, normalize_url

if TYPE_CHECKING:
    from segmently.store import Store


class Ctx:
    db: str = normalize_url(None)
    json: bool = False
    config: str = "segmently.yaml"
    project: str | None = None  # --project before the command: the default of those after
    settings: Settings = Settings()  # loaded by the root callback (cli/app.py)


def open_store() -> Store:
    from segmently.store import Store

    return Store(Ctx.db, settings=Ctx.settings)


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


def run_segments(command: str, **args: Any) -> Any:
    """Run a segment command over the stored definitions (`segmently apply` writes them
    from the workspace file); its error is one line."""
    from segmently.cli.output import fail

    if "project" in args and args["project"] is None:
        args["project"] = Ctx.project or workspace_project()
    try:
        return run(command, **args)
    except (ValueError, LookupError, RuntimeError) as exc:
        fail(str(exc))


def workspace_project() -> str | None:
    """The `project:` the workspace file names, the default project of every command (so
    a team's file says which project it is about); None without a readable file."""
    import yaml

    path = Path(Ctx.config)
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return None
    project = data.get("project") if isinstance(data, dict) else None
    return project if isinstance(project, str) else None


def workspace_text() -> tuple[str, str]:
    """(text, path) of the workspace file (--config), for apply and plan."""
    from segmently.cli.output import fail

    path = Path(Ctx.config)
    if not path.is_file():
        fail(f"{path}: no such workspace file (pass --config, or run `segmently demo`)")
    return path.read_text(), str(path)
