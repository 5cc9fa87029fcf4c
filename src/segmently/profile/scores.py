"""Engagement and health scores, and lifecycle states, over the per-user profile.
Columns of the profile (`build.py`), weighted as the vocabulary says (`config.py`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from segmently.profile.config import EngagementScore, HealthScore
from segmently.profile.literals import f64


def engagement_start(cfg: EngagementScore, as_of: datetime) -> datetime:
    return as_of - timedelta(days=cfg.window_days)


def engagement(rows: ir.Table, cfg: EngagementScore, as_of: datetime,
               scale: float | None = None) -> ir.Table:
    """person_id -> engagement_points (weighted event count in the window), engagement_score.

    `rows` are activity events as counted rows (person_id, event, first_ts, n): daily
    rollup rows (store/views.resolved_daily_rows) or raw events with n = 1. The scale is
    relative to the most engaged user unless `points_for_100` is set, so every user counts
    even for one person's profile, unless that user's points (`scale`, e.g. kept with a
    stored profile run at the same instant) are already known: then `rows` may be one
    person's."""
    e = rows.filter(rows.first_ts >= ibis.literal(engagement_start(cfg, as_of)))
    weight = ibis.cases(*[(e.event == name, f64(w)) for name, w in cfg.weights.items()],
                        else_=f64(0.0)) if cfg.weights else f64(1.0)
    pts = e.mutate(_w=weight * e.n.cast("float64")).group_by("person_id").aggregate(
        engagement_points=lambda t: t._w.sum())
    known = cfg.points_for_100 or scale
    top = f64(float(known)) if known is not None else pts.engagement_points.max().over()
    score = ibis.cases((top > 0, (pts.engagement_points.clip(upper=top) * 100.0 / top)),
                       else_=0.0)
    return pts.mutate(engagement_score=score.round(1).cast("float64"))  # PG rounds to numeric


def health(profile: ir.Table, cfg: HealthScore) -> ir.Table:
    """Adds health_score (0-100) and health_band to a profile with the component columns."""
    components = {
        "engagement": profile.engagement_score.fill_null(f64(0.0)),
        "recency": ((1.0 - profile.days_since_last_seen.cast("float64") / cfg.recency_days)
                    .clip(lower=0.0) * 100.0).fill_null(f64(0.0)),
        "nps": (profile.nps_score.cast("float64") * 10.0).fill_null(f64(cfg.nps_missing)),
        "payments": ibis.cases((profile.payments_missed_window.fill_null(0) > 0, f64(0.0)),
                               else_=f64(100.0)),
        "adoption": profile.adoption_share.fill_null(f64(0.0)) * 100.0,
    }
    total_weight = sum(c.weight for c in cfg.components)
    score = sum(components[c.kind] * (c.weight / total_weight) for c in cfg.components)
    profile = profile.mutate(health_score=score.round(1).cast("float64"))
    band = ibis.cases(*[(profile.health_score >= b.min, b.name) for b in cfg.bands],
                      else_=cfg.bands[-1].name)
    return profile.mutate(health_band=band)


def lifecycle(events: ir.Table, as_of: datetime, period_days: int = 7) -> ir.Table:
    """person_id -> lifecycle for the period ending at as_of (Mixpanel/Amplitude style).

    new: first seen in this period; returning: active in this and the previous period;
    resurrected: active now, not in the previous period, seen before it; dormant: active in
    the previous period, not in this one; inactive: none of those.
    """
    cur = ibis.literal(as_of - timedelta(days=period_days))
    prev = ibis.literal(as_of - timedelta(days=2 * period_days))
    per = events.group_by("person_id").aggregate(
        _first=events.timestamp.min(),
        _now=events.count(where=events.timestamp >= cur),
        _before=events.count(where=(events.timestamp >= prev) & (events.timestamp < cur)),
    )
    state = ibis.cases(
        ((per._now > 0) & (per._first >= cur), "new"),
        ((per._now > 0) & (per._before > 0), "returning"),
        (per._now > 0, "resurrected"),
        (per._before > 0, "dormant"),
        else_="inactive",
    )
    return per.select(person_id=per.person_id, lifecycle=state)
