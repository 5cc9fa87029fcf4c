"""One HTTP delivery: signed per Standard Webhooks with the specification's own library,
refused when the address is loopback, private or link-local (unless a setting allows it),
never redirected, 15 seconds at most. Success is a 2xx; anything else is a failure with
its reason. Next hop: `act/delivery.py` records the outcome.
"""

from __future__ import annotations

import ipaddress
import socket
import time
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


def blocked_address(url: str) -> str | None:
    """Why a URL may not be called (its host resolves to a loopback, private, link-local,
    multicast or reserved address), or None."""
    host = urlsplit(url).hostname
    if not host:
        return "the URL has no host"
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        return f"{host} does not resolve ({exc.strerror})"
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_loopback or address.is_private or address.is_link_local or \
                address.is_multicast or address.is_reserved or not address.is_global:
            return (f"{host} is {address}, a loopback, private or link-local address "
                    "(SEGMENTLY_ALLOW_PRIVATE_DESTINATIONS allows it)")
    return None


def send(dest: Destination, request: Request, allow_private: bool = False,
         client: httpx.Client | None = None) -> Outcome:
    if not allow_private:
        why = blocked_address(request.url)
        if why is not None:
            return Outcome(False, None, 0.0, f"refused: {why}")
    headers = {"content-type": "application/json", "user-agent": USER_AGENT,
               **request.headers}
    if request.signed_id is not None and dest.secret:
        headers.update(signature_headers(dest, request.signed_id, request.body))
    started = time.perf_counter()
    http = client or httpx.Client(follow_redirects=False, timeout=TIMEOUT)
    try:
        response = http.post(request.url, content=request.body, headers=headers,
                             follow_redirects=False, timeout=TIMEOUT)
    except httpx.TimeoutException:
        return Outcome(False, None, _ms(started), f"no answer within {TIMEOUT:g} s")
    except httpx.HTTPError as exc:
        return Outcome(False, None, _ms(started), f"{type(exc).__name__}: {exc}"[:300])
    finally:
        if client is None:
            http.close()
    excerpt = response.text[:EXCERPT] if response.content else None
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True, status, _ms(started), None, excerpt)
    if 300 <= status < 400:
        error = f"{status}: a redirect (to {response.headers.get('location', '?')}), not " \
            "followed"
    else:
        error = f"{status} {response.reason_phrase}".strip()
    return Outcome(False, status, _ms(started), error, excerpt, gone=status == 410)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
