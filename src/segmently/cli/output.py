"""How commands print: tables and `key: value` records (or JSON with --json), and errors.

Conventions (tests/cli/test_output.py): nothing is ever cut (a key or id is printed whole:
a single record is `key: value` lines, a table's long cells fold, and a list too wide for
the terminal with its ids whole is printed as records instead); tables fit the terminal
(80 columns too); numbers are formatted (`0.67`, `12,345`), None is `—`, instants are
`YYYY-MM-DD HH:MM:SS` (UTC)."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from typing import Any

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from segmently.cli.context import Ctx

console = Console()
NONE = "—"
_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"
_INSTANT = re.compile(_ISO)
_INSTANT_IN_TEXT = re.compile(r"\b" + _ISO.replace("[T ]", "T"))  # in a title


def cell(value: Any) -> str:
    """One value as a person reads it (JSON output keeps the value itself)."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        if _INSTANT.fullmatch(value):  # an instant through the server's JSON reads the same
            try:
                return _instant(datetime.fromisoformat(value))
            except ValueError:
                return value
        return value
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _number(value: float) -> str:
    if math.isnan(value):
        return NONE
    if math.isinf(value) or value == 0:
        return str(value) if math.isinf(value) else "0"
    if abs(value) < 0.01:  # 0.004 stays 0.004, not 0.00
        return f"{value:.2g}"
    text = f"{value:,.2f}".rstrip("0").rstrip(".")
    return text


def _instant(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return f"{value:%Y-%m-%d %H:%M:%S}"


def show(rows: Any, title: str | None = None) -> None:
    """Rows (a list of dicts) as a table, one dict as `key: value` lines; JSON with --json."""
    if Ctx.json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    if isinstance(rows, dict):
        rows = [rows] if rows else []
        if rows:
            records(rows, title)
            return
    if not rows:
        console.print("(nothing)")
        return
    table = _table(rows)
    if table is None:
        records(rows, title)
        return
    _title(title)
    console.print(table)
    console.print()


def _title(title: str | None) -> None:
    """A bold line; the instants it quotes (`as of 2026-03-01T00:00:00`) read as cells do."""
    if title:
        title = _INSTANT_IN_TEXT.sub(lambda m: cell(m.group()), title)
        console.print(Text(title, style="bold"), soft_wrap=True)


def records(rows: list[dict[str, Any]], title: str | None = None) -> None:
    """Each row as `key: value` lines, values whole (the terminal wraps, nothing is cut)."""
    _title(title)
    for i, row in enumerate(rows):
        if i:
            console.print()
        width = max(cell_len(str(k)) for k in row) + 1 if row else 0
        for key, value in row.items():
            label = f"{key}:".ljust(width)
            console.print(f"{label} {cell(value)}", markup=False, highlight=False,
                          soft_wrap=True)
    console.print()


SEPARATOR = 3  # between two columns of the table below: padding, space, padding


def _table(rows: list[dict[str, Any]]) -> Table | None:
    """The rows as a table that fits the terminal with every token (a key, an id, a number:
    a value without spaces) whole; None when it cannot fit."""
    keys = list(rows[0])
    cells = [[cell(row.get(k)) for k in keys] for row in rows]
    columns = []
    need = SEPARATOR * (len(keys) - 1)
    for j, key in enumerate(keys):
        values = [r[j] for r in cells]
        words = [w for v in (str(key), *values) for w in v.split()] or [""]
        longest = max(cell_len(w) for w in words)
        need += longest
        token = all(len(v.split()) <= 1 and "\n" not in v for v in values)
        numeric = all(isinstance(row.get(key), (int, float)) or row.get(key) is None
                      for row in rows) and any(row.get(key) is not None for row in rows)
        columns.append((str(key), token, numeric))
    if need > console.width:
        return None
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  header_style="bold")
    for name, token, numeric in columns:
        table.add_column(name, no_wrap=token, overflow="fold",
                         justify="right" if numeric else "left")
    for row_cells in cells:
        table.add_row(*(Text(v) for v in row_cells))
    return table


def fail(message: str) -> None:
    """Print an error (JSON with --json) and exit 1."""
    if Ctx.json:
        typer.echo(json.dumps({"error": message}))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
