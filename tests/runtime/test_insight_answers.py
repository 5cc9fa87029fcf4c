"""The insight answers serve keeps (`runtime/insights.py`): computed once per key, kept
until the project changes (then the recently asked ones are recomputed in the
background), expired after max_age; and over HTTP against a real serve: a second request
reads the kept answer, a refresh replaces it, `fresh=true` computes anew, a bad parameter
is a 400 before anything is computed."""

from __future__ import annotations

import threading
import time

import httpx

from conftest import Server
from segmently.runtime.insights import Answers


def counter() -> tuple[list[int], object]:
    calls: list[int] = []

    def compute() -> dict[str, object]:
        calls.append(1)
        return {"n": len(calls)}

    return calls, compute


def test_kept_until_the_project_changes_then_recomputed() -> None:
    answers = Answers()
    calls, compute = counter()
    key = answers.key("p1", "retention", {"period": "week"})
    assert answers.get(key, compute)["n"] == 1  # type: ignore[arg-type]
    assert answers.get(key, compute)["n"] == 1  # type: ignore[arg-type]
    assert len(calls) == 1
    answers.changed("p2")  # another project: nothing happens to p1's
    assert answers.get(key, compute)["n"] == 1  # type: ignore[arg-type]
    answers.changed("p1")  # recomputed in the background, asked for a moment ago
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(calls) == 2
    assert answers.get(key, compute)["n"] == 2  # type: ignore[arg-type]
    assert len(calls) == 2  # the warmed answer, not a third computation


def test_expiry_and_one_computation_at_a_time() -> None:
    answers = Answers(max_age=0.2)
    gate = threading.Event()
    calls: list[int] = []

    def slow() -> dict[str, object]:
        calls.append(1)
        gate.wait(5)
        return {"n": len(calls)}

    key = answers.key("p", "stickiness", {})
    results: list[dict[str, object]] = []
    threads = [threading.Thread(target=lambda: results.append(answers.get(key, slow)))
               for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join(5)
    assert len(calls) == 1 and [r["n"] for r in results] == [1, 1, 1]
    time.sleep(0.3)
    assert answers.get(key, slow)["n"] == 2  # older than max_age: computed again


def test_over_http(server: Server) -> None:
    h = {"Authorization": f"Bearer {server.secret_key}"}
    made = httpx.post(server.url + "/api/segments", headers=h, json={
        "name": "buyers", "rule": {"kind": "performed", "event": "buy"}})
    assert made.status_code == 201
    url = server.url + "/api/insights/segment_changes"
    first = httpx.get(url, params={"period": "day"}, headers=h).json()
    again = httpx.get(url, params={"period": "day"}, headers=h).json()
    assert again["computed_at"] == first["computed_at"]
    assert httpx.post(server.url + "/api/refresh", headers=h).status_code == 200
    later = httpx.get(url, params={"period": "day"}, headers=h).json()
    assert later["computed_at"] > first["computed_at"]  # the refresh replaced it
    fresh = httpx.get(url, params={"period": "day", "fresh": "true"}, headers=h).json()
    assert fresh["computed_at"] > first["computed_at"]
    bad = httpx.get(url, params={"period": "fortnight"}, headers=h)
    assert bad.status_code == 400 and "period" in bad.json()["message"]
    assert httpx.get(server.url + "/api/insights/nope", headers=h).status_code == 404
