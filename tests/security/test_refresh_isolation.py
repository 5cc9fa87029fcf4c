"""One project's long refresh does not block another project's (issue 9: "today a global
lock").

A real `segmently serve` holds two projects: the demo product (6,000 users, ~400,000
events, the 16 built-in segments over the demo workspace: seconds to refresh) and a
three-event project with one segment. While the big project's `POST /api/refresh` runs,
the small project is refreshed again and again. With one lock for every project, a small
refresh requested after the big one took the lock cannot finish before it: at most one,
slipping in ahead of it, is answered first (none, in practice). With a lock per project
several are (3-4 here). Only that ordering is asserted, never a duration.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from segmently.core import Project
from segmently.demo import DemoOptions, run_demo
from segmently.demo.workspace import demo_workspace
from segmently.segments import definitions as defs
from segmently.store import Message, Store, utcnow
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # real servers, a big project

MIN_OVERTAKEN = 2


def test_a_small_project_refreshes_while_a_big_one_does(tmp_path: Path) -> None:
    db = f"duckdb://{tmp_path / 'two.duckdb'}"
    with Store(db) as store:
        big = run_demo(store, DemoOptions(users=20000, days=60, seed=3), "big")
        Project(store, big.project_id).apply(demo_workspace("big"))
        small = create_project(store, "small")
        store.append(small.project.project_id, [
            Message(message_id=f"s{i}", type="track", event="e", source="test",
                    timestamp=utcnow() - timedelta(days=i), user_id=f"u{i}")
            for i in range(3)])
        defs.save(store, small.project.project_id, "anyone", "",
                  {"kind": "last_seen", "within_last_days": 30})
    assert big.secret_key is not None
    proc, url = start_server(db, tmp_path / "server.log", env={
        "SEGMENTLY_REFRESH_SECONDS": "0"})
    try:  # (a clock read below only orders the two requests; nothing is timed)
        small_api = httpx.Client(base_url=url, timeout=120, headers={
            "Authorization": f"Bearer {small.secret_key}"})
        assert small_api.post("/api/refresh").status_code == 200  # warm: tables exist
        big_answer: list[httpx.Response] = []
        big_done = threading.Event()

        def refresh_big() -> None:
            big_answer.append(httpx.post(f"{url}/api/refresh", timeout=600, headers={
                "Authorization": f"Bearer {big.secret_key}"}))
            big_done.set()

        thread = threading.Thread(target=refresh_big)
        thread.start()
        time.sleep(0.2)  # the big refresh is requested first
        overtaken = 0
        while not big_done.is_set():
            answer = small_api.post("/api/refresh")
            assert answer.status_code == 200
            if not big_done.is_set():
                overtaken += 1  # requested after the big one, answered before it
        thread.join()
        assert big_answer[0].status_code == 200, big_answer[0].text
        assert len(big_answer[0].json()["segments"]) == len(demo_workspace("big").segments)
        assert overtaken >= MIN_OVERTAKEN, overtaken
    finally:
        proc.terminate()
        proc.wait(timeout=30)
