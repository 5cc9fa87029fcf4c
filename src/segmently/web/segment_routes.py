"""Segment's HTTP Tracking API, so Segment SDKs can point their host at Segmently.

Answers as the SDKs expect: 200 `{"success": true}` once the calls are committed; errors
are `{"code", "message"}` (the app's InputError handler), which analytics-python reads
into its APIError. It retries 5xx, 408 and 429 and treats other 4xx as final, so bad
input (400), a bad key (401) and a body too large (413) are never resent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request

from segmently.collect.decode import maybe_gunzip, parse_json
from segmently.collect.limits import Limits
from segmently.collect.segment import BATCH, find_write_key, parse_segment
from segmently.store import Message, utcnow
from segmently.store.projects import Project
from segmently.store.rows import MESSAGE_TYPES
from segmently.web.auth import basic_user, require_write_project, write_key_from_headers
from segmently.web.body import decode, read_body
from segmently.web.state import AppState

router = APIRouter(tags=["ingestion: Segment"])


def _parse(body: bytes, encoding: str | None, limit: int) -> Any:
    return parse_json(maybe_gunzip(body, encoding, limit))


def _messages(payload: Any, kind: str, limits: Limits, now: datetime) -> list[Message]:
    return parse_segment(payload, kind, now, limits)


async def _ingest(request: Request, kind: str) -> dict[str, bool]:
    """The key is checked before the body is read when it comes as Basic auth (the SDKs'
    way); a key inside the body (`writeKey`) can only be checked once the body, bounded
    by the route's limit, is parsed, and then before its events are validated."""
    state: AppState = request.app.state.segmently
    limits = state.limits
    limit = limits.max_batch_body if kind == BATCH else limits.max_single_body
    project: Project | None = None
    if basic_user(request):
        project = await require_write_project(state.keys, basic_user(request))
    body = await read_body(request, limit)
    payload = await decode(request, body, limits, _parse, body,
                           request.headers.get("content-encoding"), limit)
    if project is None:
        key = find_write_key(payload) or write_key_from_headers(request)
        project = await require_write_project(state.keys, key)
    messages = await decode(request, body, limits, _messages, payload, kind, limits, utcnow())
    await state.write(project.project_id, messages)
    return {"success": True}


def _endpoint(kind: str) -> Callable[[Request], Awaitable[dict[str, bool]]]:
    async def endpoint(request: Request) -> dict[str, bool]:
        return await _ingest(request, kind)

    endpoint.__doc__ = (
        "Segment batch: `{\"batch\": [calls...], \"sentAt\": ..., \"context\": ...}`. "
        "All or nothing." if kind == BATCH else f"One Segment {kind} call.")
    return endpoint


for _kind in (BATCH, *MESSAGE_TYPES):
    router.add_api_route(f"/v1/{_kind}", _endpoint(_kind), methods=["POST"],
                         name=f"segment_{_kind}", summary=f"Segment {_kind}")
