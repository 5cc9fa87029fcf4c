"""Segment archives: JSON lines of Segment API calls (`--from segment`, `--format segment`).

Each line is one call (track, identify, page, screen, group, alias) and is mapped by the
tracking API's own mapping (`collect/segment.py`, whose docstring holds the rules), so a
file and a live request mean the same thing, with one difference: a file is history, so
its time is taken as written. `timestamp` (else `originalTimestamp`) is read by the import
rules (`collect/timestamps.py`) and `sentAt` is ignored (it corrects a live client's clock
against now). `messageId` is the message id; a call without one gets `imp_<md5>:<n>`.
As in the API, fields Segment adds that Segmently does not model (`integrations`,
`receivedAt`, `projectId`, `_metadata`, ...) are ignored rather than refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from segmently.collect import segment
from segmently.collect.formats import SOURCE
from segmently.collect.jsonrows import Produced, RowContext, Stamp

_PENDING = "imp_pending"  # replaced by the content id (jsonrows) before anything is stored


class SegmentRows:
    name: str = "segment"
    json_text_fields: tuple[str, ...] = ("properties", "traits", "context")

    def timestamp(self, row: dict[str, Any]) -> Stamp:
        if row.get("timestamp") is not None:
            return Stamp(row["timestamp"], "timestamp")
        return Stamp(row.get("originalTimestamp"), "timestamp")

    def messages(self, row: dict[str, Any], ts: datetime | None,
                 ctx: RowContext) -> list[Produced]:
        call = {k: v for k, v in row.items() if k not in ("sentAt", "originalTimestamp")}
        call["timestamp"] = ts
        own_id = row.get("messageId") is not None
        if not own_id:
            call["messageId"] = _PENDING
        msg = segment.to_message(call, segment.BATCH, ctx.now, None, {}, ctx.limits, "")
        msg.source = SOURCE
        return [Produced(msg, None if own_id else row)]
