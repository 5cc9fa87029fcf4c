"""The poison values of test_poison_values.py sent over HTTP with the PUBLIC write key, on a
real server over DuckDB and over PostgreSQL: every condition kind saved and refreshed,
then every read route of the API (from its OpenAPI document) for every poisoned user and
every segment answers, none with a 5xx. And a rule that cannot run does not stop a project:
a bad regex is refused at save (400, nothing stored), a stored definition from before that
check is reported by the refresh and the listings, and the other segments refresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pyarrow as pa
import pytest
from test_poison_values import GOOD, RULES, USERS, VOCAB, _events, _good

from conftest import start_server
from segmently.profile import vocabularies
from segmently.segments import definitions as defs
from segmently.store import Store, utcnow
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # every test talks to a real server


@dataclass
class Poisoned:
    url: str
    auth: dict[str, str]
    project_id: str


def _send(url: str, write_key: str, events: list[dict[str, Any]]) -> None:
    for e in events:  # "now" instants: the server refuses none of them as too far ahead
        e["timestamp"] = utcnow().isoformat() + "Z"
    r = httpx.post(f"{url}/v1/events", content=orjson.dumps({"events": events}),
                   headers={"Authorization": f"Bearer {write_key}",
                            "Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text


@pytest.fixture
def poisoned(store_url: str, tmp_path: Path) -> Iterator[Poisoned]:
    with Store(store_url) as s:
        new = create_project(s, "poison")
        pid = new.project.project_id
        defs.ensure_tables(s)  # a definition saved before regexes were checked
        s.insert_table(defs.VERSIONS, pa.Table.from_pylist([{
            "project_id": pid, "segment": "old_regex", "version": 1, "created_at": utcnow(),
            "deleted": False, "definition": json.dumps({
                "name": "old_regex", "description": "", "rule": {
                    "kind": "performed", "event": "purchase",
                    "where": [{"property": "plan", "op": "regex", "value": "("}]}})}],
            schema=defs._ARROW))
        vocabularies.save(s, pid, VOCAB, source="apply")
    proc, url = start_server(store_url, tmp_path / "server.log", env={
        "SEGMENTLY_REFRESH_SECONDS": "0"})
    try:
        for user, raw in USERS.items():
            _send(url, new.project.write_key, _events(user, raw))
        _send(url, new.project.write_key, _good())
        yield Poisoned(url, {"Authorization": f"Bearer {new.secret_key}"}, pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "server.log").read_text()


# the kinds that read a poisoned value, explained for a few users (an explanation is a
# query per user: all kinds for all users would take minutes)
EXPLAINED = ["aggregate", "property", "nps", "survey_answer", "sequence", "metric"]


def _routes(p: Poisoned) -> list[str]:
    spec = httpx.get(f"{p.url}/openapi.json").json()
    return [path for path, ops in spec["paths"].items()
            if "get" in ops and path.startswith("/api/")]


def test_every_kind_refreshes_and_every_read_route_answers(poisoned: Poisoned) -> None:
    p = poisoned
    http = httpx.Client(base_url=p.url, headers=p.auth, timeout=120)
    for name, rule in RULES.items():
        r = http.post("/api/segments", json={"name": name, "rule": rule})
        assert r.status_code == 201, (name, r.text)
        if name in EXPLAINED:  # the builder's live count: a full evaluation each
            preview = http.post("/api/rules/preview", json={"rule": rule})
            assert preview.status_code == 200 and preview.json()["valid"], (name, preview.text)
    refreshed = http.post("/api/refresh")
    assert refreshed.status_code == 200, refreshed.text
    by_name = {s["name"]: s for s in refreshed.json()["segments"]}
    assert {n for n, s in by_name.items() if s.get("error") is None} == set(RULES)
    assert "not a valid regex" in by_name["old_regex"]["error"]

    listed = {s["name"]: s for s in http.get("/api/segments").json()["segments"]}
    assert listed["old_regex"]["size"] is None
    assert "not a valid regex" in listed["old_regex"]["error"]["message"]
    assert all(listed[n]["error"] is None and listed[n]["size"] is not None for n in RULES)

    wrong = []
    users = [*USERS, GOOD, "nobody", "a/b", "%2F..", "x\u00e9"]
    by_raw = {raw: user for user, raw in USERS.items()}
    # the routes that evaluate for one user (a profile or an explanation: seconds each)
    # are asked for the users holding the values each engine once broke on
    few = [by_raw['"a\\u0000b"'], by_raw['"99999999999999999999"'], by_raw['"1e999"']]
    # a segment's routes read its snapshot and the profile run, whatever its kind (every
    # kind was evaluated by the refresh above): the kinds that read a poisoned value
    for route in _routes(p):
        names = EXPLAINED if "{name}" in route else [None]
        raw = route.endswith(("/timeline", "/traits"))  # what shows each value as stored
        ids = (users if raw else few) if "{user_id}" in route else [None]
        for name in names:
            for user in ids:
                path = route.replace("{name}", quote(name or "", safe="")) \
                    .replace("{user_id}", quote(user or "", safe=""))
                r = http.get(path)
                if r.status_code >= 500:
                    wrong.append(f"GET {path}: {r.status_code} {r.text[:200]}")
    assert not wrong, "\n".join(wrong[:20])


def test_a_rule_that_cannot_run_is_refused_and_stores_nothing(poisoned: Poisoned) -> None:
    http = httpx.Client(base_url=poisoned.url, headers=poisoned.auth, timeout=60)
    viewers = {"name": "viewers", "rule": {"kind": "performed", "event": "purchase"}}
    assert http.post("/api/segments", json=viewers).status_code == 201
    deadline = time.monotonic() + 60  # a saved segment is counted in the background
    while any(s["counting"] for s in http.get("/api/segments").json()["segments"]):
        assert time.monotonic() < deadline, "still counting after 60 s"
        time.sleep(0.1)
    before = http.get("/api/segments").json()["segments"]
    old = http.get("/api/segments/old_regex/members")
    assert old.status_code == 400 and "no longer validates" in old.text, old.text
    cases = [
        ("regex", {"kind": "property", "property": "plan", "op": "regex", "value": "("},
         "rule: value: not a valid regex"),
        ("where", {"kind": "performed", "event": "purchase",
                   "where": [{"property": "plan", "op": "regex", "value": "(a+)+$"}]},
         "rule.where[0]: value: a repeat inside a repeat"),
        ("survey", {"kind": "survey_answer", "question": "q1", "op": "regex", "value": "(?=x)"},
         "rule: value: only (?: ) groups"),
        ("deep", _deep(200), "nested more than 32 deep"),
        ("wide", {"all": [{"kind": "active"}] * 1000}, "more than 500 conditions"),
    ]
    for name, rule, message in cases:
        r = http.post("/api/segments", json={"name": name, "rule": rule})
        assert r.status_code == 400 and message in r.json()["message"], (name, r.text)
        r = http.post("/api/rules/preview", json={"rule": rule})  # the builder's live check
        assert r.status_code == 200 and not r.json()["valid"], (name, r.text)
        assert message in r.json()["error"] and r.json()["size"] is None, (name, r.text)
    assert http.get("/api/segments").json()["segments"] == before
    for as_of in ("0001-01-01T00:00:00", "9999-12-31T23:59:59", "0001-01-01T00:00:00+14:00",
                  "9999-12-31T23:00:00-14:00"):
        r = http.get("/api/segments/viewers/members", params={"as_of": as_of})
        assert r.status_code == 400, (as_of, r.text)
        r = http.get(f"/api/users/{GOOD}", params={"as_of": as_of})
        assert r.status_code == 400 and "outside the supported range" in r.text, r.text


def _deep(n: int) -> dict[str, Any]:
    rule: dict[str, Any] = {"kind": "active"}
    for _ in range(n):
        rule = {"not": rule}
    return rule
