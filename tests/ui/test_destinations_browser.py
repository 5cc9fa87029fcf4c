"""End to end in Debian's Chromium (issue 12): the Destinations pages of a real `segmently
serve` delivering to a real loopback receiver that verifies every Standard Webhooks
signature with the specification's library. A webhook destination created over the API
and subscribed to a segment gets the segment's entries after `POST /api/refresh` (the
server's delivery loop runs every second); a second one, whose receiver answers 410, is
disabled with the reason shown. The pages must show what the API answers: the delivered
count, the attempt (status, latency, the receiver's answer as text, never markup), the
per-hour chart, "Send test" and its outcome, and "Replay" of the failed message.

A module of its own: its server allows private destinations (the receiver is on
loopback), which uikit's shared one must not."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from standardwebhooks import Webhook, WebhookVerificationError
from uikit import WORKSPACE, UiServer, api, dataset, page  # noqa: F401 - fixtures

from conftest import free_port, start_server
from segmently.core import Project
from segmently.segments.workspace import parse_workspace
from segmently.store import Store, utcnow
from segmently.store.projects import create_project

ANSWER = "<b>thanks</b>"  # what the receiver answers: the page must show it as text


@dataclass
class Receiver:
    """An HTTP server on loopback: /hook answers 200 with ANSWER to a request signed with
    one of `secrets`, 401 otherwise; /gone answers 410. Every request is kept."""

    url: str
    secrets: list[str] = field(default_factory=list)
    got: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verified(self, body: bytes, headers: dict[str, str]) -> bool:
        for secret in list(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
                return True
            except WebhookVerificationError:
                continue
        return False

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r["body"] for r in self.got if r["path"] == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    port = free_port()
    found = Receiver(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = dict(self.headers)
            ok = found.verified(body, headers)
            with found.lock:
                found.got.append({"path": self.path, "headers": headers, "verified": ok,
                                  "body": json.loads(body)})
            status = 410 if self.path == "/gone" else 200 if ok else 401
            self.send_response(status)
            self.send_header("content-type", "text/html")
            self.end_headers()
            self.wfile.write(ANSWER.encode() if status == 200 else b"gone")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def act_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    """uikit's product on a server that may deliver to loopback (and refreshes only when
    asked; it delivers every second)."""
    tmp = tmp_path_factory.mktemp("act-ui")
    db = f"duckdb://{tmp / 'ui.duckdb'}"
    with Store(db) as s:
        mine, other = create_project(s, "shop"), create_project(s, "other")
        Project(s, mine.project.project_id).apply(parse_workspace(WORKSPACE))
    proc, url = start_server(db, tmp / "server.log", env={
        "SEGMENTLY_REFRESH_SECONDS": "0", "SEGMENTLY_DELIVER_SECONDS": "1",
        "SEGMENTLY_ALLOW_PRIVATE_DESTINATIONS": "1"})
    try:
        events = dataset(utcnow())
        r = httpx.post(f"{url}/v1/events", json={"events": events},
                       headers={"Authorization": f"Bearer {mine.project.write_key}"},
                       timeout=30)
        assert r.status_code == 200, r.text
        yield UiServer(url, db, mine.project.write_key, mine.secret_key, other.secret_key,
                       len(events))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def sign_in(page: Page, server: UiServer, path: str) -> list[str]:
    """Sign in and land on `path`; returns the list Content-Security-Policy violations and
    uncaught script errors are appended to."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and "Content Security Policy" in m.text else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url + path)
    page.fill("input[name=secret_key]", server.secret_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + path)
    return errors


def wait_for(check: Any, what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_destinations_pages(page: Page, act_server: UiServer,  # noqa: F811
                            receiver: Receiver, tmp_path: Path) -> None:
    assert api(act_server, "POST", "/api/segments", json={
        "name": "viewers", "rule": {"kind": "performed", "event": "report_viewed"}}) \
        .status_code == 201
    wait_for(lambda: not api(act_server, "GET", "/api/segments/viewers").json()["counting"],
             "viewers to be counted")  # at save: u1..u5 all viewed a report
    made = api(act_server, "POST", "/api/destinations", json={
        "name": "crm hook", "kind": "webhook", "url": receiver.url + "/hook",
        "subscriptions": [{"segments": ["viewers"], "changes": ["entered"]}]})
    assert made.status_code == 201, made.text
    receiver.secrets.append(made.json()["secret"])  # shown whole only at creation
    gone = api(act_server, "POST", "/api/destinations", json={
        "name": "old", "kind": "webhook", "url": receiver.url + "/gone",
        "subscriptions": [{"segments": ["viewers"], "mode": "sync"}]})
    assert gone.status_code == 201, gone.text

    # a new subscription starts with the members counted before it: their entries
    refreshed = api(act_server, "POST", "/api/refresh").json()
    assert [(s["name"], s["entered"]) for s in refreshed["segments"]
            if s["name"] == "viewers"] == [("viewers", 0)]
    entered = wait_for(lambda: receiver.bodies("/hook"), "the entries at the receiver")
    assert [b["type"] for b in entered] == ["segment.entered"]
    assert sorted(u["user_id"] for u in entered[0]["users"]) == ["u1", "u2", "u3", "u4", "u5"]
    assert all(r["verified"] for r in receiver.got if r["path"] == "/hook")
    wait_for(lambda: not api(act_server, "GET", "/api/destinations/old").json()["enabled"],
             "the 410 destination to be disabled")
    hook = api(act_server, "GET", "/api/destinations/crm%20hook?limit=1000").json()
    assert hook["deliveries"]["counts"] == {"delivered": 1}
    [attempt] = hook["deliveries"]["attempts"]
    assert (attempt["status"], attempt["excerpt"], attempt["message_id"]) == \
        (200, ANSWER, entered[0]["message_id"])
    old = api(act_server, "GET", "/api/destinations/old?limit=1000").json()
    assert old["deliveries"]["counts"] == {"failed": 1}
    assert old["disabled_reason"].startswith("the receiver answered 410 Gone")

    # the list: kind, subscriptions, enabled or why not, messages by state
    errors = sign_in(page, act_server, "/ui/destinations")
    expect(page.locator("header nav a[href='/ui/destinations']")).to_have_text("Destinations")
    rows = page.locator("#destinations tbody tr")
    expect(rows).to_have_count(2)
    row = page.locator("#destinations tr[data-destination='crm hook']")
    expect(row.locator(".kind")).to_have_text("webhook")
    expect(row.locator(".target")).to_have_text(receiver.url + "/hook")
    expect(row.locator(".subscriptions")).to_have_text("viewers (entered, 100 a message)")
    expect(row.locator(".status")).to_have_text("enabled")
    expect(row.locator(".n-delivered")).to_have_text("1")
    expect(row.locator(".n-failed")).to_have_text("0")
    old_row = page.locator("#destinations tr[data-destination=old]")
    expect(old_row.locator(".subscriptions")).to_have_text("viewers (sync)")
    expect(old_row.locator(".status")).to_have_text(f"disabled: {old['disabled_reason']}")
    expect(old_row.locator(".n-failed")).to_have_text("1")

    # one destination: counts, the chart, the attempt, the receiver's answer as text
    row.locator("a").click()
    expect(page).to_have_url(act_server.url + "/ui/destinations/crm%20hook")
    expect(page.locator("h1")).to_have_text("crm hook")
    expect(page.locator("#n-delivered")).to_have_text("1")
    expect(page.locator("#n-pending")).to_have_text("0")
    expect(page.locator("#n-failed")).to_have_text("0")
    expect(page.locator("#dest-status")).to_have_text("enabled")
    shown = page.locator("#attempts tbody tr")
    expect(shown).to_have_count(1)
    expect(shown.locator(".message")).to_have_text(attempt["message_id"])
    expect(shown.locator(".result")).to_have_text("delivered")
    expect(shown.locator(".status")).to_have_text("200")
    expect(shown.locator(".latency")).to_contain_text(" ms")
    expect(shown.locator(".excerpt")).to_have_text(ANSWER)
    expect(page.locator("#attempts b")).to_have_count(0)  # text, never markup
    expect(page.locator("#no-failed")).to_be_visible()
    expect(page.locator("#deliveries-chart .main-svg").first).to_be_visible()
    traces = page.evaluate("document.getElementById('deliveries-chart').data"
                           ".map(t => [t.name, t.y.reduce((a, b) => a + b, 0)])")
    assert traces == [["delivered", 1], ["failed", 0]]

    # Send test: a signed {"type": "test"} now, and what the receiver answered
    before = len(receiver.bodies("/hook"))
    page.get_by_role("button", name="Send test").click()
    expect(page.locator("#test-result")).to_contain_text("Test delivered: 200 in ")
    expect(page.locator("#test-result")).to_contain_text(f"the receiver answered: {ANSWER}")
    tests = receiver.bodies("/hook")[before:]
    assert [b["type"] for b in tests] == ["test"]
    assert receiver.got[-1]["verified"]

    # the disabled one: its failed message, replayed (pending again: it stays disabled)
    page.goto(act_server.url + "/ui/destinations/old")
    expect(page.locator("#dest-status")).to_have_text(f"disabled: {old['disabled_reason']}")
    expect(page.locator("#n-failed")).to_have_text("1")
    failed = page.locator("#failed tbody tr")
    expect(failed).to_have_count(1)
    message = old["deliveries"]["attempts"][0]["message_id"]
    expect(failed.locator("td").first).to_have_text(message)
    expect(page.locator("#attempts .result")).to_have_text(["failed, given up"])
    expect(page.locator("#attempts .status")).to_have_text(["410"])
    failed.get_by_role("button", name=f"Replay {message}").click()
    expect(page.locator("#replay-result")).to_have_text(f"Queued 1 message again: {message}.")
    expect(page.locator("#n-pending")).to_have_text("1")
    expect(page.locator("#n-failed")).to_have_text("0")
    expect(page.locator("#failed tbody tr")).to_have_count(0)
    expect(page.locator("#attempts .result").first).to_have_text("replay requested")
    after = api(act_server, "GET", "/api/destinations/old").json()["deliveries"]
    assert after["counts"] == {"pending": 1}
    expect(page.locator("main > p.error")).to_have_count(0)  # no page script failed
    assert errors == []
