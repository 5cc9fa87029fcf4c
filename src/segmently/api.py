"""The Python API: `segmently.connect(url)` and a handle whose tables are Ibis tables.

Tables come from `store/views.py`; the segment verbs (apply, evaluate, members, explain,
refresh), the campaigns and the insights are `core.Project`'s over the definitions stored
in the database, their results turned into pandas frames (or, for an insight, its JSON
answer); `import_file` is `collect/importer.py` into this store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from segmently.collect import importer
from segmently.collect.importer import ImportReport
from segmently.core.instants import pair, period
from segmently.core.project import Project
from segmently.profile.build import build_profiles
from segmently.segments.apply import Plan
from segmently.segments.explain import Explanation
from segmently.segments.workspace import DEFAULT_FILE, Workspace, load_workspace
from segmently.store import Store, schema, views
from segmently.store.projects import Project as ProjectRecord
from segmently.store.projects import get_project_by_name, list_projects


class Segmently:
    """A Segmently database. Tables are Ibis expressions; `df`/`arrow` materialize them.
    The segment verbs are those of `core.Project` (the CLI's and the HTTP API's), over the
    definitions stored in the database; `apply` writes a workspace file's."""

    def __init__(self, url: str | None = None, *, read_only: bool = False) -> None:
        self.store = Store(url, read_only=read_only)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Segmently:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def projects(self) -> list[ProjectRecord]:
        return list_projects(self.store)

    def project(self, project: str | None = None) -> Project:
        """The application core of one project (by name or id; the only one if None)."""
        return Project.open(self.store, project)

    def project_id(self, project: str | None = None) -> str:
        return self.project(project).id

    def import_file(self, path: str | Path, project: str | None = None,
                    **options: Any) -> ImportReport:
        """Stream a JSONL/CSV/Parquet file into a project (see collect/importer.py);
        options are those of `ImportOptions` (format, mapping, strict, ...)."""
        pid = self.project_id(project)
        return importer.import_file(path, pid, importer.store_sink(self.store, pid),
                                    importer.ImportOptions(**options))

    def events(self, project: str | None = None, as_of: datetime | None = None,
               known_at: datetime | None = None) -> ir.Table:
        return views.resolved_events(self.store, self.project_id(project), as_of,
                                     known_at=known_at)

    def users(self, project: str | None = None, as_of: datetime | None = None,
              known_at: datetime | None = None) -> ir.Table:
        return views.users(self.store, self.project_id(project), as_of, known_at)

    def traits(self, project: str | None = None, kind: str = "user",
               as_of: datetime | None = None) -> ir.Table:
        return views.latest_traits(self.store, self.project_id(project), kind, as_of)

    def table(self, name: str) -> ir.Table:
        if name not in schema.TABLES:
            raise ValueError(f"unknown table {name!r}; tables: {', '.join(schema.TABLES)}")
        return self.store.table(name)

    # -- definitions ---------------------------------------------------------------------
    def apply(self, workspace: Workspace | str | Path = DEFAULT_FILE,
              project: str | None = None, prune: bool = False, force: bool = False,
              dry_run: bool = False) -> Plan:
        """Write a workspace (or the file at a path) to its project, as `segmently apply`:
        the plan says what was added, changed, removed, and what drifted."""
        ws = workspace if isinstance(workspace, Workspace) else load_workspace(workspace)
        return self.project(project or ws.project).apply(ws, prune=prune, force=force,
                                                         dry_run=dry_run)

    def export(self, project: str | None = None) -> str:
        """The stored definitions as workspace YAML."""
        return self.project(project).export()

    # -- segments (the verbs of `segmently segments ...`) ----------------------------------

    def evaluate(self, as_of: datetime | str | None = None, project: str | None = None,
                 segments: list[str] | None = None,
                 known_at: datetime | str | None = None) -> pd.DataFrame:
        """user_id and one boolean column per segment (all, or `segments`), at as_of as
        known at known_at (each default now; docs/rules.md, Time)."""
        ev = self.project(project).evaluation(as_of, known_at, only=segments)
        return Project.wide(ev).to_pandas()

    def members(self, segment: str, as_of: datetime | str | None = None,
                project: str | None = None,
                known_at: datetime | str | None = None) -> pd.DataFrame:
        """The user_id of the segment's members at as_of (as known at known_at), sorted."""
        return self.project(project).evaluated_members(segment, as_of, known_at).to_pandas()

    def explain(self, segment: str, user_id: str, as_of: datetime | str | None = None,
                project: str | None = None,
                known_at: datetime | str | None = None) -> pd.DataFrame:
        """The rule tree, one row per node in pre-order: depth, kind, truth, sentence,
        observed values (the root row says whether the user is in)."""
        why = self.project(project).explain(segment, user_id, as_of, known_at)
        rows: list[dict[str, Any]] = []

        def walk(node: Explanation, depth: int) -> None:
            rows.append({"depth": depth, "kind": node.kind, "truth": node.truth,
                         "sentence": node.sentence, "label": node.label,
                         "observed": node.observed})
            for child in node.children:
                walk(child, depth + 1)

        walk(why, 0)
        return pd.DataFrame(rows)

    def profile(self, user_id: str | None = None, as_of: datetime | str | None = None,
                project: str | None = None,
                known_at: datetime | str | None = None) -> pd.DataFrame:
        """Per-user metrics (profile.build_profiles): every user, or one row for user_id."""
        at, known = pair(as_of, known_at)
        p = self.project(project)
        users = build_profiles(self.store, p.id, p.vocabulary(), at, known_at=known).users
        if user_id is not None:
            users = users.filter(users.user_id == user_id)
        return users.order_by("user_id").to_pandas()

    def refresh(self, as_of: datetime | str | None = None, project: str | None = None,
                backfill_from: datetime | str | None = None,
                every: str = "1d", known_at: datetime | str | None = None) -> pd.DataFrame:
        """Store a snapshot (and transitions) of every segment at as_of, or at each step
        from backfill_from up to as_of, as known at known_at (default now); one row per
        segment and instant."""
        p = self.project(project)
        at, known = pair(as_of, known_at)
        if backfill_from is not None:
            done = p.backfill(backfill_from, at, period(every), known)
        else:
            done = p.refresh(at, known)
        columns = ["segment", "as_of", "size", "entered", "exited", "skipped", "error"]
        return pd.DataFrame([{c: getattr(r, c) for c in columns} for r in done],
                            columns=columns)

    def segment_sizes_over_time(self, segment: str | None = None,
                                project: str | None = None) -> pd.DataFrame:
        """segment, as_of, size, version, computed_at, data_through of every snapshot."""
        return self.project(project).size_history(segment).to_pandas()

    # -- in-app campaigns and insights ----------------------------------------------------
    def campaigns(self, project: str | None = None) -> pd.DataFrame:
        """Every campaign with its kind, audience, status, arms and reach (one row each)."""
        return pd.DataFrame(self.project(project).campaign_summaries())

    def save_campaign(self, definition: dict[str, Any], project: str | None = None
                      ) -> dict[str, Any]:
        """Store a campaign (docs/sdk.md, the campaign file) as its next version."""
        return self.project(project).save_campaign(definition, "api").to_json()

    def insight(self, name: str, project: str | None = None, **params: Any
                ) -> dict[str, Any]:
        """One analysis of insights/ (`segmently insights` lists them), as its JSON answer:
        `sg.insight("retention", period="week", segments="power_users,dormant")`."""
        return self.project(project).insight(name, params)

    @staticmethod
    def df(expr: ir.Table) -> pd.DataFrame:
        return expr.to_pandas()

    @staticmethod
    def arrow(expr: ir.Table) -> pa.Table:
        return expr.to_pyarrow()


def connect(url: str | None = None, *, read_only: bool = False) -> Segmently:
    return Segmently(url, read_only=read_only)


__all__ = ["Segmently", "connect", "get_project_by_name"]
