"""Versioned definitions kept in one table each (destinations, campaigns, the in-app
settings): every save appends the next version, a deletion is a version too, and the
latest version of each name is the live one. Segment definitions keep their own richer
table (`segments/definitions.py`: references, drift, broken rules).

    VERSIONS = Versioned("campaign_versions")
    VERSIONS.save(store, project_id, name, payload, source)   # -> version number
    VERSIONS.live(store, project_id)                          # {name: payload}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa

from segmently.store import Store, utcnow
from segmently.store.rows import arrow_schema

SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "name": dt.String(nullable=False),
    "version": dt.Int64(nullable=False),
    "definition": dt.string,  # the payload as JSON; null if deleted
    "created_at": dt.Timestamp(nullable=False),
    "deleted": dt.Boolean(nullable=False),
    "source": dt.string,
})
_ARROW = arrow_schema(SCHEMA)


@dataclass(frozen=True)
class Version:
    name: str
    version: int
    definition: dict[str, Any] | None  # None: a deletion
    created_at: datetime
    source: str | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "definition": self.definition,
                "created_at": self.created_at.isoformat(), "deleted": self.definition is None,
                "source": self.source}


@dataclass(frozen=True)
class Versioned:
    table: str

    @property
    def tables(self) -> dict[str, ibis.Schema]:
        return {self.table: SCHEMA}

    def ensure(self, store: Store) -> None:
        store.ensure_tables(self.tables)

    def _rows(self, store: Store, project_id: str, name: str | None = None
              ) -> list[dict[str, Any]]:
        self.ensure(store)
        t = store.table(self.table)
        t = t.filter(t.project_id == project_id)
        if name is not None:
            t = t.filter(t.name == name)
        return t.order_by(["name", "version"]).to_pyarrow().to_pylist()

    def latest(self, store: Store, project_id: str) -> dict[str, dict[str, Any]]:
        """name -> its last row (deleted or not)."""
        return {row["name"]: row for row in self._rows(store, project_id)}

    def live(self, store: Store, project_id: str) -> dict[str, dict[str, Any]]:
        """name -> payload of every name whose last version is not a deletion."""
        return {name: json.loads(row["definition"])
                for name, row in sorted(self.latest(store, project_id).items())
                if not row["deleted"]}

    def history(self, store: Store, project_id: str, name: str) -> list[Version]:
        return [Version(r["name"], int(r["version"]),
                        None if r["deleted"] else json.loads(r["definition"]),
                        r["created_at"], r["source"])
                for r in self._rows(store, project_id, name)]

    def save(self, store: Store, project_id: str, name: str, payload: dict[str, Any],
             source: str, create: bool = False, exists: Exception | None = None) -> int:
        """Append the next version (the live one, unchanged, writes nothing and keeps its
        number); with `create`, a live name raises `exists`."""
        with store.write_lock:
            previous = self.latest(store, project_id).get(name)
            live = previous is not None and not previous["deleted"]
            if create and live and exists is not None:
                raise exists
            if live and previous is not None and json.loads(previous["definition"]) == payload:
                return int(previous["version"])
            number = int(previous["version"]) + 1 if previous else 1
            self._insert(store, project_id, name, number, json.dumps(payload), source)
        return number

    def delete(self, store: Store, project_id: str, name: str, source: str,
               missing: Exception) -> int:
        with store.write_lock:
            previous = self.latest(store, project_id).get(name)
            if previous is None or previous["deleted"]:
                raise missing
            number = int(previous["version"]) + 1
            self._insert(store, project_id, name, number, None, source)
        return number

    def _insert(self, store: Store, project_id: str, name: str, number: int,
                definition: str | None, source: str) -> None:
        store.insert_table(self.table, pa.Table.from_pylist([{
            "project_id": project_id, "name": name, "version": number,
            "definition": definition, "created_at": utcnow(), "deleted": definition is None,
            "source": source}], schema=_ARROW))
