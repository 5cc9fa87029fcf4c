"""Fixtures of the UI tests (imported by them: one conftest.py per suite keeps pytest's
module names unique). The UI under test: a real `segmently serve` over a small hand-made
product, and Debian's Chromium driven headless by Playwright.

The dataset (PEOPLE below) is small enough to check every expectation by hand. Chromium
comes from the Debian package (`make test` installs it when missing, as root); without it
the browser tests skip with a message, except under CI (CI=true), where they fail.
Failing browser tests leave a screenshot in test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conftest import start_server  # and the session's one `browser` fixture
from segmently.core import Project
from segmently.segments.workspace import parse_workspace
from segmently.store import Store, utcnow
from segmently.store.projects import create_project

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

WORKSPACE = """\
features:
- name: reports
  events: [{event: report_viewed}]
- name: invites
  events: [{event: teammate_invited}]
milestones:
- name: signed_up
  events: [{event: signed_up}]
- name: first_report
  events: [{event: report_viewed}]
- name: invited
  events: [{event: teammate_invited}]
"""

# user -> (plan trait or None, account or None, days ago of each report_viewed,
#          signed up?, invited a teammate?)
PEOPLE = {
    "u1": ("growth", "acc_a", [1, 2, 3], True, True),
    "u2": ("growth", "acc_a", [5], True, False),
    "u3": ("starter", "acc_b", [1, 2, 3, 4], True, False),
    "u4": ("growth", None, [6, 40], True, False),  # one view outside a 30-day window
    "u5": (None, None, [1, 2, 3, 4, 5], False, False),
}
# By hand: report_viewed >= 2 times in the last 30 days AND plan is growth -> u1 only
# (u2 once, u4 once within 30 days, u3 starter, u5 no plan).


def dataset(now: datetime) -> list[dict[str, object]]:
    """The native events of PEOPLE; identify, group and signed_up 50 days ago, invites 12
    hours ago."""
    at = lambda days: (now - timedelta(days=days)).isoformat() + "Z"  # noqa: E731
    events: list[dict[str, object]] = []
    for user, (plan, account, views, signed_up, invited) in PEOPLE.items():
        if plan:
            events.append({"type": "identify", "user_id": user, "traits": {"plan": plan},
                           "timestamp": at(50)})
        if account:
            events.append({"type": "group", "user_id": user, "account_id": account,
                           "traits": {"name": account}, "timestamp": at(50)})
        if signed_up:
            events.append({"event": "signed_up", "user_id": user, "timestamp": at(50)})
        events += [{"event": "report_viewed", "user_id": user, "timestamp": at(d),
                    "properties": {"report": f"r{d}"}} for d in views]
        if invited:
            events.append({"event": "teammate_invited", "user_id": user, "timestamp": at(0.5)})
    return events


@dataclass
class UiServer:
    url: str
    db: str
    write_key: str
    secret_key: str
    other_secret_key: str  # a second project's key: it must see none of the first's data
    sent: int  # events stored in the first project


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    tmp = tmp_path_factory.mktemp("ui")
    db = f"duckdb://{tmp / 'ui.duckdb'}"
    with Store(db) as s:
        mine, other = create_project(s, "shop"), create_project(s, "other")
        Project(s, mine.project.project_id).apply(parse_workspace(WORKSPACE))
    proc, url = start_server(db, tmp / "server.log", env={
        "SEGMENTLY_REFRESH_SECONDS": "0"})
    try:
        events = dataset(utcnow())
        for key, batch in ((mine.project.write_key, events),
                           (other.project.write_key, [{"event": "other_only", "user_id": "x1"}])):
            r = httpx.post(f"{url}/v1/events", json={"events": batch},
                           headers={"Authorization": f"Bearer {key}"}, timeout=30)
            assert r.status_code == 200, r.text
        yield UiServer(url, db, mine.project.write_key, mine.secret_key, other.secret_key,
                       len(events))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def api(server: UiServer, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, server.url + path, timeout=60,
                         headers={"Authorization": f"Bearer {server.secret_key}"}, **kwargs)


@pytest.fixture
def page(browser, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """A fresh browser context (no cookies); a screenshot is kept when the test fails."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    failed_before = request.session.testsfailed
    yield pg
    if request.session.testsfailed > failed_before:  # the call phase is reported by now
        ARTIFACTS.mkdir(exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
