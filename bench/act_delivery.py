"""Acting on segments: what a refresh pays for the outbox, deliveries per second, and the
latency from a refresh to the receiver, each beside its baseline in one run.

    python bench/act_delivery.py [--users 100000] [--messages 2000] [--refreshes 20]

1. Outbox cost: two copies of one DuckDB file (`--users` users, 12 segments, each user in
   about half); the first refresh of each copy is timed, one with a webhook subscribed to
   every segment (changes, batches of 100: every entry queued in the refresh's
   transaction), one without. The ratio is what the outbox costs a refresh.
2. Throughput: `--messages` queued messages of one user each (batch_size 1) drained by
   `act.delivery.deliver_due` into a local receiver (threaded, HTTP/1.1 keep-alive),
   against the baseline: the same number of signed POSTs of the same size sent by httpx
   in a loop (the receiver's and the client's own ceiling).
3. Latency: a real `segmently serve` (its delivery loop on, scheduled refresh off);
   `--refreshes` times, one user's event moves them into a segment, `POST /api/refresh`,
   and the receiver notes when the entry arrives: p50 / p99 of refresh-answered-to-
   received, and of the refresh itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from segmently.act import delivery
from segmently.act import destinations as dests
from segmently.act.sending import signature_headers
from segmently.core import Project
from segmently.settings import Settings
from segmently.store import Message, Store, utcnow
from segmently.store.projects import create_project

SETTINGS = Settings(allow_private_destinations=True)


class Receiver:
    """A loopback HTTP receiver that answers 204 and notes each request's arrival."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.arrivals.append((time.perf_counter(), json.loads(body or b"{}")))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


def populate(db: str, users: int) -> str:
    now = utcnow()
    with Store(db) as store:
        pid = create_project(store, "bench").project.project_id
        store.append(pid, [Message(message_id=f"m{u}-{k}", type="track", event=f"e{k % 4}",
                                   timestamp=now - timedelta(hours=1 + (u * 7 + k) % 500),
                                   source="bench", user_id=f"u{u}")
                           for u in range(users) for k in range(u % 5)])
        project = Project(store, pid)
        for i in range(12):
            project.save(f"seg_{i}", "", {"kind": "performed", "event": f"e{i % 4}",
                                          "at_least": 1 + i % 2,
                                          "window": {"last": 10 + i, "unit": "days"}})
    return pid


def outbox_cost(tmp: Path, users: int, url: str) -> dict[str, float]:
    db = tmp / "cost.duckdb"
    pid = populate(f"duckdb://{db}", users)
    shutil.copy(db, tmp / "with.duckdb")
    out: dict[str, float] = {}
    for name in ("without", "with"):
        path = db if name == "without" else tmp / "with.duckdb"
        with Store(f"duckdb://{path}") as store:
            project = Project(store, pid)
            if name == "with":
                project.save_destination({"name": "hook", "kind": "webhook", "url": url,
                                          "subscriptions": [{"segments": [
                                              f"seg_{i}" for i in range(12)]}]})
            started = time.perf_counter()
            done = project.refresh()
            out[f"refresh_{name}_s"] = time.perf_counter() - started
            out["entries"] = float(sum(r.entered for r in done))
    out["ratio"] = out["refresh_with_s"] / out["refresh_without_s"]
    return out


def throughput(tmp: Path, messages: int, receiver: Receiver) -> dict[str, float]:
    db = f"duckdb://{tmp / 'throughput.duckdb'}"
    pid = populate(db, messages)
    with Store(db) as store:
        project = Project(store, pid)
        project.save_destination({"name": "hook", "kind": "webhook", "url": receiver.url,
                                  "subscriptions": [{"segments": ["seg_0"],
                                                     "changes": ["entered"],
                                                     "batch_size": 1}]})
        queued = sum(r.entered for r in project.refresh() if r.segment == "seg_0")
        before = len(receiver.arrivals)
        started = time.perf_counter()
        sent = 0
        while True:
            report = delivery.deliver_due(store, SETTINGS, pid)
            sent += report.delivered
            if report.delivered == 0:
                break
        ours = time.perf_counter() - started
        assert len(receiver.arrivals) - before == queued == sent, "every message, once"
        dest = dests.get(store, pid, "hook")
    body = json.dumps({"type": "segment.entered", "users": [{"user_id": "u1"}]}).encode()
    started = time.perf_counter()
    with httpx.Client() as client:
        for i in range(queued):
            headers = signature_headers(dest, f"msg_{i}", body)
            client.post(receiver.url, content=body, headers=headers)
    baseline = time.perf_counter() - started
    return {"messages": float(queued), "segmently_per_s": queued / ours,
            "baseline_per_s": queued / baseline, "ratio": baseline / ours}


def latency(tmp: Path, refreshes: int, receiver: Receiver) -> dict[str, float]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import start_server  # the suite's launcher: a real `segmently serve`

    db = f"duckdb://{tmp / 'latency.duckdb'}"
    with Store(db) as store:
        made = create_project(store, "bench")
        project = Project(store, made.project.project_id)
        project.save("buyers", "", {"kind": "performed", "event": "buy",
                                    "window": {"last": 7, "unit": "days"}})
        project.save_destination({"name": "hook", "kind": "webhook", "url": receiver.url,
                                  "subscriptions": [{"segments": ["buyers"],
                                                     "changes": ["entered"]}]})
    proc, url = start_server(db, tmp / "server.log", env={
        "SEGMENTLY_REFRESH_SECONDS": "0", "SEGMENTLY_DELIVER_SECONDS": "1",
        "SEGMENTLY_ALLOW_PRIVATE_DESTINATIONS": "1", **os.environ})
    waits, refresh_times = [], []
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            for i in range(refreshes):
                r = http.post("/v1/batch", auth=(made.project.write_key, ""), json={
                    "batch": [{"type": "track", "event": "buy", "userId": f"b{i}",
                               "messageId": f"buy-{i}"}]})
                assert r.status_code == 200, r.text
                before = len(receiver.arrivals)
                started = time.perf_counter()
                assert http.post("/api/refresh", headers={
                    "Authorization": f"Bearer {made.secret_key}"}).status_code == 200
                answered = time.perf_counter()
                refresh_times.append(answered - started)
                while len(receiver.arrivals) == before:
                    time.sleep(0.002)
                waits.append(receiver.arrivals[-1][0] - answered)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    waits.sort()
    return {"refreshes": float(refreshes), "p50_ms": statistics.median(waits) * 1e3,
            "p99_ms": waits[min(len(waits) - 1, int(len(waits) * 0.99))] * 1e3,
            "max_ms": waits[-1] * 1e3,
            "refresh_p50_ms": statistics.median(refresh_times) * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--refreshes", type=int, default=20)
    args = parser.parse_args()
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        results = {"outbox_cost": outbox_cost(tmp, args.users, receiver.url),
                   "throughput": throughput(tmp, args.messages, receiver),
                   "latency": latency(tmp, args.refreshes, receiver)}
    print(json.dumps({k: {n: round(v, 3) for n, v in r.items()} for k, r in results.items()},
                     indent=2))


if __name__ == "__main__":
    main()
