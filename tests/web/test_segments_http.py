"""Segments over HTTP, against a real `segmently serve`: a tiny hand-written event log goes
in through /v1/events, and every size, member list and explanation below is counted by
hand from that log.

The log (days before NOW; window "last 30 days"):
    alice  plan=pro   report_viewed x6 (days 1-6)
    bob    plan=free  report_viewed x2 (days 2-3)            later +3 (hours ago) -> 5
    carol             report_viewed x5 (days 1-5)
    dave              report_viewed x7 (days 33-39), login (day 1)
Segments: power = report_viewed at least 5 times in the last 30 days;
          pro = plan eq pro; power_not_pro = in power and not in pro.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import start_server
from segmently.segments import definitions as defs
from segmently.store import Store
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # every test talks to a real server

NOW = datetime.now(UTC).replace(microsecond=0)
POWER = {"kind": "performed", "event": "report_viewed", "at_least": 5,
         "window": {"last": 30, "unit": "days"}}
PRO = {"kind": "property", "property": "plan", "op": "eq", "value": "pro"}
POWER_NOT_PRO = {"all": [{"kind": "in_segment", "segment": "power"},
                         {"kind": "not_in_segment", "segment": "pro"}]}


def ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def views(user: str, days: list[float]) -> list[dict[str, Any]]:
    return [{"event": "report_viewed", "user_id": user, "timestamp": ago(d)} for d in days]


LOG = [
    {"type": "identify", "user_id": "alice", "traits": {"plan": "pro"}, "timestamp": ago(10)},
    {"type": "identify", "user_id": "bob", "traits": {"plan": "free"}, "timestamp": ago(10)},
    *views("alice", [1, 2, 3, 4, 5, 6]), *views("bob", [2, 3]),
    *views("carol", [1, 2, 3, 4, 5]), *views("dave", [33, 34, 35, 36, 37, 38, 39]),
    {"event": "login", "user_id": "dave", "timestamp": ago(1)},
]


@dataclass
class Api:
    url: str
    db: str
    write_key: str
    key_a: str
    key_b: str
    write_key_b: str

    def client(self, key: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def send(api: Api, events: list[dict[str, Any]], write_key: str | None = None) -> None:
    r = httpx.post(f"{api.url}/v1/events", json={"events": events},
                   headers={"Authorization": f"Bearer {write_key or api.write_key}"}, timeout=60)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp: Path = tmp_path_factory.mktemp("segments_http")
    db = f"duckdb://{tmp / 'server.duckdb'}"
    with Store(db) as s:
        a, b = create_project(s, "alpha"), create_project(s, "beta")
    proc, url = start_server(db, tmp / "server.log", env={"SEGMENTLY_REFRESH_SECONDS": "0"})
    it = Api(url, db, a.project.write_key, a.secret_key, b.secret_key, b.project.write_key)
    try:
        send(it, LOG)
        send(it, views("alice", [1]), write_key=it.write_key_b)  # beta's own alice
        with it.client(it.key_a) as c:
            for name, rule in (("power", POWER), ("pro", PRO), ("power_not_pro", POWER_NOT_PRO)):
                r = c.post("/api/segments", json={"name": name, "rule": rule,
                                                   "description": f"{name} users"})
                assert r.status_code == 201, r.text
                assert r.json()["version"] == 1
        yield it
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def all_members(c: httpx.Client, name: str, **params: Any) -> list[str]:
    out, cursor = [], None
    while True:
        r = c.get(f"/api/segments/{name}/members", params={**params, "limit": 2,
                                                          **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        out += r.json()["members"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


def sizes(c: httpx.Client) -> dict[str, int | None]:
    return {s["name"]: s["size"] for s in c.get("/api/segments").json()["segments"]}


def test_every_route_needs_the_projects_secret_key(api: Api) -> None:
    routes = [("GET", "/api/segments"), ("GET", "/api/segments/power"),
              ("POST", "/api/segments"), ("PUT", "/api/segments/power"),
              ("DELETE", "/api/segments/power"), ("GET", "/api/segments/power/members"),
              ("GET", "/api/segments/power/explain/alice"), ("GET", "/api/users/alice"),
              ("GET", "/api/users/alice/segments"), ("POST", "/api/refresh")]
    for key in (None, api.write_key, "sk_not_a_key"):
        with api.client(key) as c:
            for method, path in routes:
                r = c.request(method, path, json={"name": "x", "rule": PRO})
                assert r.status_code == 401, (key, method, path, r.text)
                assert r.json()["code"] == "unauthorized"
    with api.client(api.key_a) as c:
        assert sorted(sizes(c)) == ["power", "power_not_pro", "pro"]  # nothing was changed


def test_validation_errors_name_the_field_and_store_nothing(api: Api) -> None:
    cases = [
        ({"name": "x", "rule": {**POWER, "at_least": -1}}, 400, "rule.at_least"),
        ({"name": "x"}, 400, "body.rule: Field required"),
        ({"name": "a/b", "rule": PRO}, 400, "body.name"),
        ({"name": "x", "rule": PRO, "colour": "red"}, 400, "body.colour"),
        ({"name": "x", "rule": {"kind": "teleported"}}, 400, "rule: a rule is a group"),
        ({"name": "x", "rule": {"kind": "in_segment", "segment": "nope"}}, 400,
         "unknown segment 'nope'"),
        ({"name": "power", "rule": PRO}, 409, "exists"),
    ]
    with api.client(api.key_a) as c:
        for body, status, words in cases:
            r = c.post("/api/segments", json=body)
            assert (r.status_code, words in r.json()["message"]) == (status, True), (body, r.text)
        r = c.put("/api/segments/pro", json={"rule": {"kind": "in_segment",
                                                       "segment": "power_not_pro"}})
        assert r.status_code == 400 and "cycle: pro -> power_not_pro -> pro" in r.json()["message"]
        assert c.put("/api/segments/ghost", json={"rule": PRO}).status_code == 404
        r = c.put("/api/segments/pro", json={})
        assert r.status_code == 400 and "description and/or rule" in r.json()["message"]
        r = c.delete("/api/segments/pro")
        assert r.status_code == 400 and "referenced by segment 'power_not_pro'" in r.text
        r = c.get("/api/segments/power/members", params={"limit": 0})
        assert r.status_code == 400 and "limit" in r.json()["message"]
        r = c.get("/api/segments/power/members", params={"as_of": "yesterday"})
        assert r.status_code == 400 and "as_of" in r.json()["message"]
        r = c.get("/api/segments/power/members", params={"cursor": "%%%"})
        assert r.status_code == 400 and "cursor" in r.json()["message"]
        listed = c.get("/api/segments").json()["segments"]
        assert {s["name"]: s["version"] for s in listed} == {"power": 1, "pro": 1,
                                                             "power_not_pro": 1}


def counted(c: httpx.Client) -> list[dict]:
    """The segments once none is being counted (each saved one is, in the background)."""
    deadline = time.monotonic() + 60
    while True:
        found: list[dict] = c.get("/api/segments").json()["segments"]
        if not any(s["counting"] for s in found):
            return found
        assert time.monotonic() < deadline, "still counting after 60 s"
        time.sleep(0.1)


def test_refresh_members_versions_and_transitions(api: Api) -> None:
    with api.client(api.key_a) as c:
        # each segment was counted when saved: the first now, the others at its instant
        before = counted(c)
        assert {s["name"]: s["size"] for s in before} == {"power": 2, "pro": 1,
                                                          "power_not_pro": 1}
        assert len({s["as_of"] for s in before}) == 1
        r = c.get("/api/segments/power/members")
        assert (r.json()["members"], r.json()["source"]) == (["alice", "carol"], "snapshot")

        first = {s["name"]: s for s in c.post("/api/refresh").json()["segments"]}
        assert {n: (s["size"], s["entered"], s["exited"]) for n, s in first.items()} == {
            "power": (2, 0, 0), "pro": (1, 0, 0), "power_not_pro": (1, 0, 0)}
        listed = {s["name"]: s for s in c.get("/api/segments").json()["segments"]}
        assert listed["power"]["size"] == 2 and listed["power"]["version"] == 1
        assert listed["power"]["data_through"] == ago(1).replace("Z", "")  # latest event
        assert listed["power"]["as_of"] == first["power"]["as_of"]
        r = c.get("/api/segments/power/members")
        assert (r.json()["members"], r.json()["source"]) == (["alice", "carol"], "snapshot")
        assert c.get("/api/users/alice/segments").json()["segments"] == ["power", "pro"]
        assert c.get("/api/users/carol/segments").json()["segments"] == ["power",
                                                                         "power_not_pro"]
        assert c.get("/api/users/dave/segments").json()["segments"] == []
        assert c.get("/api/users/nobody/segments").json()["segments"] == []

        why = c.get("/api/segments/power/explain/bob").json()
        assert why["member"] is False and why["version"] == 1
        assert why["explanation"]["truth"] is False
        assert "2 times" in why["explanation"]["sentence"], why
        why = c.get("/api/segments/power_not_pro/explain/carol").json()
        assert why["member"] is True
        assert [k["truth"] for k in why["explanation"]["children"]] == [True, True]
        assert c.get("/api/segments/power/explain/nobody").status_code == 404

        send(api, views("bob", [0.1, 0.2, 0.3]))  # bob reaches 5
        snapshot = c.get("/api/segments/power/members").json()
        assert snapshot["members"] == ["alice", "carol"]  # stored until the next refresh
        live = c.get("/api/segments/power/members", params={"as_of": NOW.isoformat()[:10]
                                                             + "T00:00:00Z"})
        assert live.json()["source"] == "live"
        assert all_members(c, "power", as_of=datetime.now(UTC).isoformat()) == [
            "alice", "bob", "carol"]
        # a past instant before anything was received: nothing was known then, but as
        # known now alice had viewed reports 5 times in the 30 days before it
        before = (NOW - timedelta(days=1)).isoformat()
        assert all_members(c, "power", as_of=before, known_at=before) == []
        assert all_members(c, "power", as_of=before) == ["alice"]

        second = {s["name"]: s for s in c.post("/api/refresh").json()["segments"]}
        assert {n: (s["size"], s["entered"], s["exited"]) for n, s in second.items()} == {
            "power": (3, 1, 0), "pro": (1, 0, 0), "power_not_pro": (2, 1, 0)}
        page = c.get("/api/segments/power/members", params={"limit": 2}).json()
        assert page["members"] == ["alice", "bob"] and page["next_cursor"]
        rest = c.get("/api/segments/power/members",
                     params={"limit": 2, "cursor": page["next_cursor"]}).json()
        assert (rest["members"], rest["next_cursor"]) == (["carol"], None)
        assert c.get("/api/users/bob/segments").json()["segments"] == ["power",
                                                                       "power_not_pro"]

        r = c.put("/api/segments/power", json={"rule": {**POWER, "at_least": 6}})
        assert r.status_code == 200 and r.json()["version"] == 2
        assert r.json()["description"] == "power users"  # kept
        same = c.put("/api/segments/power", json={"rule": {**POWER, "at_least": 6}})
        assert same.json()["version"] == 2  # unchanged: no new version
        # version 2 is counted at once: bob and carol leave then, not at the next refresh
        counted(c)
        r = c.get("/api/segments/power/members").json()
        assert (r["members"], r["source"]) == (["alice"], "snapshot")
        third = {s["name"]: s for s in c.post("/api/refresh").json()["segments"]}
        assert (third["power"]["size"], third["power"]["entered"],
                third["power"]["exited"]) == (1, 0, 0)
        assert (third["power_not_pro"]["size"], third["power_not_pro"]["exited"]) == (0, 2)
        assert c.get("/api/users/bob/segments").json()["segments"] == []

        detail = c.get("/api/segments/power").json()
        assert detail["version"] == 2 and detail["rule"]["at_least"] == 6
        assert [(v["version"], v["rule"]["at_least"]) for v in detail["versions"]] == [
            (1, 5), (2, 6)]
        assert [(s["size"], s["version"]) for s in detail["sizes"]] == [
            (2, 1), (2, 1), (3, 1), (1, 2), (1, 2)]  # counted, refreshed, ..., refreshed

        gone = c.delete("/api/segments/power_not_pro")
        assert gone.status_code == 200 and gone.json()["version"] == 2
        assert c.get("/api/segments/power_not_pro").status_code == 404
        assert sorted(sizes(c)) == ["power", "pro"]
        assert c.get("/api/users/alice/segments").json()["segments"] == ["power", "pro"]
        again = c.post("/api/segments", json={"name": "power_not_pro", "rule": POWER_NOT_PRO})
        assert again.status_code == 201 and again.json()["version"] == 3
        assert [(v["version"], v["deleted"]) for v in
                c.get("/api/segments/power_not_pro").json()["versions"]] == [
            (1, False), (2, True), (3, False)]


def test_user_profile(api: Api) -> None:
    with api.client(api.key_a) as c:
        r = c.get("/api/users/alice")
        assert r.status_code == 200, r.text
        metrics = r.json()["metrics"]
        assert metrics["events_total"] == 6  # identify calls are not activity
        assert metrics["active_days_window"] == 6
        assert metrics["plan"] == "pro"
        assert metrics["first_seen"] == ago(6).replace("Z", "")
        assert c.get("/api/users/nobody").status_code == 404


def test_projects_never_see_each_other(api: Api) -> None:
    with api.client(api.key_b) as b:
        assert b.get("/api/segments").json() == {"segments": []}
        for path in ("/api/segments/power", "/api/segments/power/members",
                     "/api/segments/power/explain/alice"):
            assert b.get(path).status_code == 404, path
        assert b.put("/api/segments/power", json={"rule": PRO}).status_code == 404
        assert b.delete("/api/segments/pro").status_code == 404
        assert b.get("/api/users/alice/segments").json()["segments"] == []
        assert b.get("/api/users/alice").json()["metrics"]["events_total"] == 1  # beta's
        assert b.get("/api/users/carol").status_code == 404
        assert b.post("/api/refresh").json() == {"segments": []}
        # the same name in beta is beta's own segment, version 1
        r = b.post("/api/segments", json={"name": "power", "rule": {**POWER, "at_least": 1}})
        assert r.status_code == 201 and r.json()["version"] == 1
        assert b.get("/api/segments/power/members").json()["members"] == ["alice"]
    with api.client(api.key_a) as a:
        assert a.get("/api/segments/power").json()["rule"]["at_least"] != 1


def test_scheduled_refresh(tmp_path: Path) -> None:
    db = f"duckdb://{tmp_path / 'sched.duckdb'}"
    with Store(db) as s:
        new = create_project(s, "sched")
    proc, url = start_server(db, tmp_path / "server.log", env={"SEGMENTLY_REFRESH_SECONDS": "1"})
    api = Api(url, db, new.project.write_key, new.secret_key, "", "")
    try:
        send(api, views("erin", [1]))
        with api.client(api.key_a) as c:
            assert c.post("/api/segments", json={"name": "viewers",
                                                 "rule": {"kind": "performed",
                                                          "event": "report_viewed"}}
                          ).status_code == 201
            deadline = time.monotonic() + 60
            while sizes(c)["viewers"] is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert sizes(c)["viewers"] == 1  # computed by the schedule, nobody asked
            assert c.get("/api/users/erin/segments").json()["segments"] == ["viewers"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with Store(db) as s:  # every version is in the database
        assert [v.version for v in defs.history(s, new.project.project_id, "viewers")] == [1]


def test_history_revert_and_rename(api: Api) -> None:
    """A segment's versions say who wrote them (the secret key: "api") and what changed;
    a revert is a new version equal to an old one; a rename moves the definition and
    leaves the old name's history."""
    with api.client(api.key_a) as c:
        rule = {"kind": "performed", "event": "login", "window": {"last": 30, "unit": "days"}}
        assert c.post("/api/segments", json={"name": "logins", "rule": rule}).status_code == 201
        changed = {**rule, "at_least": 2}
        assert c.put("/api/segments/logins", json={"rule": changed}).json()["version"] == 2
        history = c.get("/api/segments/logins/history").json()["versions"]
        assert [(v["version"], v["source"], v["deleted"]) for v in history] == \
            [(1, "api", False), (2, "api", False)]
        assert "+  at_least: 2" in history[1]["diff"]
        back = c.post("/api/segments/logins/revert", json={"version": 1})
        assert back.status_code == 200, back.text
        assert (back.json()["version"], back.json()["rule"]) == (3, history[0]["rule"])
        assert c.post("/api/segments/logins/revert", json={"version": 9}).status_code == 404
        taken = c.post("/api/segments/logins/rename", json={"name": "power"})
        assert taken.status_code == 409, taken.text
        used = c.post("/api/segments/power/rename", json={"name": "strong"})
        assert used.status_code == 400 and "power_not_pro" in used.json()["message"]
        moved = c.post("/api/segments/logins/rename", json={"name": "signins"})
        assert (moved.status_code, moved.json()["name"], moved.json()["version"]) == \
            (200, "signins", 1)
        names = [s["name"] for s in c.get("/api/segments").json()["segments"]]
        assert "signins" in names and "logins" not in names
        old = c.get("/api/segments/logins/history").json()["versions"]
        assert [v["deleted"] for v in old] == [False, False, False, True]
        assert c.get("/api/segments/nope/history").status_code == 404
        assert c.delete("/api/segments/signins").status_code == 200
    with api.client(api.key_b) as other:  # another project's key sees none of it
        assert other.get("/api/segments/logins/history").status_code == 404
