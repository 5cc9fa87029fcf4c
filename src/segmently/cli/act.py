"""`segmently destinations add|list|show|delete|test`, `segmently deliver` and
`segmently deliveries replay`: acting on segments (act/, docs/act.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from segmently.cli.app import app
from segmently.cli.context import Ctx, run_segments
from segmently.cli.options import PROJECT
from segmently.cli.output import console, fail, show

destinations_app = typer.Typer(help="Where segment changes go: webhooks, Slack, "
                               "Segment-compatible endpoints, files.", no_args_is_help=True)
deliveries_app = typer.Typer(help="The delivery log: replay messages.", no_args_is_help=True)
app.add_typer(destinations_app, name="destinations")
app.add_typer(deliveries_app, name="deliveries")


@destinations_app.command("add")
def destinations_add(
    name: str,
    kind: str = typer.Option(None, "--kind", help="webhook, slack, segment or files."),
    url: str = typer.Option(None, "--url", help="Where to send (webhook, slack, segment)."),
    segment: list[str] = typer.Option([], "--segment", help="A segment to subscribe to "
                                      "(repeat for several)."),
    changes: str = typer.Option("entered,exited", "--changes", help="entered, exited or "
                                "both (comma-separated)."),
    mode: str = typer.Option("changes", "--mode", help="changes (one message per batch of "
                             "transitions) or sync (the membership, then diffs)."),
    batch_size: int = typer.Option(100, "--batch-size", help="Users per message."),
    write_key: str = typer.Option(None, "--write-key", help="segment: the endpoint's "
                                  "write key."),
    folder: str = typer.Option(None, "--folder", help="files: the folder to write to."),
    file_format: str = typer.Option("csv", "--format", help="files: csv or parquet."),
    public_url: str = typer.Option(None, "--public-url", help="slack: this server's URL, "
                                   "for links to the segment page."),
    header: list[str] = typer.Option([], "--header", help="NAME=VALUE sent with every "
                                     "request (repeat)."),
    from_file: Path = typer.Option(None, "--from", help="The whole definition as YAML or "
                                   "JSON instead (docs/act.md)."),
    project: str = PROJECT,
) -> None:
    """Create a destination subscribed to segments. A webhook's signing secret (whsec_...)
    is made and printed once: give it to the receiver to verify signatures.

    Example: segmently destinations add crm --kind webhook --url https://crm.example/hook
    --segment at_risk
    """
    import yaml  # on use: not on every CLI start

    if from_file is not None:
        definition: dict[str, Any] = yaml.safe_load(from_file.read_text()) or {}
        definition.setdefault("name", name)
    else:
        if kind is None:
            fail("--kind: give webhook, slack, segment or files (or --from FILE)")
        headers = dict(h.split("=", 1) for h in header if "=" in h)
        if len(headers) != len(header):
            fail("--header: give NAME=VALUE")
        definition = {
            "name": name, "kind": kind, "url": url, "write_key": write_key,
            "folder": folder, "format": file_format, "public_url": public_url,
            "headers": headers,
            "subscriptions": [{"segments": segment, "mode": mode, "batch_size": batch_size,
                               "changes": [c.strip() for c in changes.split(",") if c]}]
            if segment else []}
        definition = {k: v for k, v in definition.items() if v is not None}
    show(run_segments("destinations_save", definition=definition, project=project,
                      create=True), title="destination: keep the secret to verify signatures")


@destinations_app.command("list")
def destinations_list(project: str = PROJECT) -> None:
    """Every destination, its subscriptions and whether it is enabled.

    Example: segmently destinations list --json
    """
    found = run_segments("destinations_list", project=project)
    if Ctx.json:
        show(found)
        return
    show([{"name": d["name"], "kind": d["kind"], "url": d.get("url") or d.get("folder"),
           "segments": ", ".join(s for sub in d["subscriptions"] for s in sub["segments"]),
           "enabled": d["enabled"], "disabled": d.get("disabled_reason")} for d in found],
         title="destinations")


@destinations_app.command("show")
def destinations_show(name: str, project: str = PROJECT,
                      limit: int = typer.Option(20, "--limit", help="Attempts shown.")) -> None:
    """A destination, its messages by state, and its latest delivery attempts.

    Example: segmently destinations show crm
    """
    found = run_segments("destinations_show", name=name, project=project, limit=limit)
    if Ctx.json:
        show(found)
        return
    deliveries = found.pop("deliveries")
    show({k: v for k, v in found.items() if k != "subscriptions"}, title=name)
    console.print(f"messages: {deliveries['counts'] or 'none'}", highlight=False)
    show([{"at": a["at"], "message": a["message_id"], "attempt": a["attempt"],
           "ok": a["ok"], "status": a["status"], "ms": a["latency_ms"], "error": a["error"]}
          for a in deliveries["attempts"]], title="latest attempts")


@destinations_app.command("delete")
def destinations_delete(name: str, project: str = PROJECT) -> None:
    """Delete a destination (its versions and delivery log stay).

    Example: segmently destinations delete crm
    """
    show(run_segments("destinations_delete", name=name, project=project))


@destinations_app.command("test")
def destinations_test(name: str, project: str = PROJECT) -> None:
    """Send one signed test message now and print how the receiver answered.

    Example: segmently destinations test crm
    """
    found = run_segments("destinations_test", name=name, project=project)
    show(found)
    if not found["ok"]:
        raise typer.Exit(1)


@app.command("deliver")
def deliver_command(
    project: str = PROJECT,
    loop: bool = typer.Option(False, "--loop", help="Keep delivering (every --every "
                              "seconds) until interrupted: a separate worker."),
    every: float = typer.Option(1.0, "--every", help="Seconds between passes with --loop."),
) -> None:
    """Send what the outbox owes every destination (once, or --loop). `serve` does this
    itself every SEGMENTLY_DELIVER_SECONDS; this is for cron or a separate worker.

    Example: segmently deliver --loop
    """
    while True:
        found = run_segments("deliver", project=project)
        if not loop:
            show(found, title="delivered")
            return
        if found["delivered"] or found["failed"]:
            console.print(json.dumps(found), highlight=False)
        time.sleep(max(every, 0.1))


@deliveries_app.command("replay")
def deliveries_replay(
    message_id: list[str] = typer.Argument(None, help="Message ids (webhook-id) to send "
                                           "again."),
    destination: str = typer.Option(None, "--destination", help="With --since: a "
                                    "destination's messages of a time range."),
    since: str = typer.Option(None, "--since", help="ISO 8601: messages queued from then."),
    until: str = typer.Option(None, "--until", help="ISO 8601: ... and before then."),
    project: str = PROJECT,
) -> None:
    """Queue messages again (delivered or failed ones too), with their original ids.

    Example: segmently deliveries replay --destination crm --since 2026-12-01
    """
    show(run_segments("deliveries_replay", message_ids=message_id or None,
                      destination=destination, since=since, until=until, project=project))
