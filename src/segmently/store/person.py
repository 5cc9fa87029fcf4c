"""One person's stored data as the user page shows it: latest traits, and events newest
first, a page at a time.

Identity is resolved (events sent under an anonymous id before sign-up belong to the
user), and pages are keyset-paginated on (timestamp, message_id) so a page costs the same
however far back a person scrolls. Called by `web/ui_api.py` (`/api/users/{id}/timeline`,
`/traits`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from segmently.store.store import Store
from segmently.store.views import latest_traits, resolved_events

MAX_EVENTS = 500


def user_events(store: Store, project_id: str, user_id: str, *, limit: int = 50,
                before: tuple[datetime, str] | None = None) -> list[dict[str, Any]]:
    """[{timestamp, event, type, message_id, properties}] of the user, newest first,
    strictly before the `before` (timestamp, message_id) key when given."""
    if not 1 <= limit <= MAX_EVENTS:
        raise ValueError(f"limit: must be between 1 and {MAX_EVENTS}")
    e = resolved_events(store, project_id, person=user_id)  # reads only this person's rows
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
