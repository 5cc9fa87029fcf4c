"""Shared fixtures: real engines (DuckDB file, the local PostgreSQL) and a real server.

PostgreSQL tests need a server (SEGMENTLY_TEST_PG, default
postgres://postgres@127.0.0.1:5432/test). Without one they are skipped with a message
saying so, except under CI (CI=true), where a missing server fails the run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@pytest.fixture(scope="session")
def spark_backend():  # type: ignore[no-untyped-def]
    """Ibis over a PySpark session in local mode (needs Java; skipped without it, not in CI)."""

    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        pytest.fail(f"pyspark is not installed ({exc}): run `make test`, which installs it")
    if shutil.which("java") is None:
        message = "PySpark needs Java (a JRE 17) on PATH"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    import ibis

    os.environ["PYSPARK_PYTHON"] = sys.executable  # workers must see the same packages
    spark = (SparkSession.builder.master("local[2]").appName("segmently-tests")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.default.parallelism", "2")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(spark)
    spark.stop()


class SparkMirror(Store):
    """Writes land in a DuckDB file; every read runs on Spark over its Parquet export,
    as a lake would hold the events."""

    def __init__(self, duck_url: str, spark_con, lake_dir: Path) -> None:  # type: ignore[no-untyped-def]
        super().__init__(duck_url)
        self._spark = spark_con
        self._lake_dir = lake_dir
        self._version = 0
        self._sync()

    @property
    def con(self):  # type: ignore[no-untyped-def,override]
        return self._spark

    def _sync(self) -> None:
        from segmently.store.lake import export_parquet, open_lake

        self._version += 1
        directory = self._lake_dir / f"v{self._version}"  # fresh paths: no stale Spark caches
        writer = Store.over(self.backends.get())
        names = writer.backends.get().list_tables()
        export_parquet(writer, directory, names)
        open_lake(self._spark, directory, names)

    def append_rows(self, project_id, rows):  # type: ignore[no-untyped-def]
        result = super().append_rows(project_id, rows)
        self._sync()
        return result

    def insert_tables(self, tables) -> None:  # type: ignore[no-untyped-def]
        super().insert_tables(tables)
        self._sync()


ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres),
           pytest.param("spark", marks=pytest.mark.spark)]


@contextmanager
def open_engine_store(request: pytest.FixtureRequest, engine: str, directory: Path,
                      fill: Callable[[Store], object] | None = None) -> Iterator[Store]:
    """A store whose reads run on `engine`, loaded by `fill` first. On Spark the data is
    written to DuckDB and exported to Parquet once, after `fill` (a sync costs seconds)."""
    if engine == "spark":
        duck = f"duckdb://{directory / 'mirror.duckdb'}"
        if fill is not None:
            with Store(duck) as s:
                fill(s)
        mirror = SparkMirror(duck, request.getfixturevalue("spark_backend"), directory / "lake")
        try:
            yield mirror
        finally:
            mirror.close()
        return
    url = f"duckdb://{directory / 'engine.duckdb'}"
    if engine == "postgres":
        url = request.getfixturevalue("pg_database")
        with Store(url) as pg:
            _drop_all(pg)
    with Store(url) as s:
        if fill is not None:
            fill(s)
        yield s


@pytest.fixture(params=ENGINES)
def engine_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store whose reads run on each engine: DuckDB, PostgreSQL, and Spark over Parquet."""
    with open_engine_store(request, request.param, tmp_path) as s:
        yield s


CHROMIUM = "/usr/bin/chromium"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks by fixture, so that `make test-fast` leaves these tests out: one that drives
    the browser (uses `browser`, directly or through a fixture such as uikit's `page`) is
    `browser`; one that uses a real `segmently serve` process (a fixture named `server` or
    `..._server`, such as uikit's `ui_server`) is `slow`. Tests that start a server or the
    CLI themselves, or take seconds, are marked `slow` where they are written."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
        if any(name == "server" or name.endswith("_server") for name in fixtures):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """Debian's chromium driven by Playwright, one for the whole session: here, not in a
    suite's helper module, because a fixture imported into two modules is two fixtures,
    and a second sync Playwright in one thread refuses to start."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        message = ("Debian's chromium is not installed (`apt-get install -y chromium`; "
                   "`make test` does it as root): the UI browser tests need it")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # a member table is a profile query: seconds, not ms
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()
