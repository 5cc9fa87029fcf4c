"""Every command's --help ends with an example, and the example is a command line of that
command: its path, then options the command takes."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from segmently.cli import app

EXAMPLE = re.compile(r"^Example: (.+)$", re.MULTILINE)


def _leaves(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    subs = getattr(command, "commands", None)
    if subs is None:
        return [(path, command)]
    return [leaf for name, sub in sorted(subs.items()) for leaf in _leaves(sub, (*path, name))]


def _options(command: Any) -> set[str]:
    return {name for p in command.params for name in (*p.opts, *p.secondary_opts)
            if name.startswith("-")}


def test_every_command_has_an_example_of_itself() -> None:
    root = typer.main.get_command(app)
    leaves = _leaves(root)
    assert {("projects", "create"), ("segments", "members"), ("import",), ("demo",),
            ("serve",)} <= {path for path, _ in leaves}
    missing = [" ".join(path) for path, command in leaves
               if not EXAMPLE.search(command.help or "")]
    assert not missing, f"no 'Example: segmently ...' in the help of {missing}"
    for path, command in leaves:
        for example in EXAMPLE.findall(command.help):
            words = shlex.split(example.split(" > ")[0].split(" | ")[0])
            assert words[0] == "segmently", example
            rest = words[1:]
            while rest and rest[0].startswith("--"):  # global options before the command
                assert rest[0].split("=")[0] in _options(root), example
                rest = rest[2:] if rest[0] in ("--db", "--config", "--project") else rest[1:]
            assert tuple(rest[:len(path)]) == path, example
            unknown = {w.split("=")[0] for w in rest[len(path):] if w.startswith("--")} \
                - _options(command)
            assert not unknown, f"{example}: {sorted(unknown)}"


@pytest.mark.slow
def test_the_example_is_shown_in_the_help() -> None:
    runner = CliRunner()
    for path, _command in _leaves(typer.main.get_command(app)):
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert shown.exit_code == 0, shown.output
        assert f"Example: segmently {' '.join(path)}" in shown.output or \
            "Example: segmently --" in shown.output, path
    root = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert "Example: segmently" in root.output


def test_the_command_line_starts_without_the_engines() -> None:
    """`segmently --help` (and every command before it opens a store) imports neither
    Ibis, Arrow, DuckDB, pandas, httpx nor pydantic: they are most of a second of start
    (bench/cli_start.py); a command imports what it uses."""
    import subprocess
    import sys

    heavy = ["ibis", "pyarrow", "duckdb", "pandas", "httpx", "pydantic", "yaml"]
    code = ("import sys, segmently.cli.__main__ as m; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(m.entry.__globals__['app'], ['--help']); "
            f"print(r.exit_code, [n for n in {heavy!r} if n in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split(maxsplit=1)
    assert out == ["0", "[]\n"], out
