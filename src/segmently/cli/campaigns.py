"""`segmently campaigns list|show|add|delete` and `segmently in-app show|set|hash`: the
in-app campaigns the browser SDK shows (act/campaigns.py, docs/sdk.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from segmently.cli.app import app
from segmently.cli.context import Ctx, run_segments
from segmently.cli.options import PROJECT
from segmently.cli.output import fail, show

campaigns_app = typer.Typer(help="In-app campaigns: modals, banners, tours, checklists, "
                            "NPS and surveys shown by the browser SDK.", no_args_is_help=True)
in_app_app = typer.Typer(help="In-app settings: the cooldown across campaigns and "
                         "identity verification.", no_args_is_help=True)
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(in_app_app, name="in-app")


@campaigns_app.command("list")
def campaigns_list(project: str = PROJECT) -> None:
    """Every campaign: kind, audience, whether it is live, its arms and reach.

    Example: segmently campaigns list
    """
    found = run_segments("campaigns_list", project=project)
    if Ctx.json:
        show(found)
        return
    show([{"name": c["name"], "kind": c["kind"], "version": c["version"], "live": c["live"],
           "audience": ", ".join(c["audience"]["in"] + [f"not {s}" for s in
                                                       c["audience"]["not_in"]]),
           "holdout %": c["holdout_percent"], "assigned": c["assigned"],
           "held out": c["held_out"], "shown": c["shown_users"]} for c in found],
         title="campaigns")


@campaigns_app.command("show")
def campaigns_show(name: str, project: str = PROJECT) -> None:
    """A campaign's definition and its versions.

    Example: segmently campaigns show nps_detractors
    """
    import yaml  # on use: not on every CLI start

    found = run_segments("campaigns_show", name=name, project=project)
    if Ctx.json:
        show(found)
        return
    versions = found.pop("versions")
    typer.echo(yaml.safe_dump(found, sort_keys=False, allow_unicode=True))
    show([{"version": v["version"], "at": v["created_at"], "source": v["source"],
           "deleted": v["deleted"]} for v in versions], title="versions")


@campaigns_app.command("add")
def campaigns_add(
    from_file: Path = typer.Argument(..., help="The campaign as YAML or JSON (docs/sdk.md)."),
    replace: bool = typer.Option(False, "--replace", help="Save a new version of an "
                                 "existing campaign (else a name taken is refused)."),
    project: str = PROJECT,
) -> None:
    """Save a campaign from a file (a workspace file's `campaigns:` entry; `segmently
    apply` saves a whole file's).

    Example: segmently campaigns add nps.yaml
    """
    import yaml  # on use: not on every CLI start

    try:
        definition: Any = yaml.safe_load(from_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        fail(f"{from_file}: {exc}")
    if not isinstance(definition, dict):
        fail(f"{from_file}: a campaign is a mapping (name, kind, content...)")
    show(run_segments("campaigns_save", definition=definition, project=project,
                      create=not replace), title="campaign")


@campaigns_app.command("delete")
def campaigns_delete(name: str, project: str = PROJECT) -> None:
    """Delete a campaign (its versions and holdout arms stay).

    Example: segmently campaigns delete nps_detractors
    """
    show(run_segments("campaigns_delete", name=name, project=project))


@in_app_app.command("show")
def in_app_show(project: str = PROJECT,
                reveal: bool = typer.Option(False, "--reveal", help="Print the "
                                            "verification secret whole.")) -> None:
    """The cooldown and identity verification (the secret cut unless --reveal).

    Example: segmently in-app show --reveal
    """
    show(run_segments("in_app_show", project=project, reveal=reveal), title="in-app")


@in_app_app.command("set")
def in_app_set(
    cooldown_hours: float = typer.Option(None, "--cooldown-hours", help="No user sees two "
                                         "campaigns within this many hours (0: no limit)."),
    verification: bool = typer.Option(None, "--identity-verification/--no-identity-"
                                      "verification", help="Require userHash."),
    project: str = PROJECT,
) -> None:
    """Change the in-app settings; turning identity verification on prints the secret
    the host's server signs user ids with.

    Example: segmently in-app set --identity-verification --cooldown-hours 48
    """
    changes = {k: v for k, v in {"cooldown_hours": cooldown_hours,
                                 "identity_verification": verification}.items()
               if v is not None}
    if not changes:
        fail("give --cooldown-hours or --identity-verification/--no-identity-verification")
    show(run_segments("in_app_set", changes=changes, project=project), title="in-app")


@in_app_app.command("hash")
def in_app_hash(user_id: str, project: str = PROJECT) -> None:
    """The userHash of a user id (HMAC-SHA256 with the verification secret), as the host's
    server computes it: for trying identity verification out.

    Example: segmently in-app hash u_123
    """
    show(run_segments("in_app_hash", user_id=user_id, project=project))
