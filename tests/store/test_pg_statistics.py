"""PostgreSQL statistics: a refresh analyzes the tables written since their last ANALYZE
(store/postgres.analyze_stale), so the planner never plans the profile over a database it
knows nothing of (a 2,000-user profile run took minutes in nested loops). Observed through
PostgreSQL's own catalogs, not through timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest

from segmently.core.project import Project
from segmently.store import Message, Store
from segmently.store.projects import create_project

pytestmark = pytest.mark.postgres
AT = datetime(2026, 3, 1, 12)


@pytest.fixture
def pg(pg_database: str) -> Iterator[tuple[Store, psycopg.Connection]]:
    with Store(pg_database) as s:
        for name in s.con.list_tables():
            s.con.drop_table(name)
    with Store(pg_database) as store, psycopg.connect(
            pg_database.replace("postgres://", "postgresql://", 1), autocommit=True) as raw:
        yield store, raw


def analyzed(raw: psycopg.Connection) -> dict[str, int]:
    """table -> how many times it was analyzed by hand."""
    rows = raw.execute("SELECT relname, analyze_count FROM pg_stat_user_tables "
                       "WHERE schemaname = current_schema()").fetchall()
    return {name: count for name, count in rows}


def views(n: int, start: int = 0) -> list[Message]:
    return [Message(message_id=f"m{i}", type="track", event="viewed",
                    timestamp=AT + timedelta(minutes=i), source="test", user_id=f"u{i % 40}")
            for i in range(start, start + n)]


def changed_since_analyze(store: Store, raw: psycopg.Connection, table: str,
                          at_least: int) -> None:
    """Wait until the statistics collector counts the store's writes, as a later refresh
    would see them: a connection flushes its counts within 10 s of going idle, or at
    the end of its next statement once asked to (pg_stat_force_next_flush)."""
    store.con.con.execute("SELECT pg_stat_force_next_flush()").fetchall()
    store.con.con.execute("SELECT 1").fetchall()
    for _ in range(300):
        raw.execute("SELECT pg_stat_clear_snapshot()")
        [(n,)] = raw.execute("SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE "
                             "schemaname = current_schema() AND relname = %s",
                             [table]).fetchall()
        if n >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError(f"{table}: the writes were never counted ({n})")


def test_a_refresh_analyzes_what_was_written_and_only_that(
        pg: tuple[Store, psycopg.Connection]) -> None:
    store, raw = pg
    p = Project(store, create_project(store, "p").project.project_id)
    p.save("viewers", "", {"kind": "performed", "event": "viewed"})
    store.append(p.id, views(500), received_at=AT + timedelta(days=1))
    assert analyzed(raw).get("events", 0) == 0
    changed_since_analyze(store, raw, "events", 500)  # (else counted after the ANALYZE, as new)
    p.refresh()
    counts = analyzed(raw)
    assert counts["events"] == 1 and counts["event_rollups"] == 1
    assert raw.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'events' "
                       "AND attname = 'user_id'").fetchone() == (1,)  # the planner's view

    store.append(p.id, views(10, start=500), received_at=AT + timedelta(days=1))  # 2% more
    changed_since_analyze(store, raw, "events", 10)
    assert "events" not in store.refresh_statistics()  # not stale: not analyzed again
    assert analyzed(raw)["events"] == 1

    store.append(p.id, views(400, start=510), received_at=AT + timedelta(days=1))
    changed_since_analyze(store, raw, "events", 410)
    assert "events" in store.refresh_statistics()
    assert analyzed(raw)["events"] == 2


def test_what_a_refresh_writes_is_analyzed_for_the_pages_that_read_it(
        pg: tuple[Store, psycopg.Connection]) -> None:
    """The snapshots, transitions and profile run a refresh writes are what every page
    joins next; without statistics the adoption page of a 5,000-user demo took minutes
    (0.7 s after ANALYZE)."""
    store, raw = pg
    p = Project(store, create_project(store, "p").project.project_id)
    p.save("viewers", "", {"kind": "performed", "event": "viewed"})
    store.append(p.id, views(500), received_at=AT + timedelta(days=1))
    p.refresh(profiles=True)
    counts = analyzed(raw)
    for table in ("segment_snapshots", "segment_transitions", "profile_users",
                  "profile_features", "profile_runs"):
        assert counts.get(table, 0) >= 1, (table, counts)
