"""PostHog's capture endpoints, so PostHog SDKs can point their host at Segmently.

Answers as PostHog's capture does, which its SDKs read: 200 `{"status": 1}` once the
events are committed; errors `{"type", "code", "detail"}` (plus `message`, the field our
other endpoints use) with 400/401/413. CORS headers let posthog-js post from browsers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from segmently.collect.errors import InputError
from segmently.collect.limits import Limits, check_body_size
from segmently.collect.posthog import find_token, parse_posthog
from segmently.collect.posthog_decode import Decoded, decode_query, decode_request
from segmently.store import Message, utcnow
from segmently.store.projects import Project
from segmently.web.auth import KeyCache
from segmently.web.body import decode, read_body
from segmently.web.state import AppState

router = APIRouter(tags=["ingestion: PostHog"])
PATHS = ("/batch", "/capture", "/e", "/i/v0/e", "/track")
KEY_HELP = "send the project's write key as api_key or token"


def _cors(request: Request) -> dict[str, str]:
    origin = request.headers.get("origin")
    headers = {"Access-Control-Allow-Origin": origin or "*",
               "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
               "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Content-Encoding"}
    if origin:
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Vary"] = "Origin"
    return headers


def _error(request: Request, exc: InputError) -> JSONResponse:
    kind = "authentication_error" if exc.status == 401 else "validation_error"
    body = {"type": kind, "code": exc.code, "detail": exc.message, "attr": None,
            "message": exc.message}
    return JSONResponse(body, status_code=exc.status, headers=_cors(request))


async def _project(keys: KeyCache, token: str | None) -> Project:
    if not token:
        raise InputError(f"API key not provided: {KEY_HELP}", code="missing_api_key", status=401)
    project = await keys.write_project(token)
    if project is None:
        raise InputError(f"API key is not valid: {KEY_HELP}", code="invalid_api_key", status=401)
    return project


def _decoded(body: bytes | None, headers: Any, params: dict[str, str],
             limits: Limits) -> Decoded:
    """A POST body, or (`body` None) a GET's `data` query parameter, decoded."""
    if body is None:
        decoded = decode_query(params, limits.max_batch_body)
    else:
        decoded = decode_request(
            body, content_type=headers.get("content-type"),
            content_encoding=headers.get("content-encoding"), params=params,
            limit=limits.max_batch_body)
    if isinstance(decoded.payload, dict) and "batch" not in decoded.payload:
        check_body_size(decoded.size, limits.max_single_body)
    return decoded


def _messages(decoded: Decoded, limits: Limits, now: datetime,
              account_group: str | None) -> list[Message]:
    return parse_posthog(decoded.payload, now, limits, fields=decoded.fields,
                         account_group=account_group)


async def _capture(request: Request) -> JSONResponse:
    """The token travels inside the body (PostHog's way), so the body, bounded, is read
    and decoded first; the token is checked before the events are validated."""
    state: AppState = request.app.state.segmently
    limits = state.limits
    params = dict(request.query_params)
    get = request.method == "GET"
    body = params.get("data", "").encode() if get else \
        await read_body(request, limits.max_batch_body)
    decoded = await decode(request, body, limits, _decoded, None if get else body,
                           request.headers, params, limits)
    project = await _project(state.keys, find_token(decoded.payload, decoded.fields))
    messages = await decode(request, body, limits, _messages, decoded, limits, utcnow(),
                            state.settings.posthog_account_group)
    await state.write(project.project_id, messages)
    return JSONResponse({"status": 1}, headers=_cors(request))


async def capture(request: Request) -> Response:
    """Capture one event, `{"batch": [...]}` or an array of events, in any PostHog
    encoding (JSON, gzip, lz64, base64, form `data=`). All or nothing."""
    try:
        return await _capture(request)
    except InputError as exc:
        return _error(request, exc)


async def preflight(request: Request) -> Response:
    return Response(status_code=200, headers=_cors(request))


for _path in PATHS:
    for _spelling in (_path + "/", _path):
        _shown = _spelling.endswith("/")
        for _method in ("POST", "GET"):  # one route each: an operation id per method
            router.add_api_route(_spelling, capture, methods=[_method],
                                 include_in_schema=_shown,
                                 summary=f"PostHog capture ({_path}/)")
        router.add_api_route(_spelling, preflight, methods=["OPTIONS"], include_in_schema=False)
