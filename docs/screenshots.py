"""Regenerate the README's UI screenshots (docs/screenshots/*.png) on demo data.

    .venv/bin/python docs/screenshots.py [--users 2000] [--days 90] [--out docs/screenshots]

Generates the demo into a temporary directory, stores a month of segment snapshots
(so sizes have a history), serves it, signs in with Playwright driving Debian's Chromium
(/usr/bin/chromium; `apt-get install chromium`) and saves one PNG per page.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PORT = 8790


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
    page.wait_for_function("document.getElementById('live-size').dataset.size")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db, secret = prepare(Path(tmp), args.users, args.days)
        server = serve(db)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                shoot(page, "/ui/login", args.out / "login.png", "input[name=secret_key]")
                page.fill("input[name=secret_key]", secret)
                page.click("button[type=submit]")
                shoot(page, "/ui/", args.out / "overview.png", "#segments tbody tr svg polyline")
                shoot(page, "/ui/segments/power_users", args.out / "segment.png",
                      "#members tbody tr")
                page.click("#members tbody tr:first-child .why")
                page.wait_for_selector("#why-tree .node")
                page.locator("#why").screenshot(path=str(args.out / "explain.png"))
                build_rule(page)
                page.screenshot(path=str(args.out / "builder.png"))
                user = page.evaluate("fetch('/api/segments/power_users/members?limit=1')"
                                     ".then(r => r.json()).then(b => b.members[0])")
                shoot(page, f"/ui/users/{user}", args.out / "user.png", "#timeline tbody tr")
                shoot(page, "/ui/journey", args.out / "journey.png",
                      "#adoption-chart .main-svg")
                browser.close()
        finally:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
