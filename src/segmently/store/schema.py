"""Table schemas of the event store.

Every table is append-only: updates (latest traits, identity merges) are resolved at read
time. That keeps the write path a single INSERT per table inside one transaction, makes
acknowledged writes trivially safe, and lets any past instant be reproduced by filtering
on `received_at` / `set_at`.

JSON payloads (properties, context, trait values) are stored as JSON text: every engine
holds text the same way (Ibis round-trips PostgreSQL json as text anyway, Spark and
Parquet have no JSON type), and queries cast to JSON where they extract a field.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt

EVENTS = "events"
TRAITS = "traits"
IDENTITIES = "identities"
ACCOUNT_LINKS = "account_links"
PROJECTS = "projects"
ROLLUPS = "event_rollups"
ACTIVITY = "activity_days"
COMPACTIONS = "rollup_compactions"

EVENTS_SCHEMA = ibis.schema(
    {
        "project_id": dt.String(nullable=False),
        "message_id": dt.String(nullable=False),
        "type": dt.String(nullable=False),
        "event": dt.String(nullable=False),
        "user_id": dt.string,
        "anonymous_id": dt.string,
        "account_id": dt.string,
        "timestamp": dt.Timestamp(nullable=False),
        "received_at": dt.Timestamp(nullable=False),
        "properties": dt.string,  # JSON text
        "context": dt.string,  # JSON text
        "source": dt.String(nullable=False),
    }
)

# One row per (entity, trait) assignment. kind is "user" or "account"; once marks
# $set_once semantics (the first value wins instead of the latest).
TRAITS_SCHEMA = ibis.schema(
    {
        "project_id": dt.String(nullable=False),
        "kind": dt.String(nullable=False),
        "entity_id": dt.String(nullable=False),
        "trait": dt.String(nullable=False),
        "value": dt.string,  # JSON text
        "once": dt.Boolean(nullable=False),
        "set_at": dt.Timestamp(nullable=False),
        "received_at": dt.Timestamp(nullable=False),
        "message_id": dt.String(nullable=False),
    }
)

# alias_id (an anonymous id or a previous user id) now belongs to user_id.
IDENTITIES_SCHEMA = ibis.schema(
    {
        "project_id": dt.String(nullable=False),
        "alias_id": dt.String(nullable=False),
        "user_id": dt.String(nullable=False),
        "linked_at": dt.Timestamp(nullable=False),
        "received_at": dt.Timestamp(nullable=False),
        "message_id": dt.String(nullable=False),
    }
)

ACCOUNT_LINKS_SCHEMA = ibis.schema(
    {
        "project_id": dt.String(nullable=False),
        "user_id": dt.String(nullable=False),
        "account_id": dt.String(nullable=False),
        "linked_at": dt.Timestamp(nullable=False),
        "received_at": dt.Timestamp(nullable=False),
        "message_id": dt.String(nullable=False),
    }
)

PROJECTS_SCHEMA = ibis.schema(
    {
        "project_id": dt.String(nullable=False),
        "name": dt.String(nullable=False),
        "write_key": dt.String(nullable=False),
        "secret_key_hash": dt.String(nullable=False),
        "created_at": dt.Timestamp(nullable=False),
    }
)

# Daily per-user per-event counts, written with the events they count (store/rollups.py).
ROLLUPS_SCHEMA = ibis.schema(
    {
        "project_id": dt.String(nullable=False),
        "user_id": dt.string,
        "anonymous_id": dt.string,
        "event": dt.String(nullable=False),
        "type": dt.String(nullable=False),
        "day": dt.Int32(nullable=False),  # days since 1970-01-01 of timestamp, UTC
        "received_day": dt.Int32(nullable=False),  # the same of received_at
        "n": dt.Int64(nullable=False),
        "first_ts": dt.Timestamp(nullable=False),
        "last_ts": dt.Timestamp(nullable=False),
    }
)

# The receive days whose rollup rows were merged (store/rollups.py, Store.compact_rollups).
COMPACTIONS_SCHEMA = ibis.schema(
    {"received_day": dt.Int32(nullable=False), "compacted_at": dt.Timestamp(nullable=False)}
)

# Who was active on which day, of the compacted receive days (store/activity.py).
ACTIVITY_SCHEMA = ibis.schema(
    {
        "project_id": dt.String(nullable=False),
        "distinct_id": dt.String(nullable=False),  # user_id, else anonymous_id
        "day": dt.Int32(nullable=False),
        "received_day": dt.Int32(nullable=False),
    }
)

TABLES: dict[str, ibis.Schema] = {
    EVENTS: EVENTS_SCHEMA,
    TRAITS: TRAITS_SCHEMA,
    IDENTITIES: IDENTITIES_SCHEMA,
    ACCOUNT_LINKS: ACCOUNT_LINKS_SCHEMA,
    PROJECTS: PROJECTS_SCHEMA,
    ROLLUPS: ROLLUPS_SCHEMA,
    COMPACTIONS: COMPACTIONS_SCHEMA,
    ACTIVITY: ACTIVITY_SCHEMA,
}
