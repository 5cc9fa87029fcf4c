"""Segment operations over a Store, shared by the CLI, the HTTP API and the Python API.

Pure functions: a Store, a project id, a parsed `Workspace` (or the rules it declares) and
an instant in, plain data / Arrow / Ibis out. Nothing here prints, parses arguments or
knows about HTTP; `commands.py` wraps these into JSON-able calls the CLI can ship to the
server that holds the DuckDB file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from segmently.errors import NotFoundError
from segmently.profile.build import build_profiles
from segmently.segments import definitions, refreshing, snapshots
from segmently.segments.evaluate import Evaluation, evaluate
from segmently.segments.explain import Explanation, explain
from segmently.segments.rules import rule_json
from segmently.segments.snapshots import RefreshResult
from segmently.segments.windows import instants as instants_of
from segmently.segments.windows import to_utc
from segmently.segments.workspace import Workspace
from segmently.store import Store, utcnow
from segmently.store.projects import list_projects

MAX_BACKFILL_STEPS = 10_000


class UnknownNameError(NotFoundError):
    """A project, segment or user the caller named does not exist."""


def instant(value: str | datetime | None) -> datetime:
    """An evaluation instant: ISO 8601 text (offset or Z; none means UTC), or now."""
    if value is None:
        return utcnow()
    if isinstance(value, datetime):
        return to_utc(value)
    try:
        return to_utc(datetime.fromisoformat(value))
    except ValueError:
        raise ValueError(f"as_of: {value!r} is not an ISO 8601 instant "
                         "(2026-03-01 or 2026-03-01T12:00:00Z)") from None


def pair(as_of: str | datetime | None, known_at: str | datetime | None
         ) -> tuple[datetime, datetime]:
    """The two instants of an evaluation (docs/rules.md, Time), each defaulting to the
    same reading of now."""
    at = instant(as_of) if as_of is not None else None
    known = instant(known_at) if known_at is not None else None
    return instants_of(at, known)


def period(text: str) -> timedelta:
    """`1d`, `12h`, `30m`, `1w` -> a timedelta (backfill step)."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise ValueError(f"every: {text!r} is not a period like 1d, 12h, 30m or 1w")
    return timedelta(**{units[unit]: int(number)})


def project_id(store: Store, project: str | None, workspace: Workspace | None = None) -> str:
    """A project name or id; else the workspace's `project`; else the only project."""
    wanted = project or (workspace.project if workspace else None)
    known = list_projects(store)
    if wanted is None:
        if len(known) != 1:
            names = ", ".join(p.name for p in known) or "none"
            raise ValueError(f"name a project with --project; this database has {len(known)}"
                             f" ({names})")
        return known[0].project_id
    for p in known:
        if wanted in (p.name, p.project_id):
            return p.project_id
    raise UnknownNameError(f"no project named {wanted!r}")


def check_segment(workspace: Workspace, name: str) -> None:
    if name not in {s.name for s in workspace.segments}:
        known = ", ".join(s.name for s in workspace.segments) or "none"
        raise UnknownNameError(f"no segment named {name!r}; known: {known}")


def versions(store: Store, project: str, workspace: Workspace) -> dict[str, int | None]:
    """The stored definition version (segments/definitions.py) of each workspace segment
    whose live stored definition is the same as the file's; None when the database holds
    none or a different one (the next `refresh` stores the file's as a new version)."""
    live = definitions.current(store, project)
    rules = workspace.rules()
    out: dict[str, int | None] = {}
    for s in workspace.segments:
        d = live.get(s.name)
        same = d is not None and d.description == s.description and \
            rule_json(d.rule) == rule_json(rules[s.name])
        out[s.name] = d.version if same and d is not None else None
    return out


# -- evaluating --------------------------------------------------------------------------
def evaluation(store: Store, project: str, workspace: Workspace,
               as_of: str | datetime | None = None, only: list[str] | None = None,
               known_at: str | datetime | None = None) -> Evaluation:
    """Every segment (or `only` these) at as_of as known at known_at (each default now),
    in one pass over the events."""
    for name in only or []:
        check_segment(workspace, name)
    at, known = pair(as_of, known_at)
    return evaluate(store, project, workspace.rules(), at, only=only,
                    vocabulary=workspace, known_at=known)


def wide(ev: Evaluation) -> ir.Table:
    """user_id plus one boolean column per segment, named by the segment."""
    t = ev.table
    return t.select("user_id", **{name: t[col] for name, col in ev.columns.items()}) \
        .order_by("user_id")


def members(store: Store, project: str, workspace: Workspace, name: str,
            as_of: datetime | None = None, known_at: datetime | None = None) -> pa.Table:
    """The sorted user_id of one segment's members at as_of (as known at known_at)."""
    return evaluation(store, project, workspace, as_of, only=[name],
                      known_at=known_at).members(name).to_pyarrow()


def explain_member(store: Store, project: str, workspace: Workspace, name: str,
                   user_id: str, as_of: datetime | None = None,
                   known_at: datetime | None = None) -> Explanation:
    check_segment(workspace, name)
    rules = workspace.rules()
    try:
        return explain(store, project, rules[name], user_id, as_of, rules,
                       vocabulary=workspace, known_at=known_at)
    except LookupError as exc:
        raise UnknownNameError(str(exc)) from exc


# -- profiles ----------------------------------------------------------------------------
def plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def profile(store: Store, project: str, workspace: Workspace, user_id: str,
            as_of: datetime | None = None, known_at: datetime | None = None) -> dict[str, Any]:
    """One user's metrics (profile.build_profiles), features used and milestones reached."""
    as_of = instant(as_of)
    built = build_profiles(store, project, workspace, as_of, known_at=known_at)
    users = built.users
    rows = users.filter(users.user_id == user_id).to_pyarrow().to_pylist()
    if not rows:
        raise UnknownNameError(f"no user {user_id!r} in project {project!r} as of "
                               f"{as_of.isoformat(sep=' ')}")
    out = {"user_id": user_id, "as_of": as_of.isoformat(),
           "metrics": {k: plain(v) for k, v in rows[0].items() if k != "user_id"}}
    for name, table in (("features", built.features), ("milestones", built.milestones)):
        if table is not None:
            mine = table.filter(table.person_id == user_id).drop("person_id")
            out[name] = [{k: plain(v) for k, v in row.items()}
                         for row in mine.to_pyarrow().to_pylist()]
    return out


def user_segments(store: Store, project: str, workspace: Workspace, user_id: str,
                  as_of: datetime | None = None,
                  known_at: datetime | None = None) -> dict[str, Explanation]:
    """The segments the user is in at as_of (as known at known_at), each explained."""
    as_of = instant(as_of)
    if not workspace.segments:
        return {}
    ev = evaluation(store, project, workspace, as_of, known_at=known_at)
    t = ev.table
    row = t.filter(t.user_id == user_id).to_pyarrow().to_pylist()
    if not row:
        return {}
    inside = [name for name, col in ev.columns.items() if row[0][col]]
    return {name: explain_member(store, project, workspace, name, user_id, as_of, known_at)
            for name in inside}


# -- snapshots ---------------------------------------------------------------------------
def refresh(store: Store, project: str, workspace: Workspace,
            as_of: datetime | None = None,
            known_at: datetime | None = None) -> list[RefreshResult]:
    """Evaluate every segment once at as_of and store each one's snapshot and the
    transitions since its previous snapshot (idempotent for an instant already stored).

    The file's definitions are first saved as versions in the database (unchanged ones
    keep theirs), so each snapshot names the version it was computed with and the server's
    scheduled refresh and HTTP API see the same segments."""
    as_of = instant(as_of)
    if not workspace.segments:
        return []
    version = definitions.sync_workspace(store, project, workspace).versions
    return refreshing.refresh(store, project, workspace.rules(), version, as_of, workspace,
                              known_at=known_at)


def instants(start: datetime, end: datetime, every: timedelta) -> Iterator[datetime]:
    """start, start + every, ... up to and including end."""
    if end < start:
        raise ValueError(f"backfill_from: {start.isoformat()} is after {end.isoformat()}")
    steps = int((end - start) / every)
    if steps >= MAX_BACKFILL_STEPS:
        raise ValueError(f"backfill: {steps + 1} instants; at most {MAX_BACKFILL_STEPS} "
                         "(use a longer --every)")
    for i in range(steps + 1):
        yield start + i * every


def backfill(store: Store, project: str, workspace: Workspace, start: datetime,
             end: datetime | None = None, every: timedelta = timedelta(days=1),
             known_at: datetime | None = None) -> list[RefreshResult]:
    """Refresh at every instant from start to end (default now), oldest first, all as
    known at one instant (default now): imported history fills the past snapshots."""
    known = instant(known_at)
    out: list[RefreshResult] = []
    for at in instants(instant(start), instant(end), every):
        out.extend(refresh(store, project, workspace, at, known))
    return out


def result_json(result: RefreshResult) -> dict[str, Any]:
    return {k: plain(v) for k, v in asdict(result).items()}


def size_history(store: Store, project: str, segment: str | None = None) -> ir.Table:
    """segment, as_of, known_at, size, version, computed_at, data_through of every
    snapshot (known_at: what had been received when it was evaluated)."""
    snapshots.ensure_tables(store)
    t = snapshots.snapshots(store, project, segment)
    return t.select("segment", "as_of", known_at=t.known_at.coalesce(t.as_of), size="size",
                    version="version", computed_at="computed_at",
                    data_through="data_through").order_by(["segment", "as_of"])


def latest_snapshots(store: Store, project: str) -> dict[str, dict[str, Any]]:
    """The latest snapshot (by as_of, then computed_at) of each segment."""
    t = size_history(store, project)
    ranked = t.mutate(_r=ibis.row_number().over(
        group_by=t.segment, order_by=[t.as_of.desc(), t.computed_at.desc()]))
    rows = ranked.filter(ranked._r == 0).drop("_r").to_pyarrow().to_pylist()
    return {row["segment"]: row for row in rows}


def listing(store: Store, project: str, workspace: Workspace) -> list[dict[str, Any]]:
    """Each segment with its size and freshness from its latest snapshot (none before the
    first refresh)."""
    latest = latest_snapshots(store, project)
    version = versions(store, project, workspace)
    errors = refreshing.latest_errors(store, project)
    out = []
    for s in workspace.segments:
        snap = latest.get(s.name, {})
        out.append({"name": s.name, "description": s.description,
                    "version": version[s.name], "size": snap.get("size"),
                    "computed_at": plain(snap.get("computed_at")),
                    "as_of": plain(snap.get("as_of")),
                    "data_through": plain(snap.get("data_through")),
                    "error": errors[s.name]["message"] if s.name in errors else None})
    return out
