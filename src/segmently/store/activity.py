"""Activity days: which ids were active (a track, page or screen event) on which UTC day,
the table retention, stickiness, lifecycle and feature lift's first days read instead of
every rollup row of every event (`insights/usage.py`, `insights/lift.py`).

A person's events of one day are several rollup rows (one per event name: at 1M users and
109M events, 43.6M rows); their activity that day is one row here (9.7M). `activity_days`
holds one row per (project, distinct id, day, receive day) of the **compacted** receive days:
`Store.compact_rollups` writes a day's rows from the merged rollups, in the same
transaction. A compacted receive day written to again later (an import with a historical
`received_at`) is reopened by that append, in its transaction: its compaction mark and its
activity rows are deleted, and the next compaction makes both again (`reopen`). So at any
moment

    activity = these rows  U  the rollup rows of the receive days not compacted
                           U  the raw events of as_of's day,

each active (id, day) at least once: read as a set (`views.resolved_activity_days`) it is
exact for any as_of, the same as reading every rollup row. Ids are resolved to persons when
read, so a later alias or identify applies to the past as it does everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
from ibis.backends import BaseBackend

from segmently.store import schema
from segmently.store.rollups import arrow_days

ACTIVITY_TYPES = ("track", "page", "screen")  # identify, group and alias manage data
KEYS = ["project_id", "distinct_id", "day", "received_day"]


def activity_expr(rollups: ir.Table, received_days: ir.IntegerColumn | list[int]) -> ir.Table:
    """The activity rows of the rollups of `received_days`, computed by the engine: what
    compaction inserts for the days it merged, and what a database compacted before
    activity days existed is filled with once."""
    r = rollups.filter(rollups.type.isin(ACTIVITY_TYPES), rollups.received_day.isin(received_days))
    r = r.mutate(distinct_id=r.user_id.coalesce(r.anonymous_id))
    r = r.filter(r.distinct_id.notnull())
    return r.select(*KEYS).distinct()


def received_days(events: pa.Table) -> list[int]:
    """The receive days (days since 1970-01-01) of a batch of event rows."""
    if events.num_rows == 0:
        return []
    return sorted(pc.unique(arrow_days(events["received_at"])).to_pylist())


def reopen(con: BaseBackend, days: Iterable[int], today: int) -> None:
    """Inside an append's transaction: the receive days before today that it writes rollup
    rows for are no longer compacted (their marks and activity rows go; the next
    compaction merges and counts them again). Days are numbers we computed, never text."""
    past = sorted({int(d) for d in days if d < today})
    if past:
        delete_days(con, [schema.COMPACTIONS, schema.ACTIVITY], past)


def delete_days(con: BaseBackend, tables: list[str], days: list[int]) -> None:
    """Delete the rows of these receive days (numbers we computed, never user text)."""
    listed = ", ".join(str(int(d)) for d in days)
    for name in tables:
        con.raw_sql(f"DELETE FROM {name} WHERE received_day IN ({listed})")

