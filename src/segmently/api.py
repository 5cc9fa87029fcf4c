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
from segmently.store import Store, schema
from segmently.store import views
from segmently.store.projects import Project, get_project_by_name, list_projects


class Segmently:
    """A Segmently database. Tables are Ibis expressions; `df`/`arrow` materialize them."""

    def __init__(self, url: str | None = None, *, read_only: bool = False) -> None:
        self.store = Store(url, read_only=read_only)

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

    def events(self, project: str | None = None, as_of: datetime | None = None) -> ir.Table:
        return views.resolved_events(self.store, self.project_id(project), as_of)

    def users(self, project: str | None = None, as_of: datetime | None = None) -> ir.Table:
        return views.users(self.store, self.project_id(project), as_of)

    def traits(self, project: str | None = None, kind: str = "user",
               as_of: datetime | None = None) -> ir.Table:
        return views.latest_traits(self.store, self.project_id(project), kind, as_of)

    def table(self, name: str) -> ir.Table:
        if name not in schema.TABLES:
            raise ValueError(f"unknown table {name!r}; tables: {', '.join(schema.TABLES)}")
        return self.store.table(name)

    @staticmethod
    def df(expr: ir.Table) -> pd.DataFrame:
        return expr.to_pandas()

    @staticmethod
    def arrow(expr: ir.Table) -> pa.Table:
        return expr.to_pyarrow()


def connect(url: str | None = None, *, read_only: bool = False) -> Segmently:
    return Segmently(url, read_only=read_only)


__all__ = ["Segmently", "connect", "get_project_by_name"]
