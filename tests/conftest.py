"""Shared fixtures: real engines (DuckDB file, the local PostgreSQL) and a real server.

PostgreSQL tests need a server (SEGMENTLY_TEST_PG, default
postgres://postgres@127.0.0.1:5432/test). Without one they are skipped with a message
saying so, except under CI (CI=true), where a missing server fails the run.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from segmently.store import Store
from segmently.store.projects import create_project

PG_URL = os.environ.get("SEGMENTLY_TEST_PG", "postgres://postgres@127.0.0.1:5432/test")


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_URL.replace("postgres://", "postgresql://"), autocommit=True,
                           connect_timeout=3)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; yields its URL."""
    try:
        admin = _pg_admin()
    except Exception as exc:  # noqa: BLE001
        message = f"PostgreSQL is not reachable at {PG_URL} ({exc}); set SEGMENTLY_TEST_PG"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    name = f"segmently_test_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _drop_all(store: Store) -> None:
    con = store.con
    for name in con.list_tables():
        con.drop_table(name)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL on each engine, empty at the start of the test."""
    if request.param == "duckdb":
        yield f"duckdb://{tmp_path / 'store.duckdb'}"
        return
    url = request.getfixturevalue("pg_database")
    with Store(url) as s:
        _drop_all(s)
    yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store(store_url) as s:
        yield s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    db: str
    write_key: str
    secret_key: str
    project_id: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int | None = None) -> None:
        if self.process.poll() is None:
            if sig is None:
                self.process.terminate()
            else:
                self.process.send_signal(sig)
            self.process.wait(timeout=30)


def start_server(db: str, log: Path, port: int | None = None,
                 env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmently.cli", "--db", db, "serve", "--port", str(port)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """`segmently serve` running for real on loopback over a fresh DuckDB file."""
    db = f"duckdb://{tmp_path / 'server.duckdb'}"
    with Store(db) as s:
        new = create_project(s, "test")
    proc, url = start_server(db, tmp_path / "server.log")
    srv = Server(url, db, new.project.write_key, new.secret_key, new.project.project_id,
                 proc, tmp_path / "server.log")
    try:
        yield srv
    finally:
        srv.stop()
