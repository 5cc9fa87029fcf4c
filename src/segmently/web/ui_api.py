"""The read operations the UI pages call (secret key or UI session, like every /api route).

Each route composes one core operation: membership from `core.Project` (`member_ids`,
`members_of`: snapshot or live, decided there), then `insights/` (overview, journey
funnel, feature adoption), `store/catalog.py` and `store/person.py` (what the project has
seen, a user's traits and events), `segments/` (rule previews, builder forms, member
tables, breakdowns, transitions). Pagination and aggregation happen in the engine; no
route loads all users. The pages' scripts (`web/static/ui.js`, `builder.js`) call them.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pyarrow import csv
from pydantic import BaseModel, ConfigDict

from segmently.insights import adoption, basis, journey, overview
from segmently.segments import definitions as defs
from segmently.segments import drafts, forms, member_views
from segmently.store import catalog, person, utcnow
from segmently.web.guard import path_value
from segmently.web.segment_api import Ctx, SecretKeyRoute
from segmently.web.segment_api import _run as run  # the same error mapping

router = APIRouter(prefix="/api", tags=["ui"], route_class=SecretKeyRoute)  # key, then body


class RuleDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rule: Any


def _basis(ctx: Ctx) -> basis.Basis:
    return basis.basis(ctx.state.store, ctx.project_id, ctx.vocabulary(), ctx.state.profiles,
                       utcnow())


@router.get("/project", summary="This project: id, name and its public write key (what "
            "the SDK snippet needs)")
async def this_project(ctx: Ctx) -> dict[str, Any]:
    found = await run(ctx.project.record)
    return {"project_id": found.project_id, "name": found.name, "write_key": found.write_key}


@router.get("/overview", summary="Users, accounts, events and daily active users, at the "
            "latest refresh")
async def project_overview(ctx: Ctx, days: int = Query(90, ge=1, le=overview.MAX_DAYS)
                           ) -> dict[str, Any]:
    base = await run(_basis, ctx)
    return await run(overview.overview, ctx.state.store, ctx.project_id, base, days)


@router.get("/catalog", summary="What the builder offers: names seen and condition forms")
async def builder_catalog(ctx: Ctx) -> dict[str, Any]:
    store, project_id = ctx.state.store, ctx.project_id
    vocab = await run(ctx.vocabulary)
    return {"events": await run(catalog.event_names, store, project_id),
            "traits": await run(catalog.trait_names, store, project_id),
            "features": [f.name for f in vocab.features],
            "milestones": [m.name for m in vocab.milestones],
            "segments": sorted(await run(defs.current, store, project_id)),
            "forms": forms.condition_forms()}


@router.get("/catalog/properties", summary="Property keys seen on recent events of a name")
async def event_properties(ctx: Ctx, event: str = Query(min_length=1, max_length=1024)
                           ) -> dict[str, Any]:
    keys = await run(catalog.property_keys, ctx.state.store, ctx.project_id, event)
    return {"event": event, "properties": keys}


@router.get("/catalog/trait-values", summary="Current values of a user trait, most common "
            "first")
async def trait_values(ctx: Ctx, trait: str = Query(min_length=1, max_length=256)
                       ) -> dict[str, Any]:
    values = await run(catalog.trait_values, ctx.state.store, ctx.project_id, trait)
    return {"trait": trait, "values": values}


@router.post("/rules/preview", summary="Validate an unsaved rule, its YAML and live size")
async def preview_rule(ctx: Ctx, body: RuleDraft) -> dict[str, Any]:
    vocab = await run(ctx.vocabulary)
    return await run(drafts.preview, ctx.state.store, ctx.project_id, body.rule, vocab,
                     utcnow())


def _counting(ctx: Ctx, name: str) -> bool:
    return name in ctx.state.refresher.counting(ctx.project_id)


@router.get("/segments/{name}/table", summary="Members with metrics: search, sort, page")
async def member_table(ctx: Ctx, name: str, q: str = Query("", max_length=256),
                       sort: str = "user_id", desc: bool = False,
                       offset: int = Query(0, ge=0),
                       limit: int = Query(50, ge=1, le=member_views.MAX_PAGE)
                       ) -> dict[str, Any]:
    if _counting(ctx, name):  # just saved: its snapshot is seconds away, no live pass
        return {"segment": name, "counting": True, "members": [], "total": None}

    def table() -> dict[str, Any]:
        return member_views.member_table(
            ctx.state.store, ctx.project_id, ctx.project.member_ids(name), ctx.vocabulary(),
            search=q, sort=sort, descending=desc, offset=offset, limit=limit,
            keeper=ctx.state.profiles)

    return await run(table)


@router.get("/segments/{name}/breakdown", summary="Members by plan, account, band...")
async def segment_breakdown(ctx: Ctx, name: str, by: str = "plan") -> dict[str, Any]:
    if _counting(ctx, name):
        return {"segment": name, "by": by, "values": [], "counting": True}

    def bars() -> list[dict[str, Any]]:
        return member_views.breakdown(ctx.state.store, ctx.project_id,
                                      ctx.project.member_ids(name), ctx.vocabulary(), by,
                                      ctx.state.profiles)

    rows = await run(bars)
    return {"segment": name, "by": by, "values": rows}


@router.get("/segments/{name}/transitions", summary="Who entered and left recently")
async def segment_transitions(ctx: Ctx, name: str, limit: int = Query(50, ge=1, le=500)
                              ) -> dict[str, Any]:
    await run(defs.get, ctx.state.store, ctx.project_id, name)  # 404 for unknown names
    rows = await run(member_views.recent_transitions, ctx.state.store, ctx.project_id,
                     name, limit)
    return {"segment": name, "transitions": rows}


def _members_csv(ctx: Ctx, name: str) -> bytes:
    """Written from Arrow by pyarrow: a million ids never become Python objects."""
    found = ctx.project.member_ids(name)
    out = io.BytesIO()
    csv.write_csv(found.ids.order_by("user_id").to_pyarrow(), out)
    return out.getvalue()


@router.get("/segments/{name}/export.csv", summary="Every member's id as CSV",
            response_class=Response)
async def export_members(ctx: Ctx, name: str) -> Response:
    body = await run(_members_csv, ctx, name)
    return Response(body, media_type="text/csv", headers={
        "content-disposition": f'attachment; filename="{name}.csv"'})


def _funnel(ctx: Ctx, segment: str | None) -> dict[str, Any]:
    vocab, base = ctx.vocabulary(), _basis(ctx)
    members = ctx.project.member_ids(segment).ids if segment else None
    steps = journey.funnel(base, [m.name for m in vocab.milestones], members)
    return {"as_of": base.as_of.isoformat(), "segment": segment, "steps": steps}


@router.get("/insights/funnel", summary="Milestone funnel with drop-off (all users or one "
            "segment's members), at the latest refresh")
async def milestone_funnel(ctx: Ctx, segment: str | None = None) -> dict[str, Any]:
    return await run(_funnel, ctx, segment)


def _adoption(ctx: Ctx, names: list[str]) -> dict[str, Any]:
    vocab, base = ctx.vocabulary(), _basis(ctx)
    members = ctx.project.members_of(names)
    found = adoption.adoption(base, [f.name for f in vocab.features], names, members)
    return {"as_of": base.as_of.isoformat(), **found}


@router.get("/insights/adoption", summary="Feature adoption across segments, at the latest "
            "refresh")
async def feature_adoption(ctx: Ctx, segments: str = "") -> dict[str, Any]:
    names = [n for n in segments.split(",") if n] or \
        sorted(await run(defs.current, ctx.state.store, ctx.project_id))
    return await run(_adoption, ctx, names)


@router.get("/users/{user_id}/at-refresh", summary="A user's metrics and segments at the "
            "latest refresh")
async def user_at_refresh(ctx: Ctx, user_id: str) -> dict[str, Any]:
    """The latest profile run's rows for the user (now if the project was never
    refreshed): the instant the user's segments come from, so the page reads one
    consistent picture, and one person's stored rows."""
    project_id, user_id = ctx.project_id, path_value(user_id)
    base = await run(_basis, ctx)
    out = await (run(ctx.project.profile_of_run, user_id, base.run) if base.run else
                 run(ctx.project.profile, user_id))
    known = ctx.state.index.get(project_id)
    if known is None:
        known = await run(ctx.state.index.load, project_id)
    out["segments"] = list(known.of(user_id))
    return out


def _explanations(ctx: Ctx, user_id: str, names: list[str]) -> dict[str, Any]:
    base = _basis(ctx)
    at = base.as_of if base.run else None
    if not names:
        known = ctx.state.index.ensure(ctx.project_id)
        live = ctx.project.rules()
        names = [n for n in known.of(user_id) if n in live]  # deleted since: not explained
    trees = ctx.project.explain_user(user_id, names, at)
    return {"user_id": user_id, "as_of": (at or utcnow()).isoformat(),
            "segments": [{"segment": n, "member": t.truth, "explanation": t.to_dict()}
                         for n, t in trees.items()]}


@router.get("/users/{user_id}/explanations", summary="Why the user is in or out of each "
            "segment (default: the user's segments at the latest refresh), in one pass")
async def user_explanations(ctx: Ctx, user_id: str, segments: str = "") -> dict[str, Any]:
    names = [n for n in segments.split(",") if n]
    return await run(_explanations, ctx, path_value(user_id), names)


@router.get("/users/{user_id}/timeline", summary="A user's events, newest first")
async def user_timeline(ctx: Ctx, user_id: str, limit: int = Query(50, ge=1, le=500),
                        before: datetime | None = None, before_id: str | None = None
                        ) -> dict[str, Any]:
    key = (before, before_id) if before is not None and before_id is not None else None
    user_id = path_value(user_id)
    rows = await run(person.user_events, ctx.state.store, ctx.project_id, user_id,
                     limit=limit, before=key)
    return {"user_id": user_id, "events": rows}


@router.get("/users/{user_id}/traits", summary="A user's latest traits")
async def user_traits(ctx: Ctx, user_id: str) -> dict[str, Any]:
    user_id = path_value(user_id)
    traits = await run(person.user_traits, ctx.state.store, ctx.project_id, user_id)
    return {"user_id": user_id, "traits": traits}
