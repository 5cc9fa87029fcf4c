"""The project at a glance: how many users, accounts and events, and who is active.

Each number is one aggregation in the engine; nothing loads users into Python.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from segmently.profile.build import ACTIVITY_TYPES
from segmently.store import Store, schema
from segmently.store.views import resolved_events

MAX_DAYS = 366


def totals(store: Store, project_id: str, as_of: datetime) -> dict[str, int]:
    """Users (people with any event), accounts (linked to a user) and events, at as_of."""
    e = resolved_events(store, project_id, as_of)
    counts = e.aggregate(users=e.person_id.nunique(), events=e.count()).to_pyarrow()
    links = store.table(schema.ACCOUNT_LINKS)
    links = links.filter(links.project_id == project_id)
    accounts = links.account_id.nunique().to_pyarrow().as_py()
    return {"users": int(counts["users"][0].as_py() or 0),
            "events": int(counts["events"][0].as_py() or 0),
            "accounts": int(accounts or 0)}


def active_users(store: Store, project_id: str, as_of: datetime,
                 days: int = 90) -> list[dict[str, Any]]:
    """[{day, users}]: distinct active users per UTC day (track, page or screen events)
    over the `days` days before as_of, oldest first; days without activity are absent."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days: must be between 1 and {MAX_DAYS}")
    start = (as_of - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    e = resolved_events(store, project_id, as_of)
    e = e.filter(e.type.isin(ACTIVITY_TYPES), e.timestamp >= start)
    per_day = e.group_by(day=e.timestamp.date()).aggregate(users=e.person_id.nunique())
    rows = per_day.order_by("day").to_pyarrow().to_pylist()
    return [{"day": r["day"].isoformat(), "users": int(r["users"])} for r in rows]
