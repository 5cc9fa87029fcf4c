"""Campaigns and the in-app settings over HTTP (secret key or UI session), translated to
and from `core.Project`; a save makes the running targeting state read the definitions
again at once. docs/sdk.md has the campaign file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from segmently.web.segment_api import Ctx, SecretKeyRoute
from segmently.web.segment_api import _run as run

router = APIRouter(prefix="/api", tags=["campaigns"], route_class=SecretKeyRoute)


@router.get("/campaigns", summary="Campaigns with their arms and reach")
async def list_campaigns(ctx: Ctx) -> dict[str, Any]:
    return {"campaigns": await run(ctx.project.campaign_summaries)}


@router.post("/campaigns", status_code=201, summary="Create a campaign")
async def create_campaign(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    made = await run(ctx.project.save_campaign, body, ctx.source, True)
    ctx.state.engagement.forget(ctx.project_id)
    return made.to_json()


@router.put("/campaigns/{name}", summary="Change a campaign (a new version)")
async def update_campaign(ctx: Ctx, name: str, body: dict[str, Any]) -> dict[str, Any]:
    made = await run(ctx.project.save_campaign, {**body, "name": name}, ctx.source)
    ctx.state.engagement.forget(ctx.project_id)
    return made.to_json()


@router.get("/campaigns/{name}", summary="A campaign and its versions")
async def get_campaign(ctx: Ctx, name: str) -> dict[str, Any]:
    found = await run(ctx.project.campaign, name)
    return {**found.to_json(), "versions": await run(ctx.project.campaign_history, name)}


@router.delete("/campaigns/{name}", summary="Delete a campaign (versions and arms kept)")
async def delete_campaign(ctx: Ctx, name: str) -> dict[str, Any]:
    version = await run(ctx.project.delete_campaign, name, ctx.source)
    ctx.state.engagement.forget(ctx.project_id)
    return {"name": name, "deleted": True, "version": version}


@router.get("/in-app/settings", summary="Cooldown and identity verification")
async def get_settings(ctx: Ctx) -> dict[str, Any]:
    return (await run(ctx.project.in_app_settings)).public()


@router.put("/in-app/settings", summary="Change the in-app settings (the verification "
            "secret, made when verification is turned on, is shown whole only here)")
async def put_settings(ctx: Ctx, body: dict[str, Any]) -> dict[str, Any]:
    value = await run(ctx.project.set_in_app_settings, body, ctx.source)
    ctx.state.engagement.forget(ctx.project_id)
    return value.model_dump(mode="json")
