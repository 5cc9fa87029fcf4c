"""Amplitude exports (`--from amplitude`): the Export API's event JSON lines (usually gzipped).

The Export API answers a zip archive of gzipped JSON-lines files, one or more per hour:
unzip it and import each `.json.gz` (compressed files stream). Each row is one event;
field by field:

- `event_type` -> event. `$identify` (a user property update) is an identify; every other
  type is a track (Amplitude has no page type: page views are ordinary event types).
- `event_time` ("2026-07-14 10:00:00.123000", UTC) -> timestamp, by the import rules
  (`collect/timestamps.py`); without it, the HTTP API's `time` (epoch milliseconds).
- `user_id` -> user id, `device_id` -> anonymous id; the first event of the file carrying
  both merges the device into the user (Amplitude counts them as one user).
- `$insert_id` (or the HTTP API's `insert_id`) -> message id, else `uuid`, else
  `imp_<md5>:<n>`.
- `event_properties` -> properties.
- `user_properties` -> user traits, written when a user's properties differ from the
  last ones written for that user in this file (every exported event repeats them all).
  Operation objects (`$set`, `$setOnce`, as `$identify` events carry them) set traits /
  set-once traits; `$add`, `$append`, `$unset` and the other operations are not applied.
- `groups` (`{"company": "acme"}`, a value may be a list: its first element) -> account
  id: the group type named by `SEGMENTLY_AMPLITUDE_ACCOUNT_GROUP`, else the first type.
- `group_properties` and the device, location and Amplitude bookkeeping fields listed in
  `CONTEXT_FIELDS` -> `context.amplitude` (kept, not interpreted).
- any other top-level field makes the row bad (the file is not an Amplitude export).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson

from segmently.collect.common import as_id, as_name, as_object, check_message
from segmently.collect.formats import SOURCE
from segmently.collect.jsonrows import Produced, RowContext, Stamp
from segmently.collect.vendors.fields import first_link, only_known
from segmently.store.rows import Message

MAPPED = frozenset({"event_type", "event_time", "time", "user_id", "device_id", "$insert_id",
                    "insert_id", "uuid", "event_properties", "user_properties", "groups"})
CONTEXT_FIELDS = frozenset({
    "group_properties", "app", "amplitude_id", "amplitude_event_type", "amplitude_attribution_ids",
    "session_id", "event_id", "client_event_time", "client_upload_time", "server_received_time",
    "server_upload_time", "processed_time", "user_creation_time", "platform", "os_name",
    "os_version", "device_brand", "device_manufacturer", "device_model", "device_family",
    "device_type", "device_carrier", "carrier", "country", "region", "city", "dma", "language",
    "ip_address", "location_lat", "location_lng", "library", "version_name", "app_version",
    "start_version", "paying", "is_attribution_event", "adid", "idfa", "android_id",
    "sample_rate", "$schema", "data", "data_type", "partner_id", "plan", "source_id",
    "global_user_properties", "event_type_id", "price", "quantity", "revenue", "productId",
    "revenueType",
})
OPERATIONS = frozenset({"$set", "$setOnce", "$add", "$append", "$prepend", "$unset",
                        "$preInsert", "$postInsert", "$remove", "$clearAll"})
_PENDING = "imp_pending"


class AmplitudeRows:
    name: str = "amplitude"
    json_text_fields: tuple[str, ...] = (
        "event_properties", "user_properties", "groups", "group_properties", "data")

    def __init__(self, account_group: str | None = None) -> None:
        self.account_group = account_group  # settings.amplitude_account_group

    def timestamp(self, row: dict[str, Any]) -> Stamp:
        if row.get("event_time") is None and row.get("time") is not None:
            return Stamp(row["time"], "time")
        return Stamp(row.get("event_time"), "event_time")

    def messages(self, row: dict[str, Any], ts: datetime | None,
                 ctx: RowContext) -> list[Produced]:
        only_known(row, MAPPED | CONTEXT_FIELDS, "Amplitude")
        assert ts is not None  # required
        name = as_name(row.get("event_type"), "event_type")
        user = as_id(row.get("user_id"), "user_id")
        device = as_id(row.get("device_id"), "device_id")
        own_id = None
        for field in ("$insert_id", "insert_id", "uuid"):
            own_id = own_id or as_id(row.get(field), field)
        traits, once = _user_properties(row.get("user_properties"))
        msg = Message(
            message_id=own_id or _PENDING,
            type="identify" if name == "$identify" else "track",
            event=name, timestamp=ts, source=SOURCE, user_id=user, anonymous_id=device,
            account_id=self._account(row.get("groups")),
            properties=dict(as_object(row.get("event_properties"), "event_properties")),
            context={"amplitude": {k: row[k] for k in row if k in CONTEXT_FIELDS}}
            if any(k in CONTEXT_FIELDS for k in row) else {},
            traits=traits or None, traits_once=once or None,
        )
        check_message(msg, ctx.limits, ctx.now, "event")
        if traits and not self._changed(ctx, user or device, traits):
            msg.traits = None  # the same as last written for this user
        msg.alias_id = first_link(ctx, device, user)
        return [Produced(msg, None if own_id else row)]

    def _account(self, groups: Any) -> str | None:
        groups = as_object(groups, "groups")
        if not groups:
            return None
        kind = self.account_group if self.account_group is not None else next(iter(groups))
        value = groups.get(kind)
        if isinstance(value, list):
            value = value[0] if value else None
        return as_id(value, f"groups.{kind}")

    @staticmethod
    def _changed(ctx: RowContext, who: str | None, traits: dict[str, Any]) -> bool:
        """Whether `who`'s user properties differ from the last written in this file."""
        if who is None:
            return False
        last: dict[str, bytes] = ctx.state.setdefault("traits", {})
        digest = hashlib.md5(orjson.dumps(traits, option=orjson.OPT_SORT_KEYS, default=str),
                             usedforsecurity=False).digest()[:8]
        if last.get(who) == digest:
            return False
        last[who] = digest
        return True


def _user_properties(value: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(traits, set-once traits) of `user_properties`: plain values, or operations."""
    props = as_object(value, "user_properties")
    if props and all(k in OPERATIONS for k in props):
        return (dict(as_object(props.get("$set"), "user_properties.$set")),
                dict(as_object(props.get("$setOnce"), "user_properties.$setOnce")))
    return dict(props), {}
