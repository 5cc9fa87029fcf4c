"""The milestone funnel: how many users reached each step of the journey, and where the
others got stuck.

A user counts at step k when they reached every milestone up to k (in any order: the
journey is what was achieved, not a click path). The drop-off at step k is the users who
reached step k-1 but not k; `stuck` counts those whose furthest milestone is k-1 and who
have been there longer than `stuck_days`. Read over the basis (`basis.py`); called by
`web/ui_api.py` (`/api/insights/funnel`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from segmently.insights.basis import Basis

STUCK_DAYS = 7


def funnel(base: Basis, milestones: list[str], members: ir.Table | None = None,
           stuck_days: int = STUCK_DAYS) -> list[dict[str, Any]]:
    """[{step, milestone, users, share_of_first, dropped, stuck}] in journey order, over
    every user or only `members` (a table with a user_id column)."""
    reached = base.milestones
    if not milestones or reached is None:
        return []
    if members is not None:
        reached = reached.semi_join(members, reached.user_id == members.user_id)
    steps = range(1, len(milestones) + 1)
    per_user = reached.group_by("user_id").aggregate(
        **{f"_s{k}": (reached.step == k).any() for k in steps},
        _since=reached.reached_at.max())
    prefix: dict[int, ir.BooleanValue] = {}
    cond: ir.BooleanValue = ibis.literal(True)
    for k in steps:
        cond = cond & per_user[f"_s{k}"]
        prefix[k] = cond
    cutoff = ibis.literal(base.as_of - timedelta(days=stuck_days))
    aggs: dict[str, ir.Value] = {}
    for k in steps:
        aggs[f"reached_{k}"] = prefix[k].sum()
        if k > 1:
            here = prefix[k - 1] & ~prefix[k] & (per_user._since < cutoff)
            aggs[f"stuck_{k}"] = here.sum()
    counts = per_user.aggregate(**aggs).to_pyarrow().to_pylist()[0]
    out, first, previous = [], None, None
    for k, milestone in zip(steps, milestones, strict=True):
        users = int(counts[f"reached_{k}"] or 0)
        first = users if first is None else first
        out.append({"step": k, "milestone": milestone, "users": users,
                    "share_of_first": users / first if first else 0.0,
                    "dropped": (previous - users) if previous is not None else 0,
                    "stuck": int(counts.get(f"stuck_{k}") or 0)})
        previous = users
    return out
