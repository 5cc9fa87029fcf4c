"""Segment evaluation: the built-in library in Segmently, hand-written SQL and pandas.

    python bench/segments.py [--users 100000] [--days 90] [--seed 42] [--end 2026-03-01]
                             [--data-dir bench/data] [--pandas-max-events 20000000]
                             [--repeat 1] [--explain 50] [--new-events 1000000] [--json]

1. Data: the demo product (`segmently demo`, ~98 events per user over 90 days: the default
   100,000 users give ~10M events, `--users 1000000` ~98M), generated once into
   `<data-dir>/demo-u<users>-d<days>-s<seed>-e<end>/` (segmently.duckdb and the workspace
   segmently.yaml) and reused by later runs (opened once writable first, which adds the
   daily rollups a database written before them lacks).
2. Evaluation at as_of = the demo's end, each side in its own child process (its peak RSS
   is its own): Segmently (`segments.evaluate` of the workspace's library, to Arrow),
   the hand-written DuckDB SQL of bench/baselines/library.sql, and the pandas
   implementation of bench/baselines/pandas_library.py (skipped above
   `--pandas-max-events`). The member sets are compared per segment; a difference is
   printed and the script exits 1.
3. Explain: `segments.explain` for `--explain` (segment, member) pairs: median, p95.
4. Refresh, on a copy of the data: `core.Project.refresh` at as_of (the first snapshot), then
   `--new-events` new events are appended (recent track/page/screen events copied `d`
   days later with new message ids, `d` whole days chosen so the copy has that many) and
   `Project.refresh` runs again at as_of + d days.

Times are measured inside the child, around the work only (not interpreter start or
imports): wall clock, and CPU time of the process (all its threads), steadier on a shared
machine; `--repeat` runs each evaluation that many times in its child and keeps the best.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
SQL = HERE / "baselines" / "library.sql"
DB, WORKSPACE, DONE = "segmently.duckdb", "segmently.yaml", "complete.json"
PROJECT = "demo"
SIDES = ("segmently", "sql", "pandas")


# -- data ----------------------------------------------------------------------------------
def dataset(args: argparse.Namespace) -> Path:
    """The demo data directory for these options, generated when not cached."""
    where = Path(args.data_dir) / f"demo-u{args.users}-d{args.days}-s{args.seed}-e{args.end}"
    if not (where / DONE).exists():
        generate(args, where)
    from segmently.store import Store

    with Store(store_url(where)):  # a writable open adds what older data lacks (rollups)
        pass
    return where


def store_url(where: Path) -> str:
    return f"duckdb:///{where.resolve() / DB}"


def generate(args: argparse.Namespace, where: Path) -> None:
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    from rich.console import Console
    from rich.progress import Progress

    from segmently.demo import DemoOptions, run_demo
    from segmently.demo.workspace import write_workspace
    from segmently.store import Store

    options = DemoOptions(users=args.users, days=args.days, seed=args.seed,
                          end=datetime.fromisoformat(args.end))
    with Progress(console=Console(stderr=True)) as bar, Store(store_url(where)) as store:
        task = bar.add_task(f"demo data, {args.users:,} users", total=args.users)
        report = run_demo(store, options, PROJECT,
                          progress=lambda users, _: bar.update(task, completed=users))
    write_workspace(where / WORKSPACE, PROJECT)
    (where / DONE).write_text(json.dumps({"events": report.summary.events,
                                          "users": report.summary.users,
                                          "seconds": round(report.seconds, 1)}))


def project_id(db: Path) -> str:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT project_id FROM projects WHERE name = ?",
                           [PROJECT]).fetchone()[0]


# -- the sides, each run in a child process -----------------------------------------------
def clock() -> tuple[float, float]:
    """(wall, CPU of this process and all its threads) in seconds: on a shared machine the
    CPU time is the steadier figure, the wall time what a user waits."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime + r.ru_stime


def since(start: tuple[float, float]) -> tuple[float, float]:
    now = clock()
    return now[0] - start[0], now[1] - start[1]


def timed(work: Callable[[], pa.Table], repeat: int) -> tuple[pa.Table, list[tuple[float, float]]]:
    runs, table = [], None
    for _ in range(repeat):
        start = clock()
        table = work()
        runs.append(since(start))
    assert table is not None
    return table, runs


def workspace_of(c: dict[str, Any]) -> Any:
    from segmently.segments.workspace import load_workspace

    return load_workspace(Path(c["dir"]) / WORKSPACE)


def connect(c: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(Path(c["dir"]) / DB), read_only=True)


def run_segmently(c: dict[str, Any]) -> tuple[pa.Table, list[tuple[float, float]]]:
    from segmently.core import Project
    from segmently.segments.evaluate import evaluate
    from segmently.store import Store

    workspace = workspace_of(c)
    as_of = datetime.fromisoformat(c["as_of"])
    with Store(store_url(Path(c["dir"])), read_only=True) as store:
        return timed(lambda: Project.wide(evaluate(  # as known then, as the baselines count
            store, c["project_id"], workspace.rules(), as_of, vocabulary=workspace,
            known_at=as_of)).to_pyarrow(), c["repeat"])


def run_sql(c: dict[str, Any]) -> tuple[pa.Table, list[tuple[float, float]]]:
    sql = SQL.read_text()
    params = {"project_id": c["project_id"], "as_of": datetime.fromisoformat(c["as_of"])}
    with connect(c) as con:
        return timed(lambda: con.execute(sql, params).to_arrow_table(), c["repeat"])


def run_pandas(c: dict[str, Any]) -> tuple[pa.Table, list[tuple[float, float]]]:
    sys.path.insert(0, str(HERE))
    from baselines.pandas_library import library

    as_of = datetime.fromisoformat(c["as_of"])
    with connect(c) as con:
        return timed(lambda: pa.Table.from_pandas(library(con, c["project_id"], as_of),
                                                  preserve_index=False), c["repeat"])


def run_explain(c: dict[str, Any]) -> dict[str, Any]:
    from segmently.segments.explain import explain
    from segmently.store import Store

    workspace = workspace_of(c)
    rules, as_of = workspace.rules(), datetime.fromisoformat(c["as_of"])
    runs, wrong = [], []
    with Store(store_url(Path(c["dir"])), read_only=True) as store:
        for i, (segment, user) in enumerate([c["pairs"][0], *c["pairs"]]):
            start = clock()
            why = explain(store, c["project_id"], rules[segment], user, as_of, rules,
                          vocabulary=workspace)
            if i:  # the first call is a warm-up (imports, first compile)
                runs.append(since(start))
            if not why.truth:
                wrong.append(f"{segment}/{user}")
    times = sorted(wall for wall, _ in runs)
    return {"median_ms": statistics.median(times) * 1e3,
            "p95_ms": times[max(math.ceil(0.95 * len(times)) - 1, 0)] * 1e3,
            "max_ms": times[-1] * 1e3, "cpu_median_ms": statistics.median(
                cpu for _, cpu in runs) * 1e3, "calls": len(times), "explained_out": wrong}


def new_events(store: Any, project: str, as_of: datetime, wanted: int) -> tuple[pa.Table, int]:
    """`wanted` recent activity events copied `d` whole days later with new message ids:
    the traffic of the next d days, as if it had just arrived."""
    from segmently.store import schema
    from segmently.store.rows import ARROW_SCHEMAS

    con = store.con.con  # the DuckDB connection under the Ibis backend
    week = con.execute("SELECT count(*) FROM events WHERE project_id = ? AND timestamp >= ? "
                       "AND timestamp < ?", [project, as_of - timedelta(days=7), as_of]
                       ).fetchone()[0]
    days = max(math.ceil(wanted / max(week / 7, 1)), 1)
    rows = con.execute(
        "SELECT * REPLACE ('bench-' || message_id AS message_id, "
        "timestamp + to_days(?) AS timestamp, received_at + to_days(?) AS received_at) "
        "FROM events WHERE project_id = ? AND timestamp >= ? AND timestamp < ? "
        "AND type IN ('track', 'page', 'screen') LIMIT ?",
        [days, days, project, as_of - timedelta(days=days), as_of, wanted]).to_arrow_table()
    return rows.select(ARROW_SCHEMAS[schema.EVENTS].names).cast(
        ARROW_SCHEMAS[schema.EVENTS]), days


def run_refresh(c: dict[str, Any]) -> dict[str, Any]:
    from segmently.core import Project
    from segmently.store import RowBatch, Store, schema
    from segmently.store.rows import ARROW_SCHEMAS

    workspace = workspace_of(c)
    as_of = datetime.fromisoformat(c["as_of"])
    out: dict[str, Any] = {}
    with Store(f"duckdb:///{c['copy']}") as store:
        project = Project(store, c["project_id"])
        project.apply(workspace)  # the definitions a refresh reads (a copy: writable)
        start = clock()
        project.refresh(as_of)
        out["first_s"], out["first_cpu_s"] = since(start)
        rows, days = new_events(store, c["project_id"], as_of, c["new_events"])
        empty = {n: ARROW_SCHEMAS[n].empty_table()
                 for n in (schema.TRAITS, schema.IDENTITIES, schema.ACCOUNT_LINKS)}
        start = clock()
        store.append_new_rows(c["project_id"], RowBatch(
            events=rows, traits=empty[schema.TRAITS], identities=empty[schema.IDENTITIES],
            account_links=empty[schema.ACCOUNT_LINKS]))
        out["append_s"], _ = since(start)
        start = clock()
        results = project.refresh(as_of + timedelta(days=days))
        out["after_s"], out["after_cpu_s"] = since(start)
    out.update(new_events=rows.num_rows, days=days,
               changed=sum(r.entered + r.exited for r in results))
    return out


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: reset by exec, unlike ru_maxrss, which a
    child inherits from the parent it was forked from)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(side: str, config: dict[str, Any]) -> None:
    """Run one side, write its members to config["out"], print its figures as JSON."""
    if side in SIDES:
        run = {"segmently": run_segmently, "sql": run_sql, "pandas": run_pandas}[side]
        table, runs = run(config)
        pq.write_table(table, config["out"])
        wall, cpu = min(runs)
        result: dict[str, Any] = {"seconds": wall, "cpu_seconds": cpu, "runs": runs,
                                  "users": table.num_rows}
    else:
        result = {"explain": run_explain, "refresh": run_refresh}[side](config)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def spawn(side: str, config: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, "--child", side, json.dumps(config)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- comparing -----------------------------------------------------------------------------
def member_sets(path: Path) -> dict[str, set[str]]:
    t = pq.read_table(path)
    users = t["user_id"].to_pylist()
    return {name: {u for u, m in zip(users, t[name].to_pylist(), strict=True) if m}
            for name in t.column_names if name != "user_id"}


def differences(results: dict[str, dict[str, set[str]]]) -> list[str]:
    """One line per (segment, pair of sides) that disagree, with a few example users."""
    lines = []
    ref = results["segmently"]
    for side, sets in results.items():
        if side == "segmently":
            continue
        for name in sorted(set(ref) | set(sets)):
            if name not in ref or name not in sets:
                lines.append(f"{name}: only computed by {'segmently' if name in ref else side}")
                continue
            ours, theirs = ref[name] - sets[name], sets[name] - ref[name]
            if ours or theirs:
                lines.append(f"{name}: segmently vs {side}: {len(ours)} only in segmently "
                             f"{sorted(ours)[:5]}, {len(theirs)} only in {side} "
                             f"{sorted(theirs)[:5]}")
    return lines


def explain_pairs(sets: dict[str, set[str]], n: int, seed: int) -> list[tuple[str, str]]:
    """n (segment, member) pairs, cycling over the non-empty segments."""
    rng = random.Random(seed)
    members = {name: sorted(users) for name, users in sets.items() if users}
    names = list(members)
    return [(name, rng.choice(members[name])) for name in
            (names[i % len(names)] for i in range(n))] if names else []


# -- main ----------------------------------------------------------------------------------
def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--end", default="2026-03-01", help="the demo's end, also the as_of")
    ap.add_argument("--data-dir", default=str(HERE / "data"))
    ap.add_argument("--pandas-max-events", type=int, default=20_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--explain", type=int, default=50)
    ap.add_argument("--new-events", type=int, default=1_000_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child[0], json.loads(args.child[1]))
    from rich.console import Console

    console = Console(stderr=True)
    where = dataset(args)
    info = json.loads((where / DONE).read_text())
    scratch = where / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    base = {"dir": str(where.resolve()), "project_id": project_id(where / DB), "as_of": args.end,
            "repeat": args.repeat}
    loads = {"start": load_average()}
    figures: dict[str, dict[str, Any]] = {}
    for side in SIDES:
        if side == "pandas" and info["events"] > args.pandas_max_events:
            console.print(f"pandas skipped: {info['events']:,} events > --pandas-max-events")
            continue
        with console.status(f"evaluating the library: {side}"):
            figures[side] = spawn(side, {**base, "out": str(scratch / f"{side}.parquet")})
    sets = {side: member_sets(scratch / f"{side}.parquet") for side in figures}
    if args.explain:
        with console.status("explain"):
            pairs = explain_pairs(sets["segmently"], args.explain, args.seed)
            figures["explain"] = spawn("explain", {**base, "pairs": pairs})
    if args.new_events:
        with console.status("refresh (copying the data first)"):
            shutil.copy(where / DB, scratch / DB)
            figures["refresh"] = spawn("refresh", {**base, "copy": str(scratch / DB),
                                                   "new_events": args.new_events})
    loads["end"] = load_average()
    shutil.rmtree(scratch, ignore_errors=True)
    wrong = differences(sets)
    report(args, info, figures, sets["segmently"], wrong, loads)
    if args.json:
        print(json.dumps({"data": info, "loadavg": loads, "disagreements": wrong, **figures},
                         default=str))
    raise SystemExit(1 if wrong else 0)


def report(args: argparse.Namespace, info: dict[str, Any], f: dict[str, dict[str, Any]],
           sizes: dict[str, set[str]], wrong: list[str], loads: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"{info['users']:,} users, {info['events']:,} events; as_of {args.end}; "
                  f"load average {loads['start']} at the start, {loads['end']} at the end")
    t = Table("side", "seconds", "CPU seconds", "peak RSS MB", "users")
    for side in SIDES:
        if side in f:
            t.add_row(side, f"{f[side]['seconds']:.2f}", f"{f[side]['cpu_seconds']:.2f}",
                      f"{f[side]['peak_rss_mb']:.0f}", f"{f[side]['users']:,}")
    console.print(t)
    for key, what in (("seconds", "wall"), ("cpu_seconds", "CPU")):
        seg = f["segmently"][key]
        console.print(f"{what}: segmently / sql = {seg / f['sql'][key]:.2f}"
                      + (f"; pandas / segmently = {f['pandas'][key] / seg:.1f}"
                         if "pandas" in f else "")
                      + f"; {info['events'] / seg / 1e6:.1f} M events/s")
    console.print("sizes: " + ", ".join(f"{n} {len(m):,}" for n, m in sizes.items()))
    if "explain" in f:
        e = f["explain"]
        console.print(f"explain ({e['calls']} users): median {e['median_ms']:.0f} ms, "
                      f"p95 {e['p95_ms']:.0f} ms, max {e['max_ms']:.0f} ms, median CPU "
                      f"{e['cpu_median_ms']:.0f} ms, peak RSS "
                      f"{e['peak_rss_mb']:.0f} MB" + (f"; NOT members: {e['explained_out']}"
                                                       if e["explained_out"] else ""))
    if "refresh" in f:
        r = f["refresh"]
        console.print(f"refresh: first {r['first_s']:.2f} s (CPU {r['first_cpu_s']:.2f} s); "
                      f"{r['new_events']:,} new events ({r['days']} days later) appended in "
                      f"{r['append_s']:.2f} s; refresh after them {r['after_s']:.2f} s (CPU "
                      f"{r['after_cpu_s']:.2f} s, {r['changed']:,} transitions); peak RSS "
                      f"{r['peak_rss_mb']:.0f} MB")
    for line in wrong:
        console.print(f"[red]DISAGREE[/red] {line}", highlight=False)
    console.print("[green]all sides agree[/green]" if not wrong else
                  f"[red]{len(wrong)} disagreement(s)[/red]")


if __name__ == "__main__":
    main()
