"""Segments over time, the simplest view: how many users entered and exited each segment
per period, from the stored transitions (`segments/snapshots.py`; entries and exits of
full and incremental refreshes alike). The flow between segments and what entrants did
next are `insights/flow.py`'s.
"""

from __future__ import annotations

from typing import Any, Literal

import ibis

from segmently.insights.registry import Context, Csv, InsightError, Params, analysis
from segmently.segments import snapshots as snap

PERIODS = {"day": "D", "week": "W", "month": "M"}


class ChangesParams(Params):
    segments: Csv = []  # default: every live segment
    period: Literal["day", "week", "month"] = "week"
    periods: int = 12  # how many, ending with the current one


@analysis("segment_changes", "Users who entered and exited each segment, per period",
          ChangesParams, page=False)
def segment_changes(ctx: Context, p: ChangesParams) -> dict[str, Any]:
    """{period, segments: [{segment, periods: [{start, entered, exited}]}]}: every period
    of the range is listed, zeros included."""
    live = ctx.segments()
    names = p.segments or live
    unknown = [n for n in names if n not in live]
    if unknown:
        raise InsightError(f"segment_changes: segments: no segment named {unknown[0]!r}")
    if not 1 <= p.periods <= 366:
        raise InsightError("segment_changes: periods: between 1 and 366")
    unit = PERIODS[p.period]
    end = ibis.literal(ctx.now, type="timestamp").truncate(unit)
    snap.ensure_tables(ctx.store)
    t = snap.transitions(ctx.store, ctx.project_id).filter(lambda x: x.segment.isin(names))
    t = t.mutate(start=t.as_of.truncate(unit))
    rows = t.group_by(["segment", "start"]).aggregate(
        entered=(t.kind == "entered").sum(), exited=(t.kind == "exited").sum()
    ).filter(lambda x: x.start <= end).to_pyarrow().to_pylist()
    starts = _starts(ctx.now, p.period, p.periods)
    found = {(r["segment"], r["start"]): r for r in rows}
    return {"period": p.period, "segments": [
        {"segment": name, "periods": [
            {"start": s.isoformat(),
             "entered": int(found.get((name, s), {}).get("entered") or 0),
             "exited": int(found.get((name, s), {}).get("exited") or 0)} for s in starts]}
        for name in names]}


def _starts(now: Any, period: str, count: int) -> list[Any]:
    """The starts of the last `count` periods, oldest first (weeks start on Monday)."""
    from datetime import timedelta

    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return [day - timedelta(days=i) for i in reversed(range(count))]
    if period == "week":
        monday = day - timedelta(days=day.weekday())
        return [monday - timedelta(weeks=i) for i in reversed(range(count))]
    first = day.replace(day=1)
    out = [first]
    while len(out) < count:
        out.insert(0, (out[0] - timedelta(days=1)).replace(day=1))
    return out
