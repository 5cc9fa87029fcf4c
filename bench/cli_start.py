"""How long the command line takes to start: `segmently --help` and `segmently config`
(settings loaded, no store opened) as whole processes, this checkout beside a baseline
checkout, alternating, median and slowest of N each.

    git worktree add /tmp/segmently-prev HEAD~1
    python bench/cli_start.py --baseline /tmp/segmently-prev [--repeat 15]

The goal (issue 15): under 0.5 s. A command that opens a store pays for the engines
(Ibis, Arrow, DuckDB) on top; that is the command's work, not the start.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from processes import ROOT, cli

COMMANDS = [("--help",), ("config",)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", required=True, type=Path, help="an earlier checkout")
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    for command in COMMANDS:
        took: dict[str, list[tuple[float, float]]] = {"baseline": [], "this": []}
        for _ in range(args.repeat):
            for side, src in (("baseline", args.baseline), ("this", ROOT)):
                took[side].append(cli(src, *command))
        line = []
        for side, runs in took.items():
            walls = [w for w, _ in runs]
            line.append(f"{side} median {statistics.median(walls):.3f} s, slowest "
                        f"{max(walls):.3f} s, peak RSS {max(m for _, m in runs):.0f} MiB")
        ratio = statistics.median(w for w, _ in took["this"]) / \
            statistics.median(w for w, _ in took["baseline"])
        print(f"segmently {' '.join(command)}: " + "; ".join(line) +
              f"; ratio {ratio:.2f} (load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
