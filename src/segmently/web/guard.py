"""What every HTTP request meets before a route runs (an ASGI middleware).

1. Its target: the path and query string must be percent-encoded ASCII whose escapes
   decode to UTF-8 without NUL; otherwise a 400 `bad_request` (a NUL would reach
   PostgreSQL, which cannot hold one in text; a malformed escape has no one meaning).
2. The routed path: escapes are decoded as usual except `%2F` and `%25`, which stay
   encoded. Starlette routes on the decoded path, so a user id holding a `/` (sent as
   `%2F`) would otherwise split into two path segments; kept encoded, `{user_id}` matches
   it whole and the route decodes it once (`path_value`). `%25` stays encoded with it, so a
   literal `%2F` in an id (sent `%252F`) stays distinguishable from a `/`.
3. Its body: at most the route's limit (`body_limit`: Content-Length first, refused
   before anything is read; then counted while streaming) and received within
   `Limits.body_timeout` seconds of the headers. Past either, the route's read fails
   and the answer is 413 `payload_too_large` or 408 `body_timeout`; a response sent while
   the body is still unread says `Connection: close`, so the server stops reading it.

Routes still authenticate before they read (see `web/auth.py` `authenticated_route`);
this only bounds what an unauthenticated sender can make the server hold.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote, unquote_to_bytes

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from segmently.collect.errors import InputError
from segmently.collect.limits import Limits

_MALFORMED = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_OUTSIDE_ASCII = re.compile(rb"[^\x21-\x7e]")
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_KEPT = {0x2F, 0x25}  # '/' and '%': stay escaped in the routed path
POSTHOG_PATHS = ("/batch", "/capture", "/e", "/i/v0/e", "/track")  # web/posthog_routes.py


class BadTarget(InputError):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="bad_request", status=400)


class BodyError(InputError):
    """The body went over its limit or took too long: raised from `receive`, so the route
    stops reading; the middleware makes sure this is what the client hears."""


def _check(raw: bytes, what: str) -> bytes:
    """The decoded bytes of a path or query, or BadTarget saying what is wrong."""
    if _OUTSIDE_ASCII.search(raw):
        raise BadTarget(f"{what} contains a character that is not percent-encoded ASCII")
    if _MALFORMED.search(raw):
        raise BadTarget(f"{what} has a '%' not followed by two hexadecimal digits")
    decoded = unquote_to_bytes(raw)
    if b"\x00" in decoded:
        raise BadTarget(f"{what} contains a NUL character")
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadTarget(f"{what} is not UTF-8 once percent-decoded") from exc
    return decoded


def routed_path(raw_path: bytes) -> str:
    """The path routes match: every escape decoded except `%2F` and `%25`."""
    _check(raw_path, "the path")

    def one(match: re.Match[bytes]) -> bytes:
        byte = int(match.group(1), 16)
        return match.group(0).upper() if byte in _KEPT else bytes([byte])

    return _ESCAPE.sub(one, raw_path).decode("utf-8")


def path_value(value: str) -> str:
    """A path parameter as the client meant it (`%2F` -> `/`, `%25` -> `%`): the only
    escapes left in a routed path."""
    return unquote(value) if "%" in value else value


def body_limit(path: str, limits: Limits) -> int:
    """The most a request to `path` may send. Ingestion routes take batches (each route
    checks its finer limit: single events are smaller); the CLI's file import is bounded
    by the control token's holder; everything else is JSON or a form of a few KB."""
    if path.startswith("/internal/v1/append"):
        return limits.max_import_body
    if path.startswith("/v1/") or path.rstrip("/") in POSTHOG_PATHS:
        return limits.max_batch_body
    if path == "/ui/login":
        return limits.max_form_body
    return limits.max_api_body


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value != b"0"
        if name == b"transfer-encoding":
            return True
    return False


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = orjson.dumps({"code": code, "message": message})
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """The ASGI middleware: `app.add_middleware(RequestGuard, limits=...)`."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            raw = scope.get("raw_path")
            if raw is not None:
                scope["path"] = routed_path(raw)
            _check(scope.get("query_string", b""), "the query string")
        except BadTarget as exc:
            await _answer(send, exc.status, exc.code, exc.message)
            return
        limit = body_limit(scope["path"], self.limits)
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _answer(send, 413, "payload_too_large", f"request body is {declared} bytes;"
                          f" the limit is {limit} bytes")
            return
        await _Exchange(self.app, scope, receive, send, limit, self.limits.body_timeout).run()


class _Exchange:
    """One request: the body read under its limit and deadline, and the response."""

    def __init__(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int,
                 timeout: float) -> None:
        self.app, self.scope, self._receive, self._send = app, scope, receive, send
        self.limit, self.timeout = limit, timeout
        self.deadline = asyncio.get_running_loop().time() + timeout
        self.size = 0
        self.complete = not _has_body(scope)  # the whole body was received
        self.failure: BodyError | None = None
        self.started = False  # a response start went out
        self.replaced = False  # ...ours, instead of the app's

    async def run(self) -> None:
        try:
            await self.app(self.scope, self.receive, self.send)
        except Exception:
            if self.failure is None:
                raise
        if self.failure is not None and not self.started:
            await self._failure_response()

    async def receive(self) -> Message:
        if self.failure is not None:
            raise self.failure
        if self.complete:  # nothing more to read: a wait for disconnect is not bounded
            return await self._receive()
        remaining = self.deadline - asyncio.get_running_loop().time()
        try:
            message = await asyncio.wait_for(self._receive(), max(remaining, 0))
        except TimeoutError:
            self.failure = BodyError(f"the request body did not arrive within {self.timeout:g}"
                                     " seconds", code="body_timeout", status=408)
            raise self.failure from None
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.size > self.limit:
                self.failure = BodyError(f"request body is over {self.size} bytes; the limit "
                                         f"is {self.limit} bytes", code="payload_too_large",
                                         status=413)
                raise self.failure
        else:
            self.complete = True  # disconnected: nothing more will come
        return message

    async def send(self, message: Message) -> None:
        if self.replaced:
            return
        if message["type"] == "http.response.start":
            if self.failure is not None and message["status"] != self.failure.status:
                self.replaced = True  # e.g. FastAPI's 400 for a body it could not read
                await self._failure_response()
                return
            self.started = True
            if not self.complete or self.failure is not None:
                message = {**message, "headers": [
                    *[(k, v) for k, v in message.get("headers", []) if k != b"connection"],
                    (b"connection", b"close")]}
        await self._send(message)

    async def _failure_response(self) -> None:
        assert self.failure is not None
        self.started = True
        await _answer(self._send, self.failure.status, self.failure.code, self.failure.message)
