"""PostgreSQL: lost connections, a stopped server, and several writers (issue 9).

Found: after a lost connection (`pg_terminate_backend`, a server restart) every call of
`serve` answered 500 for good while `/healthz` said ok; and two writing processes (two
`serve`, or `segmently import` next to `serve`) stored 12,000 rows for 10,000 message
ids, dedup being a read-then-insert under each process's own lock. Found on the way: an id
sent twice within one group commit wrote the derived rows (traits, identities) of both
copies; and the scheduled-refresh thread died at the first tick that met the database
down, so nothing was refreshed again until `serve` restarted.

Everything here is real: `segmently serve` subprocesses on loopback, the CLI, the shared
PostgreSQL (a fresh database per test) and, for the tests that stop the server, a private
PostgreSQL cluster on a free port (stopping the shared one would fail whatever else is
using it meanwhile). What is stored is always counted with psycopg directly, never
through Segmently.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from pg_cluster import PrivateCluster

from conftest import PG_URL, free_port, start_server
from segmently.store import Message, Store
from segmently.store.projects import NewProject, create_project

pytestmark = pytest.mark.postgres

T0 = "2026-03-01T12:00:00Z"


# -- databases ------------------------------------------------------------------------
def _admin(base: str) -> psycopg.Connection:
    return psycopg.connect(base.replace("postgres://", "postgresql://", 1), autocommit=True,
                           connect_timeout=5)


def _unreachable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def fresh_db() -> Iterator[str]:
    """A new database on the shared server, dropped afterwards (with its connections)."""
    try:
        admin = _admin(PG_URL)
    except psycopg.OperationalError as exc:
        _unreachable(f"PostgreSQL is not reachable at {PG_URL} ({exc})")
    name = f"segmently_sec_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')  # a name we generated, never input
    try:
        yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    """A private PostgreSQL server this module may stop and start at will."""
    try:
        pg = PrivateCluster(free_port())
        pg.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _unreachable(f"cannot run a private PostgreSQL server: {exc}")
    try:
        yield pg
    finally:
        pg.destroy()


def new_database(base: str) -> str:
    name = f"segmently_{secrets.token_hex(4)}"
    with _admin(f"{base}/postgres") as admin:
        admin.execute(f'CREATE DATABASE "{name}"')  # generated name
    return f"{base}/{name}"


def project_in(db: str) -> NewProject:
    with Store(db) as s:
        return create_project(s, "test")


@dataclass(frozen=True)
class Stored:
    events: int
    distinct_ids: int
    traits: int
    rolled_up: int  # sum of event_rollups.n: every stored event counted once
    ids: Counter[str]


def stored(db: str, project_id: str) -> Stored:
    """What the database holds for the project, read with psycopg alone."""
    with _admin(db) as con:
        ids = Counter(r[0] for r in con.execute(
            "SELECT message_id FROM events WHERE project_id = %s", [project_id]))
        traits = con.execute("SELECT count(*) FROM traits WHERE project_id = %s",
                             [project_id]).fetchone()
        rolled = con.execute("SELECT coalesce(sum(n), 0) FROM event_rollups "
                             "WHERE project_id = %s", [project_id]).fetchone()
    assert traits is not None and rolled is not None
    return Stored(sum(ids.values()), len(ids), int(traits[0]), int(rolled[0]), ids)


# -- what clients send --------------------------------------------------------------------
def is_identify(mid: str) -> bool:
    """Every tenth message is an identify with one trait (a derived row)."""
    return int(mid.rsplit("-", 1)[1]) % 10 == 0


def events(ids: list[str], *, tracks_only: bool = False) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for mid in ids:
        n = int(mid.rsplit("-", 1)[1])
        if is_identify(mid) and not tracks_only:
            out.append({"type": "identify", "user_id": f"u{n % 50}", "message_id": mid,
                        "timestamp": T0, "traits": {"plan": f"p{n}"}})
        else:
            out.append({"event": "clicked", "user_id": f"u{n % 50}", "message_id": mid,
                        "timestamp": T0, "properties": {"n": n}})
    return out


def write(http: httpx.Client, key: str, ids: list[str], *,
          tracks_only: bool = False) -> httpx.Response:
    return http.post("/v1/events", json={"events": events(ids, tracks_only=tracks_only)},
                     headers={"Authorization": f"Bearer {key}"})


def until_ok(request: Callable[[], httpx.Response], seconds: float = 60) -> list[int]:
    """Send like an SDK does: again after a 5xx or a transport error, until 200. Returns
    every status seen (0 for a transport error)."""
    seen: list[int] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            status = request().status_code
        except httpx.TransportError:
            status = 0
        seen.append(status)
        if status == 200:
            return seen
        assert status in (0, 503), f"{status} is neither success nor 'retry later': {seen}"
        time.sleep(0.1)
    raise AssertionError(f"no 200 within {seconds} s: {seen}")


def assert_exactly_once(db: str, project_id: str, ids: set[str]) -> Stored:
    got = stored(db, project_id)
    twice = {m: n for m, n in got.ids.items() if n > 1}
    assert not twice, f"{len(twice)} ids stored more than once, e.g. {list(twice.items())[:5]}"
    assert set(got.ids) == ids
    assert got.traits == sum(map(is_identify, ids))  # derived rows: once per inserted id
    assert got.rolled_up == len(ids)  # rollups count each stored event once
    return got


# -- lost connections -----------------------------------------------------------------------
def terminate_sessions(db: str) -> int:
    """pg_terminate_backend of every session on the database but this one."""
    name = db.rsplit("/", 1)[1]
    with _admin(db) as admin:
        killed = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", [name]).fetchone()
    return int(killed[0]) if killed else 0


def test_terminated_connections_are_replaced(fresh_db: str, tmp_path: Path) -> None:
    new = project_in(fresh_db)
    key, secret = new.project.write_key, new.secret_key
    proc, url = start_server(fresh_db, tmp_path / "server.log")
    sent: set[str] = set()
    statuses: dict[str, list[list[int]]] = {"write": [], "read": [], "healthz": []}
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            def read() -> httpx.Response:
                return http.get("/api/segments", headers={"Authorization": f"Bearer {secret}"})

            first = [f"a-{i}" for i in range(50)]
            assert write(http, key, first).status_code == 200
            sent |= set(first)
            with httpx.Client(base_url=url, timeout=30) as other:  # several server threads
                threads = [threading.Thread(target=lambda: other.get(
                    "/api/segments", headers={"Authorization": f"Bearer {secret}"}))
                    for _ in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            for round_ in range(4):
                assert terminate_sessions(fresh_db) >= 1  # the server's own connections
                if round_ % 2 == 0:
                    time.sleep(0.3)  # the goodbye has arrived; odd rounds ask at once
                ids = [f"r{round_}-{i}" for i in range(50)]
                statuses["write"].append(until_ok(lambda: write(http, key, ids)))
                sent |= set(ids)
                statuses["read"].append(until_ok(read))
                statuses["healthz"].append(until_ok(lambda: http.get("/healthz")))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for route, rounds in statuses.items():  # at most one "retry later" before success
        assert all(len(seen) <= 2 for seen in rounds), (route, rounds)
    assert_exactly_once(fresh_db, new.project.project_id, sent)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


# -- a stopped server -------------------------------------------------------------------------
@dataclass
class Clients:
    """Threads sending batches like SDKs: each batch again until it is acknowledged."""

    url: str
    key: str
    acked: set[str] = field(default_factory=set)
    sent: set[str] = field(default_factory=set)
    statuses: Counter[int] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, name: str) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            seq = 0
            while not self.stop.is_set():
                ids = [f"{name}b{seq}-{i}" for i in range(20)]
                with self.lock:
                    self.sent |= set(ids)
                while True:
                    try:
                        status = write(http, self.key, ids).status_code
                    except httpx.TransportError:
                        status = 0
                    with self.lock:
                        self.statuses[status] += 1
                    if status == 200:
                        with self.lock:
                            self.acked |= set(ids)
                        break
                    if self.stop.is_set():
                        return  # left unacknowledged: resent below
                    time.sleep(0.05)
                seq += 1

    def wait_acks(self, more_than: int, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.acked) > more_than:
                    return
            time.sleep(0.02)
        raise AssertionError(f"only {len(self.acked)} events acknowledged")


POSTHOG_UUID = "01900000-0000-7000-8000-000000000011"  # a track to is_identify (11)


def segment_call(http: httpx.Client, key: str) -> httpx.Response:
    """What analytics-python sends: /v1/batch, the write key as Basic auth user."""
    return http.post("/v1/batch", auth=(key, ""), json={"batch": [
        {"type": "track", "event": "clicked", "userId": "u1", "messageId": "segment-1",
         "timestamp": T0}]})


def posthog_call(http: httpx.Client, key: str) -> httpx.Response:
    """What posthog-python sends: /batch/ with the project token in the body."""
    return http.post("/batch/", json={"api_key": key, "batch": [
        {"event": "clicked", "distinct_id": "u1", "uuid": POSTHOG_UUID, "timestamp": T0,
         "properties": {}}]})


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_stopped_server_answers_503_then_everything_works_again(
        cluster: PrivateCluster, mode: str, tmp_path: Path) -> None:
    db = new_database(cluster.url)
    new = project_in(db)
    key, secret = new.project.write_key, new.secret_key
    proc, url = start_server(db, tmp_path / "server.log",
                             env={"SEGMENTLY_REFRESH_SECONDS": "1"})  # ticks while down
    clients = Clients(url, key)
    threads = [threading.Thread(target=clients.run, args=(f"c{n}",)) for n in range(2)]
    down: dict[str, httpx.Response] = {}
    try:
        for t in threads:
            t.start()
        clients.wait_acks(100)
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.post("/api/segments", headers={"Authorization": f"Bearer {secret}"},
                             json={"name": "clickers", "rule": {"kind": "performed",
                                                                "event": "clicked"}}
                             ).status_code == 201
        cluster.stop(mode)
        try:
            with httpx.Client(base_url=url, timeout=30) as http:
                time.sleep(0.5)  # the clients are hitting a database that is gone
                down["write"] = write(http, key, ["probe-1"])
                down["segment"] = segment_call(http, key)
                down["posthog"] = posthog_call(http, key)
                down["read"] = http.get("/api/segments",
                                        headers={"Authorization": f"Bearer {secret}"})
                started = time.monotonic()
                down["healthz"] = http.get("/healthz")
                healthz_seconds = time.monotonic() - started
                time.sleep(2.0)  # scheduled refreshes meet the outage too
        finally:
            cluster.start()
        restarted = datetime.utcnow()  # noqa: DTZ003 - the store's clock: naive UTC
        before = len(clients.acked)
        with httpx.Client(base_url=url, timeout=30) as http:
            until_ok(lambda: http.get("/healthz"))
            clients.wait_acks(before + 100)  # writes go through again
            assert http.get("/api/segments",
                            headers={"Authorization": f"Bearer {secret}"}).status_code == 200
            clients.stop.set()
            for t in threads:
                t.join(timeout=60)
            pending = sorted(clients.sent - clients.acked)
            if pending:
                until_ok(lambda: write(http, key, pending))
            until_ok(lambda: write(http, key, ["probe-1"]))
            until_ok(lambda: segment_call(http, key))
            until_ok(lambda: posthog_call(http, key))
        refreshed = refreshed_since(db, restarted)  # the schedule survived the outage
    finally:
        clients.stop.set()
        proc.terminate()
        proc.wait(timeout=30)

    for route in ("write", "segment", "posthog", "read"):
        answer = down[route]
        assert answer.status_code == 503, (route, answer.status_code, answer.text)
        assert answer.json()["code"] == "database_unavailable"
        assert int(answer.headers["retry-after"]) > 0
    health = down["healthz"]
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["engine"] == "postgres"
    assert health.json()["database"].startswith("unreachable: ")
    assert healthz_seconds < 5
    assert set(clients.statuses) <= {200, 503}, clients.statuses  # never a 500
    assert clients.statuses[503] >= 1
    sdk_ids = {"segment-1", POSTHOG_UUID}
    assert_exactly_once(db, new.project.project_id, clients.sent | {"probe-1"} | sdk_ids)
    assert refreshed, "no scheduled refresh recorded a snapshot after the restart"


def refreshed_since(db: str, since: datetime, seconds: float = 30) -> bool:
    """Whether a segment snapshot was computed after `since` (waiting up to `seconds`)."""
    deadline = time.monotonic() + seconds
    with _admin(db) as con:
        while time.monotonic() < deadline:
            row = con.execute("SELECT count(*) FROM segment_snapshots WHERE computed_at > %s",
                              [since]).fetchone()
            if row and row[0]:
                return True
            time.sleep(0.25)
    return False


# -- several writers ----------------------------------------------------------------------------
def test_two_servers_store_overlapping_batches_once(fresh_db: str, tmp_path: Path) -> None:
    new = project_in(fresh_db)
    key = new.project.write_key
    urls = [start_server(fresh_db, tmp_path / f"server{n}.log") for n in range(2)]
    n_ids, size = 10_000, 200
    ids = [f"m-{i}" for i in range(n_ids)]
    # each batch overlaps half of each neighbour, so every id is in two batches
    step = size // 2
    batches = [ids[max(0, k - step):k + step] for k in range(0, n_ids + step, step)]
    assert set().union(*batches) == set(ids)
    # four pairs of threads; the two threads of a pair send the same batch at the same
    # moment, one to each server (a barrier per batch), first in order, then shuffled
    pairs = 4
    plans = [batches[p::pairs] for p in range(pairs)]
    plans = [plan + random.Random(p).sample(plan, len(plan)) for p, plan in enumerate(plans)]
    barriers = [threading.Barrier(2) for _ in range(pairs)]
    seen: list[list[int]] = []

    def sender(pair: int, url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            for batch in plans[pair]:
                barriers[pair].wait(timeout=120)
                seen.append(until_ok(lambda: write(http, key, batch)))

    threads = [threading.Thread(target=sender, args=(pair, url))
               for pair in range(pairs) for _, url in urls]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
    finally:
        for proc, _ in urls:
            proc.terminate()
            proc.wait(timeout=30)
    assert len(seen) == 2 * sum(map(len, plans))
    got = assert_exactly_once(fresh_db, new.project.project_id, set(ids))
    assert got.events == n_ids


def test_import_while_serving_stores_each_id_once(fresh_db: str, tmp_path: Path) -> None:
    new = project_in(fresh_db)
    key = new.project.write_key
    n_ids = 30_000  # two transactions of the importer (20,000 JSON lines each)
    ids = [f"i-{i}" for i in range(n_ids)]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events(ids, tracks_only=True)))
    proc, url = start_server(fresh_db, tmp_path / "server.log")
    importing = threading.Event()
    rounds: list[int] = []

    def serve_traffic() -> None:  # the same ids over HTTP, newest first, for as long as
        with httpx.Client(base_url=url, timeout=60) as http:  # the import runs, and once more
            while True:
                last = not importing.is_set()
                for k in range(n_ids, 0, -500):
                    batch = ids[max(0, k - 500):k]
                    until_ok(lambda: write(http, key, batch, tracks_only=True))
                rounds.append(1)
                if last:
                    return

    try:
        importing.set()
        sender = threading.Thread(target=serve_traffic)
        sender.start()
        done = subprocess.run(
            [sys.executable, "-m", "segmently.cli", "--db", fresh_db, "import", str(path),
             "--project", "test"], capture_output=True, text=True, timeout=600)
        importing.clear()
        sender.join(timeout=600)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(rounds) >= 2
    got = stored(fresh_db, new.project.project_id)
    assert got.events == got.distinct_ids == n_ids, (got.events, got.distinct_ids)
    assert got.rolled_up == n_ids


# -- a database from before the unique key ---------------------------------------------------
def test_duplicates_from_before_the_unique_key_are_removed_keeping_the_first(
        fresh_db: str, caplog: pytest.LogCaptureFixture) -> None:
    Store(fresh_db).close()  # today's schema, then the rows an older version allowed
    with _admin(fresh_db) as con:  # what two racing writers left (day 20513 = 2026-03-01)
        con.execute("DROP INDEX events_project_message_key")
        for when, source in (("2026-03-01 10:00", "first"), ("2026-03-01 11:00", "second"),
                             ("2026-03-01 09:00", "earliest")):
            con.execute(
                "INSERT INTO events (project_id, message_id, type, event, user_id, timestamp,"
                " received_at, properties, context, source) VALUES ('p1', 'dup', 'identify',"
                " '$identify', 'u1', %s, %s, '{}', '{}', %s)", [when, when, source])
            con.execute(
                "INSERT INTO traits (project_id, kind, entity_id, trait, value, once, set_at,"
                " received_at, message_id) VALUES ('p1', 'user', 'u1', 'plan', %s, false, %s,"
                " %s, 'dup')", [json.dumps(source), when, when])
            con.execute(
                "INSERT INTO event_rollups (project_id, user_id, event, type, day,"
                " received_day, n, first_ts, last_ts) VALUES ('p1', 'u1', '$identify',"
                " 'identify', 20513, 20513, 1, %s, %s)", [when, when])
        con.execute(
            "INSERT INTO events (project_id, message_id, type, event, user_id, timestamp,"
            " received_at, properties, context, source) VALUES ('p1', 'single', 'track',"
            " 'x', 'u1', '2026-03-01 10:00', '2026-03-01 10:00', '{}', '{}', 'n')")
        con.execute(
            "INSERT INTO event_rollups (project_id, user_id, event, type, day, received_day,"
            " n, first_ts, last_ts) VALUES ('p1', 'u1', 'x', 'track', 20513, 20513, 1,"
            " '2026-03-01 10:00', '2026-03-01 10:00')")
    with caplog.at_level(logging.WARNING, logger="segmently.store.postgres"), \
            Store(fresh_db) as s:
        again = Message(message_id="dup", type="track", event="y",
                        timestamp=datetime(2026, 3, 2), source="n", user_id="u1")
        assert s.append("p1", [again]).stored == 0  # the key holds from now on
    assert "kept the first received copy" in caplog.text
    with _admin(fresh_db) as con:
        kept = con.execute("SELECT message_id, source FROM events ORDER BY 1").fetchall()
        traits = con.execute("SELECT value FROM traits").fetchall()
        rolled = con.execute("SELECT sum(n) FROM event_rollups WHERE project_id = 'p1'"
                             ).fetchone()
        index = con.execute("SELECT indexdef FROM pg_indexes WHERE indexname = "
                            "'events_project_message_key'").fetchone()
    assert kept == [("dup", "earliest"), ("single", "n")]
    assert traits == [('"earliest"',)]  # the derived rows of the removed copies went too
    assert rolled == (2,)
    assert index is not None and "UNIQUE" in index[0]


def test_strings_travel_verbatim_through_the_copy(fresh_db: str) -> None:
    """The write path COPYs CSV written by Arrow: quoting must keep every string as sent,
    an empty string apart from NULL, and SQL in a value inert."""
    hostile = ["", "\\N", "a,b", 'q"uote', '"', "line\nbreak", "cr\r\nlf", "\\", ",",
               "'; DROP TABLE events; --", "é漢字🙂", " lead", "trail "]
    messages = [Message(message_id=f"id{i}:{w}", type="track", event=w or "e",
                        timestamp=datetime(1, 1, 1) if i == 0 else datetime(9999, 12, 31),
                        source="native", user_id=w, account_id=w if i % 2 else None,
                        properties={"v": w})
                for i, w in enumerate(hostile)]
    with Store(fresh_db) as s:
        assert s.append("p1", messages).stored == len(hostile)
    with _admin(fresh_db) as con:
        rows = con.execute("SELECT message_id, event, user_id, anonymous_id, account_id,"
                           " properties, timestamp FROM events").fetchall()
    got = {r[0]: r[1:] for r in rows}
    for i, w in enumerate(hostile):
        event, user, anonymous, account, properties, ts = got[f"id{i}:{w}"]
        assert (event, user, anonymous, account) == (w or "e", w, None, w if i % 2 else None)
        assert json.loads(properties) == {"v": w}
        assert ts == (datetime(1, 1, 1) if i == 0 else datetime(9999, 12, 31))
