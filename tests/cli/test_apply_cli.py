"""`segmently apply` and `export` from the command line, and `serve`'s warning about a
workspace file that differs from the stored definitions (expectations read back through
the CLI's own listing and the stored rows)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clitools import runner, shop_db

from segmently.cli.context import Ctx
from segmently.cli.serve import warn_if_unapplied
from segmently.segments import definitions as defs
from segmently.store import Store

WORKSPACE = """\
project: shop
segments:
  - name: buyers
    rule: {kind: performed, event: purchase}
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[str, str]:
    return shop_db(tmp_path, WORKSPACE)


@pytest.mark.slow
def test_apply_check_export_and_drift(shop: tuple[str, str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    db, pid = shop
    cli = runner(tmp_path, monkeypatch)
    assert "+ segment buyers: new" in cli("--db", db, "apply", "--check", code=4).output
    assert cli("--db", db, "segments", "list", "--json", parse=True) == []
    out = cli("--db", db, "apply").output
    assert "+ segment buyers: new" in out and "applied" in out
    assert cli("--db", db, "apply", "--check").exit_code == 0  # in sync
    with Store(db) as s:  # an edit in the UI
        defs.save(s, pid, "buyers", "from the UI", {"kind": "performed", "event": "refund"},
                  source="ui")
    drift = cli("--db", db, "apply", code=4).output
    assert "! segment buyers: changed in the UI (version 2)" in drift
    assert "-  event: refund" in drift and "+  event: purchase" in drift
    listed = cli("--db", db, "segments", "list", "--json", parse=True)
    assert [(s["name"], s["version"], s["description"]) for s in listed] == \
        [("buyers", 2, "from the UI")]
    exported = tmp_path / "exported.yaml"
    cli("--db", db, "export", "--out", str(exported))
    assert "event: refund" in exported.read_text()
    assert cli("--db", db, "apply", str(exported), "--check").exit_code == 0
    history = cli("--db", db, "segments", "history", "buyers", "--json", parse=True)
    assert [(v["version"], v["source"]) for v in history] == [(1, "apply"), (2, "ui")]


def test_serve_says_when_the_file_is_not_applied(shop: tuple[str, str], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db, _ = shop
    monkeypatch.setattr(Ctx, "config", str(tmp_path / "segmently.yaml"))
    monkeypatch.setattr(Ctx, "project", None)
    with Store(db) as s:
        warn_if_unapplied(s)
        assert "differs from the database (1 to write, 0 drifted)" in capsys.readouterr().err
        runner(tmp_path, monkeypatch)("--db", db, "apply")  # (the same process: no lock)
        warn_if_unapplied(s)
        assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_apply_check_as_ci_runs_it_in_a_repository_of_segments(shop: tuple[str, str],
                                                                tmp_path: Path) -> None:
    """A team keeps segmently.yaml in git and CI runs `segmently apply --check` (a real
    process, its exit code): 4 while a commit is not applied, 0 once it is."""
    import os
    import subprocess
    import sys

    db, _ = shop
    repo = tmp_path / "segments-repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=ci", "-c", "user.email=ci@example.com"]

    def commit(text: str, message: str) -> None:
        (repo / "segmently.yaml").write_text(text)
        subprocess.run([*git, "add", "segmently.yaml"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", message], check=True)

    def segmently(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "segmently.cli", "--db", db, *args],
                              cwd=repo, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "SEGMENTLY_CONFIG": ""}, check=False)

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commit(WORKSPACE, "buyers")
    assert segmently("apply", "--check").returncode == 4
    assert segmently("apply").returncode == 0
    assert segmently("apply", "--check").returncode == 0
    commit(WORKSPACE.replace("event: purchase", "event: purchase, at_least: 2"), "twice")
    check = segmently("apply", "--check")
    assert check.returncode == 4 and "~ segment buyers" in check.stdout
