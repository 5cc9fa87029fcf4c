"""One person's stored data as the user page shows it: latest traits, and events newest
first, a page at a time.

Identity is resolved (events sent under an anonymous id before sign-up belong to the
user), and pages are keyset-paginated on (timestamp, message_id) so a page costs the same
however far back a person scrolls.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from segmently.store.store import Store
from segmently.store.views import identity_map, latest_traits, resolved_events

MAX_EVENTS = 500


def _aliases(store: Store, project_id: str, user_id: str) -> list[str]:
    """The other ids (anonymous, previous) merged into the user: a handful."""
    ids = identity_map(store, project_id)
    found = ids.filter(ids.user_id == user_id, ids.alias_id != user_id).select("alias_id")
    return found.to_pyarrow()["alias_id"].to_pylist()


def user_events(store: Store, project_id: str, user_id: str, *, limit: int = 50,
                before: tuple[datetime, str] | None = None) -> list[dict[str, Any]]:
    """[{timestamp, event, type, message_id, properties}] of the user, newest first,
    strictly before the `before` (timestamp, message_id) key when given."""
    if not 1 <= limit <= MAX_EVENTS:
        raise ValueError(f"limit: must be between 1 and {MAX_EVENTS}")
    e = resolved_events(store, project_id)
    ids = [user_id, *_aliases(store, project_id, user_id)]
    # the ids' own columns first, so the engine reads only this person's rows
    e = e.filter(e.user_id.isin(ids) | e.anonymous_id.isin(ids), e.person_id == user_id)
    if before is not None:
        at, message_id = before
        e = e.filter((e.timestamp < at) | ((e.timestamp == at) & (e.message_id < message_id)))
    page = e.order_by([e.timestamp.desc(), e.message_id.desc()]).limit(limit)
    rows = page.select("timestamp", "event", "type", "message_id", "properties") \
        .to_pyarrow().to_pylist()
    for row in rows:
        row["properties"] = orjson.loads(row["properties"]) if row["properties"] else {}
    return rows


def user_traits(store: Store, project_id: str, user_id: str) -> dict[str, Any]:
    """The latest value of each trait of the user (set_once: the first), JSON-decoded."""
    t = latest_traits(store, project_id, "user")
    rows = t.filter(t.entity_id == user_id).order_by("trait").to_pyarrow().to_pylist()
    return {r["trait"]: orjson.loads(r["value"]) if r["value"] else None for r in rows}
