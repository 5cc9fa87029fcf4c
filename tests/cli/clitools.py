"""Helpers of the CLI tests: the app in-process (typer's CliRunner) and as a real process
(`python -m segmently.cli`, for the terminal's width). Not a conftest.py: other test
directories import the root one as `conftest`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segmently.cli import app

Cli = Callable[..., Any]


def shop_db(tmp_path: Path, workspace: str) -> tuple[str, str]:
    """(database URL, project id) of a new project "shop", with `workspace` written as
    tmp_path/segmently.yaml (not applied)."""
    from segmently.store import Store
    from segmently.store.projects import create_project

    db = f"duckdb://{tmp_path / 'shop.duckdb'}"
    with Store(db) as s:
        pid = create_project(s, "shop").project.project_id
    (tmp_path / "segmently.yaml").write_text(workspace)
    return db, pid


def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """`cli(*args)`: run in-process from a temporary directory (so a forgotten --db would
    create ./segmently.duckdb there, which the tests look for); exit code 0 expected unless
    `code=` says otherwise; the result, or its JSON when `parse=True`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEGMENTLY_DB", raising=False)
    monkeypatch.delenv("SEGMENTLY_CONFIG", raising=False)

    def run(*args: str, code: int = 0, parse: bool = False, env: dict[str, str] | None = None
            ) -> Any:
        result = CliRunner().invoke(app, list(args), env=env)
        assert result.exit_code == code, result.output
        return json.loads(result.stdout) if parse else result

    return run


def terminal(*args: str, columns: int = 80, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    """`segmently ARGS` as a process whose terminal is `columns` wide."""
    env = {**os.environ, "COLUMNS": str(columns)}
    env.pop("SEGMENTLY_DB", None)
    done = subprocess.run([sys.executable, "-m", "segmently.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done
