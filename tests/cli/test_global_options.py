"""`--db`, `--json`, `--config` and `--project` go before the command or after it; given
after it, they win (README, "Command line")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer.main
from clitools import Cli, runner

from segmently.cli import app

pytestmark = pytest.mark.slow  # the whole CLI app, command after command

GLOBAL = ("--db", "--json", "--config", "--project")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return runner(tmp_path, monkeypatch)


def test_db_and_json_after_the_command(cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "after.duckdb"
    made = cli("projects", "create", "shop", "--db", str(db), "--json", parse=True)
    assert made["name"] == "shop" and made["secret_key"].startswith("sk_")
    assert db.exists() and not (tmp_path / "segmently.duckdb").exists()
    listed = cli("projects", "list", "--db", str(db), "--json", parse=True)
    assert [p["name"] for p in listed] == ["shop"]
    # a group takes them too: `segmently projects --json list`
    assert json.loads(cli("projects", "--db", str(db), "--json", "list").stdout)[0]["name"] \
        == "shop"


def test_after_the_command_wins_over_before(cli: Cli, tmp_path: Path) -> None:
    first, second = tmp_path / "first.duckdb", tmp_path / "second.duckdb"
    cli("--db", str(first), "projects", "create", "one")
    cli("--db", str(second), "projects", "create", "two")
    listed = cli("--db", str(first), "projects", "list", "--db", str(second), "--json",
                 parse=True)
    assert [p["name"] for p in listed] == ["two"]
    # ... and over SEGMENTLY_DB, which only stands in for --db before the command
    listed = cli("projects", "list", "--db", str(first), "--json", parse=True,
                 env={"SEGMENTLY_DB": str(second)})
    assert [p["name"] for p in listed] == ["one"]
    # --json before the command still holds when an option after says nothing of it
    assert cli("--json", "projects", "list", "--db", str(first), parse=True)[0]["name"] == "one"


def _jsonl(path: Path, user: str) -> Path:
    path.write_text(json.dumps({"event": "viewed", "user_id": user,
                                "timestamp": "2026-03-01T10:00:00Z"}) + "\n")
    return path


def _events_per_project(cli: Cli, db: Path) -> dict[str, int]:
    ids = {p["project_id"]: p["name"] for p in cli("--db", str(db), "--json", "projects",
                                                   "list", parse=True)}
    return {ids[r["project_id"]]: r["rows"] for r in cli("--db", str(db), "--json", "stats",
                                                         parse=True)
            if r["table"] == "events"}


def test_project_before_the_command_is_the_default_of_the_command(
        cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    for name in ("shop", "blog"):
        cli("--db", str(db), "projects", "create", name)
    events = _jsonl(tmp_path / "a.jsonl", "u1")
    cli("--db", str(db), "--project", "blog", "import", str(events))
    assert _events_per_project(cli, db) == {"blog": 1}
    # the command's own --project wins over the one before it
    cli("--db", str(db), "--project", "blog", "import", str(_jsonl(tmp_path / "b.jsonl", "u2")),
        "--project", "shop")
    assert _events_per_project(cli, db) == {"blog": 1, "shop": 1}
    # without either, two projects are ambiguous: the command says so
    refused = cli("--db", str(db), "import", str(_jsonl(tmp_path / "c.jsonl", "u3")), code=1)
    assert "--project" in refused.output


def test_config_after_the_command(cli: Cli, tmp_path: Path) -> None:
    """`demo` writes the workspace file --config names; the one after the command wins."""
    before, after = tmp_path / "before.yaml", tmp_path / "after.yaml"
    found = cli("--db", str(tmp_path / "d.duckdb"), "--config", str(before), "demo",
                "--users", "20", "--days", "30", "--end", "2026-03-01", "--config", str(after),
                "--json", parse=True)
    assert found["workspace"] == str(after)
    assert after.is_file() and not before.exists()


def _commands(command: typer.main.TyperGroup | object, path: tuple[str, ...] = ()
              ) -> list[tuple[tuple[str, ...], object]]:
    found = [(path, command)] if path else []
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found += _commands(sub, (*path, name))
    return found


def test_every_command_and_group_takes_the_global_options(cli: Cli) -> None:
    root = typer.main.get_command(app)
    commands = _commands(root)
    assert len(commands) > 10
    for path, command in commands:
        names = {name for p in command.params for name in p.opts}  # type: ignore[attr-defined]
        assert set(GLOBAL) <= names, path
        shown = cli(*path, "--help").stdout
        assert all(option in shown for option in GLOBAL), path
