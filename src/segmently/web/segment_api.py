"""Segments over HTTP (secret key): definitions, members, explain, profiles, refresh.

Every route finds its project from the secret key (`Authorization: Bearer sk_...`), so one
project's segments and users are never reachable with another project's key. The routes
only compose `segments.definitions`, `segments.api_ops` and the in-memory membership index
(`segments.live`); errors become `{"code", "message"}` with a 4xx naming the field.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from segmently.collect.errors import InputError
from segmently.segments import api_ops
from segmently.segments import definitions as defs
from segmently.segments.explain import explain
from segmently.web.auth import authenticated_route
from segmently.web.guard import path_value
from segmently.web.session import request_project
from segmently.web.state import AppState, workspace_vocabulary

T = TypeVar("T")
SegmentName = Field(min_length=1, max_length=128, pattern=defs.NAME_RE.pattern)


class NewSegment(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = SegmentName
    description: str = Field(default="", max_length=defs.MAX_DESCRIPTION)
    rule: dict[str, Any]


class SegmentUpdate(BaseModel):
    """Fields left out keep their current value; the result is a new version."""

    model_config = ConfigDict(extra="forbid")
    description: str | None = Field(default=None, max_length=defs.MAX_DESCRIPTION)
    rule: dict[str, Any] | None = None


@dataclass(frozen=True)
class Context:
    state: AppState
    project_id: str


CONTEXT = "segmently.context"


async def _authenticate(request: Request) -> None:
    """The project of the secret key (or of a UI session cookie), found before FastAPI
    reads the body or any parameter (`SecretKeyRoute`): a request without either is a 401
    with its body unread. Async, so that a known key (cached) costs no thread hop:
    `/api/users/{id}/segments` must answer in milliseconds."""
    state: AppState = request.app.state.segmently
    request.scope[CONTEXT] = Context(state, await request_project(state.keys, state.sessions,
                                                                  request))


async def _context(request: Request) -> Context:
    """The dependency routes read the project from (found already by `_authenticate`)."""
    if CONTEXT not in request.scope:
        await _authenticate(request)
    return request.scope[CONTEXT]


Ctx = Annotated[Context, Depends(_context)]
SecretKeyRoute = authenticated_route(_authenticate)  # every /api router's route class
router = APIRouter(prefix="/api", tags=["segments"], route_class=SecretKeyRoute)


async def _run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a store operation in a thread. Its errors carry their own code and status
    (segmently/errors.py), answered by the app's one handler."""
    return await asyncio.to_thread(fn, *args, **kwargs)


# -- definitions -------------------------------------------------------------------------
@router.get("/segments", summary="Segments with size, freshness and version")
async def list_segments(ctx: Ctx) -> dict[str, Any]:
    state, project_id = ctx.state, ctx.project_id
    return {"segments": await _run(api_ops.summaries, state.store, project_id)}


@router.get("/segments/{name}", summary="A segment: definition, versions, size over time")
async def get_segment(ctx: Ctx, name: str) -> dict[str, Any]:
    state, project_id = ctx.state, ctx.project_id
    return await _run(api_ops.detail, state.store, project_id, name)


def _create(state: AppState, project_id: str, body: NewSegment) -> dict[str, Any]:
    """Checked and written under the store's write lock (`defs.create`): of concurrent
    creates of one name exactly one succeeds, the others are 409s."""
    try:
        defs.create(state.store, project_id, body.name, body.description, body.rule)
    except defs.SegmentExistsError as exc:
        raise InputError(f"name: a segment named {body.name!r} exists; PUT "
                         f"/api/segments/{body.name} to change it", code="segment_exists",
                         status=409) from exc
    return defs.get(state.store, project_id, body.name).to_json()


@router.post("/segments", status_code=201, summary="Create a segment (version 1)")
async def create_segment(ctx: Ctx, body: NewSegment) -> dict[str, Any]:
    state, project_id = ctx.state, ctx.project_id
    return await _run(_create, state, project_id, body)


def _update(state: AppState, project_id: str, name: str, body: SegmentUpdate) -> dict[str, Any]:
    if body.description is None and body.rule is None:
        raise InputError("body: give description and/or rule", code="invalid_segment")
    old = defs.get(state.store, project_id, name)
    defs.save(state.store, project_id, name,
              old.description if body.description is None else body.description,
              old.rule if body.rule is None else body.rule)
    return defs.get(state.store, project_id, name).to_json()


@router.put("/segments/{name}", summary="Change a segment (a new version when it differs)")
async def update_segment(ctx: Ctx, name: str, body: SegmentUpdate) -> dict[str, Any]:
    state, project_id = ctx.state, ctx.project_id
    return await _run(_update, state, project_id, name, body)


@router.delete("/segments/{name}", summary="Delete a segment (its versions are kept)")
async def delete_segment(ctx: Ctx, name: str) -> dict[str, Any]:
    state, project_id = ctx.state, ctx.project_id
    version = await _run(defs.delete, state.store, project_id, name)
    state.index.forget_segment(project_id, name)
    return {"name": name, "deleted": True, "version": version}


AsOf = Annotated[datetime | None, Query(
    description="What had happened: events before this instant count (default now)")]
KnownAt = Annotated[datetime | None, Query(
    description="What had been received: events that arrived by this instant count "
                "(default now; as_of's value reproduces the answer given then)")]


# -- members and explain -----------------------------------------------------------------
@router.get("/segments/{name}/members", summary="Members, sorted by user id, paginated")
async def segment_members(ctx: Ctx, name: str, as_of: AsOf = None, known_at: KnownAt = None,
                          limit: int = Query(100, ge=1, le=api_ops.MAX_PAGE),
                          cursor: str | None = None) -> dict[str, Any]:
    state, project_id = ctx.state, ctx.project_id
    page = await _run(api_ops.members_page, state.store, project_id, name,
                      as_of=as_of, limit=limit, cursor=cursor,
                      vocabulary=workspace_vocabulary(), known_at=known_at)
    return page.to_json()


def _explain(state: AppState, project_id: str, name: str, user_id: str,
             as_of: datetime | None, known_at: datetime | None) -> dict[str, Any]:
    live = defs.current(state.store, project_id)
    if name not in live:
        raise defs.not_found(state.store, project_id, name)
    tree = explain(state.store, project_id, live[name].rule, user_id, as_of,
                   segments={n: d.rule for n, d in live.items()},
                   vocabulary=workspace_vocabulary(), known_at=known_at)
    return {"segment": name, "version": live[name].version, "user_id": user_id,
            "member": tree.truth, "explanation": tree.to_dict(), "text": tree.text()}


@router.get("/segments/{name}/explain/{user_id}", summary="Why a user is in or out")
async def explain_member(ctx: Ctx, name: str, user_id: str, as_of: AsOf = None,
                         known_at: KnownAt = None) -> dict[str, Any]:
    state, project_id = ctx.state, ctx.project_id
    return await _run(_explain, state, project_id, name, path_value(user_id), as_of,
                      known_at)


# -- users -------------------------------------------------------------------------------
@router.get("/users/{user_id}/segments", summary="A user's segments (stored membership)",
            response_model=None)
async def user_segments(ctx: Ctx, user_id: str) -> Response:
    """From memory: the membership of the latest refresh, no database round trip. Bytes
    straight from orjson: this is the in-app targeting path, answered in milliseconds."""
    state, project_id, user_id = ctx.state, ctx.project_id, path_value(user_id)
    known = state.index.get(project_id)
    if known is None:
        known = await _run(state.index.load, project_id)
    body = {"user_id": user_id, "segments": known.of(user_id)}
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/users/{user_id}", summary="A user's profile metrics and segments")
async def user_profile(ctx: Ctx, user_id: str, as_of: AsOf = None,
                       known_at: KnownAt = None) -> dict[str, Any]:
    state, project_id, user_id = ctx.state, ctx.project_id, path_value(user_id)
    out = await _run(api_ops.profile, state.store, project_id, user_id,
                     workspace_vocabulary(), as_of, known_at)
    known = state.index.get(project_id)
    if known is None:
        known = await _run(state.index.load, project_id)
    out["segments"] = list(known.of(user_id))
    return out


# -- refresh -----------------------------------------------------------------------------
@router.post("/refresh", summary="Evaluate every segment now and record snapshots")
async def refresh(ctx: Ctx) -> dict[str, Any]:
    state, project_id = ctx.state, ctx.project_id
    results = await _run(state.refresher.refresh, project_id)
    return {"segments": [{"name": r.segment, "as_of": r.as_of.isoformat(), "size": r.size,
                          "entered": r.entered, "exited": r.exited, "skipped": r.skipped,
                          "error": r.error}
                         for r in results]}
