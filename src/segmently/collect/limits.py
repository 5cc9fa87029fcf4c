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

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from pydantic import BaseModel

from segmently.collect.errors import InputError
from segmently.settings import Settings
from segmently.settings import load as load_settings

_DEFAULT = Settings()  # the defaults are declared once, in segmently/settings.py


class Limits(BaseModel):
    """The request and event limits, from the settings of the same names."""

    max_single_body: int = _DEFAULT.max_single_body
    max_batch_body: int = _DEFAULT.max_batch_body
    max_event_bytes: int = _DEFAULT.max_event_bytes
    max_depth: int = _DEFAULT.max_depth
    max_future: timedelta = _DEFAULT.max_future
    max_batch_events: int = _DEFAULT.max_batch_events
    max_api_body: int = _DEFAULT.max_api_body  # segment API, rule preview, /internal/v1/call
    max_form_body: int = _DEFAULT.max_form_body  # the UI's sign-in form
    max_import_body: int = _DEFAULT.max_import_body  # rows the CLI streams (control token)
    body_timeout: float = _DEFAULT.body_timeout  # from a request's headers to its body's end
    head_timeout: float = _DEFAULT.head_timeout  # a request line and headers (web/serving.py)
    max_parse_threads: int = _DEFAULT.max_parse_threads  # big bodies decoded at once, off loop

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(**{name: getattr(settings, name) for name in cls.model_fields})

    @classmethod
    def from_env(cls) -> Limits:
        """The limits of the environment's settings (SEGMENTLY_MAX_BATCH_BODY=... in bytes,
        seconds, counts), for a caller without `Settings`; `serve` and `create_app` use
        `from_settings` with the settings loaded once."""
        return cls.from_settings(load_settings())


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
