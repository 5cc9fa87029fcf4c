"""Segment definitions stored in the database, every version kept.

    v = save(store, project_id, "power", "Uses reports a lot", rule)   # -> version number
    current(store, project_id)         # {name: Definition} of the live definitions
    history(store, project_id, "power")  # every version, oldest first
    delete(store, project_id, "power")   # a tombstone version; history stays

`segment_versions` is append-only, like every table: a change is a new row with the next
version number, a deletion a row with `deleted = true`. Saving a definition equal to the
live one writes nothing and returns its version, so re-applying a workspace file
(`segments/apply.py`) is a no-op.
A save is checked against the project's other live definitions before anything is
written: unknown `in_segment` references and reference cycles are refused, and so is
deleting a segment another live segment refers to.

Writes are atomic with their checks: `write` reads the latest versions and inserts under
the store's write lock, so in one process `create` of a name succeeds once and concurrent
saves number their versions in turn. Across processes (several `serve` on one
PostgreSQL database, or the CLI beside one) a unique index on (project_id, segment,
version) refuses the second writer of a version number: `create` answers
SegmentExistsError, other saves ConcurrentChangeError (retry; nothing was written).

Written through `core.Project` (save, delete, revert, rename) and `apply.py`; read by
`core.Project`, `refreshing.py`, `runtime/memberships.py` and `insights/basis.py`.
"""

from __future__ import annotations

import json
import logging
import re
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa
from pydantic import BaseModel

from segmently.errors import ConflictError, NotFoundError
from segmently.segments import rules as r
from segmently.segments.errors import RuleError, SegmentReferenceError
from segmently.segments.rules import Rule, parse_rule, rule_json
from segmently.store import Store, utcnow
from segmently.store.rows import arrow_schema
from segmently.store.store import schema_lock

VERSIONS = "segment_versions"
VERSIONS_SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "segment": dt.String(nullable=False),
    "version": dt.Int64(nullable=False),
    "definition": dt.string,  # JSON text: {"name", "description", "rule"}; null if deleted
    "created_at": dt.Timestamp(nullable=False),
    "deleted": dt.Boolean(nullable=False),
    # who wrote it: "apply" (a workspace file), "ui", "api" (the secret key), "cli"; null in
    # tables from before sources were kept. `segments/apply.py` calls a live version not
    # written by "apply" drift, and never overwrites it unless told to.
    "source": dt.string,
})
TABLES = {VERSIONS: VERSIONS_SCHEMA}
_ARROW = arrow_schema(VERSIONS_SCHEMA)
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]{0,127}$")
MAX_DESCRIPTION = 10_000
UNIQUE_INDEX = "segment_versions_version_key"
_UNIQUE_SQL = (f"CREATE UNIQUE INDEX IF NOT EXISTS {UNIQUE_INDEX} "
               f"ON {VERSIONS} (project_id, segment, version)")
_indexed: weakref.WeakSet[Store] = weakref.WeakSet()
_columned: weakref.WeakSet[Store] = weakref.WeakSet()
log = logging.getLogger(__name__)


class UnknownSegmentError(NotFoundError):
    """No live definition of that name in the project."""

    code = "unknown_segment"


class SegmentExistsError(ConflictError, ValueError):
    """`create` of a name that has a live definition."""

    code = "segment_exists"


class ConcurrentChangeError(ConflictError):
    """Another process stored a version of the segment between our read and our write."""

    code = "concurrent_change"


@dataclass(frozen=True)
class Definition:
    """One live segment definition."""

    name: str
    version: int
    description: str
    rule: Rule
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "description": self.description,
                "rule": rule_json(self.rule), "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Version:
    """One row of a segment's history; description and rule are None for a deletion."""

    version: int
    created_at: datetime
    deleted: bool
    description: str | None
    rule: dict[str, Any] | None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "created_at": self.created_at.isoformat(),
                "deleted": self.deleted, "description": self.description, "rule": self.rule,
                "source": self.source}


def ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)
    if store not in _columned:  # a table from an older Segmently lacks `source`
        store.ensure_columns(VERSIONS, VERSIONS_SCHEMA)
        _columned.add(store)


def _ensure_unique_key(store: Store) -> None:
    """The unique index that makes a version number one writer's (once per store). A
    database that already holds a duplicate (written before the index) keeps working
    without it: one process's write lock still orders its own saves."""
    if store in _indexed:
        return
    con = store.backends.get()
    with store.write_lock, schema_lock(con):  # two processes may create it at once
        try:
            if con.name == "postgres":
                with con.begin() as cursor:  # committed, cursor closed
                    cursor.execute(_UNIQUE_SQL)
            else:
                con.raw_sql(_UNIQUE_SQL)  # DuckDB hands back the connection: keep it open
        except Exception as exc:  # noqa: BLE001 - duplicates from before; see above
            log.warning("no unique index on %s (%s): versions are ordered per process",
                        VERSIONS, exc)
        _indexed.add(store)


def _unique_violation(exc: BaseException) -> bool:
    """A unique-key refusal, as DuckDB or PostgreSQL (psycopg) raise it."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in ("ConstraintException", "UniqueViolation") or \
                getattr(seen, "sqlstate", None) == "23505":
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise RuleError(f"name: {name!r} is not a valid segment name (1-128 characters: "
                        "letters, digits, '_', and after the first also space, '.', '-')")
    return name


# -- reading -----------------------------------------------------------------------------
def _rows(store: Store, project_id: str, name: str | None = None) -> list[dict[str, Any]]:
    ensure_tables(store)
    t = store.table(VERSIONS)
    t = t.filter(t.project_id == project_id)
    if name is not None:
        t = t.filter(t.segment == name)
    return t.order_by([t.segment, t.version]).to_pyarrow().to_pylist()


def _latest(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in rows:  # ordered by version: the last one wins
        out[row["segment"]] = row
    return out


def _definition(row: dict[str, Any]) -> Definition:
    data = json.loads(row["definition"])
    return Definition(row["segment"], int(row["version"]), data.get("description", ""),
                      parse_rule(data["rule"], f"{row['segment']}.rule"), row["created_at"])


@dataclass(frozen=True)
class Broken:
    """A live version that no longer validates: saved before a check it now fails (a
    regex no engine runs, a rule past a limit). It is listed with its error and skipped
    by evaluations, so it cannot stop the project's other segments; saving a new version
    mends it."""

    name: str
    version: int
    error: str


def _parsed(live: dict[str, dict[str, Any]]) -> dict[str, Definition]:
    return _split(live)[0]


def _live(store: Store, project_id: str) -> tuple[dict[str, Definition], dict[str, Broken]]:
    return _split(_latest(_rows(store, project_id)))


def _split(latest: dict[str, dict[str, Any]]) -> tuple[dict[str, Definition], dict[str, Broken]]:
    good: dict[str, Definition] = {}
    broken: dict[str, Broken] = {}
    for name, row in sorted(latest.items()):
        if row["deleted"]:
            continue
        try:
            good[name] = _definition(row)
        except RuleError as exc:
            broken[name] = Broken(name, int(row["version"]), str(exc))
    return good, broken


def current(store: Store, project_id: str) -> dict[str, Definition]:
    """The live definitions of the project (latest version of each, unless deleted) that
    validate; `broken` has the others."""
    return _live(store, project_id)[0]


def broken(store: Store, project_id: str) -> dict[str, Broken]:
    """The live definitions that no longer validate, with the reason."""
    return _live(store, project_id)[1]


def not_found(store: Store, project_id: str, name: str) -> Exception:
    """The error for a name that is not a live, valid segment: its validation error when
    its live version no longer validates (a 400 saying how to mend it), else unknown."""
    found = broken(store, project_id).get(name)
    if found is not None:
        return RuleError(f"segment {name!r} (version {found.version}) no longer validates: "
                         f"{found.error}; save a new version")
    known = ", ".join(sorted(current(store, project_id))) or "none"
    return UnknownSegmentError(f"no segment named {name!r}; known: {known}")


def get(store: Store, project_id: str, name: str) -> Definition:
    rows = _rows(store, project_id, name)
    if not rows or rows[-1]["deleted"]:
        raise UnknownSegmentError(f"no segment named {name!r}")
    return _definition(rows[-1])


def _version(row: dict[str, Any]) -> Version:
    data = json.loads(row["definition"]) if row["definition"] else None
    return Version(int(row["version"]), row["created_at"], bool(row["deleted"]),
                   data["description"] if data else None, data["rule"] if data else None,
                   row.get("source"))


def history(store: Store, project_id: str, name: str) -> list[Version]:
    """Every version of a segment, oldest first (empty if it never existed)."""
    return [_version(row) for row in _rows(store, project_id, name)]


def latest(store: Store, project_id: str) -> dict[str, Version]:
    """The latest version of every segment the project ever had, deletions included (who
    wrote it and when: what `segments/apply.py` compares a workspace file with)."""
    return {name: _version(row) for name, row in _latest(_rows(store, project_id)).items()}


# -- checking references -------------------------------------------------------------------
def references(rule: Any) -> Iterator[str]:
    """Names of the segments a rule refers to, wherever in the tree (also inside conditions
    that nest rules)."""
    if isinstance(rule, (r.InSegment, r.NotInSegment)):
        yield rule.segment
    elif isinstance(rule, BaseModel):
        for name in type(rule).model_fields:
            yield from references(getattr(rule, name))
    elif isinstance(rule, (list, tuple)):
        for item in rule:
            yield from references(item)


def check_references(rules: Mapping[str, Rule], names: list[str]) -> None:
    """Refuse unknown references and cycles reachable from `names` (the segments being
    saved), with the messages evaluation would give."""
    done: set[str] = set()

    def visit(name: str, stack: list[str]) -> None:
        if name in stack:
            cycle = " -> ".join([*stack[stack.index(name):], name])
            raise SegmentReferenceError(f"segment reference cycle: {cycle}")
        if name in done:
            return
        for ref in references(rules[name]):
            if ref not in rules:
                raise SegmentReferenceError(
                    f"unknown segment {ref!r} (in segment {name!r}); known: "
                    f"{', '.join(sorted(rules)) or 'none'}")
            visit(ref, [*stack, name])
        done.add(name)

    for name in names:
        visit(name, [])


# -- writing -------------------------------------------------------------------------------
def _payload(name: str, description: str, rule: Rule) -> str:
    return json.dumps({"name": name, "description": description, "rule": rule_json(rule)})


def _same(stored: str | None, new: str) -> bool:
    return stored is not None and json.loads(stored) == json.loads(new)


def _prepare(name: str, description: str | None, rule: Rule | dict[str, Any]) -> tuple[str, Rule]:
    check_name(name)
    description = description or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise RuleError(f"description: must be text of at most {MAX_DESCRIPTION} characters")
    parsed = parse_rule(rule) if isinstance(rule, dict) else rule
    return description, parsed


def write(store: Store, project_id: str, changes: Mapping[str, tuple[str, Rule] | None],
           new_only: bool = False, source: str = "api",
           also: Mapping[str, pa.Table] | None = None) -> dict[str, int]:
    """Apply saves ((description, rule)) and deletions (None) atomically; returns the
    version each name now has (unchanged definitions keep theirs, nothing written). With
    `new_only`, a saved name that has a live definition is SegmentExistsError. `also`:
    rows of other tables written in the same transaction (apply's vocabulary version)."""
    ensure_tables(store)
    _ensure_unique_key(store)
    with store.write_lock:
        latest = _latest(_rows(store, project_id))
        live = {n: row for n, row in latest.items() if not row["deleted"]}
        if new_only:
            taken = sorted(n for n, c in changes.items() if c is not None and n in live)
            if taken:
                raise SegmentExistsError(f"a segment named {taken[0]!r} exists")
        rules = {n: d.rule for n, d in _parsed(live).items()}  # a broken one is mended
        rows: list[dict[str, Any]] = []
        versions: dict[str, int] = {}
        now = utcnow()
        for name, change in changes.items():
            previous = latest.get(name)
            number = int(previous["version"]) + 1 if previous else 1
            if change is None:
                if name not in live:
                    raise UnknownSegmentError(f"no segment named {name!r}")
                rules.pop(name)
                rows.append({"segment": name, "version": number, "definition": None,
                             "created_at": now, "deleted": True, "source": source})
                versions[name] = number
                continue
            description, rule = change
            payload = _payload(name, description, rule)
            rules[name] = rule
            if name in live and _same(live[name]["definition"], payload):
                versions[name] = int(live[name]["version"])
                continue
            rows.append({"segment": name, "version": number, "definition": payload,
                         "created_at": now, "deleted": False, "source": source})
            versions[name] = number
        saved = [n for n, c in changes.items() if c is not None]
        check_references(rules, saved)
        gone = [n for n, c in changes.items() if c is None]
        for other, rule in rules.items():
            used = sorted(set(references(rule)) & set(gone))
            if used:
                raise SegmentReferenceError(f"segment {used[0]!r} is referenced by segment "
                                            f"{other!r}; change or delete {other!r} first")
        if rows or also:
            table = pa.Table.from_pylist([{"project_id": project_id, **row} for row in rows],
                                         schema=_ARROW)
            try:
                store.insert_tables({VERSIONS: table, **(also or {})})
            except Exception as exc:
                if not _unique_violation(exc):
                    raise
                names = ", ".join(repr(row["segment"]) for row in rows)
                if new_only:
                    raise SegmentExistsError(f"a segment named {names} exists") from exc
                raise ConcurrentChangeError(f"segment {names} was changed by another writer "
                                            "meanwhile; nothing was saved, try again") from exc
    return versions


def save(store: Store, project_id: str, name: str, description: str | None,
         rule: Rule | dict[str, Any], source: str = "api") -> int:
    """Store a definition; returns its version (the live one if nothing changed)."""
    prepared = _prepare(name, description, rule)
    return write(store, project_id, {name: prepared}, source=source)[name]


def create(store: Store, project_id: str, name: str, description: str | None,
           rule: Rule | dict[str, Any], source: str = "api") -> int:
    """Store a definition under a name with no live definition (its first version, or the
    one after a deletion); SegmentExistsError if the name is live. Checked and written
    atomically: of concurrent creates of one name, exactly one succeeds."""
    prepared = _prepare(name, description, rule)
    return write(store, project_id, {name: prepared}, new_only=True, source=source)[name]


def delete(store: Store, project_id: str, name: str, source: str = "api") -> int:
    """Delete a live segment (a tombstone version); returns the tombstone's version."""
    return write(store, project_id, {name: None}, source=source)[name]
