"""The UI under its Content-Security-Policy, in Debian's Chromium (headless, Playwright).

Every page (and /docs) is opened signed in and must draw with no CSP violation: the
policy (web/headers.py) allows scripts only from files the server serves, so an inline
script or handler anywhere would show up here as a violation (and a broken page). Data
sent with the public write key must stay text: a trait value `<a href=...>` (plotly
renders a subset of HTML in labels) must show literally in the breakdown chart, its tick
label and its hover label, with no link element in the chart.

Violations are collected twice: `securitypolicyviolation` events (registered before any
page script runs) and Chromium's console errors about the policy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ui"))  # the UI suite's kit
from uikit import WORKSPACE, dataset, page  # noqa: E402,F401 - fixtures

from conftest import start_server  # noqa: E402
from segmently.core import Project  # noqa: E402
from segmently.segments.workspace import parse_workspace  # noqa: E402
from segmently.store import Store, utcnow  # noqa: E402
from segmently.store.projects import create_project  # noqa: E402

pytest.importorskip("playwright")
from playwright.sync_api import Page, expect  # noqa: E402

HOSTILE_LINK = '<a href="https://evil.example">click me</a>'
HOSTILE_BOLD = "<b>bold</b> &amp; <i>more</i>"
HOSTILE = {"h1": HOSTILE_LINK, "h2": HOSTILE_BOLD}  # user -> plan trait
SEGMENT = "everyone"

WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}` +
                    ` at ${e.sourceFile}:${e.lineNumber} ${e.sample || ""}`);
});
"""

INLINE_CODE_IN_DOM = """() => [...document.querySelectorAll("*")].flatMap(node =>
  [...node.attributes].filter(a => a.name.startsWith("on") ||
    /^\\s*javascript:/i.test(a.value)).map(a => `${node.tagName} ${a.name}=${a.value}`))"""


@dataclass
class HostileUi:
    url: str
    secret_key: str


@pytest.fixture(scope="module")
def hostile_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileUi]:
    """A real server over the UI suite's product plus two users whose plan trait is
    markup, a segment everyone is in, and one refresh (so the pages draw snapshots)."""
    tmp = tmp_path_factory.mktemp("csp")
    db = f"duckdb://{tmp / 'ui.duckdb'}"
    with Store(db) as s:
        new = create_project(s, "shop")
        Project(s, new.project.project_id).apply(parse_workspace(WORKSPACE))
    proc, url = start_server(db, tmp / "server.log", env={
        "SEGMENTLY_REFRESH_SECONDS": "0"})
    try:
        now = utcnow()
        events: list[dict[str, object]] = dataset(now)
        for user, plan in HOSTILE.items():
            events += [{"type": "identify", "user_id": user, "traits": {"plan": plan},
                        "timestamp": (now - timedelta(days=3)).isoformat() + "Z"},
                       {"event": "report_viewed", "user_id": user,
                        "timestamp": (now - timedelta(days=1)).isoformat() + "Z"}]
        key = {"Authorization": f"Bearer {new.project.write_key}"}
        r = httpx.post(f"{url}/v1/events", json={"events": events}, headers=key, timeout=60)
        assert r.status_code == 200, r.text
        secret = {"Authorization": f"Bearer {new.secret_key}"}
        r = httpx.post(f"{url}/api/segments", headers=secret, timeout=60,
                       json={"name": SEGMENT, "description": "all users", "rule": {"all": []}})
        assert r.status_code == 201, r.text
        r = httpx.post(f"{url}/api/refresh", headers=secret, timeout=300)
        assert r.status_code == 200, r.text
        yield HostileUi(url, new.secret_key)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def signed_in(page: Page, server: HostileUi) -> list[str]:  # noqa: F811
    """Sign in; returns the list the console's CSP errors are appended to."""
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error"
            and "Content Security Policy" in m.text else None)
    page.add_init_script(WATCH_CSP)
    page.goto(server.url + "/ui/login")
    page.fill("input[name=secret_key]", server.secret_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + "/ui/")
    return console


def violations(page: Page, console: list[str]) -> list[Any]:  # noqa: F811
    return [*page.evaluate("window.__csp"), *console]


PAGES = {  # path -> a selector that shows the page's scripts ran to the end
    "/ui/": "#active-chart .main-svg",
    f"/ui/segments/{SEGMENT}": "#breakdown-chart .main-svg",
    "/ui/builder": "#rule-tree .group",
    f"/ui/builder/{SEGMENT}": "#rule-tree .group",
    "/ui/users/u1": "#traits tbody tr",
    "/ui/users/h1": "#traits tbody tr",
    "/ui/journey": "#adoption-chart .main-svg",
    "/docs": "#swagger-ui .opblock",  # Swagger UI drew the operations of /openapi.json
}


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_draws_with_no_csp_violation(page: Page, hostile_ui: HostileUi,  # noqa: F811
                                                path: str) -> None:
    console = signed_in(page, hostile_ui)
    page.goto(hostile_ui.url + path)
    expect(page.locator(PAGES[path]).first).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert page.locator("main .error:visible").count() == 0
    assert violations(page, console) == []
    assert page.evaluate(INLINE_CODE_IN_DOM) == []  # also what the scripts built



def test_the_sign_in_page_has_no_csp_violation(page: Page, hostile_ui: HostileUi  # noqa: F811
                                               ) -> None:
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if "Content Security Policy"
            in m.text else None)
    page.add_init_script(WATCH_CSP)
    page.goto(hostile_ui.url + "/ui/login")
    page.wait_for_load_state("networkidle")
    assert violations(page, console) == []


def test_an_inline_script_is_refused(page: Page, hostile_ui: HostileUi) -> None:  # noqa: F811
    """The policy is enforced, not only sent: a script injected into a page does not run
    and is reported (so the empty lists above mean something)."""
    console = signed_in(page, hostile_ui)
    page.evaluate("""() => { const s = document.createElement("script");
        s.textContent = "window.__ran = true"; document.body.append(s); }""")
    assert page.evaluate("window.__ran === true") is False
    assert any("script-src" in v for v in violations(page, console))
    page.evaluate("""() => document.body.insertAdjacentHTML("beforeend",
        '<a id="planted" href="javascript:void(0)" onclick="x()">x</a>')""")
    assert page.evaluate(INLINE_CODE_IN_DOM) == [  # the DOM check above finds both
        "A href=javascript:void(0)", "A onclick=x()"]


def test_markup_in_a_trait_value_is_text_in_the_breakdown_chart(
        page: Page, hostile_ui: HostileUi) -> None:  # noqa: F811
    console = signed_in(page, hostile_ui)
    breakdown = httpx.get(f"{hostile_ui.url}/api/segments/{SEGMENT}/breakdown?by=plan",
                          headers={"Authorization": f"Bearer {hostile_ui.secret_key}"},
                          timeout=60).json()
    assert {HOSTILE_LINK, HOSTILE_BOLD} <= {v["value"] for v in breakdown["values"]}
    page.goto(f"{hostile_ui.url}/ui/segments/{SEGMENT}")
    chart = page.locator("#breakdown-chart")
    expect(chart.locator(".main-svg").first).to_be_visible()
    ticks = chart.locator(".ytick text")
    expect(ticks).to_have_count(len(breakdown["values"]))
    labels = ticks.all_text_contents()
    assert HOSTILE_LINK in labels and HOSTILE_BOLD in labels
    assert chart.locator("a").count() == 0  # plotly draws an <a> for a link it parses
    assert chart.locator("b, i").count() == 0
    # ticks and bars are drawn in the same (category) order
    bar = chart.locator(".bars .point path").nth(labels.index(HOSTILE_LINK))
    box = bar.bounding_box()  # plotly's drag layer takes the pointer: move it there
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    hover = page.locator(".hoverlayer .hovertext")
    expect(hover).to_have_count(1)
    assert HOSTILE_LINK in hover.text_content()
    assert page.locator(".hoverlayer a").count() == 0
    page.wait_for_load_state("networkidle")
    assert violations(page, console) == []
