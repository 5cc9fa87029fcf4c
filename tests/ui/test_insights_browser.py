"""End to end in Debian's Chromium: every insight page (/ui/insights/<name>) over a small
demo (300 users, 60 days, weekly snapshots backfilled, as `make demo` does), served for
real by one `segmently serve` for the module.

Each page is opened signed in and drawn (its plotly charts and its tables) without a
console error or an uncaught script error (a favicon 404 aside); one number it shows
equals the API's answer for the same parameters (those of the request the page sent),
and, where that is cheap, a count made independently with plain duckdb over a copy of
the database taken before the server opened it. Changing a control redraws with the new
parameters, in the request and in the address. The friction page's "Save stuck users as
a segment" and the feature lift page's "Save as segment" write segments GET /api/segments
lists, and the index lists every analysis of the registry and links those with a page.

Text from data as HTML: no insight page shows a segment's description (the names they
show are limited to letters, digits, space, `_ . -` by segments/definitions.NAME_RE), so
that check is left to the segment page's tests; an event name with markup, which the
friction page shows in its table, headings and chart, is checked as text instead."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import duckdb
import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Dialog, Page, Request, Response, expect
from typer.testing import CliRunner
from uikit import page  # noqa: F401 - the fixture (a fresh context, a screenshot on failure)

from conftest import start_server
from segmently.cli import app
from segmently.store import utcnow

PAGES = ["campaign_results", "segment_flow", "retention", "stickiness", "friction",
         "feature_lift"]
ACTIVE = "type IN ('track', 'page', 'screen')"  # activity: docs/insights/retention.md
MARKUP = "<img src=x onerror=alert(1)>"


@dataclass
class Demo:
    url: str
    secret_key: str
    copy: Path  # the database as generated, for plain duckdb (the server holds the file)

    def api(self, path: str, params: dict[str, str] | None = None) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=60,
                      headers={"Authorization": f"Bearer {self.secret_key}"})
        assert r.status_code == 200, r.text
        return r.json()

    def sql(self, query: str, args: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with duckdb.connect(str(self.copy), read_only=True) as con:
            return con.execute(query, args or []).fetchall()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    tmp = tmp_path_factory.mktemp("insights")
    db = tmp / "demo.duckdb"
    runner = CliRunner()
    made = runner.invoke(app, ["--db", str(db), "--json", "demo", "--users", "300",
                               "--days", "60"])
    assert made.exit_code == 0, made.output
    key = re.search(r'"(sk_[A-Za-z0-9_\-]+)"', made.output)
    assert key is not None, made.output
    start = (utcnow() - timedelta(days=60)).strftime("%Y-%m-%d")
    done = runner.invoke(app, ["--db", str(db), "--json", "segments", "refresh",
                               "--backfill-from", start, "--every", "7d"])
    assert done.exit_code == 0, done.output
    copy = tmp / "copy.duckdb"
    shutil.copy(db, copy)
    if db.with_name(db.name + ".wal").exists():
        shutil.copy(db.with_name(db.name + ".wal"), copy.with_name(copy.name + ".wal"))
    # no background refresh: the data stays what the copy holds while the tests run
    proc, url = start_server(f"duckdb://{db}", tmp / "server.log",
                             env={"SEGMENTLY_REFRESH_SECONDS": "0"})
    try:
        yield Demo(url, key.group(1), copy)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@dataclass
class Watch:
    """What went wrong in the page: console errors (a favicon 404 aside), uncaught
    exceptions, dialogs (none of these pages opens one)."""

    problems: list[str] = field(default_factory=list)

    def console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            self.problems.append(f"console: {msg.text} ({msg.location.get('url')})")

    def dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def check(self) -> None:
        assert self.problems == []


def sign_in(page: Page, demo: Demo, path: str) -> Watch:  # noqa: F811
    watch = Watch()
    page.on("console", watch.console)
    page.on("pageerror", lambda exc: watch.problems.append(f"pageerror: {exc}"))
    page.on("dialog", watch.dialog)
    page.goto(demo.url + path)
    page.fill("input[name=secret_key]", demo.secret_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(demo.url + path) + r"(\?.*)?$"))
    return watch


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


def num(n: int) -> str:
    return f"{n:,}"  # UI.num: en-US grouping


def drawn(page: Page, *charts: str) -> None:  # noqa: F811
    for chart in charts:
        expect(page.locator(f"#{chart}.js-plotly-plot .main-svg").first).to_be_visible()


def traces(page: Page, chart: str) -> list[dict[str, Any]]:  # noqa: F811
    return page.evaluate("id => document.getElementById(id).data.map(t => "
                         "({name: t.name, x: t.x, y: t.y}))", chart)


def answer_to(api_path: str, **want: str) -> Callable[[Response], bool]:
    """Whether a response answers a request to `api_path` with the parameters `want`."""
    def answers(r: Response) -> bool:
        asked = query(r.url)
        return urlsplit(r.url).path == api_path and all(asked.get(k) == v
                                                        for k, v in want.items())
    return answers


def submit(page: Page, form: str, api_path: str, **want: str) -> dict[str, str]:  # noqa: F811
    """Submit `form`, wait for the page's answered request to `api_path` carrying the
    parameters `want` (what the test just chose: a late answer to one of the page's earlier
    requests must not be taken for the form's; none carrying them fails by timeout); all
    its parameters."""
    with page.expect_response(answer_to(api_path, **want)) as got:
        page.click(f"#{form} button[type=submit]")
    assert got.value.ok, got.value.text()
    return query(got.value.url)


def open_signed_in(page: Page, demo: Demo, name: str, api_path: str  # noqa: F811
                   ) -> tuple[Watch, dict[str, str]]:
    """Sign in on the page of the analysis `name`; what went wrong there, and the
    parameters of its first request to `api_path`."""
    with page.expect_request(lambda r: urlsplit(r.url).path == api_path) as got:
        watch = sign_in(page, demo, f"/ui/insights/{name}")
    request: Request = got.value
    return watch, query(request.url)


# -- the index ----------------------------------------------------------------------------
def test_index_links_every_analysis_with_a_page(page: Page, demo_server: Demo) -> None:  # noqa: F811
    watch = sign_in(page, demo_server, "/ui/insights")
    listed = demo_server.api("/api/insights")["insights"]
    rows = page.locator("#insights tbody tr[data-insight]")
    expect(rows).to_have_count(len(listed))
    assert [rows.nth(i).get_attribute("data-insight") for i in range(len(listed))] == \
        [a["name"] for a in listed]
    with_page = [a["name"] for a in listed if a["page"]]
    assert sorted(with_page) == sorted(PAGES), "a new page? give it a test here"
    links = page.locator("#insights tbody a")
    expect(links).to_have_count(len(with_page))
    hrefs = {links.nth(i).inner_text(): links.nth(i).get_attribute("href")
             for i in range(len(with_page))}
    assert hrefs == {name: f"/ui/insights/{name}" for name in with_page}
    for name, href in hrefs.items():  # each link opens its page
        r = page.request.get(demo_server.url + href)
        assert r.ok and f'data-page="{name}"' in r.text(), name
    for name in (a["name"] for a in listed if not a["page"]):  # no link, no page
        assert page.request.get(f"{demo_server.url}/ui/insights/{name}").status == 404
    page.locator("#insights tr[data-insight=retention] a").click()
    expect(page).to_have_url(re.compile(re.escape(demo_server.url) +
                                        r"/ui/insights/retention\?"))
    drawn(page, "curves-chart")
    watch.check()


# -- campaign results ---------------------------------------------------------------------
def arms_shown(page: Page) -> dict[str, str]:  # noqa: F811
    return {arm: page.locator(f"#arms tr[data-arm={arm}] .assigned").inner_text()
            for arm in ("treatment", "holdout")}


def test_campaign_results(page: Page, demo_server: Demo) -> None:  # noqa: F811
    path = "/api/insights/campaign_results"
    watch, asked = open_signed_in(page, demo_server, "campaign_results", path)
    assert asked["campaign"] == "show_alerts"  # the campaign with a goal and users
    expect(page.locator("#arms tbody tr")).to_have_count(2)
    drawn(page, "lift-chart", "daily-chart")
    expect(page.locator("#secondary tbody tr")).to_have_count(3)
    r = demo_server.api(path, asked)
    arms = {a["arm"]: a["assigned"] for a in r["arms"]}
    expect(page.locator("#arms tr[data-arm=treatment] .assigned")).to_have_text(
        num(arms["treatment"]))
    expect(page.locator("#arms tr[data-arm=holdout] .assigned")).to_have_text(
        num(arms["holdout"]))
    # the same users counted by the campaigns list, and in the assignments table itself
    listed = next(c for c in demo_server.api("/api/campaigns")["campaigns"]
                  if c["name"] == "show_alerts")
    assert (listed["assigned"], listed["held_out"]) == (arms["treatment"], arms["holdout"])
    counted = dict(demo_server.sql(
        "SELECT arm, count(DISTINCT user_id) FROM campaign_assignments "
        "WHERE campaign = 'show_alerts' GROUP BY arm"))
    assert counted == arms and arms["treatment"] > 0 and arms["holdout"] > 0

    # as of two weeks ago: fewer users, in the request, the address and the table
    day = (utcnow() - timedelta(days=14)).strftime("%Y-%m-%d")
    page.fill("#as-of", day)
    asked = submit(page, "results-controls", path, as_of=f"{day}T00:00:00")
    assert query(page.url)["as_of"] == asked["as_of"]
    earlier = {a["arm"]: a["assigned"] for a in demo_server.api(path, asked)["arms"]}
    expect(page.locator("#arms tr[data-arm=treatment] .assigned")).to_have_text(
        num(earlier["treatment"]))
    assert arms_shown(page) == {arm: num(n) for arm, n in earlier.items()}
    assert dict(demo_server.sql(
        "SELECT arm, count(DISTINCT user_id) FROM campaign_assignments "
        "WHERE campaign = 'show_alerts' AND assigned_at < ?::TIMESTAMP GROUP BY arm",
        [asked["as_of"]])) == earlier
    assert earlier["treatment"] < arms["treatment"]
    watch.check()


# -- segment flow -------------------------------------------------------------------------
def flow_users(demo: Demo, answer: dict[str, Any]) -> int:
    """The users in one of the segments at one of the boundaries, from the transitions:
    at a boundary, a (segment, user)'s latest transition at or before it is an entry (an
    exit at the same instant wins)."""
    [(n,)] = demo.sql("""
        WITH b AS (SELECT unnest(?::TIMESTAMP[]) AS b),
        t AS (SELECT segment, user_id, kind, as_of FROM segment_transitions
              WHERE segment IN (SELECT unnest(?::VARCHAR[]))),
        latest AS (SELECT user_id, kind, row_number() OVER (PARTITION BY b, segment, user_id
                   ORDER BY as_of DESC, kind = 'exited' DESC) AS rank
                   FROM b JOIN t ON t.as_of <= b.b)
        SELECT count(DISTINCT user_id) FROM latest WHERE rank = 1 AND kind = 'entered'""",
        [[b["at"] for b in answer["boundaries"]], answer["segments"]])
    return int(n)


def test_segment_flow(page: Page, demo_server: Demo) -> None:  # noqa: F811
    path = "/api/insights/segment_flow"
    watch, asked = open_signed_in(page, demo_server, "segment_flow", path)
    assert asked["segments"] == "power_users,regular,occasional,dormant"  # the tiers
    drawn(page, "sankey-chart", "matrix-chart", "time-chart", "survival-chart")
    expect(page.locator("#time-table tbody tr")).to_have_count(4)
    expect(page.locator("#next-table tbody tr").first).to_be_visible()
    f = demo_server.api(path, asked)
    summary = page.locator("#flow-summary")
    expect(summary).to_contain_text(f"{num(f['users'])} users were in power_users, regular, "
                                    f"occasional, dormant at one of the "
                                    f"{len(f['boundaries'])} boundaries")
    assert f["users"] == flow_users(demo_server, f) > 100

    # by month, two steps: the request, the address and the summary follow
    page.select_option("#period", "month")
    page.fill("#periods", "2")
    asked = submit(page, "flow-controls", path, period="month", periods="2")
    assert {k: query(page.url)[k] for k in asked} == asked
    monthly = demo_server.api(path, asked)
    expect(summary).to_contain_text(f"{num(monthly['users'])} users were in")
    expect(summary).to_contain_text("at one of the 3 boundaries")
    assert monthly["users"] == flow_users(demo_server, monthly)
    expect(page.locator("#step option")).to_have_count(3)  # all, and one per step

    # what entrants did next: its controls too are kept in the address
    page.select_option("#next-segment", "regular")
    page.fill("#within", "7")
    nxt = submit(page, "next-controls", "/api/insights/segment_next", segment="regular",
                 within_days="7")
    assert nxt["period"] == "month"  # the flow's period, chosen above
    entrants = demo_server.api("/api/insights/segment_next", nxt)["entrants"]
    expect(page.locator("#next-summary")).to_contain_text(f"{num(entrants)} users entered "
                                                          "regular")
    assert (query(page.url)["next"], query(page.url)["within"]) == ("regular", "7")
    page.reload()
    expect(page.locator("#next-summary")).to_contain_text(f"{num(entrants)} users entered "
                                                          "regular")
    assert page.input_value("#period") == "month" and page.input_value("#within") == "7"
    watch.check()


# -- retention ----------------------------------------------------------------------------
def first_cohort(page: Page) -> str:  # noqa: F811
    return page.locator("#cohorts-table tbody tr").first.locator("td").nth(1).inner_text()


def test_retention(page: Page, demo_server: Demo) -> None:  # noqa: F811
    path = "/api/insights/retention"
    watch, asked = open_signed_in(page, demo_server, "retention", path)
    assert asked["period"] == "week"
    drawn(page, "curves-chart", "cohort-chart")
    r = demo_server.api(path, asked)
    everyone = r["groups"][0]
    expect(page.locator("#cohorts-table tbody tr")).to_have_count(len(everyone["cohorts"]))
    first = everyone["cohorts"][0]
    expect(page.locator("#cohorts-table tbody tr").first.locator("td").nth(1)).to_have_text(
        num(first["size"]))
    # the first cohort: the users whose first active day is in its week
    [(size,)] = demo_server.sql(
        f"SELECT count(*) FROM (SELECT coalesce(user_id, anonymous_id), "
        f"min(timestamp)::DATE AS day FROM events WHERE {ACTIVE} GROUP BY 1) "
        f"WHERE day >= ?::TIMESTAMP AND day < ?::TIMESTAMP + INTERVAL 7 DAY",
        [first["start"], first["start"]])
    assert size == first["size"] > 0

    # by day: the request, the address, the columns and the first cohort follow
    page.select_option("#period", "day")
    asked = submit(page, "retention-controls", path, period="day")
    assert query(page.url)["period"] == "day"
    daily = demo_server.api(path, asked)["groups"][0]["cohorts"]
    expect(page.locator("#cohorts-table thead th").nth(2)).to_have_text("day 0")
    expect(page.locator("#cohorts-table tbody tr").first.locator("td").first).to_have_text(
        daily[0]["start"][:10])
    assert first_cohort(page) == num(daily[0]["size"])

    # a segment beside everyone: its curve, and its cohorts in the table when chosen
    page.select_option("#segments", ["power_users"])
    asked = submit(page, "retention-controls", path, segments="power_users")
    assert query(page.url)["segments"] == "power_users"
    groups = demo_server.api(path, asked)["groups"]
    expect(page.locator("#group option")).to_have_text(["(all users)", "power_users"])
    page.wait_for_function("() => document.getElementById('curves-chart').data.length === 2")
    assert [t["name"] for t in traces(page, "curves-chart")] == ["(all users)", "power_users"]
    page.select_option("#group", "power_users")
    expect(page.locator("#cohorts-table tbody tr").first.locator("td").nth(1)).to_have_text(
        num(groups[1]["cohorts"][0]["size"]))
    watch.check()


# -- stickiness ---------------------------------------------------------------------------
def test_stickiness(page: Page, demo_server: Demo) -> None:  # noqa: F811
    path = "/api/insights/stickiness"
    watch, asked = open_signed_in(page, demo_server, "stickiness", path)
    charts = ["active-chart", "ratio-chart", "days-chart", "adoption-chart",
              "feature-stickiness-chart", "feature-weekly-chart", "lifecycle-chart"]
    drawn(page, *charts)
    expect(page.locator(".js-plotly-plot")).to_have_count(len(charts))
    s = demo_server.api(path, asked)
    dau = next(t for t in traces(page, "active-chart") if t["name"] == "DAU")
    last_day = s["days"][-1][:10]
    assert (dau["x"][-1], dau["y"][-1]) == (last_day, s["groups"][0]["dau"][-1])
    # the users with activity that day (yesterday: today is incomplete, left out)
    [(active,)] = demo_server.sql(
        f"SELECT count(DISTINCT coalesce(user_id, anonymous_id)) FROM events "
        f"WHERE {ACTIVE} AND timestamp::DATE = ?::DATE", [last_day])
    assert active == dau["y"][-1] > 0
    assert len(dau["x"]) == 30

    # 14 days and one segment: both reach the three requests and the address
    page.fill("#days", "14")
    page.select_option("#segments", ["power_users"])
    with page.expect_response(answer_to("/api/insights/lifecycle", segments="power_users")):
        asked = submit(page, "stickiness-controls", path, days="14", segments="power_users")
    assert {k: query(page.url)[k] for k in asked} == asked
    expect(page.locator("#group option")).to_have_text(["(all users)", "power_users"])
    page.wait_for_function("() => document.getElementById('active-chart').data[0].x.length "
                           "=== 14")
    s = demo_server.api(path, asked)
    page.select_option("#group", "power_users")
    expect(page.locator(".group-name").first).to_have_text("power_users")
    power = next(g for g in s["groups"] if g["name"] == "power_users")
    dau = next(t for t in traces(page, "active-chart") if t["name"] == "DAU")
    assert dau["y"] == power["dau"]
    watch.check()


# -- friction -----------------------------------------------------------------------------
def test_friction(page: Page, demo_server: Demo) -> None:  # noqa: F811
    path = "/api/insights/friction"
    watch, asked = open_signed_in(page, demo_server, "friction", path)
    steps = asked["steps"].split(",")
    assert steps[0] == "signed_up" and len(steps) >= 3  # the journey's milestones
    drawn(page, "funnel-chart", "time-chart")
    rows = page.locator("#friction-steps tbody tr")
    expect(rows).to_have_count(len(steps))
    f = demo_server.api(path, asked)
    everyone = f["funnels"][0]["steps"]
    expect(page.locator("#friction-steps tr[data-step='1'] .users")).to_have_text(
        num(everyone[0]["users"]))
    expect(page.locator("#instead .seg-block")).to_have_count(len(steps) - 1)
    # step 1: the users with a signed_up event in the range (the demo merges no one)
    [(users,)] = demo_server.sql(
        "SELECT count(DISTINCT coalesce(user_id, anonymous_id)) FROM events "
        "WHERE event = ? AND timestamp >= ?::TIMESTAMP AND timestamp < ?::TIMESTAMP",
        [steps[0], f["start"], f["end"]])
    assert users == everyone[0]["users"] > 0

    # the users stuck at step 2, saved as a segment
    stuck = everyone[1]
    assert stuck["stuck"] > 0
    row = page.locator("#friction-steps tr[data-step='2']")
    row.locator(".save-stuck").click()
    row.locator(".segment-name").fill("stuck_at_step_2")
    row.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#save-result")).to_contain_text("Saved stuck_at_step_2")
    assert "stuck_at_step_2" in [s["name"] for s in demo_server.api("/api/segments")["segments"]]
    saved = demo_server.api("/api/segments/stuck_at_step_2")
    assert saved["description"] == stuck["stuck_description"]
    assert json.dumps(saved["rule"]).count('"sequence"') == \
        json.dumps(stuck["stuck_rule"]).count('"sequence"') == 2

    # a funnel per segment: the request, the address, the chart and the table's groups
    page.select_option("#segments", ["power_users", "regular"])
    asked = submit(page, "friction-controls", path, segments="power_users,regular")
    assert query(page.url)["segments"] == "power_users,regular"
    expect(page.locator("#funnel-group option")).to_have_text(["power_users", "regular"])
    page.wait_for_function("() => document.getElementById('funnel-chart').data.length === 2")
    by = demo_server.api(path, asked)["funnels"]
    page.select_option("#funnel-group", "regular")
    expect(page.locator("#friction-steps tr[data-step='1'] .users")).to_have_text(
        num(by[1]["steps"][0]["users"]))

    # an event name with markup is text in the table and headings, never an element
    page.goto(demo_server.url + "/ui/insights/friction?steps=signed_up," +
              MARKUP.replace(" ", "%20"))
    expect(page.locator("#friction-steps tr[data-step='2'] td").nth(1)).to_have_text(MARKUP)
    expect(page.locator("#instead h3").first).to_contain_text(f"not {MARKUP}")
    drawn(page, "funnel-chart")
    expect(page.locator("main img")).to_have_count(0)
    watch.check()


# -- feature lift -------------------------------------------------------------------------
def test_feature_lift(page: Page, demo_server: Demo) -> None:  # noqa: F811
    path = "/api/insights/discovery_rule"
    watch, asked = open_signed_in(page, demo_server, "feature_lift", path)
    assert asked["outcome"] == "retained_d30"
    drawn(page, "forest-chart")
    lift = demo_server.api("/api/insights/feature_lift", asked)
    rows = page.locator("#lift-table tbody tr")
    expect(rows).to_have_count(len(lift["features"]))
    assert rows.first.get_attribute("data-feature") == lift["features"][0]["feature"]
    expect(rows.first.locator("td").first).to_have_text(lift["features"][0]["feature"])
    expect(page.locator("#lift-summary")).to_contain_text(
        f"{num(lift['positives'])} of {num(lift['population'])} users")

    # the discovery's segment, then its campaign, saved from the page
    d = demo_server.api(path, asked)
    assert d["found"], d["reason"]
    expect(page.locator("#discovery-text")).to_contain_text(f"{num(d['segment']['size'])} users")
    page.click("#save-discovery")
    expect(page.locator("#discovery-result")).to_contain_text(f"Saved {d['segment']['name']}")
    saved = demo_server.api("/api/segments/" + d["segment"]["name"])
    assert saved["description"] == d["segment"]["description"]
    assert d["segment"]["name"] in [s["name"] for s in
                                    demo_server.api("/api/segments")["segments"]]
    expect(page.locator("#add-campaign")).to_be_enabled()
    page.click("#add-campaign")
    expect(page.locator("#discovery-result")).to_contain_text(f"Campaign {d['campaign']['name']}")
    assert d["campaign"]["name"] in [c["name"] for c in
                                     demo_server.api("/api/campaigns")["campaigns"]]

    # a segment as the outcome, usage ever: the members' card appears
    page.select_option("#outcome", "segment")
    page.select_option("#segment", "power_users")
    page.fill("#days", "0")
    with page.expect_response(answer_to("/api/insights/segment_features",
                                        segment="power_users")):
        asked = submit(page, "lift-controls", path, outcome="segment", segment="power_users",
                       days="0")
    assert {k: query(page.url)[k] for k in asked} == asked
    lift = demo_server.api("/api/insights/feature_lift", asked)
    expect(page.locator("#lift-summary")).to_contain_text("in segment power_users")
    expect(rows.first).to_have_attribute("data-feature", lift["features"][0]["feature"])
    expect(page.locator("#members-card")).to_be_visible()
    drawn(page, "ratio-chart")
    watch.check()
