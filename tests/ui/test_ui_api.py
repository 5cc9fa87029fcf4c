"""The read routes the UI pages call, against expectations worked out by hand from the
dataset in uikit.PEOPLE (a real server, real DuckDB)."""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime, timedelta
from urllib.parse import quote

import httpx
import pytest
from uikit import PEOPLE, UiServer, api, ui_server  # noqa: F401 - fixture

VIEWERS = {"kind": "performed", "event": "report_viewed", "window": {"last": 30}}
BUILT = {"all": [{"kind": "performed", "event": "report_viewed", "at_least": 2,
                  "window": {"last": 30}}, {"kind": "plan", "is": "growth"}]}


@pytest.fixture(scope="module")
def saved(ui_server: UiServer) -> UiServer:  # noqa: F811
    """`viewers` saved and refreshed once (every one of the five viewed within 30 days)."""
    r = api(ui_server, "POST", "/api/segments", json={"name": "viewers", "rule": VIEWERS})
    assert r.status_code == 201, r.text
    assert api(ui_server, "POST", "/api/refresh").status_code == 200
    return ui_server


def _active_by_day(now: datetime) -> list[dict]:
    by_day: dict[date, set[str]] = {}  # track events only: views, sign-ups, invites
    for user, (_, _, views, signed_up, invited) in PEOPLE.items():
        days = [*views, *([50] if signed_up else []), *([0.5] if invited else [])]
        for d in days:  # the fixture sent them moments before `now`
            by_day.setdefault((now - timedelta(days=d)).date(), set()).add(user)
    return [{"day": d.isoformat(), "users": len(u)} for d, u in sorted(by_day.items())]


def test_overview_counts_and_daily_active_users(ui_server: UiServer) -> None:  # noqa: F811
    o = api(ui_server, "GET", "/api/overview?days=90").json()  # never refreshed: live
    assert (o["users"], o["accounts"], o["events"]) == (5, 2, ui_server.sent)
    assert o["active_users"] == _active_by_day(datetime.fromisoformat(o["as_of"]))


def test_catalog_offers_what_the_project_has_seen(ui_server: UiServer) -> None:  # noqa: F811
    c = api(ui_server, "GET", "/api/catalog").json()
    assert {e["name"]: e["count"] for e in c["events"]} == {
        "report_viewed": 15, "signed_up": 4, "$identify": 4, "$group": 3,
        "teammate_invited": 1}
    assert c["traits"] == ["plan"]
    assert (c["features"], c["milestones"]) == (["reports", "invites"],
                                                ["signed_up", "first_report", "invited"])
    forms = {f["kind"]: {x["name"]: x for x in f["fields"]} for f in c["forms"]}
    assert forms["performed"]["event"]["widget"] == "event"
    assert forms["performed"]["at_least"]["widget"] == "int"
    assert forms["active"]["unit"]["options"] == ["day", "week"]
    assert forms["account"]["rule"]["widget"] == "rule"
    props = api(ui_server, "GET", "/api/catalog/properties?event=report_viewed").json()
    assert props["properties"] == ["report"]
    plans = api(ui_server, "GET", "/api/catalog/trait-values?trait=plan").json()["values"]
    assert plans == [{"value": "growth", "users": 3}, {"value": "starter", "users": 1}]


def test_adoption_before_any_segment_is_saved(ui_server: UiServer) -> None:  # noqa: F811
    """A new project's journey page: only the all-users row (every one of the five viewed
    a report, u1 alone invited). This answered 500 on DuckDB 1.5 (a bloom filter pushed
    into the scan of an empty in-memory members table)."""
    a = api(ui_server, "GET", "/api/insights/adoption").json()
    assert [(g["name"], g["size"], g["used"]) for g in a["groups"]] == [
        ("(all users)", 5, {"reports": 5, "invites": 1})]


def test_preview_counts_an_unsaved_rule_and_explains_errors(ui_server: UiServer  # noqa: F811
                                                            ) -> None:
    p = api(ui_server, "POST", "/api/rules/preview", json={"rule": BUILT}).json()
    assert (p["valid"], p["size"], p["error"]) == (True, 1, None)  # u1 only
    assert p["yaml"] == ("all:\n- kind: performed\n  event: report_viewed\n  at_least: 2\n"
                         "  window:\n    last: 30\n- kind: plan\n  is: growth\n")
    bad = {"any": [VIEWERS, {"kind": "performed", "event": "x", "at_least": -1}]}
    p = api(ui_server, "POST", "/api/rules/preview", json={"rule": bad}).json()
    assert (p["valid"], p["size"]) == (False, None)
    assert p["error"].startswith("rule.any[1].at_least: ")
    assert "kind: performed" in p["yaml"]  # the YAML of what was written, still shown


def test_preview_counts_each_condition_alone(ui_server: UiServer) -> None:  # noqa: F811
    """By hand (PEOPLE): two or more views in 30 days: u1, u3, u5; growth: u1, u2, u4;
    both: u1; not growth: u3, u5 (u5 has no plan); viewed in 30 days: all five."""
    rule = {"any": [BUILT, {"not": {"kind": "plan", "is": "growth"}}]}
    p = api(ui_server, "POST", "/api/rules/preview", json={"rule": rule}).json()
    assert (p["valid"], p["size"]) == (True, 3)  # u1 or not growth: u1, u3, u5
    assert p["parts"] == {"rule.any[0]": 1, "rule.any[0].all[0]": 3,
                          "rule.any[0].all[1]": 3, "rule.any[1]": 2, "rule.any[1].not": 3}


def _ids(page: dict) -> list[str]:
    return [m["user_id"] for m in page["members"]]


def test_member_table_sorts_searches_and_pages_in_the_engine(saved: UiServer) -> None:
    # events in the 30-day window (track only): u5 5 views; u1 3 views + 1 invite;
    # u3 4 views; u2 1; u4 1 (its other view is 40 days old). Ties go by user id.
    t = api(saved, "GET", "/api/segments/viewers/table?sort=events_window&desc=true").json()
    assert _ids(t) == ["u5", "u1", "u3", "u2", "u4"] and t["total"] == 5
    assert t["metrics_as_of"] == t["as_of"]  # the first run of the project: computed now
    assert [m["events_window"] for m in t["members"]] == [5, 4, 4, 1, 1]
    assert [m["plan"] for m in t["members"]] == [None, "growth", "starter", "growth", "growth"]
    page = api(saved, "GET", "/api/segments/viewers/table?sort=events_window&desc=true"
               "&offset=2&limit=2").json()
    assert _ids(page) == ["u3", "u2"] and page["total"] == 5
    found = api(saved, "GET", "/api/segments/viewers/table?q=U3").json()
    assert _ids(found) == ["u3"] and found["total"] == 1
    bad = api(saved, "GET", "/api/segments/viewers/table?sort=password")
    assert bad.status_code == 400 and "sort" in bad.json()["message"]


def test_overview_after_a_refresh_reads_its_profile_run(saved: UiServer) -> None:
    table = api(saved, "GET", "/api/segments/viewers/table").json()
    o = api(saved, "GET", "/api/overview?days=90").json()
    assert o["as_of"] == table["as_of"]  # the refresh instant
    assert (o["users"], o["accounts"], o["events"]) == (5, 2, saved.sent)
    expected = _active_by_day(now := datetime.fromisoformat(o["as_of"]))
    assert o["active_users"] == expected
    week = api(saved, "GET", "/api/overview?days=7").json()["active_users"]
    first = (now - timedelta(days=7)).date().isoformat()
    assert week == [d for d in expected if d["day"] >= first] and len(week) < len(expected)


def test_breakdowns_and_transitions(saved: UiServer) -> None:
    plan = api(saved, "GET", "/api/segments/viewers/breakdown?by=plan").json()["values"]
    assert {r["value"]: r["users"] for r in plan} == {"growth": 3, "starter": 1, None: 1}
    stage = api(saved, "GET", "/api/segments/viewers/breakdown?by=journey_stage").json()
    # the furthest milestone reached, in any order: u5 never signed up but viewed reports
    assert {r["value"]: r["users"] for r in stage["values"]} == {"invited": 1,
                                                                 "first_report": 4}
    acct = api(saved, "GET", "/api/segments/viewers/breakdown?by=account_id").json()
    assert {r["value"]: r["users"] for r in acct["values"]} == {"acc_a": 2, "acc_b": 1,
                                                                None: 2}
    moves = api(saved, "GET", "/api/segments/viewers/transitions").json()["transitions"]
    assert sorted((m["user_id"], m["kind"]) for m in moves) == [
        (u, "entered") for u in ["u1", "u2", "u3", "u4", "u5"]]


def test_funnel_drop_off_and_stuck_users(ui_server: UiServer) -> None:  # noqa: F811
    steps = api(ui_server, "GET", "/api/insights/funnel").json()["steps"]
    # signed up: u1-u4; + a report: u1-u4 (u5 never signed up); + invited: u1.
    # Stuck before `invited` for over 7 days: u4 (first report 40 days ago); u2 and u3
    # reached first_report 5 and 4 days ago.
    assert [(s["milestone"], s["users"], s["dropped"], s["stuck"]) for s in steps] == [
        ("signed_up", 4, 0, 0), ("first_report", 4, 0, 0), ("invited", 1, 3, 1)]


def test_funnel_of_a_segment_and_adoption_across_segments(saved: UiServer) -> None:
    r = api(saved, "POST", "/api/segments", json={"name": "growth", "rule": {
        "kind": "plan", "is": "growth"}})
    assert r.status_code == 201
    steps = api(saved, "GET", "/api/insights/funnel?segment=growth").json()["steps"]
    assert [s["users"] for s in steps] == [3, 3, 1]  # u1, u2, u4
    a = api(saved, "GET", "/api/insights/adoption?segments=growth,viewers").json()
    assert a["features"] == ["reports", "invites"]
    groups = {g["name"]: (g["size"], g["used"]) for g in a["groups"]}
    assert groups == {"(all users)": (5, {"reports": 5, "invites": 1}),
                      "growth": (3, {"reports": 3, "invites": 1}),  # live: not refreshed
                      "viewers": (5, {"reports": 5, "invites": 1})}  # from its snapshot
    assert api(saved, "DELETE", "/api/segments/growth").status_code == 200


def test_user_traits_and_timeline_pages(ui_server: UiServer) -> None:  # noqa: F811
    assert api(ui_server, "GET", "/api/users/u1/traits").json()["traits"] == {"plan": "growth"}
    first = api(ui_server, "GET", "/api/users/u1/timeline?limit=2").json()["events"]
    assert [e["event"] for e in first] == ["teammate_invited", "report_viewed"]
    assert first[1]["properties"] == {"report": "r1"}
    last = first[-1]
    more = api(ui_server, "GET", "/api/users/u1/timeline", params={
        "limit": 2, "before": last["timestamp"], "before_id": last["message_id"]}).json()
    assert [e["properties"].get("report") for e in more["events"]] == ["r2", "r3"]


def test_export_csv_lists_every_member(saved: UiServer) -> None:
    r = api(saved, "GET", "/api/segments/viewers/export.csv")
    assert r.headers["content-type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(r.text))) == [["user_id"], ["u1"], ["u2"], ["u3"],
                                                     ["u4"], ["u5"]]


def test_product_conditions_saved_from_the_builder_refresh_and_explain(saved: UiServer
                                                                       ) -> None:
    """The builder offers every kind; those reading the workspace vocabulary (features,
    milestones) must refresh and explain on the server too. Only u1 invited a teammate."""
    rule = {"kind": "used_feature", "feature": "invites", "window": {"last": 7}}
    assert api(saved, "POST", "/api/segments", json={"name": "inviters", "rule": rule}
               ).status_code == 201
    done = api(saved, "POST", "/api/refresh").json()["segments"]
    assert {r["name"]: r["size"] for r in done}["inviters"] == 1
    assert api(saved, "GET", "/api/segments/inviters/members").json()["members"] == ["u1"]
    why = api(saved, "GET", "/api/segments/inviters/explain/u1").json()
    assert why["member"] is True
    assert api(saved, "DELETE", "/api/segments/inviters").status_code == 200


def test_one_users_profile_scores_against_every_user(ui_server: UiServer  # noqa: F811
                                                     ) -> None:
    """Engagement (no weights: one point an event in 30 days) is scaled to the most
    engaged user: u5 has 5 points, u1 4 (three views and the invite), so u1 scores 80."""
    u1 = api(ui_server, "GET", "/api/users/u1").json()["metrics"]
    u5 = api(ui_server, "GET", "/api/users/u5").json()["metrics"]
    assert (u1["engagement_points"], u1["engagement_score"]) == (4.0, 80.0)
    assert (u5["engagement_points"], u5["engagement_score"]) == (5.0, 100.0)
    assert (u1["events_window"], u1["plan"], u1["journey_stage"]) == (4, "growth", "invited")


def test_the_user_page_reads_the_latest_refresh(saved: UiServer) -> None:
    """At the refresh instant the member table has stored every profile (and the most
    engaged user's points), so one user's scores come from their own events and read as
    they would beside everyone's: the same 80 as above."""
    deadline = time.monotonic() + 60  # the run of the latest refresh, recorded meanwhile
    while (table := api(saved, "GET", "/api/segments/viewers/table").json()
           )["metrics_as_of"] != table["as_of"]:
        assert time.monotonic() < deadline, "no profile run at the refresh after 60 s"
        time.sleep(0.2)
    u1 = api(saved, "GET", "/api/users/u1/at-refresh").json()
    assert u1["as_of"] == table["as_of"] and "viewers" in u1["segments"]
    m = u1["metrics"]
    assert (m["engagement_points"], m["engagement_score"], m["events_window"]) == (4.0, 80.0, 4)
    assert (m["account_id"], m["plan"], m["journey_stage"]) == ("acc_a", "growth", "invited")
    # three report views and one invite, the last view a day ago, the invite 12 hours ago
    uses = {f["feature"]: f["uses_window"] for f in u1["features"]}
    assert uses == {"reports": 3, "invites": 1}
    assert [(s["milestone"], s["step"]) for s in sorted(u1["milestones"],
                                                       key=lambda s: s["step"])] == [
        ("signed_up", 1), ("first_report", 2), ("invited", 3)]


def test_a_users_explanations_come_in_one_answer(saved: UiServer) -> None:
    """By hand (PEOPLE): u2 viewed once in 30 days, so u2 is a viewer and not `built`
    (at least twice and growth); u1 viewed three times and is both. Without names the
    answer explains the user's segments at the latest refresh (u2: viewers only)."""
    assert api(saved, "POST", "/api/segments", json={"name": "built", "rule": BUILT}
               ).status_code == 201
    try:
        both = api(saved, "GET", "/api/users/u2/explanations?segments=viewers,built").json()
        by_name = {s["segment"]: s for s in both["segments"]}
        assert (by_name["viewers"]["member"], by_name["built"]["member"]) == (True, False)
        views, plan = by_name["built"]["explanation"]["children"]
        assert (views["truth"], views["observed"], plan["truth"]) == (False, {"count": 1},
                                                                       True)
        u1 = api(saved, "GET", "/api/users/u1/explanations?segments=built").json()
        assert u1["segments"][0]["member"] is True
        assert u1["segments"][0]["explanation"]["children"][0]["observed"] == {"count": 3}
        stored = api(saved, "GET", "/api/users/u2/explanations").json()
        assert [s["segment"] for s in stored["segments"]] == ["viewers"]
        assert stored["as_of"] == api(saved, "GET", "/api/segments/viewers/table"
                                      ).json()["as_of"]
        r = api(saved, "GET", "/api/users/u2/explanations?segments=nope")
        assert r.status_code == 404 and "nope" in r.json()["message"]
    finally:
        assert api(saved, "DELETE", "/api/segments/built").status_code == 200


def test_unknown_and_hostile_user_ids_are_404s(saved: UiServer) -> None:
    for user in ("nobody", "u1' OR '1'='1", 'x"); DROP TABLE events; --'):
        r = api(saved, "GET", f"/api/users/{quote(user, safe='')}/at-refresh")
        assert r.status_code == 404 and "no user" in r.json()["message"], (user, r.text)
    assert api(saved, "GET", "/api/overview").json()["events"] == saved.sent  # unharmed


def _counted(server: UiServer, name: str) -> dict:
    deadline = time.monotonic() + 60
    while (d := api(server, "GET", f"/api/segments/{name}").json())["counting"]:
        assert time.monotonic() < deadline, "still counting after 60 s"
        time.sleep(0.1)
    return d


def test_a_saved_segment_is_counted_once_in_the_background(saved: UiServer) -> None:
    """By hand: growth is u1, u2, u4; starter is u3. A new segment is counted at the
    latest refresh's instant (its pages read a snapshot, like viewers'); changed, it is
    counted again now, u1, u2 and u4 leaving and u3 entering."""
    rule = {"kind": "plan", "is": "growth"}
    made = api(saved, "POST", "/api/segments", json={"name": "planned", "rule": rule})
    assert made.status_code == 201 and made.json()["counting"] is True
    d = _counted(saved, "planned")
    viewers = api(saved, "GET", "/api/segments/viewers").json()
    assert [(s["size"], s["as_of"]) for s in d["sizes"]] == [(3, viewers["as_of"])]
    table = api(saved, "GET", "/api/segments/planned/table").json()
    assert (table["source"], table["total"]) == ("snapshot", 3)
    assert sorted(m["user_id"] for m in table["members"]) == ["u1", "u2", "u4"]
    r = api(saved, "PUT", "/api/segments/planned", json={"rule": {"kind": "plan",
                                                                  "is": "starter"}})
    assert r.status_code == 200 and r.json()["version"] == 2
    d = _counted(saved, "planned")
    assert [s["size"] for s in d["sizes"]] == [3, 1] and d["sizes"][1]["version"] == 2
    assert d["sizes"][1]["as_of"] > viewers["as_of"]
    moves = api(saved, "GET", "/api/segments/planned/transitions").json()["transitions"]
    latest = [(m["user_id"], m["kind"]) for m in moves if m["as_of"] == d["sizes"][1]["as_of"]]
    assert sorted(latest) == [("u1", "exited"), ("u2", "exited"), ("u3", "entered"),
                              ("u4", "exited")]
    assert api(saved, "DELETE", "/api/segments/planned").status_code == 200


def test_timeline_includes_events_sent_before_sign_up(ui_server: UiServer  # noqa: F811
                                                      ) -> None:
    """Runs last in this module: it adds a person. u9 browsed as anon9, then signed up;
    identify with both ids merges anon9 into u9, so the anonymous page view is u9's."""
    batch = [{"type": "page", "anonymous_id": "anon9", "event": "$page",
              "timestamp": "2026-01-01T10:00:00Z"},
             {"type": "identify", "user_id": "u9", "anonymous_id": "anon9",
              "timestamp": "2026-01-01T10:05:00Z"},
             {"event": "signed_up", "user_id": "u9", "timestamp": "2026-01-01T10:06:00Z"}]
    r = httpx.post(f"{ui_server.url}/v1/events", json={"events": batch},
                   headers={"Authorization": f"Bearer {ui_server.write_key}"})
    assert r.status_code == 200, r.text
    events = api(ui_server, "GET", "/api/users/u9/timeline").json()["events"]
    assert [e["event"] for e in events] == ["signed_up", "$identify", "$page"]
    assert api(ui_server, "GET", "/api/users/anon9/timeline").json()["events"] == []
    # the user page reads the latest refresh as it knew the data: u9 arrived after it
    assert api(ui_server, "GET", "/api/users/u9").json()["metrics"]["events_total"] == 2
    r = api(ui_server, "GET", "/api/users/u9/at-refresh")
    assert r.status_code == 404 and "no user 'u9'" in r.json()["message"]
