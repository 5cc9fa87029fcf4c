"""Turning raw request bodies into Python values, with errors that say what was wrong.

Called by the ingestion routes (`web/native_routes.py`, `web/segment_routes.py`),
`posthog_decode.py` and `files.py`; the values go on to a format's mapping (`native.py`,
`segment.py`, `posthog.py`)."""

from __future__ import annotations

import gzip
import json
import math
import re
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
    """JSON as RFC 8259 has it: NaN, Infinity and numbers beyond float64 are refused.

    A string holding a lone UTF-16 surrogate (`"\\ud83d"`: a JavaScript client that cut an
    emoji in half) is not refused: the whole batch would be lost for one character that no
    UTF-8 store can hold. It reads as U+FFFD, as every UTF-8 decoder reads one."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "surrogate in string" in str(exc):  # an escape; not bytes that are not UTF-8
            return _parse_with_lone_surrogates(body, what)
        raise InputError(f"{what} is not valid JSON: {exc}", code="malformed_json") from exc


_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:32]} is out of range for a float64")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_with_lone_surrogates(body: bytes | str, what: str) -> Any:
    """The slow path (Python's json keeps lone surrogates), then each string mended."""
    try:
        value = json.loads(body, parse_float=_finite, parse_constant=_refuse_constant)
    except RecursionError:
        raise InputError(f"{what} is nested too deeply", code="too_deep") from None
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError included
        raise InputError(f"{what} is not valid JSON: {exc}", code="malformed_json") from exc
    return _mend_surrogates(value)


def _mend(text: str) -> str:
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _mend_surrogates(value: Any) -> Any:
    """Replace lone surrogates in every string, keys included (iterative: no recursion)."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        item = parent[key]
        if isinstance(item, str):
            parent[key] = _mend(item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
        elif isinstance(item, dict):
            mended = {_mend(k): v for k, v in item.items()}
            parent[key] = mended
            stack.extend((mended, k) for k in mended)
    return root[0]


__all__ = ["GZIP_MAGIC", "gunzip", "gzip", "maybe_gunzip", "parse_json"]
