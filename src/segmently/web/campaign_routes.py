"""What the browser SDK reads: `GET /sdk/segmently.js` (the SDK itself, served by
Segmently: no CDN) and `GET /v1/campaigns` (which campaigns this user should see now).

Both take only the public write key, so the answer must never say more than what the user
in question may see, and must be cheap: the decision is read from memory
(`runtime/engagement.py` over `act/targeting.py`), with identity verification
(`act/identity.py`) when the project turns it on. The holdout arms drawn here are
recorded in the background. Every `/v1/` and `/sdk/` answer may be read by any origin
(`PublicCors`): the host product runs on its own domain.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmently.act.identity import verify
from segmently.collect.errors import InputError
from segmently.web.auth import require_write_project
from segmently.web.state import AppState

router = APIRouter(tags=["in-app"])
SDK_FILE = Path(__file__).parent / "static" / "sdk" / "segmently.js"
MAX_ID = 512


@router.get("/sdk/segmently.js", summary="The browser SDK", include_in_schema=False)
async def sdk() -> FileResponse:
    return FileResponse(SDK_FILE, media_type="text/javascript; charset=utf-8",
                        headers={"cache-control": "public, max-age=300"})


@router.get("/v1/campaigns", summary="The campaigns a user should see now")
async def campaigns(
    request: Request,
    response: Response,
    write_key: str | None = Query(None, alias="writeKey", max_length=256),
    user_id: str | None = Query(None, alias="userId", max_length=MAX_ID),
    user_hash: str | None = Query(None, alias="userHash", max_length=128),
    url: str | None = Query(None, max_length=4096),
    event: str | None = Query(None, max_length=1024),
) -> dict[str, object]:
    """`{"campaigns": [...]}`, best first, every cap applied (docs/sdk.md). 401 for an
    unknown write key, 403 when the project verifies identities and `userHash` is missing
    or wrong, 400 without `userId`."""
    state: AppState = request.app.state.segmently
    project = await require_write_project(state.keys, write_key)
    if not user_id:
        raise InputError("userId: the user (or anonymous id) to choose campaigns for",
                         code="missing_user")
    engagement = state.engagement
    if not engagement.fresh(project.project_id):  # the database, off the event loop
        await asyncio.to_thread(engagement.prepare, project.project_id)
    verify(engagement.settings(project.project_id), user_id, user_hash)
    path = urlsplit(url).path or "/" if url else None
    choice = engagement.choose(project.project_id, user_id, path, event)
    response.headers["cache-control"] = "no-store"  # one user's answer, of this moment
    return {"campaigns": choice.campaigns}


class PublicCors:
    """CORS for the public endpoints (`/v1/...`, `/sdk/...`): any origin may post events
    with the write key and read the answer, without credentials (no cookie is ever
    needed there); a preflight is answered at once. The UI and `/api` stay same-origin."""

    PREFIXES = ("/v1/", "/sdk/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.PREFIXES):
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": [
                (b"access-control-allow-origin", b"*"),
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers",
                 b"Content-Type, Content-Encoding, Authorization, X-Write-Key"),
                (b"access-control-max-age", b"86400")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["access-control-allow-origin"] = "*"
            await send(message)

        await self.app(scope, receive, with_cors)
