"""Regenerate the README's screenshots on demo data: the UI's pages (docs/screenshots/)
and the in-app campaigns in the sample host product (docs/img/).

    .venv/bin/python docs/screenshots.py [--users 2000] [--days 90] [--only ui|inapp]
    .venv/bin/python docs/screenshots.py --only inapp --users 300 --days 30   # about a minute

Generates the demo into a temporary directory, stores a month of segment snapshots
(so sizes have a history), serves it, signs in with Playwright driving Debian's Chromium
(/usr/bin/chromium; `apt-get install chromium`) and saves one PNG per page. The in-app
shots open examples/host (served from another port, as a real product would be) as demo
users the server would show each campaign to: a member of its audience, not held out,
with no campaign of a higher priority due.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PORT = 8790
SEGMENTLY = f"http://127.0.0.1:{PORT}"
HOST_DIR = Path(__file__).resolve().parents[1] / "examples" / "host"
INAPP_VIEWPORT = {"width": 1100, "height": 700}


def cli(db: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "segmently.cli", "--db", str(db), *args],
                          check=True, capture_output=True, text=True).stdout


def prepare(workdir: Path, users: int, days: int) -> tuple[Path, str]:
    """Demo data ending today, a month of daily snapshots; returns (db, secret key)."""
    db, end = workdir / "demo.duckdb", date.today()
    report = json.loads(cli(db, "--json", "demo", "--users", str(users), "--days", str(days),
                            "--end", end.isoformat()))
    secret = next(row["value"] for row in report["demo"] if row["what"] == "secret key")
    cli(db, "--config", str(workdir / "segmently.yaml"), "segments", "refresh", "--as-of",
        end.isoformat(), "--backfill-from", (end - timedelta(days=30)).isoformat(),
        "--every", "2d")
    return db, secret


def serve(db: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SEGMENTLY_REFRESH_SECONDS": "0"}  # the demo applied its vocabulary
    proc = subprocess.Popen([sys.executable, "-m", "segmently.cli", "--db", str(db), "serve",
                             "--port", str(PORT)], env=env)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{PORT}/healthz").status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def shoot(page: Page, path: str, out: Path, ready: str) -> None:
    """The page as first seen (the viewport, not the whole scroll: PNGs stay small)."""
    page.goto(f"http://127.0.0.1:{PORT}{path}")
    page.wait_for_selector(ready)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(out))
    print("wrote", out)


def build_rule(page: Page) -> None:
    """Three conditions in the root group, as a person would click them: a count, a plan
    and a two-step sequence with a time limit."""
    page.goto(f"http://127.0.0.1:{PORT}/ui/builder")
    page.fill("#seg-name", "engaged_growth")
    page.fill("#seg-desc", "Growth-plan users who viewed reports at least 5 times in 30 days "
              "and created a report within 7 days of signing up")
    page.click(".group-head .add-cond")
    cond = page.locator(".cond").nth(0)
    cond.locator("[data-field=event]").fill("report_viewed")
    cond.locator("[data-field=at_least]").fill("5")
    cond.locator("[data-field=window-type]").select_option("last")
    page.click(".group-head .add-cond >> nth=0")
    second = page.locator(".cond").nth(1)
    second.locator("select.kind").select_option("plan")
    page.locator(".cond").nth(1).locator("[data-field=is]").fill("growth")
    page.click(".group-head .add-cond >> nth=0")
    page.locator(".cond").nth(2).locator("select.kind").select_option("sequence")
    steps = page.locator(".cond").nth(2).locator(".step")
    steps.nth(0).locator("[data-field=step-event]").fill("signed_up")
    steps.nth(1).locator("[data-field=step-event]").fill("report_created")
    steps.nth(1).locator("[data-field=step-within]").select_option("days")
    page.locator(".cond").nth(2).locator(".step").nth(1).locator(
        "[data-field=step-within-value]").fill("7")
    # a selector, not wait_for_function: the UI's CSP (no 'unsafe-eval') refuses its string
    page.wait_for_selector("#live-size[data-size]:not([data-size=''])")


def ui(browser: Browser, secret: str, out: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    shoot(page, "/ui/login", out / "login.png", "input[name=secret_key]")
    page.fill("input[name=secret_key]", secret)
    page.click("button[type=submit]")
    shoot(page, "/ui/", out / "overview.png", "#segments tbody tr svg polyline")
    shoot(page, "/ui/segments/power_users", out / "segment.png", "#members tbody tr")
    page.click("#members tbody tr:first-child .why")
    page.wait_for_selector("#why-tree .node")
    page.locator("#why").screenshot(path=str(out / "explain.png"))
    build_rule(page)
    page.screenshot(path=str(out / "builder.png"))
    user = page.evaluate("fetch('/api/segments/power_users/members?limit=1')"
                         ".then(r => r.json()).then(b => b.members[0])")
    shoot(page, f"/ui/users/{user}", out / "user.png", "#timeline tbody tr")
    shoot(page, "/ui/journey", out / "journey.png", "#adoption-chart .main-svg")
    page.close()


# -- in-app ---------------------------------------------------------------------------------
class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def host_product() -> Iterator[str]:
    """examples/host on its own port: another origin than Segmently, as in a product."""
    handler = functools.partial(QuietHandler, directory=str(HOST_DIR))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def first_offered(api: httpx.Client, write_key: str, campaign: str, segment: str,
                  taken: set[str]) -> str:
    """A member of `segment` whose first campaign now is `campaign` (in its audience, not
    held out, nothing of a higher priority due): what the SDK would show them."""
    members = api.get(f"/api/segments/{segment}/members", params={"limit": 500})
    members.raise_for_status()
    for user in members.json()["members"]:
        if user in taken:
            continue
        r = api.get("/v1/campaigns", params={"writeKey": write_key, "userId": user,
                                             "url": "http://acme.example/index.html"})
        r.raise_for_status()
        offered = r.json()["campaigns"]
        if offered and offered[0]["id"] == campaign:
            taken.add(user)
            return user
    raise SystemExit(f"no member of {segment} is offered {campaign} first")


def open_as(browser: Browser, host: str, write_key: str, user: str, campaign: str,
            wait_ms: int = 15_000) -> Page:
    """The host product's dashboard as `user`, once `campaign` is on screen."""
    page = browser.new_context(viewport=INAPP_VIEWPORT).new_page()
    query = urlencode({"host": SEGMENTLY, "writeKey": write_key, "user": user})
    page.goto(f"{host}/index.html?{query}")
    page.wait_for_selector(f"[data-segmently-campaign='{campaign}']", timeout=wait_ms)
    page.mouse.move(INAPP_VIEWPORT["width"] - 5, INAPP_VIEWPORT["height"] - 5)
    page.wait_for_timeout(300)  # fonts and the tour's placement settle
    return page


def inapp(browser: Browser, secret: str, out: Path) -> None:
    """The tour on the Alerts button, the NPS survey, the checklist, the win-back modal,
    then the UI's In-app page with what they did to its counts."""
    api = httpx.Client(base_url=SEGMENTLY, timeout=60,
                       headers={"Authorization": f"Bearer {secret}"})
    write_key = api.get("/api/project").json()["write_key"]
    taken: set[str] = set()
    shots = [("show_alerts", "feature_discovery", "inapp-tour.png"),
             ("nps_quarterly", "regular", "inapp-nps.png"),
             ("onboarding", "stuck_in_onboarding", "inapp-checklist.png"),
             ("win_back", "at_risk", "inapp-modal.png")]
    with host_product() as host:
        for campaign, segment, name in shots:
            user = first_offered(api, write_key, campaign, segment, taken)
            page = open_as(browser, host, write_key, user, campaign)
            if campaign == "nps_quarterly":  # a score picked: its follow-up question
                survey = page.locator("[data-segmently-campaign='nps_quarterly']")
                survey.locator("button[data-score='9']").click()
                survey.locator("textarea").fill("The weekly report saves me an hour.")
            page.screenshot(path=str(out / name))
            print("wrote", out / name, "as", user)
            page.context.close()
    # Every member of an audience opens a page once (what the SDK asks on every page), so
    # the arms have their real shares; "Saw it" counts the users the shots above showed.
    audiences = {s for c in api.get("/api/campaigns").json()["campaigns"]
                 for s in c["audience"]["in"]}
    for segment in sorted(audiences):
        for user in api.get(f"/api/segments/{segment}/members",
                            params={"limit": 5000}).json()["members"]:
            api.get("/v1/campaigns", params={"writeKey": write_key, "userId": user})
    time.sleep(1.5)  # the arms are written by a background flush, every second
    page = browser.new_context(viewport=INAPP_VIEWPORT).new_page()
    page.goto(f"{SEGMENTLY}/ui/login")
    page.fill("input[name=secret_key]", secret)
    page.click("button[type=submit]")
    page.wait_for_url(f"{SEGMENTLY}/ui/")
    shoot(page, "/ui/campaigns", out / "ui-campaigns.png", "#campaigns tbody tr")
    page.context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "screenshots")
    parser.add_argument("--img", type=Path, default=Path(__file__).parent / "img",
                        help="where the in-app shots go")
    parser.add_argument("--only", choices=["ui", "inapp"], help="only these shots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    args.img.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db, secret = prepare(Path(tmp), args.users, args.days)
        server = serve(db)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                if args.only != "inapp":
                    ui(browser, secret, args.out)
                if args.only != "ui":  # after the UI's: what it shows adds events
                    inapp(browser, secret, args.img)
                browser.close()
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
