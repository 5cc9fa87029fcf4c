"""DuckDB's set-based append (store/fastpath.py `append_new_events`): the rollup rows its
GROUP BY writes are those `rollups.rollup` computes in Arrow for the inserted events (the
other implementation, kept for other engines and generated data), derived rows are kept
for inserted messages only, and a repeated id keeps its first occurrence."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from segmently.store import Store, schema
from segmently.store.rollups import rollup
from segmently.store.rows import Message, to_rows

RECEIVED = datetime(2026, 7, 14, 23, 59, 59, 999999)


def message(i: int, ts: datetime, user: str | None, anon: str | None, event: str = "e",
            typ: str = "track", **extra: Any) -> Message:
    return Message(message_id=f"m{i}", type=typ, event=event, timestamp=ts, source="t",
                   user_id=user, anonymous_id=anon, **extra)


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    names = table.schema.names
    return sorted((tuple(r[n] for n in names) for r in table.to_pylist()), key=repr)


def test_sql_rollups_equal_arrow_rollups(tmp_path: Path) -> None:
    day = datetime(2026, 7, 14)
    messages = [
        message(1, day, "u1", None),
        message(2, day + timedelta(hours=23, minutes=59, seconds=59, microseconds=999999),
                "u1", None),  # the last microsecond of the day
        message(3, day + timedelta(days=1), "u1", None),  # midnight: the next day
        message(4, datetime(1969, 12, 31, 23, 0), None, "a1"),  # before the epoch: day -1
        message(5, datetime(1969, 12, 31, 23, 30), None, "a1"),
        message(6, day, "u1", "a1", event="other", typ="page"),
        message(7, day, None, "a2"),
    ]
    batch = to_rows("p", messages, RECEIVED)
    with Store(f"duckdb://{tmp_path / 'db.duckdb'}") as store:
        assert store.append_rows("p", batch).stored == 7
        written = store.table(schema.ROLLUPS).to_pyarrow()
    expected = rollup(batch.events)
    assert rows_of(written.select(expected.schema.names)) == rows_of(expected)
    days = {(r["user_id"], r["anonymous_id"], r["day"], r["n"]) for r in written.to_pylist()}
    assert (None, "a1", -1, 2) in days and ("u1", None, 20648, 2) in days  # 2026-07-14


def test_only_inserted_messages_write_derived_rows(tmp_path: Path) -> None:
    t = datetime(2026, 7, 14, 10)
    with Store(f"duckdb://{tmp_path / 'db.duckdb'}") as store:
        first = [message(1, t, "u1", None, typ="identify", event="$identify",
                         traits={"plan": "free"})]
        assert store.append_rows("p", to_rows("p", first, RECEIVED)).stored == 1
        again = [message(1, t, "u1", None, typ="identify", event="$identify",
                         traits={"plan": "pro"}),  # a retry with other traits: not stored
                 message(2, t, "u2", "a2", typ="identify", event="$identify",
                         traits={"plan": "team"}, alias_id="a2"),
                 message(2, t, "u3", None, typ="identify", event="$identify",
                         traits={"plan": "late"})]  # a repeated id: the first one wins
        result = store.append_rows("p", to_rows("p", again, RECEIVED))
        assert (result.received, result.stored) == (3, 1)
        traits = sorted((r["entity_id"], r["value"]) for r in
                        store.table(schema.TRAITS).to_pyarrow().to_pylist())
        assert traits == [("u1", '"free"'), ("u2", '"team"')]
        links = [(r["alias_id"], r["user_id"]) for r in
                 store.table(schema.IDENTITIES).to_pyarrow().to_pylist()]
        assert links == [("a2", "u2")]
        events = sorted((r["message_id"], r["user_id"]) for r in
                        store.table(schema.EVENTS).to_pyarrow().to_pylist())
        assert events == [("m1", "u1"), ("m2", "u2")]
        assert sum(r["n"] for r in store.table(schema.ROLLUPS).to_pyarrow().to_pylist()) == 2
