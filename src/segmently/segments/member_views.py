"""A segment's members as the segment page shows them: a sortable, searchable page of
members with their metrics, breakdowns, and who entered or left recently.

Metrics come from the profile (profile.build_profiles), whose sessions alone scan every
event with a window function: about 30 s for 200,000 users on 2 cores. So the columns
the page shows are computed once per snapshot instant for every user (`ProfileCache`,
a narrow Arrow table, ~100 bytes a user) and each page joins, searches, sorts, counts
and cuts the segment's members against it in an in-memory DuckDB: one page of rows
reaches Python, and paging through a million members costs milliseconds once warm.
Membership read live (no snapshot) has no stable instant; its profile is computed per
request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from segmently.profile.accounts import user_accounts
from segmently.profile.build import build_profiles
from segmently.profile.config import Vocabulary
from segmently.segments import snapshots as snap
from segmently.segments.api_ops import Members, member_ids
from segmently.segments.errors import RuleError
from segmently.store import Store

COLUMNS = ("user_id", "plan", "last_seen", "events_window", "active_days_window",
           "sessions_window", "engagement_score", "health_score", "health_band", "lifecycle",
           "journey_stage")
BREAKDOWNS = ("plan", "account_id", "health_band", "lifecycle", "journey_stage")
MAX_PAGE = 500
MAX_BARS = 20
CACHED_INSTANTS = 4


def profile_columns(store: Store, project_id: str, vocab: Vocabulary,
                    as_of: datetime) -> pa.Table:
    """COLUMNS and account_id of every user at as_of (journey_stage null without
    milestones), computed in the engine."""
    prof = build_profiles(store, project_id, vocab, as_of).users
    if "journey_stage" not in prof.columns:
        prof = prof.mutate(journey_stage=ibis.null("string"))
    acct = user_accounts(store, project_id, as_of)
    t = prof.left_join(acct, prof.user_id == acct.person_id)
    return t.select(*COLUMNS, "account_id").to_pyarrow()


class ProfileCache:
    """Profile columns per (project, instant, vocabulary), the latest few kept. One
    computation per key at a time: concurrent requests for it wait for the first."""

    def __init__(self, size: int = CACHED_INSTANTS) -> None:
        self.size = size
        self._tables: OrderedDict[tuple[str, datetime, str], pa.Table] = OrderedDict()
        self._locks: dict[tuple[str, datetime, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, store: Store, project_id: str, vocab: Vocabulary,
            as_of: datetime) -> pa.Table:
        key = (project_id, as_of, vocab.model_dump_json())
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._tables:
                    self._tables.move_to_end(key)
                    return self._tables[key]
            table = profile_columns(store, project_id, vocab, as_of)
            with self._guard:
                self._tables[key] = table
                while len(self._tables) > self.size:
                    old, _ = self._tables.popitem(last=False)
                    self._locks.pop(old, None)
            return table

    def warm(self, store: Store, project_id: str, vocab: Vocabulary, as_of: datetime) -> None:
        """After a refresh: compute the new instant's columns now, for projects whose
        member tables were looked at, so the next page view is fast."""
        with self._guard:
            used = any(key[0] == project_id for key in self._tables)
        if used:
            self.get(store, project_id, vocab, as_of)


def _check(value: str, allowed: tuple[str, ...], field: str) -> None:
    if value not in allowed:
        raise RuleError(f"{field}: {value!r} is not one of {', '.join(allowed)}")


def _members_with_profiles(store: Store, project_id: str, found: Members, vocab: Vocabulary,
                           cache: ProfileCache | None, search: str = ""
                           ) -> tuple[ir.Table, ibis.BaseBackend]:
    """The members (id containing `search`, any case) left-joined to their profile
    columns, as an expression over an in-memory DuckDB holding both as Arrow."""
    ids = found.ids
    if search:
        ids = ids.filter(ids.user_id.lower().contains(search.lower()))
    profiles = cache.get(store, project_id, vocab, found.as_of) \
        if cache is not None and found.source == "snapshot" \
        else profile_columns(store, project_id, vocab, found.as_of)
    local = ibis.duckdb.connect()
    members, prof = ibis.memtable(ids.to_pyarrow()), ibis.memtable(profiles)  # zero copy
    joined = members.left_join(prof, members.user_id == prof.user_id)
    return joined.drop("user_id_right"), local


def member_table(store: Store, project_id: str, name: str, vocab: Vocabulary, *,
                 search: str = "", sort: str = "user_id", descending: bool = False,
                 offset: int = 0, limit: int = 50,
                 cache: ProfileCache | None = None) -> dict[str, Any]:
    """{total, columns, members: [{column: value}], sort, as_of, source}: one page of
    members whose id contains `search` (any case), sorted by a metric (ties by user id)."""
    _check(sort, COLUMNS, "sort")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise RuleError(f"limit: must be between 1 and {MAX_PAGE}; offset at least 0")
    found = member_ids(store, project_id, name, None, vocab)
    t, local = _members_with_profiles(store, project_id, found, vocab, cache, search)
    key = t[sort].desc(nulls_first=False) if descending else t[sort].asc(nulls_first=False)
    keys = [key] if sort == "user_id" else [key, t.user_id]
    page = t.order_by(keys).limit(limit, offset=offset).select(*COLUMNS)
    rows = local.to_pyarrow(page).to_pylist()
    total = int(local.to_pyarrow(t.count()).as_py())
    return {"total": total, "columns": list(COLUMNS), "members": rows, "sort": sort,
            "as_of": found.as_of.isoformat(), "source": found.source, "offset": offset,
            "limit": limit}


def breakdown(store: Store, project_id: str, name: str, vocab: Vocabulary, by: str,
              cache: ProfileCache | None = None) -> list[dict[str, Any]]:
    """[{value, users}] of the members grouped by plan, account, health band, lifecycle
    or journey stage; the largest MAX_BARS values, None for members without one."""
    _check(by, BREAKDOWNS, "by")
    found = member_ids(store, project_id, name, None, vocab)
    t, local = _members_with_profiles(store, project_id, found, vocab, cache)
    counts = t.group_by(value=t[by]).aggregate(users=t.count())
    rows = counts.order_by([counts.users.desc(), counts.value]).limit(MAX_BARS)
    return local.to_pyarrow(rows).to_pylist()


def recent_transitions(store: Store, project_id: str, name: str,
                       limit: int = 50) -> list[dict[str, Any]]:
    """[{user_id, kind, as_of}]: the latest enter/exit records of a segment, newest
    first (only refreshes write them)."""
    snap.ensure_tables(store)
    t = snap.transitions(store, project_id, name)
    rows = t.order_by([t.as_of.desc(), t.user_id]).limit(limit)
    return rows.select("user_id", "kind", "as_of").to_pyarrow().to_pylist()
