"""UI passwords: a person signs in to a project's UI with a password set from the CLI
(`segmently projects password NAME`) instead of pasting the secret key.

Only a salted scrypt hash is stored (stdlib hashlib, memory-hard), one append-only row
per change in `ui_passwords`; the latest row of a project is its password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import ibis
import ibis.expr.datatypes as dt
import pyarrow as pa

from segmently.store.projects import list_projects
from segmently.store.rows import arrow_schema
from segmently.store.store import Store, utcnow

PASSWORDS = "ui_passwords"
SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "salt": dt.String(nullable=False),
    "hash": dt.String(nullable=False),
    "set_at": dt.Timestamp(nullable=False),
})
MIN_LENGTH = 10
SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def _hash(password: str, salt: str) -> str:
    return hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **SCRYPT).hex()


def set_password(store: Store, project_id: str, password: str) -> None:
    """Store a new password for the project's UI (the previous one stops working)."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"password: at least {MIN_LENGTH} characters")
    store.ensure_tables({PASSWORDS: SCHEMA})
    salt = secrets.token_hex(16)
    row = {"project_id": [project_id], "salt": [salt], "hash": [_hash(password, salt)],
           "set_at": [utcnow()]}
    store.insert_tables({PASSWORDS: pa.table(row, schema=arrow_schema(SCHEMA))})


def check_password(store: Store, project_id: str, password: str) -> bool:
    """True when `password` is the project's current UI password."""
    store.ensure_tables({PASSWORDS: SCHEMA})
    t = store.table(PASSWORDS)
    t = t.filter(t.project_id == project_id).order_by(t.set_at.desc()).limit(1)
    rows = t.to_pyarrow().to_pylist()
    if not rows:
        return False
    return hmac.compare_digest(_hash(password, rows[0]["salt"]), rows[0]["hash"])


def project_for_password(store: Store, name: str, password: str) -> str | None:
    """The id of the project named `name` (or with that id) whose UI password this is."""
    for project in list_projects(store):
        if name in (project.name, project.project_id):
            return project.project_id if check_password(store, project.project_id,
                                                        password) else None
    return None
