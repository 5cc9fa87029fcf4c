"""Run Segmently's CLI from a given checkout as a whole process: wall seconds and peak
resident memory. Shared by the benches that put a baseline checkout beside this one."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(src: Path, *args: str, check: bool = True) -> tuple[float, float]:
    """Run `segmently ARGS` with `src`'s package; (wall seconds, its peak RSS MiB)."""
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    began = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "segmently.cli", *args], env=env,
                             stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    took = time.perf_counter() - began
    if status and check:
        raise SystemExit(f"segmently {' '.join(args)} failed ({status})")
    return took, usage.ru_maxrss / 1024
