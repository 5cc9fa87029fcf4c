"""Concurrent creates of one segment name: exactly one 201, the others 409 (issue 9).

The create route used to check the name, then save outside any lock: twenty requests at
once all passed the check, and each saved a version (or found its own equal one) and
answered 201. Now the check and the write happen under the store's write lock, and on
PostgreSQL a unique index on (project_id, segment, version) settles it between several
`serve` processes. Each request carries a different rule, so the stored definition says
which request won, and it must be the one that heard 201.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pyarrow as pa
import pytest

from conftest import start_server
from segmently.segments import definitions as defs
from segmently.store import Store, utcnow
from segmently.store.projects import create_project

if TYPE_CHECKING:  # a bare `import conftest` may find another directory's conftest.py
    from conftest import Server

RACERS = 20


def race(urls: list[str], secret_key: str, name: str) -> list[tuple[int, dict[str, Any], int]]:
    """RACERS creates of `name` at once (round robin over `urls`), each with its own rule
    (`at_least: i + 1`): (status, answer, i) for each."""
    start = threading.Barrier(RACERS)
    out: list[tuple[int, dict[str, Any], int]] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with httpx.Client(base_url=urls[i % len(urls)], timeout=60,
                          headers={"Authorization": f"Bearer {secret_key}"}) as client:
            client.get("/healthz")  # connected before the start
            start.wait()
            r = client.post("/api/segments", json={"name": name, "rule": {
                "kind": "performed", "event": "e", "at_least": i + 1}})
        with lock:
            out.append((r.status_code, r.json(), i))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def check_one_winner(urls: list[str], secret_key: str, name: str) -> None:
    answers = race(urls, secret_key, name)
    assert Counter(status for status, _, _ in answers) == {201: 1, 409: RACERS - 1}, answers
    assert {a["code"] for status, a, _ in answers if status == 409} == {"segment_exists"}
    (winner,) = [i for status, _, i in answers if status == 201]
    for url in urls:  # every server reads the same single version: the winner's
        detail = httpx.get(f"{url}/api/segments/{name}",
                           headers={"Authorization": f"Bearer {secret_key}"}).json()
        assert detail["version"] == 1
        assert detail["rule"]["at_least"] == winner + 1
        assert [v["version"] for v in detail["versions"]] == [1]


def test_one_server_one_winner(server: Server) -> None:
    for round_ in range(3):
        check_one_winner([server.url], server.secret_key, f"race_{round_}")


def _empty(url: str) -> None:
    with Store(url) as s:
        for name in s.con.list_tables():
            s.con.drop_table(name)


@pytest.mark.postgres
def test_two_servers_on_postgres_one_winner(pg_database: str, tmp_path: Path) -> None:
    """Two `serve` processes on one PostgreSQL database, the racers split between them:
    their write locks know nothing of each other; the unique index decides."""
    _empty(pg_database)
    with Store(pg_database) as s:
        secret = create_project(s, "race").secret_key
    env = {"SEGMENTLY_REFRESH_SECONDS": "0"}
    procs = []
    try:
        for n in range(2):
            procs.append(start_server(pg_database, tmp_path / f"server{n}.log", env=env))
        urls = [url for _, url in procs]
        for round_ in range(3):
            check_one_winner(urls, secret, f"race_{round_}")
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_database_with_duplicate_versions_still_saves(tmp_path: Path) -> None:
    """Versions written twice before the unique index existed keep the index from being
    built: saving still works (ordered by the process's write lock), with a warning."""
    with Store(f"duckdb://{tmp_path / 'old.duckdb'}") as store:
        pid = create_project(store, "old").project.project_id
        defs.ensure_tables(store)
        row = {"project_id": pid, "segment": "twice", "version": 1, "created_at": utcnow(),
               "deleted": False, "definition": '{"name": "twice", "description": "", '
               '"rule": {"kind": "performed", "event": "e"}}'}
        store.insert_table(defs.VERSIONS, pa.Table.from_pylist([row, row],
                                                               schema=defs._ARROW))
        assert defs.save(store, pid, "twice", "changed", {"kind": "performed",
                                                          "event": "e"}) == 2
        with pytest.raises(defs.SegmentExistsError):
            defs.create(store, pid, "twice", "", {"kind": "performed", "event": "f"})
        assert defs.create(store, pid, "fresh", "", {"kind": "performed", "event": "f"}) == 1
