"""Files Segmently writes that hold data or credentials: the control file of `serve` and
the DuckDB database with its write-ahead log.

Found (issue 9): a pre-existing 0644 control file kept its mode, a symlink at the control
path was followed and its target overwritten with the token, a corrupt control file was a
traceback, and DuckDB files were created 0644 (readable by every local user). Each test
below sets up the hostile or careless state for real (files, symlinks, FIFOs, a dead
process, a real server) and reads the result back from the file system.
"""

from __future__ import annotations

import gc
import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from conftest import free_port, start_server
from segmently import control
from segmently.store import Store, owner_only
from segmently.store.projects import create_project

if TYPE_CHECKING:
    from conftest import Server


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def current_umask() -> int:
    value = os.umask(0)
    os.umask(value)
    return value


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which an unprotected file is created world-readable, and
    no store of an earlier test still open (the umask is process-wide)."""
    gc.collect()  # a Store dropped without close() gives its share back when collected
    assert owner_only._holders == 0, "a DuckDB store of an earlier test is still open"
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def db_url(tmp_path: Path) -> str:
    return f"duckdb://{tmp_path / 'x.duckdb'}"


# -- the control file ---------------------------------------------------------------------


def test_control_file_is_created_0600(tmp_path: Path, umask_022: None) -> None:
    ctl = control.write_control(db_url(tmp_path), "http://127.0.0.1:1")
    path = tmp_path / "x.duckdb.serve.json"
    assert ctl is not None and mode(path) == 0o600
    assert json.loads(path.read_text()) == {"url": "http://127.0.0.1:1", "token": ctl.token,
                                            "pid": os.getpid()}


def test_a_stale_0644_file_is_replaced_by_a_new_0600_one(tmp_path: Path,
                                                          umask_022: None) -> None:
    path = tmp_path / "x.duckdb.serve.json"
    path.write_text(json.dumps({"url": "http://127.0.0.1:1", "token": "old", "pid": dead_pid()}))
    path.chmod(0o644)
    other_name = tmp_path / "hard-link.json"  # another name of the old file
    os.link(path, other_name)
    ctl = control.write_control(db_url(tmp_path), "http://127.0.0.1:2")
    assert ctl is not None and mode(path) == 0o600
    assert json.loads(path.read_text())["token"] == ctl.token != "old"
    # a new file, not the old one rewritten: the token went nowhere else
    assert json.loads(other_name.read_text())["token"] == "old"
    assert mode(other_name) == 0o644 and os.stat(other_name).st_nlink == 1


def test_a_corrupt_leftover_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "x.duckdb.serve.json"
    path.write_bytes(b"\x00{not json")
    ctl = control.write_control(db_url(tmp_path), "http://127.0.0.1:2")
    assert ctl is not None and control.read_control(db_url(tmp_path)) == ctl


def test_a_live_pid_whose_server_does_not_answer_is_stale(tmp_path: Path) -> None:
    """This very process is alive, but nothing listens on the port the file names."""
    path = tmp_path / "x.duckdb.serve.json"
    path.write_text(json.dumps({"url": f"http://127.0.0.1:{free_port()}", "token": "t",
                                "pid": os.getpid()}))
    ctl = control.write_control(db_url(tmp_path), "http://127.0.0.1:2")
    assert ctl is not None and control.read_control(db_url(tmp_path)) == ctl


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_is_never_followed(tmp_path: Path, dangling: bool) -> None:
    target = tmp_path / "victim.txt"
    if not dangling:
        target.write_text("precious")
    link = tmp_path / "x.duckdb.serve.json"
    link.symlink_to(target)
    with pytest.raises(control.ControlFileError, match="symbolic link"):
        control.write_control(db_url(tmp_path), "http://127.0.0.1:2")
    assert link.is_symlink()  # left for the operator to inspect
    if dangling:
        assert not target.exists()  # not created through the link
    else:
        assert target.read_text() == "precious"
    with pytest.raises(control.ControlFileError, match="symbolic link"):
        control.read_control(db_url(tmp_path))


def test_read_control_refuses_a_symlink_to_a_valid_control_file(tmp_path: Path) -> None:
    """Following it would hand a planted file's URL the CLI's calls."""
    real = tmp_path / "elsewhere.json"
    real.write_text(json.dumps({"url": "http://127.0.0.1:9", "token": "t", "pid": 1}))
    (tmp_path / "x.duckdb.serve.json").symlink_to(real)
    with pytest.raises(control.ControlFileError, match="symbolic link"):
        control.read_control(db_url(tmp_path))


@pytest.mark.parametrize("content", [b"", b"{", b"[1, 2]", b'{"url": "u", "token": "t"}',
                                     b'{"url": "u", "token": "t", "pid": "12"}',
                                     b'{"url": 1, "token": "t", "pid": 12}',
                                     b"\xff\xfe", b"{" * 10_000])
def test_a_corrupt_control_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "x.duckdb.serve.json").write_bytes(content)
    with pytest.raises(control.ControlFileError, match="not a valid control file.*delete it"):
        control.read_control(db_url(tmp_path))


def test_a_fifo_neither_hangs_nor_is_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "x.duckdb.serve.json"
    os.mkfifo(fifo)
    with pytest.raises(control.ControlFileError, match="not a regular file"):
        control.read_control(db_url(tmp_path))
    with pytest.raises(control.ControlFileError, match="not a regular file"):
        control.write_control(db_url(tmp_path), "http://127.0.0.1:2")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_remove_control_leaves_another_servers_file(tmp_path: Path) -> None:
    mine = control.write_control(db_url(tmp_path), "http://127.0.0.1:2")
    path = tmp_path / "x.duckdb.serve.json"
    path.unlink()
    path.write_text(json.dumps({"url": "http://127.0.0.1:3", "token": "theirs", "pid": 1}))
    control.remove_control(db_url(tmp_path), mine)
    assert json.loads(path.read_text())["token"] == "theirs"


def test_a_live_servers_file_is_refused_and_kept(server: Server) -> None:
    path = control.control_path(server.db)
    assert path is not None and mode(path) == 0o600
    before = path.read_bytes()
    with pytest.raises(control.ControlFileError, match="running `segmently serve`"):
        control.write_control(server.db, "http://127.0.0.1:2")
    assert path.read_bytes() == before
    live = control.read_control(server.db)
    assert live is not None and control.is_live(live)
    # the same server, named with a token it does not accept, is not this file's server
    assert not control.is_live(control.ServerControl(live.url, "wrong", live.pid))


@pytest.mark.slow
def test_serve_refuses_a_planted_symlink_and_leaves_its_target(tmp_path: Path) -> None:
    db = db_url(tmp_path)
    with Store(db) as s:
        create_project(s, "p")
    target = tmp_path / "victim.txt"
    target.write_text("precious")
    (tmp_path / "x.duckdb.serve.json").symlink_to(target)
    log = tmp_path / "server.log"
    with pytest.raises(RuntimeError, match="exited early"):
        start_server(db, log)
    assert target.read_text() == "precious"
    text = log.read_text()
    assert "symbolic link" in text and "Traceback" not in text


@pytest.mark.slow
def test_serve_replaces_a_dead_servers_0644_file(tmp_path: Path, umask_022: None) -> None:
    db = db_url(tmp_path)
    with Store(db) as s:
        create_project(s, "p")
    path = tmp_path / "x.duckdb.serve.json"
    path.write_text(json.dumps({"url": "http://127.0.0.1:1", "token": "old", "pid": dead_pid()}))
    path.chmod(0o644)
    proc, url = start_server(db, tmp_path / "server.log")
    try:
        assert mode(path) == 0o600
        data = json.loads(path.read_text())
        assert (data["pid"], data["url"]) == (proc.pid, url)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not path.exists()  # removed on exit


def test_the_cli_reports_a_corrupt_control_file_without_a_traceback(server: Server) -> None:
    path = control.control_path(server.db)
    assert path is not None
    path.write_text("garbage")  # the server holds the database: the CLI must use this file
    result = subprocess.run([sys.executable, "-m", "segmently.cli", "--db", server.db,
                             "projects", "list"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "not a valid control file" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


# -- DuckDB files ------------------------------------------------------------------------


def test_new_duckdb_file_and_wal_are_0600_and_the_umask_comes_back(
        tmp_path: Path, umask_022: None) -> None:
    db = tmp_path / "x.duckdb"
    wal = tmp_path / "x.duckdb.wal"
    with Store(f"duckdb://{db}") as s:
        create_project(s, "first")
        assert wal.exists(), "a write before any checkpoint leaves a WAL"
        assert (mode(db), mode(wal)) == (0o600, 0o600)
        s.con.raw_sql("CHECKPOINT")
        assert not wal.exists()  # DuckDB deletes the WAL at a checkpoint...
        create_project(s, "second")
        assert wal.exists() and mode(wal) == 0o600  # ...and creates it again: still 0600
    assert mode(db) == 0o600
    assert current_umask() == 0o022


def test_a_served_database_keeps_its_wal_0600(server: Server) -> None:
    """The WAL the server process creates when it writes (here a project created by the
    CLI through the server, which holds the file), before it checkpoints at exit."""
    made = subprocess.run([sys.executable, "-m", "segmently.cli", "--db", server.db,
                           "projects", "create", "second"], capture_output=True, text=True,
                          timeout=120)
    assert made.returncode == 0, made.stderr
    db = Path(server.db.removeprefix("duckdb://"))
    wal = db.with_name(db.name + ".wal")
    assert wal.exists() and mode(wal) == 0o600
    assert mode(db) == 0o600


def test_an_existing_database_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    """Only files DuckDB creates are affected: an operator's chmod stands."""
    db = tmp_path / "x.duckdb"
    with Store(f"duckdb://{db}") as s:
        create_project(s, "p")
    db.chmod(0o640)
    with Store(f"duckdb://{db}") as s:
        create_project(s, "q")
    assert mode(db) == 0o640


@pytest.mark.slow
def test_concurrent_stores_restore_the_umask_only_after_the_last_close(
        tmp_path: Path, umask_022: None) -> None:
    """The umask is process-wide: opens and closes from several threads share it."""
    stores: list[Store] = []
    lock = threading.Lock()

    def open_one(i: int) -> None:
        s = Store(f"duckdb://{tmp_path / f'db{i}.duckdb'}")
        with lock:
            stores.append(s)

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores) == 6 and current_umask() == 0o077
    probe = tmp_path / "made-meanwhile.txt"
    probe.write_text("x")
    assert mode(probe) == 0o600  # other files made meanwhile: stricter, never looser
    closers = [threading.Thread(target=s.close) for s in stores[:5]]
    for t in closers:
        t.start()
    for t in closers:
        t.join()
    assert current_umask() == 0o077  # one store still open
    stores[5].close()
    stores[5].close()  # a second close gives nothing back twice
    assert current_umask() == 0o022
    assert all(mode(tmp_path / f"db{i}.duckdb") == 0o600 for i in range(6))


def test_a_failed_open_holds_nothing(tmp_path: Path, umask_022: None) -> None:
    bad = tmp_path / "not-a-db.duckdb"
    bad.write_text("this is not a DuckDB file")
    with pytest.raises(Exception):  # noqa: B017 - DuckDB's own error, whatever its class
        Store(f"duckdb://{bad}")
    assert current_umask() == 0o022


def test_in_memory_stores_change_nothing(umask_022: None) -> None:
    with Store("duckdb://:memory:"):
        assert current_umask() == 0o022
