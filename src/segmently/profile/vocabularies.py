"""The product vocabulary (features, milestones, scores, sessions) stored in the database,
every version kept, like segment definitions (`segments/definitions.py`).

    save(store, project_id, vocabulary, source="apply")   # -> version (same: no write)
    current(store, project_id)     # the live StoredVocabulary, or None
    vocabulary(store, project_id)  # the live Vocabulary (the empty one before any apply)

The workspace file reaches it through `segmently apply` (`segments/apply.py`); the server,
the CLI and the Python API read it from here, so none of them parses YAML to evaluate.
One JSON document per version in `vocabulary_versions`, append-only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa

from segmently.profile.config import Vocabulary
from segmently.store import Store, utcnow
from segmently.store.rows import arrow_schema

VERSIONS = "vocabulary_versions"
VERSIONS_SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "version": dt.Int64(nullable=False),
    "definition": dt.String(nullable=False),  # Vocabulary as JSON
    "created_at": dt.Timestamp(nullable=False),
    "source": dt.string,  # who wrote it: "apply" (a workspace file), or the writer
})
TABLES = {VERSIONS: VERSIONS_SCHEMA}
_ARROW = arrow_schema(VERSIONS_SCHEMA)


@dataclass(frozen=True)
class StoredVocabulary:
    vocabulary: Vocabulary
    version: int
    created_at: datetime
    source: str | None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "created_at": self.created_at.isoformat(),
                "source": self.source, "vocabulary": self.vocabulary.model_dump(mode="json")}


def ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)


def _rows(store: Store, project_id: str) -> list[dict[str, Any]]:
    ensure_tables(store)
    t = store.table(VERSIONS)
    return t.filter(t.project_id == project_id).order_by("version").to_pyarrow().to_pylist()


def _stored(row: dict[str, Any]) -> StoredVocabulary:
    return StoredVocabulary(Vocabulary.model_validate(json.loads(row["definition"])),
                            int(row["version"]), row["created_at"], row["source"])


def history(store: Store, project_id: str) -> list[StoredVocabulary]:
    """Every version, oldest first."""
    return [_stored(row) for row in _rows(store, project_id)]


def current(store: Store, project_id: str) -> StoredVocabulary | None:
    rows = _rows(store, project_id)
    return _stored(rows[-1]) if rows else None


def vocabulary(store: Store, project_id: str) -> Vocabulary:
    """The live vocabulary; before any is stored, the empty one (activity metrics only)."""
    found = current(store, project_id)
    return found.vocabulary if found else Vocabulary()


def as_vocabulary(value: Vocabulary) -> Vocabulary:
    """Only the vocabulary's fields of a Workspace (which extends Vocabulary)."""
    return Vocabulary.model_validate(value.model_dump(include=set(Vocabulary.model_fields)))


def pending(store: Store, project_id: str, value: Vocabulary, source: str = "api"
            ) -> tuple[int, dict[str, pa.Table]]:
    """(the version the vocabulary will have, the rows that store it: none if it equals the
    live one). Call under the store's write lock and insert the rows in the same
    transaction (`segments/apply.py` writes them with the segments')."""
    payload = as_vocabulary(value).model_dump(mode="json")
    found = current(store, project_id)
    if found is not None and found.vocabulary.model_dump(mode="json") == payload:
        return found.version, {}
    number = found.version + 1 if found else 1
    row = {"project_id": project_id, "version": number, "definition": json.dumps(payload),
           "created_at": utcnow(), "source": source}
    return number, {VERSIONS: pa.Table.from_pylist([row], schema=_ARROW)}


def save(store: Store, project_id: str, value: Vocabulary, source: str = "api") -> int:
    """Store the vocabulary as a new version unless it equals the live one; returns the
    live version number."""
    with store.write_lock:
        number, rows = pending(store, project_id, value, source)
        if rows:
            store.insert_tables(rows)
    return number
