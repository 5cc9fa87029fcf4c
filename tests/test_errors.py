"""The one error root: every user error declares its code, status and exit code, and the
CLI and the web app each have one handler for it (no traceback, no 500)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import segmently
from segmently.errors import EXIT_INVALID, EXIT_UNAVAILABLE, SegmentlyError


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_all_subclasses(sub)}
    return out


def test_every_error_class_declares_what_the_shells_need() -> None:
    for mod in pkgutil.walk_packages(segmently.__path__, "segmently."):
        importlib.import_module(mod.name)
    errors = _all_subclasses(SegmentlyError)
    names = {cls.__name__ for cls in errors}
    # the errors of every stage derive from the root
    assert {"InputError", "AuthError", "RuleError", "SegmentReferenceError", "UnknownUserError",
            "UnknownSegmentError", "SegmentExistsError", "WorkspaceError", "ProjectError",
            "DatabaseUnavailableError", "StoreLockedError", "DemoError",
            "ControlFileError"} <= names
    for cls in errors:
        assert cls.code != "error" or cls.__module__ == "segmently.errors", cls
        assert 400 <= cls.status < 600, cls
        assert cls.exit_code in (EXIT_INVALID, EXIT_UNAVAILABLE), cls


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmently.cli", "--db", str(db), *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_an_uncaught_user_error_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    """A duplicate project name went through no command's own handling: it used to be a
    traceback with exit code 1."""
    db = tmp_path / "e.duckdb"
    assert _cli(db, "projects", "create", "shop").returncode == 0
    again = _cli(db, "projects", "create", "shop")
    assert again.returncode == EXIT_INVALID
    assert again.stderr.strip() == "error: a project named 'shop' already exists"
    assert "Traceback" not in again.stderr + again.stdout
    as_json = _cli(db, "--json", "projects", "create", "shop")
    assert as_json.returncode == EXIT_INVALID
    assert json.loads(as_json.stdout) == {"error": "a project named 'shop' already exists",
                                          "code": "invalid_project"}
