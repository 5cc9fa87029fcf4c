"""Requests cannot make the server read, hold or crash on what they send (issue 9,
"Requests"), against a real `segmently serve` over loopback sockets.

- Every route that can authenticate from its headers does so before it reads a byte of the
  body: a bad key with a declared body gets its 401 while the body is still unsent. This
  is not what FastAPI does by itself (it reads a route's body parameter before running its
  dependencies), which is why every /api route is covered, from the OpenAPI document.
- Every route bounds its body: over the route's limit by Content-Length, a 413 before
  anything is read; over it while streaming (chunked), a 413 once the limit is passed,
  the connection closed, and the server's memory does not grow with what was sent.
- Paths and query strings with NUL, malformed escapes or invalid UTF-8 are 400s.
Timeouts (half-sent requests) are in test_request_timeouts.py.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
import pytest
from requestkit import (
    Answer,
    basic,
    closed_by_server,
    connect,
    exchange,
    head,
    read_answer,
    rss_bytes,
)

from conftest import running_server
from segmently import control
from segmently.collect.limits import Limits

if TYPE_CHECKING:
    from conftest import Server

LIMITS = Limits()
GIB = 1 << 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for this file's tests, in turn (a start costs seconds): each sends what
    a server must refuse, or survive, or ordinary requests whose results no other test
    reads, and checks the answers; the one server then has taken all of it."""
    with running_server(tmp_path_factory.mktemp("requests")) as srv:
        yield srv


def body_routes(server: Server) -> list[tuple[str, str]]:
    """(method, path) of every /api route that takes a body, from the OpenAPI document,
    with path parameters filled in."""
    spec = httpx.get(f"{server.url}/openapi.json").json()
    routes = [(method.upper(), path.replace("{name}", "some_segment"))
              for path, ops in spec["paths"].items() if path.startswith("/api/")
              for method in ops if method in ("post", "put", "patch")]
    assert ("POST", "/api/segments") in routes and ("POST", "/api/rules/preview") in routes
    return routes


def declared_only(server: Server, method: str, path: str, headers: dict[str, str],
                  length: int) -> tuple[Answer, bool]:
    """Send a head declaring `length` body bytes and none of them; the answer, and
    whether the server then closed the connection (so it reads none of the body)."""
    with connect(server.url, timeout=20) as sock:
        sock.sendall(head(method, path, {"Content-Type": "application/json",
                                         "Content-Length": str(length), **headers}))
        answer = read_answer(sock)
        return answer, closed_by_server(sock)


def test_api_routes_refuse_a_bad_key_before_reading_the_body(server: Server) -> None:
    """A 401 arrives while all 500,000 declared bytes are still unsent: the route did
    not wait for the body. Then the server closes the connection instead of reading it."""
    routes = body_routes(server) + [("POST", "/internal/v1/call"),
                                    ("POST", "/internal/v1/append?project_id=x")]
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer sk_wrong"}, {"X-Secret-Key": "nope"}):
            answer, closed = declared_only(server, method, path, headers, 500_000)
            assert answer.status == 401, (method, path, headers, answer)
            assert answer.json()["code"] == "unauthorized"
            assert closed, (method, path)


def test_write_key_routes_refuse_a_bad_key_before_reading_the_body(server: Server) -> None:
    """Ingestion routes whose key travels in a header (native, Segment's Basic auth)."""
    cases = [("/v1/events", {"Authorization": "Bearer wk_wrong"}),
             ("/v1/events", {}),
             ("/v1/batch", {"Authorization": basic("wk_wrong")}),
             ("/v1/track", {"Authorization": basic("wk_wrong")})]
    for path, headers in cases:
        answer, closed = declared_only(server, "POST", path, headers, 1_000_000)
        assert (answer.status, answer.json()["code"]) == (401, "unauthorized"), path
        assert closed


def test_a_declared_body_over_the_limit_is_refused_unread(server: Server) -> None:
    """Content-Length over the route's limit: 413 before a byte is read, with a valid
    key as without one (the limit is checked before anything else)."""
    token = control.read_control(server.db)
    assert token is not None
    secret = {"Authorization": f"Bearer {server.secret_key}"}
    cases = [("/api/segments", secret, LIMITS.max_api_body),
             ("/api/rules/preview", secret, LIMITS.max_api_body),
             ("/api/rules/preview", {"Authorization": "Bearer sk_wrong"}, LIMITS.max_api_body),
             ("/internal/v1/call", {"Authorization": f"Bearer {token.token}"},
              LIMITS.max_api_body),
             ("/ui/login", {}, LIMITS.max_form_body),
             ("/v1/events", {"Authorization": f"Bearer {server.write_key}"},
              LIMITS.max_batch_body),
             ("/v1/batch", {"Authorization": basic(server.write_key)}, LIMITS.max_batch_body),
             ("/v1/batch", {}, LIMITS.max_batch_body),
             ("/batch/", {}, LIMITS.max_batch_body),
             ("/e", {}, LIMITS.max_batch_body)]
    for path, headers, limit in cases:
        for length in (limit + 1, GIB):
            answer, closed = declared_only(server, "POST", path, headers, length)
            assert answer.status == 413, (path, length, answer)
            assert answer.json() == {"code": "payload_too_large", "message":
                                     f"request body is {length} bytes; the limit is "
                                     f"{limit} bytes"}
            assert closed


def stream(server: Server, path: str, headers: dict[str, str], total: int,
           chunk: int = 1 << 20) -> tuple[Answer | None, int]:
    """POST a chunked body of up to `total` bytes, a chunk at a time; stop when the
    server answers or closes. Returns its answer and how many body bytes were sent."""
    sent = 0
    with connect(server.url, timeout=30) as sock:
        sock.sendall(head("POST", path, {"Content-Type": "application/json",
                                         "Transfer-Encoding": "chunked", **headers}))
        piece = f"{chunk:x}\r\n".encode() + b"[" * chunk + b"\r\n"
        try:
            while sent < total:
                sock.sendall(piece)
                sent += chunk
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what follows reads its answer
        try:
            return read_answer(sock), sent
        except (ConnectionError, OSError):
            return None, sent


def test_a_streamed_body_over_the_limit_stops_being_read(server: Server) -> None:
    """Chunked (no Content-Length): counted while streaming, refused past the limit. The
    client sending a gigabyte gets its 413 after a few megabytes at most (socket
    buffers), and the server holds none of it: its memory grows by far less than sent."""
    token = control.read_control(server.db)
    assert token is not None
    cases = [("/api/rules/preview", {"Authorization": f"Bearer {server.secret_key}"},
              LIMITS.max_api_body),
             ("/api/segments", {"Authorization": f"Bearer {server.secret_key}"},
              LIMITS.max_api_body),
             ("/internal/v1/call", {"Authorization": f"Bearer {token.token}"},
              LIMITS.max_api_body),
             ("/ui/login", {}, LIMITS.max_form_body),
             ("/v1/events", {"Authorization": f"Bearer {server.write_key}"},
              LIMITS.max_batch_body),
             ("/v1/batch", {"Authorization": basic(server.write_key)}, LIMITS.max_batch_body),
             ("/batch/", {}, LIMITS.max_batch_body)]
    before = rss_bytes(server.process.pid)
    for path, headers, limit in cases:
        answer, sent = stream(server, path, headers, GIB)
        assert answer is not None and answer.status == 413, (path, answer, sent)
        assert answer.json()["code"] == "payload_too_large"
        assert sent < limit + (64 << 20), (path, sent)  # stopped, not read to the end
    grown = rss_bytes(server.process.pid) - before
    assert grown < 200 << 20, f"server memory grew by {grown >> 20} MB"
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_bodies_within_the_limits_still_work(server: Server) -> None:
    """The limits refuse only what is over them: a rule preview, a segment and a batch
    of ordinary size go through (with a key), chunked as well as with Content-Length."""
    rule = {"kind": "performed", "event": "signed_up"}
    key = {"Authorization": f"Bearer {server.secret_key}"}
    preview = httpx.post(f"{server.url}/api/rules/preview", headers=key, json={"rule": rule})
    assert preview.status_code == 200, preview.text
    chunked = httpx.post(f"{server.url}/api/segments",
                         headers={**key, "Content-Type": "application/json"},
                         content=iter([json.dumps({"name": "s1", "rule": rule}).encode()]))
    assert chunked.status_code == 201, chunked.text
    events = {"events": [{"type": "track", "event": "signed_up", "user_id": f"u{i}",
                          "properties": {"pad": "x" * 1000}} for i in range(1000)]}
    batch = httpx.post(f"{server.url}/v1/events", json=events,
                       headers={"Authorization": f"Bearer {server.write_key}"})
    assert batch.json() == {"success": True, "accepted": 1000}


# -- targets: NUL, malformed escapes, invalid UTF-8 ----------------------------------------
BAD_TARGETS = {
    "/api/users/a%00b/segments": "the path contains a NUL character",
    "/api/segments/x%00": "the path contains a NUL character",
    "/api/users/%00/timeline": "the path contains a NUL character",
    "/ui/users/%00": "the path contains a NUL character",
    "/ui/static/ui.js%00": "the path contains a NUL character",
    "/v1/events%00": "the path contains a NUL character",
    "/healthz?q=a%00": "the query string contains a NUL character",
    "/api/segments/x/members?cursor=%00": "the query string contains a NUL character",
    "/api/catalog/properties?event=%00": "the query string contains a NUL character",
    "/e/?data=%00": "the query string contains a NUL character",
    "/api/users/%zz/segments": "the path has a '%' not followed by two hexadecimal digits",
    "/api/users/a%2/segments": "the path has a '%' not followed by two hexadecimal digits",
    "/api/users/100%": "the path has a '%' not followed by two hexadecimal digits",
    "/healthz?x=%G1": "the query string has a '%' not followed by two hexadecimal digits",
    "/api/users/%C3/segments": "the path is not UTF-8 once percent-decoded",
    "/api/users/%C0%AF/segments": "the path is not UTF-8 once percent-decoded",  # overlong /
    "/api/users/%ED%A0%80": "the path is not UTF-8 once percent-decoded",  # a surrogate
    "/api/segments?x=%FF": "the query string is not UTF-8 once percent-decoded",
}


@pytest.mark.parametrize("auth", ["secret", "none"])
def test_bad_targets_are_400s(server: Server, auth: str) -> None:
    headers = {"Authorization": f"Bearer {server.secret_key}"} if auth == "secret" else {}
    for target, message in BAD_TARGETS.items():
        for method in ("GET", "POST"):
            answer = exchange(server.url, head(method, target, headers))
            assert (answer.status, answer.json()) == (400, {"code": "bad_request",
                                                            "message": message}), target


def test_raw_bytes_outside_ascii_in_a_target_are_400s(server: Server) -> None:
    """Bytes a client should have percent-encoded: uvicorn refuses those itself (400)."""
    for target in (b"/api/users/\xc3\xa9/segments", b"/healthz?x=\xff", b"/heal\x00thz",
                   b"/healthz?x=\x00"):
        with connect(server.url) as sock:
            sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_answer(sock).status == 400, target
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_the_server_survives_a_reset_mid_body(server: Server) -> None:
    """A client that disappears while sending leaves nothing behind to answer 500 to."""
    for _ in range(20):
        sock = connect(server.url)
        sock.sendall(head("POST", "/v1/events", {"Authorization": f"Bearer {server.write_key}",
                                                 "Content-Length": "100000"}) + b"{" * 5000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert "Traceback" not in server.log.read_text()
