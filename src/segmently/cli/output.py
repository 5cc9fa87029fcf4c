"""How commands print: tables (or JSON with --json) and errors."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from segmently.cli.context import Ctx

console = Console()


def show(rows: Any, title: str | None = None) -> None:
    if Ctx.json:
        typer.echo(json.dumps(rows, default=str, indent=2))
        return
    if isinstance(rows, dict):
        rows = [rows]
    if not rows:
        console.print("(nothing)")
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(str(key))
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)


def fail(message: str) -> None:
    """Print an error (JSON with --json) and exit 1."""
    if Ctx.json:
        typer.echo(json.dumps({"error": message}))
    else:
        typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)
