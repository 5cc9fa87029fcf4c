"""What the CLI prints for people: keys and ids whole, tables within the terminal (80
columns), numbers, None and instants formatted (cli/output.py). JSON (--json) keeps the
values themselves."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from clitools import terminal
from rich.cells import cell_len
from rich.console import Console

from segmently.cli import output
from segmently.store import Store
from segmently.store.projects import project_for_secret_key


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _fits(text: str, width: int = 80) -> None:
    too_wide = [line for line in _lines(text) if cell_len(line.rstrip()) > width]
    assert not too_wide, too_wide


@pytest.mark.slow
def test_the_secret_key_is_printed_whole_in_80_columns(tmp_path: Path) -> None:
    db = f"duckdb://{tmp_path / 'k.duckdb'}"
    made = terminal("projects", "create", "shop", "--db", db).stdout
    _fits(made)
    assert "…" not in made
    fields = dict(line.split(":", 1) for line in _lines(made) if ":" in line)
    secret, write = fields["secret_key"].strip(), fields["write_key"].strip()
    with Store(db) as store:  # the printed key is the key: it signs in
        project = project_for_secret_key(store, secret)
        assert project is not None and project.name == "shop" and project.write_key == write


@pytest.mark.slow
def test_projects_list_fits_80_columns_with_every_key_whole(tmp_path: Path) -> None:
    db = f"duckdb://{tmp_path / 'l.duckdb'}"
    for name in ("shop", "a-project-name-long-enough-that-no-table-of-it-fits-80-columns"):
        terminal("projects", "create", name, "--db", db)
    listed = json.loads(terminal("projects", "list", "--db", db, "--json").stdout)
    shown = terminal("projects", "list", "--db", db).stdout
    _fits(shown)
    assert "…" not in shown
    for project in listed:
        for key in ("project_id", "name", "write_key"):
            assert project[key] in shown, key  # on one line, whole
    assert not re.search(r"\d{4}-\d\d-\d\dT", shown)  # instants: 2026-03-01 12:30:00


@pytest.mark.slow
def test_a_table_fits_80_columns(tmp_path: Path) -> None:
    db = f"duckdb://{tmp_path / 't.duckdb'}"
    terminal("projects", "create", "shop", "--db", db)
    rows = [{"event": "viewed", "user_id": f"u{i}",
             "timestamp": "2026-03-01T10:00:00Z"} for i in range(1200)]
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    imported = terminal("import", "e.jsonl", "--db", db, cwd=tmp_path).stdout
    _fits(imported)
    assert "stored:         1,200" in imported  # a record: key: value, a number with commas
    stats = terminal("stats", "--db", db).stdout
    _fits(stats)
    events = next(line for line in _lines(stats) if line.startswith("events"))
    assert events.split()[-1] == "1,200"


@pytest.fixture
def printed(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What output.show prints, on an 80-column console."""
    sink = io.StringIO()
    monkeypatch.setattr(output, "console", Console(file=sink, width=80, color_system=None))
    monkeypatch.setattr(output.Ctx, "json", False)
    return sink


def test_numbers_none_and_instants_are_formatted(printed: io.StringIO) -> None:
    output.show([{"segment": "power_users", "share": 2 / 3, "size": 12345, "score": 72.0,
                  "tiny": 0.004, "churn": None}], title="sizes as of 2026-03-01T00:00:00")
    output.show([{"as_of": datetime(2026, 3, 1, 12, 30),
                  "known_at": "2026-03-01T12:30:00.123456+00:00"}])  # as the server's JSON
    text = printed.getvalue()
    _fits(text)
    row = next(line for line in _lines(text) if line.startswith("power_users"))
    assert row.split() == ["power_users", "0.67", "12,345", "72", "0.004", "—"]
    instants = next(line for line in _lines(text) if line.startswith("2026"))
    assert instants.split() == ["2026-03-01", "12:30:00"] * 2
    assert "0.6666" not in text and "None" not in text
    assert _lines(text)[0] == "sizes as of 2026-03-01 00:00:00"


def test_one_record_is_key_value_lines_nothing_cut(printed: io.StringIO) -> None:
    key = "sk_" + "x" * 120  # wider than the terminal: the line is long, the key whole
    output.show({"name": "shop", "secret_key": key, "health": 0.123456, "nps": None},
                title="new project")
    lines = _lines(printed.getvalue())
    assert lines[:5] == ["new project", "name:       shop", f"secret_key: {key}",
                         "health:     0.12", "nps:        —"]


def test_a_list_too_wide_for_whole_keys_becomes_records(printed: io.StringIO) -> None:
    rows = [{"project_id": f"prj_{i:016x}", "write_key": f"wk_{i}" + "k" * 40,
             "secret_key": f"sk_{i}" + "s" * 40} for i in range(2)]
    output.show(rows, title="projects")
    text = printed.getvalue()
    for row in rows:
        for value in row.values():
            assert value in text
    assert "…" not in text
    assert f"secret_key: {rows[1]['secret_key']}" in _lines(text)


def test_json_keeps_the_values(monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(output.Ctx, "json", True)
    output.show([{"share": 2 / 3, "churn": None}])
    assert json.loads(capsys.readouterr().out) == [{"share": 2 / 3, "churn": None}]
