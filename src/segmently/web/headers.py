"""Security headers on every response of the app: pages, API answers, static files.

The UI shows data that anyone holding the public write key can send (event names, trait
values, user ids), so a value must never run as script in a signed-in browser, and no
other site may frame the pages (clickjacking) or learn their URLs (which name users and
segments) from a Referer. The policy:

- `Content-Security-Policy`: everything from this server only; scripts only from files it
  serves (`script-src 'self'`: no inline script, no `on...=` attribute, no
  `javascript:` URL, no eval); no plugins (`object-src 'none'`), no `<base>`
  (`base-uri 'none'`), forms post only here, and no framing (`frame-ancestors 'none'`).
  Styles allow `'unsafe-inline'`: plotly.js and Swagger UI write `style` attributes and
  `<style>` elements as they draw; a style cannot run script, and `img-src`/`font-src`
  'self' keep a style from loading anything elsewhere. `img-src` allows `data:` URLs,
  which plotly and Swagger UI use for icons.
- `X-Frame-Options: DENY` for browsers older than `frame-ancestors`,
  `X-Content-Type-Options: nosniff` (a JSON answer or a CSV export is never sniffed into
  HTML), `Referrer-Policy: no-referrer`.

A response that sets a header itself keeps its own value. The middleware is plain ASGI
(it only adds headers to `http.response.start`), so streaming bodies pass untouched.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class SecurityHeaders:
    """ASGI middleware adding SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
