"""Latency of `GET /api/users/{id}/segments` (in-app targeting) against a real server.

    python bench/user_segments.py [--users 20000] [--segments 12] [--requests 5000] [--clients 4]

1. A fresh DuckDB file gets `--users` users with a few dozen events each (one
   `Store.append`), and `--segments` stored definitions (segments.definitions.save).
2. A real `segmently serve` (scheduled refresh off) starts on loopback; `POST /api/refresh`
   evaluates every definition and records snapshots, which rebuilds the in-memory
   membership index (timed).
3. `--clients` threads, each with one keep-alive httpx client, ask for random users'
   segments `--requests` times in all; the latency of every request is measured on the
   client (so it includes HTTP, JSON and the loopback round trip) and p50 / p99 / max are
   printed. A warm-up pass first loads the key cache.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from segmently.segments import definitions as defs
from segmently.store import Message, Store
from segmently.store.projects import create_project

EVENTS = ("report_viewed", "dashboard_opened", "export_clicked", "invite_sent", "login")


def populate(db: str, users: int, segments: int) -> tuple[str, str]:
    """Users with events spread over 60 days, and `segments` definitions; returns keys."""
    rng = random.Random(7)
    now = datetime.utcnow()
    messages = []
    for u in range(users):
        for k in range(rng.randint(1, 40)):
            messages.append(Message(
                message_id=f"m-{u}-{k}", type="track", event=rng.choice(EVENTS),
                timestamp=now - timedelta(minutes=rng.randint(1, 60 * 24 * 60)),
                source="bench", user_id=f"user-{u}"))
    with Store(db) as store:
        new = create_project(store, "bench")
        pid = new.project.project_id
        store.append(pid, messages)
        for i in range(segments):
            event = EVENTS[i % len(EVENTS)]
            defs.save(store, pid, f"seg_{i}", "", {
                "kind": "performed", "event": event, "at_least": 1 + i % 8,
                "window": {"last": 10 + 5 * i, "unit": "days"}})
    return new.secret_key, pid


def start(db: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmently.cli", "--db", db, "serve", "--port", str(port)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT,
        env={**__import__("os").environ, "SEGMENTLY_REFRESH_SECONDS": "0"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()}")


def hammer(url: str, key: str, users: int, requests: int, clients: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()

    def worker(n: int, seed: int) -> None:
        rng = random.Random(seed)
        mine = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as c:
            for _ in range(50):  # warm-up: connection, key cache
                c.get(f"/api/users/user-{rng.randrange(users)}/segments")
            for _ in range(n):
                t0 = time.perf_counter()
                r = c.get(f"/api/users/user-{rng.randrange(users)}/segments")
                mine.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(requests // clients, i))
               for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--segments", type=int, default=12)
    ap.add_argument("--requests", type=int, default=5_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"duckdb://{Path(tmp) / 'bench.duckdb'}"
        t0 = time.perf_counter()
        key, _ = populate(db, args.users, args.segments)
        loaded = time.perf_counter() - t0
        proc, url = start(db, Path(tmp) / "server.log")
        try:
            t0 = time.perf_counter()
            r = httpx.post(f"{url}/api/refresh", headers={"Authorization": f"Bearer {key}"},
                           timeout=600)
            refreshed = time.perf_counter() - t0
            assert r.status_code == 200, r.text
            sizes = {s["name"]: s["size"] for s in r.json()["segments"]}
            result: dict[str, object] = {"users": args.users, "segments": args.segments,
                                         "load_s": round(loaded, 2),
                                         "refresh_s": round(refreshed, 2),
                                         "clients": args.clients}
            for clients in sorted({1, args.clients}):
                lat = sorted(hammer(url, key, args.users, args.requests, clients))
                p = {f"c{clients}_p50_ms": statistics.median(lat) * 1e3,
                     f"c{clients}_p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3,
                     f"c{clients}_max_ms": lat[-1] * 1e3,
                     f"c{clients}_rps": len(lat) / max(sum(lat) / clients, 1e-9)}
                result.update({k: round(v, 2) for k, v in p.items()})
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"{args.users} users, {args.segments} segments (sizes: "
          f"{min(sizes.values())}..{max(sizes.values())}); load {result['load_s']} s, "
          f"refresh over HTTP {result['refresh_s']} s")
    for clients in sorted({1, args.clients}):
        print(f"GET /api/users/{{id}}/segments, {clients} client(s): "
              f"p50 {result[f'c{clients}_p50_ms']} ms, p99 {result[f'c{clients}_p99_ms']} ms, "
              f"max {result[f'c{clients}_max_ms']} ms, ~{result[f'c{clients}_rps']:.0f} req/s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
