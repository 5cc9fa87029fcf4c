"""The per-user profile: every metric in one table, one row per person known at as_of.

`build_profiles` joins the metrics of `activity.py`, `adoption.py`, `scores.py`,
`feedback.py` and `billing.py`. Called by `core.Project.profile`, `stored.py` (a run),
the metric conditions (`segments/kinds/product.py`) and `api.py`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis
import ibis.expr.types as ir

from segmently.profile.activity import activity
from segmently.profile.adoption import feature_usage, journey_stage, milestones_reached
from segmently.profile.billing import billing
from segmently.profile.config import Vocabulary
from segmently.profile.feedback import nps
from segmently.profile.jsonvalues import string_at
from segmently.profile.literals import f64
from segmently.profile.scores import engagement, engagement_start, health, lifecycle
from segmently.profile.vocabulary import PLAN_TRAIT
from segmently.store import Store
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.views import (
    has_rollups,
    latest_traits,
    resolved_daily_rows,
    resolved_events,
)


@dataclass(frozen=True)
class Profiles:
    """The wide per-user table and the long per-feature / per-milestone tables behind it."""

    users: ir.Table
    features: ir.Table | None
    milestones: ir.Table | None


def _attach(left: ir.Table, right: ir.Table | None, key: str = "person_id") -> ir.Table:
    if right is None:
        return left
    joined = left.left_join(right, left.user_id == right[key])
    return joined.drop(key) if key in joined.columns else joined


def _plan(store: Store, project_id: str, as_of: datetime,
          known_at: datetime | None, person: str | None) -> ir.Table:
    t = latest_traits(store, project_id, "user", as_of, known_at, person, [PLAN_TRAIT])
    return t.select(person_id=t.entity_id, plan=string_at(t.value))


def _activity_rows(store: Store, project_id: str, vocab: Vocabulary, as_of: datetime,
                   person: str | None = None, known_at: datetime | None = None) -> ir.Table:
    """Every user's (or only `person`'s) activity as counted rows for the engagement
    score: daily rollups where the store has them, else raw events."""
    if has_rollups(store):
        rows = resolved_daily_rows(store, project_id, as_of,
                                   [engagement_start(vocab.engagement, as_of)], person,
                                   known_at)
    else:
        e = resolved_events(store, project_id, as_of, person, known_at)
        rows = e.mutate(first_ts=e.timestamp, n=ibis.literal(1, type="int64"))
    return rows.filter(rows.type.isin(ACTIVITY_TYPES))


def build_profiles(store: Store, project_id: str, vocab: Vocabulary, as_of: datetime,
                   person: str | None = None,
                   engagement_scale: float | None = None,
                   known_at: datetime | None = None) -> Profiles:
    """Every person's profile, or only `person`'s: then only their events are read,
    except for the engagement scale, which is relative to every user (from rollups)
    unless `engagement_scale` gives it (the most engaged user's points at as_of, as a
    stored run keeps it), so one person's profile costs a fraction of everyone's and
    reads the same. What had happened by as_of counts, as received by known_at (None:
    everything received)."""
    # One person: each part is read into a temporary table (engine-native, unlike an
    # in-memory one) as it is built, so the answers compile over small leaves; Ibis
    # compiling the whole graph at once cost more than the reading (2.25 -> 1.5 s at 5k
    # users). Everyone's (and on Spark, whose cached views lose in-memory tables): one
    # graph, the engine plans it whole.
    small = person is not None and store.con.name in ("duckdb", "postgres")
    leaf = (lambda t: t.cache()) if small else (lambda t: t)
    everything = leaf(resolved_events(store, project_id, as_of, person, known_at))
    # identify/group/alias manage data; only what users did counts as activity
    events = everything.filter(everything.type.isin(ACTIVITY_TYPES))
    scaled = person if engagement_scale is not None else None
    engaged = engagement(_activity_rows(store, project_id, vocab, as_of, scaled, known_at),
                         vocab.engagement, as_of, engagement_scale)
    window = vocab.activity_window_days
    users = leaf(activity(events, as_of, window_days=window,
                          session_gap=vocab.session_gap_minutes * 60))
    for part in (nps(events), billing(events, as_of, window_days=30), engaged,
                 lifecycle(events, as_of), _plan(store, project_id, as_of, known_at, person)):
        users = _attach(users, leaf(part) if part is not None else None)
    features = feature_usage(events, vocab.features, as_of, window)
    if features is not None:
        features = leaf(features)
        used = features.filter(features.uses_window > 0)
        breadth = used.group_by("person_id").aggregate(features_used=used.count())
        users = _attach(users, breadth)
        users = users.mutate(features_used=users.features_used.fill_null(0))
        users = users.mutate(adoption_share=users.features_used.cast("float64")
                             / len(vocab.features))
    else:
        users = users.mutate(features_used=ibis.literal(0), adoption_share=f64(0.0))
    milestones = milestones_reached(events, vocab.milestones)
    if milestones is not None:
        milestones = leaf(milestones)
        users = _attach(users, journey_stage(milestones))
    users = users.mutate(engagement_score=users.engagement_score.fill_null(f64(0.0)),
                         engagement_points=users.engagement_points.fill_null(f64(0.0)))
    return Profiles(users=health(users, vocab.health), features=features, milestones=milestones)
