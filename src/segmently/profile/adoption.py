"""Feature adoption and journey milestones per user.

Both come out in long form (one row per user and feature / milestone) because their names
are the workspace's, not ours: a name never becomes a column name. Each is computed in one
aggregation over the matching events, whatever the number of features or milestones.
Read by the profile (`build.py`) and by `insights/basis.py` for a project never refreshed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeAlias

import ibis
import ibis.expr.types as ir

from segmently.profile.config import Feature, Milestone
from segmently.profile.matchers import EventMatcher, any_of

# (the matching events, their flag for one item) -> that item's metric
Aggregate: TypeAlias = Callable[[ir.Table, ir.BooleanColumn], ir.Value]


def _union(parts: list[ir.Table]) -> ir.Table | None:
    return ibis.union(*parts) if len(parts) > 1 else (parts[0] if parts else None)


def _per_item(events: ir.Table, items: list[tuple[str, list[EventMatcher]]],
              aggregates: dict[str, Aggregate]) -> ir.Table | None:
    """One aggregation with `_<i>_<metric>` columns, unpivoted to (person_id, name, metric...)."""
    if not items:
        return None
    matched = events.filter(any_of([m for _, ms in items for m in ms], events))
    flags = {f"_m{i}": any_of(ms, matched) for i, (_, ms) in enumerate(items)}
    matched = matched.mutate(**flags)
    metrics = {f"_{i}_{k}": fn(matched, matched[f"_m{i}"])
               for i in range(len(items)) for k, fn in aggregates.items()}
    wide = matched.group_by("person_id").aggregate(**metrics)
    parts = [wide.select(person_id=wide.person_id, name=ibis.literal(name),
                         **{k: wide[f"_{i}_{k}"] for k in aggregates})
             for i, (name, _) in enumerate(items)]
    return _union(parts)


def feature_usage(events: ir.Table, features: list[Feature], as_of: datetime,
                  window_days: int) -> ir.Table | None:
    """(person_id, feature, uses_window, first_used, last_used) for features ever used."""
    start = ibis.literal(as_of - timedelta(days=window_days))
    long = _per_item(events, [(f.name, f.events) for f in features], {
        "uses_window": lambda t, m: t.count(where=m & (t.timestamp >= start)),
        "first_used": lambda t, m: t.timestamp.min(where=m),
        "last_used": lambda t, m: t.timestamp.max(where=m),
    })
    if long is None:
        return None
    long = long.filter(long.first_used.notnull())
    return long.rename(feature="name")


def milestones_reached(events: ir.Table, milestones: list[Milestone]) -> ir.Table | None:
    """(person_id, milestone, step, reached_at): the first time each milestone happened."""
    long = _per_item(events, [(m.name, m.events) for m in milestones],
                     {"reached_at": lambda t, m: t.timestamp.min(where=m)})
    if long is None:
        return None
    steps = ibis.cases(*[(long.name == m.name, i + 1) for i, m in enumerate(milestones)],
                       else_=0)
    long = long.filter(long.reached_at.notnull()).mutate(step=steps)
    return long.rename(milestone="name").select("person_id", "milestone", "step", "reached_at")


def journey_stage(reached: ir.Table) -> ir.Table:
    """person_id -> the furthest milestone reached (journey_step, journey_stage, stage_since)."""
    ranked = reached.mutate(_r=ibis.row_number().over(group_by=reached.person_id,
                                                      order_by=reached.step.desc()))
    top = ranked.filter(ranked._r == 0)
    return top.select(person_id=top.person_id, journey_step=top.step,
                      journey_stage=top.milestone, stage_since=top.reached_at)
