"""Segmently's native ingestion endpoint."""

from __future__ import annotations

from fastapi import APIRouter, Request

from segmently.collect.decode import maybe_gunzip, parse_json
from segmently.collect.errors import InputError
from segmently.collect.limits import check_body_size
from segmently.collect.native import parse_native
from segmently.store import utcnow
from segmently.web.auth import require_write_project, write_key_from_headers
from segmently.web.body import read_body
from segmently.web.state import AppState

router = APIRouter(tags=["ingestion"])


@router.post("/v1/events", summary="Send events in Segmently's native format")
async def post_events(request: Request) -> dict[str, object]:
    """One event, or `{"events": [...]}`. Write key as Bearer token, Basic user or
    `X-Write-Key`. A batch is all or nothing: one bad event rejects the request."""
    state: AppState = request.app.state.segmently
    project = require_write_project(state.keys, write_key_from_headers(request))
    limits = state.limits
    body = maybe_gunzip(await read_body(request, limits.max_batch_body),
                        request.headers.get("content-encoding"), limits.max_batch_body)
    payload = parse_json(body)
    if not (isinstance(payload, dict) and "events" in payload):
        check_body_size(len(body), limits.max_single_body)
    messages = parse_native(payload, utcnow(), limits)
    if not messages:
        raise InputError("events is empty", code="empty_batch")
    accepted = await state.write(project.project_id, messages)
    return {"success": True, "accepted": accepted}
