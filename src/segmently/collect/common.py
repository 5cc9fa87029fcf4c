"""Field conversions every wire format shares: ids, timestamps, and the event checks.

Used by each format's mapping (`native.py`, `segment.py`, `posthog.py`, `formats.py`,
`tabular.py`, `vendors/`), whose `Message`s go on to the store (`store/rows.py`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from segmently.collect.errors import InputError
from segmently.collect.limits import Limits, check_depth
from segmently.store.rows import Message

MAX_ID_LENGTH = 512
MAX_NAME_LENGTH = 1024


def parse_timestamp(value: Any, where: str) -> datetime:
    """ISO 8601 (offset or Z; none means UTC) or epoch seconds/milliseconds -> naive UTC."""
    if isinstance(value, str):
        try:  # the common case, as SDKs send it (Python >= 3.11 reads the Z itself)
            ts = datetime.fromisoformat(value)
        except ValueError:
            ts = _parse_iso_leniently(value, where)
    elif isinstance(value, datetime):
        ts = value
    elif isinstance(value, bool):
        raise InputError(f"{where} must be an ISO 8601 timestamp, got a boolean", code="bad_type")
    elif isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            ts = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InputError(f"{where} is out of range: {value}", code="bad_timestamp") from exc
    else:
        raise InputError(
            f"{where} must be an ISO 8601 timestamp, got {type(value).__name__}", code="bad_type"
        )
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    return ts


def _parse_iso_leniently(value: str, where: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise InputError(
            f"{where} is not an ISO 8601 timestamp: {value[:64]!r}", code="bad_timestamp"
        ) from exc


def as_id(value: Any, where: str) -> str | None:
    """User/anonymous/account/message ids: strings or integers, stored as strings."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(f"{where} must be a string, got {type(value).__name__}", code="bad_type")
    text = str(value)
    if not text.strip():
        return None
    if len(text) > MAX_ID_LENGTH:
        raise InputError(f"{where} is longer than {MAX_ID_LENGTH} characters", code="too_long")
    return text


def as_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where} must be a non-empty string", code="missing_field")
    if len(value) > MAX_NAME_LENGTH:
        raise InputError(f"{where} is longer than {MAX_NAME_LENGTH} characters", code="too_long")
    if "\x00" in value:
        raise InputError(f"{where} contains a NUL character", code="bad_value")
    return value


def as_object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a JSON object, got {type(value).__name__}",
                         code="bad_type")
    return value


_TEXT_FIELDS = ("message_id", "event", "user_id", "anonymous_id", "account_id", "alias_id")


def check_no_nul(msg: Message, where: str) -> None:
    """NUL cannot be stored in PostgreSQL text, so ids, names and trait names refuse it
    (inside properties it is JSON-escaped and harmless)."""
    joined = (f"{msg.message_id}{msg.event}{msg.user_id}{msg.anonymous_id}{msg.account_id}"
              f"{msg.alias_id}")  # one search in the common case, where there is none
    if "\x00" in joined:
        for name in _TEXT_FIELDS:
            value = getattr(msg, name)
            if value is not None and "\x00" in value:
                raise InputError(f"{where}.{name} contains a NUL character", code="bad_value")
    for name in ("traits", "traits_once", "account_traits"):
        for key in getattr(msg, name) or ():
            if "\x00" in str(key):
                raise InputError(f"{where}.{name} has a name with a NUL character",
                                 code="bad_value")


def check_message(msg: Message, limits: Limits, now: datetime, where: str) -> Message:
    """The checks every stored message passes, whatever its wire format."""
    if msg.user_id is None and msg.anonymous_id is None:
        raise InputError(f"{where} needs a user id or an anonymous id", code="missing_field")
    check_no_nul(msg, where)
    if msg.timestamp - now > limits.max_future:
        raise InputError(
            f"{where}.timestamp {msg.timestamp.isoformat()}Z is more than "
            f"{limits.max_future} in the future",
            code="timestamp_in_future",
        )
    size = 0
    for name in _JSON_FIELDS:
        value = getattr(msg, name)
        if value:
            size += _checked_json_size(value, limits.max_depth, where, name)
    if size > limits.max_event_bytes:
        raise InputError(
            f"{where} is {size} bytes; one event may be at most {limits.max_event_bytes} bytes",
            code="event_too_large",
            status=413,
        )
    return msg


_JSON_FIELDS = ("properties", "context", "traits", "traits_once", "account_traits")
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _checked_json_size(value: Any, max_depth: int, where: str, name: str) -> int:
    """Serialized size, after the depth check. A value holding at most max_depth objects
    and arrays cannot nest deeper, so the walk runs only when the text has more brackets."""
    try:
        text = orjson.dumps(value, option=_JSON_OPTIONS, default=str)
    except orjson.JSONEncodeError:  # orjson stops at 254 levels
        check_depth(value, max_depth, f"{where}.{name}")
        raise InputError(f"{where}.{name} cannot be serialized as JSON",
                         code="bad_value") from None
    if text.count(b"{") + text.count(b"[") > max_depth:
        check_depth(value, max_depth, f"{where}.{name}")
    return len(text)
