"""Daily per-user per-event rollups, kept in step with `events` by every append.

One `event_rollups` row counts the events of one (user_id, anonymous_id, event, type) on
one event day that arrived on one receive day, with their first and last timestamps. The
rows are written in the same transaction as the events they count (`Store.append_rows`,
`append_new_rows`), so they never lag and never need a watermark: append-only like every
other table, a key may have several rows (sums, minimums and maximums do not mind).

Keying by the receive day too is what keeps evaluation exact for any two instants `as_of`
(what had happened) and `known_at` (what had been received): a rollup row of a day before
as_of's day that arrived before known_at's day holds only events that had happened by
as_of and were known at known_at. `daily_rows` reads those rows and, for the rest (as_of's
own day, the days that hold a window boundary, whatever arrived on known_at's day), the
raw events, so every event is counted once and every window boundary stays exact to the
microsecond.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from segmently.store import schema

SECONDS_PER_DAY = 86_400
_US_PER_DAY = SECONDS_PER_DAY * 1_000_000
EPOCH = datetime(1970, 1, 1)
KEYS = ["project_id", "user_id", "anonymous_id", "event", "type", "day", "received_day"]
ARROW_SCHEMA = pa.schema([
    pa.field(name, pa.timestamp("us") if t.is_timestamp() else t.to_pyarrow(),
             nullable=t.nullable) for name, t in schema.ROLLUPS_SCHEMA.items()])


def day_number(instant: datetime) -> int:
    return (instant - EPOCH) // timedelta(days=1)


def day_start(day: int) -> datetime:
    return EPOCH + timedelta(days=day)


def arrow_days(ts: pa.ChunkedArray) -> pa.Array:
    """Days since the epoch of timestamps (Arrow), floored."""
    micros = pc.cast(pc.cast(ts, pa.timestamp("us")), pa.int64())
    # floor division, also before 1970 (a truncating divide would round those up)
    shifted = pc.subtract(micros, pc.if_else(pc.less(micros, 0), _US_PER_DAY - 1, 0))
    return pc.cast(pc.divide(shifted, _US_PER_DAY), pa.int32())


def rollup(events: pa.Table) -> pa.Table:
    """The rollup rows of a batch of event rows (Arrow, the `events` schema)."""
    if events.num_rows == 0:
        return ARROW_SCHEMA.empty_table()
    ts = pc.cast(events["timestamp"], pa.timestamp("us"))
    keyed = pa.table({
        "project_id": events["project_id"], "user_id": events["user_id"],
        "anonymous_id": events["anonymous_id"], "event": events["event"],
        "type": events["type"], "day": arrow_days(events["timestamp"]),
        "received_day": arrow_days(events["received_at"]), "ts": ts,
    })
    grouped = keyed.group_by(KEYS, use_threads=False).aggregate(
        [("ts", "count"), ("ts", "min"), ("ts", "max")])
    return pa.table({
        **{k: grouped[k] for k in KEYS},
        "n": grouped["ts_count"], "first_ts": grouped["ts_min"], "last_ts": grouped["ts_max"],
    }).cast(ARROW_SCHEMA)


def rollup_expr(events: ir.Table) -> ir.Table:
    """The same rows computed by the engine, to fill the table from stored events once
    (a database created before rollups existed)."""
    e = events.mutate(_day=day_of(events.timestamp).cast("int32"),
                      _rday=day_of(events.received_at).cast("int32"))
    return e.group_by(project_id=e.project_id, user_id=e.user_id,
                      anonymous_id=e.anonymous_id, event=e.event, type=e.type,
                      day=e._day, received_day=e._rday).aggregate(
        n=e.count(), first_ts=e.timestamp.min(), last_ts=e.timestamp.max())


def day_of(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Days since the epoch from epoch seconds (the same on every engine)."""
    return (ts.epoch_seconds() / SECONDS_PER_DAY).floor()


# -- reading -----------------------------------------------------------------------------
DAILY_COLUMNS = ("user_id", "anonymous_id", "event", "type", "day", "n", "first_ts", "last_ts")


def daily_rows(events: ir.Table, rollups: ir.Table, project_id: str, as_of: datetime,
               boundaries: Iterable[datetime], known_at: datetime | None = None,
               received: list[int] | None = None) -> ir.Table:
    """Every event before as_of received by known_at (None: ever), as rows of
    DAILY_COLUMNS: whole rollup rows where a day lies entirely inside or outside every
    window and arrived before known_at's day, single raw events (n = 1) elsewhere; of the
    rollup rows, only those of the receive days `received` when given (the others are
    held by another table: `views.resolved_activity_days`).

    `boundaries` are the window starts and ends the reader will compare `first_ts` with;
    the days they cut in two, and as_of's day, are read raw, and so is whatever arrived on
    known_at's day, so comparing a rollup row's `first_ts` with a boundary decides for all
    of its events at once and every event is counted once, for any two instants.
    """
    today = day_number(as_of)
    raw_days = sorted({today} | {day_number(b) for b in boundaries  # midnight splits no day
                                 if b < as_of and b != day_start(day_number(b))})
    r = rollups.filter(rollups.project_id == project_id, rollups.day < today,
                       ~rollups.day.isin(raw_days))
    if received is not None:  # a list of numbers: the scan itself skips the other rows
        r = r.filter(r.received_day.isin(received) if received else ibis.literal(False))
    e = events.filter(events.project_id == project_id, events.timestamp < as_of)
    if known_at is not None:
        e = e.filter(e.received_at <= known_at)
    on_raw_day = ibis.or_(*[(e.timestamp >= day_start(d)) & (e.timestamp < day_start(d + 1))
                            for d in raw_days])
    if known_at is not None:  # whatever arrived on known_at's day, read raw
        r = r.filter(r.received_day < day_number(known_at))
        on_raw_day |= e.received_at >= day_start(day_number(known_at))
    e = e.filter(on_raw_day)
    raw = e.select(user_id=e.user_id, anonymous_id=e.anonymous_id, event=e.event, type=e.type,
                   day=day_of(e.timestamp).cast("int32"), n=ibis.literal(1, type="int64"),
                   first_ts=e.timestamp, last_ts=e.timestamp)
    r = r.select(*DAILY_COLUMNS)
    return r.union(raw.select(*DAILY_COLUMNS).cast(r.schema()))


# -- compaction ----------------------------------------------------------------------------
def compaction_rows(rollups: ir.Table, received_days: list[int]) -> ir.Table:
    """One row per key for some receive days. Live traffic writes a key's events in many
    commits, so a day arrives as about one rollup row per event; merged, as few as there are
    (user, event, day) keys. Sums, minimums and maximums make it the same data."""
    r = rollups.filter(rollups.received_day.isin(received_days))
    return r.group_by(KEYS).aggregate(n=r.n.sum().cast("int64"), first_ts=r.first_ts.min(),
                                      last_ts=r.last_ts.max())
