"""The in-app loop end to end in Debian's Chromium: the sample host product
(examples/host, served by a plain `http.server` on its own loopback port, so the SDK is
loaded and talks cross-origin as in a real product) against a real `segmently serve`.
Nothing is mocked: the page's requests go to the server, and the server's answers and
stored events are read back over its API.

Every test has its own users, segments (`performed` an event only its users send) and
campaigns, so another test's campaigns never qualify for its users; the cooldown is set
by each test that shows something. Expectations are written by hand: who is a member
because of which events, the holdout arm from the documented formula (SHA-256 of
campaign NUL user, the first 8 bytes as a fraction of 2**64, held out when below
holdout_percent), the NPS category of a score (0-6 detractor, 7-8 passive, 9-10 promoter).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from conftest import Server, start_server
from segmently.store import Store
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # a real server, a static server and the browser

ROOT = Path(__file__).resolve().parents[2]
HOST_DIR = ROOT / "examples" / "host"
ARTIFACTS = ROOT / "test-artifacts"
ENV = {"SEGMENTLY_REFRESH_SECONDS": "0", "SEGMENTLY_INCREMENTAL_SECONDS": "0.3"}
HTTP = httpx.Client(timeout=30)
CAMPAIGN = "[data-segmently-campaign]"


# -- the two servers ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def inapp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("inapp")
    db = f"duckdb://{tmp / 'server.duckdb'}"
    with Store(db) as s:
        made = create_project(s, "acme")
    proc, url = start_server(db, tmp / "server.log", env=ENV)
    server = Server(url, db, made.project.write_key, made.secret_key,
                    made.project.project_id, proc, tmp / "server.log")
    try:
        yield server
    finally:
        server.stop()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    """examples/host on another loopback port than Segmently: another origin."""
    handler = functools.partial(QuietHandler, directory=str(HOST_DIR))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# -- the server's API ---------------------------------------------------------------------
def api(srv: Server, method: str, path: str, body: Any = None) -> httpx.Response:
    return HTTP.request(method, srv.url + path, json=body,
                        headers={"Authorization": f"Bearer {srv.secret_key}"})


def settings(srv: Server, **values: Any) -> dict[str, Any]:
    """Changes the in-app settings; then one ask as a user in no segment, so the server
    has read the new definitions before a page asks (the SDK waits only 1.5 s)."""
    r = api(srv, "PUT", "/api/in-app/settings", values)
    assert r.status_code == 200, r.text
    warm = HTTP.get(srv.url + "/v1/campaigns", params={"writeKey": srv.write_key,
                                                       "userId": "ib_nobody"})
    assert warm.status_code in (200, 403), warm.text
    return r.json()


def segment_of(srv: Server, name: str, users: list[str]) -> None:
    """A segment whose members are exactly `users`: they send `<name>_done`, nobody else."""
    r = api(srv, "POST", "/api/segments",
            {"name": name, "rule": {"kind": "performed", "event": f"{name}_done"}})
    assert r.status_code == 201, r.text
    batch = [{"type": "track", "messageId": uuid.uuid4().hex, "event": f"{name}_done",
              "userId": u} for u in users]
    r = HTTP.post(srv.url + "/v1/batch", headers={"Content-Type": "text/plain"},
                  content=json.dumps({"writeKey": srv.write_key, "batch": batch}))
    assert r.status_code == 200, r.text
    assert api(srv, "POST", "/api/refresh").status_code == 200


def campaign(srv: Server, name: str, audience: str, **fields: Any) -> None:
    body = {"name": name, "kind": "modal", "audience": {"in": [audience]},
            "holdout_percent": 0, "content": {"title": f"Hello from {name}", "body": "A modal"},
            **fields}
    r = api(srv, "POST", "/api/campaigns", body)
    assert r.status_code == 201, r.text


def timeline(srv: Server, user: str) -> list[dict[str, Any]]:
    r = api(srv, "GET", f"/api/users/{user}/timeline?limit=500")
    assert r.status_code == 200, r.text
    return r.json()["events"]


def stored(srv: Server, user: str, event: str) -> list[dict[str, Any]]:
    return [e for e in timeline(srv, user) if e["event"] == event]


def wait_stored(srv: Server, user: str, event: str, n: int = 1) -> list[dict[str, Any]]:
    """The user's stored `event`s once there are `n` (events reach the server a moment
    after the page made them)."""
    def enough() -> list[dict[str, Any]] | None:
        found = stored(srv, user, event)
        return found if len(found) >= n else None
    return wait_for(enough, f"{n} {event} of {user}")


def wait_for(check: Callable[[], Any], what: str, seconds: float = 10,
             page: Page | None = None) -> Any:
    """Polls `check` until it answers something true. With `page`, waits in Playwright,
    which is when the page's events (requests...) reach their handlers."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        if page is not None:
            page.wait_for_timeout(100)
        else:
            time.sleep(0.1)


def arm(campaign: str, user: str, percent: float) -> str:
    share = int.from_bytes(hashlib.sha256(f"{campaign}\0{user}".encode()).digest()[:8],
                           "big") / 2**64
    return "holdout" if share * 100 < percent else "treatment"


# -- the browser side -----------------------------------------------------------------------
@dataclass
class Visit:
    """One page of the host product, and the SDK's campaign requests it made."""

    page: Page
    asks: list[int] = field(default_factory=list)  # status of each finished ask (0: failed)
    pending: int = 0
    batches_failed: int = 0  # POSTs to /v1/batch that got no answer (server down)

    def settle(self, asks: int = 2, seconds: float = 10) -> None:
        """Wait until `asks` requests to /v1/campaigns finished and none is in flight,
        then a moment for the SDK to draw what they answered (an identified page asks
        twice: on identify and on page)."""
        deadline = time.monotonic() + seconds
        while len(self.asks) < asks or self.pending:
            assert time.monotonic() < deadline, f"the SDK asked {len(self.asks)} times"
            self.page.wait_for_timeout(50)
        self.page.wait_for_timeout(400)

    def shows_nothing(self) -> None:
        self.settle()
        expect(self.page.locator(CAMPAIGN)).to_have_count(0)


def page_url(host: str, srv: Server, user: str | None, path: str = "index.html",
             **extra: str) -> str:
    query = {"host": srv.url, "writeKey": srv.write_key, **({"user": user} if user else {}),
             **extra}
    return f"{host}/{path}?{urlencode(query)}"


@pytest.fixture
def visit(browser: Browser, host: str, request: pytest.FixtureRequest
          ) -> Iterator[Callable[..., Visit]]:
    """visit(srv, user, **query) opens the host page in a new browser context (a new
    device: nothing in localStorage). Screenshots of every page when the test fails."""
    contexts = []
    visits: list[Visit] = []

    def open_page(srv: Server, user: str | None, path: str = "index.html",
                  **extra: str) -> Visit:
        context = browser.new_context(viewport={"width": 1100, "height": 700})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        v = Visit(page)

        def asked(req: Any) -> None:
            if "/v1/campaigns" in req.url:
                v.pending += 1

        def answered(req: Any, failed: bool) -> None:
            if failed and "/v1/batch" in req.url:
                v.batches_failed += 1
            if "/v1/campaigns" in req.url:
                v.pending -= 1
                resp = None if failed else req.response()
                v.asks.append(resp.status if resp else 0)

        page.on("request", asked)
        page.on("requestfinished", lambda req: answered(req, False))
        page.on("requestfailed", lambda req: answered(req, True))
        visits.append(v)
        page.goto(page_url(host, srv, user, path, **extra))
        return v

    failed_before = request.session.testsfailed
    yield open_page
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, v in enumerate(visits):
            if not v.page.is_closed():
                v.page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"))
    for context in contexts:
        context.close()


def queued(page: Page, srv: Server) -> list[dict[str, Any]]:
    """The SDK's queue of unsent messages, as kept in localStorage."""
    raw = page.evaluate("k => localStorage.getItem(k)", f"segmently:queue:{srv.write_key}")
    return json.loads(raw) if raw else []


def shown(page: Page, name: str) -> Any:
    return page.locator(f"[data-segmently-campaign='{name}']")


ACTIVE = """() => {
  let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  if (!a) return null;
  const dialog = a.closest('[role=dialog]');
  return {id: a.id, text: (a.textContent || '').trim(), tag: a.tagName.toLowerCase(),
          score: a.getAttribute('data-score'), checked: a.getAttribute('aria-checked'),
          campaign: dialog ? dialog.getAttribute('data-segmently-campaign') : null};
}"""


def focused(page: Page) -> dict[str, Any]:
    """The element with the keyboard focus, looking into (open) shadow roots."""
    return page.evaluate(ACTIVE)


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, "not rendered"
    return found


def next_to(tip: dict[str, float], target: dict[str, float], gap: float = 24) -> bool:
    """Beside the element (at most `gap` px apart) and not covering it."""
    dx = max(target["x"] - (tip["x"] + tip["width"]), tip["x"] - (target["x"] + target["width"]), 0)
    dy = max(target["y"] - (tip["y"] + tip["height"]),
             tip["y"] - (target["y"] + target["height"]), 0)
    apart = dx > 0 or dy > 0
    return apart and dx <= gap and dy <= gap


# -- the tests ------------------------------------------------------------------------------
def test_members_see_it_others_do_not_the_held_out_are_recorded(
        inapp_server: Server, visit: Callable[..., Visit]) -> None:
    srv = inapp_server
    candidates = [f"ib1_u{i}" for i in range(40)]
    member = next(u for u in candidates if arm("ib1_modal", u, 50) == "treatment")
    held = next(u for u in candidates if arm("ib1_modal", u, 50) == "holdout")
    segment_of(srv, "ib1_seg", [member, held])  # ib1_stranger sends nothing
    campaign(srv, "ib1_modal", "ib1_seg", holdout_percent=50,
             content={"title": "Welcome, member", "body": "Only for ib1_seg."})
    settings(srv, cooldown_hours=0)

    seen = visit(srv, member)
    modal = shown(seen.page, "ib1_modal")
    expect(modal).to_be_visible()
    expect(modal).to_have_attribute("role", "dialog")
    expect(modal).to_have_attribute("data-kind", "modal")
    expect(modal.locator("h2")).to_have_text("Welcome, member")
    wait_for(lambda: stored(srv, member, "campaign_shown"), "campaign_shown of the member")

    visit(srv, "ib1_stranger").shows_nothing()
    out = visit(srv, held)
    out.shows_nothing()
    assert out.asks[-1] == 200
    assert stored(srv, held, "campaign_shown") == []

    def arms() -> tuple[int, int] | None:
        found = {c["name"]: c for c in api(srv, "GET", "/api/campaigns").json()["campaigns"]}
        got = (found["ib1_modal"]["assigned"], found["ib1_modal"]["held_out"])
        return got if got == (1, 1) else None

    # one treated (the member), one held out; the stranger qualifies for nothing
    wait_for(arms, "the arms to be recorded as (assigned 1, held out 1)", seconds=5)


def test_a_dismissal_holds_on_another_device(inapp_server: Server,
                                             visit: Callable[..., Visit]) -> None:
    srv = inapp_server
    segment_of(srv, "ib2_seg", ["ib2_a"])
    campaign(srv, "ib2_modal", "ib2_seg", frequency="until_dismissed",
             content={"title": "Until dismissed", "body": "Dismiss me once.",
                      "dismiss_label": "No thanks"})
    settings(srv, cooldown_hours=0)

    laptop = visit(srv, "ib2_a")
    expect(shown(laptop.page, "ib2_modal")).to_be_visible()
    wait_for(lambda: stored(srv, "ib2_a", "campaign_shown"), "campaign_shown")
    phone = visit(srv, "ib2_a")  # shown but not dismissed: still offered elsewhere
    expect(shown(phone.page, "ib2_modal")).to_be_visible()

    shown(laptop.page, "ib2_modal").get_by_role("button", name="No thanks").click()
    expect(shown(laptop.page, "ib2_modal")).to_have_count(0)
    [dismissed] = wait_for(lambda: stored(srv, "ib2_a", "campaign_dismissed"),
                           "campaign_dismissed")
    assert dismissed["properties"]["campaign"] == "ib2_modal"
    visit(srv, "ib2_a").shows_nothing()  # a third device
    phone.asks.clear()
    phone.page.reload()  # the device that had it on screen, on its next page
    phone.shows_nothing()


def test_the_cooldown_holds_across_campaigns(inapp_server: Server,
                                             visit: Callable[..., Visit]) -> None:
    srv = inapp_server
    segment_of(srv, "ib3_seg", ["ib3_a"])
    campaign(srv, "ib3_first", "ib3_seg", priority=2,
             content={"title": "First", "body": "The first campaign."})
    campaign(srv, "ib3_second", "ib3_seg", priority=1,
             content={"title": "Second", "body": "The second campaign."})
    settings(srv, cooldown_hours=24)

    v = visit(srv, "ib3_a")
    expect(shown(v.page, "ib3_first")).to_be_visible()
    wait_for(lambda: stored(srv, "ib3_a", "campaign_shown"), "campaign_shown of ib3_first")
    v.page.keyboard.press("Escape")
    expect(shown(v.page, "ib3_first")).to_have_count(0)

    v.asks.clear()
    v.page.reload()
    v.shows_nothing()  # ib3_second waits out the 24 hours
    visit(srv, "ib3_a").shows_nothing()  # on another device too

    settings(srv, cooldown_hours=0)  # the control: without a cooldown it is due
    v.asks.clear()
    v.page.reload()
    expect(shown(v.page, "ib3_second")).to_be_visible()
    shows = wait_stored(srv, "ib3_a", "campaign_shown", 2)
    assert sorted(e["properties"]["campaign"] for e in shows) == ["ib3_first", "ib3_second"]


def test_tour_steps_anchor_to_their_elements_and_skip_missing_ones(
        inapp_server: Server, visit: Callable[..., Visit]) -> None:
    srv = inapp_server
    segment_of(srv, "ib4_seg", ["ib4_a"])
    segment_of(srv, "ib4_none_seg", ["ib4_b"])
    campaign(srv, "ib4_tour", "ib4_seg", kind="tour", content={"steps": [
        {"selector": "#create-report", "title": "Reports", "body": "Start here."},
        {"selector": "#no-such-thing", "title": "Missing step", "body": "Never shown."},
        {"selector": "#invite-button", "title": "Invites", "body": "Bring your team."}]})
    campaign(srv, "ib4_nowhere", "ib4_none_seg", kind="tour", content={"steps": [
        {"selector": "#not-on-this-page", "title": "Nowhere", "body": "No element."}]})
    settings(srv, cooldown_hours=0)

    v = visit(srv, "ib4_a")
    page = v.page
    tip = shown(page, "ib4_tour")
    expect(tip).to_be_visible()
    expect(tip).to_have_attribute("role", "dialog")
    expect(tip.locator("h2")).to_have_text("Reports")
    expect(tip).to_contain_text("1 of 2")  # the missing step is not counted
    ring = page.locator("[data-segmently-root] .ring")
    for target_id, title in (("#create-report", "Reports"), ("#invite-button", "Invites")):
        expect(tip.locator("h2")).to_have_text(title)
        target = box(page.locator(target_id))
        assert next_to(box(tip), target), (box(tip), target)
        around = box(ring)
        assert around["x"] <= target["x"] and around["y"] <= target["y"]
        assert around["x"] + around["width"] >= target["x"] + target["width"]
        assert around["y"] + around["height"] >= target["y"] + target["height"]
        if title == "Reports":
            tip.get_by_role("button", name="Next").click()
    expect(tip).to_contain_text("2 of 2")
    expect(tip).not_to_contain_text("Missing step")
    tip.get_by_role("button", name="Back").click()
    expect(tip.locator("h2")).to_have_text("Reports")  # back skips the missing one too
    tip.get_by_role("button", name="Next").click()
    tip.get_by_role("button", name="Done").click()
    expect(page.locator(CAMPAIGN)).to_have_count(0)
    expect(ring).to_have_count(0)

    none = visit(srv, "ib4_b")  # a tour none of whose elements is on the page
    none.shows_nothing()
    assert none.asks[-1] == 200
    wait_for(lambda: not queued(none.page, srv), "the page's queue to be sent")
    assert stored(srv, "ib4_b", "$page") and stored(srv, "ib4_b", "campaign_shown") == []


def answer_nps(v: Visit, name: str, follow: dict[str, str], score: int, comment: str) -> str:
    """Picks `score` with the mouse, answers the follow-up; returns its category."""
    survey = shown(v.page, name)
    expect(survey).to_be_visible()
    survey.locator(f"button[data-score='{score}']").click()
    expect(survey.locator(f"button[data-score='{score}']")).to_have_attribute(
        "aria-checked", "true")
    form = survey.locator("form")
    category = str(form.get_attribute("data-category"))
    expect(form.locator("label")).to_have_text(follow[category])
    survey.locator("textarea").fill(comment)
    survey.get_by_role("button", name="Submit").click()
    expect(survey.get_by_role("status")).to_have_text("Thanks, noted.")
    survey.get_by_role("button", name="Done").click()  # the thank-you's (the x is "Close")
    expect(survey).to_have_count(0)
    return category


def test_an_nps_answer_arrives_and_segments_the_user(
        inapp_server: Server, visit: Callable[..., Visit]) -> None:
    srv = inapp_server
    segment_of(srv, "ib5_seg", ["ib5_fan", "ib5_critic"])
    follow = {"detractor": "What should we fix?", "passive": "What is missing?",
              "promoter": "What do you like?"}
    campaign(srv, "ib5_nps", "ib5_seg", kind="nps", content={
        "question": "Would you recommend Acme?", "follow_up": follow,
        "thanks": "Thanks, noted."})
    for name, category in (("ib5_promoters", "promoter"), ("ib5_detractors", "detractor")):
        r = api(srv, "POST", "/api/segments",
                {"name": name, "rule": {"kind": "nps", "category": category}})
        assert r.status_code == 201, r.text
    settings(srv, cooldown_hours=0)

    fan = visit(srv, "ib5_fan")
    expect(shown(fan.page, "ib5_nps").locator("h2")).to_have_text("Would you recommend Acme?")
    expect(shown(fan.page, "ib5_nps").get_by_role("radio")).to_have_count(11)
    assert answer_nps(fan, "ib5_nps", follow, 9, "Fast reports") == "promoter"  # 9-10
    critic = visit(srv, "ib5_critic")
    assert answer_nps(critic, "ib5_nps", follow, 3, "Too slow") == "detractor"  # 0-6

    for user, score, comment in (("ib5_fan", 9, "Fast reports"), ("ib5_critic", 3, "Too slow")):
        [sent] = wait_stored(srv, user, "nps_submitted")
        assert sent["properties"] == {"campaign": "ib5_nps", "survey": "ib5_nps",
                                      "score": score, "comment": comment}
    assert api(srv, "POST", "/api/refresh").status_code == 200
    segments = {u: set(api(srv, "GET", f"/api/users/{u}/segments").json()["segments"])
                for u in ("ib5_fan", "ib5_critic")}
    assert segments["ib5_fan"] & {"ib5_promoters", "ib5_detractors"} == {"ib5_promoters"}
    assert segments["ib5_critic"] & {"ib5_promoters", "ib5_detractors"} == {"ib5_detractors"}
    fan.asks.clear()
    fan.page.reload()  # answered: the survey is complete for this user
    fan.shows_nothing()


def test_a_forged_user_hash_is_refused(inapp_server: Server,
                                       visit: Callable[..., Visit]) -> None:
    srv = inapp_server
    segment_of(srv, "ib6_seg", ["ib6_a"])  # before verification: these events carry no hash
    campaign(srv, "ib6_modal", "ib6_seg", content={"title": "Verified only", "body": "Hi."})
    secret = settings(srv, cooldown_hours=0, identity_verification=True)["verification_secret"]
    try:
        good = hmac.new(secret.encode(), b"ib6_a", hashlib.sha256).hexdigest()
        forged = hmac.new(b"a guessed secret", b"ib6_a", hashlib.sha256).hexdigest()
        refused = [visit(srv, "ib6_a", hash=wrong)
                   for wrong in (forged, good[:-1] + ("0" if good[-1] != "0" else "1"))]
        refused.append(visit(srv, "ib6_a"))  # no hash at all
        for bad in refused:
            bad.shows_nothing()
            assert bad.asks == [403, 403]
        for bad in refused:  # their identify and page: refused (403), dropped
            wait_for(functools.partial(lambda p: not queued(p, srv), bad.page),
                     "the refused batch to be dropped")

        ok = visit(srv, "ib6_a", hash=good)
        expect(shown(ok.page, "ib6_modal")).to_be_visible()
        ok.settle()
        assert ok.asks == [200, 200]
        # the verified page's events are stored; the refused pages' never were
        wait_for(lambda: stored(srv, "ib6_a", "campaign_shown"), "the verified campaign_shown")
        wait_for(lambda: not queued(ok.page, srv), "the verified page's queue to be sent")
        assert len(stored(srv, "ib6_a", "$page")) == 1
    finally:
        settings(srv, identity_verification=False)
    assert api(srv, "GET", "/api/in-app/settings").json()["identity_verification"] is False


def test_keyboard_only(inapp_server: Server, visit: Callable[..., Visit]) -> None:
    srv = inapp_server
    segment_of(srv, "ib8_seg", ["ib8_a"])
    campaign(srv, "ib8_modal", "ib8_seg", frequency="until_dismissed",
             trigger={"event": "alert_created"},
             content={"title": "Alerts, by keyboard", "body": "Tab around.",
                      "button": {"label": "Show me"}, "dismiss_label": "Not now"})
    campaign(srv, "ib8_nps", "ib8_seg", kind="nps", trigger={"event": "report_created"},
             content={"question": "Recommend us?", "thanks": "Thank you, keyboard user."})
    settings(srv, cooldown_hours=0)
    v = visit(srv, "ib8_a")
    page, keys = v.page, v.page.keyboard
    v.shows_nothing()  # both wait for their event

    for _ in range(12):  # from the top of the page to the Alerts button
        keys.press("Tab")
        if focused(page)["id"] == "alerts-button":
            break
    assert focused(page)["id"] == "alerts-button"
    keys.press("Enter")  # alert_created: the modal
    modal = shown(page, "ib8_modal")
    expect(modal).to_be_visible()
    expect(modal).to_have_attribute("aria-modal", "true")
    expect(page.get_by_role("dialog", name="Alerts, by keyboard")).to_be_visible()

    def at() -> tuple[str | None, str]:  # the campaign whose dialog has focus, and what
        found = focused(page)
        return found["campaign"], found["text"]

    assert at() == ("ib8_modal", "Show me")  # focus moved in, on its button
    keys.press("Tab")
    assert at() == ("ib8_modal", "Not now")  # the last wraps to the first
    keys.press("Tab")
    assert at() == ("ib8_modal", "Show me")
    keys.press("Shift+Tab")
    assert at() == ("ib8_modal", "Not now")
    keys.press("Shift+Tab")
    assert at() == ("ib8_modal", "Show me")  # the first wraps to the last
    keys.press("Escape")
    expect(modal).to_have_count(0)
    assert focused(page)["id"] == "alerts-button"  # focus is back where it was
    [dismissed] = wait_for(lambda: stored(srv, "ib8_a", "campaign_dismissed"),
                           "campaign_dismissed")
    assert dismissed["properties"]["campaign"] == "ib8_modal"

    keys.press("Shift+Tab")
    assert focused(page)["id"] == "create-report"
    keys.press("Enter")  # report_created: the NPS survey
    survey = shown(page, "ib8_nps")
    expect(survey).to_be_visible()
    assert (focused(page)["campaign"], focused(page)["score"]) == ("ib8_nps", "0")
    keys.press("ArrowLeft")  # wraps: 10
    assert focused(page)["score"] == "10"
    keys.press("ArrowLeft")
    keys.press("ArrowLeft")
    assert focused(page)["score"] == "8"
    assert focused(page)["checked"] == "false"  # moving is not choosing
    keys.press("Space")  # 8: passive
    expect(survey.locator("button[data-score='8']")).to_have_attribute("aria-checked", "true")
    expect(survey.locator("form")).to_have_attribute("data-category", "passive")
    expect(survey.locator("form label")).to_have_text("What would make us a 10 for you?")
    assert focused(page)["tag"] == "textarea"
    keys.type("Faster exports")
    keys.press("Tab")
    assert at() == ("ib8_nps", "Submit")
    keys.press("Enter")
    expect(survey.get_by_role("status")).to_have_text("Thank you, keyboard user.")
    assert at() == ("ib8_nps", "Done")
    keys.press("Enter")
    expect(survey).to_have_count(0)
    assert focused(page)["id"] == "create-report"
    [sent] = wait_for(lambda: stored(srv, "ib8_a", "nps_submitted"), "nps_submitted")
    assert sent["properties"] == {"campaign": "ib8_nps", "survey": "ib8_nps", "score": 8,
                                  "comment": "Faster exports"}


def test_events_tracked_while_the_server_is_down_arrive_once(
        inapp_server: Server, visit: Callable[..., Visit]) -> None:
    """Last in the file: it stops the module's server and starts it again on the same
    port and database (the fixture stops whichever process runs at the end)."""
    srv = inapp_server
    port = int(srv.url.rsplit(":", 1)[1])
    v = visit(srv, "ib7_a")
    page = v.page
    expect(page.locator("#sdk-status")).to_have_text(f"Segmently: {srv.url} as ib7_a")
    wait_for(lambda: not queued(page, srv), "the first page's messages to be sent")

    srv.stop()
    page.click("#create-report")  # report_created {report: "Weekly active users #1"}
    page.click("#create-report")  # ... #2
    page.evaluate("segmently.track('ib7_offline', {n: 1})")
    offline = wait_for(lambda: len(queued(page, srv)) == 3 and queued(page, srv),
                       "three messages in the queue")
    ids = {m["messageId"] for m in offline}
    assert [m["event"] for m in offline] == ["report_created", "report_created",
                                             "ib7_offline"]
    wait_for(lambda: v.batches_failed >= 1, "the SDK to try sending", page=page)
    page.wait_for_timeout(1200)  # and try again, backing off
    assert {m["messageId"] for m in queued(page, srv)} == ids  # all kept, none sent

    page.reload()  # still down: the queue survives the reload
    page.wait_for_load_state("load")
    assert ids <= {m["messageId"] for m in queued(page, srv)}

    srv.process, url = start_server(srv.db, srv.log, port=port, env=ENV)
    assert url == srv.url
    page.reload()
    wait_for(lambda: not queued(page, srv), "the queue to be sent after the restart",
             seconds=20)
    page.wait_for_timeout(1000)  # a late duplicate would have time to arrive

    events = timeline(srv, "ib7_a")
    by_id: dict[str, int] = {}
    for e in events:
        by_id[e["message_id"]] = by_id.get(e["message_id"], 0) + 1
    assert all(n == 1 for n in by_id.values()), by_id
    assert ids <= set(by_id)
    reports = sorted(e["properties"]["report"] for e in events
                     if e["event"] == "report_created")
    assert reports == ["Weekly active users #1", "Weekly active users #2"]
    assert [e["properties"] for e in events if e["event"] == "ib7_offline"] == [{"n": 1}]
