"""Project-wide activity numbers: people, events, and distinct active users per day.

Each is one aggregation over the daily rollups (store/rollups.py): a user's events of one
day are one row there, so a hundred million events are read as a fraction of that, and
nothing loads users into Python. Read by the profile runs (`stored.py`) and
`insights/overview.py`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis.expr.types as ir

from segmently.store import Store
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.rollups import day_number
from segmently.store.views import resolved_activity_days, resolved_daily_rows

MAX_DAYS = 366


def totals(store: Store, project_id: str, as_of: datetime,
           known_at: datetime | None = None) -> tuple[int, int]:
    """(people with any event, events) before as_of, received by known_at (None: ever)."""
    rows = resolved_daily_rows(store, project_id, as_of, [], known_at=known_at)
    counts = rows.aggregate(people=rows.person_id.nunique(), events=rows.n.sum()).to_pyarrow()
    return int(counts["people"][0].as_py() or 0), int(counts["events"][0].as_py() or 0)


def daily_active(store: Store, project_id: str, as_of: datetime,
                 days: int = MAX_DAYS, known_at: datetime | None = None) -> ir.Table:
    """(day: days since 1970-01-01, users): distinct people with a track, page or screen
    event on each UTC day of the `days` days before as_of; days without any are absent."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days: must be between 1 and {MAX_DAYS}")
    start = (as_of - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    if known_at is None:  # as known now: the activity days (store/activity.py)
        active = resolved_activity_days(store, project_id, as_of, since=day_number(start),
                                        distinct=False)
        return active.group_by("day").aggregate(users=active.person_id.nunique())
    rows = resolved_daily_rows(store, project_id, as_of, [start],  # midnight: no raw day
                               known_at=known_at)
    rows = rows.filter(rows.type.isin(ACTIVITY_TYPES), rows.day >= day_number(start))
    return rows.group_by("day").aggregate(users=rows.person_id.nunique())
