"""The local CLI's way in while this server holds the DuckDB file (see control.py)."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from segmently import commands
from segmently.collect.errors import AuthError, InputError
from segmently.web.auth import bearer
from segmently.web.state import AppState

router = APIRouter(prefix="/internal/v1", include_in_schema=False)


class Call(BaseModel):
    command: str
    args: dict[str, Any] = {}


def require_control(request: Request) -> AppState:
    state: AppState = request.app.state.segmently
    token = bearer(request)
    if not state.control_token or not token or not hmac.compare_digest(token, state.control_token):
        raise AuthError("this endpoint is for the local CLI and needs the server's control token")
    return state


@router.post("/call")
async def call(request: Request, body: Call) -> dict[str, Any]:
    state = require_control(request)
    fn = commands.REGISTRY.get(body.command)
    if fn is None:
        raise InputError(f"unknown command {body.command!r}", code="unknown_command")
    try:
        result = await asyncio.to_thread(fn, state.store, **body.args)
    except (TypeError, ValueError) as exc:
        raise InputError(str(exc), code="command_failed") from exc
    return {"result": result}
