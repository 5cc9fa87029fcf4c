"""`segmently insights [NAME key=value ...]`: every analysis of `insights/registry.py`
(retention, stickiness, segment flow, friction, feature lift, campaign results...) from the
command line, as JSON (the same answer as `GET /api/insights/NAME`)."""

from __future__ import annotations

import json

import typer

from segmently.cli.app import app
from segmently.cli.context import Ctx, run_segments
from segmently.cli.options import PROJECT
from segmently.cli.output import fail, show


@app.command("insights")
def insights(
    name: str = typer.Argument(None, help="The analysis; none: list them."),
    params: list[str] = typer.Argument(None, help="Parameters as key=value (lists "
                                       "comma-separated: segments=power,dormant)."),
    project: str = PROJECT,
) -> None:
    """Analyses of usage by segment: retention, stickiness, segment flow, friction
    funnels, feature lift, campaign results against the holdout.

    Example: segmently insights retention period=week segments=power_users,dormant
    """
    if name is None:
        show(run_segments("insights_list"), title="insights")
        return
    given: dict[str, str] = {}
    for item in params or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"{item!r}: give parameters as key=value")
        given[key] = value
    found = run_segments("insight", name=name, params=given, project=project)
    if Ctx.json:
        show(found)
    else:
        typer.echo(json.dumps(found, indent=2, ensure_ascii=False))
