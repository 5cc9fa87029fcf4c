"""Reading request bodies with a hard size limit, and decoding big ones off the event loop.

`read_body` checks the route's own limit (a single event is smaller than a batch) on top of
the one `web/guard.py` applies to every request. `decode` runs the gunzip, JSON parse and
validation of a body: inline when it is small and uncompressed (the common SDK call: a
thread hop would cost more than the work), else in a worker thread, at most
`Limits.max_parse_threads` at once, so a 100,000-event batch never stalls the event loop
(other requests, `/healthz` and membership lookups, answer meanwhile) and many big batches
hold a bounded number of threads and parsed batches in memory; the rest wait their turn
with only their raw bytes.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect, Request

from segmently.collect.errors import InputError
from segmently.collect.limits import Limits, check_body_size

T = TypeVar("T")
INLINE_BYTES = 64 * 1024  # bodies up to this size (uncompressed) are decoded on the loop
_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
    weakref.WeakKeyDictionary()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        check_body_size(int(declared), limit)
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            check_body_size(size, limit)
            chunks.append(chunk)
    except ClientDisconnect:  # nobody is left to answer: a 400 no one reads, no traceback
        raise InputError("the client disconnected before sending the whole body",
                         code="client_disconnected") from None
    return b"".join(chunks)


def inline(body: bytes, request: Request) -> bool:
    """Small plain JSON: not compressed or encoded (gzip, PostHog's lz64 or base64, a
    form) since those may inflate to the batch limit."""
    encoding = request.headers.get("content-encoding", "").strip().lower()
    return (len(body) <= INLINE_BYTES and body.lstrip()[:1] in (b"{", b"[")
            and encoding in ("", "identity") and "compression" not in request.query_params)


async def decode(request: Request, body: bytes, limits: Limits,
                 fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`: on the loop for a small body, else in a bounded worker thread."""
    if inline(body, request):
        return fn(*args)
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(max(1, limits.max_parse_threads))
    async with gate:
        return await asyncio.to_thread(fn, *args)
