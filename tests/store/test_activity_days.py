"""Activity days (store/activity.py): written by compaction, reopened by a late write to a
compacted receive day, and read together with what is not compacted as exactly the days
each person was active. Expectations are worked out by hand from the events below."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from segmently.store import Message, Store
from segmently.store.views import resolved_activity_days

AS_OF = datetime(2026, 3, 31, 15, 0)  # today is 31 March
D = timedelta(days=1)


def day(instant: datetime) -> int:
    return (instant - datetime(1970, 1, 1)).days


def msg(mid: str, at: datetime, kind: str = "track", user: str | None = None,
        anon: str | None = None, alias: str | None = None) -> Message:
    return Message(message_id=mid, type=kind, event="$identify" if kind == "identify" else "x",
                   timestamp=at, source="test", user_id=user, anonymous_id=anon, alias_id=alias)


def write(store: Store) -> None:
    """ann on 28 March (twice) and today, bob on 28 March (and an identify on the 27th: not
    activity), an anonymous a1 on 29 March who identifies as ann on the 30th, carl on the
    30th (a page view); each received the day it happened, at 23:00."""
    days = {
        datetime(2026, 3, 27, 9): [msg("b0", datetime(2026, 3, 27, 9), "identify", "bob")],
        datetime(2026, 3, 28, 9): [msg("a1", datetime(2026, 3, 28, 9), user="ann"),
                                   msg("a2", datetime(2026, 3, 28, 10), user="ann"),
                                   msg("b1", datetime(2026, 3, 28, 11), user="bob")],
        datetime(2026, 3, 29, 9): [msg("n1", datetime(2026, 3, 29, 9), anon="a1")],
        datetime(2026, 3, 30, 9): [msg("i1", datetime(2026, 3, 30, 9), "identify", "ann",
                                       anon="a1", alias="a1"),
                                   msg("c1", datetime(2026, 3, 30, 10), "page", "carl")],
    }
    for at, batch in days.items():
        store.append("p", batch, received_at=at.replace(hour=23))
    store.append("p", [msg("a3", AS_OF - timedelta(hours=2), user="ann")], received_at=AS_OF)


EXPECTED = {("ann", day(AS_OF) - 3), ("bob", day(AS_OF) - 3), ("ann", day(AS_OF) - 2),
            ("carl", day(AS_OF) - 1), ("ann", day(AS_OF))}


def read(store: Store, since: int | None = None, until: int | None = None) -> set[tuple[str, int]]:
    rows = resolved_activity_days(store, "p", AS_OF, since, until).to_pyarrow().to_pylist()
    out = [(r["person_id"], r["day"]) for r in rows]
    assert len(out) == len(set(out)), "distinct"
    return set(out)


def kept(store: Store) -> set[tuple[str, int, int]]:
    t = store.table("activity_days").to_pyarrow().to_pylist()
    return {(r["distinct_id"], r["day"], r["received_day"]) for r in t}


def marks(store: Store) -> set[int]:
    return set(store.table("rollup_compactions").to_pyarrow()["received_day"].to_pylist())


def test_compaction_keeps_activity_days_and_the_read_stays_exact(store: Store) -> None:
    write(store)
    assert read(store) == EXPECTED  # nothing compacted: rollups and today's raw events
    assert store.compact_rollups(now=AS_OF) == 4  # 27..30 March; today's stays live
    d28, d29, d30 = day(AS_OF) - 3, day(AS_OF) - 2, day(AS_OF) - 1
    # one row per id and day (ann's two events of the 28th are one), no identify day;
    # ids as sent: a1 is resolved to ann when read
    assert kept(store) == {("ann", d28, d28), ("bob", d28, d28), ("a1", d29, d29),
                           ("carl", d30, d30)}
    assert read(store) == EXPECTED
    assert read(store, since=d29, until=d30 + 1) == {("ann", d29), ("carl", d30)}


def test_a_late_write_reopens_its_receive_day(store: Store) -> None:
    write(store)
    store.compact_rollups(now=AS_OF)
    d27, d28 = day(AS_OF) - 4, day(AS_OF) - 3
    # an import of dave's 26 March, stamped as received on the 28th (compacted)
    store.append("p", [msg("d1", datetime(2026, 3, 26, 12), user="dave")],
                 received_at=datetime(2026, 3, 28, 23, 30))
    assert d28 not in marks(store) and d27 in marks(store)
    assert {r[2] for r in kept(store)} == {day(AS_OF) - 2, day(AS_OF) - 1}  # the 28th's gone
    assert read(store) == EXPECTED | {("dave", d28 - 2)}  # read from the reopened rollups
    assert store.compact_rollups(now=AS_OF) == 1  # the 28th again
    assert ("dave", d28 - 2, d28) in kept(store) and ("ann", d28, d28) in kept(store)
    assert read(store) == EXPECTED | {("dave", d28 - 2)}


def test_a_database_compacted_before_activity_days_gets_them(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'old.duckdb'}"
    with Store(url) as s:
        write(s)
        s.compact_rollups(now=AS_OF)
        before = kept(s)
    raw = duckdb.connect(str(tmp_path / "old.duckdb"))
    raw.execute("DROP TABLE activity_days")  # as a database from before them
    raw.close()
    with Store(url) as s:  # opening it fills them from the compacted days' rollups
        assert kept(s) == before
        assert read(s) == EXPECTED
