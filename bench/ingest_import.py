"""Benchmark: `segmently import` of Parquet, CSV and JSON lines beside DuckDB's own read.

    .venv/bin/python bench/ingest_import.py [--rows 2000000] [--json-rows 500000]
        [--formats parquet,csv,jsonl] [--src DIR] [--parts]

Generates N events (user id, event name, timestamp, three property columns, no message
ids, so every id is `imp_<md5>:<n>`) as Parquet, CSV and JSON lines (the JSON file holds
`--json-rows` of them: the row-by-row path is slower), then times, in this same run:

- DuckDB's own read of each file: `INSERT INTO t SELECT * FROM read_parquet/read_csv/
  read_json(...)` into a fresh DuckDB file (no conversion, no ids, no dedup, no rollups);
- `segmently --db fresh.duckdb import FILE` as a subprocess (start-up, conversion, ids,
  dedup, rollups, the store's transactions and its closing checkpoint), with the peak
  resident memory of that process (`os.wait4`);
- with `--parts`, where an import's time goes, in-process on the Parquet file: converting
  only (no store), and a plain INSERT of the converted event rows into an empty `events`
  table (no dedup, no rollups): the floor of any import that stores these 12 columns.

`--src DIR` runs the CLI from another source tree (DIR/src on PYTHONPATH), e.g. a `git
archive` of an older commit, for before/after figures. Prints rows/s and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

EVENTS = np.array(["Signed Up", "Logged In", "Report Viewed", "Invite Sent", "Payment Made"])
PLANS = np.array(["free", "pro", "team"])
READERS = {"parquet": "read_parquet(?)", "csv": "read_csv(?)", "jsonl": "read_json(?)"}


def chunks(rows: int, chunk: int = 500_000) -> Iterator[pa.Table]:
    """N events in chunks (never more than one chunk of them in memory at once)."""
    rng = np.random.default_rng(7)
    start = np.datetime64("2024-01-01T00:00:00", "us").astype(np.int64)
    for lo in range(0, rows, chunk):
        n = min(chunk, rows - lo)
        yield pa.table({
            "user_id": pa.array(np.char.add("u", rng.integers(0, 50_000, n).astype(str))),
            "event": pa.array(EVENTS[rng.integers(0, len(EVENTS), n)]),
            "timestamp": pa.array(start + rng.integers(0, 180 * 86_400 * 10**6, n),
                                  pa.timestamp("us", tz="UTC")),
            "plan": pa.array(PLANS[rng.integers(0, len(PLANS), n)]),
            "amount": pa.array(rng.random(n) * 100),
            "page": pa.array(np.char.add("/p/", rng.integers(0, 200, n).astype(str))),
        })


def generate(path: Path, rows: int) -> None:
    """The file of `rows` events in the format of its extension."""
    kind = path.suffix.lstrip(".")
    writer = None
    with path.open("wb") as fh:
        for table in chunks(rows):
            if kind == "parquet":
                writer = writer or pq.ParquetWriter(fh, table.schema)
                writer.write_table(table)
            elif kind == "csv":
                ts = table["timestamp"].cast(pa.timestamp("us"))  # ISO text, no offset: UTC
                pacsv.write_csv(table.set_column(2, "timestamp", ts), fh,
                                pacsv.WriteOptions(include_header=fh.tell() == 0))
            else:
                for row in table.to_pylist():
                    row["timestamp"] = row["timestamp"].isoformat()
                    fh.write(orjson.dumps(row) + b"\n")
        if writer is not None:
            writer.close()


def duckdb_read(path: Path, db: Path) -> tuple[float, float]:
    """(seconds, CPU seconds) of DuckDB's own loader: the file into a fresh table of its
    shape, on disk."""
    con = duckdb.connect(str(db))
    con.execute("SET enable_progress_bar = false")
    reader = READERS[path.suffix.lstrip(".")]
    con.execute(f"CREATE TABLE t AS SELECT * FROM {reader} LIMIT 0", [str(path)])
    began, cpu = time.perf_counter(), time.process_time()
    con.execute(f"INSERT INTO t SELECT * FROM {reader}", [str(path)])
    con.close()
    return time.perf_counter() - began, time.process_time() - cpu


def segmently_import(path: Path, db: Path, src: Path | None) -> tuple[
        float, int, float, dict[str, Any]]:
    """(seconds, peak RSS bytes, CPU seconds, report) of the CLI importing `path` into a
    fresh file. CPU seconds (user + system, all threads) depend far less on what else
    the machine runs than seconds do."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src / "src")
    subprocess.run([sys.executable, "-m", "segmently.cli", "--db", str(db), "projects",
                    "create", "bench"], check=True, capture_output=True, env=env)
    out_path, err_path = db.with_suffix(".out"), db.with_suffix(".err")
    peak_path = db.with_suffix(".peak")
    command = [sys.executable, "-m", "segmently.cli", "--db", str(db), "--json", "import",
               str(path)]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        began = time.perf_counter()
        # A small process starts the import and reads its peak RSS: a child forked from
        # this (big) process would count our pages in its own high-water mark.
        done = subprocess.run([sys.executable, "-c", _PEAK, str(peak_path), *command],
                              stdout=out, stderr=err, env=env)
        took = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"segmently import failed:\n{out_path.read_text()}\n"
                         f"{err_path.read_text()}")
    peak, cpu = peak_path.read_text().split()
    return took, int(peak), float(cpu), json.loads(out_path.read_text())


_PEAK = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(f"{usage.ru_maxrss * 1024} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def parts(path: Path, tmp: Path) -> tuple[float, float]:
    """(convert-only seconds, plain-insert seconds) for the Parquet file, in-process."""
    from segmently.collect.importer import ImportOptions, _batches, plan
    from segmently.store import Store, schema

    options = ImportOptions()
    began = time.perf_counter()
    batches = [b.converted.rows.events for b in _batches(path, plan(path, options), "p",
                                                          options)]
    convert = time.perf_counter() - began
    with Store(f"duckdb://{tmp / 'plain.duckdb'}") as store:
        raw = store.backends.get().con
        raw.execute("SET enable_progress_bar = false")
        began = time.perf_counter()
        for events in batches:
            raw.execute("BEGIN")
            raw.register("b", events)
            raw.execute(f"INSERT INTO {schema.EVENTS} BY NAME SELECT * FROM b")
            raw.unregister("b")
            raw.execute("COMMIT")
    return convert, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--json-rows", type=int, default=500_000)
    parser.add_argument("--formats", default="parquet,csv,jsonl")
    parser.add_argument("--src", type=Path, default=None, help="source tree to run")
    parser.add_argument("--parts", action="store_true", help="also time convert / insert")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for kind in args.formats.split(","):
            rows = args.json_rows if kind == "jsonl" else args.rows
            path = tmp / f"events.{kind}"
            began = time.perf_counter()
            generate(path, rows)
            print(f"\n{kind}: {rows:,} rows, {path.stat().st_size / 1e6:,.0f} MB, generated in "
                  f"{time.perf_counter() - began:.1f}s")
            base, base_cpu = duckdb_read(path, tmp / f"duckdb-{kind}.duckdb")
            took, peak, cpu, report = segmently_import(
                path, tmp / f"segmently-{kind}.duckdb", args.src)
            assert report["stored"] == rows, report
            print(f"  DuckDB INSERT ... {READERS[kind].split('(')[0]}: {base:7.2f}s "
                  f"{rows / base:>12,.0f} rows/s  CPU {base_cpu:.1f}s")
            print(f"  segmently import (CLI, end to end): {took:7.2f}s {rows / took:>12,.0f} rows/s"
                  f"  CPU {cpu:.1f}s ({rows / cpu:,.0f} rows per CPU-second)  peak RSS "
                  f"{peak / 2**20:,.0f} MiB  (ratio {base / took:.2f})")
            if args.parts and kind == "parquet":
                convert, insert = parts(path, tmp)
                print(f"  parts: convert only {convert:.2f}s ({rows / convert:,.0f} rows/s); "
                      f"plain INSERT of the converted rows {insert:.2f}s "
                      f"({rows / insert:,.0f} rows/s)")
            for name in (f"segmently-{kind}.duckdb", f"duckdb-{kind}.duckdb"):
                (tmp / name).unlink(missing_ok=True)
            path.unlink()
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
