"""Deduplication of bulk appends (one set-based statement per batch on DuckDB, the Ibis
path on PostgreSQL): inside a batch, across batches and file chunks, and the window."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from segmently.collect.importer import ImportOptions, import_file, store_sink
from segmently.store import Message, Store
from segmently.store.projects import create_project

T0 = datetime(2026, 3, 1, 12, 0, 0)


def track(mid: str, event: str, user: str = "u1") -> Message:
    return Message(message_id=mid, type="track", event=event, timestamp=T0,
                   source="native", user_id=user)


def stored(store: Store, project: str = "p1") -> dict[str, str]:
    rows = store.events(project).select("message_id", "event").to_pyarrow().to_pylist()
    assert len(rows) == len({r["message_id"] for r in rows}), rows  # never twice
    return {r["message_id"]: r["event"] for r in rows}


def test_first_occurrence_wins_inside_a_batch_and_stored_ids_are_skipped(store: Store) -> None:
    assert store.append("p1", [track("a", "first a"), track("b", "first b")]).stored == 2
    batch = [track("c", "first c"), track("a", "again a"), track("c", "second c"),
             track("d", "first d"), track("d", "second d"), track("c", "third c")]
    result = store.append("p1", batch)
    assert (result.received, result.stored, result.duplicates) == (6, 2, 4)
    assert stored(store) == {"a": "first a", "b": "first b", "c": "first c", "d": "first d"}


def test_a_batch_of_only_known_ids_stores_nothing(store: Store) -> None:
    store.append("p1", [track("a", "x"), track("b", "y")])
    assert store.append("p1", [track("b", "z"), track("a", "z"), track("b", "z")]).stored == 0
    assert stored(store) == {"a": "x", "b": "y"}


def test_the_dedup_window(store_url: str) -> None:
    with Store(store_url, dedup_window=timedelta(days=7)) as s:
        s.append("p1", [track("a", "day 0")], received_at=T0)
        assert s.append("p1", [track("a", "day 6")], received_at=T0 + timedelta(days=6)).stored == 0
        # eight days after the only stored copy (day 0): outside the window, stored again,
        # except on PostgreSQL, whose unique key stores an id once for ever (stricter)
        again = 0 if s.engine == "postgres" else 1
        assert s.append("p1", [track("a", "day 8")],
                        received_at=T0 + timedelta(days=8)).stored == again
        assert s.events("p1").count().to_pyarrow().as_py() == 1 + again
    with Store(store_url, dedup_window=None) as s:  # all history
        assert s.append("p1", [track("a", "day 99")],
                        received_at=T0 + timedelta(days=99)).stored == 0


def test_derived_rows_of_known_messages_are_skipped(store: Store) -> None:
    def identify(mid: str, plan: str) -> Message:
        return Message(message_id=mid, type="identify", event="$identify", timestamp=T0,
                       source="native", user_id="u1", traits={"plan": plan})

    store.append("p1", [identify("i1", "free")])
    assert store.append("p1", [identify("i1", "free"), identify("i2", "pro"),
                               track("t1", "clicked")]).stored == 2
    traits = store.table("traits").select("message_id", "value").to_pyarrow().to_pylist()
    assert sorted((t["message_id"], json.loads(t["value"])) for t in traits) == [
        ("i1", "free"), ("i2", "pro")]


def test_an_id_repeated_in_one_batch_derives_the_first_ones_rows_only(store: Store) -> None:
    """Two requests with one id in one group commit (a client retry): the first event is
    kept, so only its traits and identities may be (found in issue 9: both were)."""
    def identify(plan: str, anonymous: str) -> Message:
        return Message(message_id="same", type="identify", event="$identify", timestamp=T0,
                       source="native", user_id="u1", traits={"plan": plan},
                       alias_id=anonymous)

    assert store.append("p1", [track("same", "clicked"), identify("retry", "a1")]).stored == 1
    assert store.append("p1", [identify("first", "a2"), identify("retry", "a3")]).stored == 0
    assert store.table("traits").count().to_pyarrow().as_py() == 0
    assert store.table("identities").count().to_pyarrow().as_py() == 0
    assert store.append("p2", [identify("first", "a6"), identify("retry", "a7")]).stored == 1
    traits = store.table("traits").select("project_id", "value").to_pyarrow().to_pylist()
    assert [(t["project_id"], json.loads(t["value"])) for t in traits] == [("p2", "first")]
    links = store.table("identities").select("alias_id").to_pyarrow()["alias_id"].to_pylist()
    assert links == ["a6"]


def _parquet(path: Path, rows: list[tuple[str, str]]) -> Path:
    pq.write_table(pa.table({
        "message_id": [m for m, _ in rows],
        "event": [e for _, e in rows],
        "user_id": ["u1"] * len(rows),
        "timestamp": pa.array([T0 + timedelta(minutes=i) for i in range(len(rows))],
                              pa.timestamp("us")),
    }), path)
    return path


def test_import_dedups_inside_and_across_chunks_and_reimport_stores_nothing(
        store: Store, tmp_path: Path) -> None:
    project = create_project(store, "bulk").project.project_id
    # chunks of 3 rows: [m1 m2 m1] [m3 m2 m4] [m4 m5]
    path = _parquet(tmp_path / "e.parquet", [
        ("m1", "one"), ("m2", "two"), ("m1", "one again"),
        ("m3", "three"), ("m2", "two again"), ("m4", "four"),
        ("m4", "four again"), ("m5", "five")])
    options = ImportOptions(batch_rows=3)
    report = import_file(path, project, store_sink(store, project), options)
    assert (report.rows_read, report.stored, report.duplicates) == (8, 5, 3)
    expected = {"m1": "one", "m2": "two", "m3": "three", "m4": "four", "m5": "five"}
    assert stored(store, project) == expected
    again = import_file(path, project, store_sink(store, project), options)
    assert (again.stored, again.duplicates) == (0, 8)
    assert stored(store, project) == expected
