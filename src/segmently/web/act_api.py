"""Destinations and deliveries over HTTP (secret key or UI session), translated to and
from `core.Project`: definitions (a new signing secret is shown whole once, at creation;
afterwards secrets are cut), the delivery log, replays and "send test". docs/act.md."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from segmently.act import destinations as dests
from segmently.web.segment_api import Ctx, SecretKeyRoute
from segmently.web.segment_api import _run as run

router = APIRouter(prefix="/api", tags=["destinations"], route_class=SecretKeyRoute)


MessageId = Annotated[str, Field(pattern=r"^msg_[0-9a-f]{32}$")]  # outbox.MESSAGE_ID


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message_ids: list[MessageId] | None = Field(default=None, max_length=10_000)
    destination: str | None = Field(default=None, pattern=dests.NAME)
    since: str | None = Field(default=None, max_length=64)
    until: str | None = Field(default=None, max_length=64)


@router.get("/destinations", summary="Destinations with their subscriptions and states")
async def list_destinations(ctx: Ctx) -> dict[str, Any]:
    found = await run(ctx.project.destinations)
    return {"destinations": [d.public() for d in found.values()]}


@router.post("/destinations", status_code=201, summary="Create a destination (its signing "
             "secret, made when not given, is shown whole only in this answer)")
async def create_destination(ctx: Ctx, body: dests.Destination) -> dict[str, Any]:
    made = await run(ctx.project.save_destination, body, ctx.source, True)
    return made.model_dump(mode="json")


@router.put("/destinations/{name}", summary="Change a destination (a new version)")
async def update_destination(ctx: Ctx, name: str, body: dict[str, Any]) -> dict[str, Any]:
    made = await run(ctx.project.update_destination, name, body, ctx.source)
    return made.public()


@router.get("/destinations/{name}", summary="A destination and its deliveries")
async def get_destination(ctx: Ctx, name: str,
                          limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    dest = await run(ctx.project.destination, name)
    return {**dest.public(), "deliveries": await run(ctx.project.deliveries, name, limit)}


@router.delete("/destinations/{name}", summary="Delete a destination (versions kept)")
async def delete_destination(ctx: Ctx, name: str) -> dict[str, Any]:
    version = await run(ctx.project.delete_destination, name, ctx.source)
    return {"name": name, "deleted": True, "version": version}


@router.post("/destinations/{name}/test", summary="Send a signed test message now")
async def test_destination(ctx: Ctx, name: str) -> dict[str, Any]:
    return await run(ctx.project.test_destination, name, ctx.state.settings)


@router.post("/deliveries/replay", summary="Queue messages again: ids, or a destination's "
             "since an instant")
async def replay(ctx: Ctx, body: Replay) -> dict[str, Any]:
    count = await run(ctx.project.replay, body.message_ids, body.destination, body.since,
                      body.until)
    ctx.state.deliverer.wake()
    return {"queued": count}
