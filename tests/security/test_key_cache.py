"""Unknown keys do not load the database (issue 9: "a negative cache").

`web/auth.py` remembers a key found unknown for 60 s (10,000 keys at most, oldest dropped
first). Over HTTP on PostgreSQL the database's own count of scans of the projects table
(`pg_stat_user_tables`) shows it: one key sent 200 times is one lookup, 50 different keys
are 50 (so the count does see each lookup). The rule
for new projects (keys are random and made at creation, so none can be remembered as
unknown before it exists; a key that did exist before, as from a restored backup, works
once its entry expires) is checked on the cache itself, over a real DuckDB store, with a
clock the test moves instead of waiting a minute.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import httpx
import psycopg
import pyarrow as pa
import pytest

from conftest import start_server
from segmently.store import Store, schema, utcnow
from segmently.store.projects import create_project, hash_secret
from segmently.store.rows import ARROW_SCHEMAS
from segmently.store.sessions import SESSIONS
from segmently.web.auth import KeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def add_project(store: Store, write_key: str, secret_key: str) -> None:
    """A project row with keys chosen by the test, as a restored backup would bring."""
    row = {"project_id": [f"prj_{secrets.token_hex(8)}"], "name": [f"restored {write_key}"],
           "write_key": [write_key], "secret_key_hash": [hash_secret(secret_key)],
           "created_at": [utcnow()]}
    store.insert_table(schema.PROJECTS,
                       pa.Table.from_pydict(row, schema=ARROW_SCHEMAS[schema.PROJECTS]))


def test_unknown_keys_are_remembered_for_a_while(tmp_path: Path) -> None:
    clock = Clock()
    with Store(f"duckdb://{tmp_path / 'keys.duckdb'}") as store:
        new = create_project(store, "p")
        keys = KeyCache(store, ttl=60, clock=clock)
        for _ in range(100):
            assert keys.by_write_key("wk_restored") is None
            assert keys.by_secret_key("sk_restored") is None
        assert keys.lookups == 2
        add_project(store, "wk_restored", "sk_restored")
        clock.now += 59
        assert keys.by_write_key("wk_restored") is None  # still remembered as unknown
        clock.now += 2
        assert keys.by_write_key("wk_restored") is not None  # expired: looked up again
        assert keys.by_secret_key("sk_restored") is not None
        assert keys.lookups == 4
        # a project created meanwhile: its keys were never sent before, so never cached
        later = create_project(store, "later")
        assert keys.by_write_key(later.project.write_key).project_id == \
            later.project.project_id
        assert keys.by_secret_key(new.secret_key).project_id == new.project.project_id
        for _ in range(10):  # known keys are not looked up again
            keys.by_write_key(later.project.write_key)
        assert keys.lookups == 6


@pytest.mark.slow
def test_the_unknown_keys_are_bounded(tmp_path: Path) -> None:
    clock = Clock()
    with Store(f"duckdb://{tmp_path / 'keys.duckdb'}") as store:
        keys = KeyCache(store, ttl=60, max_unknown=100, clock=clock)
        for i in range(250):
            keys.by_write_key(f"wk_random_{i}")
        assert len(keys.unknown) == 100
        assert keys.by_write_key("wk_random_249") is None and keys.lookups == 250
        assert keys.by_write_key("wk_random_0") is None and keys.lookups == 251  # dropped
        assert keys.by_write_key("x" * 300) is None and keys.lookups == 251  # no key is so long


def lookups(database_url: str) -> tuple[int, int]:
    """Scans of the projects and UI sessions tables the database has counted, once the
    server's backends reported them: an idle PostgreSQL backend flushes its statistics
    within 10 s."""
    time.sleep(11)
    with psycopg.connect(database_url, autocommit=True) as con:
        counts = dict(con.execute(
            "SELECT relname, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables"
            " WHERE relname IN (%s, %s)", [schema.PROJECTS, SESSIONS]).fetchall())
    return int(counts.get(schema.PROJECTS, 0)), int(counts.get(SESSIONS, 0))


@pytest.mark.postgres
def test_a_repeated_unknown_key_costs_one_lookup(pg_database: str, tmp_path: Path) -> None:
    with Store(pg_database) as store:
        for name in store.con.list_tables():
            store.con.drop_table(name)
    with Store(pg_database) as store:
        create_project(store, "p")
    database = pg_database.replace("postgres://", "postgresql://")
    proc, url = start_server(pg_database, tmp_path / "server.log",  # (no background pass
                             env={"SEGMENTLY_REFRESH_SECONDS": "0",  # reads projects)
                                  "SEGMENTLY_DELIVER_SECONDS": "0"})
    try:
        def send(key: str, times: int) -> None:
            for _ in range(times):
                r = httpx.post(f"{url}/v1/events", json={"event": "x"},
                               headers={"Authorization": f"Bearer {key}"})
                assert r.status_code == 401

        cookie = {"segmently_session": secrets.token_urlsafe(32)}  # a made-up UI session

        def browse(times: int) -> None:
            for _ in range(times):
                assert httpx.get(f"{url}/api/segments", cookies=cookie).status_code == 401

        browse(1)  # the sessions table exists from here on
        projects, sessions = lookups(database)
        send("wk_repeated", 200)
        browse(200)
        for _ in range(50):
            send(f"wk_{secrets.token_urlsafe(24)}", 1)
        projects_after, sessions_after = lookups(database)
        # each new key is one counted lookup, the repeated one one in all (1 of slack for
        # an unrelated scan): 200 sends of one key would be 200 if it were not remembered
        assert 51 <= projects_after - projects <= 52
        assert sessions_after - sessions <= 1  # 0: remembered since browse(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
