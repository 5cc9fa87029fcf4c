"""UI sessions: signing in with the project's secret key gives an HttpOnly cookie.

The cookie holds a random token (never the key); the store keeps its hash and project
(store/sessions.py), so a session ends when it expires or on sign-out, not when the
server restarts. SameSite=Strict keeps other sites from riding the session (no cross-site
request ever carries the cookie), which is why the JSON routes can accept it alongside the key.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.requests import Request

from segmently.collect.errors import AuthError
from segmently.store import Store, utcnow
from segmently.store import sessions as stored_sessions
from segmently.web.auth import KeyCache, UnknownKeys, secret_key_from_headers

COOKIE = "segmently_session"
LIFETIME_SECONDS = 12 * 3600
MAX_TOKEN = 128  # ours are 43 characters: a longer cookie is not worth a lookup
FAILURES_PER_NAME = 5  # wrong passwords for one project name...
FAILURES_PER_CLIENT = 20  # ...or any wrong sign-ins from one address...
THROTTLE_SECONDS = 300.0  # ...within five minutes: further sign-ins wait
MAX_TRACKED = 10_000  # names and addresses with recent failures before old ones are swept


class Sessions:
    """Live sessions: stored (store/sessions.py), so they outlive a restart, and cached in
    memory, so a page's API calls do not each read the database. Unknown tokens are
    remembered a minute like unknown keys (`web/auth.py`): a token is random and made at
    sign-in, so none can be sent before its session exists."""

    def __init__(self, store: Store, lifetime: float = LIFETIME_SECONDS) -> None:
        self.store = store
        self.lifetime = timedelta(seconds=lifetime)
        self._known: dict[str, tuple[str, datetime]] = {}
        self._unknown = UnknownKeys()
        self._lock = threading.Lock()

    def create(self, project_id: str) -> str:
        token, expires_at = stored_sessions.start(self.store, project_id, self.lifetime)
        with self._lock:
            self._known[token] = (project_id, expires_at)
        return token

    def known(self, token: str) -> bool:
        """In memory already (live or recently unknown): answering needs no database read."""
        if len(token) > MAX_TOKEN:
            return True
        with self._lock:
            if token in self._known:
                return True
        return token in self._unknown

    def project(self, token: str | None) -> str | None:
        """The project of a live session, else None."""
        if not token or len(token) > MAX_TOKEN:
            return None
        with self._lock:
            found = self._known.get(token)
        if found is None:
            if token in self._unknown:
                return None
            found = stored_sessions.lookup(self.store, token)
            if found is None:
                self._unknown.add(token)
                return None
            with self._lock:
                self._known[token] = found
        if found[1] <= utcnow():
            with self._lock:
                self._known.pop(token, None)
            return None
        return found[0]

    def end(self, token: str | None) -> None:
        if not token or len(token) > MAX_TOKEN:
            return
        with self._lock:
            self._known.pop(token, None)
        stored_sessions.end(self.store, token)


async def request_project(keys: KeyCache, sessions: Sessions, request: Request) -> str:
    """The project of a secret key (Authorization header) or, without one, of the UI
    session cookie; AuthError (401) when neither is valid. Answered from memory when the
    key or token is cached, else looked up in a worker thread (never on the event loop)."""
    key = secret_key_from_headers(request)
    if key:
        project = await keys.secret_project(key)
        if project is None:
            raise AuthError("unknown secret key")
        return project.project_id
    token = request.cookies.get(COOKIE)
    if token and not sessions.known(token):
        project_id = await keys.gate.run(sessions.project, token)
    else:
        project_id = sessions.project(token)
    if project_id is None:
        raise AuthError("missing secret key: send 'Authorization: Bearer sk_...' or sign in"
                        " at /ui/login")
    return project_id


@dataclass
class SignInThrottle:
    """Failed sign-ins per project name and per client address over the last `period`
    seconds. Past a limit, sign-in is refused before any check, so a UI password cannot be
    guessed faster than a few tries per five minutes (secret keys are 256 random bits;
    the address limit covers them too)."""

    per_name: int = FAILURES_PER_NAME
    per_client: int = FAILURES_PER_CLIENT
    period: float = THROTTLE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _failures: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.period:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def wait(self, name: str, client: str) -> float:
        """Seconds until this name and address may try again (0: now)."""
        now = self.clock()
        with self._lock:
            waits = [times[0] + self.period - now
                     for key, limit in ((("name", name.casefold()), self.per_name),
                                        (("client", client), self.per_client))
                     if key[1] and len(times := self._recent(key, now)) >= limit]
        return max(waits, default=0.0)

    def failed(self, name: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > MAX_TRACKED:  # names never tried again: forget them
                for key in list(self._failures):
                    self._recent(key, now)
            for key in (("name", name.casefold()), ("client", client)):
                if key[1]:
                    self._failures.setdefault(key, deque()).append(now)
