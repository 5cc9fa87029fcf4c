"""Real HTTP receivers on loopback for the act/ tests, and the data the tests refresh.

    with Receiver(secret) as hook:            # a threaded HTTP/1.1 server on 127.0.0.1
        hook.then(Status(500), Reset(), Hang(3), Slow(0.3), Drip(0.5, 6), Status(410),
                  Status(302, {"location": other.url}), Ok())  # one per request, in order
        hook.fail(3)                          # the next 3 requests answer 500
        hook.down(); ...; hook.up()           # the port closed (connection refused), then back
        hook.arrivals                         # every request seen: webhook-id, body, verified

Each request's Standard Webhooks signature is checked with the specification's own
library (`standardwebhooks`), against every secret the receiver was given (a rotation
gives two); a request that fails it is answered 401 and recorded with `verified` False.
A receiver given `forward_to` passes requests on (a proxy before a second Segmently), and
`Lost()` forwards one and then answers 500 as if the answer had been lost on the way.

Not a conftest.py: other directories import the root conftest by name.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from segmently.act import delivery, outbox
from segmently.core import Project
from segmently.settings import Settings
from segmently.store import Message, Store
from segmently.store.projects import create_project


# -- faults: what the receiver does with one request ---------------------------------------
@dataclass(frozen=True)
class Ok:
    """Answer 204 (a success, queued among faults)."""


@dataclass(frozen=True)
class Status:
    """Answer with this status (and headers) instead of 204."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class Hang:
    """Read the request, then say nothing for `seconds` (longer than the sender waits)."""

    seconds: float


@dataclass(frozen=True)
class Slow:
    """Answer 204, but only after `seconds` (within the sender's timeout)."""

    seconds: float


@dataclass(frozen=True)
class Drip:
    """Answer 204, a few bytes of it every `interval` seconds: each read of the sender's
    is answered in time, the whole answer is not."""

    interval: float
    pieces: int


@dataclass(frozen=True)
class Reset:
    """Read the request and close the connection without answering (a TCP reset)."""


@dataclass(frozen=True)
class Lost:
    """Forward the request (it is processed) and answer 500: the answer was lost."""


Fault = Ok | Status | Hang | Slow | Drip | Reset | Lost


@dataclass
class Arrival:
    path: str
    webhook_id: str | None
    body: bytes
    headers: dict[str, str]
    verified: bool | None  # None: the receiver checks no signature
    fault: Fault | None  # what it answered instead of success (None: success)
    at: float  # time.monotonic()

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def accepted(self) -> bool:
        return self.fault is None or isinstance(self.fault, (Ok, Slow, Hang, Lost))


class Receiver:
    """A loopback HTTP server with injectable faults (see the module docstring)."""

    def __init__(self, *secrets: str, forward_to: str | None = None, path: str = "/hook",
                 verify: bool = True) -> None:
        self.secrets = [s for s in secrets if s]
        self.verify = verify and bool(self.secrets)
        self.forward_to = forward_to.rstrip("/") if forward_to else None
        self.arrivals: list[Arrival] = []
        self.faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self.base = f"http://127.0.0.1:{self.port}"

    # -- control -------------------------------------------------------------------------
    def then(self, *faults: Fault) -> Receiver:
        with self._lock:
            self.faults.extend(faults)
        return self

    def fail(self, n: int, status: int = 500) -> Receiver:
        return self.then(*[Status(status)] * n)

    def up(self) -> None:
        """Listen (again, on the same port after `down`)."""
        if self._server is not None:
            return
        self._server = _Server(("127.0.0.1", self.port), self._handler())
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def down(self) -> None:
        """Close the port and every open connection: the sender gets connection refused."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            open_ones, self._connections = list(self._connections), set()
        for sock in open_ones:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.down()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what was received -----------------------------------------------------------------
    def ids(self, accepted_only: bool = False) -> list[str | None]:
        return [a.webhook_id for a in self.arrivals if a.accepted or not accepted_only]

    def wait_for(self, n: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.arrivals) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.arrivals)} requests arrived, not {n}")
            time.sleep(0.01)

    # -- the handler -------------------------------------------------------------------------
    def _check(self, body: bytes, headers: dict[str, str]) -> bool | None:
        if not self.verify:
            return None
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                return False
        return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with outer._lock:
                    outer._connections.add(self.connection)

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass
                with outer._lock:
                    outer._connections.discard(self.connection)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                verified = outer._check(body, headers)
                with outer._lock:
                    fault = outer.faults.popleft() if outer.faults else None
                    fault = None if isinstance(fault, Ok) else fault
                    outer.arrivals.append(Arrival(self.path, headers.get("webhook-id"), body,
                                                  headers, verified, fault, time.monotonic()))
                if verified is False:
                    return self._answer(401, b'{"error":"bad signature"}')
                if isinstance(fault, Reset):
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return None
                if isinstance(fault, Hang):
                    time.sleep(fault.seconds)
                    self.close_connection = True
                    return None
                if isinstance(fault, Slow):
                    time.sleep(fault.seconds)
                if isinstance(fault, Drip):
                    return self._drip(fault)
                if isinstance(fault, Status):
                    return self._answer(fault.code, fault.body, fault.headers)
                if outer.forward_to is not None:
                    upstream = httpx.post(outer.forward_to + self.path, content=body,
                                          headers={k: v for k, v in headers.items()
                                                   if k not in ("host", "content-length")},
                                          timeout=30)
                    if isinstance(fault, Lost):
                        return self._answer(500, b"lost")
                    return self._answer(upstream.status_code, upstream.content)
                return self._answer(204 if not isinstance(fault, Lost) else 500, b"")

            def do_GET(self) -> None:  # noqa: N802
                self.do_POST()

            def _answer(self, code: int, body: bytes,
                        headers: dict[str, str] | None = None) -> None:
                try:
                    self.send_response(code)
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    if body:
                        self.wfile.write(body)
                except OSError:
                    self.close_connection = True

            def _drip(self, fault: Drip) -> None:
                raw = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
                size = -(-len(raw) // fault.pieces)
                try:
                    for start in range(0, len(raw), size):
                        if start:
                            time.sleep(fault.interval)
                        self.wfile.write(raw[start:start + size])
                        self.wfile.flush()
                except OSError:
                    pass
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a reset or a closed port mid-request is the point of some tests


# -- data: users who buy, a segment of recent buyers ---------------------------------------
T = datetime(2026, 5, 1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
BUYERS = {"kind": "performed", "event": "buy", "window": {"last": 1, "unit": "days"}}


ALLOW = Settings(allow_private_destinations=True)  # the receivers are on loopback


def shop(store: Store, name: str = "shop") -> Project:
    """A project with the segment `buyers`: users who bought in the day before as_of."""
    project = Project(store, create_project(store, name).project.project_id)
    project.save("buyers", "", BUYERS)
    return project


def buy(store: Store, project_id: str, users: list[str], when: datetime) -> None:
    """Each user buys at `when` (a buyer at any as_of in (when, when + 1 day])."""
    store.append(project_id, [Message(message_id=f"buy-{u}-{when:%Y%m%d%H%M}", type="track",
                                      event="buy", timestamp=when, source="test", user_id=u)
                              for u in users], received_at=when)


def deliver(store: Store, now: datetime | None = None,
            settings: Settings = ALLOW) -> delivery.Report:
    return delivery.deliver_due(store, settings, now=now)


def queued(store: Store, project_id: str, destination: str | None = None
           ) -> list[dict[str, Any]]:
    """The outbox rows with their state, in delivery order."""
    t = outbox.states(store, project_id, destination)
    return t.order_by("seq").to_pyarrow().to_pylist()


def log(store: Store, project_id: str, message_id: str) -> list[dict[str, Any]]:
    """A message's attempts, oldest first."""
    return outbox.attempts(store, project_id, message_id)[::-1]


def table_rows(store: Store, name: str, project_id: str) -> list[dict[str, Any]]:
    if name not in store.con.list_tables():
        return []
    t = store.table(name)
    return t.filter(t.project_id == project_id).to_pyarrow().to_pylist()

