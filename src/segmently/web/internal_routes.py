"""The local CLI's way in while this server holds the DuckDB file (see control.py).

`/internal/v1/call` runs a command of `commands.py`'s registry on this server's store (the
CLI's `cli/context.py` `run` sends it); `/internal/v1/append` stores a RowBatch that
`segmently import` converted (`cli/importing.py` `RemoteSink`) with `Store.append_rows`."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from segmently import commands
from segmently.collect import arrow_ipc
from segmently.collect.errors import AuthError, InputError
from segmently.store.projects import list_projects
from segmently.web.auth import authenticated_route, bearer
from segmently.web.body import read_body
from segmently.web.state import AppState


class Call(BaseModel):
    command: str
    args: dict[str, Any] = {}


def require_control(request: Request) -> AppState:
    state: AppState = request.app.state.segmently
    token = bearer(request)
    if not state.control_token or not token or not hmac.compare_digest(token, state.control_token):
        raise AuthError("this endpoint is for the local CLI and needs the server's control token")
    return state


async def _check_control(request: Request) -> None:
    require_control(request)


# The token is checked before FastAPI reads a body (`Call`): see web/auth.py.
router = APIRouter(prefix="/internal/v1", include_in_schema=False,
                   route_class=authenticated_route(_check_control))


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


@router.post("/append")
async def append(request: Request, project_id: str) -> dict[str, int]:
    """Store a RowBatch the CLI converted from a file (framed Arrow IPC, see
    collect/arrow_ipc.py): one `Store.append_rows`, so one deduplicated transaction."""
    state = require_control(request)
    if project_id not in {p.project_id for p in await asyncio.to_thread(list_projects,
                                                                         state.store)}:
        raise InputError(f"no project with id {project_id!r}", code="unknown_project",
                         status=404)
    rows = arrow_ipc.decode(await read_body(request, state.limits.max_import_body))
    if rows.events.num_rows == 0:
        return {"received": 0, "stored": 0}
    result = await asyncio.to_thread(state.store.append_rows, project_id, rows)
    return {"received": result.received, "stored": result.stored}
