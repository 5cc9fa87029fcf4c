"""In-app targeting (issue 13): how fast `GET /v1/campaigns` answers from memory, and how
soon after an event a user is targeted, each beside its baseline in the same run.

    python bench/targeting.py --part read --users 1000000 [--requests 20000]
    python bench/targeting.py --part latency --users 100000 [--samples 40] [--incremental 1]
    python bench/targeting.py ... --skip-build          # reuse the data under --dir

1. `read`: the answer read from memory. A DuckDB file is built fast, without events for
   the members: `--users` users, 10 segment definitions whose memberships are written
   directly as transitions (`snapshots.record_all` with Arrow arrays of ids; each user in
   about 2 segments), 8 campaigns (`Project.save_campaign`: audiences with `in` and
   `not_in`, holdouts, once / until dismissed / every N days, a URL trigger, a schedule,
   one disabled) and a 24 h cooldown, and for 30% of the users `campaign_shown` events
   (some dismissed or answered, received over the last 40 days, so the cooldown and the
   frequency caps both bite) with their recorded holdout arms.
   In this process first: the decision alone (`Engagement.choose`, index and state in
   memory) for a sample of users, and the baseline, what a server without the in-memory
   index does per request: the user's memberships read from the database (the Ibis query
   `snapshots.current_of` for one user, and a hand-written prepared DuckDB query over
   `segment_transitions`), then the same `targeting.choose`.
   Then a real `segmently serve` on loopback (scheduled and incremental refresh off, so the
   memberships stay as written): one keep-alive client, sequential `GET /v1/campaigns` for
   `--requests` random users (the first request, which loads the state, timed apart; a
   warm-up after it), latency on the client; peak RSS of the server (VmHWM).
2. `latency`: event received -> membership visible. `segmently demo --users N --days 30`
   writes a DuckDB file (timed); a per-user segment `bench_signalled` (performed
   `bench_signal` in the last day) and a campaign `bench_welcome` for it (no holdout) are
   added and a first full refresh recorded. A real `serve` runs with
   SEGMENTLY_REFRESH_SECONDS=0 and SEGMENTLY_INCREMENTAL_SECONDS=`--incremental`; `--samples`
   times, after a random pause (so samples fall anywhere in the pass cycle), a fresh user
   posts `bench_signal` (`POST /v1/batch`) and polls `GET /v1/campaigns` every 50 ms until
   `bench_welcome` is in the answer. The baseline: a full refresh of the same project
   (`POST /api/refresh`, what targeting waits for without the incremental pass). Once the
   server stopped, the incremental pass itself (`Project.refresh_users` for 1 and 100
   users) is timed here in parts: building the expression, compiling it, DuckDB running it,
   `snapshots.current_of`, writing the transitions.

Both servers trace themselves (`TRACER` below, a sitecustomize on their PYTHONPATH; src/
untouched): the wall time of every incremental pass and every full garbage collection,
reported beside the client's figures. `--profile FILE` runs the server under py-spy
(`pip install py-spy`; `.svg` flamegraph or `.json` speedscope).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

DEFAULT_DIR = "/tmp/segmently-bench-targeting"
SEGMENTS = ("active_week", "power_users", "trial", "at_risk", "detractors", "new_this_week",
            "regular", "feature_discovery", "enterprise", "stuck_in_onboarding")
SHARES = (0.55, 0.08, 0.15, 0.12, 0.05, 0.06, 0.45, 0.30, 0.10, 0.20)  # of the users
SIGNAL = "bench_signal"
SIGNALLED = "bench_signalled"
WELCOME = "bench_welcome"
POLL = 0.05  # seconds between polls of /v1/campaigns


# -- measuring ---------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def stats_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1e3 for s in seconds]
    return {"n": len(ms), "p50": statistics.median(ms), "p95": pct(ms, 95), "p99": pct(ms, 99),
            "max": max(ms), "per_s": len(ms) / (sum(seconds) or 1e-9)}


def vm(pid: int | str = "self") -> dict[str, float]:
    """VmHWM (peak RSS) and VmRSS of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return os.getloadavg()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(db: str, log: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """A real `segmently serve` on loopback (the process itself: its pid is the server's)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "segmently.cli", "--db", db, "serve", "--port", str(port)],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ, **env})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def profiler(pid: int, out: str) -> subprocess.Popen[bytes]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    fmt = "speedscope" if out.endswith(".json") else "flamegraph"
    extra = os.environ.get("PYSPY_ARGS", "").split()
    proc = subprocess.Popen([spy, "record", *extra, "--pid", str(pid), "-o", out,
                             "--format", fmt], stdout=subprocess.DEVNULL)
    time.sleep(1)
    return proc


# The server's own view, without touching src/: a sitecustomize module on the server's
# PYTHONPATH notes every incremental pass (`Refresher.refresh_touched`, wall seconds) and
# every full garbage collection (generation 2: it holds the GIL, so the event loop and the
# pass both wait) as JSON lines. SEGMENTLY_BENCH_PATCH names a module to import too:
# `--try-fix` writes one (`FIXES`), to measure a proposed fix without changing src/.
TRACER = """
import gc, json, os, time
_path = os.environ.get("SEGMENTLY_BENCH_TRACE")
if _path:
    _out = open(_path, "a", buffering=1)
    _gc_start = [0.0]

    def _gc(phase, info):
        if info["generation"] != 2:
            return
        if phase == "start":
            _gc_start[0] = time.perf_counter()
        else:
            _out.write(json.dumps({"gc2_s": time.perf_counter() - _gc_start[0],
                                   "at": time.time()}) + "\\n")

    gc.callbacks.append(_gc)
    from segmently.runtime import refresher as _refresher

    _original = _refresher.Refresher.refresh_touched

    def refresh_touched(self, project_id):
        started = time.perf_counter()
        changes = _original(self, project_id)
        _out.write(json.dumps({"pass_s": time.perf_counter() - started,
                               "changed": len(changes), "at": time.time()}) + "\\n")
        return changes

    _refresher.Refresher.refresh_touched = refresh_touched
    if os.environ.get("SEGMENTLY_BENCH_PATCH"):
        __import__(os.environ["SEGMENTLY_BENCH_PATCH"])
"""


# Proposed fixes, tried as patches (`--try-fix traits,gc`; the finding in bench/RESULTS.md):
# "traits": an incremental pass reads only its persons' trait rows before ranking them
# (`latest_traits` ranks every user's traits, then the persons are picked);
# "gc": gc.freeze() once the targeting state and the membership index are loaded, so a
# full collection no longer walks millions of long-lived objects.
FIXES = {"traits": """
import ibis
from segmently.segments import aggregates
from segmently.store import schema
from segmently.store.views import _known, identity_map, is_person


def _latest_traits_of(store, project_id, as_of, known_at, person):
    t = _known(store.table(schema.TRAITS), project_id, as_of, "set_at", known_at)
    t = t.filter(t.kind == "user")
    ids = identity_map(store, project_id, as_of, known_at)
    if person is not None:  # the persons' own rows and those of the ids merged into them
        wanted = [person] if isinstance(person, str) else list(person)
        merged = ids.filter(is_person(ids.user_id, person)).select(
            id=ids.alias_id.cast("string"))
        own = ibis.memtable({"id": wanted}, schema={"id": "string"})
        t = t.filter(t.entity_id.isin(merged.union(own).id))
    t = t.left_join(ids, t.entity_id == ids.alias_id)
    t = t.mutate(entity_id=t.user_id.coalesce(t.entity_id)).drop("alias_id", "user_id")
    order = [t.once.asc(), ibis.cases((t.once, t.set_at.epoch_seconds()),
                                      else_=-t.set_at.epoch_seconds()).asc(),
             t.received_at.desc()]
    ranked = t.mutate(_rank=ibis.row_number().over(group_by=[t.entity_id, t.trait],
                                                   order_by=order))
    return ranked.filter(ranked._rank == 0).select("entity_id", "trait", "value")


def _with_traits(self, t, store, project_id, person):
    if not self.traits:
        return t
    tr = _latest_traits_of(store, project_id, self.as_of, self.known_at, person)
    tr = tr.filter(tr.trait.isin(list(self.traits)))
    if person is not None:
        tr = tr.filter(is_person(tr.entity_id, person))
    wide = tr.group_by(_e="entity_id").aggregate(
        **{col: tr.value.max(where=tr.trait == name) for name, col in self.traits.items()})
    return t.left_join(wide, t.person_id == wide._e).drop("_e")


aggregates.Aggregates._with_traits = _with_traits
""", "gc": """
import gc
from segmently.runtime import engagement, memberships

_reload, _load = engagement.Engagement._reload, memberships.MembershipIndex.load


def _reload_frozen(self, project_id):
    state = _reload(self, project_id)
    gc.collect()
    gc.freeze()
    return state


def _load_frozen(self, project_id):
    found = _load(self, project_id)
    gc.collect()
    gc.freeze()
    return found


engagement.Engagement._reload = _reload_frozen
memberships.MembershipIndex.load = _load_frozen
"""}


def traced(data: Path, name: str, fixes: list[str] | None = None
           ) -> tuple[dict[str, str], Path]:
    """The environment that makes a server trace itself into data/<name>.jsonl (and
    apply `fixes`)."""
    folder = data / "trace"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(TRACER)
    (folder / "bench_fixes.py").write_text("\n".join(FIXES[f] for f in fixes or []))
    out = data / f"{name}.jsonl"
    out.unlink(missing_ok=True)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, "SEGMENTLY_BENCH_TRACE": str(out)}
    if fixes:
        env["SEGMENTLY_BENCH_PATCH"] = "bench_fixes"
    return env, out


def read_trace(path: Path, since: float = 0.0, until: float = float("inf")
               ) -> dict[str, Any]:
    """Passes and full collections noted between two wall-clock instants."""
    rows = [json.loads(line) for line in path.read_text().splitlines()] \
        if path.exists() else []
    rows = [r for r in rows if since <= r["at"] <= until]
    passes = [r["pass_s"] for r in rows if "pass_s" in r]
    gcs = [r["gc2_s"] for r in rows if "gc2_s" in r]
    return {"passes": stats_ms(passes) if passes else None,
            "gc2": {"n": len(gcs), "max_ms": max(gcs) * 1e3 if gcs else 0.0,
                    "total_s": sum(gcs)}}


# -- 1. the answer read from memory ------------------------------------------------------
def campaigns_for_read() -> list[dict[str, Any]]:
    def modal(title: str) -> dict[str, Any]:
        return {"title": title, "body": "Something worth a look.",
                "button": {"label": "Show me", "url": "/reports"}}

    now = datetime.utcnow()
    return [
        {"name": "show_alerts", "kind": "tour", "priority": 30, "holdout_percent": 20,
         "audience": {"in": ["feature_discovery"]},
         "content": {"steps": [{"selector": "#alerts-button", "title": "Get told first",
                                "body": "Alerts watch a report for you."}]}},
        {"name": "onboarding", "kind": "checklist", "priority": 20,
         "frequency": "until_dismissed", "audience": {"in": ["stuck_in_onboarding"]},
         "content": {"title": "Get set up", "tasks": [
             {"id": "source", "label": "Connect a data source", "event": "source_connected"},
             {"id": "report", "label": "Create a report", "event": "report_created"},
             {"id": "invite", "label": "Invite a teammate", "event": "teammate_invited"}]}},
        {"name": "detractor_follow_up", "kind": "survey", "priority": 15,
         "audience": {"in": ["detractors"]},
         "content": {"questions": [{"id": "area", "kind": "choice", "prompt": "What first?",
                                    "options": ["Speed", "Reports", "Pricing"]}]}},
        {"name": "nps_quarterly", "kind": "nps", "priority": 10,
         "frequency": {"every_days": 90}, "trigger": {"delay_seconds": 5},
         "audience": {"in": ["regular"], "not_in": ["new_this_week"]}, "content": {}},
        {"name": "win_back", "kind": "modal", "priority": 5, "holdout_percent": 15,
         "audience": {"in": ["at_risk"]}, "trigger": {"url": "/reports/*"},
         "content": modal("Your reports missed you")},
        {"name": "trial_upgrade", "kind": "banner", "priority": 1,
         "frequency": {"every_days": 7}, "audience": {"in": ["trial"]},
         "content": {"body": "Your trial ends soon.",
                     "button": {"label": "Choose a plan", "url": "/billing"}}},
        {"name": "enterprise_beta", "kind": "modal", "priority": 25,
         "frequency": "until_dismissed", "holdout_percent": 50,
         "audience": {"in": ["enterprise", "power_users"], "not_in": ["at_risk"]},
         "schedule": {"start": (now - timedelta(days=10)).isoformat(),
                      "end": (now + timedelta(days=60)).isoformat()},
         "content": modal("Try the beta")},
        {"name": "paused_promo", "kind": "banner", "enabled": False,
         "audience": {"in": ["active_week"]}, "content": {"body": "Not live."}},
    ]


def build_read(db: str, users: int) -> dict[str, Any]:
    from segmently.act import assignments
    from segmently.act import targeting as tg
    from segmently.core import Project
    from segmently.segments import snapshots as snap
    from segmently.store import Message, Store
    from segmently.store.projects import create_project
    from segmently.store.rows import to_rows

    rng = np.random.default_rng(13)
    started = time.perf_counter()
    ids = np.array([f"u{i:07d}" for i in range(users)], dtype=object)
    with Store(db) as store:
        made = create_project(store, "targeting")
        pid = made.project.project_id
        project = Project(store, pid)
        for i, name in enumerate(SEGMENTS):
            project.save(name, "", {"kind": "performed", "event": f"e{i}",
                                    "window": {"last": 7 + i, "unit": "days"}})
        as_of = datetime.utcnow().replace(microsecond=0) - timedelta(hours=1)
        members = {name: pa.array(ids[rng.random(users) < share], pa.string())
                   for name, share in zip(SEGMENTS, SHARES, strict=True)}
        t0 = time.perf_counter()
        snap.record_all(store, pid, members, as_of)
        transitions_s = time.perf_counter() - t0
        for data in campaigns_for_read():
            project.save_campaign(data, source="bench")
        project.set_in_app_settings({"cooldown_hours": 24})
        live = project.campaigns()
        # 30% of the users were shown a campaign, received over the last 40 days
        shown_users = ids[rng.random(users) < 0.30]
        names = [n for n, s in live.items() if s.campaign.enabled]
        by_day: dict[int, list[Message]] = {}
        arms: list[assignments.Assignment] = []
        now = datetime.utcnow()
        for k, user in enumerate(shown_users):
            campaign = names[int(rng.integers(len(names)))]
            day = int(rng.integers(0, 40))
            at = now - timedelta(days=day, hours=float(rng.random()) * 20)
            batch = by_day.setdefault(day, [])
            batch.append(Message(f"s{k}", "track", tg.SHOWN, at, "bench", user_id=user,
                                 properties={"campaign": campaign, "campaign_version": 1}))
            roll = rng.random()
            if roll < 0.15:
                batch.append(Message(f"d{k}", "track", tg.DISMISSED, at, "bench",
                                     user_id=user, properties={"campaign": campaign}))
            elif roll < 0.20:
                batch.append(Message(f"a{k}", "track", "survey_answered", at, "bench",
                                     user_id=user, properties={"campaign": campaign,
                                                               "question": "area",
                                                               "answer": "Speed"}))
            elif roll < 0.30:
                batch.append(Message(f"t{k}", "track", "report_created", at, "bench",
                                     user_id=user))
            arms.append(assignments.Assignment(
                campaign, user, assignments.draw(campaign, user,
                                                 live[campaign].campaign.holdout_percent),
                1, at))
        events = 0
        for day, batch in sorted(by_day.items()):
            received = now - timedelta(days=day)
            rows = to_rows(pid, batch, received)
            store.append_new_rows(pid, rows)
            events += len(batch)
        assignments.ensure_tables(store)
        for i in range(0, len(arms), 200_000):
            assignments.record(store, pid, arms[i:i + 200_000])
    return {"project_id": pid, "write_key": made.project.write_key,
            "secret_key": made.secret_key, "users": users,
            "memberships": sum(len(m) for m in members.values()),
            "campaign_events": events, "assignments": len(arms),
            "record_all_s": transitions_s, "build_s": time.perf_counter() - started}


MEMBERS_SQL = """
SELECT segment FROM (
  SELECT segment, kind,
         row_number() OVER (PARTITION BY segment ORDER BY as_of DESC) AS r
  FROM segment_transitions WHERE project_id = $1 AND user_id = $2)
WHERE r = 1 AND kind = 'entered'
"""


def in_process_read(db: str, info: dict[str, Any], sample: list[str], paths: list[str],
                    baseline_n: int) -> dict[str, Any]:
    from segmently.act import targeting as tg
    from segmently.runtime.engagement import Engagement
    from segmently.runtime.memberships import MembershipIndex
    from segmently.segments import snapshots as snap
    from segmently.store import Store, utcnow

    pid = info["project_id"]
    out: dict[str, Any] = {}
    with Store(db) as store:
        index = MembershipIndex(store)
        t0 = time.perf_counter()
        index.load(pid)
        out["index_load_s"] = time.perf_counter() - t0
        engagement = Engagement(store, index)
        t0 = time.perf_counter()
        state = engagement.project(pid)
        out["state_load_s"] = time.perf_counter() - t0
        out["state_users"] = len(state.users)
        out["arms_loaded"] = len(state.arms)
        out["rss_after_load"] = vm()["VmRSS"]
        for user, path in zip(sample[:500], paths, strict=False):  # warm-up
            engagement.choose(pid, user, path, None)
        times, served, held = [], 0, 0
        for user, path in zip(sample, paths, strict=False):
            t0 = time.perf_counter()
            choice = engagement.choose(pid, user, path, None)
            times.append(time.perf_counter() - t0)
            served += bool(choice.campaigns)
            held += bool(choice.held_out)
        out["choose"] = stats_ms(times)
        out["served_share"] = served / len(sample)
        out["held_share"] = held / len(sample)

        segments = list(SEGMENTS)
        raw = store.con.con  # the DuckDB connection under Ibis
        checked = 0

        def decide(user: str, path: str, inside: set[str] | list[str]) -> None:
            user_state = state.users.get(user) or tg.UserState()
            tg.choose(state.campaigns, user, user_state, inside, state.arms, state.settings,
                      utcnow(), path, None)

        base: dict[str, list[float]] = {"current_of": [], "sql": []}
        for i, (user, path) in enumerate(zip(sample[:baseline_n], paths, strict=False)):
            t0 = time.perf_counter()
            got = snap.current_of(store, pid, segments, (user,))
            inside = {name for name, users in got.items() if user in users}
            decide(user, path, inside)
            base["current_of"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rows = raw.execute(MEMBERS_SQL, [pid, user]).fetchall()
            decide(user, path, [r[0] for r in rows])
            base["sql"].append(time.perf_counter() - t0)
            if i < 200:  # the baselines read what the index holds
                assert sorted(inside) == sorted(r[0] for r in rows) == \
                    sorted(index.ensure(pid).of(user)), user
                checked += 1
        out["baseline_current_of"] = stats_ms(base["current_of"])
        out["baseline_sql"] = stats_ms(base["sql"])
        out["baseline_checked"] = checked
    out["bench_vm"] = vm()
    return out


def http_read(db: str, info: dict[str, Any], sample: list[str], paths: list[str],
              log: Path, profile: str | None = None, fixes: list[str] | None = None
              ) -> dict[str, Any]:
    env, trace = traced(log.parent, "read-trace", fixes)
    proc, url = start_server(db, log, {"SEGMENTLY_REFRESH_SECONDS": "0",
                                       "SEGMENTLY_INCREMENTAL_SECONDS": "0", **env})
    spy = profiler(proc.pid, profile) if profile else None
    out: dict[str, Any] = {"server_vm_started": vm(proc.pid)}
    try:
        with httpx.Client(base_url=url, timeout=300) as http:
            def ask(user: str, path: str) -> httpx.Response:
                return http.get("/v1/campaigns", params={
                    "writeKey": info["write_key"], "userId": user,
                    "url": f"https://app.example.com{path}"})

            t0 = time.perf_counter()
            first = ask(sample[0], paths[0])
            out["first_request_s"] = time.perf_counter() - t0
            assert first.status_code == 200, first.text
            for user, path in zip(sample[:1000], paths, strict=False):  # warm-up
                ask(user, path)
            cpu0 = cpu_seconds(proc.pid)
            times, served, slow = [], 0, []
            since = time.time()
            wall0 = time.perf_counter()
            for user, path in zip(sample, paths, strict=False):
                t0 = time.perf_counter()
                r = ask(user, path)
                times.append(time.perf_counter() - t0)
                if times[-1] > 0.02:
                    slow.append(t0 - wall0)
                assert r.status_code == 200, r.text
                served += bool(r.json()["campaigns"])
            wall = time.perf_counter() - wall0
            out["http"] = stats_ms(times)
            out["http"]["per_s"] = len(times) / wall
            out["server_cpu_us_per_request"] = (cpu_seconds(proc.pid) - cpu0) / len(times) * 1e6
            out["served_share"] = served / len(sample)
            out["trace"] = read_trace(trace, since, time.time())
            gaps = [b - a for a, b in zip(slow, slow[1:], strict=False)]
            out["slow_over_20ms"] = len(slow)
            out["slow_gap_s"] = statistics.median(gaps) if gaps else None
        out["server_vm"] = vm(proc.pid)
    finally:
        stop_server(proc)
        if spy is not None:
            spy.wait(timeout=120)
    return out


def run_read(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    data = root / f"read-{args.users}"
    db = f"duckdb://{data / 'read.duckdb'}"
    meta = data / "build.json"
    if args.skip_build and meta.exists():
        info = json.loads(meta.read_text())
    else:
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True)
        info = build_read(db, args.users)
        meta.write_text(json.dumps(info, indent=2))
    rng = random.Random(args.seed)
    sample = [f"u{rng.randrange(args.users):07d}" for _ in range(args.requests)]
    paths = [rng.choice(["/reports/7", "/dashboard", "/reports/12/edit", "/settings"])
             for _ in range(args.requests)]
    result: dict[str, Any] = {"build": info, "load_before": load_average()}
    result["in_process"] = in_process_read(db, info, sample, paths, args.baseline_requests)
    result["serve"] = http_read(db, info, sample, paths, data / "server.log", args.profile,
                                args.try_fix)
    result["load_after"] = load_average()
    return result


def print_read(r: dict[str, Any]) -> None:
    b, ip, sv = r["build"], r["in_process"], r["serve"]
    print(f"\n== GET /v1/campaigns read from memory: {b['users']:,} users, "
          f"{b['memberships']:,} memberships in 10 segments, 8 campaigns, "
          f"{b['campaign_events']:,} campaign events, {b['assignments']:,} arms "
          f"(built in {b['build_s']:.1f} s) ==")
    print(f"load average {r['load_before']:.2f} -> {r['load_after']:.2f}")
    print(f"server: first request (loads index + state) {sv['first_request_s']:.2f} s; "
          f"in-process: index load {ip['index_load_s']:.2f} s, state load "
          f"{ip['state_load_s']:.2f} s ({ip['state_users']:,} users with state)")
    rows = [("HTTP GET /v1/campaigns (serve, 1 keep-alive client)", sv["http"]),
            ("Engagement.choose in-process (index in memory)", ip["choose"]),
            ("baseline: snapshots.current_of(user) + choose", ip["baseline_current_of"]),
            ("baseline: prepared DuckDB SQL for the user + choose", ip["baseline_sql"])]
    print(f"{'path':<56} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'max ms':>8} {'req/s':>9}")
    for name, s in rows:
        print(f"{name:<56} {s['n']:>6} {s['p50']:>8.3f} {s['p95']:>8.3f} {s['p99']:>8.3f} "
              f"{s['max']:>8.2f} {s['per_s']:>9.0f}")
    http = sv["http"]
    print(f"ratios (p99): SQL baseline / HTTP = {ip['baseline_sql']['p99'] / http['p99']:.1f}x, "
          f"current_of baseline / HTTP = "
          f"{ip['baseline_current_of']['p99'] / http['p99']:.1f}x, "
          f"SQL baseline / choose = {ip['baseline_sql']['p99'] / ip['choose']['p99']:.0f}x")
    print(f"answers with a campaign: HTTP {sv['served_share']:.0%}, in-process "
          f"{ip['served_share']:.0%}; held out of one: {ip['held_share']:.0%}; server CPU "
          f"{sv['server_cpu_us_per_request']:.0f} us a request")
    print(f"peak RSS: server {sv['server_vm']['VmHWM']:,.0f} MiB (at start "
          f"{sv['server_vm_started']['VmHWM']:,.0f}), bench {ip['bench_vm']['VmHWM']:,.0f} MiB")
    if sv.get("slow_over_20ms"):
        gc2 = sv["trace"]["gc2"]
        print(f"requests over 20 ms: {sv['slow_over_20ms']} (median gap between them "
              f"{sv['slow_gap_s'] or 0:.1f} s); full garbage collections in the server "
              f"meanwhile: {gc2['n']}, longest {gc2['max_ms']:.0f} ms")
    goal = http["p99"] < 10
    print(f"goal p99 < 10 ms at {b['users']:,} users: {'MET' if goal else 'NOT MET'} "
          f"({http['p99']:.2f} ms)")


# -- 2. event received -> membership visible ----------------------------------------------
def build_latency(data: Path, users: int) -> dict[str, Any]:
    from segmently.core import Project
    from segmently.store import Store
    from segmently.store.projects import create_project

    db = f"duckdb://{data / 'demo.duckdb'}"
    with Store(db) as store:
        made = create_project(store, "demo")  # so the secret key is known
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    with (data / "demo.log").open("w") as log:
        subprocess.run([sys.executable, "-m", "segmently.cli", "--db", db, "demo",
                        "--users", str(users), "--days", "30", "--project", "demo"],
                       check=True, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    generate_s = time.perf_counter() - t0
    demo_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with Store(db) as store:
        pid = made.project.project_id
        project = Project(store, pid)
        events = store.events(pid).count().to_pyarrow().as_py()
        project.save(SIGNALLED, "bench: did bench_signal today",
                     {"kind": "performed", "event": SIGNAL,
                      "window": {"last": 1, "unit": "days"}})
        project.save_campaign({"name": WELCOME, "kind": "banner", "priority": 100,
                               "holdout_percent": 0, "frequency": "until_dismissed",
                               "audience": {"in": [SIGNALLED]},
                               "content": {"body": "Welcome!"}}, source="bench")
        t0 = time.perf_counter()
        done = project.refresh()
        first_refresh_s = time.perf_counter() - t0
    return {"project_id": pid, "write_key": made.project.write_key,
            "secret_key": made.secret_key, "users": users, "events": int(events),
            "segments": len(done), "generate_s": generate_s,
            "demo_peak_rss_mib": max(before, demo_rss) / 1024,
            "first_refresh_s": first_refresh_s}


def sample_latency(http: httpx.Client, info: dict[str, Any], user: str,
                   timeout: float) -> dict[str, float]:
    now = datetime.utcnow()
    body = {"writeKey": info["write_key"], "batch": [{
        "type": "track", "event": SIGNAL, "userId": user, "messageId": f"sig-{user}",
        "timestamp": now.isoformat() + "Z", "properties": {"bench": True}}]}
    params = {"writeKey": info["write_key"], "userId": user,
              "url": "https://app.example.com/home"}
    wall = time.time()
    t0 = time.perf_counter()
    r = http.post("/v1/batch", json=body)
    committed = time.perf_counter()
    assert r.status_code == 200, r.text
    polls = 0
    while True:
        tick = time.perf_counter()
        r = http.get("/v1/campaigns", params=params)
        polls += 1
        assert r.status_code == 200, r.text
        if any(c["id"] == WELCOME for c in r.json()["campaigns"]):
            seen = time.perf_counter()
            return {"visible_s": seen - t0, "commit_s": committed - t0, "polls": polls,
                    "last_poll_s": seen - tick, "at": wall}
        if tick - t0 > timeout:
            raise SystemExit(f"{user}: not targeted after {timeout} s")
        time.sleep(max(0.0, POLL - (time.perf_counter() - tick)))


def time_pass(db: str, info: dict[str, Any], users: tuple[str, ...], repeat: int
              ) -> dict[str, float]:
    """The incremental pass (`refreshing.refresh_users`) of these users, in its parts:
    the same calls one by one (DuckDB's run is `member_ids` less a second compile)."""
    from segmently.core import Project
    from segmently.segments import definitions as defs
    from segmently.segments import refreshing
    from segmently.segments import snapshots as snap
    from segmently.segments.evaluate import evaluate
    from segmently.store import Store, utcnow

    parts: dict[str, list[float]] = {k: [] for k in (
        "whole", "definitions", "expression", "compile", "run", "current_of", "write")}
    with Store(db) as store:
        pid = info["project_id"]
        project = Project(store, pid)
        vocab = project.vocabulary()
        for _ in range(repeat):
            at = utcnow()
            t0 = time.perf_counter()
            project.refresh_users(users, at)
            parts["whole"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            live = defs.current(store, pid)
            rules = refreshing.per_user({n: d.rule for n, d in live.items()})
            t1 = time.perf_counter()
            ev = evaluate(store, pid, rules, at, vocabulary=vocab, known_at=at, persons=users)
            t2 = time.perf_counter()
            store.con.compile(ev.table)
            t3 = time.perf_counter()
            now = ev.member_ids()
            t4 = time.perf_counter()
            was = snap.current_of(store, pid, list(rules), users)
            t5 = time.perf_counter()
            # the users are members already (nothing to write): the write is timed with
            # one entry of a segment that does not exist (never read back)
            snap.record_changes(store, pid, {"bench_write_probe": (
                pa.array(users[:1], pa.string()), pa.array([], pa.string()))}, at)
            t6 = time.perf_counter()
            parts["definitions"].append(t1 - t0)
            parts["expression"].append(t2 - t1)
            parts["compile"].append(t3 - t2)
            parts["run"].append(t4 - t3 - (t3 - t2))  # member_ids compiles again
            parts["current_of"].append(t5 - t4)
            parts["write"].append(t6 - t5)
            assert set(was) == set(now)
    return {k: statistics.median(v) for k, v in parts.items()}


def run_latency(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    data = root / f"latency-{args.users}"
    db = f"duckdb://{data / 'demo.duckdb'}"
    meta = data / "build.json"
    if args.skip_build and meta.exists():
        info = json.loads(meta.read_text())
    else:
        if data.exists():
            shutil.rmtree(data)
        data.mkdir(parents=True)
        info = build_latency(data, args.users)
        meta.write_text(json.dumps(info, indent=2))
    result: dict[str, Any] = {"build": info, "load_before": load_average(),
                              "incremental_s": args.incremental, "fixes": args.try_fix}
    env, trace = traced(data, "latency-trace", args.try_fix)
    proc, url = start_server(db, data / "server.log", {
        "SEGMENTLY_REFRESH_SECONDS": "0",
        "SEGMENTLY_INCREMENTAL_SECONDS": str(args.incremental), **env})
    spy = profiler(proc.pid, args.profile) if args.profile else None  # all threads
    token = f"{int(time.time())}"
    rng = random.Random(args.seed)
    samples: list[dict[str, float]] = []
    try:
        with httpx.Client(base_url=url, timeout=600) as http:
            t0 = time.perf_counter()
            r = http.get("/v1/campaigns", params={"writeKey": info["write_key"],
                                                  "userId": "usr_0000001"})
            result["first_request_s"] = time.perf_counter() - t0
            assert r.status_code == 200, r.text
            cpu0 = cpu_seconds(proc.pid)
            since = time.time()
            wall0 = time.perf_counter()
            for i in range(args.samples):
                time.sleep(rng.uniform(0, args.incremental))
                samples.append(sample_latency(http, info, f"fresh-{token}-{i}", 120))
            result["server_cpu_share"] = (cpu_seconds(proc.pid) - cpu0) / \
                (time.perf_counter() - wall0)
            result["server_vm_targeting"] = vm(proc.pid)
            result["trace"] = read_trace(trace, since, time.time())
            refreshes = []
            for _ in range(args.refreshes):
                t0 = time.perf_counter()
                r = http.post("/api/refresh",
                              headers={"Authorization": f"Bearer {info['secret_key']}"})
                refreshes.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
            result["full_refresh_s"] = refreshes
            result["server_vm"] = vm(proc.pid)
    finally:
        stop_server(proc)
        if spy is not None:
            spy.wait(timeout=120)
    visible = [s["visible_s"] for s in samples]
    result["samples"] = samples
    result["visible"] = stats_ms(visible)
    result["commit"] = stats_ms([s["commit_s"] for s in samples])
    result["polls_p50"] = statistics.median(s["polls"] for s in samples)
    users = tuple(f"fresh-{token}-{i}" for i in range(len(samples)))
    result["pass_1"] = time_pass(db, info, users[:1], args.pass_repeat)
    others = tuple(f"usr_{i:07d}" for i in range(0, min(args.users, 100_000), 1000))
    result["pass_100"] = time_pass(db, info, (users + others)[:100], args.pass_repeat)
    result["load_after"] = load_average()
    result["bench_vm"] = vm()
    return result


def print_latency(r: dict[str, Any]) -> None:
    b = r["build"]
    print(f"\n== event -> targeted: demo of {b['users']:,} users, {b['events']:,} events, "
          f"{b['segments']} segments; incremental pass every {r['incremental_s']} s"
          f"{'; fixes tried: ' + ','.join(r['fixes']) if r.get('fixes') else ''} ==")
    print(f"build: demo generation {b['generate_s']:.1f} s (peak RSS "
          f"{b['demo_peak_rss_mib']:,.0f} MiB), first full refresh in-process "
          f"{b['first_refresh_s']:.1f} s; load average {r['load_before']:.2f} -> "
          f"{r['load_after']:.2f}")
    print(f"server: first /v1/campaigns (loads index + state) {r['first_request_s']:.2f} s")
    v, c = r["visible"], r["commit"]
    print(f"{'what':<58} {'n':>4} {'p50':>9} {'p95':>9} {'p99':>9} {'max':>9}")
    print(f"{'POST /v1/batch -> campaign in GET /v1/campaigns (ms)':<58} {v['n']:>4} "
          f"{v['p50']:>9.0f} {v['p95']:>9.0f} {v['p99']:>9.0f} {v['max']:>9.0f}")
    print(f"{'  of which POST /v1/batch answered (committed) (ms)':<58} {c['n']:>4} "
          f"{c['p50']:>9.1f} {c['p95']:>9.1f} {c['p99']:>9.1f} {c['max']:>9.1f}")
    full = r["full_refresh_s"]
    if full:
        print(f"baseline: full refresh POST /api/refresh: "
              f"{', '.join(f'{s:.1f}' for s in full)} s; "
              f"ratio full refresh / p50 visible = {min(full) / (v['p50'] / 1e3):.1f}x")
    passes, gc2 = r["trace"]["passes"], r["trace"]["gc2"]
    if passes:
        print(f"incremental passes in the server while sampling: {passes['n']}, p50 "
              f"{passes['p50']:.0f} ms, p95 {passes['p95']:.0f}, max {passes['max']:.0f} ms; "
              f"full garbage collections: {gc2['n']}, longest {gc2['max_ms']:.0f} ms, "
              f"{gc2['total_s']:.1f} s in all")
    for key, label in (("pass_1", "1 user"), ("pass_100", "100 users")):
        p = r[key]
        print(f"incremental pass in-process, {label}: {p['whole'] * 1e3:.0f} ms (definitions "
              f"{p['definitions'] * 1e3:.0f}, expression {p['expression'] * 1e3:.0f}, compile "
              f"{p['compile'] * 1e3:.0f}, DuckDB run {p['run'] * 1e3:.0f}, current_of "
              f"{p['current_of'] * 1e3:.0f}, write {p['write'] * 1e3:.0f} ms)")
    print(f"peak RSS: server {r['server_vm_targeting']['VmHWM']:,.0f} MiB while targeting, "
          f"{r['server_vm']['VmHWM']:,.0f} MiB after the full refresh; bench "
          f"{r['bench_vm']['VmHWM']:,.0f} MiB; server CPU while sampling "
          f"{r['server_cpu_share']:.0%} of a core")
    goal = v["p99"] < 5000
    print(f"goal p99 < 5 s at {b['users']:,} users: {'MET' if goal else 'NOT MET'} "
          f"(p50 {v['p50'] / 1e3:.2f} s, p99 {v['p99'] / 1e3:.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("read", "latency", "all"), default="all")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20_000,
                        help="read: sequential GET /v1/campaigns (and in-process decisions)")
    parser.add_argument("--baseline-requests", type=int, default=500,
                        help="read: requests the database baselines answer")
    parser.add_argument("--samples", type=int, default=40, help="latency: fresh users")
    parser.add_argument("--incremental", type=float, default=1.0,
                        help="latency: SEGMENTLY_INCREMENTAL_SECONDS of the server")
    parser.add_argument("--refreshes", type=int, default=1,
                        help="latency: full refreshes timed (the baseline)")
    parser.add_argument("--pass-repeat", type=int, default=5,
                        help="latency: repetitions of the in-process pass timing")
    parser.add_argument("--dir", default=DEFAULT_DIR, help="where the data is built and kept")
    parser.add_argument("--skip-build", action="store_true",
                        help="reuse the data already built under --dir for these --users")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--profile", metavar="FILE", help="py-spy the server (one --part)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure here")
    parser.add_argument("--try-fix", type=lambda v: [f for f in v.split(",") if f],
                        default=[], metavar="traits,gc",
                        help="measure with proposed fixes applied as patches (FIXES)")
    args = parser.parse_args()
    unknown = set(args.try_fix) - set(FIXES)
    if unknown:
        parser.error(f"--try-fix: unknown {sorted(unknown)}; known: {sorted(FIXES)}")
    for fix in args.try_fix:  # the in-process timings too
        exec(FIXES[fix], {"__name__": f"bench_fix_{fix}"})  # noqa: S102 - our own source
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started": datetime.utcnow().isoformat(timespec="seconds")}
    if args.part in ("read", "all"):
        results["read"] = run_read(args, root)
        print_read(results["read"])
    if args.part in ("latency", "all"):
        results["latency"] = run_latency(args, root)
        print_latency(results["latency"])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
