"""The command line (typer). It composes core functions; none of the logic lives here.

One module per group of commands; importing them registers their commands on `app`
(order: the order of `segmently --help`). The console script is `segmently.cli:entry`.
Most commands run a function of `commands.py` (`cli/context.py` `run`: here, or in the
`serve` that holds the DuckDB file), which calls the application core (`core.Project`);
`demo`, `import` and `serve` open the store themselves.
"""

# ruff: noqa: I001 (the order of these imports is the order of `segmently --help`)
from __future__ import annotations

from segmently.cli.app import app, entry

# each module registers its commands on `app` when imported
from segmently.cli import projects, stats, importing, demo, serve, segments, users  # noqa: F401
from segmently.cli import config  # noqa: F401
from segmently.cli import definitions  # noqa: F401
from segmently.cli import act  # noqa: F401
from segmently.cli import campaigns  # noqa: F401
from segmently.cli import insights  # noqa: F401

__all__ = ["app", "entry"]
