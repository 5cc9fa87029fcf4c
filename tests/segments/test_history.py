"""History that counts: a file imported today, evaluated and backfilled at the past
instants it describes, and every snapshot reproducible from its two instants.

The log is small enough to check by hand; each expectation is also computed in plain
Python from the log (count the purchases in the 30 days before as_of), never from the
engine. Everything goes through the commands a new user types: `segmently import`,
`segments eval`, `segments refresh --backfill-from`, `segments members --known-at`.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from segmently.cli import app
from segmently.segments import snapshots as snap
from segmently.store import Store, utcnow
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # every test runs the CLI as a process

WORKSPACE = """\
segments:
  - name: buyers
    rule: {kind: performed, event: purchase, at_least: 2, window: {last: 30}}
"""
PURCHASES = [("u1", "2026-01-05"), ("u1", "2026-01-20"), ("u1", "2026-02-10"),
             ("u2", "2026-02-15"), ("u2", "2026-02-20"), ("u3", "2026-01-10")]
LATE = [("u3", "2026-01-12"), ("u4", "2026-02-01"), ("u4", "2026-02-02")]  # a second file


def buyers(log: list[tuple[str, str]], as_of: datetime) -> list[str]:
    """The oracle: at least 2 purchases in [as_of - 30 days, as_of), midnight UTC."""
    since = as_of - timedelta(days=30)
    counts: dict[str, int] = {}
    for user, day in log:
        if since <= datetime.fromisoformat(day) < as_of:
            counts[user] = counts.get(user, 0) + 1
    return sorted(u for u, n in counts.items() if n >= 2)


def write_csv(path: Path, log: list[tuple[str, str]]) -> Path:
    path.write_text("user_id,event,timestamp\n" + "".join(
        f"{user},purchase,{day}T10:00:00Z\n" for user, day in log))
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, Any]:
    db = f"duckdb://{tmp_path / 'history.duckdb'}"
    with Store(db) as s:
        shop = create_project(s, "shop")
    (tmp_path / "segmently.yaml").write_text(WORKSPACE)
    found = {"db": db, "config": str(tmp_path / "segmently.yaml"), "dir": tmp_path,
             "secret": shop.secret_key, "project_id": shop.project.project_id}
    cli(found, "apply")
    return found


def cli(env: dict[str, Any], *args: str) -> Any:
    result = CliRunner().invoke(app, ["--db", env["db"], "--config", env["config"], "--json",
                                      *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def members(env: dict[str, Any], as_of: str, known_at: str | None = None) -> list[str]:
    extra = ["--known-at", known_at] if known_at else []
    return cli(env, "segments", "members", "buyers", "--as-of", as_of, *extra)["user_ids"]


def test_imported_history_counts_at_the_instants_it_happened(env: dict[str, Any]) -> None:
    started = utcnow()
    report = cli(env, "import", str(write_csv(env["dir"] / "history.csv", PURCHASES)))
    assert report["stored"] == len(PURCHASES)
    for day in ("2026-01-01", "2026-01-22", "2026-02-12", "2026-02-21", "2026-03-01"):
        at = datetime.fromisoformat(day)
        assert members(env, day) == buyers(PURCHASES, at), day  # as known now
        assert members(env, day, known_at=day) == []  # nothing had been received then
    assert members(env, "2026-01-22") == ["u1"] and members(env, "2026-02-21") == ["u2"]
    # known at the instant the import finished: everything; a second before it started:
    assert members(env, "2026-01-22", known_at=utcnow().isoformat()) == ["u1"]
    assert members(env, "2026-01-22",
                   known_at=(started - timedelta(seconds=1)).isoformat()) == []


def test_a_backfill_writes_the_imported_past_and_snapshots_reproduce(env: dict[str, Any]
                                                                    ) -> None:
    cli(env, "import", str(write_csv(env["dir"] / "history.csv", PURCHASES)))
    done = cli(env, "segments", "refresh", "--backfill-from", "2026-01-01", "--every", "7d",
               "--as-of", "2026-03-01", "--no-profiles")
    instants = [datetime(2026, 1, 1) + timedelta(days=7 * i) for i in range(9)]  # to 02-26
    assert [datetime.fromisoformat(r["as_of"]) for r in done] == instants
    previous: list[str] = []
    for r, at in zip(done, instants, strict=True):  # sizes, entries and exits by the oracle
        now = buyers(PURCHASES, at)
        assert (r["size"], r["entered"], r["exited"], r["error"]) == (
            len(now), len(set(now) - set(previous)), len(set(previous) - set(now)), None), at
        previous = now
    assert [s["size"] for s in cli(env, "segments", "show", "buyers")["snapshots"]] == \
        [len(buyers(PURCHASES, at)) for at in instants]

    # a second file of the past arrives: as known now the past changes, the snapshots stay
    cli(env, "import", str(write_csv(env["dir"] / "late.csv", LATE)))
    with Store(env["db"]) as store:
        pid = store.table("projects").to_pyarrow()["project_id"][0].as_py()
        kept = snap.snapshots(store, pid, "buyers").to_pyarrow().to_pylist()
        stored = {row["as_of"]: sorted(snap.members_at(store, pid, "buyers", row["as_of"])
                                       .to_pyarrow()["user_id"].to_pylist()) for row in kept}
        known = {row["as_of"]: row["known_at"] for row in kept}
    assert len(set(known.values())) == 1  # one backfill: one knowledge instant
    changed = [at for at in instants if buyers(PURCHASES + LATE, at) != buyers(PURCHASES, at)]
    assert changed  # u3's and u4's late purchases change some past answers
    for at in instants:
        assert stored[at] == buyers(PURCHASES, at)
        reproduced = members(env, at.isoformat(), known_at=known[at].isoformat())
        assert reproduced == stored[at], at  # the snapshot, recomputed from its two instants
        assert members(env, at.isoformat()) == buyers(PURCHASES + LATE, at)


def test_known_at_over_http(env: dict[str, Any], tmp_path: Path) -> None:
    """The API's members, explain and user routes take known_at as the CLI does."""
    import httpx

    from conftest import start_server
    from segmently.segments import definitions as defs

    cli(env, "import", str(write_csv(env["dir"] / "history.csv", PURCHASES)))
    with Store(env["db"]) as s:
        defs.save(s, env["project_id"], "buyers", "", {
            "kind": "performed", "event": "purchase", "at_least": 2, "window": {"last": 30}})
    proc, url = start_server(env["db"], tmp_path / "server.log",
                             env={"SEGMENTLY_REFRESH_SECONDS": "0"})
    try:
        http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {env['secret']}"},
                            timeout=60)
        day = "2026-01-22T00:00:00"
        got = http.get("/api/segments/buyers/members", params={"as_of": day}).json()
        assert (got["members"], got["source"]) == (["u1"], "live")
        then = http.get("/api/segments/buyers/members", params={"as_of": day, "known_at": day})
        assert then.json()["members"] == []
        why = http.get("/api/segments/buyers/explain/u1", params={"as_of": day}).json()
        assert why["member"] is True and "2 times" in why["text"]
        unknown = http.get("/api/segments/buyers/explain/u1",
                           params={"as_of": day, "known_at": day})
        assert unknown.status_code == 404  # nobody was known on 22 January
        user = http.get("/api/users/u1", params={"as_of": day}).json()
        assert user["known_at"] > user["as_of"] and user["metrics"]["events_total"] == 2
        bad = http.get("/api/users/u1", params={"as_of": day, "known_at": "yesterday"})
        assert bad.status_code == 400 and "known_at" in bad.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
