"""Core operations behind CLI commands, callable locally or inside the running server.

Each takes the Store plus JSON-able arguments and returns a JSON-able result, so the CLI
can run it in-process or ship it to `segmently serve` (see control.py) unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from segmently.errors import SegmentlyError
from segmently.profile import stored
from segmently.segments import service
from segmently.segments.rules import rule_json
from segmently.segments.workspace import Workspace, parse_workspace
from segmently.store import Store, schema
from segmently.store.passwords import set_password
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
def projects_password(store: Store, name: str, password: str) -> dict[str, str]:
    """Set the UI password of a project (by name or id)."""
    found = [p for p in list_projects(store) if name in (p.name, p.project_id)]
    if not found:
        raise ValueError(f"no project named {name!r}")
    set_password(store, found[0].project_id, password)
    return {"project": found[0].name, "password": "set: sign in to the UI with the project"
            " name and this password"}


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
    out: list[dict[str, Any]] = []
    for name in (schema.EVENTS, schema.TRAITS, schema.IDENTITIES, schema.ACCOUNT_LINKS):
        t = store.table(name)
        counts = t.group_by("project_id").aggregate(rows=t.count()).to_pyarrow().to_pylist()
        out.extend({"table": name, **row} for row in counts)
    return out


# -- segments: the CLI sends the workspace file's text, so the server parses the same file --
class CommandError(SegmentlyError, ValueError):
    """A named thing (project, segment, user) was not found; shown as is."""

    code = "invalid_command"


def _segments(fn: Command) -> Command:
    """Register a segment command: (store, workspace text, source, project, ...) ->
    fn(store, project id, Workspace, ...); lookups that fail become a plain message."""
    @functools.wraps(fn)
    def run(store: Store, workspace: str, source: str = "segmently.yaml",
            project: str | None = None, **args: Any) -> Any:
        ws = parse_workspace(workspace, source)
        try:
            return fn(store, service.project_id(store, project, ws), ws, **args)
        except LookupError as exc:
            raise CommandError(str(exc.args[0] if exc.args else exc)) from exc

    return command(run)


@_segments
def segments_list(store: Store, pid: str, ws: Workspace) -> list[dict[str, Any]]:
    return service.listing(store, pid, ws)


@_segments
def segments_show(store: Store, pid: str, ws: Workspace, name: str) -> dict[str, Any]:
    service.check_segment(ws, name)
    seg = ws.segment(name)
    history = service.size_history(store, pid, name).to_pyarrow().to_pylist()
    return {"name": name, "description": seg.description,
            "version": service.versions(store, pid, ws)[name],
            "rule": rule_json(ws.rules()[name]),
            "snapshots": [{k: service.plain(v) for k, v in row.items() if k != "segment"}
                          for row in history]}


@_segments
def segments_eval(store: Store, pid: str, ws: Workspace, as_of: str | None = None,
                  known_at: str | None = None) -> dict[str, Any]:
    at, known = service.pair(as_of, known_at)
    sizes = service.evaluation(store, pid, ws, at, known_at=known).sizes() \
        if ws.segments else {}
    return {"as_of": at.isoformat(), "known_at": known.isoformat(),
            "segments": [{"name": n, "size": size} for n, size in sizes.items()]}


@_segments
def segments_members(store: Store, pid: str, ws: Workspace, name: str,
                     as_of: str | None = None, known_at: str | None = None) -> dict[str, Any]:
    at, known = service.pair(as_of, known_at)
    ids = service.members(store, pid, ws, name, at, known)["user_id"].to_pylist()
    return {"segment": name, "as_of": at.isoformat(), "known_at": known.isoformat(),
            "size": len(ids), "user_ids": ids}


@_segments
def segments_explain(store: Store, pid: str, ws: Workspace, name: str, user_id: str,
                     as_of: str | None = None, known_at: str | None = None) -> dict[str, Any]:
    at, known = service.pair(as_of, known_at)
    why = service.explain_member(store, pid, ws, name, user_id, at, known)
    return {"segment": name, "user_id": user_id, "as_of": at.isoformat(),
            "known_at": known.isoformat(),
            "member": why.truth, "explanation": why.to_dict(), "text": why.text()}


@_segments
def segments_refresh(store: Store, pid: str, ws: Workspace, as_of: str | None = None,
                     backfill_from: str | None = None, every: str = "1d",
                     profiles: bool = True, known_at: str | None = None
                     ) -> list[dict[str, Any]]:
    known = service.pair(as_of, known_at)[1]
    if backfill_from is not None:
        done = service.backfill(store, pid, ws, service.instant(backfill_from),
                                service.instant(as_of), service.period(every), known)
    else:
        done = service.refresh(store, pid, ws, service.instant(as_of), known)
    if profiles and done:  # the UI's member tables and insights read it at once
        stored.record(store, pid, ws, max(r.as_of for r in done))
    return [service.result_json(r) for r in done]


@_segments
def user_profile(store: Store, pid: str, ws: Workspace, user_id: str,
                 as_of: str | None = None, known_at: str | None = None) -> dict[str, Any]:
    at, known = service.pair(as_of, known_at)
    out = service.profile(store, pid, ws, user_id, at, known)
    out["known_at"] = known.isoformat()
    segments = service.user_segments(store, pid, ws, user_id, at, known)
    out["segments"] = [{"segment": name, "explanation": why.to_dict(), "text": why.text()}
                       for name, why in segments.items()]
    return out
