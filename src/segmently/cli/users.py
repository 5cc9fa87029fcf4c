"""`segmently user USER_ID`: one user's profile and the segments they are in
(`commands.user_profile`: `core.Project.profile` and `user_segments`)."""

from __future__ import annotations

import typer

from segmently.cli.app import app
from segmently.cli.context import Ctx, run_segments
from segmently.cli.options import AS_OF, KNOWN_AT, PROJECT
from segmently.cli.output import show


@app.command("user")
def user(user_id: str, as_of: str = AS_OF, known_at: str = KNOWN_AT,
         project: str = PROJECT) -> None:
    """A user's profile (metrics, features, milestones) and the segments they are in.

    Example: segmently user usr_0000000 --as-of 2026-03-01
    """
    found = run_segments("user_profile", project=project, user_id=user_id, as_of=as_of,
                         known_at=known_at)
    if Ctx.json:
        show(found)
        return
    show([{"metric": k, "value": v} for k, v in found["metrics"].items()],
         title=f"{user_id} as of {found['as_of']}")
    for name in ("features", "milestones"):
        if found.get(name):
            show(found[name], title=name)
    if not found["segments"]:
        typer.echo("in no segment")
    for seg in found["segments"]:
        typer.echo(f"\nin {seg['segment']}:\n{seg['text']}")

