"""What retention, stickiness and lifecycle read (`retention.py`, `stickiness.py`): who
was active on which UTC day, calendar periods as indexes, and the groups a user's rows are
counted in (everyone, and each segment they are a member of at its latest refresh).

Activity comes from the daily rollups (`store/views.resolved_daily_rows`): a user's
events of one day are one row there, so a hundred million events are read as a fraction
of that. A user is active on a day with any track, page or screen event that day
(`store/activity.ACTIVITY_TYPES`, as the profile counts activity; one row a person and day
in `activity_days`), or, for a chosen event,
with that event. Days are numbered from 1970-01-01 (`store/rollups.day_number`); weeks
start on Monday; periods are indexed from the first of a list of period starts by
integer arithmetic (days, weeks) or one CASE over month starts, the same on every engine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import ibis
import ibis.expr.types as ir

from segmently.insights.adoption import ALL_USERS
from segmently.insights.registry import Context, InsightError
from segmently.store.activity import ACTIVITY_TYPES
from segmently.store.rollups import day_number, day_of, day_start
from segmently.store.views import (
    has_rollups,
    resolved_activity_days,
    resolved_daily_rows,
    resolved_events,
)

Period = Literal["day", "week", "month"]
BEFORE = -1_000_000  # the index of a day before the first period start (months)
MAX_PERIODS = 400
MAX_EVENT = 1024  # characters of an event name


# -- activity --------------------------------------------------------------------------------
def daily(ctx: Context, event: str | None = None, since: int | None = None,
          until: int | None = None) -> ir.Table:
    """(person_id, event, type, day) rows, one or more per person and day (not distinct):
    activity (track, page, screen) or, when given, that event; days in [since, until)."""
    if has_rollups(ctx.store):
        rows = resolved_daily_rows(ctx.store, ctx.project_id, ctx.now, [])
    else:  # a lake exported before rollups existed
        e = resolved_events(ctx.store, ctx.project_id, ctx.now)
        rows = e.mutate(day=day_of(e.timestamp).cast("int32"))
    rows = rows.filter(rows.type.isin(ACTIVITY_TYPES) if event is None else
                       rows.event == event)
    if since is not None:
        rows = rows.filter(rows.day >= since)
    if until is not None:
        rows = rows.filter(rows.day < until)
    return rows.select(person_id=rows.person_id.cast("string"), event=rows.event,
                       type=rows.type, day=rows.day.cast("int64"))


def active_days(ctx: Context, event: str | None = None, since: int | None = None,
                until: int | None = None, distinct: bool = True) -> ir.Table:
    """(person_id, day): the days each person was active (from the activity days,
    `store/activity.py`) or did `event` (from the rollups); without `distinct` a (person,
    day) may repeat, for a reader that groups them anyway."""
    if event is None:
        return resolved_activity_days(ctx.store, ctx.project_id, ctx.now, since, until,
                                      distinct)
    rows = daily(ctx, event, since, until).select("person_id", "day")
    return rows.distinct() if distinct else rows


def first_days(ctx: Context, event: str | None = None) -> ir.Table:
    """(person_id, first): each person's first active day (or first day with `event`)."""
    rows = active_days(ctx, event, distinct=False)
    return rows.group_by("person_id").aggregate(first=rows.day.min())


# -- periods ---------------------------------------------------------------------------------
def week_start(day: int) -> int:
    """The Monday on or before `day` (day 4, 1970-01-05, was a Monday)."""
    return day - (day - 4) % 7


def period_of(day: int, period: Period) -> int:
    """The first day of the period holding `day`."""
    if period == "day":
        return day
    if period == "week":
        return week_start(day)
    d = day_start(day)
    return day_number(d.replace(day=1))


def next_start(start: int, period: Period) -> int:
    if period == "day":
        return start + 1
    if period == "week":
        return start + 7
    d = day_start(start)
    return day_number((d.replace(day=28) + timedelta(days=4)).replace(day=1))


def starts(last: int, period: Period, count: int) -> list[int]:
    """The first days of `count` consecutive periods, the last one starting at `last`
    (a period start), oldest first."""
    out = [last]
    while len(out) < count:
        prev = out[0] - 1
        out.insert(0, period_of(prev, period))
    return out


def index_of(day: ir.IntegerValue, period: Period, first: list[int]) -> ir.IntegerValue:
    """The index of the period holding `day`, counted from the period starting at
    first[0]: arithmetic for days and weeks (any day), a CASE over `first` (the starts
    of consecutive months) for months, BEFORE for a day before first[0]."""
    s0 = first[0]
    if period == "day":
        return (day - s0).cast("int64")
    if period == "week":
        return ((day - s0) / 7).floor().cast("int64")
    branches = [(day >= s, i) for i, s in reversed(list(enumerate(first)))]
    return ibis.cases(*branches, else_=BEFORE).cast("int64")


def current_start(now: datetime, period: Period) -> int:
    return period_of(day_number(now), period)


def period_starts(now: datetime, period: Period, count: int) -> list[datetime]:
    """The starts of the last `count` periods up to now's, oldest first (weeks start on
    Monday, months on the 1st), as instants."""
    return [day_start(d) for d in starts(current_start(now, period), period, count)]


def iso(day: int) -> str:
    return day_start(day).isoformat()


# -- groups ----------------------------------------------------------------------------------
def check_segments(ctx: Context, analysis: str, names: list[str],
                   param: str = "segments") -> list[str]:
    live = ctx.segments()
    for name in names:
        if name not in live:
            raise InsightError(f"{analysis}: {param}: no segment named {name!r}")
    if len(set(names)) != len(names):
        raise InsightError(f"{analysis}: {param}: a segment is named twice")
    return names


def check_event(analysis: str, param: str, event: str | None) -> None:
    if event is not None and not 1 <= len(event) <= MAX_EVENT:
        raise InsightError(f"{analysis}: {param}: an event name of 1 to {MAX_EVENT} "
                           "characters")


def check_range(analysis: str, param: str, value: int, low: int = 1,
                high: int = MAX_PERIODS) -> None:
    if not low <= value <= high:
        raise InsightError(f"{analysis}: {param}: between {low} and {high}")


def members(ctx: Context, names: list[str]) -> ir.Table | None:
    """(group, _member) of the segments at their latest refresh (Context.members_of)."""
    if not names:
        return None
    m = ctx.members_of(names)
    return m.select(group=m.segment.cast("string"), _member=m.user_id.cast("string"))


def grouped(facts: ir.Table, groups: ir.Table | None) -> ir.Table:
    """`facts` (with person_id) with a `group` column: every row once for ALL_USERS, and
    once more for each segment of `groups` (members()) the person belongs to."""
    everyone = facts.mutate(group=ibis.literal(ALL_USERS, type="string"))
    if groups is None:
        return everyone
    joined = facts.inner_join(groups, facts.person_id == groups._member)
    return everyone.union(joined.select(*everyone.columns))


def group_names(names: list[str]) -> list[str]:
    return [ALL_USERS, *names]
