"""The store's input contract: normalized messages, and their conversion to Arrow rows.

Every wire format (native, Segment, PostHog, files) is normalized by `collect` into
`Message` objects; this module turns a list of them into one Arrow table per store table,
so a whole request lands with one INSERT per table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from segmently.store import schema

MESSAGE_TYPES = ("track", "identify", "page", "screen", "group", "alias")


@dataclass(slots=True)
class Message:
    """One normalized message. Timestamps are naive datetimes in UTC."""

    message_id: str
    type: str
    event: str
    timestamp: datetime
    source: str
    user_id: str | None = None
    anonymous_id: str | None = None
    account_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] | None = None  # user traits set by this message
    traits_once: dict[str, Any] | None = None  # user traits set only if never set
    account_traits: dict[str, Any] | None = None  # traits of account_id
    alias_id: str | None = None  # an anonymous or previous id that is now user_id

    @property
    def distinct_id(self) -> str | None:
        return self.user_id or self.anonymous_id


@dataclass(slots=True)
class RowBatch:
    """Arrow tables ready to insert, one per store table (empty ones are skipped)."""

    events: pa.Table
    traits: pa.Table
    identities: pa.Table
    account_links: pa.Table

    def tables(self) -> dict[str, pa.Table]:
        return {
            schema.EVENTS: self.events,
            schema.TRAITS: self.traits,
            schema.IDENTITIES: self.identities,
            schema.ACCOUNT_LINKS: self.account_links,
        }


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()


def arrow_schema(ibis_schema: Any) -> pa.Schema:
    """Arrow schema for a store table; JSON columns travel as UTF-8 text."""
    fields = []
    for name, dtype in ibis_schema.items():
        if dtype.is_json():
            typ = pa.string()
        elif dtype.is_timestamp():
            typ = pa.timestamp("us")
        else:
            typ = dtype.to_pyarrow()
        fields.append(pa.field(name, typ, nullable=dtype.nullable))
    return pa.schema(fields)


ARROW_SCHEMAS = {name: arrow_schema(s) for name, s in schema.TABLES.items()}


def _table(name: str, columns: dict[str, list[Any]]) -> pa.Table:
    return pa.Table.from_pydict(columns, schema=ARROW_SCHEMAS[name])


def _trait_rows(
    out: dict[str, list[Any]], project_id: str, kind: str, entity: str,
    values: dict[str, Any], once: bool, msg: Message, received_at: datetime,
) -> None:
    for trait, value in values.items():
        out["project_id"].append(project_id)
        out["kind"].append(kind)
        out["entity_id"].append(entity)
        out["trait"].append(str(trait))
        out["value"].append(_json(value))
        out["once"].append(once)
        out["set_at"].append(msg.timestamp)
        out["received_at"].append(received_at)
        out["message_id"].append(msg.message_id)


def _events_table(project_id: str, messages: list[Message], received_at: datetime) -> pa.Table:
    """Column by column (one comprehension per column is ~3x faster than row appends)."""
    n = len(messages)
    dumps, opts = orjson.dumps, orjson.OPT_NON_STR_KEYS
    return _table(schema.EVENTS, {
        "project_id": [project_id] * n,
        "message_id": [m.message_id for m in messages],
        "type": [m.type for m in messages],
        "event": [m.event for m in messages],
        "user_id": [m.user_id for m in messages],
        "anonymous_id": [m.anonymous_id for m in messages],
        "account_id": [m.account_id for m in messages],
        "timestamp": [m.timestamp for m in messages],
        "received_at": [received_at] * n,
        "properties": [dumps(m.properties or {}, option=opts, default=str).decode()
                       for m in messages],
        "context": [dumps(m.context or {}, option=opts, default=str).decode()
                    for m in messages],
        "source": [m.source for m in messages],
    })


def to_rows(project_id: str, messages: list[Message], received_at: datetime) -> RowBatch:
    """Rows of every message's event, and the derived rows of the first message of each
    id only: the store keeps the first occurrence's event, and a later one (a retry in
    the same group commit) must not add its traits, identities or links next to it."""
    traits: dict[str, list[Any]] = {k: [] for k in schema.TRAITS_SCHEMA.names}
    idents: dict[str, list[Any]] = {k: [] for k in schema.IDENTITIES_SCHEMA.names}
    links: dict[str, list[Any]] = {k: [] for k in schema.ACCOUNT_LINKS_SCHEMA.names}
    seen: set[str] = set()
    for m in messages:
        first = m.message_id not in seen
        seen.add(m.message_id)
        if not first or not (m.traits or m.traits_once or m.account_traits or m.alias_id
                             or m.type == "group"):
            continue  # a repeated id, or (most messages: tracks) nothing to derive
        who = m.distinct_id
        if who is not None:
            if m.traits:
                _trait_rows(traits, project_id, "user", who, m.traits, False, m, received_at)
            if m.traits_once:
                _trait_rows(traits, project_id, "user", who, m.traits_once, True, m, received_at)
        if m.account_id is not None and m.account_traits:
            _trait_rows(traits, project_id, "account", m.account_id, m.account_traits,
                        False, m, received_at)
        if m.alias_id and m.user_id and m.alias_id != m.user_id:
            for k, v in (("alias_id", m.alias_id), ("user_id", m.user_id)):
                idents[k].append(v)
            idents["project_id"].append(project_id)
            idents["linked_at"].append(m.timestamp)
            idents["received_at"].append(received_at)
            idents["message_id"].append(m.message_id)
        if m.type == "group" and m.account_id and who:
            links["project_id"].append(project_id)
            links["user_id"].append(who)
            links["account_id"].append(m.account_id)
            links["linked_at"].append(m.timestamp)
            links["received_at"].append(received_at)
            links["message_id"].append(m.message_id)
    return RowBatch(
        events=_events_table(project_id, messages, received_at),
        traits=_table(schema.TRAITS, traits),
        identities=_table(schema.IDENTITIES, idents),
        account_links=_table(schema.ACCOUNT_LINKS, links),
    )
