"""Projects and their keys.

A project has a public write key (safe to ship in a browser or app: it can only add
events) and a secret key (reads data, manages the project). Only a SHA-256 of the secret
key is stored; it is shown once, when the project is created. Read by `web/auth.py` (a
request's key -> its project), `core.find_project_id` (the one lookup by name or id) and
`commands.py` (`segmently projects create|list`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import ibis
import pyarrow as pa

from segmently.errors import SegmentlyError
from segmently.store import schema
from segmently.store.rows import ARROW_SCHEMAS
from segmently.store.store import Store, utcnow

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


class ProjectError(SegmentlyError, ValueError):
    """A project that cannot be created or named so (a name taken, an invalid name)."""

    code = "invalid_project"


@dataclass(frozen=True, slots=True)
class Project:
    project_id: str
    name: str
    write_key: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NewProject:
    project: Project
    secret_key: str  # only ever available here


def hash_secret(secret_key: str) -> str:
    return hashlib.sha256(secret_key.encode()).hexdigest()


def _project_table(store: Store) -> ibis.Table:
    return store.table(schema.PROJECTS)


def _rows(expr: ibis.Table) -> list[Project]:
    df = expr.select("project_id", "name", "write_key", "created_at").to_pyarrow().to_pylist()
    return [Project(**row) for row in df]


def create_project(store: Store, name: str) -> NewProject:
    if not NAME_RE.match(name):
        raise ProjectError(
            "project name must be 1-64 characters: letters, digits, space, '_', '.', '-',"
            " starting with a letter or digit"
        )
    if get_project_by_name(store, name) is not None:
        raise ProjectError(f"a project named {name!r} already exists")
    project = Project(
        project_id="prj_" + secrets.token_hex(8),
        name=name,
        write_key="wk_" + secrets.token_urlsafe(24),
        created_at=utcnow(),
    )
    secret = "sk_" + secrets.token_urlsafe(32)
    row = {
        "project_id": [project.project_id],
        "name": [name],
        "write_key": [project.write_key],
        "secret_key_hash": [hash_secret(secret)],
        "created_at": [project.created_at],
    }
    store.insert_table(
        schema.PROJECTS, pa.Table.from_pydict(row, schema=ARROW_SCHEMAS[schema.PROJECTS])
    )
    return NewProject(project, secret)


def list_projects(store: Store) -> list[Project]:
    return _rows(_project_table(store).order_by("created_at"))


def get_project_by_name(store: Store, name: str) -> Project | None:
    t = _project_table(store)
    found = _rows(t.filter(t.name == name))
    return found[0] if found else None


def project_for_write_key(store: Store, write_key: str) -> Project | None:
    t = _project_table(store)
    found = _rows(t.filter(t.write_key == write_key))
    return found[0] if found else None


def project_for_secret_key(store: Store, secret_key: str) -> Project | None:
    t = _project_table(store)
    found = _rows(t.filter(t.secret_key_hash == hash_secret(secret_key)))
    return found[0] if found else None
