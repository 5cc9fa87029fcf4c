"""Segmently's native ingestion endpoint, `POST /v1/events`: the body is read and decoded
(`web/body.py`), mapped by `collect/native.py`, and the messages go to the group-commit
writer (`AppState.write`), answered once committed."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request

from segmently.collect.decode import maybe_gunzip, parse_json
from segmently.collect.errors import InputError
from segmently.collect.limits import Limits, check_body_size
from segmently.collect.native import parse_native
from segmently.store import Message, utcnow
from segmently.web.auth import require_write_project, write_key_from_headers
from segmently.web.body import decode, read_body
from segmently.web.state import AppState

router = APIRouter(tags=["ingestion"])


def _messages(body: bytes, encoding: str | None, limits: Limits,
              now: datetime) -> list[Message]:
    """Gunzip, parse and validate: CPU work, run off the loop for big bodies."""
    body = maybe_gunzip(body, encoding, limits.max_batch_body)
    payload = parse_json(body)
    if not (isinstance(payload, dict) and "events" in payload):
        check_body_size(len(body), limits.max_single_body)
    return parse_native(payload, now, limits)


@router.post("/v1/events", summary="Send events in Segmently's native format")
async def post_events(request: Request) -> dict[str, object]:
    """One event, or `{"events": [...]}`. Write key as Bearer token, Basic user or
    `X-Write-Key`. A batch is all or nothing: one bad event rejects the request."""
    state: AppState = request.app.state.segmently
    project = await require_write_project(state.keys, write_key_from_headers(request))
    limits = state.limits
    body = await read_body(request, limits.max_batch_body)
    messages = await decode(request, body, limits, _messages, body,
                            request.headers.get("content-encoding"), limits, utcnow())
    if not messages:
        raise InputError("events is empty", code="empty_batch")
    accepted = await state.write(project.project_id, messages)
    return {"success": True, "accepted": accepted}
