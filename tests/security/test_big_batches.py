"""Big batches are decoded and validated in worker threads (issue 9: "Parsing and
validating large batches must not stall the event loop"), and that path keeps every
promise of the inline one: all or nothing, errors naming the event, every event stored.

How much the event loop is spared is measured by bench/lookup_under_ingest.py, not here
(no timing in tests). Here: a max-size native batch, a gzip one, Segment and PostHog
batches, a dozen big batches at once (more than the worker limit, so some wait their
turn) with lookups answered meanwhile; then the stored rows are counted in the file.
"""

from __future__ import annotations

import gzip
import threading
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from requestkit import basic

from segmently.collect.limits import Limits
from segmently.store import Store

if TYPE_CHECKING:  # a bare `import conftest` may find another directory's conftest.py
    from conftest import Server

MAX_EVENTS = Limits().max_batch_events


def native(prefix: str, n: int) -> dict[str, Any]:
    return {"events": [{"type": "track", "event": "big", "user_id": f"u{i % 500}",
                        "message_id": f"{prefix}-{i}", "properties": {"i": i}}
                       for i in range(n)]}


def stored(server: Server) -> dict[str, int]:
    """Events per message-id prefix, read from the file once the server has stopped."""
    server.stop()
    with Store(server.db) as store:
        ids = store.events(server.project_id).message_id.to_pyarrow().to_pylist()
    counts: dict[str, int] = {}
    for message_id in ids:
        prefix = message_id.rsplit("-", 1)[0]
        counts[prefix] = counts.get(prefix, 0) + 1
    return counts


def test_big_batches_of_every_format_are_stored_whole(server: Server) -> None:
    write = {"Authorization": f"Bearer {server.write_key}"}
    sent: dict[str, int] = {}
    with httpx.Client(base_url=server.url, timeout=600) as client:
        r = client.post("/v1/events", content=orjson.dumps(native("max", MAX_EVENTS)),
                        headers={**write, "Content-Type": "application/json"})
        assert r.json() == {"success": True, "accepted": MAX_EVENTS}
        sent["max"] = MAX_EVENTS
        r = client.post("/v1/events", content=gzip.compress(orjson.dumps(native("gz", 50_000))),
                        headers={**write, "Content-Encoding": "gzip"})
        assert r.json() == {"success": True, "accepted": 50_000}
        sent["gz"] = 50_000
        calls = [{"type": "track", "event": "big", "userId": f"u{i}", "messageId": f"seg-{i}"}
                 for i in range(30_000)]
        r = client.post("/v1/batch", json={"batch": calls},
                        headers={"Authorization": basic(server.write_key)})
        assert r.json() == {"success": True}
        sent["seg"] = 30_000
        events = [{"event": "big", "distinct_id": f"u{i}", "uuid": f"ph-{i}"}
                  for i in range(30_000)]
        r = client.post("/batch/", json={"api_key": server.write_key, "batch": events})
        assert r.json() == {"status": 1}
        sent["ph"] = 30_000

        bad = native("bad", 60_000)
        bad["events"][54_321]["timestamp"] = "yesterday"
        r = client.post("/v1/events", json=bad, headers=write)
        assert r.status_code == 400
        assert r.json()["message"].startswith("events[54321].timestamp: ")
        r = client.post("/v1/events", json=native("over", MAX_EVENTS + 1), headers=write)
        assert (r.status_code, r.json()["code"]) == (413, "batch_too_large")
    assert stored(server) == sent  # nothing of the refused batches


def test_many_big_batches_at_once_while_lookups_answer(server: Server) -> None:
    write = {"Authorization": f"Bearer {server.write_key}", "Content-Type": "application/json"}
    bodies = {f"c{n}": orjson.dumps(native(f"c{n}", 20_000)) for n in range(12)}
    answers: dict[str, int] = {}
    lock = threading.Lock()

    def send(prefix: str) -> None:
        r = httpx.post(f"{server.url}/v1/events", content=bodies[prefix], headers=write,
                       timeout=600)
        with lock:
            answers[prefix] = r.json()["accepted"]

    threads = [threading.Thread(target=send, args=(p,)) for p in bodies]
    for t in threads:
        t.start()
    lookups = 0
    with httpx.Client(base_url=server.url, timeout=120, headers={
            "Authorization": f"Bearer {server.secret_key}"}) as api:
        while any(t.is_alive() for t in threads):
            assert api.get("/healthz").status_code == 200
            assert api.get("/api/users/u1/segments").json() == {"user_id": "u1",
                                                                 "segments": []}
            lookups += 1
    for t in threads:
        t.join()
    assert answers == {p: 20_000 for p in bodies}
    assert lookups > 0
    assert stored(server) == {p: 20_000 for p in bodies}
