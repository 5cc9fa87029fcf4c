"""Options several commands take."""

from __future__ import annotations

import typer

PROJECT = typer.Option(None, "--project", help="Project name or id (default: the workspace's"
                       " `project`, else the only project).")
AS_OF = typer.Option(None, "--as-of", help="What had happened: events before this instant "
                     "count. ISO 8601 (default: now; no offset means UTC).")
KNOWN_AT = typer.Option(None, "--known-at", help="What had been received: events that "
                        "arrived by this instant count (default: now; the --as-of value "
                        "reproduces the answer given then). docs/rules.md, Time.")
