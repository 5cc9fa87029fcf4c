"""PostHog's capture format (posthog-python, posthog-js and the other PostHog SDKs).

Bodies are one event, `{"batch": [...], "api_key": ..., "sent_at": ...}`, or a JSON
array of events (posthog-js). Decoding of the envelopes is in `posthog_decode.py`.

The project key is PostHog's project token: our WRITE key. It is looked for in the query
(`token`, `api_key`), the form, the body (`api_key`, `token`, `$token`), then in each
event (`api_key`/`token`/`$token`, or `properties.token` as posthog-js sends it). Events
of one request naming different tokens are refused.

Mapping of one event to a `Message`:

- `event` is kept as sent (`$pageview`, `$identify`, `signed_up`...). The message type is
  `identify` for `$identify`/`$set`/`$set_once`, `alias` for `$create_alias`, `page` for
  `$pageview`, `screen` for `$screen`, else `track`.
- `distinct_id` (top level, else `properties.distinct_id`) is required. It is the
  ANONYMOUS id when PostHog says the person is not identified: `properties.$is_identified`
  is false, or `$process_person_profile` is false (a personless event: posthog-python
  sends that when it had to make an id up), or it equals `properties.$device_id`
  (posthog-js's anonymous distinct id is its device id until `identify`).
  `$is_identified: true` overrides the other two. Otherwise distinct_id is the user id,
  and a different `$device_id` becomes the anonymous id.
- `$identify`: user_id = distinct_id always; `properties.$anon_distinct_id` (the id
  used before) is merged into it (`alias_id`) and kept as anonymous_id.
- `$create_alias`: `properties.alias` is merged into distinct_id (alias_id -> user_id).
- `$set` / `$set_once` (in properties or at the top level, as posthog-python's `set()`
  sends them) on ANY event become user traits / set-once traits of that distinct id.
- Accounts: `properties.$groups` (`{"company": "acme"}`) gives account_id = the group
  KEY of the account group type. That type is `SEGMENTLY_POSTHOG_ACCOUNT_GROUP` when set
  (other group types then only stay in properties), else the first type in `$groups`.
  `$groupidentify` (`$group_type`, `$group_key`, `$group_set`) sets account traits of
  that key when its type is the account type; it is stored as a `track` message, not a
  `group` one, because PostHog's call does not put the sending person in the group
  (posthog-python even sends it under a random distinct id).
- Time, as PostHog's ingestion does: `offset` (ms) means `now - offset`; a `timestamp`
  with a `sent_at` (the event's, else the body's, else posthog-js's `_` query parameter
  in ms) is corrected for the client's clock: `now + (timestamp - sent_at)`, unless
  `properties.$ignore_sent_at` is true; a lone `timestamp` is taken as is; none means
  now. Unlike PostHog (which clamps), a timestamp too far in the future is an error.
- `uuid` is the message id (retries are deduplicated); without one an id is generated.
- `properties` are stored as sent, minus the project token and `$set`/`$set_once`
  (stored as traits), like `segmently import --format posthog` does.

Called by `web/posthog_routes.py` (the messages go to the store's group-commit writer)
and by `vendors/posthog.py` (file rows, the importer's sink).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from segmently.collect.common import as_id, as_name, as_object, check_message, parse_timestamp
from segmently.collect.errors import InputError
from segmently.collect.limits import Limits
from segmently.store.rows import Message

TYPES = {"$identify": "identify", "$set": "identify", "$set_once": "identify",
         "$create_alias": "alias", "$pageview": "page", "$screen": "screen"}
TOKEN_FIELDS = ("api_key", "token", "$token")


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def event_list(payload: Any) -> tuple[list[Any], str | None]:
    """The events of a body and the name of the list holding them (None: a single event)."""
    if isinstance(payload, list):
        return payload, "batch"
    if not isinstance(payload, dict):
        raise InputError("body must be a JSON object (one event or {\"batch\": [...]}) or an "
                         "array of events", code="bad_type")
    if "batch" in payload:
        if not isinstance(payload["batch"], list):
            raise InputError("batch must be a JSON array of events", code="bad_type")
        return payload["batch"], "batch"
    return [payload], None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _event_token(e: Any) -> str | None:
    if not isinstance(e, dict):
        return None
    props = e.get("properties")
    found = [_text(e.get(k)) for k in TOKEN_FIELDS]
    if isinstance(props, dict):
        found += [_text(props.get(k)) for k in ("token", "$token")]
    return next((t for t in found if t), None)


def find_token(payload: Any, fields: dict[str, str]) -> str | None:
    """The project token of a request (see the module docstring for where it may be)."""
    for name in ("token", "api_key"):
        if _text(fields.get(name)):
            return _text(fields[name])
    if isinstance(payload, dict):
        for name in TOKEN_FIELDS:
            if _text(payload.get(name)):
                return _text(payload[name])
    events, _ = event_list(payload)
    tokens = {t for t in map(_event_token, events) if t}
    if len(tokens) > 1:
        raise InputError("the events of this request carry different project tokens; send "
                         "each project's events in its own request", code="multiple_tokens")
    return tokens.pop() if tokens else None


def _sent_at(payload: Any, fields: dict[str, str]) -> datetime | None:
    if isinstance(payload, dict) and payload.get("sent_at") is not None:
        return parse_timestamp(payload["sent_at"], "sent_at")
    raw = fields.get("_")
    if not raw:
        return None
    if not raw.strip().isdigit():
        raise InputError("query parameter _ must be milliseconds since the epoch, "
                         f"got {raw[:32]!r}",
                         code="bad_timestamp")
    return parse_timestamp(int(raw) / 1000, "query parameter _")


def _timestamp(e: dict[str, Any], props: dict[str, Any], now: datetime,
               sent_at: datetime | None, where: str) -> datetime:
    offset = e.get("offset")
    if offset is not None:
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise InputError(f"{_at(where, 'offset')} must be a number of milliseconds",
                             code="bad_type")
        try:
            return now - timedelta(milliseconds=offset)
        except (OverflowError, ValueError):
            raise InputError(f"{_at(where, 'offset')} is out of range: {offset}",
                             code="bad_timestamp") from None
    if e.get("timestamp") is None:
        return now
    ts = parse_timestamp(e["timestamp"], _at(where, "timestamp"))
    if e.get("sent_at") is not None:
        sent_at = parse_timestamp(e["sent_at"], _at(where, "sent_at"))
    if sent_at is None or props.get("$ignore_sent_at") is True:
        return ts
    return now + (ts - sent_at)


def _traits(e: dict[str, Any], props: dict[str, Any], key: str,
            where: str) -> dict[str, Any] | None:
    merged = {**as_object(props.get(key), _at(where, f"properties.{key}")),
              **as_object(e.get(key), _at(where, key))}
    return merged or None


def _people(distinct: str, props: dict[str, Any], where: str) -> tuple[str | None, str | None]:
    """(user_id, anonymous_id) of an ordinary event (the rule is in the module docstring)."""
    device = as_id(props.get("$device_id"), _at(where, "properties.$device_id"))
    identified = props.get("$is_identified")
    if not isinstance(identified, bool):
        identified = props.get("$process_person_profile") is not False and device != distinct
    if not identified:
        return None, distinct
    return distinct, device if device != distinct else None


def _account(props: dict[str, Any], account_group: str | None, where: str) -> str | None:
    groups = as_object(props.get("$groups"), _at(where, "properties.$groups"))
    if not groups:
        return None
    kind = account_group if account_group is not None else next(iter(groups))
    return as_id(groups.get(kind), _at(where, f"properties.$groups.{kind}"))


def _context(props: dict[str, Any]) -> dict[str, Any]:
    lib = {k: props[p] for k, p in (("name", "$lib"), ("version", "$lib_version")) if p in props}
    return {"library": lib} if lib else {}


def to_message(e: Any, now: datetime, sent_at: datetime | None, limits: Limits, where: str,
               account_group: str | None = None) -> Message:
    label = where or "event"
    if not isinstance(e, dict):
        raise InputError(f"{label} must be a JSON object, got {type(e).__name__}", code="bad_type")
    name = as_name(e.get("event"), _at(where, "event"))
    props = dict(as_object(e.get("properties"), _at(where, "properties")))
    raw_id = e["distinct_id"] if e.get("distinct_id") is not None else props.get("distinct_id")
    distinct = as_id(raw_id, _at(where, "distinct_id"))
    if distinct is None:
        raise InputError(f"{_at(where, 'distinct_id')} is required", code="missing_field")
    msg = Message(
        message_id=as_id(e.get("uuid"), _at(where, "uuid")) or str(uuid.uuid4()),
        type=TYPES.get(name, "track"),
        event=name,
        timestamp=_timestamp(e, props, now, sent_at, where),
        source="posthog",
        account_id=_account(props, account_group, where),
        context=_context(props),
        traits=_traits(e, props, "$set", where),
        traits_once=_traits(e, props, "$set_once", where),
    )
    msg.user_id, msg.anonymous_id = _people(distinct, props, where)
    _special(msg, name, distinct, props, where, account_group)
    for key in ("token", "$token", "$set", "$set_once"):
        props.pop(key, None)
    msg.properties = props
    return check_message(msg, limits, now, label)


def _special(msg: Message, name: str, distinct: str, props: dict[str, Any], where: str,
             account_group: str | None) -> None:
    """What $identify, $create_alias and $groupidentify add to the plain mapping."""
    if name == "$identify":
        anon = as_id(props.get("$anon_distinct_id"), _at(where, "properties.$anon_distinct_id"))
        msg.user_id = distinct
        if anon and anon != distinct:
            msg.anonymous_id = msg.alias_id = anon
        elif msg.anonymous_id == distinct:
            msg.anonymous_id = None
    elif name == "$create_alias":
        alias = as_id(props.get("alias"), _at(where, "properties.alias"))
        if alias is None:
            raise InputError(f"{_at(where, 'properties.alias')} is required for $create_alias",
                             code="missing_field")
        msg.user_id, msg.anonymous_id, msg.alias_id = distinct, None, alias
    elif name == "$groupidentify":
        kind = as_name(props.get("$group_type"), _at(where, "properties.$group_type"))
        key = as_id(props.get("$group_key"), _at(where, "properties.$group_key"))
        if key is None:
            raise InputError(f"{_at(where, 'properties.$group_key')} is required for "
                             "$groupidentify", code="missing_field")
        traits = as_object(props.get("$group_set"), _at(where, "properties.$group_set"))
        if account_group is None or kind == account_group:
            msg.account_id = key
            msg.account_traits = dict(traits) or None


def parse_posthog(payload: Any, now: datetime, limits: Limits, *,
                  fields: dict[str, str] | None = None,
                  account_group: str | None = None) -> list[Message]:
    """Validate a decoded body and normalize it; one bad event rejects the whole request."""
    fields = fields or {}
    events, where = event_list(payload)
    if not events:
        raise InputError("batch holds no event", code="empty_batch")
    if len(events) > limits.max_batch_events:
        raise InputError(f"batch holds {len(events)} events; the limit is "
                         f"{limits.max_batch_events}", code="batch_too_large", status=413)
    sent_at = _sent_at(payload, fields)
    if where is None:
        return [to_message(events[0], now, sent_at, limits, "", account_group)]
    return [to_message(e, now, sent_at, limits, f"{where}[{i}]", account_group)
            for i, e in enumerate(events)]
