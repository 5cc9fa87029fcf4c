"""What a project has actually seen: event names, property keys, trait names and values.

The segment builder offers these as autocomplete, so a person picks names that exist
instead of guessing spellings. Counts are one aggregation each; property keys are read
from a bounded sample of the newest events of one name (JSON keys are not portable
across engines, and a sample of recent events is what a person building a rule cares
about). Called by `web/ui_api.py` (`/api/catalog...`).
"""

from __future__ import annotations

from typing import Any

import orjson

from segmently.store import schema
from segmently.store.store import Store
from segmently.store.views import latest_traits

MAX_NAMES = 500
KEY_SAMPLE = 500


def event_names(store: Store, project_id: str, limit: int = MAX_NAMES) -> list[dict[str, Any]]:
    """[{name, count}], most frequent first."""
    e = store.table(schema.EVENTS)
    e = e.filter(e.project_id == project_id)
    counts = e.group_by(name=e.event).aggregate(count=e.count())
    rows = counts.order_by([counts["count"].desc(), counts.name]).limit(limit)
    return rows.to_pyarrow().to_pylist()


def property_keys(store: Store, project_id: str, event: str,
                  sample: int = KEY_SAMPLE) -> list[str]:
    """Top-level property keys of the newest `sample` events named `event`, sorted."""
    e = store.table(schema.EVENTS)
    e = e.filter(e.project_id == project_id, e.event == event)
    texts = e.order_by(e.timestamp.desc()).limit(sample).select("properties").to_pyarrow()
    keys: set[str] = set()
    for text in texts["properties"].to_pylist():
        if not text:
            continue
        value = orjson.loads(text)
        if isinstance(value, dict):
            keys.update(value)
    return sorted(keys)


def trait_names(store: Store, project_id: str, kind: str = "user",
                limit: int = MAX_NAMES) -> list[str]:
    """Distinct trait names set on users (or accounts), sorted."""
    t = store.table(schema.TRAITS)
    t = t.filter(t.project_id == project_id, t.kind == kind)
    names = t.select("trait").distinct().order_by("trait").limit(limit)
    return names.to_pyarrow()["trait"].to_pylist()


def trait_values(store: Store, project_id: str, trait: str,
                 limit: int = MAX_NAMES) -> list[dict[str, Any]]:
    """[{value, users}]: the current values of a user trait, most common first (JSON
    decoded: "growth", 3, true)."""
    t = latest_traits(store, project_id, "user")
    t = t.filter(t.trait == trait, t.value.notnull())
    counts = t.group_by("value").aggregate(users=t.count())
    rows = counts.order_by([counts.users.desc(), counts.value]).limit(limit)
    return [{"value": orjson.loads(r["value"]), "users": int(r["users"])}
            for r in rows.to_pyarrow().to_pylist()]
