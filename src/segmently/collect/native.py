"""Segmently's own wire format: `POST /v1/events` with one event or {"events": [...]}.

Strict by design (unknown fields are rejected, so typos surface at once), unlike the
Segment and PostHog formats, which accept whatever their SDKs add.
A batch is all or nothing: one bad event rejects the whole request, naming the event.
Called by `web/native_routes.py`; the messages go to the store's group-commit writer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from segmently.collect.common import MAX_ID_LENGTH, check_message, parse_timestamp
from segmently.collect.errors import InputError
from segmently.collect.limits import Limits
from segmently.store.rows import Message

Id = Field(default=None, max_length=MAX_ID_LENGTH)


class NativeEvent(BaseModel):
    """One event as Segmently's native API takes it."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    type: Literal["track", "identify", "page", "screen", "group", "alias"] = "track"
    event: str | None = Field(default=None, min_length=1, max_length=1024)
    user_id: str | None = Id
    anonymous_id: str | None = Id
    account_id: str | None = Id
    previous_id: str | None = Id
    message_id: str | None = Id
    timestamp: datetime | None = None
    properties: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] | None = None


class NativeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[NativeEvent]


_EVENTS = TypeAdapter(list[NativeEvent])
VALIDATE_CHUNK = 1000



DEFAULT_NAMES = {"identify": "$identify", "page": "$page", "screen": "$screen",
                 "group": "$group", "alias": "$alias"}


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _validation_message(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    return f"{_where(err['loc']) if err['loc'] else 'event'}: {err['msg']}"


def _blank_is_none(value: str | None) -> str | None:
    """An id of only whitespace identifies nobody (as `common.as_id` treats it)."""
    return value if value is None or value.strip() else None


def to_message(e: NativeEvent, now: datetime, limits: Limits, where: str) -> Message:
    user_id, anonymous_id = _blank_is_none(e.user_id), _blank_is_none(e.anonymous_id)
    account_id, previous_id = _blank_is_none(e.account_id), _blank_is_none(e.previous_id)
    if e.type == "track" and not e.event:
        raise InputError(f"{where}.event is required for a track event", code="missing_field")
    if e.type == "alias" and not (previous_id and user_id):
        raise InputError(f"{where}: alias needs previous_id and user_id", code="missing_field")
    if e.type == "group" and not account_id:
        raise InputError(f"{where}: group needs account_id", code="missing_field")
    msg = Message(
        message_id=_blank_is_none(e.message_id) or str(uuid.uuid4()),
        type=e.type,
        event=e.event or DEFAULT_NAMES[e.type],
        timestamp=parse_timestamp(e.timestamp, f"{where}.timestamp") if e.timestamp else now,
        source="native",
        user_id=user_id,
        anonymous_id=anonymous_id,
        account_id=account_id,
        properties=e.properties,
        context=e.context,
        traits=e.traits if e.type == "identify" else None,
        account_traits=e.traits if e.type == "group" else None,
        alias_id=previous_id if e.type == "alias" else (
            anonymous_id if e.type == "identify" and user_id else None
        ),
    )
    return check_message(msg, limits, now, where)


def _batch_events(payload: dict[str, Any], limits: Limits) -> list[NativeEvent]:
    """The events of a batch, validated VALIDATE_CHUNK at a time: pydantic holds the GIL
    for a whole call (0.8 s for 100,000 events), which would stall every other thread,
    the server's event loop included, however the call is scheduled."""
    events = payload["events"]
    if not isinstance(events, list):
        return NativeBatch.model_validate(payload).events  # the model's own message
    NativeBatch.model_validate({**payload, "events": []})  # unknown fields beside events
    if len(events) > limits.max_batch_events:
        raise InputError(f"events holds {len(events)} events; the limit is "
                         f"{limits.max_batch_events}", code="batch_too_large", status=413)
    out: list[NativeEvent] = []
    for start in range(0, len(events), VALIDATE_CHUNK):
        try:
            out.extend(_EVENTS.validate_python(events[start:start + VALIDATE_CHUNK]))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            index, *rest = err["loc"]
            where = _where(("events", start + int(index), *rest))
            raise InputError(f"{where}: {err['msg']}", code="invalid_event") from exc
    return out


def parse_native(payload: Any, now: datetime, limits: Limits) -> list[Message]:
    """Validate a decoded JSON body and normalize it; raises InputError on any bad event."""
    if not isinstance(payload, dict):
        raise InputError("body must be a JSON object: one event or {\"events\": [...]}",
                         code="bad_type")
    try:
        if "events" in payload:
            events = _batch_events(payload, limits)
            return [to_message(e, now, limits, f"events[{i}]") for i, e in enumerate(events)]
        parsed = NativeEvent.model_validate(payload)
    except ValidationError as exc:
        raise InputError(_validation_message(exc), code="invalid_event") from exc
    return [to_message(parsed, now, limits, "event")]
