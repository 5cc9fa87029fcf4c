"""PostHog exports (`--from posthog`): events and persons, as JSON lines, CSV or Parquet.

Rows are what PostHog's batch exports (S3 and file downloads: JSONLines, Parquet) and the
events/persons APIs write. In CSV and Parquet, `properties`, `person_properties`, `set`,
`set_once` and `distinct_ids` are JSON text and are decoded first.

Events (a row with `event`) are mapped by the capture API's own mapping
(`collect/posthog.py`: `$identify`, `$create_alias`, `$set`/`$set_once`, `$groups`
accounts, anonymous distinct ids), field by field:

- `event` -> event; `distinct_id` -> the user, or the anonymous id when PostHog marks it
  anonymous (see collect/posthog.py); `timestamp` -> timestamp (the import rules:
  `collect/timestamps.py`); `properties` -> properties (minus `$set`/`$set_once`, which
  become traits); `set`/`set_once` (or `$set`/`$set_once`) -> traits / set-once traits;
  `uuid` (or `id`) -> message id, else `imp_<md5>:<n>`;
- `elements_chain` (autocapture) -> property `$elements_chain` when not empty;
  `person_id` -> `context.posthog.person_id`;
- ignored: `person_properties` (a copy of the person's properties at ingestion: import the
  persons export for traits), `created_at`, `_inserted_at`, `inserted_at`, `team_id`,
  `person_created_at`, `elements`, `person`, `$group_0`..`$group_4`, and the capture
  API's envelope fields `api_key`, `token`, `sent_at`, `offset` (a file is history: its
  time is taken as written);
- any other top-level field makes the row bad (the file is not a PostHog export).

Persons (a row with `distinct_ids`, the persons API; or `person_id` + `distinct_id`
without `event`, the batch exports' persons model): every distinct id of the person gets
an identify message whose traits are `properties`, dated at the person's `created_at`
(else `last_seen_at`/`updated_at`, else the import time): the export holds only current
values, so they are taken to hold over the person's whole history. Distinct ids are not
linked here; the events' `$identify`/`$create_alias` link them, as in PostHog. A row with
`is_deleted` true is a bad row (not imported).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from segmently.collect import posthog
from segmently.collect.common import as_id, as_object, check_message
from segmently.collect.errors import InputError
from segmently.collect.formats import SOURCE
from segmently.collect.jsonrows import Produced, RowContext, Stamp
from segmently.collect.vendors.fields import only_known
from segmently.store.rows import Message

_PENDING = "imp_pending"  # replaced by the content id (jsonrows) before anything is stored
EVENT_FIELDS = frozenset({
    "uuid", "id", "event", "distinct_id", "timestamp", "properties", "set", "set_once",
    "$set", "$set_once", "elements_chain", "person_id", "person_properties", "created_at",
    "_inserted_at", "inserted_at", "team_id", "person_created_at", "elements", "person",
    "$group_0", "$group_1", "$group_2", "$group_3", "$group_4",
    "api_key", "token", "sent_at", "offset",
})
PERSON_FIELDS = frozenset({
    "id", "uuid", "name", "distinct_ids", "properties", "created_at", "last_seen_at",
    "is_identified", "type", "team_id", "distinct_id", "person_id", "person_version",
    "person_distinct_id_version", "updated_at", "is_deleted", "_inserted_at",
})


def _is_person(row: dict[str, Any]) -> bool:
    return "event" not in row and ("distinct_ids" in row or "person_id" in row)


class PostHogRows:
    name: str = "posthog"
    json_text_fields: tuple[str, ...] = (
        "properties", "person_properties", "set", "set_once", "$set", "$set_once", "distinct_ids")

    def __init__(self, account_group: str | None = None) -> None:
        self.account_group = account_group  # settings.posthog_account_group

    def timestamp(self, row: dict[str, Any]) -> Stamp:
        if _is_person(row):
            for name in ("created_at", "last_seen_at", "updated_at"):
                if row.get(name) is not None:
                    return Stamp(row[name], name, required=False)
            return Stamp(None, "created_at", required=False)
        return Stamp(row.get("timestamp"), "timestamp")

    def messages(self, row: dict[str, Any], ts: datetime | None,
                 ctx: RowContext) -> list[Produced]:
        if _is_person(row):
            return self._person(row, ts or ctx.now, ctx)
        only_known(row, EVENT_FIELDS, "PostHog event")
        event = {k: row[k] for k in ("event", "distinct_id", "properties") if k in row}
        event["timestamp"] = ts
        for ours, theirs in (("$set", "set"), ("$set_once", "set_once")):
            value = row.get(ours) if row.get(ours) is not None else row.get(theirs)
            if value is not None:
                event[ours] = value
        own_id = row.get("uuid") if row.get("uuid") is not None else row.get("id")
        event["uuid"] = own_id if own_id is not None else _PENDING
        chain = row.get("elements_chain")
        if chain is not None and not isinstance(chain, str):
            raise InputError("elements_chain must be a string", code="bad_type")
        if chain:
            props = as_object(row.get("properties"), "properties")
            event["properties"] = {**props, "$elements_chain": chain}
        msg = posthog.to_message(event, ctx.now, None, ctx.limits, "", self.account_group)
        msg.source = SOURCE
        person = as_id(row.get("person_id"), "person_id")
        if person is not None:
            msg.context = {**msg.context, "posthog": {"person_id": person}}
        return [Produced(msg, None if own_id is not None else row)]

    def _person(self, row: dict[str, Any], ts: datetime, ctx: RowContext) -> list[Produced]:
        only_known(row, PERSON_FIELDS, "PostHog person")
        if row.get("is_deleted") in (True, 1, "1", "true"):
            raise InputError("a deleted person (is_deleted) is not imported", code="deleted")
        if "distinct_ids" in row:
            ids = row["distinct_ids"]
            if not isinstance(ids, list) or not ids:
                raise InputError("distinct_ids must be a non-empty list", code="bad_type")
        else:
            ids = [row.get("distinct_id")]
        traits = as_object(row.get("properties"), "properties")
        out = []
        for k, raw in enumerate(ids):
            distinct = as_id(raw, f"distinct_ids[{k}]" if "distinct_ids" in row else "distinct_id")
            if distinct is None:
                raise InputError("distinct_id is missing", code="missing_field")
            msg = Message(message_id=_PENDING, type="identify", event="$identify",
                          timestamp=ts, source=SOURCE, user_id=distinct,
                          traits=dict(traits) or None)
            out.append(Produced(check_message(msg, ctx.limits, ctx.now, "person"), [row, k]))
        return out
