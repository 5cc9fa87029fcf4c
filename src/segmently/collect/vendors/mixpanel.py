"""Mixpanel exports (`--from mixpanel`): the raw event export and the people (Engage) export.

Raw event export (`/api/2.0/export`, JSON lines): each row is exactly `{"event": ...,
"properties": {...}}`; any other top-level field makes the row bad. Field by field:

- `event` -> event. `$identify` (Original ID Merge: `$identified_id` merged with
  `$anon_id`) is an identify; `$create_alias` (`alias` merged with `distinct_id`) an alias;
  `$mp_web_page_view` a page; everything else a track.
- `properties.time` -> timestamp: epoch seconds, or milliseconds with `time_in_ms`
  (told apart by magnitude, `collect/timestamps.py`).
- who: `properties.$device_id` -> anonymous id; `properties.$user_id` (Simplified ID
  Merge: an identified event) -> user id; without `$user_id`, `distinct_id` -> user id
  unless it is the device id or `$device:<id>` (an anonymous distinct id, whose `<id>` is
  then the anonymous id). The first event of the file carrying both a user and a device
  id merges the device into the user (as Mixpanel's ID merge does).
- message id: Mixpanel counts events with the same `event`, `distinct_id`, `time` and
  `$insert_id` once (its deduplication rule), so the id is `mp_` + the MD5 of those four;
  an event without `$insert_id` gets `imp_<md5>:<n>`.
- account: the property named by `SEGMENTLY_MIXPANEL_ACCOUNT_PROPERTY` (e.g. `company_id`,
  Mixpanel's group key) when set; otherwise accounts stay properties.
- properties: every other property, as exported (`$browser`, `$city`, `mp_lib`,
  `mp_processing_time_ms`, ...); `time`, `distinct_id`, `$insert_id`, `$user_id`,
  `$device_id` and `token` are not repeated there.

People export (`/api/query/engage`): a row `{"$distinct_id": ..., "$properties": {...}}`
is an identify of that user whose traits are `$properties`, dated at `$created` (else
`$last_seen`, else the import time): the export holds only current values, so they are
taken to hold over the profile's whole history. A row that is a whole Engage response
page (`{"results": [...], "page": ...}`) holds many profiles, all on that line.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from segmently.collect.common import as_id, as_name, as_object, check_message
from segmently.collect.errors import InputError
from segmently.collect.formats import SOURCE
from segmently.collect.jsonrows import Produced, RowContext, Stamp
from segmently.collect.timestamps import describe
from segmently.collect.vendors.fields import first_link, only_known, required_object
from segmently.store.rows import Message

EVENT_FIELDS = frozenset({"event", "properties"})
PROFILE_FIELDS = frozenset({"$distinct_id", "$properties"})
PAGE_FIELDS = frozenset({"results", "page", "page_size", "session_id", "status", "total",
                         "computed_at"})
TYPES = {"$identify": "identify", "$create_alias": "alias", "$mp_web_page_view": "page"}
NOT_PROPERTIES = ("time", "distinct_id", "$insert_id", "$user_id", "$device_id", "token")
DEVICE_PREFIX = "$device:"
_PENDING = "imp_pending"


def _kind(row: dict[str, Any]) -> str:
    if "results" in row:
        return "page"
    if "$distinct_id" in row or "$properties" in row:
        return "profile"
    return "event"


def _profile_stamp(props: Any) -> Stamp:
    if isinstance(props, dict):
        for name in ("$created", "$last_seen"):
            if props.get(name) is not None:
                return Stamp(props[name], f"$properties.{name}", required=False)
    return Stamp(None, "$properties.$created", required=False)


class MixpanelRows:
    name: str = "mixpanel"
    json_text_fields: tuple[str, ...] = ("properties", "$properties")

    def __init__(self, account_property: str | None = None) -> None:
        self.account_property = account_property  # settings.mixpanel_account_property

    def timestamp(self, row: dict[str, Any]) -> Stamp:
        kind = _kind(row)
        if kind == "profile":
            return _profile_stamp(row.get("$properties"))
        if kind == "page":  # each profile's own time is read in messages
            return Stamp(None, "results", required=False)
        props = row.get("properties")
        return Stamp(props.get("time") if isinstance(props, dict) else None, "properties.time")

    def messages(self, row: dict[str, Any], ts: datetime | None,
                 ctx: RowContext) -> list[Produced]:
        kind = _kind(row)
        if kind == "page":
            return self._page(row, ctx)
        if kind == "profile":
            only_known(row, PROFILE_FIELDS, "Mixpanel profile")
            return [Produced(self._profile(row, ts or ctx.now, ctx), row)]
        only_known(row, EVENT_FIELDS, "Mixpanel event")
        assert ts is not None  # required
        return [self._event(row, ts, ctx)]

    def _event(self, row: dict[str, Any], ts: datetime, ctx: RowContext) -> Produced:
        name = as_name(row.get("event"), "event")
        props = dict(required_object(row, "properties"))
        distinct = as_id(props.get("distinct_id"), "properties.distinct_id")
        user = as_id(props.get("$user_id"), "properties.$user_id")
        device = as_id(props.get("$device_id"), "properties.$device_id")
        anonymous = device
        if distinct is not None and distinct.startswith(DEVICE_PREFIX):
            anonymous = anonymous or distinct[len(DEVICE_PREFIX):] or None
        elif user is None and distinct is not None and distinct != device:
            user = distinct  # an identified distinct id (server-side, or Original ID Merge)
        typ, alias = TYPES.get(name, "track"), None
        if name == "$identify":
            user = as_id(props.get("$identified_id"), "properties.$identified_id") or user
            alias = as_id(props.get("$anon_id"), "properties.$anon_id")
            anonymous = alias or anonymous
        elif name == "$create_alias":
            new = as_id(props.get("alias"), "properties.alias")
            if new is None:
                raise InputError("properties.alias is required for $create_alias",
                                 code="missing_field")
            alias, user, anonymous = distinct, new, None
        insert_id = as_id(props.get("$insert_id"), "properties.$insert_id")
        account = None
        if self.account_property is not None:
            account = as_id(props.get(self.account_property),
                            f"properties.{self.account_property}")
        msg = Message(
            message_id=_mixpanel_id(name, distinct, props.get("time"), insert_id)
            if insert_id else _PENDING,
            type=typ, event=name, timestamp=ts, source=SOURCE, user_id=user,
            anonymous_id=anonymous, account_id=account,
            properties={k: v for k, v in props.items() if k not in NOT_PROPERTIES},
            alias_id=alias if typ in ("identify", "alias") and alias != user else None,
        )
        check_message(msg, ctx.limits, ctx.now, "event")
        if typ not in ("identify", "alias"):
            msg.alias_id = first_link(ctx, anonymous, user)
        return Produced(msg, None if insert_id else row)

    def _profile(self, row: dict[str, Any], ts: datetime, ctx: RowContext,
                 where: str = "") -> Message:
        distinct = as_id(row.get("$distinct_id"), f"{where}$distinct_id")
        if distinct is None:
            raise InputError(f"{where}$distinct_id is missing", code="missing_field")
        traits = as_object(row.get("$properties"), f"{where}$properties")
        user: str | None = distinct
        anonymous: str | None = None
        if distinct.startswith(DEVICE_PREFIX):
            user, anonymous = None, distinct[len(DEVICE_PREFIX):] or None
        msg = Message(message_id=_PENDING, type="identify", event="$identify", timestamp=ts,
                      source=SOURCE, user_id=user, anonymous_id=anonymous,
                      traits=dict(traits) or None)
        return check_message(msg, ctx.limits, ctx.now, f"{where}profile" if where else "profile")

    def _page(self, row: dict[str, Any], ctx: RowContext) -> list[Produced]:
        """An Engage response page: its profiles, each dated by its own properties."""
        only_known(row, PAGE_FIELDS, "Mixpanel Engage page")
        results = row.get("results")
        if not isinstance(results, list):
            raise InputError("results must be a list of profiles", code="bad_type")
        stamps = [_profile_stamp(p.get("$properties") if isinstance(p, dict) else None)
                  for p in results]
        times = ctx.timestamps.parse_values([s.value for s in stamps])
        out = []
        for k, (profile, stamp, ts) in enumerate(zip(results, stamps, times, strict=True)):
            where = f"results[{k}]."
            if not isinstance(profile, dict):
                raise InputError(f"results[{k}] must be a JSON object", code="bad_type")
            only_known(profile, PROFILE_FIELDS, "Mixpanel profile")
            if isinstance(ts, str) and ts != "missing":
                raise InputError(describe(ts, stamp.value, f"{where}{stamp.field}"),
                                 code="bad_timestamp")
            when = ts if isinstance(ts, datetime) else ctx.now
            out.append(Produced(self._profile(profile, when, ctx, where), [row, k]))
        return out


def _mixpanel_id(event: str, distinct: str | None, time: Any, insert_id: str) -> str:
    """Mixpanel's deduplication key (event, distinct_id, time, $insert_id) as an id."""
    raw = orjson.dumps([event, distinct, time, insert_id], default=str)
    return "mp_" + hashlib.md5(raw, usedforsecurity=False).hexdigest()
