"""Profiles kept in the store, one run per refresh instant, for the pages that list or
aggregate every user's metrics.

Building every user's profile reads every event of the activity window (sessions need each
user's events in order): about a minute for a million users on two cores. Segment pages
sort a million members by health score, break them down by plan and compare feature
adoption across twenty segments; none of that can wait a minute per click, and the
numbers only change when segments are refreshed. So a run computes the profile once at a
segment snapshot's instant and keeps three narrow tables:

- `profile_users`: every metric of `build_profiles`, one row per user (member tables show
  some, the user page all of one row);
- `profile_features`: (user, feature, uses in the window, first and last use) for each
  feature a user used;
- `profile_milestones`: (user, milestone, step, reached_at) for each milestone reached;
- `profile_daily_active`: distinct active people per day (profile/daily.py);

and `profile_runs` says which runs are complete, for which vocabulary, with the
project's totals at that instant. Only the latest
`KEEP` instants of a project are kept: they are caches of what the events say, never a
source of truth, and a run at any instant can be computed again.

Recorded by `core.Project.refresh` (with `profiles`, as `segments refresh` does) and by a
`RunSource` (the server's is `runtime/profiles.py`); read by `segments/member_views.py`
and `insights/` (through `basis.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from segmently.profile import daily
from segmently.profile.accounts import user_accounts
from segmently.profile.build import Profiles, build_profiles
from segmently.profile.config import Vocabulary
from segmently.store import Store, utcnow
from segmently.store.rows import arrow_schema

log = logging.getLogger(__name__)
USERS, FEATURES, MILESTONES, ACTIVE, RUNS = (
    "profile_users", "profile_features", "profile_milestones", "profile_daily_active",
    "profile_runs")
KEEP = 3  # instants per project: the latest refresh, and the one a page may still show

_KEY = {"project_id": dt.String(nullable=False), "as_of": dt.Timestamp(nullable=False)}
USER_COLUMNS = {  # every metric of build_profiles: a user page reads its row here
    "user_id": dt.String(nullable=False), "account_id": dt.string, "plan": dt.string,
    "first_seen": dt.timestamp, "last_seen": dt.timestamp, "days_since_last_seen": dt.int64,
    "events_total": dt.int64, "events_window": dt.int64,
    "active_days_window": dt.int64, "active_weeks_window": dt.int64,
    "sessions_window": dt.int64, "avg_session_seconds": dt.float64,
    "stickiness": dt.float64, "nps_score": dt.int64, "nps_at": dt.timestamp,
    "nps_responses": dt.int64, "nps_category": dt.string, "payments_made": dt.int64,
    "payments_missed": dt.int64, "payments_missed_window": dt.int64,
    "revenue_to_date": dt.float64, "last_payment_at": dt.timestamp,
    "trial_started_at": dt.timestamp, "converted_at": dt.timestamp,
    "cancelled_at": dt.timestamp, "on_trial": dt.boolean,
    "engagement_points": dt.float64, "engagement_score": dt.float64,
    "lifecycle": dt.string, "features_used": dt.int64, "adoption_share": dt.float64,
    "journey_step": dt.int64, "journey_stage": dt.string, "stage_since": dt.timestamp,
    "health_score": dt.float64, "health_band": dt.string,
}
NO_MILESTONES = ("journey_step", "journey_stage", "stage_since")  # null without any
TABLES = {
    USERS: ibis.schema(_KEY | USER_COLUMNS),
    FEATURES: ibis.schema(_KEY | {"user_id": dt.String(nullable=False),  # used ever
                                  "feature": dt.String(nullable=False),
                                  "uses_window": dt.int64, "first_used": dt.timestamp,
                                  "last_used": dt.timestamp}),
    MILESTONES: ibis.schema(_KEY | {"user_id": dt.String(nullable=False),
                                    "milestone": dt.String(nullable=False),
                                    "step": dt.Int64(nullable=False),
                                    "reached_at": dt.Timestamp(nullable=False)}),
    ACTIVE: ibis.schema(_KEY | {"day": dt.Date(nullable=False),
                                "users": dt.Int64(nullable=False)}),
    RUNS: ibis.schema(_KEY | {"vocabulary": dt.String(nullable=False),
                              "users": dt.Int64(nullable=False),  # with activity
                              "people": dt.Int64(nullable=False),  # with any event
                              "events": dt.Int64(nullable=False),
                              # the most engaged user's points: scores one person alike
                              "engagement_scale": dt.Float64(nullable=False),
                              "computed_at": dt.Timestamp(nullable=False),
                              "seconds": dt.Float64(nullable=False)}),
}
_ARROW = {name: arrow_schema(s) for name, s in TABLES.items()}


@dataclass(frozen=True)
class Run:
    """One stored profile: a project's users' metrics at `as_of` under one vocabulary."""

    project_id: str
    as_of: datetime
    vocabulary: str
    users: int
    people: int
    events: int
    engagement_scale: float
    computed_at: datetime
    seconds: float


def vocabulary_key(vocab: Vocabulary) -> str:
    """Features, milestones and scores change the numbers: a run is only reused under the
    vocabulary it was computed with."""
    fields = vocab.model_dump(mode="json", include=set(Vocabulary.model_fields))
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def ensure_tables(store: Store) -> None:
    """Create the tables; tables of an older layout are dropped first (they only cache
    what the events say: runs are computed again when asked for)."""
    con = store.con

    def outdated() -> list[str]:
        existing = set(con.list_tables())
        return [name for name, sch in TABLES.items()
                if name in existing and set(con.get_schema(name).names) != set(sch.names)]

    if outdated():
        with store.write_lock:  # checked again: another thread may have replaced them
            if outdated():
                for name in set(TABLES) & set(con.list_tables()):
                    con.drop_table(name)
                store.forget_tables()
    store.ensure_tables(TABLES)


def _keyed(table: pa.Table, name: str, project_id: str, as_of: datetime) -> pa.Table:
    n = table.num_rows
    table = table.append_column("project_id", pa.repeat(pa.scalar(project_id, pa.string()), n))
    table = table.append_column("as_of", pa.repeat(pa.scalar(as_of, pa.timestamp("us")), n))
    return table.select(_ARROW[name].names).cast(_ARROW[name])


def _user_rows(store: Store, project_id: str, prof: Profiles, as_of: datetime) -> ir.Table:
    users = prof.users
    if "journey_stage" not in users.columns:  # no milestones declared
        users = users.mutate(**{c: ibis.null(USER_COLUMNS[c]) for c in NO_MILESTONES})
    acct = user_accounts(store, project_id, as_of, known_at=as_of)
    users = users.left_join(acct, users.user_id == acct.person_id)
    return users.select(**{c: users[c].cast(t) for c, t in USER_COLUMNS.items()})


def live_users(store: Store, project_id: str, vocab: Vocabulary, as_of: datetime) -> ir.Table:
    """What `users` of a run at as_of would hold, as an expression computed on every
    read: for instants no run is kept for (a live evaluation)."""
    return _user_rows(store, project_id,
                      build_profiles(store, project_id, vocab, as_of, known_at=as_of), as_of)


def compute(store: Store, project_id: str, vocab: Vocabulary,
            as_of: datetime) -> dict[str, pa.Table]:
    """The rows of a run, computed in the engine; only the narrow results reach Arrow.
    A run is of a refresh instant as known at it (what the refresh at now evaluated), so
    a run recorded minutes later, on a page view, still agrees with the snapshot."""
    prof = build_profiles(store, project_id, vocab, as_of, known_at=as_of)
    rows = {USERS: _user_rows(store, project_id, prof, as_of).to_pyarrow()}
    empty = {name: pa.table({c: pa.array([], _ARROW[name].field(c).type)
                             for c in TABLES[name] if c not in _KEY})
             for name in (FEATURES, MILESTONES)}
    if prof.features is not None:
        f = prof.features
        rows[FEATURES] = f.select(user_id=f.person_id, feature=f.feature,
                                  uses_window=f.uses_window.cast("int64"),
                                  first_used=f.first_used, last_used=f.last_used).to_pyarrow()
    if prof.milestones is not None:
        m = prof.milestones
        rows[MILESTONES] = m.select(user_id=m.person_id, milestone=m.milestone,
                                    step=m.step.cast("int64"),
                                    reached_at=m.reached_at).to_pyarrow()
    active = daily.daily_active(store, project_id, as_of, known_at=as_of).to_pyarrow()
    rows[ACTIVE] = pa.table({"day": active["day"].cast(pa.int32()).cast(pa.date32()),
                             "users": active["users"]})
    return {name: _keyed(rows.get(name, empty.get(name)), name, project_id, as_of)
            for name in (USERS, FEATURES, MILESTONES, ACTIVE)}


def runs(store: Store, project_id: str) -> list[Run]:
    t = store.table(RUNS)
    rows = t.filter(t.project_id == project_id).order_by(t.as_of.desc()).to_pyarrow()
    return [Run(**r) for r in rows.to_pylist()]


def find(store: Store, project_id: str, vocab: Vocabulary, as_of: datetime) -> Run | None:
    """The stored run at exactly `as_of` under this vocabulary, if there is one."""
    if RUNS not in store.con.list_tables():  # e.g. a read-only lake
        return None
    key = vocabulary_key(vocab)
    return next((r for r in runs(store, project_id)
                 if r.as_of == as_of and r.vocabulary == key), None)


def record(store: Store, project_id: str, vocab: Vocabulary, as_of: datetime) -> Run:
    """Compute a run (outside the write lock: ingestion goes on meanwhile) and store it in
    one transaction, replacing a run at the same instant and dropping all but the latest
    KEEP instants."""
    ensure_tables(store)
    started = time.perf_counter()
    rows = compute(store, project_id, vocab, as_of)
    points = pc.max(rows[USERS]["engagement_points"]).as_py()
    people, events = daily.totals(store, project_id, as_of, known_at=as_of)
    run = Run(project_id, as_of, vocabulary_key(vocab), rows[USERS].num_rows, people, events,
              float(points or 0.0), utcnow(), round(time.perf_counter() - started, 3))
    kept = sorted({r.as_of for r in runs(store, project_id) if r.as_of != as_of},
                  reverse=True)[:KEEP - 1]
    rows[RUNS] = pa.Table.from_pylist([run.__dict__], schema=_ARROW[RUNS])
    store.replace_rows(project_id, kept, rows)
    try:  # PostgreSQL: the pages join these tables next; without statistics, minutes
        store.refresh_statistics()
    except Exception:  # noqa: BLE001 - logged; the answers are the same without
        log.exception("statistics after the profile run of %s failed", project_id)
    return run


def _of(store: Store, name: str, run: Run) -> ir.Table:
    t = store.table(name)
    t = t.filter(t.project_id == run.project_id, t.as_of == run.as_of)
    return t.drop("project_id", "as_of")


def users(store: Store, run: Run) -> ir.Table:
    """user_id and the USER_COLUMNS of every user known at the run's instant."""
    return _of(store, USERS, run)


def features_used(store: Store, run: Run) -> ir.Table:
    """(user_id, feature) for each feature a user used in the activity window."""
    t = _of(store, FEATURES, run)
    return t.filter(t.uses_window > 0).select("user_id", "feature")


def milestones(store: Store, run: Run) -> ir.Table:
    """(user_id, step, reached_at) for each milestone a user reached."""
    return _of(store, MILESTONES, run).select("user_id", "step", "reached_at")


def person(store: Store, run: Run, user_id: str) -> dict[str, list[dict]] | None:
    """One user's rows of the run: {users: [metrics], features: [...], milestones: [...]}
    (what `core.Project.profile` computes, read back: three indexed reads, not a profile
    build), or None when the run has no such user."""
    out: dict[str, list[dict]] = {}
    for key, name in (("users", USERS), ("features", FEATURES), ("milestones", MILESTONES)):
        t = _of(store, name, run)
        out[key] = t.filter(t.user_id == user_id).drop("user_id").to_pyarrow().to_pylist()
    return out if out["users"] else None


def daily_active(store: Store, run: Run) -> ir.Table:
    """(day, users): distinct active people per day, up to daily.MAX_DAYS back."""
    return _of(store, ACTIVE, run)


class RunSource(Protocol):
    """What the pages' read models ask for the run of an instant (`runtime/profiles.py`'s
    Keeper, which records it in the background when missing)."""

    def current(self, store: Store, project_id: str, vocab: Vocabulary,
                as_of: datetime) -> Run: ...
