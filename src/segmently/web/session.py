"""UI sessions: signing in with the project's secret key gives an HttpOnly cookie.

The cookie holds a random token (never the key); the server maps it to the project in
memory, so a session ends when it expires, on sign-out, or when the server restarts.
SameSite=Strict keeps other sites from riding the session (no cross-site request ever
carries the cookie), which is why the JSON routes can accept it alongside the key.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from starlette.requests import Request

from segmently.collect.errors import AuthError
from segmently.web.auth import KeyCache, bearer, require_secret_project

COOKIE = "segmently_session"
LIFETIME_SECONDS = 12 * 3600


@dataclass
class Sessions:
    lifetime: float = LIFETIME_SECONDS
    _by_token: dict[str, tuple[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self, project_id: str) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._by_token[token] = (project_id, time.monotonic() + self.lifetime)
        return token

    def project(self, token: str | None) -> str | None:
        """The project of a live session, else None (expired ones are dropped)."""
        if not token:
            return None
        with self._lock:
            found = self._by_token.get(token)
            if found is None:
                return None
            if found[1] < time.monotonic():
                del self._by_token[token]
                return None
            return found[0]

    def end(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


def request_project(keys: KeyCache, sessions: Sessions, request: Request) -> str:
    """The project of a secret key (Authorization header) or, without one, of the UI
    session cookie; AuthError (401) when neither is valid."""
    if bearer(request) or request.headers.get("x-secret-key"):
        return require_secret_project(keys, request).project_id
    project_id = sessions.project(request.cookies.get(COOKIE))
    if project_id is None:
        raise AuthError("missing secret key: send 'Authorization: Bearer sk_...' or sign in"
                        " at /ui/login")
    return project_id
