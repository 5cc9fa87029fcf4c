"""In-app campaigns against a real `segmently serve` on loopback: definitions over the HTTP
API, `GET /v1/campaigns` deciding who sees what (audience, holdout, frequency, cooldown,
priority, schedule, triggers, checklists), identity verification, CORS, and targeting
within seconds of an event (the incremental refresh).

Every test works on its own users and its own segment (`performed` an event only its users
send), so the campaigns of other tests never qualify for them. Expected arms are computed
here from the documented formula (SHA-256 of campaign NUL user, first 8 bytes as a
fraction of 2**64), not by the code under test.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import Server, start_server
from segmently.store import Store
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # one real serve for the module (not in make test-fast)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("campaigns")
    db = f"duckdb://{tmp / 'server.duckdb'}"
    with Store(db) as s:
        new = create_project(s, "shop")
        other = create_project(s, "other")
    proc, url = start_server(db, tmp / "server.log", env={
        "SEGMENTLY_INCREMENTAL_SECONDS": "0.3", "SEGMENTLY_REFRESH_SECONDS": "0"})
    server = Server(url, db, new.project.write_key, new.secret_key, new.project.project_id,
                    proc, tmp / "server.log")
    server.other = other  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


HTTP = httpx.Client(timeout=30)  # one keep-alive connection for the many small requests


def api(srv: Server, method: str, path: str, body: Any = None,
        key: str | None = None) -> httpx.Response:
    return HTTP.request(method, srv.url + path, json=body, timeout=30,
                         headers={"Authorization": f"Bearer {key or srv.secret_key}"})


def send(srv: Server, events: list[dict[str, Any]], write_key: str | None = None,
         context: dict[str, Any] | None = None) -> httpx.Response:
    batch = [{"type": "track", "messageId": uuid.uuid4().hex, **({"context": context}
                                                                  if context else {}), **e}
             for e in events]
    return HTTP.post(srv.url + "/v1/batch",
                      content=json.dumps({"writeKey": write_key or srv.write_key,
                                          "batch": batch}),
                      headers={"Content-Type": "text/plain"})


def offers(srv: Server, user: str, write_key: str | None = None, **params: str) -> list[str]:
    r = HTTP.get(srv.url + "/v1/campaigns", params={
        "writeKey": write_key or srv.write_key, "userId": user, **params})
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["campaigns"]]


def served(srv: Server, user: str, **params: str) -> list[dict[str, Any]]:
    r = HTTP.get(srv.url + "/v1/campaigns",
                 params={"writeKey": srv.write_key, "userId": user, **params})
    assert r.status_code == 200, r.text
    return r.json()["campaigns"]


def settings(srv: Server, **values: Any) -> dict[str, Any]:
    r = api(srv, "PUT", "/api/in-app/settings", values)
    assert r.status_code == 200, r.text
    return r.json()


def segment_of(srv: Server, name: str, users: list[str]) -> None:
    """A segment whose members are exactly `users` (they send `<name>_done`), refreshed."""
    r = api(srv, "POST", "/api/segments", {"name": name,
                                           "rule": {"kind": "performed", "event": f"{name}_done"}})
    assert r.status_code == 201, r.text
    assert send(srv, [{"event": f"{name}_done", "userId": u} for u in users]).status_code == 200
    assert api(srv, "POST", "/api/refresh").status_code == 200


def campaign(srv: Server, name: str, audience: str, **fields: Any) -> dict[str, Any]:
    body = {"name": name, "kind": "modal", "audience": {"in": [audience]},
            "holdout_percent": 0, "content": {"title": "Hello", "body": "A modal"}, **fields}
    r = api(srv, "POST", "/api/campaigns", body)
    assert r.status_code == 201, r.text
    return r.json()


def expected_arm(campaign: str, user: str, percent: float) -> str:
    share = int.from_bytes(hashlib.sha256(f"{campaign}\0{user}".encode()).digest()[:8],
                           "big") / 2**64
    return "holdout" if share * 100 < percent else "treatment"


def arm_counts(srv: Server, campaign: str, want: tuple[int, int]) -> tuple[int, int]:
    """(assigned, held out) as recorded: the assignments are written by a background
    flush (every second), so this waits up to 10 s for `want`."""
    deadline = time.monotonic() + 10
    while True:
        found = {c["name"]: c for c in api(srv, "GET", "/api/campaigns").json()["campaigns"]}
        got = (found[campaign]["assigned"], found[campaign]["held_out"])
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_members_see_it_others_do_not(srv: Server) -> None:
    segment_of(srv, "t1_seg", ["t1_a", "t1_b"])
    campaign(srv, "t1_modal", "t1_seg")
    settings(srv, cooldown_hours=0)
    assert offers(srv, "t1_a") == ["t1_modal"]
    assert offers(srv, "t1_b") == ["t1_modal"]
    assert offers(srv, "t1_stranger") == []
    got = served(srv, "t1_a")[0]
    assert got["kind"] == "modal" and got["version"] == 1
    assert got["content"]["title"] == "Hello" and got["trigger"] == {"delay_seconds": 0}


def test_holdout_is_a_stable_share_recorded_once(srv: Server) -> None:
    users = [f"t2_u{i}" for i in range(400)]
    segment_of(srv, "t2_seg", users)
    campaign(srv, "t2_modal", "t2_seg", holdout_percent=25)
    settings(srv, cooldown_hours=0)
    seen = {u: offers(srv, u) for u in users}
    want = {u: expected_arm("t2_modal", u, 25) for u in users}
    assert {u for u, got in seen.items() if got} == \
        {u for u, arm in want.items() if arm == "treatment"}
    held = sum(arm == "holdout" for arm in want.values())
    # 25% of 400 within four standard deviations (the hash behaves as a fair draw)
    assert abs(held - 100) < 4 * math.sqrt(400 * 0.25 * 0.75)
    assert arm_counts(srv, "t2_modal", (400 - held, held)) == (400 - held, held)
    # a later change of the percentage never moves someone already assigned
    r = api(srv, "PUT", "/api/campaigns/t2_modal", {
        "kind": "modal", "audience": {"in": ["t2_seg"]}, "holdout_percent": 90,
        "content": {"title": "Hello", "body": "A modal"}})
    assert r.status_code == 200 and r.json()["version"] == 2
    again = {u: offers(srv, u) for u in users[:100]}
    assert again == {u: seen[u] for u in users[:100]}


def test_frequency_once_until_dismissed_and_answered(srv: Server) -> None:
    segment_of(srv, "t3_seg", ["t3_a", "t3_b"])
    settings(srv, cooldown_hours=0)
    campaign(srv, "t3_once", "t3_seg", priority=5)
    campaign(srv, "t3_sticky", "t3_seg", frequency="until_dismissed", priority=1)
    assert offers(srv, "t3_a") == ["t3_once", "t3_sticky"]  # priority order
    send(srv, [{"event": "campaign_shown", "userId": "t3_a",
                "properties": {"campaign": "t3_once"}}])
    assert offers(srv, "t3_a") == ["t3_sticky"]  # once: shown, never again
    send(srv, [{"event": "campaign_shown", "userId": "t3_a",
                "properties": {"campaign": "t3_sticky"}}])
    assert offers(srv, "t3_a") == ["t3_sticky"]  # until dismissed: still there
    send(srv, [{"event": "campaign_dismissed", "userId": "t3_a",
                "properties": {"campaign": "t3_sticky"}}])
    assert offers(srv, "t3_a") == []
    assert offers(srv, "t3_b") == ["t3_once", "t3_sticky"]  # another user: untouched


def test_cooldown_holds_across_campaigns(srv: Server) -> None:
    segment_of(srv, "t4_seg", ["t4_a"])
    campaign(srv, "t4_first", "t4_seg", priority=2)
    campaign(srv, "t4_second", "t4_seg", priority=1)
    settings(srv, cooldown_hours=24)
    assert offers(srv, "t4_a") == ["t4_first", "t4_second"]
    send(srv, [{"event": "campaign_shown", "userId": "t4_a",
                "properties": {"campaign": "t4_first"}}])
    assert offers(srv, "t4_a") == []  # t4_second waits out the cooldown
    settings(srv, cooldown_hours=0)
    assert offers(srv, "t4_a") == ["t4_second"]


def test_every_n_days_and_schedule(srv: Server) -> None:
    segment_of(srv, "t5_seg", ["t5_a"])
    settings(srv, cooldown_hours=0)
    campaign(srv, "t5_nps", "t5_seg", kind="nps", content={}, frequency={"every_days": 30})
    campaign(srv, "t5_later", "t5_seg", schedule={"start": "2999-01-01T00:00:00Z"})
    campaign(srv, "t5_over", "t5_seg", schedule={"end": "2020-01-01T00:00:00Z"})
    assert offers(srv, "t5_a") == ["t5_nps"]
    send(srv, [{"event": "campaign_shown", "userId": "t5_a",
                "properties": {"campaign": "t5_nps"}},
               {"event": "nps_submitted", "userId": "t5_a",
                "properties": {"campaign": "t5_nps", "score": 9}}])
    assert offers(srv, "t5_a") == []  # shown today: not again for 30 days


def test_url_and_event_triggers(srv: Server) -> None:
    segment_of(srv, "t6_seg", ["t6_a"])
    settings(srv, cooldown_hours=0)
    campaign(srv, "t6_reports", "t6_seg", trigger={"url": "/reports/*"})
    campaign(srv, "t6_alert", "t6_seg", trigger={"event": "alert_created",
                                                 "delay_seconds": 3})
    assert offers(srv, "t6_a", url="https://app.example.com/settings") == []
    assert offers(srv, "t6_a", url="https://app.example.com/reports/12?x=1") == ["t6_reports"]
    got = served(srv, "t6_a", url="https://app.example.com/home", event="alert_created")
    assert [(c["id"], c["trigger"]["delay_seconds"]) for c in got] == [("t6_alert", 3)]


def test_checklist_tasks_done_from_events_and_milestones(srv: Server) -> None:
    segment_of(srv, "t7_seg", ["t7_a"])
    settings(srv, cooldown_hours=0)
    campaign(srv, "t7_list", "t7_seg", kind="checklist", frequency="until_dismissed",
             content={"title": "Get started", "tasks": [
                 {"id": "report", "label": "Create a report", "event": "t7_report"},
                 {"id": "invite", "label": "Invite", "event": "t7_invite"}]})
    tasks = lambda: {t["id"]: t["done"] for t in served(srv, "t7_a")[0]["content"]["tasks"]}  # noqa: E731
    assert tasks() == {"report": False, "invite": False}
    send(srv, [{"event": "t7_report", "userId": "t7_a"}])
    assert tasks() == {"report": True, "invite": False}
    send(srv, [{"event": "checklist_task_completed", "userId": "t7_a",
                "properties": {"campaign": "t7_list", "task": "invite"}}])
    assert offers(srv, "t7_a") == []  # every task done: nothing left to show


def test_identity_verification(srv: Server) -> None:
    segment_of(srv, "t8_seg", ["t8_a"])
    campaign(srv, "t8_modal", "t8_seg")
    made = settings(srv, cooldown_hours=0, identity_verification=True)
    secret = made["verification_secret"]
    good = hmac.new(secret.encode(), b"t8_a", hashlib.sha256).hexdigest()
    try:
        url = srv.url + "/v1/campaigns"
        base = {"writeKey": srv.write_key, "userId": "t8_a"}
        assert httpx.get(url, params=base).status_code == 403
        forged = hmac.new(b"guess", b"t8_a", hashlib.sha256).hexdigest()
        r = httpx.get(url, params={**base, "userHash": forged})
        assert r.status_code == 403 and r.json()["code"] == "identity_not_verified"
        assert offers(srv, "t8_a", userHash=good) == ["t8_modal"]
        # events as the user: refused without the hash, a dismissal cannot be forged
        r = send(srv, [{"event": "campaign_dismissed", "userId": "t8_a",
                        "properties": {"campaign": "t8_modal"}}])
        assert r.status_code == 403
        assert offers(srv, "t8_a", userHash=good) == ["t8_modal"]
        assert send(srv, [{"event": "campaign_shown", "userId": "t8_a",
                           "properties": {"campaign": "t8_modal"}}],
                    context={"userHash": good}).status_code == 200
        assert offers(srv, "t8_a", userHash=good) == []
        assert send(srv, [{"event": "page_seen", "anonymousId": "anon1"}]).status_code == 200
    finally:
        settings(srv, identity_verification=False)


def test_projects_and_keys_are_isolated(srv: Server) -> None:
    segment_of(srv, "t9_seg", ["t9_a"])
    settings(srv, cooldown_hours=0)
    campaign(srv, "t9_modal", "t9_seg")
    other = srv.other  # type: ignore[attr-defined]
    assert offers(srv, "t9_a", write_key=other.project.write_key) == []
    r = httpx.get(srv.url + "/v1/campaigns", params={"writeKey": "wk_nope", "userId": "t9_a"})
    assert r.status_code == 401
    r = httpx.get(srv.url + "/v1/campaigns", params={"writeKey": srv.write_key})
    assert r.status_code == 400 and "userId" in r.json()["message"]
    # the write key reads nothing of the definitions
    r = httpx.get(srv.url + "/api/campaigns",
                  headers={"Authorization": f"Bearer {srv.write_key}"})
    assert r.status_code == 401
    r = api(srv, "GET", "/api/campaigns", key=other.secret_key)
    assert r.status_code == 200 and r.json()["campaigns"] == []


def test_cors_for_the_sdk(srv: Server) -> None:
    r = httpx.options(srv.url + "/v1/batch", headers={
        "Origin": "http://shop.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == "*"
    r = httpx.get(srv.url + "/v1/campaigns", params={"writeKey": srv.write_key,
                                                     "userId": "x"},
                  headers={"Origin": "http://shop.example"})
    assert r.headers["access-control-allow-origin"] == "*"
    r = httpx.get(srv.url + "/api/segments", headers={"Origin": "http://shop.example"})
    assert "access-control-allow-origin" not in r.headers  # the API stays same-origin


def test_bad_definitions_are_400s_naming_the_field(srv: Server) -> None:
    segment_of(srv, "t11_seg", ["t11_a"])
    cases = [
        ({"name": "x", "kind": "popup", "content": {}}, "kind"),
        ({"name": "x", "kind": "modal", "content": {"title": "t"}}, "content.body"),
        ({"name": "x", "kind": "tour", "content": {"steps": []}}, "content.steps"),
        ({"name": "x", "kind": "modal", "audience": {"in": ["nope"]},
          "content": {"title": "t", "body": "b"}}, "audience"),
        ({"name": "x", "kind": "modal", "holdout_percent": 120,
          "content": {"title": "t", "body": "b"}}, "holdout_percent"),
        ({"name": "x", "kind": "modal", "content": {"title": "t", "body": "b",
                                                    "button": {"label": "go",
                                                               "url": "javascript:alert(1)"}}},
         "url"),
        ({"name": "x", "kind": "survey", "content": {"questions": [
            {"id": "q", "kind": "choice", "prompt": "?", "options": ["one"]}]}}, "choice"),
        ({"name": "x", "kind": "modal", "goal": {"rule": {"kind": "bogus"}},
          "content": {"title": "t", "body": "b"}}, "goal"),
        ({"name": "../x", "kind": "nps", "content": {}}, "name"),
        ({"name": "x", "kind": "checklist", "content": {"title": "t", "tasks": [
            {"id": "a", "label": "A", "milestone": "nope"}]}}, "milestone"),
    ]
    for body, field in cases:
        r = api(srv, "POST", "/api/campaigns", body)
        assert r.status_code == 400, (body, r.text)
        assert field in r.json()["message"], (field, r.json())
    assert api(srv, "GET", "/api/campaigns/nope").status_code == 404
    r = api(srv, "PUT", "/api/in-app/settings", {"cooldown_hours": -1})
    assert r.status_code == 400 and "cooldown_hours" in r.json()["message"]
    names = [c["name"] for c in api(srv, "GET", "/api/campaigns").json()["campaigns"]]
    assert "x" not in names


def test_targeted_within_seconds_of_the_event(srv: Server) -> None:
    """No full refresh runs (SEGMENTLY_REFRESH_SECONDS=0): only the incremental pass can
    make the user a member."""
    r = api(srv, "POST", "/api/segments", {"name": "t12_alerts",
                                           "rule": {"kind": "performed", "event": "t12_alert"}})
    assert r.status_code == 201
    settings(srv, cooldown_hours=0)
    campaign(srv, "t12_modal", "t12_alerts")
    assert offers(srv, "t12_a") == []
    started = time.monotonic()
    assert send(srv, [{"event": "t12_alert", "userId": "t12_a"}]).status_code == 200
    while not offers(srv, "t12_a"):
        assert time.monotonic() - started < 10, "not targeted within 10 s"
        time.sleep(0.1)
    assert offers(srv, "t12_b") == []
    r = api(srv, "GET", "/api/users/t12_a/segments")
    assert "t12_alerts" in json.dumps(r.json())


def test_the_sdk_is_served_small_and_cacheable(srv: Server) -> None:
    r = HTTP.get(srv.url + "/sdk/segmently.js", headers={"Origin": "http://shop.example"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["access-control-allow-origin"] == "*"
    assert "max-age" in r.headers["cache-control"]
    assert len(gzip.compress(r.content, 9)) < 15_000  # the budget: 15 KB gzipped
    assert "window.segmently = " in r.text
    got = HTTP.get(srv.url + "/v1/campaigns", params={"writeKey": srv.write_key,
                                                      "userId": "nobody"})
    assert got.headers["cache-control"] == "no-store"  # one user's answer, of now
