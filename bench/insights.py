"""First computations of the insight analyses, this checkout beside a baseline checkout.

    git worktree add /tmp/segmently-prev HEAD~1      # the baseline: any earlier commit
    python bench/insights.py --db big.duckdb --baseline /tmp/segmently-prev [--rounds 2]

Each analysis runs in a fresh process per side (`Project.insight`, the core every shell
calls: no HTTP, no kept answers), twice (cold: the first call in the process; warm: the
same again, as a running server computes it), sides alternating, `--rounds` times;
printed: the best wall seconds of each side, their ratios and each process's peak RSS.
Both sides open the same database read only; compact it first (`segments refresh` does)
so both read what a served project holds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANALYSES = [
    ("retention", {"period": "week"}),
    ("retention", {"start_event": "signed_up", "segments": "power_users"}),
    ("stickiness", {}),
    ("lifecycle", {}),
    ("feature_stickiness", {}),
    ("feature_lift", {"outcome": "retained_d30", "days": "7"}),
    ("segment_features", {"segment": "power_users"}),
    ("discovery_rule", {"outcome": "segment", "segment": "power_users"}),
    ("friction", {"steps": "signed_up,workspace_created,data_source_connected",
                  "window": "3"}),
    ("campaign_results", {"campaign": "show_alerts"}),
]
CHILD = """
import json, resource, sys, time
from segmently.api import connect
db, name, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with connect(db, read_only=True) as sg:
    p = sg.project()
    took = []
    for _ in range(2):  # cold, then warm (the engine's buffers hold the tables)
        began = time.perf_counter()
        p.insight(name, params)
        took.append(time.perf_counter() - began)
print(json.dumps({"seconds": took[0], "warm": took[1],
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(src: Path, db: str, name: str, params: dict[str, str]) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    out = subprocess.run([sys.executable, "-c", CHILD, db, name, json.dumps(params)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--baseline", required=True, type=Path, help="an earlier checkout")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--only", default="", help="analysis names, comma-separated")
    args = ap.parse_args()
    only = {n for n in args.only.split(",") if n}
    print(f"load {os.getloadavg()[0]:.1f}")
    print("| analysis | cold: this / baseline s | ratio | warm: this / baseline s | ratio "
          "| RSS this / baseline MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, params in ANALYSES:
        if only and name not in only:
            continue
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.rounds):
            for side, src in (("this", ROOT), ("baseline", args.baseline)):
                got = run(src, args.db, name, params)
                if side not in best or got["seconds"] < best[side]["seconds"]:
                    best[side] = got
        q = "&".join(f"{k}={v}" for k, v in params.items())
        this, base = best["this"], best["baseline"]
        print(f"| `{name}{'?' + q if q else ''}` | {this['seconds']:.2f} / "
              f"{base['seconds']:.2f} | {this['seconds'] / base['seconds']:.2f} | "
              f"{this['warm']:.2f} / {base['warm']:.2f} | {this['warm'] / base['warm']:.2f} | "
              f"{this['rss_mib']:,.0f} / {base['rss_mib']:,.0f} |", flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
