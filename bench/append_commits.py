"""Benchmark: group commits on DuckDB (`Store.append_rows`, the path HTTP ingestion and
imports share), many small commits against a project that already holds many ids.

    .venv/bin/python bench/append_commits.py [--existing 1000000] [--commits 60] [--events 4000]

Fills a fresh DuckDB file with `--existing` events received now (all inside the dedup
window, so every commit's lookup sees them), then times `--commits` appends of `--events`
new events each, as the group-commit writer makes them (one transaction each: dedup,
events, rollups). Prints wall and CPU time per commit. Run it with PYTHONPATH=DIR/src to
time another source tree (a `git archive` of an older commit) for before/after figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import segmently
from segmently.store import Store
from segmently.store.projects import create_project
from segmently.store.rows import Message, to_rows


def batch(project_id: str, n: int, tag: str, now: datetime):  # type: ignore[no-untyped-def]
    msgs = [Message(message_id=f"{tag}-{i}", type="track", event=f"e{i % 5}",
                    timestamp=now - timedelta(minutes=i % 600), source="http",
                    user_id=f"u{i % 5000}", properties={"i": i}) for i in range(n)]
    return to_rows(project_id, msgs, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--existing", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=60)
    parser.add_argument("--events", type=int, default=4000)
    args = parser.parse_args()
    print(f"code: {Path(segmently.__file__).parent}; load average {os.getloadavg()[0]:.2f}")
    now = datetime.utcnow()  # noqa: DTZ003
    with tempfile.TemporaryDirectory() as tmp, Store(f"duckdb://{tmp}/c.duckdb") as store:
        pid = create_project(store, "bench").project.project_id
        store.con.raw_sql("SET enable_progress_bar = false")
        for k in range(0, args.existing, 50_000):
            store.append_new_rows(pid, batch(pid, min(50_000, args.existing - k), f"old{k}", now))
        batches = [batch(pid, args.events, f"new{k}", now) for k in range(args.commits)]
        began, cpu = time.perf_counter(), time.process_time()
        for rows in batches:
            assert store.append_rows(pid, rows).stored == args.events
        wall, cpu = time.perf_counter() - began, time.process_time() - cpu
    print(f"{args.commits} commits of {args.events:,} events against {args.existing:,} ids: "
          f"{wall / args.commits * 1000:.1f} ms/commit wall, {cpu / args.commits * 1000:.1f} "
          f"ms CPU; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
