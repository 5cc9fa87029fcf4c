"""File formats of `segmently import`: detection, column mappings, and JSON-line rows.

Tabular files (CSV, Parquet) are converted column-wise by `collect/tabular.py`; JSON
lines are parsed one by one (orjson) and normalized here into `Message` objects, because
each line is its own object and may be malformed on its own.

Three JSON-line shapes are understood: generic rows (any keys, named by the same column
mapping as tables), Segment messages (`type`, `event`, `userId`, `anonymousId`,
`properties`, `traits`, `messageId`, ...) and PostHog exports (`event`, `distinct_id`,
`properties` with `$set`/`$set_once`, `uuid`). Segment and PostHog rows go through the
HTTP APIs' own mappings (collect/segment.py, collect/posthog.py), so a file and a live
request mean the same thing, except for time: a file's timestamps are taken as written.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from segmently.collect import posthog, segment
from segmently.collect.common import as_id, as_name, as_object, check_message, parse_timestamp
from segmently.collect.decode import parse_json
from segmently.collect.errors import InputError
from segmently.collect.limits import Limits
from segmently.store.rows import MESSAGE_TYPES, Message

FORMATS = ("jsonl", "csv", "parquet", "segment", "posthog")
JSON_FORMATS = ("jsonl", "segment", "posthog")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
              ".parquet": "parquet", ".pq": "parquet"}

TARGETS = ("user_id", "anonymous_id", "account_id", "event", "timestamp", "message_id", "type")
ID_TARGETS = ("user_id", "anonymous_id", "account_id", "message_id")
# Column names recognised without a --map (exact name first, then Segment's camelCase).
ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "userId"),
    "anonymous_id": ("anonymous_id", "anonymousId"),
    "account_id": ("account_id", "accountId", "groupId"),
    "event": ("event",),
    "timestamp": ("timestamp",),
    "message_id": ("message_id", "messageId"),
    "type": ("type",),
}
DEFAULT_NAMES = {"identify": "$identify", "page": "$page", "screen": "$screen",
                 "group": "$group", "alias": "$alias"}
SOURCE = "import"


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}",
                             code="bad_format")
        return fmt
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise InputError(f"cannot tell the format of {path.name!r} from its extension; "
                         f"pass --format ({', '.join(FORMATS)})", code="bad_format")
    return found


def parse_mapping(text: str | None) -> dict[str, str]:
    """`user_id=customer,event=action` -> {"user_id": "customer", "event": "action"}."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        target, sep, source = part.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not source:
            raise InputError(f"--map entry {part.strip()!r} must look like target=column",
                             code="bad_mapping")
        if target not in TARGETS:
            raise InputError(f"--map target {target!r} is not one of {', '.join(TARGETS)}",
                             code="bad_mapping")
        out[target] = source
    return out


def resolve_mapping(columns: list[str], explicit: dict[str, str]) -> dict[str, str]:
    """target -> source column: the explicit mapping, then the default names."""
    missing = [src for src in explicit.values() if src not in columns]
    if missing:
        raise InputError(f"--map names column(s) {', '.join(map(repr, missing))} that the file "
                         f"does not have; its columns: {', '.join(columns)}", code="bad_mapping")
    used = set(explicit.values())
    out = dict(explicit)
    for target in TARGETS:
        if target in out:
            continue
        for name in ALIASES[target]:
            if name in columns and name not in used:
                out[target] = name
                used.add(name)
                break
    return out


def content_id(content: Any) -> str:
    """A message id from a row's content: the same row imported twice gets the same id."""
    raw = orjson.dumps(content, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
                       default=str)
    return "imp_" + hashlib.md5(raw, usedforsecurity=False).hexdigest()


def import_timestamp(value: Any, where: str) -> datetime:
    """parse_timestamp, plus epoch numbers written as text (as CSV files hold them)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError(f"{where} is missing", code="missing_field")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    return parse_timestamp(value, where)


def _finish(msg: Message, now: datetime, limits: Limits) -> Message:
    if msg.type not in MESSAGE_TYPES:
        raise InputError(f"type must be one of {', '.join(MESSAGE_TYPES)}, got {msg.type!r}",
                         code="bad_value")
    return check_message(msg, limits, now, "row")


def generic_message(obj: dict[str, Any], mapping: dict[str, str], now: datetime,
                    limits: Limits) -> Message:
    """A JSON row named by the column mapping; other keys become properties."""
    cols = resolve_mapping(list(obj), {t: s for t, s in mapping.items() if s in obj})
    rest = {k: v for k, v in obj.items() if k not in set(cols.values())}
    properties = as_object(rest.pop("properties", None), "properties")
    context = as_object(rest.pop("context", None), "context")
    traits = as_object(rest.pop("traits", None), "traits")
    properties = {**rest, **properties}
    typ = obj.get(cols.get("type", ""), None) or "track"
    if not isinstance(typ, str):
        raise InputError(f"type must be a string, got {type(typ).__name__}", code="bad_type")
    name = obj.get(cols.get("event", ""))
    if name is None and typ != "track":
        name = DEFAULT_NAMES.get(typ)
    user = as_id(obj.get(cols.get("user_id", "")), "user_id")
    anon = as_id(obj.get(cols.get("anonymous_id", "")), "anonymous_id")
    msg = Message(
        message_id=as_id(obj.get(cols.get("message_id", "")), "message_id") or content_id(obj),
        type=typ,
        event=as_name(name, "event"),
        timestamp=import_timestamp(obj.get(cols.get("timestamp", "")), "timestamp"),
        source=SOURCE,
        user_id=user,
        anonymous_id=anon,
        account_id=as_id(obj.get(cols.get("account_id", "")), "account_id"),
        properties=properties,
        context=context,
        traits=(traits or properties) if typ == "identify" else None,
        account_traits=(traits or properties) if typ == "group" else None,
        alias_id=anon if typ in ("identify", "alias") and user else None,
    )
    return _finish(msg, now, limits)


def _history(obj: dict[str, Any], id_field: str, drop: tuple[str, ...]) -> dict[str, Any]:
    """A file row made ready for an HTTP API's mapping: a file is history, not a live
    request, so the clock-correction fields (which are relative to now) are dropped and
    a row without an id gets its content hash."""
    row = {k: v for k, v in obj.items() if k not in drop}
    if row.get(id_field) is None:
        row[id_field] = content_id(obj)
    return row


def segment_message(obj: dict[str, Any], now: datetime, limits: Limits) -> Message:
    """One Segment message (an export or a replay log), normalized by the tracking API's
    own mapping (collect/segment.py); its timestamp is taken as written."""
    if obj.get("timestamp") is None and obj.get("originalTimestamp") is None:
        raise InputError("timestamp is missing", code="missing_field")
    row = _history(obj, "messageId", ("sentAt",))
    msg = segment.to_message(row, segment.BATCH, now, None, {}, limits, "")
    msg.source = SOURCE
    return msg


def posthog_message(obj: dict[str, Any], now: datetime, limits: Limits) -> Message:
    """One PostHog event export row, normalized by the capture API's own mapping
    (collect/posthog.py); its timestamp is taken as written (no `offset`/`sent_at`)."""
    if obj.get("timestamp") is None:
        raise InputError("timestamp is missing", code="missing_field")
    row = _history(obj, "uuid", ("offset", "sent_at"))
    msg = posthog.to_message(row, now, None, limits, "", posthog.account_group_from_env())
    msg.source = SOURCE
    return msg


def json_row_message(fmt: str, line: bytes, mapping: dict[str, str], now: datetime,
                     limits: Limits) -> Message:
    """One JSON line of a file in format `fmt`; raises InputError naming what is wrong."""
    obj = parse_json(line, "the line")
    if not isinstance(obj, dict):
        raise InputError(f"a line must hold a JSON object, got {type(obj).__name__}",
                         code="bad_type")
    if fmt == "segment":
        return segment_message(obj, now, limits)
    if fmt == "posthog":
        return posthog_message(obj, now, limits)
    return generic_message(obj, mapping, now, limits)
