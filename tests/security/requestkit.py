"""Raw HTTP over real sockets, for the request-hardening tests (imported by them).

httpx cannot send a head without its body, stall half way or declare a gigabyte it never
sends; these helpers write exactly the bytes a test names and read what the server answers.
"""

from __future__ import annotations

import base64
import json
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        return json.loads(self.body)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def connect(url: str, timeout: float = 30.0) -> socket.socket:
    sock = socket.create_connection(address(url), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def head(method: str, target: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_answer(sock: socket.socket) -> Answer:
    """One response: status line, headers, and a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response head: {data[:200]!r}")
        data += chunk
    raw_head, rest = data.split(b"\r\n\r\n", 1)
    status_line, *header_lines = raw_head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Answer(int(status_line.split()[1]), headers, rest[:length])


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed the connection (EOF or reset) after its answer."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def exchange(url: str, data: bytes, timeout: float = 30.0) -> Answer:
    with connect(url, timeout) as sock:
        sock.sendall(data)
        return read_answer(sock)


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:".encode()).decode()


def segment(value: str) -> str:
    """One path segment holding any text: every reserved character escaped, and "." and
    ".." too (as the UI's `UI.seg` does), or clients resolve them as directories."""
    escaped = quote(value, safe="")
    return {".": "%2E", "..": "%2E%2E"}.get(escaped, escaped)


def rss_bytes(pid: int) -> int:
    """The resident memory of a process (Linux /proc)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def ui_cookie(url: str, secret_key: str) -> str:
    """A UI session cookie, signed in with the secret key like a person would."""
    r = httpx.post(f"{url}/ui/login", data={"secret_key": secret_key, "next": "/ui/"})
    assert r.status_code == 303, r.text
    return r.cookies["segmently_session"]

