"""Every analysis of `insights/registry.py` over HTTP (secret key or UI session): its
parameters from the query string (lists comma-separated), its answer as JSON, through
`core.Project.insight`, kept until the project's next refresh (`runtime/insights.py`).
The UI's insight pages (`/ui/insights/<name>`) read these."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from segmently.insights import registry
from segmently.web.segment_api import Ctx, SecretKeyRoute
from segmently.web.segment_api import _run as run

router = APIRouter(prefix="/api", tags=["insights"], route_class=SecretKeyRoute)


@router.get("/insights", summary="The analyses, with the parameters each takes")
async def list_insights(ctx: Ctx) -> dict[str, Any]:
    return {"insights": [a.describe() for a in registry.load_all().values()]}


@router.get("/insights/{name}", summary="One analysis (parameters in the query string); "
            "the answer is kept until the next refresh (`computed_at` says when it was "
            "computed; `fresh=true` computes it now)")
async def one_insight(ctx: Ctx, name: str, request: Request) -> dict[str, Any]:
    params = dict(request.query_params)
    fresh = params.pop("fresh", "").lower() in ("1", "true", "yes")
    project = ctx.project
    registry.parse_params(registry.find(name), params)  # a bad request is a 400 at once
    answers = ctx.state.insights
    key = answers.key(ctx.project_id, name, params)
    if fresh:
        answers.drop(key)
    return await run(answers.get, key, lambda: project.insight(name, params))
