"""How `segmently serve` runs uvicorn: the options, and a request-head timeout.

uvicorn bounds only the idle time between two requests on a connection (keep-alive, 5 s).
A connection that sends nothing, or half a request line and headers, is held for as long
as the client likes: a thousand of them cost a thousand sockets and buffers for good.
`BoundedHead` closes such a connection with a 408 once `Limits.head_timeout` seconds pass
from the connection (or from the first byte of a request) without a complete head. The
body that follows is bounded by `web/guard.py` (`Limits.body_timeout`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from segmently.collect.limits import Limits

try:  # uvicorn's default protocol when httptools is installed (segmently depends on it)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - without httptools uvicorn falls back to h11
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


def _timeout_response(seconds: float) -> bytes:
    body = orjson.dumps({"code": "head_timeout", "message": "the request line and headers did"
                         f" not arrive within {seconds:g} seconds"})
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
            + body)


def bounded_head(timeout: float) -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol with a deadline on each request's head."""
    if HttpToolsProtocol is None:
        return None

    class BoundedHead(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()  # the first request's first byte must come in time too

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_timer = self.loop.call_later(timeout, self._expired)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _expired(self) -> None:
            self._head_timer = None
            busy = self.cycle is not None and not self.cycle.response_complete
            if busy or self.transport.is_closing():  # a request is being answered
                return
            self.transport.write(_timeout_response(timeout))
            self.transport.close()

    return BoundedHead


def uvicorn_options(limits: Limits) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` beyond the app, host and port."""
    options: dict[str, Any] = {"log_level": "warning", "timeout_keep_alive": 5}
    protocol = bounded_head(limits.head_timeout)
    if protocol is not None:
        options["http"] = protocol
    return options
