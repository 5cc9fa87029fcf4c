"""`segmently segments list|show|eval|members|explain|refresh` and `segmently schema`: the
stored segments (`segmently apply` writes them from the workspace file). Each runs a
`commands.segments_*` function (`core.Project`), here or in the running server."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from segmently.cli.app import app
from segmently.cli.context import Ctx, run_segments
from segmently.cli.options import AS_OF, KNOWN_AT, PROJECT
from segmently.cli.output import console, fail, show

segments_app = typer.Typer(help="The stored segments: list, evaluate, explain, refresh, "
                           "history.",
                           no_args_is_help=True)
app.add_typer(segments_app, name="segments")


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of the workspace file (for editor autocompletion).

    Example: segmently schema > segmently.schema.json
    """
    from segmently.segments.workspace import json_schema

    typer.echo(json.dumps(json_schema(), indent=2))


@segments_app.command("list")
def segments_list(project: str = PROJECT) -> None:
    """The stored segments (the same as `GET /api/segments` and the UI's list), each with
    its version and the size and freshness of its latest snapshot.

    Example: segmently segments list --project demo
    """
    found = run_segments("segments_list", project=project)
    if Ctx.json:
        show(found)
        return
    show([{"name": s["name"], "version": s["version"], "size": s["size"],
           "as_of": s["as_of"], "error": (s["error"] or {}).get("message")}
          for s in found], title="segments")


@segments_app.command("show")
def segments_show(name: str, project: str = PROJECT) -> None:
    """A segment's definition and its size over time (snapshots).

    Example: segmently segments show champions
    """
    found = run_segments("segments_show", project=project, name=name)
    if Ctx.json:
        show(found)
        return
    console.print(f"[bold]{found['name']}[/bold] (version {found['version']})  "
                  f"{found['description']}")
    console.print_json(json.dumps(found["rule"]))
    show(found["snapshots"], title="size over time")


@segments_app.command("eval")
def segments_eval(as_of: str = AS_OF, known_at: str = KNOWN_AT,
                  project: str = PROJECT) -> None:
    """Evaluate every segment at one instant (one pass) and print the sizes.

    Example: segmently segments eval --as-of 2026-03-01
    """
    found = run_segments("segments_eval", project=project, as_of=as_of, known_at=known_at)
    if Ctx.json:
        show(found)
        return
    show(found["segments"], title=f"segment sizes as of {found['as_of']}, "
                                  f"known at {found['known_at']}")


@segments_app.command("members")
def segments_members(
    name: str,
    as_of: str = AS_OF,
    known_at: str = KNOWN_AT,
    project: str = PROJECT,
    fmt: str = typer.Option(None, "--format", help="csv, json or parquet (default: a table,"
                            " or JSON with --json)."),
    out: Path = typer.Option(None, "--out", help="Write to this file instead of stdout"
                             " (needed for parquet)."),
) -> None:
    """The members of one segment at an instant.

    Example: segmently segments members dormant --format csv --out dormant.csv
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt not in (None, "csv", "json", "parquet"):
        fail(f"--format: {fmt!r} is not one of csv, json, parquet")
    if fmt == "parquet" and out is None:
        fail("--format parquet needs --out FILE")
    found = run_segments("segments_members", project=project, name=name, as_of=as_of,
                         known_at=known_at)
    table = pa.table({"user_id": pa.array(found["user_ids"], pa.string())})
    if fmt == "parquet":
        pq.write_table(table, out)
        return
    if fmt is None and not Ctx.json and out is None:
        show([{"user_id": u} for u in found["user_ids"]],
             title=f"{name}: {found['size']} members as of {found['as_of']}")
        return
    if fmt == "csv":
        sink = pa.BufferOutputStream()
        pacsv.write_csv(table, sink)
        text = sink.getvalue().to_pybytes().decode()
    else:
        text = json.dumps(found, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)


@segments_app.command("explain")
def segments_explain(name: str, user_id: str, as_of: str = AS_OF, known_at: str = KNOWN_AT,
                     project: str = PROJECT) -> None:
    """Why a user is in or out of a segment: each rule node, true or false, and what was
    observed.

    Example: segmently segments explain champions usr_0000000 --as-of 2026-03-01
    """
    found = run_segments("segments_explain", project=project, name=name, user_id=user_id,
                         as_of=as_of, known_at=known_at)
    if Ctx.json:
        show(found)
        return
    verdict = "in" if found["member"] else "not in"
    typer.echo(f"{user_id} is {verdict} {name} as of {found['as_of']}\n{found['text']}")


@segments_app.command("refresh")
def segments_refresh(
    as_of: str = AS_OF,
    known_at: str = KNOWN_AT,
    project: str = PROJECT,
    backfill_from: str = typer.Option(None, "--backfill-from", help="Also store snapshots at"
                                      " every --every from this instant up to --as-of."),
    every: str = typer.Option("1d", "--every", help="Backfill step: 30m, 12h, 1d, 1w."),
    profiles: bool = typer.Option(True, "--profiles/--no-profiles", help="Also store every "
                                  "user's metrics at the latest instant, which the UI's "
                                  "member tables, breakdowns and insights read."),
) -> None:
    """Evaluate every segment once and store snapshots and enter/exit transitions.

    Example: segmently segments refresh --backfill-from 2026-01-01 --every 1d
    """
    found = run_segments("segments_refresh", project=project, as_of=as_of,
                         backfill_from=backfill_from, every=every, profiles=profiles,
                         known_at=known_at)
    show(found, title="refreshed")

