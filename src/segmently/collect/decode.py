"""Turning raw request bodies into Python values, with errors that say what was wrong."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import orjson

from segmently.collect.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress gzip, refusing to inflate past `limit` bytes (zip bombs)."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InputError(f"body is not valid gzip: {exc}", code="bad_encoding") from exc
    if len(out) > limit:
        raise InputError(
            f"decompressed body is larger than the limit of {limit} bytes",
            code="payload_too_large",
            status=413,
        )
    if not inflater.eof:
        raise InputError("body is a truncated gzip stream", code="bad_encoding")
    return out


def maybe_gunzip(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Gunzip when declared (or when the gzip magic says so); refuse other encodings
    rather than parse compressed bytes as JSON."""
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity", "gzip"):
        raise InputError(f"unsupported Content-Encoding {encoding[:32]!r}; send gzip or none",
                         code="unsupported_encoding", status=415)
    if encoding == "gzip" or body[:2] == GZIP_MAGIC:
        return gunzip(body, limit)
    return body


def parse_json(body: bytes | str, what: str = "body") -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{what} is not valid JSON: {exc}", code="malformed_json") from exc


__all__ = ["GZIP_MAGIC", "gunzip", "gzip", "maybe_gunzip", "parse_json"]
