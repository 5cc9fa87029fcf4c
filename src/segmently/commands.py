"""Core operations behind CLI commands, callable locally or inside the running server.

Each takes the Store plus JSON-able arguments and returns a JSON-able result, so the CLI
can run it in-process or ship it to `segmently serve` (see control.py) unchanged. Called by
`cli/context.py` `run` and, in the server, by `web/internal_routes.py`; each translates to
the application core (`core.Project`) or, for projects and stats, `store/`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segmently.core.instants import instant, pair, period
from segmently.core.project import Project, plain, result_json
from segmently.segments.apply import version_diffs
from segmently.segments.rules import rule_json
from segmently.segments.workspace import parse_workspace
from segmently.settings import load as load_settings
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
    p = _project(store, name)
    set_password(store, p.id, password)
    return {"project": name, "password": "set: sign in to the UI with the project"
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


# -- segments: definitions from the database, the workspace file only through apply ----
def _project(store: Store, project: str | None) -> Project:
    return Project.open(store, project)


@command
def apply(store: Store, workspace: str, source: str = "segmently.yaml",
          project: str | None = None, prune: bool = False, force: bool = False,
          dry_run: bool = False) -> dict[str, Any]:
    """The workspace file's text applied to its project (`segments/apply.py`); parsed
    here, where it runs, so the server validates what it writes."""
    ws = parse_workspace(workspace, source)
    p = _project(store, project or ws.project)
    return p.apply(ws, prune=prune, force=force, dry_run=dry_run).to_json()


@command
def export(store: Store, project: str | None = None) -> str:
    return _project(store, project).export()


@command
def segments_list(store: Store, project: str | None = None) -> list[dict[str, Any]]:
    return _project(store, project).summaries()


@command
def segments_show(store: Store, name: str, project: str | None = None) -> dict[str, Any]:
    p = _project(store, project)
    d = p.definition(name)
    history = p.size_history(name).to_pyarrow().to_pylist()
    return {"name": name, "description": d.description, "version": d.version,
            "rule": rule_json(d.rule),
            "snapshots": [{k: plain(v) for k, v in row.items() if k != "segment"}
                          for row in history]}


@command
def segments_history(store: Store, name: str, project: str | None = None
                     ) -> list[dict[str, Any]]:
    """Every version, oldest first, each with its diff from the one before."""
    return version_diffs(_project(store, project).history(name))


@command
def segments_revert(store: Store, name: str, version: int, project: str | None = None
                    ) -> dict[str, Any]:
    return _project(store, project).revert(name, version, source="cli").to_json()


@command
def segments_rename(store: Store, name: str, new_name: str, project: str | None = None
                    ) -> dict[str, Any]:
    return _project(store, project).rename(name, new_name, source="cli").to_json()


@command
def segments_delete(store: Store, name: str, project: str | None = None) -> dict[str, Any]:
    version = _project(store, project).delete(name, source="cli")
    return {"name": name, "deleted": True, "version": version}


@command
def segments_eval(store: Store, as_of: str | None = None, known_at: str | None = None,
                  project: str | None = None) -> dict[str, Any]:
    p = _project(store, project)
    at, known = pair(as_of, known_at)
    sizes = p.evaluation(at, known).sizes() if p.definitions() else {}
    return {"as_of": at.isoformat(), "known_at": known.isoformat(),
            "segments": [{"name": n, "size": size} for n, size in sizes.items()]}


@command
def segments_members(store: Store, name: str, as_of: str | None = None,
                     known_at: str | None = None, project: str | None = None
                     ) -> dict[str, Any]:
    at, known = pair(as_of, known_at)
    ids = _project(store, project).evaluated_members(name, at, known)["user_id"].to_pylist()
    return {"segment": name, "as_of": at.isoformat(), "known_at": known.isoformat(),
            "size": len(ids), "user_ids": ids}


@command
def segments_explain(store: Store, name: str, user_id: str, as_of: str | None = None,
                     known_at: str | None = None, project: str | None = None
                     ) -> dict[str, Any]:
    at, known = pair(as_of, known_at)
    why = _project(store, project).explain(name, user_id, at, known)
    return {"segment": name, "user_id": user_id, "as_of": at.isoformat(),
            "known_at": known.isoformat(),
            "member": why.truth, "explanation": why.to_dict(), "text": why.text()}


@command
def segments_refresh(store: Store, as_of: str | None = None,
                     backfill_from: str | None = None, every: str = "1d",
                     profiles: bool = True, known_at: str | None = None,
                     project: str | None = None) -> list[dict[str, Any]]:
    p = _project(store, project)
    known = pair(as_of, known_at)[1]
    if backfill_from is not None:
        done = p.backfill(backfill_from, as_of, period(every), known, profiles=profiles)
    else:
        done = p.refresh(instant(as_of), known, profiles=profiles)
    return [result_json(r) for r in done]


@command
def user_profile(store: Store, user_id: str, as_of: str | None = None,
                 known_at: str | None = None, project: str | None = None) -> dict[str, Any]:
    p = _project(store, project)
    at, known = pair(as_of, known_at)
    out = p.profile(user_id, at, known)
    out["segments"] = [{"segment": name, "explanation": why.to_dict(), "text": why.text()}
                       for name, why in p.user_segments(user_id, at, known).items()]
    return out


# -- act: destinations and deliveries ----------------------------------------------------
@command
def destinations_list(store: Store, project: str | None = None) -> list[dict[str, Any]]:
    return [d.public() for d in _project(store, project).destinations().values()]


@command
def destinations_save(store: Store, definition: dict[str, Any], project: str | None = None,
                      create: bool = False) -> dict[str, Any]:
    """Store a destination; at creation its signing secret is returned whole (once)."""
    saved = _project(store, project).save_destination(definition, "cli", create=create)
    return saved.model_dump(mode="json") if create else saved.public()


@command
def destinations_delete(store: Store, name: str, project: str | None = None
                        ) -> dict[str, Any]:
    version = _project(store, project).delete_destination(name, "cli")
    return {"name": name, "deleted": True, "version": version}


@command
def destinations_show(store: Store, name: str, project: str | None = None,
                      limit: int = 50) -> dict[str, Any]:
    p = _project(store, project)
    return {**p.destination(name).public(), "deliveries": p.deliveries(name, limit)}


@command
def destinations_test(store: Store, name: str, project: str | None = None) -> dict[str, Any]:
    return _project(store, project).test_destination(name, load_settings())


@command
def deliver(store: Store, project: str | None = None) -> dict[str, Any]:
    """One delivery pass (all projects when none is named)."""
    from segmently.act.delivery import deliver_due

    pid = _project(store, project).id if project else None
    return deliver_due(store, load_settings(), pid).to_json()


@command
def deliveries_replay(store: Store, message_ids: list[str] | None = None,
                      destination: str | None = None, since: str | None = None,
                      until: str | None = None, project: str | None = None
                      ) -> dict[str, Any]:
    count = _project(store, project).replay(message_ids, destination, since, until)
    return {"queued": count}


# -- act: in-app campaigns ---------------------------------------------------------------
@command
def campaigns_list(store: Store, project: str | None = None) -> list[dict[str, Any]]:
    return _project(store, project).campaign_summaries()


@command
def campaigns_save(store: Store, definition: dict[str, Any], project: str | None = None,
                   create: bool = False) -> dict[str, Any]:
    return _project(store, project).save_campaign(definition, "cli", create=create).to_json()


@command
def campaigns_show(store: Store, name: str, project: str | None = None) -> dict[str, Any]:
    p = _project(store, project)
    return {**p.campaign(name).to_json(), "versions": p.campaign_history(name)}


@command
def campaigns_delete(store: Store, name: str, project: str | None = None) -> dict[str, Any]:
    version = _project(store, project).delete_campaign(name, "cli")
    return {"name": name, "deleted": True, "version": version}


@command
def in_app_show(store: Store, project: str | None = None, reveal: bool = False
                ) -> dict[str, Any]:
    found = _project(store, project).in_app_settings()
    return found.model_dump(mode="json") if reveal else found.public()


@command
def in_app_set(store: Store, changes: dict[str, Any], project: str | None = None
               ) -> dict[str, Any]:
    return _project(store, project).set_in_app_settings(changes, "cli").model_dump(mode="json")


@command
def in_app_hash(store: Store, user_id: str, project: str | None = None) -> dict[str, Any]:
    """The userHash of one user (what the host's server computes), for trying it out."""
    from segmently.act.identity import IdentityError, user_hash

    found = _project(store, project).in_app_settings()
    if not found.verification_secret:
        raise IdentityError("identity verification is off: `segmently in-app set "
                            "--identity-verification` turns it on", status=400)
    return {"user_id": user_id, "user_hash": user_hash(found.verification_secret, user_id)}


# -- insights ----------------------------------------------------------------------------
@command
def insights_list(store: Store) -> list[dict[str, Any]]:
    from segmently.insights import registry

    return [{"name": a.name, "summary": a.summary,
             "params": ", ".join(a.params.model_fields)} for a in registry.load_all().values()]


@command
def insight(store: Store, name: str, params: dict[str, Any] | None = None,
            project: str | None = None) -> dict[str, Any]:
    return _project(store, project).insight(name, params or {})
