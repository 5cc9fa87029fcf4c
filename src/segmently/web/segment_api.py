"""Segments over HTTP (secret key): definitions, members, explain, profiles, refresh.

Every route finds its project from the secret key (`Authorization: Bearer sk_...`), so one
project's segments and users are never reachable with another project's key. The routes
only translate to and from the application core (`core.Project`) and the in-memory
membership index (`runtime/memberships.py`); errors become `{"code", "message"}` with a 4xx naming
the field.
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
from segmently.core.project import MAX_PAGE, Project
from segmently.profile.config import Vocabulary
from segmently.segments import definitions as defs
from segmently.segments.apply import version_diffs
from segmently.web.auth import authenticated_route, secret_key_from_headers
from segmently.web.guard import path_value
from segmently.web.session import request_project
from segmently.web.state import AppState

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
    source: str = "api"  # who writes: "api" (the secret key) or "ui" (a UI session)

    @property
    def project(self) -> Project:
        return Project(self.state.store, self.project_id)

    def vocabulary(self) -> Vocabulary:
        """The project's stored vocabulary (`segmently apply` writes it), read per call:
        an apply from the CLI counts from the next request."""
        return self.project.vocabulary()


CONTEXT = "segmently.context"


async def _authenticate(request: Request) -> None:
    """The project of the secret key (or of a UI session cookie), found before FastAPI
    reads the body or any parameter (`SecretKeyRoute`): a request without either is a 401
    with its body unread. Async, so that a known key (cached) costs no thread hop:
    `/api/users/{id}/segments` must answer in milliseconds."""
    state: AppState = request.app.state.segmently
    project_id = await request_project(state.keys, state.sessions, request)
    source = "api" if secret_key_from_headers(request) else "ui"
    request.scope[CONTEXT] = Context(state, project_id, source)


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
    counting = ctx.state.refresher.counting(ctx.project_id)
    return {"segments": [{**row, "counting": row["name"] in counting}
                         for row in await _run(ctx.project.summaries)]}


@router.get("/segments/{name}", summary="A segment: definition, versions, size over time")
async def get_segment(ctx: Ctx, name: str) -> dict[str, Any]:
    found = await _run(ctx.project.detail, name)
    return {**found, "counting": name in ctx.state.refresher.counting(ctx.project_id)}


def _create(ctx: Context, body: NewSegment) -> dict[str, Any]:
    """Checked and written under the store's write lock (`defs.create`): of concurrent
    creates of one name exactly one succeeds, the others are 409s."""
    try:
        made = ctx.project.save(body.name, body.description, body.rule, ctx.source,
                                create=True)
    except defs.SegmentExistsError as exc:
        raise InputError(f"name: a segment named {body.name!r} exists; PUT "
                         f"/api/segments/{body.name} to change it", code="segment_exists",
                         status=409) from exc
    return made.to_json()


def _counted(ctx: Context, made: dict[str, Any]) -> dict[str, Any]:
    """A saved segment is counted in the background (`Refresher.count`): its pages then
    read a snapshot, not a live evaluation on every view."""
    ctx.state.refresher.count(ctx.project_id, made["name"])
    return {**made, "counting": True}


@router.post("/segments", status_code=201, summary="Create a segment (version 1); its "
             "members are counted in the background")
async def create_segment(ctx: Ctx, body: NewSegment) -> dict[str, Any]:
    return _counted(ctx, await _run(_create, ctx, body))


def _update(ctx: Context, name: str, body: SegmentUpdate) -> dict[str, Any]:
    if body.description is None and body.rule is None:
        raise InputError("body: give description and/or rule", code="invalid_segment")
    old = defs.get(ctx.state.store, ctx.project_id, name)
    return ctx.project.save(name, old.description if body.description is None
                            else body.description,
                            old.rule if body.rule is None else body.rule, ctx.source).to_json()


@router.put("/segments/{name}", summary="Change a segment (a new version when it differs)")
async def update_segment(ctx: Ctx, name: str, body: SegmentUpdate) -> dict[str, Any]:
    return _counted(ctx, await _run(_update, ctx, name, body))


@router.delete("/segments/{name}", summary="Delete a segment (its versions are kept)")
async def delete_segment(ctx: Ctx, name: str) -> dict[str, Any]:
    version = await _run(ctx.project.delete, name, ctx.source)
    ctx.state.index.forget_segment(ctx.project_id, name)
    return {"name": name, "deleted": True, "version": version}


class Revert(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=2**62)


class Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = SegmentName


@router.get("/segments/{name}/history", summary="Every version, oldest first, who wrote it "
            "and its diff from the one before")
async def segment_history(ctx: Ctx, name: str) -> dict[str, Any]:
    versions = await _run(ctx.project.history, name)
    return {"name": name, "versions": version_diffs(versions)}


@router.post("/segments/{name}/revert", summary="A new version equal to an earlier one")
async def revert_segment(ctx: Ctx, name: str, body: Revert) -> dict[str, Any]:
    made = await _run(ctx.project.revert, name, body.version, ctx.source)
    return _counted(ctx, made.to_json())


@router.post("/segments/{name}/rename", summary="Move a segment to a new name (the old "
             "name is deleted; its history stays)")
async def rename_segment(ctx: Ctx, name: str, body: Rename) -> dict[str, Any]:
    made = await _run(ctx.project.rename, name, body.name, ctx.source)
    ctx.state.index.forget_segment(ctx.project_id, name)
    return _counted(ctx, made.to_json())


AsOf = Annotated[datetime | None, Query(
    description="What had happened: events before this instant count (default now)")]
KnownAt = Annotated[datetime | None, Query(
    description="What had been received: events that arrived by this instant count "
                "(default now; as_of's value reproduces the answer given then)")]


# -- members and explain -----------------------------------------------------------------
@router.get("/segments/{name}/members", summary="Members, sorted by user id, paginated")
async def segment_members(ctx: Ctx, name: str, as_of: AsOf = None, known_at: KnownAt = None,
                          limit: int = Query(100, ge=1, le=MAX_PAGE),
                          cursor: str | None = None) -> dict[str, Any]:
    page = await _run(ctx.project.members_page, name, as_of=as_of, limit=limit,
                      cursor=cursor, known_at=known_at)
    return page.to_json()


def _explain(project: Project, name: str, user_id: str, as_of: datetime | None,
             known_at: datetime | None) -> dict[str, Any]:
    version = project.definition(name).version
    tree = project.explain(name, user_id, as_of, known_at)
    return {"segment": name, "version": version, "user_id": user_id,
            "member": tree.truth, "explanation": tree.to_dict(), "text": tree.text()}


@router.get("/segments/{name}/explain/{user_id}", summary="Why a user is in or out")
async def explain_member(ctx: Ctx, name: str, user_id: str, as_of: AsOf = None,
                         known_at: KnownAt = None) -> dict[str, Any]:
    return await _run(_explain, ctx.project, name, path_value(user_id), as_of, known_at)


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
    out = await _run(ctx.project.profile, user_id, as_of, known_at)
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
