"""Ingestion limits and the checks that enforce them.

Defaults follow Segment's tracking API (32 KB per event, 500 KB per batch is Segment's;
we accept larger batches because self-hosted importers send big ones): a single-event
body may be 2 MB, a batch body 20 MB, one event 1 MB once serialized, JSON nested at most
32 levels, and a timestamp at most 1 day in the future.

Every other request is bounded too (`web/guard.py` enforces these before a route runs):
a body for the segment API, rule previews and the CLI's `/internal/v1/call` at most 1 MB
(a rule is a few KB), the sign-in form 16 KB, a file import the CLI streams to
`/internal/v1/append` 1 GB; a request's line and headers must arrive within 10 s (of the
connection, or of the request's first byte), and its body within 10 s of the headers.
Ingestion bodies over 64 KB (or compressed) are decoded and validated in worker threads,
at most 2 at a time, so a big batch never stalls the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from segmently.collect.errors import InputError


class Limits(BaseModel):
    max_single_body: int = 2 * 1024 * 1024
    max_batch_body: int = 20 * 1024 * 1024
    max_event_bytes: int = 1024 * 1024
    max_depth: int = 32
    max_future: timedelta = timedelta(days=1)
    max_batch_events: int = 100_000
    max_api_body: int = 1024 * 1024  # segment API, rule preview, /internal/v1/call
    max_form_body: int = 16 * 1024  # the UI's sign-in form
    max_import_body: int = 1 << 30  # converted rows the CLI streams (control token only)
    body_timeout: float = 10.0  # seconds from a request's headers to the end of its body
    head_timeout: float = 10.0  # seconds for a request line and headers (web/serving.py)
    max_parse_threads: int = 2  # big ingestion bodies decoded at once, off the event loop

    @classmethod
    def from_env(cls) -> Limits:
        """SEGMENTLY_MAX_BATCH_BODY=... style overrides, in bytes / seconds / counts
        (SEGMENTLY_BODY_TIMEOUT in seconds)."""
        values: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            raw = os.environ.get(f"SEGMENTLY_{name.upper()}")
            if raw is None:
                continue
            if info.annotation is timedelta:
                values[name] = timedelta(seconds=float(raw))
            elif info.annotation is float:
                values[name] = float(raw)
            else:
                values[name] = int(raw)
        return cls(**values)


def check_body_size(size: int, limit: int) -> None:
    if size > limit:
        raise InputError(
            f"request body is {size} bytes; the limit is {limit} bytes",
            code="payload_too_large",
            status=413,
        )


def check_depth(value: Any, max_depth: int, where: str) -> None:
    """Reject JSON nested deeper than max_depth, naming where (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            raise InputError(
                f"{where} is nested more than {max_depth} levels deep", code="too_deep"
            )
        stack.extend((child, depth + 1) for child in children)
