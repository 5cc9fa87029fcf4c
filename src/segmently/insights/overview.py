"""The project at a glance: how many users, accounts and events, and who is active.

Each number is one aggregation in the engine over the daily rollups (store/rollups.py):
a user's events of one day are one row there, so a hundred million events are read as
a fraction of that; nothing loads users into Python.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from segmently.profile.build import ACTIVITY_TYPES
from segmently.store import Store, schema
from segmently.store.rollups import day_number
from segmently.store.views import resolved_daily_rows

MAX_DAYS = 366
_EPOCH = date(1970, 1, 1)


def totals(store: Store, project_id: str, as_of: datetime) -> dict[str, int]:
    """Users (people with any event), accounts (linked to a user) and events, at as_of."""
    rows = resolved_daily_rows(store, project_id, as_of, [])
    counts = rows.aggregate(users=rows.person_id.nunique(), events=rows.n.sum()).to_pyarrow()
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
    rows = resolved_daily_rows(store, project_id, as_of, [start])
    rows = rows.filter(rows.type.isin(ACTIVITY_TYPES), rows.day >= day_number(start))
    per_day = rows.group_by("day").aggregate(users=rows.person_id.nunique())
    out = per_day.order_by("day").to_pyarrow().to_pylist()
    return [{"day": (_EPOCH + timedelta(days=int(r["day"]))).isoformat(),
             "users": int(r["users"])} for r in out]
