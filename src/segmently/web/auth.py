"""Finding the project behind a request's key.

Write keys (public) may only add events; secret keys read data and manage the project.
Known keys are cached for good (a project's keys never change). Unknown keys are
remembered for `NEGATIVE_TTL` seconds (at most `MAX_UNKNOWN` of them, oldest forgotten
first), so a client repeating a bad key costs the database one lookup a minute. That never
hides a new project: keys are random and generated when the project is created (by
this server or another process, such as the CLI on PostgreSQL), so no client can have
sent one before. Only a project whose keys existed before (a projects table restored
from a backup) waits out the minute. A lookup that must read the
database runs in a worker thread, at most `MISS_LOOKUPS` at a time: however many random
keys arrive, they queue on the event loop, holding no thread and no connection.

Routes authenticate before FastAPI reads their body: FastAPI resolves a route's body
parameter before its dependencies, so a dependency alone would let a request without a
key make the server read its whole body first. `authenticated_route` runs a check first.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from segmently.collect.errors import AuthError
from segmently.store import Store
from segmently.store.projects import Project, project_for_secret_key, project_for_write_key

NEGATIVE_TTL = 60.0
MAX_UNKNOWN = 10_000
MAX_KEY = 256  # ours are 35 and 46 characters: a longer key is unknown without a lookup
MISS_LOOKUPS = 2
Finder = Callable[[Store, str], "Project | None"]
T = TypeVar("T")


class UnknownKeys:
    """Keys (or session tokens) recently found to be unknown: a bounded set whose entries
    expire `ttl` seconds after they were added, the oldest dropped first when full."""

    def __init__(self, ttl: float = NEGATIVE_TTL, limit: int = MAX_UNKNOWN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.limit, self.clock = ttl, limit, clock
        self._expiry: OrderedDict[Any, float] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            expiry = self._expiry.get(key)
            if expiry is None:
                return False
            if expiry > self.clock():
                return True
            del self._expiry[key]
            return False

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, key: object) -> None:
        with self._lock:
            self._expiry[key] = self.clock() + self.ttl
            self._expiry.move_to_end(key)
            while len(self._expiry) > self.limit:
                self._expiry.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._expiry.clear()


class LookupGate:
    """At most `MISS_LOOKUPS` database lookups of unknown credentials at once: the others
    wait on the event loop, holding no thread (one semaphore per running loop)."""

    def __init__(self, size: int = MISS_LOOKUPS) -> None:
        self.size = size
        self._gate: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        if self._gate is None or self._gate[0] is not loop:
            self._gate = (loop, asyncio.Semaphore(self.size))
        async with self._gate[1]:
            return await asyncio.to_thread(fn, *args)


class KeyCache:
    def __init__(self, store: Store, ttl: float = NEGATIVE_TTL, max_unknown: int = MAX_UNKNOWN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._known: dict[tuple[str, str], Project] = {}
        self.unknown = UnknownKeys(ttl, max_unknown, clock)
        self.gate = LookupGate()
        self._lock = threading.Lock()
        self.lookups = 0  # database lookups made: what the negative cache saves

    # -- synchronous (worker threads) -------------------------------------------------------
    def by_write_key(self, key: str) -> Project | None:
        return self._lookup("write", key, project_for_write_key)

    def by_secret_key(self, key: str) -> Project | None:
        return self._lookup("secret", key, project_for_secret_key)

    # -- on the event loop: from memory, else a worker thread ---------------------------------
    async def write_project(self, key: str) -> Project | None:
        return await self._find("write", key, project_for_write_key)

    async def secret_project(self, key: str) -> Project | None:
        return await self._find("secret", key, project_for_secret_key)

    def _cached(self, kind: str, key: str) -> tuple[bool, Project | None]:
        """(answered from memory, project)."""
        if len(key) > MAX_KEY:
            return True, None
        found = self._known.get((kind, key))
        if found is not None:
            return True, found
        return (kind, key) in self.unknown, None

    def _lookup(self, kind: str, key: str, find: Finder) -> Project | None:
        hit, project = self._cached(kind, key)
        if hit:
            return project
        project = find(self.store, key)
        with self._lock:
            self.lookups += 1
            if project is not None:
                self._known[(kind, key)] = project
        if project is None:
            self.unknown.add((kind, key))
        return project

    async def _find(self, kind: str, key: str, find: Finder) -> Project | None:
        hit, project = self._cached(kind, key)
        if hit:
            return project
        return await self.gate.run(self._lookup, kind, key, find)


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


def secret_key_from_headers(request: Request) -> str | None:
    return bearer(request) or request.headers.get("x-secret-key")


MISSING_WRITE_KEY = ("missing write key: send it as Basic auth user name, a Bearer token, or"
                     " the writeKey/api_key field of the body")


async def require_write_project(keys: KeyCache, key: str | None) -> Project:
    if not key:
        raise AuthError(MISSING_WRITE_KEY)
    project = await keys.write_project(key)
    if project is None:
        raise AuthError("unknown write key")
    return project


def require_secret_project(keys: KeyCache, request: Request) -> Project:
    """Synchronous: for worker threads, or once `secret_project` has cached the key."""
    key = secret_key_from_headers(request)
    if not key:
        raise AuthError("missing secret key: send 'Authorization: Bearer sk_...'")
    project = keys.by_secret_key(key)
    if project is None:
        raise AuthError("unknown secret key")
    return project


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def authenticated_route(check: Callable[[Request], Awaitable[None]]) -> type[APIRoute]:
    """A route class whose handler runs `check` (raising AuthError) before FastAPI reads
    the body or resolves any parameter. Give it to a router: `APIRouter(route_class=...)`,
    and every route the router declares, now or later, authenticates first."""

    class AuthenticatedRoute(APIRoute):
        def get_route_handler(self) -> Handler:
            handler = super().get_route_handler()

            async def authenticated(request: Request) -> Response:
                await check(request)
                return await handler(request)

            return authenticated

    return AuthenticatedRoute
