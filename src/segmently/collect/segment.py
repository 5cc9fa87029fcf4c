"""Segment's HTTP Tracking API format (analytics-python, analytics-node, analytics.js...).

Bodies are one call (`/v1/track`, `/v1/identify`, `/v1/page`, `/v1/screen`,
`/v1/group`, `/v1/alias`: the path gives the type) or `{"batch": [...], "sentAt": ...,
"context": ..., "writeKey": ...}` (`/v1/batch`: every call names its `type`). The write
key is the Basic auth user name (the route reads it) or the body's `writeKey`.

Called by `web/segment_routes.py` (the messages go to the store's group-commit writer) and
by `vendors/segment.py` (archived calls, the importer's sink).

Mapping of one call to a `Message` (source "segment"):

- track: `event` is the event name (required). page: "$page", screen: "$screen", with
  the top-level `name` and `category` copied into properties. identify: "$identify",
  `traits` become user traits. group: "$group", `groupId` (required) is the account id
  and `traits` its account traits; the store links the user to the account. alias:
  "$alias", `previousId` (required) is merged into `userId` (required).
- identify with both `userId` and `anonymousId` merges the anonymous history into the
  user (alias_id = anonymousId), as Segment's identity resolution does.
- `context.traits` are the user's traits on every call type. Segment's spec (Common
  fields, Context): "Dictionary of traits of the current user ... fill this object the
  same way you would fill traits in an identify call"; its mobile SDKs attach the cached
  identify traits to every call there, and RudderStack's SDKs send identify traits ONLY
  there (rudder-sdk-python's `identify` puts them in `context.traits`, none at the top).
  So: identify stores `context.traits` merged under the top-level `traits` (a key in
  both takes the top-level value); track, page, screen and alias store `context.traits`
  as traits of the call's user (`userId`, else `anonymousId`); group stores them as the
  user's traits too, while its top-level `traits` stay the account's. They are set at the
  call's timestamp, like identify traits, so the latest value wins as usual. A batch's
  top-level `context.traits` applies to calls without their own `context.traits` (the
  context merge is per key). An SDK that repeats its traits on every call costs a trait
  row per trait per call; the values read are the same.
- track/page/screen: `context.groupId`, when present, is the account id.
- `messageId` is the idempotency key (retries are deduplicated by the store); a call
  without one gets a generated id.
- A batch's top-level `context` applies to all its calls (Segment: "the context and
  integrations objects apply to all calls"); a call's own context keys win. Context is
  stored whole; `integrations`, `_metadata` and any other field we do not model are
  accepted and ignored. Fields we do model must have the right type, or the request is
  refused with a 400 naming the field (`batch[3].properties must be a JSON object`).
  A batch is all or nothing.

Time, exactly as Segment computes `timestamp` (spec "Common fields", Timestamps):
`originalTimestamp` is the call's `timestamp` as the client sent it (or its
`originalTimestamp` field when `timestamp` is absent); `sentAt` is the call's own
`sentAt`, else the batch's top-level `sentAt`. With both,
`timestamp = receivedAt - (sentAt - originalTimestamp)`: the client's clock skew
(`sentAt - receivedAt`) is taken out, so a device whose clock is hours off still lands
at the right instant. With no `sentAt`, the timestamp is taken as sent; with no timestamp
at all, it is `receivedAt`. When a correction was applied, the client's value is kept as
`context.originalTimestamp` (ISO 8601, UTC). A corrected timestamp more than
`limits.max_future` ahead of now is an error (Segment would accept it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from segmently.collect.common import as_id, as_name, as_object, check_message, parse_timestamp
from segmently.collect.errors import InputError
from segmently.collect.limits import Limits
from segmently.store.rows import MESSAGE_TYPES, Message

NAMES = {"identify": "$identify", "page": "$page", "screen": "$screen",
         "group": "$group", "alias": "$alias"}
BATCH = "batch"


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def find_write_key(payload: Any) -> str | None:
    """The body's `writeKey` (Segment SDKs send it there as well as in Basic auth)."""
    if isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
        return payload["writeKey"].strip() or None
    return None


def _text(value: Any, where: str) -> str | None:
    """An optional string field (page/screen name and category)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"{where} must be a string, got {type(value).__name__}", code="bad_type")
    return value


def _required_id(e: dict[str, Any], name: str, typ: str, where: str) -> str:
    value = as_id(e.get(name), _at(where, name))
    if value is None:
        raise InputError(f"{_at(where, name)} is required for {typ}", code="missing_field")
    return value


def _timestamp(e: dict[str, Any], now: datetime, batch_sent_at: datetime | None,
               where: str) -> tuple[datetime, datetime | None]:
    """(corrected timestamp, the client's original one if a correction was applied)."""
    key = "timestamp" if e.get("timestamp") is not None else "originalTimestamp"
    if e.get(key) is None:
        return now, None
    original = parse_timestamp(e[key], _at(where, key))
    sent_at = batch_sent_at
    if e.get("sentAt") is not None:
        sent_at = parse_timestamp(e["sentAt"], _at(where, "sentAt"))
    if sent_at is None:
        return original, None
    return now - (sent_at - original), original


def _type(e: dict[str, Any], kind: str, where: str) -> str:
    if kind != BATCH:
        return kind  # the endpoint names the type
    typ = e.get("type")
    if typ not in MESSAGE_TYPES:
        shown = "missing" if typ is None else repr(typ)[:64]
        raise InputError(f"{_at(where, 'type')} must be one of {', '.join(MESSAGE_TYPES)}; "
                         f"got {shown}", code="bad_type" if typ is not None else "missing_field")
    return typ


def _page_properties(e: dict[str, Any], props: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(props)
    for field in ("name", "category"):
        value = _text(e.get(field), _at(where, field))
        if value is not None:
            out[field] = value
    return out


def to_message(e: Any, kind: str, now: datetime, batch_sent_at: datetime | None,
               batch_context: dict[str, Any], limits: Limits, where: str) -> Message:
    """One Segment call -> Message; `kind` is the endpoint's type, or "batch"."""
    label = where or "message"
    if not isinstance(e, dict):
        raise InputError(f"{label} must be a JSON object, got {type(e).__name__}",
                         code="bad_type")
    typ = _type(e, kind, where)
    props = as_object(e.get("properties"), _at(where, "properties"))
    context = {**batch_context, **as_object(e.get("context"), _at(where, "context"))}
    traits = as_object(e.get("traits"), _at(where, "traits"))
    context_traits = as_object(context.get("traits"), _at(where, "context.traits"))
    timestamp, original = _timestamp(e, now, batch_sent_at, where)
    if original is not None:
        context["originalTimestamp"] = original.isoformat() + "Z"
    msg = Message(
        message_id=as_id(e.get("messageId"), _at(where, "messageId")) or str(uuid.uuid4()),
        type=typ,
        event=NAMES.get(typ) or as_name(e.get("event"), _at(where, "event")),
        timestamp=timestamp,
        source="segment",
        user_id=as_id(e.get("userId"), _at(where, "userId")),
        anonymous_id=as_id(e.get("anonymousId"), _at(where, "anonymousId")),
        properties=_page_properties(e, props, where) if typ in ("page", "screen") else props,
        context=context,
    )
    _by_type(msg, e, traits, context_traits, where)
    return check_message(msg, limits, now, label)


def _by_type(msg: Message, e: dict[str, Any], traits: dict[str, Any],
             context_traits: dict[str, Any], where: str) -> None:
    """What identify, group and alias add; the account of track/page/screen. The user's
    traits are `context.traits` on every type, under identify's own `traits`."""
    msg.traits = {**context_traits, **traits} if msg.type == "identify" else dict(context_traits)
    msg.traits = msg.traits or None
    if msg.type == "identify":
        if msg.user_id and msg.anonymous_id and msg.user_id != msg.anonymous_id:
            msg.alias_id = msg.anonymous_id
    elif msg.type == "group":
        msg.account_id = _required_id(e, "groupId", "group", where)
        msg.account_traits = dict(traits) or None
    elif msg.type == "alias":
        msg.alias_id = _required_id(e, "previousId", "alias", where)
        msg.user_id = _required_id(e, "userId", "alias", where)
    else:
        msg.account_id = as_id(msg.context.get("groupId"), _at(where, "context.groupId"))


def parse_segment(payload: Any, kind: str, now: datetime, limits: Limits) -> list[Message]:
    """Validate a decoded body sent to `/v1/<kind>` and normalize it; one bad call
    rejects the whole request. `now` is receivedAt."""
    if not isinstance(payload, dict):
        what = '{"batch": [...]}' if kind == BATCH else f"one {kind} call"
        raise InputError(f"body must be a JSON object: {what}", code="bad_type")
    if kind != BATCH:
        return [to_message(payload, kind, now, None, {}, limits, "")]
    calls = payload.get("batch")
    if not isinstance(calls, list):
        raise InputError("batch must be a JSON array of calls", code="bad_type"
                         if "batch" in payload else "missing_field")
    if not calls:
        raise InputError("batch holds no call", code="empty_batch")
    if len(calls) > limits.max_batch_events:
        raise InputError(f"batch holds {len(calls)} calls; the limit is "
                         f"{limits.max_batch_events}", code="batch_too_large", status=413)
    sent_at = (parse_timestamp(payload["sentAt"], "sentAt")
               if payload.get("sentAt") is not None else None)
    context = as_object(payload.get("context"), "context")
    return [to_message(e, BATCH, now, sent_at, context, limits, f"batch[{i}]")
            for i, e in enumerate(calls)]
