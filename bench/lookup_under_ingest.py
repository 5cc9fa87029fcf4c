"""Membership lookups and `/healthz` while max-size batches stream in (issue 9).

    python bench/lookup_under_ingest.py [--users 20000] [--seconds 20] [--writers 2]
                                        [--batch 100000] [--server-src DIR]

1. A fresh DuckDB file gets `--users` users and 12 segments (bench/user_segments.py's
   `populate`); a real `segmently serve` (scheduled refresh off) starts on loopback and
   `POST /api/refresh` builds the in-memory membership index.
2. Baseline: for `--seconds`, one client thread asks `GET /api/users/{id}/segments` for
   random users and another `GET /healthz`, each in a loop over a keep-alive connection;
   every latency is measured on the client.
3. Under ingestion: the same, while `--writers` processes each send `POST /v1/events`
   batches of `--batch` events (100,000: the batch limit; ~11 MB of JSON, fresh message
   ids every time) back to back.
4. p50 / p95 / p99 / max of each route in each phase, and the batches' own figures.

`--server-src DIR` runs the server from another source tree (e.g. a `git archive` of an
older commit) to compare with it; the client side always runs this tree.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from user_segments import populate  # noqa: E402 - the same dataset as that benchmark


def start(db: str, log: Path, server_src: str | None) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SEGMENTLY_REFRESH_SECONDS": "0"}
    if server_src:
        env["PYTHONPATH"] = server_src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmently.cli", "--db", db, "serve", "--port", str(port)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
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


def writer(url: str, key: str, batch: int, n: int, stop: mp.Event,  # type: ignore[valid-type]
           out: mp.Queue) -> None:  # type: ignore[type-arg]
    """Send batches of `batch` fresh events until told to stop; report each batch's
    seconds and its answer."""
    with httpx.Client(base_url=url, timeout=600,
                      headers={"Authorization": f"Bearer {key}",
                               "Content-Type": "application/json"}) as client:
        sent = 0
        while not stop.is_set():
            body = orjson.dumps({"events": [
                {"type": "track", "event": "bench_ingest", "user_id": f"user-{i % 20000}",
                 "message_id": f"w{n}-{sent}-{i}", "properties": {"i": i, "plan": "pro"}}
                for i in range(batch)]})
            t0 = time.perf_counter()
            r = client.post("/v1/events", content=body)
            out.put((time.perf_counter() - t0, r.status_code, len(body)))
            sent += 1


def probe(url: str, path: str, headers: dict[str, str], seconds: float,
          users: int) -> list[float]:
    rng = random.Random(path)
    latencies = []
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for _ in range(20):  # warm-up: connection, key cache
            client.get(path.format(user=rng.randrange(users)))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            target = path.format(user=rng.randrange(users))
            t0 = time.perf_counter()
            r = client.get(target)
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 200, r.text
    return latencies


PROBES = {"lookup": "/api/users/user-{user}/segments", "healthz": "/healthz"}


def measure(url: str, secret: str, seconds: float, users: int) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    headers = {"Authorization": f"Bearer {secret}"}

    def run(name: str) -> None:
        found[name] = probe(url, PROBES[name], headers, seconds, users)

    threads = [threading.Thread(target=run, args=(name,)) for name in PROBES]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return found


def summary(latencies: list[float]) -> str:
    lat = sorted(latencies)

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(len(lat) * p))] * 1e3

    return (f"{len(lat):>6} | {statistics.median(lat) * 1e3:8.1f} | {q(0.95):8.1f} | "
            f"{q(0.99):8.1f} | {lat[-1] * 1e3:8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--server-src", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = f"duckdb://{Path(tmp) / 'bench.duckdb'}"
        secret, pid = populate(db, args.users, 12)
        from segmently.store import Store
        from segmently.store.projects import list_projects

        with Store(db) as store:
            key = next(p.write_key for p in list_projects(store) if p.project_id == pid)
        proc, url = start(db, Path(tmp) / "server.log", args.server_src)
        try:
            r = httpx.post(f"{url}/api/refresh", headers={"Authorization": f"Bearer {secret}"},
                           timeout=600)
            assert r.status_code == 200, r.text
            baseline = measure(url, secret, args.seconds, args.users)
            stop, out = mp.Event(), mp.Queue()
            writers = [mp.Process(target=writer, args=(url, key, args.batch, n, stop, out))
                       for n in range(args.writers)]
            began = time.perf_counter()
            for w in writers:
                w.start()
            time.sleep(2)  # the first batches are on their way
            loaded = measure(url, secret, args.seconds, args.users)
            stop.set()
            for w in writers:
                w.join(timeout=600)
            ingest_seconds = time.perf_counter() - began
            batches = []
            while not out.empty():
                batches.append(out.get())
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    print(f"{args.users} users, 12 segments; {args.writers} writer process(es) sending "
          f"{args.batch:,}-event batches; {args.seconds:g} s per phase"
          + (f"; server from {args.server_src}" if args.server_src else ""))
    print("| phase | route | requests | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for phase, found in (("no ingestion", baseline), ("batches streaming in", loaded)):
        for name, path in PROBES.items():
            cells = summary(found[name])
            print(f"| {phase} | `GET {path.replace('user-{user}', '{id}')}` | {cells} |")
    ok = [b for b in batches if b[1] == 200]
    if batches:
        secs = sorted(b[0] for b in batches)
        print(f"batches: {len(ok)} of {len(batches)} answered 200, "
              f"{statistics.mean(b[2] for b in batches) / 1e6:.1f} MB each, "
              f"{statistics.median(secs):.2f} s median each, "
              f"{len(ok) * args.batch / ingest_seconds:,.0f} events/s accepted")


if __name__ == "__main__":
    main()
