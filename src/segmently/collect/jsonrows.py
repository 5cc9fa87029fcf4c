"""Row-by-row conversion: JSON lines, and the rows of vendor exports (any container).

Each row is its own object and may be malformed on its own, so rows are mapped one by one
into `Message`s by a `RowFormat` (generic JSON lines in `formats.py`, each vendor in
`vendors/`). What every format shares is done here, a chunk of rows at a time:

1. the format names where a row's timestamp is (`RowFormat.timestamp`);
2. all of the chunk's timestamps are read at once by `timestamps.TimestampParser`, the
   same Ibis expressions the tabular path runs, so a JSON line reads like a CSV cell;
3. the format maps the row (`RowFormat.messages`), raising InputError naming the field;
4. messages the row gave no id get `imp_<md5 of the row>:<n>` (n: that content's
   occurrence in the file, `occurrences.py`): identical lines are all kept, a re-import
   stores none of them again.

A bad row is reported with its line and never stops the others. The chunk's messages
become one RowBatch (`store.to_rows`) for the importer's sink.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import orjson

from segmently.collect import timestamps
from segmently.collect.converted import BadRow, Converted
from segmently.collect.errors import InputError
from segmently.collect.limits import Limits
from segmently.collect.occurrences import OccurrenceCounter
from segmently.collect.timestamps import TimestampParser, TimestampRules
from segmently.store.rows import Message, to_rows


@dataclass
class Stamp:
    """Where a row's timestamp is: its raw value and the field's name for messages. A
    missing one that is not `required` reaches `messages` as None (profiles: import time)."""

    value: Any
    field: str = "timestamp"
    required: bool = True


@dataclass
class Produced:
    """A message mapped from a row; `content` is what to hash for its id when the row
    gave it none (None: `message.message_id` is the row's own)."""

    message: Message
    content: Any = None


@dataclass
class RowContext:
    """What a format's mapping may use: the import's clock and limits, the timestamp
    parser (for a row holding many timestamps) and per-file state of its own."""

    now: datetime
    limits: Limits
    timestamps: TimestampParser
    state: dict[str, Any] = field(default_factory=dict)


class RowFormat(Protocol):
    """One way of reading rows (generic JSON, Segment, PostHog, Mixpanel, Amplitude)."""

    name: str
    # Fields that arrive as JSON text when the rows come from a CSV or Parquet file.
    json_text_fields: tuple[str, ...]

    def timestamp(self, row: dict[str, Any]) -> Stamp: ...

    def messages(self, row: dict[str, Any], ts: datetime | None,
                 ctx: RowContext) -> list[Produced]: ...


@dataclass
class RowItem:
    """One row of the file: its line, and the object or why it could not be read."""

    line: int
    row: Any = None
    error: str | None = None


def content_digest(content: Any) -> bytes:
    """MD5 of a row's content as canonical JSON (keys sorted): the same row, the same id."""
    raw = orjson.dumps(content, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                       default=str)
    return hashlib.md5(raw, usedforsecurity=False).digest()


def decode_text_fields(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """CSV and Parquet exports hold objects as JSON text (PostHog's `properties`)."""
    if not any(isinstance(row.get(name), str) for name in names):
        return row
    out = dict(row)
    for name in names:
        value = out.get(name)
        if isinstance(value, str):
            if not value.strip():
                out[name] = None
                continue
            try:
                out[name] = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{name} is not valid JSON: {exc}",
                                 code="malformed_json") from None
    return out


class RowConverter:
    """Converts the chunks of one file, in order (occurrences count from its start)."""

    def __init__(self, fmt: RowFormat, project_id: str, limits: Limits,
                 rules: TimestampRules | None = None,
                 constants: dict[str, str] | None = None) -> None:
        self.fmt = fmt
        self.project_id = project_id
        self.limits = limits
        self.constants = dict(constants or {})
        self.parser = TimestampParser(rules or TimestampRules())
        self.occurrences = OccurrenceCounter()
        self.state: dict[str, Any] = {}

    def close(self) -> None:
        self.parser.close()

    def convert(self, items: list[RowItem], now: datetime, received_at: datetime) -> Converted:
        bad: list[BadRow] = []
        pending: list[tuple[RowItem, Stamp]] = []
        for item in items:
            if item.error is not None:
                bad.append(BadRow(item.line, item.error))
                continue
            if not isinstance(item.row, dict):
                bad.append(BadRow(item.line, "a line must hold a JSON object, got "
                                             f"{type(item.row).__name__}"))
                continue
            if self.constants:
                item.row = {**item.row, **self.constants}
            try:
                if self.fmt.json_text_fields:
                    item.row = decode_text_fields(item.row, self.fmt.json_text_fields)
                pending.append((item, self.fmt.timestamp(item.row)))
            except InputError as exc:
                bad.append(BadRow(item.line, exc.message))
        parsed = self.parser.parse_values([stamp.value for _, stamp in pending])
        ctx = RowContext(now, self.limits, self.parser, self.state)
        produced: list[Produced] = []
        for (item, stamp), ts in zip(pending, parsed, strict=True):
            if isinstance(ts, str) and (ts != "missing" or stamp.required):
                bad.append(BadRow(item.line, timestamps.describe(ts, stamp.value, stamp.field)))
                continue
            try:
                out = self.fmt.messages(item.row, ts if isinstance(ts, datetime) else None, ctx)
            except InputError as exc:
                bad.append(BadRow(item.line, exc.message))
                continue
            produced.extend(out)
        self._name(produced)
        messages = [p.message for p in produced]
        bad.sort(key=lambda b: b.line)
        return Converted(to_rows(self.project_id, messages, received_at), bad)

    def _name(self, produced: list[Produced]) -> None:
        """`imp_<md5>:<n>` for the messages without an id of their own, in file order."""
        unnamed = [p for p in produced if p.content is not None]
        if not unnamed:
            return
        digests = [content_digest(p.content) for p in unnamed]
        keys = np.array([int.from_bytes(d[:8], "big") for d in digests], dtype=np.uint64)
        numbers = self.occurrences.number(keys)
        for p, digest, n in zip(unnamed, digests, numbers.tolist(), strict=True):
            p.message.message_id = f"imp_{digest.hex()}:{n}"
