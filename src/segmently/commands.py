"""Core operations behind CLI commands, callable locally or inside the running server.

Each takes the Store plus JSON-able arguments and returns a JSON-able result, so the CLI
can run it in-process or ship it to `segmently serve` (see control.py) unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segmently.store import Store, schema
from segmently.store.projects import create_project, list_projects

Command = Callable[..., Any]
REGISTRY: dict[str, Command] = {}


def command(fn: Command) -> Command:
    REGISTRY[fn.__name__] = fn
    return fn


@command
def projects_create(store: Store, name: str) -> dict[str, str]:
    new = create_project(store, name)
    return {
        "project_id": new.project.project_id,
        "name": new.project.name,
        "write_key": new.project.write_key,
        "secret_key": new.secret_key,
    }


@command
def projects_list(store: Store) -> list[dict[str, str]]:
    return [
        {"project_id": p.project_id, "name": p.name, "write_key": p.write_key,
         "created_at": p.created_at.isoformat()}
        for p in list_projects(store)
    ]


@command
def stats(store: Store) -> list[dict[str, Any]]:
    """Row counts per project and table."""
    out = []
    for name in (schema.EVENTS, schema.TRAITS, schema.IDENTITIES, schema.ACCOUNT_LINKS):
        t = store.table(name)
        counts = t.group_by("project_id").aggregate(rows=t.count()).to_pyarrow().to_pylist()
        out.extend({"table": name, **row} for row in counts)
    return out
