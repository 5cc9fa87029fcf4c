"""The project at a glance: how many users, accounts and events, and who is active.

Read at the latest refresh from the profile run kept there (profile/stored.py), like every
other page, so the overview of a hundred million events is a few stored rows; a project
never refreshed is counted from its rollups now (profile/daily.py). Called by
`web/ui_api.py` (`/api/overview`).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from segmently.insights.basis import Basis
from segmently.profile import daily, stored
from segmently.store import Store, schema

MAX_DAYS = daily.MAX_DAYS
_EPOCH = date(1970, 1, 1)


def _accounts(store: Store, project_id: str) -> int:
    links = store.table(schema.ACCOUNT_LINKS)
    links = links.filter(links.project_id == project_id)
    return int(links.account_id.nunique().to_pyarrow().as_py() or 0)


def overview(store: Store, project_id: str, base: Basis, days: int = 90) -> dict[str, Any]:
    """{as_of, users, accounts, events, active_users: [{day, users}]}: people with any
    event, accounts linked to a user, events, and distinct active users per UTC day over
    the `days` days before as_of (oldest first; days without activity are absent)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days: must be between 1 and {MAX_DAYS}")
    if base.run is None:
        people, events = daily.totals(store, project_id, base.as_of)
        rows = daily.daily_active(store, project_id, base.as_of, days).to_pyarrow().to_pylist()
        active = [{"day": _EPOCH + timedelta(days=int(r["day"])), "users": r["users"]}
                  for r in rows]
    else:
        people, events = base.run.people, base.run.events
        first = (base.as_of - timedelta(days=days)).date()
        t = stored.daily_active(store, base.run)
        active = t.filter(t.day >= first).to_pyarrow().to_pylist()
    return {"as_of": base.as_of.isoformat(), "users": people, "events": events,
            "accounts": _accounts(store, project_id),
            "active_users": [{"day": r["day"].isoformat(), "users": int(r["users"])}
                             for r in sorted(active, key=lambda r: r["day"])]}
