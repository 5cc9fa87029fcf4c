"""A segment's members as the segment page shows them: a sortable, searchable page of
members with their metrics, breakdowns, and who entered or left recently.

Everything is joined, filtered, sorted, counted and cut to one page in the engine; at
most one page of rows reaches Python, so a segment of a million users costs the same
to page through as one of ten.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from segmently.profile.accounts import user_accounts
from segmently.profile.build import build_profiles
from segmently.profile.config import Vocabulary
from segmently.segments import snapshots as snap
from segmently.segments.api_ops import member_ids
from segmently.segments.errors import RuleError
from segmently.store import Store

COLUMNS = ("user_id", "plan", "last_seen", "events_window", "active_days_window",
           "sessions_window", "engagement_score", "health_score", "health_band", "lifecycle",
           "journey_stage")
BREAKDOWNS = ("plan", "account_id", "health_band", "lifecycle", "journey_stage")
MAX_PAGE = 500
MAX_BARS = 20


def _with_profiles(store: Store, project_id: str, ids: ir.Table, as_of: datetime,
                   vocab: Vocabulary) -> ir.Table:
    """Members joined with their profile row and account, computed at the membership's
    instant; columns a vocabulary without milestones lacks are null."""
    prof = build_profiles(store, project_id, vocab, as_of).users
    acct = user_accounts(store, project_id, as_of)
    t = ids.left_join(prof, ids.user_id == prof.user_id).drop("user_id_right")
    t = t.left_join(acct, t.user_id == acct.person_id).drop("person_id")
    if "journey_stage" not in t.columns:  # no milestones declared
        t = t.mutate(journey_stage=ibis.null("string"))
    return t


def _check(value: str, allowed: tuple[str, ...], field: str) -> None:
    if value not in allowed:
        raise RuleError(f"{field}: {value!r} is not one of {', '.join(allowed)}")


def member_table(store: Store, project_id: str, name: str, vocab: Vocabulary, *,
                 search: str = "", sort: str = "user_id", descending: bool = False,
                 offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """{total, members: [{column: value}], as_of, source}: one page of members whose id
    contains `search` (any case), sorted by a metric (ties by user id)."""
    _check(sort, COLUMNS, "sort")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise RuleError(f"limit: must be between 1 and {MAX_PAGE}; offset at least 0")
    found = member_ids(store, project_id, name, None, vocab)
    ids = found.ids
    if search:
        ids = ids.filter(ids.user_id.lower().contains(search.lower()))
    total = int(ids.count().to_pyarrow().as_py())
    t = _with_profiles(store, project_id, ids, found.as_of, vocab)
    key = t[sort].desc(nulls_first=False) if descending else t[sort].asc(nulls_first=False)
    keys = [key] if sort == "user_id" else [key, t.user_id]
    page = t.order_by(keys).limit(limit, offset=offset)
    rows = page.select(*COLUMNS).to_pyarrow().to_pylist()
    as_of, source = found.as_of, found.source
    return {"total": total, "members": rows, "as_of": as_of.isoformat(), "source": source,
            "offset": offset, "limit": limit}


def breakdown(store: Store, project_id: str, name: str, vocab: Vocabulary,
              by: str) -> list[dict[str, Any]]:
    """[{value, users}] of the members grouped by plan, account, health band, lifecycle
    or journey stage; the largest MAX_BARS values, None for members without one."""
    _check(by, BREAKDOWNS, "by")
    found = member_ids(store, project_id, name, None, vocab)
    t = _with_profiles(store, project_id, found.ids, found.as_of, vocab)
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
