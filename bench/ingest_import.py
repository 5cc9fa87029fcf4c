"""Benchmark: `segmently import` of a Parquet file, against DuckDB's own Parquet insert.

    .venv/bin/python bench/ingest_import.py [--rows 2000000]

Generates a Parquet file of N events (user id, event name, native timestamp, three
property columns, no message ids, so every row id is a content hash), then times, in
this same run and on the same machine:

- baseline: `INSERT INTO t SELECT * FROM read_parquet(...)` into a fresh DuckDB table of
  the file's shape (DuckDB's native loader: no conversion, no dedup, no JSON);
- `segmently --db fresh.duckdb import file.parquet` as a subprocess (CLI start-up,
  conversion, dedup and the store's transactions included).

Prints rows/s for both and the ratio. The target is >= 500,000 rows/s for the import.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from segmently.store import Store
from segmently.store.projects import create_project

EVENTS = np.array(["Signed Up", "Logged In", "Report Viewed", "Invite Sent", "Payment Made"])
PLANS = np.array(["free", "pro", "team"])


def generate(path: Path, rows: int, chunk: int = 500_000) -> None:
    """Write N events in row groups, never holding more than one chunk in memory."""
    rng = np.random.default_rng(7)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    writer = None
    for lo in range(0, rows, chunk):
        n = min(chunk, rows - lo)
        batch = pa.table({
            "user_id": pa.array(np.char.add("u", rng.integers(0, 50_000, n).astype(str))),
            "event": pa.array(EVENTS[rng.integers(0, len(EVENTS), n)]),
            "timestamp": pa.array(start + rng.integers(0, 180 * 86_400 * 10**6, n),
                                  pa.timestamp("us", tz="UTC")),
            "plan": pa.array(PLANS[rng.integers(0, len(PLANS), n)]),
            "amount": pa.array(rng.random(n) * 100),
            "page": pa.array(np.char.add("/p/", rng.integers(0, 200, n).astype(str))),
        })
        writer = writer or pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch)
    assert writer is not None
    writer.close()


def baseline(path: Path, db: Path) -> float:
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?) LIMIT 0", [str(path)])
    began = time.perf_counter()
    con.execute("INSERT INTO t SELECT * FROM read_parquet(?)", [str(path)])
    elapsed = time.perf_counter() - began
    con.close()
    return elapsed


def segmently_import(path: Path, db: Path) -> tuple[float, dict[str, object]]:
    with Store(f"duckdb://{db}") as store:
        create_project(store, "bench")
    began = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "segmently.cli", "--db", str(db), "--json", "import", str(path)],
        capture_output=True, text=True,
    )
    took = time.perf_counter() - began
    if out.returncode != 0:
        raise SystemExit(f"segmently import failed:\n{out.stdout}\n{out.stderr}")
    return took, json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.parquet"
        began = time.perf_counter()
        generate(path, args.rows)
        print(f"generated {args.rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) "
              f"in {time.perf_counter() - began:.1f}s")
        base = baseline(path, Path(tmp) / "baseline.duckdb")
        took, report = segmently_import(path, Path(tmp) / "segmently.duckdb")
    assert report["stored"] == args.rows, report
    print(f"baseline  duckdb INSERT ... read_parquet: {base:6.2f}s  "
          f"{args.rows / base:>12,.0f} rows/s")
    print(f"segmently import (CLI, end to end):      {took:6.2f}s  "
          f"{args.rows / took:>12,.0f} rows/s")
    print(f"ratio segmently/baseline throughput: {base / took:.2f}")


if __name__ == "__main__":
    main()
