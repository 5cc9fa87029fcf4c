"""`segmently projects create|password|list`: `commands.projects_*` (`store/projects.py`,
`store/passwords.py`), here or in the running server."""

from __future__ import annotations

import typer

from segmently.cli.app import app
from segmently.cli.context import run
from segmently.cli.output import fail, show

projects_app = typer.Typer(help="Create and list projects.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")


@projects_app.command("create")
def projects_create(name: str) -> None:
    """Create a project; prints its write key (public) and secret key (shown only once).

    Example: segmently projects create shop
    """
    show(run("projects_create", name=name), title="new project: keep the secret key safe")


@projects_app.command("password")
def projects_password(
    name: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="The new UI password (asked when not given)."),
) -> None:
    """Set the password that signs in to the project's web UI (with the project name).

    Example: segmently projects password shop
    """
    try:
        show(run("projects_password", name=name, password=password))
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))


@projects_app.command("list")
def projects_list() -> None:
    """Every project: its id, name, write key and when it was created.

    Example: segmently projects list --json
    """
    show(run("projects_list"), title="projects")
