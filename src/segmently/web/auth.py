"""Finding the project behind a request's key.

Write keys (public) may only add events; secret keys read data and manage the project.
Keys are looked up once and cached; a project's keys never change.
"""

from __future__ import annotations

import base64
import threading

from starlette.requests import Request

from segmently.collect.errors import AuthError
from segmently.store import Store
from segmently.store.projects import Project, project_for_secret_key, project_for_write_key


class KeyCache:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._write: dict[str, Project] = {}
        self._secret: dict[str, Project] = {}
        self._lock = threading.Lock()

    def by_write_key(self, key: str) -> Project | None:
        return self._lookup(self._write, key, project_for_write_key)

    def by_secret_key(self, key: str) -> Project | None:
        return self._lookup(self._secret, key, project_for_secret_key)

    def _lookup(self, cache: dict[str, Project], key: str, find) -> Project | None:  # type: ignore[no-untyped-def]
        if key in cache:
            return cache[key]
        project = find(self.store, key)
        if project is not None:
            with self._lock:
                cache[key] = project
        return project


def basic_user(request: Request) -> str | None:
    """The user name of HTTP Basic auth (Segment SDKs send the write key there)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def write_key_from_headers(request: Request) -> str | None:
    return basic_user(request) or bearer(request) or request.headers.get("x-write-key")


def require_write_project(keys: KeyCache, key: str | None) -> Project:
    if not key:
        raise AuthError("missing write key: send it as Basic auth user name, a Bearer token,"
                        " or the writeKey/api_key field of the body")
    project = keys.by_write_key(key)
    if project is None:
        raise AuthError("unknown write key")
    return project


def require_secret_project(keys: KeyCache, request: Request) -> Project:
    key = bearer(request) or request.headers.get("x-secret-key")
    if not key:
        raise AuthError("missing secret key: send 'Authorization: Bearer sk_...'")
    project = keys.by_secret_key(key)
    if project is None:
        raise AuthError("unknown secret key")
    return project
