"""Ingestion limits and the checks that enforce them.

Defaults follow Segment's tracking API (32 KB per event, 500 KB per batch is Segment's;
we accept larger batches because self-hosted importers send big ones): a single-event
body may be 2 MB, a batch body 20 MB, one event 1 MB once serialized, JSON nested at most
32 levels, and a timestamp at most 1 day in the future.
"""

from __future__ import annotations

import os
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

    @classmethod
    def from_env(cls) -> Limits:
        """SEGMENTLY_MAX_BATCH_BODY=... style overrides, in bytes / seconds / counts."""
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = os.environ.get(f"SEGMENTLY_{name.upper()}")
            if raw is not None:
                values[name] = timedelta(seconds=float(raw)) if name == "max_future" else int(raw)
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
