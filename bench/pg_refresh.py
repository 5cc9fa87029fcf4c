"""`segmently segments refresh` (profiles recorded) on PostgreSQL, this checkout beside a
baseline checkout, each on a fresh demo database of its own.

    git worktree add /tmp/segmently-prev HEAD~1
    python bench/pg_refresh.py --baseline /tmp/segmently-prev [--users 2000] \
        [--url postgres://postgres@127.0.0.1:5432/test]

For each side: a new database, `segmently demo --users N` into it (by this checkout: the
same rows for both), then the side's own `segments refresh` as a whole process; printed:
its wall seconds and peak RSS, and the ratio. A new database has no planner statistics
(and on this machine kind autovacuum is off), which is what the refresh meets after a
first import.
"""

from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

import psycopg
from processes import ROOT, cli


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, type=Path, help="an earlier checkout")
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--url", default="postgres://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    admin = psycopg.connect(args.url.replace("postgres://", "postgresql://", 1),
                            autocommit=True)
    base = args.url.rsplit("/", 1)[0]
    results = {}
    for side, src in (("baseline", args.baseline), ("this", ROOT)):
        name = f"segmently_bench_{secrets.token_hex(4)}"
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            db = f"{base}/{name}"
            cli(ROOT, "--db", db, "demo", "--users", str(args.users),
                "--config", str(Path("/tmp") / f"{name}.yaml"))
            results[side] = cli(src, "--db", db, "segments", "refresh")
            print(f"{side}: refresh {results[side][0]:.1f} s, peak RSS "
                  f"{results[side][1]:,.0f} MiB (load {os.getloadavg()[0]:.1f})", flush=True)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"ratio this / baseline: {results['this'][0] / results['baseline'][0]:.3f}")


if __name__ == "__main__":
    main()
