"""The Python API: `segmently.connect(url)` and a handle whose tables are Ibis tables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa

from segmently.collect import importer
from segmently.collect.importer import ImportReport
from segmently.profile.build import build_profiles
from segmently.segments import service
from segmently.segments.explain import Explanation
from segmently.segments.workspace import DEFAULT_FILE, Workspace, load_workspace
from segmently.store import Store, schema, views
from segmently.store.projects import Project, get_project_by_name, list_projects


class Segmently:
    """A Segmently database. Tables are Ibis expressions; `df`/`arrow` materialize them."""

    def __init__(self, url: str | None = None, *, read_only: bool = False,
                 workspace: Workspace | str | Path | None = None) -> None:
        self.store = Store(url, read_only=read_only)
        self._workspace = workspace

    @property
    def workspace(self) -> Workspace:
        """The workspace (features, scores, segments): given, or loaded once from the
        file named (default `segmently.yaml`), validated with errors naming the line."""
        if not isinstance(self._workspace, Workspace):
            self._workspace = load_workspace(self._workspace or DEFAULT_FILE)
        return self._workspace

    def use_workspace(self, workspace: Workspace | str | Path) -> Segmently:
        self._workspace = workspace
        return self

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Segmently:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def projects(self) -> list[Project]:
        return list_projects(self.store)

    def project_id(self, project: str | None = None) -> str:
        """Resolve a project name (or id); with one project, it is the default."""
        known = self.projects()
        if project is None:
            if len(known) != 1:
                raise ValueError(f"name a project; this database has {len(known)}")
            return known[0].project_id
        for p in known:
            if project in (p.name, p.project_id):
                return p.project_id
        raise ValueError(f"no project named {project!r}")

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

    # -- segments (the verbs of `segmently segments ...`) ----------------------------------
    def _pid(self, project: str | None) -> str:
        return service.project_id(self.store, project, self.workspace)

    def evaluate(self, as_of: datetime | str | None = None, project: str | None = None,
                 segments: list[str] | None = None,
                 known_at: datetime | str | None = None) -> pd.DataFrame:
        """user_id and one boolean column per segment (all, or `segments`), at as_of as
        known at known_at (each default now; docs/rules.md, Time)."""
        at, known = service.pair(as_of, known_at)
        ev = service.evaluation(self.store, self._pid(project), self.workspace, at,
                                only=segments, known_at=known)
        return service.wide(ev).to_pandas()

    def members(self, segment: str, as_of: datetime | str | None = None,
                project: str | None = None,
                known_at: datetime | str | None = None) -> pd.DataFrame:
        """The user_id of the segment's members at as_of (as known at known_at), sorted."""
        at, known = service.pair(as_of, known_at)
        return service.members(self.store, self._pid(project), self.workspace, segment,
                               at, known).to_pandas()

    def explain(self, segment: str, user_id: str, as_of: datetime | str | None = None,
                project: str | None = None,
                known_at: datetime | str | None = None) -> pd.DataFrame:
        """The rule tree, one row per node in pre-order: depth, kind, truth, sentence,
        observed values (the root row says whether the user is in)."""
        at, known = service.pair(as_of, known_at)
        why = service.explain_member(self.store, self._pid(project), self.workspace, segment,
                                     user_id, at, known)
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
        at, known = service.pair(as_of, known_at)
        users = build_profiles(self.store, self._pid(project), self.workspace, at,
                               known_at=known).users
        if user_id is not None:
            users = users.filter(users.user_id == user_id)
        return users.order_by("user_id").to_pandas()

    def refresh(self, as_of: datetime | str | None = None, project: str | None = None,
                backfill_from: datetime | str | None = None,
                every: str = "1d", known_at: datetime | str | None = None) -> pd.DataFrame:
        """Store a snapshot (and transitions) of every segment at as_of, or at each step
        from backfill_from up to as_of, as known at known_at (default now); one row per
        segment and instant."""
        pid, ws = self._pid(project), self.workspace
        at, known = service.pair(as_of, known_at)
        if backfill_from is not None:
            done = service.backfill(self.store, pid, ws, service.instant(backfill_from),
                                    at, service.period(every), known)
        else:
            done = service.refresh(self.store, pid, ws, at, known)
        columns = ["segment", "as_of", "size", "entered", "exited", "skipped", "error"]
        return pd.DataFrame([{c: getattr(r, c) for c in columns} for r in done],
                            columns=columns)

    def segment_sizes_over_time(self, segment: str | None = None,
                                project: str | None = None) -> pd.DataFrame:
        """segment, as_of, size, version, computed_at, data_through of every snapshot."""
        return service.size_history(self.store, self._pid(project), segment).to_pandas()

    @staticmethod
    def df(expr: ir.Table) -> pd.DataFrame:
        return expr.to_pandas()

    @staticmethod
    def arrow(expr: ir.Table) -> pa.Table:
        return expr.to_pyarrow()


def connect(url: str | None = None, *, read_only: bool = False,
            workspace: Workspace | str | Path | None = None) -> Segmently:
    return Segmently(url, read_only=read_only, workspace=workspace)


__all__ = ["Segmently", "connect", "get_project_by_name"]
