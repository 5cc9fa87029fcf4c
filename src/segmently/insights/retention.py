"""Retention by cohort: of the users who started in a period, how many came back in each
period after.

- **Start** (the cohort): a user's first active day (default), the first day they did
  `start_event`, or the day they first entered `start_segment` (its first "entered"
  transition, `segments/snapshots.py`). The cohort is the period (day, week from Monday,
  month; UTC) holding that day; the cohorts shown are the last `cohorts` periods, ending
  with the current one.
- **Return**: a day with any activity (track, page, screen), or with `return_event`, on or
  after the start day. Period k of a cohort is the k-th calendar period after the
  cohort's own (period 0 is the cohort's period, from the start day on), as PostHog counts.
- **Modes**: `n_day`, a user counts in cell (cohort, k) when they returned in period k;
  `unbounded`, when they returned in period k or any later one (up to now).
- **Segments**: each segment's curve holds the users who are its members at its latest
  refresh (Context.members_of), beside everyone's.

Cells of periods not begun yet are null; the current period's are partial (counted so
far). Each group's overall curve is the cohorts' cells weighted by cohort size, over the
cohorts for which period k is complete. Everything is counted from the daily rollups
(`insights/usage.py`) in one query per answer; only `start_segment` reads transitions.
"""

from __future__ import annotations

from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from segmently.insights import usage
from segmently.insights.registry import Context, Csv, InsightError, Params, analysis
from segmently.segments import snapshots as snap
from segmently.store.rollups import day_number, day_of

NAME = "retention"
SIZE = -1  # the k of the row that counts a cohort's size


class RetentionParams(Params):
    period: Literal["day", "week", "month"] = "week"
    cohorts: int = 8  # how many cohort periods, ending with the current one
    periods: int = 8  # return periods shown after period 0
    start_event: str | None = None  # default: the first active day
    start_segment: str | None = None  # start: first entry into this segment
    return_event: str | None = None  # default: any activity
    mode: Literal["n_day", "unbounded"] = "n_day"
    segments: Csv = []  # curves side by side with everyone's


def _starts(ctx: Context, p: RetentionParams) -> ir.Table:
    """(person_id, start): each person's start day."""
    if p.start_segment is not None:
        snap.ensure_tables(ctx.store)
        t = snap.transitions(ctx.store, ctx.project_id, p.start_segment)
        t = t.filter(t.kind == "entered")
        return t.group_by(person_id=t.user_id.cast("string")).aggregate(
            start=day_of(t.as_of.min()).cast("int64"))
    first = usage.first_days(ctx, p.start_event)
    return first.select(person_id=first.person_id, start=first.first)


def _check(ctx: Context, p: RetentionParams) -> None:
    usage.check_range(NAME, "cohorts", p.cohorts)
    usage.check_range(NAME, "periods", p.periods, low=0)
    usage.check_event(NAME, "start_event", p.start_event)
    usage.check_event(NAME, "return_event", p.return_event)
    if p.start_event is not None and p.start_segment is not None:
        raise InsightError(f"{NAME}: start_segment: give start_event or start_segment, "
                           "not both")
    if p.start_segment is not None:
        usage.check_segments(ctx, NAME, [p.start_segment], "start_segment")
    usage.check_segments(ctx, NAME, p.segments)


@analysis(NAME, "Retention by cohort (N-day or unbounded), per segment", RetentionParams)
def retention(ctx: Context, p: RetentionParams) -> dict[str, Any]:
    """{period, mode, start, return, periods, cohorts: [start...], groups: [{name,
    cohorts: [{start, size, counts, rates, complete}], curve: [{period, retained, size,
    rate}]}]}; counts[k] / rates[k] for k = 0..periods (null: not begun)."""
    _check(ctx, p)
    cohort_starts = usage.starts(usage.current_start(ctx.now, p.period), p.period, p.cohorts)
    first, today = cohort_starts[0], day_number(ctx.now)
    starts = _starts(ctx, p)
    starts = starts.filter((starts.start >= first) & (starts.start <= today))
    starts = starts.mutate(cohort=usage.index_of(starts.start, p.period, cohort_starts))
    back = usage.active_days(ctx, p.return_event, since=first, distinct=False)
    j = starts.inner_join(back, starts.person_id == back.person_id)
    j = j.filter(j.day >= j.start)
    j = j.select(person_id=j.person_id, cohort=j.cohort,
                 k=usage.index_of(j.day, p.period, cohort_starts) - j.cohort)
    if p.mode == "unbounded":  # in period k or later: the latest period counts
        returns = j.group_by(["person_id", "cohort"]).aggregate(
            k=ibis.least(j.k.max(), p.periods))
    else:
        returns = j.filter(j.k <= p.periods).distinct()
    sized = starts.select(person_id=starts.person_id, cohort=starts.cohort,
                          k=ibis.literal(SIZE, type="int64"))
    rows = sized.union(returns.select(person_id=returns.person_id, cohort=returns.cohort,
                                      k=returns.k.cast("int64")))
    rows = usage.grouped(rows, usage.members(ctx, p.segments))
    counts = rows.group_by(["group", "cohort", "k"]).aggregate(users=rows.count())
    found: dict[tuple[str, int, int], int] = {
        (r["group"], int(r["cohort"]), int(r["k"])): int(r["users"])
        for r in counts.to_pyarrow().to_pylist()}
    return {"period": p.period, "mode": p.mode,
            "start": _side("first_event", None) if p.start_event is None
            and p.start_segment is None else
            _side("event", p.start_event) if p.start_event is not None else
            _side("segment", p.start_segment),
            "return": _side("any_activity", None) if p.return_event is None else
            _side("event", p.return_event),
            "periods": p.periods, "cohorts": [usage.iso(s) for s in cohort_starts],
            "groups": [_group(name, found, cohort_starts, p)
                       for name in usage.group_names(p.segments)]}


def _side(kind: str, name: str | None) -> dict[str, Any]:
    return {"kind": kind, "name": name}


def _group(name: str, found: dict[tuple[str, int, int], int], cohort_starts: list[int],
           p: RetentionParams) -> dict[str, Any]:
    current = len(cohort_starts) - 1  # the index of the current (incomplete) period
    cohorts = []
    retained = [0] * (p.periods + 1)
    sizes = [0] * (p.periods + 1)
    for c, start in enumerate(cohort_starts):
        size = found.get((name, c, SIZE), 0)
        cells: list[int | None] = []
        for k in range(p.periods + 1):
            if c + k > current:
                cells.append(None)
                continue
            if p.mode == "unbounded":
                cells.append(sum(found.get((name, c, j), 0) for j in range(k, p.periods + 1)))
            else:
                cells.append(found.get((name, c, k), 0))
        complete = max(0, min(current - c, p.periods + 1))  # cells of ended periods
        for k in range(complete):
            retained[k] += cells[k] or 0
            sizes[k] += size
        cohorts.append({"start": usage.iso(start), "size": size, "counts": cells,
                        "rates": [None if v is None or not size else v / size for v in cells],
                        "complete": complete})
    curve = [{"period": k, "retained": retained[k], "size": sizes[k],
              "rate": retained[k] / sizes[k] if sizes[k] else None}
             for k in range(p.periods + 1)]
    return {"name": name, "cohorts": cohorts, "curve": curve}
