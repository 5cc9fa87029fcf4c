"""Shared fixtures: real engines (DuckDB file, the local PostgreSQL) and a real server.

PostgreSQL tests need a server (SEGMENTLY_TEST_PG, default
postgres://postgres@127.0.0.1:5432/test). Without one they are skipped with a message
saying so, except under CI (CI=true), where a missing server fails the run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
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
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
        # no incremental passes unless a test asks (tests/act/test_campaigns.py does): a
        # pass between a test's events and its refresh would take the refresh's entries
        env={**os.environ, "SEGMENTLY_INCREMENTAL_SECONDS": "0", **(env or {})},
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


@contextmanager
def running_server(directory: Path) -> Iterator[Server]:
    """`segmently serve` running for real on loopback over a fresh DuckDB file in
    `directory`, with one project."""
    db = f"duckdb://{directory / 'server.duckdb'}"
    with Store(db) as s:
        new = create_project(s, "test")
    proc, url = start_server(db, directory / "server.log")
    srv = Server(url, db, new.project.write_key, new.secret_key, new.project.project_id,
                 proc, directory / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """`segmently serve` running for real on loopback over a fresh DuckDB file."""
    with running_server(tmp_path) as srv:
        yield srv


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
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # the driver talks over loopback only
    spark = (SparkSession.builder.master("local[2]").appName("segmently-tests")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.ui.enabled", "false")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.default.parallelism", "2")
             # a JVM of a few minutes over tiny tables: the C2 compiler's work never pays
             # back (the Spark tests take about 30% less CPU with C1 alone), nor do
             # concurrent collectors' threads on 2 cores
             .config("spark.driver.extraJavaOptions",
                     "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    yield ibis.pyspark.connect(spark)
    spark.stop()


class SparkMirror(Store):
    """Writes land in a DuckDB file; every read runs on Spark over its Parquet export,
    as a lake would hold the events. The export is made by the first read after a write
    (a sync costs Spark work): writes in a row, or a store never read, cost none."""

    def __init__(self, duck_url: str, spark_con, lake_dir: Path) -> None:  # type: ignore[no-untyped-def]
        super().__init__(duck_url)
        self._spark = spark_con
        self._lake_dir = lake_dir
        self._version = 0
        self._stale = True

    @property
    def con(self):  # type: ignore[no-untyped-def,override]
        if self._stale:
            self._sync()
        return self._spark

    def _sync(self) -> None:
        from segmently.store.lake import export_parquet, open_lake

        self._version += 1
        directory = self._lake_dir / f"v{self._version}"  # fresh paths: no stale Spark caches
        writer = Store.over(self.backends.get())
        names = writer.backends.get().list_tables()
        export_parquet(writer, directory, names)
        open_lake(self._spark, directory, names)
        self._stale = False

    def append_rows(self, project_id, rows):  # type: ignore[no-untyped-def]
        result = super().append_rows(project_id, rows)
        self._stale = True
        return result

    def insert_tables(self, tables) -> None:  # type: ignore[no-untyped-def]
        super().insert_tables(tables)
        self._stale = True


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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks by fixture, so that `make test-fast` leaves these tests out: one that drives
    the browser (uses `browser`, directly or through a fixture such as uikit's `page`) is
    `browser`; one that uses a real `segmently serve` process (a fixture named `server` or
    `..._server`, such as uikit's `ui_server`) is `slow`; one that uses `spark_backend`
    itself is `spark`, as ENGINES' Spark parameter is. Tests that start a server or the
    CLI themselves, or take seconds, are marked `slow` where they are written.

    Under xdist, a worker then tells the scheduler below which tests are Spark's, and
    a guess of each test's seconds by these marks."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
        if any(name == "server" or name.endswith("_server") for name in fixtures):
            item.add_marker(pytest.mark.slow)
        if "spark_backend" in fixtures:
            item.add_marker(pytest.mark.spark)
    target = getattr(config, "workerinput", {}).get(_PLAN)
    if target:  # every worker collects the same tests: any of them may write the plan
        mine = Path(f"{target}.{config.workerinput['workerid']}")
        mine.write_text(json.dumps({
            "spark": [i.nodeid for i in items if i.get_closest_marker("spark")],
            "guess": {i.nodeid: next((s for mark, s in _GUESS if i.get_closest_marker(mark)),
                                     0.1) for i in items}}))
        mine.replace(target)


# a test's seconds by its marks when no run has timed it yet (the means of a run of the
# whole suite on the 2-core machine: bench/RESULTS.md "Test suite")
_GUESS = [("browser", 5.0), ("spark", 3.0), ("slow", 2.0), ("postgres", 1.0)]


# -- how `make test` (-n 2 --dist loadfile) shares the tests between its workers ----------
# As loadfile does, a file's tests go to one worker (a file's module fixtures, such as
# its servers, start once), with two changes:
# - every Spark test, whatever its file, joins one work unit "spark": one worker starts
#   one JVM for all of them (one costs seconds of both cores, and two at once, on two
#   workers, slowed everything else down);
# - the units go out longest first, so that both workers finish about together: by the
#   seconds each test took in the last runs (.pytest_cache, key segmently/test-seconds,
#   written at the end of every run that is not a worker's), else by its marks (_GUESS).
# Other --dist modes are xdist's own.
_PLAN = "segmently_plan"
_SECONDS = "segmently/test-seconds"
_plan_file = pytest.StashKey[Path]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # type: ignore[no-untyped-def]
    """xdist, before starting a worker: where it writes the plan of the tests it collects."""
    stash = node.config.stash
    if _plan_file not in stash:
        stash[_plan_file] = Path(tempfile.mkdtemp(prefix="segmently-xdist-")) / "plan.json"
    node.workerinput[_PLAN] = str(stash[_plan_file])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):  # type: ignore[no-untyped-def]
    if config.getvalue("dist") != "loadfile" or _plan_file not in config.stash:
        return None
    from xdist.scheduler import LoadFileScheduling

    cache = getattr(config, "cache", None)
    seen: dict[str, float] = cache.get(_SECONDS, {}) if cache is not None else {}
    plan_file = config.stash[_plan_file]

    class FilesAndSpark(LoadFileScheduling):  # type: ignore[misc]
        spark: frozenset[str] | None = None
        guess: dict[str, float] = {}
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            if self.spark is None:  # first called once every worker has collected
                try:
                    plan = json.loads(plan_file.read_text())
                    self.spark, self.guess = frozenset(plan["spark"]), plan["guess"]
                except (OSError, ValueError, KeyError):
                    self.spark = frozenset()
            return "spark" if nodeid in self.spark else super()._split_scope(nodeid)

        def seconds(self, nodeid: str) -> float:
            return seen.get(nodeid, self.guess.get(nodeid, 1.0))

        def _assign_work_unit(self, node) -> None:  # type: ignore[no-untyped-def]
            if not self.ordered:  # the first assignment: the queue is whole
                self.ordered = True
                units = sorted(self.workqueue.items(), reverse=True,
                               key=lambda unit: sum(map(self.seconds, unit[1])))
                self.workqueue.clear()
                self.workqueue.update(units)
            super()._assign_work_unit(node)

    return FilesAndSpark(config, log)


class _Seconds:
    """Adds up each test's setup, call and teardown, and stores them for the next run."""

    def __init__(self, cache) -> None:  # type: ignore[no-untyped-def]
        self.cache = cache
        self.now: dict[str, float] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.now[report.nodeid] = self.now.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self) -> None:
        if self.now:
            self.cache.set(_SECONDS, {**self.cache.get(_SECONDS, {}),
                                      **{i: round(s, 2) for i, s in self.now.items()}})


def pytest_configure(config: pytest.Config) -> None:
    cache = getattr(config, "cache", None)
    if cache is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Seconds(cache), "segmently-seconds")


def pytest_unconfigure(config: pytest.Config) -> None:
    if _plan_file in config.stash:
        shutil.rmtree(config.stash[_plan_file].parent, ignore_errors=True)


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
