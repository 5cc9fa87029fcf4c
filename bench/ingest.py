"""HTTP ingestion throughput with durable acknowledgement, beside DuckDB's own ceiling.

    python bench/ingest.py [--events 500000] [--batch 500] [--clients 8]

1. HTTP: a real `segmently serve` on a fresh DuckDB file; N client threads (httpx,
   keep-alive) post batches of `--batch` Segment track calls to `/v1/batch` (or native
   events to `/v1/events` with `--endpoint events`). Every request must answer 200, which
   the server sends only after the events are committed; the stored count is checked
   after the server stops. Request bodies are serialized before the clock starts, so the
   clients' share of the (shared) CPU is the HTTP exchange only.
2. Baseline: the same events, already as Arrow rows, inserted straight into DuckDB from
   Python: one transaction per `--batch` rows, then all rows in one transaction.
3. In-process: `Store.append` with Message objects (rows + dedup + insert, no HTTP).

Prints events/s for each; `--json` prints them as one JSON object too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from queue import Empty, Queue

import duckdb
import httpx
import orjson

from segmently.store import Message, Store, schema, to_rows
from segmently.store.projects import create_project

T0 = datetime(2026, 3, 1, 12, 0, 0)
EVENTS = ("report_viewed", "dashboard_opened", "export_clicked", "invite_sent", "login")


def segment_call(i: int) -> dict[str, object]:
    return {"type": "track", "event": EVENTS[i % len(EVENTS)], "userId": f"user-{i % 5000}",
            "messageId": f"m-{i}", "timestamp": (T0 + timedelta(seconds=i)).isoformat() + "Z",
            "properties": {"plan": "pro" if i % 3 else "free", "n": i % 97,
                           "path": f"/reports/{i % 50}"}}


def native_event(i: int) -> dict[str, object]:
    call = segment_call(i)
    return {"event": call["event"], "user_id": call["userId"], "message_id": call["messageId"],
            "timestamp": call["timestamp"], "properties": call["properties"]}


def bodies(total: int, batch: int, endpoint: str, write_key: str) -> list[bytes]:
    out = []
    for start in range(0, total, batch):
        ids = range(start, min(start + batch, total))
        if endpoint == "batch":
            body = {"batch": [segment_call(i) for i in ids], "writeKey": write_key}
        else:
            body = {"events": [native_event(i) for i in ids]}
        out.append(orjson.dumps(body))
    return out


def messages(total: int) -> list[Message]:
    return [Message(message_id=f"m-{i}", type="track", event=EVENTS[i % len(EVENTS)],
                    timestamp=T0 + timedelta(seconds=i), source="segment",
                    user_id=f"user-{i % 5000}",
                    properties=segment_call(i)["properties"])  # type: ignore[arg-type]
            for i in range(total)]


def start_server(db: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "segmently.cli", "--db", db, "serve", "--port", str(port)]
    proc = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def profile(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy (pip install py-spy) sampling the server until it exits."""
    spy = Path(sys.executable).with_name("py-spy")
    fmt = "speedscope" if out.endswith(".json") else "flamegraph"
    extra = os.environ.get("PYSPY_ARGS", "").split()  # e.g. --gil, --native
    proc = subprocess.Popen([str(spy), "record", *extra, "--pid", str(pid), "-o", out,
                             "--format", fmt], stdout=subprocess.DEVNULL)
    time.sleep(1)  # let it attach before the load starts
    return proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_all(url: str, path: str, work: Queue[bytes], headers: dict[str, str],
             errors: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
        while True:
            try:
                body = work.get_nowait()
            except Empty:
                return
            r = http.post(path, content=body)
            if r.status_code != 200:
                errors.append(f"{r.status_code} {r.text[:200]}")
                return


def bench_http(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    db = f"duckdb://{workdir / 'http.duckdb'}"
    with Store(db) as s:
        key = create_project(s, "bench").project
    payloads = bodies(args.events, args.batch, args.endpoint, key.write_key)
    path = "/v1/batch" if args.endpoint == "batch" else "/v1/events"
    headers = {"Content-Type": "application/json"}
    if args.endpoint == "events":
        headers["Authorization"] = f"Bearer {key.write_key}"
    port = free_port()
    proc = start_server(db, port, workdir / "server.log")
    spy = profile(proc.pid, args.profile) if args.profile else None
    try:
        work: Queue[bytes] = Queue()
        for body in payloads:
            work.put(body)
        errors: list[str] = []
        threads = [threading.Thread(target=post_all, args=(f"http://127.0.0.1:{port}", path,
                                                           work, headers, errors))
                   for _ in range(args.clients)]
        server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(proc.pid) - server_cpu
        client_cpu = time.process_time() - client_cpu
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        if spy is not None:
            spy.wait(timeout=120)
    if errors:
        raise SystemExit(f"requests failed: {errors[:3]}")
    with Store(db) as s:
        stored = s.events(key.project_id).count().to_pyarrow().as_py()
    if stored != args.events:
        raise SystemExit(f"stored {stored} events, sent {args.events}")
    return {"seconds": elapsed, "events_per_s": args.events / elapsed,
            "server_cpu_us_per_event": server_cpu / args.events * 1e6,
            "client_cpu_us_per_event": client_cpu / args.events * 1e6}


def bench_duckdb(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    rows = to_rows("p", messages(args.events), T0).events
    out: dict[str, float] = {}
    for name, size in (("batches", args.batch), ("one", args.events)):
        path = workdir / f"raw-{name}.duckdb"
        with Store(f"duckdb://{path}"):
            pass  # the store's schema
        con = duckdb.connect(str(path))
        started = time.perf_counter()
        for start in range(0, rows.num_rows, size):
            chunk = rows.slice(start, size)  # noqa: F841 (read by DuckDB by name)
            con.execute("BEGIN TRANSACTION")
            con.execute(f"INSERT INTO {schema.EVENTS} SELECT * FROM chunk")
            con.execute("COMMIT")
        out[f"{name}_events_per_s"] = args.events / (time.perf_counter() - started)
        con.close()
    return out


def bench_store(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    msgs = messages(args.events)
    with Store(f"duckdb://{workdir / 'store.duckdb'}") as store:
        started = time.perf_counter()
        for start in range(0, len(msgs), args.batch * 20):  # a group commit of 20 requests
            store.append("p", msgs[start:start + args.batch * 20])
        elapsed = time.perf_counter() - started
    return {"events_per_s": args.events / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--endpoint", choices=["batch", "events"], default="batch")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", metavar="FILE",
                        help="run the server under py-spy; .svg flamegraph or .json speedscope")
    args = parser.parse_args()
    results: dict[str, object] = {"load_before": os.getloadavg()[0], "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="segmently-bench-") as tmp:
        workdir = Path(tmp)
        results["http"] = http = bench_http(args, workdir)
        print(f"HTTP {args.endpoint}: {args.events} events, {args.clients} clients, batches of "
              f"{args.batch}: {http['seconds']:.1f} s, {http['events_per_s']:,.0f} events/s "
              "(acknowledged after commit)")
        print(f"  CPU per event: server {http['server_cpu_us_per_event']:.1f} us, "
              f"clients {http['client_cpu_us_per_event']:.1f} us")
        if not args.skip_baseline:
            results["duckdb"] = raw = bench_duckdb(args, workdir)
            print(f"DuckDB direct, Arrow, one commit per {args.batch}: "
                  f"{raw['batches_events_per_s']:,.0f} events/s; one transaction: "
                  f"{raw['one_events_per_s']:,.0f} events/s")
            results["store"] = st = bench_store(args, workdir)
            print(f"Store.append in-process (Message -> rows -> dedup -> insert, "
                  f"{args.batch * 20} per commit): {st['events_per_s']:,.0f} events/s")
    results["load_after"] = os.getloadavg()[0]
    print(f"load average (1 min): {results['load_before']:.2f} before, "
          f"{results['load_after']:.2f} after")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
