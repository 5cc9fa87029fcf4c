"""What the overview, journey and adoption insights read: the profile kept at the
project's latest refresh, else one computed from the events now.

Segments are compared at their snapshots; reading features and milestones at the same
instant keeps a segment's members and their usage consistent, and lets a million users'
funnel or a twenty-segment comparison be a join of stored rows instead of a scan of every
event (profile/stored.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import ibis.expr.types as ir

from segmently.profile import stored
from segmently.profile.adoption import feature_usage, milestones_reached
from segmently.profile.config import Vocabulary
from segmently.segments import definitions as defs
from segmently.segments import snapshots as snap
from segmently.store import Store
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.views import resolved_events


@dataclass(frozen=True)
class Basis:
    as_of: datetime
    users: ir.Table  # user_id of everyone known at as_of
    features: ir.Table | None  # (user_id, feature) used in the activity window
    milestones: ir.Table | None  # (user_id, step, reached_at)
    run: stored.Run | None = None  # the kept profile run read; None: computed live


def latest_refresh(store: Store, project_id: str) -> datetime | None:
    """The newest snapshot instant among the project's live segments."""
    live = defs.current(store, project_id)
    instants = [row["as_of"] for name, row in snap.latest(store, project_id).items()
                if name in live]
    return max(instants, default=None)


def _live(store: Store, project_id: str, vocab: Vocabulary, as_of: datetime) -> Basis:
    e = resolved_events(store, project_id, as_of)
    users = e.select(user_id=e.person_id).distinct()
    e = e.filter(e.type.isin(ACTIVITY_TYPES))
    usage = feature_usage(e, vocab.features, as_of, vocab.activity_window_days)
    if usage is not None:
        usage = usage.filter(usage.uses_window > 0)
        usage = usage.select(user_id=usage.person_id, feature=usage.feature)
    reached = milestones_reached(e, vocab.milestones)
    if reached is not None:
        reached = reached.select(user_id=reached.person_id, step=reached.step,
                                 reached_at=reached.reached_at)
    return Basis(as_of, users, usage, reached)


def basis(store: Store, project_id: str, vocab: Vocabulary, keeper: stored.RunSource,
          now: datetime) -> Basis:
    """The stored profile at the latest refresh (the previous one while it is being
    recorded), else live at `now` for a project never refreshed."""
    instant = latest_refresh(store, project_id)
    if instant is None:
        return _live(store, project_id, vocab, now)
    run = keeper.current(store, project_id, vocab, instant)
    return Basis(run.as_of, stored.users(store, run).select("user_id"),
                 stored.features_used(store, run) if vocab.features else None,
                 stored.milestones(store, run) if vocab.milestones else None, run)
