"""Segments over time, the simplest view: how many users entered and exited each segment
per period, from the stored transitions (`segments/snapshots.py`; entries and exits of
full and incremental refreshes alike). The flow between segments and what entrants did
next are `insights/flow.py`'s.
"""

from __future__ import annotations

from typing import Any, Literal

import ibis

from segmently.insights import usage
from segmently.insights.registry import Context, Csv, Params, analysis
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
    names = usage.check_segments(ctx, "segment_changes", p.segments or ctx.segments())
    usage.check_range("segment_changes", "periods", p.periods, 1, 366)
    unit = PERIODS[p.period]
    end = ibis.literal(ctx.now, type="timestamp").truncate(unit)
    snap.ensure_tables(ctx.store)
    t = snap.transitions(ctx.store, ctx.project_id).filter(lambda x: x.segment.isin(names))
    t = t.mutate(start=t.as_of.truncate(unit))
    rows = t.group_by(["segment", "start"]).aggregate(
        entered=(t.kind == "entered").sum(), exited=(t.kind == "exited").sum()
    ).filter(lambda x: x.start <= end).to_pyarrow().to_pylist()
    starts = usage.period_starts(ctx.now, p.period, p.periods)
    found = {(r["segment"], r["start"]): r for r in rows}
    return {"period": p.period, "segments": [
        {"segment": name, "periods": [
            {"start": s.isoformat(),
             "entered": int(found.get((name, s), {}).get("entered") or 0),
             "exited": int(found.get((name, s), {}).get("exited") or 0)} for s in starts]}
        for name in names]}

