"""Reading request bodies with a hard size limit, before anything is parsed."""

from __future__ import annotations

from starlette.requests import Request

from segmently.collect.limits import check_body_size


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        check_body_size(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_size(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)
