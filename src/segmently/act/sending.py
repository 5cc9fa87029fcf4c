"""One HTTP delivery: signed per Standard Webhooks with the specification's own library,
refused when the address is loopback, private or link-local (unless a setting allows it),
never redirected, 15 seconds at most. Success is a 2xx; anything else is a failure with
its reason. Next hop: `act/delivery.py` records the outcome.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from segmently.act.destinations import Destination
from segmently.act.payloads import Request

TIMEOUT = 15.0
EXCERPT = 300
USER_AGENT = "Segmently-Webhooks/1"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status: int | None
    latency_ms: float
    error: str | None = None
    excerpt: str | None = None
    gone: bool = False  # 410: the receiver asks never to be called again


def signature_headers(dest: Destination, msg_id: str, body: bytes,
                      at: datetime | None = None) -> dict[str, str]:
    """webhook-id, webhook-timestamp and webhook-signature (two during a rotation: the
    current secret's and the previous one's, space-separated)."""
    at = at or datetime.now(UTC)
    text = body.decode()
    signatures = [Webhook(secret).sign(msg_id, at, text)
                  for secret in (dest.secret, dest.previous_secret) if secret]
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": " ".join(signatures)}


def checked_address(url: str) -> tuple[str | None, str | None]:
    """(the address to connect to, None) when every address the URL's host resolves to is
    a public one, else (None, why not): loopback, private, link-local, shared, multicast
    or reserved addresses are refused."""
    host = urlsplit(url).hostname
    if not host:
        return None, "the URL has no host"
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        return None, f"{host} does not resolve ({exc.strerror})"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_loopback or address.is_private or address.is_link_local or \
                address.is_multicast or address.is_reserved or not address.is_global:
            return None, (f"{host} is {address}, a loopback, private or link-local address "
                          "(SEGMENTLY_ALLOW_PRIVATE_DESTINATIONS allows it)")
    return str(ipaddress.ip_address(infos[0][4][0])), None


def blocked_address(url: str) -> str | None:
    """Why a URL may not be called, or None (`checked_address`)."""
    return checked_address(url)[1]


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL with its host replaced by the address that was checked, the Host header and
    the TLS server name it stands for: the connection goes to the address checked, never
    to one a second DNS answer gives (DNS rebinding)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    netloc = literal + (f":{parts.port}" if parts.port else "")
    hosted = host + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), {"host": hosted}, extensions


class Channel:
    """A delivery pass's keep-alive HTTP client, and the one thread each exchange runs in,
    so that an exchange can be abandoned at its deadline: httpx bounds each read, not the
    whole exchange, and a receiver answering a byte at a time must not hold the worker
    (every destination after it waits). An abandoned exchange's client and thread are
    replaced and left to end on their own."""

    def __init__(self) -> None:
        self._fresh()

    def _fresh(self) -> None:
        self.client = httpx.Client(follow_redirects=False, timeout=TIMEOUT)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segmently-send")

    def post(self, url: str, body: bytes, headers: dict[str, str],
             extensions: dict[str, str], deadline: float
             ) -> tuple[int, str, str | None, bytes]:
        future = self._pool.submit(_post, self.client, url, body, headers, extensions,
                                   deadline)
        try:
            return future.result(timeout=max(deadline - time.perf_counter(), 0.001))
        except FutureTimeout:
            client, pool = self.client, self._pool
            self._fresh()
            pool.shutdown(wait=False)
            threading.Thread(target=client.close, daemon=True).start()
            raise _Deadline from None

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.client.close()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send(dest: Destination, request: Request, allow_private: bool = False,
         channel: Channel | None = None) -> Outcome:
    url = request.url
    pin: dict[str, str] = {}
    extensions: dict[str, str] = {}
    if not allow_private:
        address, why = checked_address(request.url)
        if address is None:
            return Outcome(False, None, 0.0, f"refused: {why}")
        url, pin, extensions = pinned(request.url, address)
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               **request.headers, **pin}
    if request.signed_id is not None and dest.secret:
        headers.update(signature_headers(dest, request.signed_id, request.body))
    started = time.perf_counter()
    link = channel or Channel()
    try:
        status, reason, location, content = link.post(url, request.body, headers,
                                                      extensions, started + TIMEOUT)
    except (httpx.TimeoutException, _Deadline):
        return Outcome(False, None, _ms(started), f"no answer within {TIMEOUT:g} s")
    except httpx.HTTPError as exc:
        return Outcome(False, None, _ms(started), f"{type(exc).__name__}: {exc}"[:300])
    finally:
        if channel is None:
            link.close()
    excerpt = content[:EXCERPT * 4].decode(errors="replace")[:EXCERPT] if content else None
    if 200 <= status < 300:
        return Outcome(True, status, _ms(started), None, excerpt)
    if 300 <= status < 400:
        error = f"{status}: a redirect (to {location or '?'}), not followed"
    else:
        error = f"{status} {reason}".strip()
    return Outcome(False, status, _ms(started), error, excerpt, gone=status == 410)


class _Deadline(Exception):
    """The whole exchange took longer than TIMEOUT (a body dripped in slowly)."""


def _post(http: httpx.Client, url: str, body: bytes, headers: dict[str, str],
          extensions: dict[str, str], deadline: float
          ) -> tuple[int, str, str | None, bytes]:
    """POST and read the answer within one deadline for the whole exchange: httpx's
    timeout bounds each read, so a receiver answering a byte at a time would otherwise
    hold the worker as long as it likes. Reads stop at 64 KiB (only an excerpt is kept)."""
    with http.stream("POST", url, content=body, headers=headers, extensions=extensions,
                     follow_redirects=False, timeout=TIMEOUT) as response:
        content = b""
        for chunk in response.iter_bytes():
            if time.perf_counter() > deadline:
                raise _Deadline
            content += chunk
            if len(content) >= 65536:
                break
        if time.perf_counter() > deadline:
            raise _Deadline
        return (response.status_code, response.reason_phrase,
                response.headers.get("location"), content)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
