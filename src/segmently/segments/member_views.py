"""A segment's members as the segment page shows them: a sortable, searchable page of
members with their metrics, breakdowns, and who entered or left recently.

Metrics come from the profile. For a stored snapshot they are read from the profile run
kept at the snapshot's instant (profile/stored.py: computed once, by the refresh or by
the first page view; while it is being recorded, the previous run, and the table says
which instant its metrics are of), and each page joins, searches, sorts, counts and cuts
the members against it in the engine: one page of rows reaches Python. Membership read
live (no snapshot) has no stored instant; its profile is computed per request.

`Members` is what `core.Project.member_ids` returns; the tables here are called by
`web/ui_api.py` (`/api/segments/{name}/table|breakdown|transitions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis.expr.types as ir

from segmently.profile import stored
from segmently.profile.config import Vocabulary
from segmently.segments import snapshots as snap
from segmently.segments.errors import RuleError
from segmently.store import Store

COLUMNS = ("user_id", "plan", "last_seen", "events_window", "active_days_window",
           "sessions_window", "engagement_score", "health_score", "health_band", "lifecycle",
           "journey_stage")
BREAKDOWNS = ("plan", "account_id", "health_band", "lifecycle", "journey_stage")
MAX_PAGE = 500
MAX_BARS = 20


@dataclass(frozen=True)
class Members:
    """A segment's members as a lazy table, and where they come from (what
    `core.Project.member_ids` finds)."""

    ids: ir.Table  # one column, user_id
    as_of: datetime
    source: str  # "snapshot" or "live"


def member_profiles(store: Store, project_id: str, found: Members, vocab: Vocabulary,
                    keeper: stored.RunSource) -> tuple[ir.Table, datetime]:
    """The profile columns of every user, and the instant they are of: for a snapshot,
    the run kept at its instant (the previous run while that one is being recorded),
    else computed at the members' instant."""
    if found.source != "snapshot":
        return stored.live_users(store, project_id, vocab, found.as_of), found.as_of
    run = keeper.current(store, project_id, vocab, found.as_of)
    return stored.users(store, run), run.as_of


def _check(value: str, allowed: tuple[str, ...], field: str) -> None:
    if value not in allowed:
        raise RuleError(f"{field}: {value!r} is not one of {', '.join(allowed)}")


def _members_with_profiles(store: Store, project_id: str, found: Members, vocab: Vocabulary,
                           keeper: stored.RunSource, search: str = ""
                           ) -> tuple[ir.Table, datetime]:
    """The members (id containing `search`, any case) left-joined to their profile, and
    the instant of the metrics."""
    ids = found.ids
    if search:
        ids = ids.filter(ids.user_id.lower().contains(search.lower()))
    prof, metrics_as_of = member_profiles(store, project_id, found, vocab, keeper)
    return ids.left_join(prof, ids.user_id == prof.user_id).drop("user_id_right"), \
        metrics_as_of


def member_table(store: Store, project_id: str, found: Members, vocab: Vocabulary, *,
                 search: str = "", sort: str = "user_id", descending: bool = False,
                 offset: int = 0, limit: int = 50,
                 keeper: stored.RunSource) -> dict[str, Any]:
    """{total, columns, members: [{column: value}], sort, as_of, metrics_as_of, source}:
    one page of members whose id contains `search` (any case), sorted by a metric (ties by
    user id)."""
    _check(sort, COLUMNS, "sort")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise RuleError(f"limit: must be between 1 and {MAX_PAGE}; offset at least 0")
    t, metrics_as_of = _members_with_profiles(store, project_id, found, vocab, keeper, search)
    key = t[sort].desc(nulls_first=False) if descending else t[sort].asc(nulls_first=False)
    keys = [key] if sort == "user_id" else [key, t.user_id]
    page = t.order_by(keys).limit(limit, offset=offset).select(*COLUMNS)
    rows = page.to_pyarrow().to_pylist()
    total = int(t.count().to_pyarrow().as_py())
    return {"total": total, "columns": list(COLUMNS), "members": rows, "sort": sort,
            "as_of": found.as_of.isoformat(), "metrics_as_of": metrics_as_of.isoformat(),
            "source": found.source, "offset": offset,
            "limit": limit}


def breakdown(store: Store, project_id: str, found: Members, vocab: Vocabulary, by: str,
              keeper: stored.RunSource) -> list[dict[str, Any]]:
    """[{value, users}] of the members grouped by plan, account, health band, lifecycle
    or journey stage; the largest MAX_BARS values, None for members without one."""
    _check(by, BREAKDOWNS, "by")
    t, _ = _members_with_profiles(store, project_id, found, vocab, keeper)
    counts = t.group_by(value=t[by]).aggregate(users=t.count())
    rows = counts.order_by([counts.users.desc(), counts.value]).limit(MAX_BARS)
    return rows.to_pyarrow().to_pylist()


def recent_transitions(store: Store, project_id: str, name: str,
                       limit: int = 50) -> list[dict[str, Any]]:
    """[{user_id, kind, as_of}]: the latest enter/exit records of a segment, newest
    first (only refreshes write them)."""
    snap.ensure_tables(store)
    t = snap.transitions(store, project_id, name)
    rows = t.order_by([t.as_of.desc(), t.user_id]).limit(limit)
    return rows.select("user_id", "kind", "as_of").to_pyarrow().to_pylist()
