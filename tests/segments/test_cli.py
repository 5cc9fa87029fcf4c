"""`segmently segments ...`, `segmently user` and `segmently schema` on a tiny, hand-checked
workspace and event log (typer's CliRunner in-process; one real subprocess through a
running server).

The log (UTC; every message is received one minute after it happened, except one late
event):

    alice  identify plan=pro 03-01; report_viewed 03-04, 03-05, 03-08
    bob    identify plan=free 03-02; report_viewed 03-02; identify plan=pro 03-15
    carol  signed_up 03-12; report_viewed 03-13, 03-14, 03-15
    dave   report_viewed 03-09 12:00 but received 03-11 (late: unknown as of T1)

Segments: viewers = report_viewed at least 3 times in the last 7 days; pro = plan eq pro;
pro_viewers = in viewers and in pro; quiet = not in viewers.

    as of T1 = 03-10: viewers {alice} (3 in [03-03, 03-10)), pro {alice},
                      pro_viewers {alice}, quiet {bob}        (carol, dave not yet known)
    as of T2 = 03-20: viewers {carol} (alice 0 in [03-13, 03-20)), pro {alice, bob},
                      pro_viewers {}, quiet {alice, bob, dave}
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from segmently.cli import app
from segmently.store import Message, Store
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # every test runs the CLI as a process

T1, T2 = "2026-03-10T00:00:00", "2026-03-20T00:00:00"
MINUTE = timedelta(minutes=1)

WORKSPACE = """\
project: shop
features:
  - name: reports
    events: [{event: report_viewed}]
segments:
  - name: viewers
    description: views reports often
    rule: {kind: performed, event: report_viewed, at_least: 3, window: {last: 7}}
  - name: pro
    rule: {kind: property, property: plan, op: eq, value: pro}
  - name: pro_viewers
    rule:
      all:
        - {kind: in_segment, segment: viewers}
        - {kind: in_segment, segment: pro}
  - name: quiet
    rule: {kind: not_in_segment, segment: viewers}
"""


def _at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 3, day, hour)


def _track(mid: str, user: str, event: str, at: datetime) -> Message:
    return Message(message_id=mid, type="track", event=event, timestamp=at, source="native",
                   user_id=user)


def _identify(mid: str, user: str, plan: str, at: datetime) -> Message:
    return Message(message_id=mid, type="identify", event="$identify", timestamp=at,
                   source="native", user_id=user, traits={"plan": plan})


LOG = [
    _identify("a0", "alice", "pro", _at(1)),
    *(_track(f"a{d}", "alice", "report_viewed", _at(d)) for d in (4, 5, 8)),
    _identify("b0", "bob", "free", _at(2, 9)),
    _track("b1", "bob", "report_viewed", _at(2)),
    _identify("b2", "bob", "pro", _at(15)),
    _track("c0", "carol", "signed_up", _at(12)),
    *(_track(f"c{d}", "carol", "report_viewed", _at(d)) for d in (13, 14, 15)),
]
LATE = _track("d0", "dave", "report_viewed", _at(9, 12))


def load(db: str) -> None:
    with Store(db) as store:
        create_project(store, "shop")
        pid = next(iter(store.table("projects").to_pyarrow()["project_id"].to_pylist()))
        for message in LOG:
            store.append(pid, [message], received_at=message.timestamp + MINUTE)
        store.append(pid, [LATE], received_at=_at(11))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    db = f"duckdb://{tmp_path / 'cli.duckdb'}"
    load(db)
    (tmp_path / "segmently.yaml").write_text(WORKSPACE)
    found = {"db": db, "config": str(tmp_path / "segmently.yaml"), "dir": str(tmp_path)}
    cli(found, "apply")  # the file's definitions into the database, their one home
    return found


def cli(env: dict[str, str], *args: str, json_out: bool = True, ok: bool = True) -> Any:
    base = ["--db", env["db"], "--config", env["config"], *(["--json"] if json_out else [])]
    result = CliRunner().invoke(app, [*base, *args])
    if ok:
        assert result.exit_code == 0, result.output
    else:
        assert result.exit_code == 1, result.output
    return json.loads(result.stdout) if json_out and result.stdout.strip() else result


def test_members_at_two_instants(env: dict[str, str]) -> None:
    expected = {T1: {"viewers": ["alice"], "pro": ["alice"], "pro_viewers": ["alice"],
                     "quiet": ["bob"]},
                T2: {"viewers": ["carol"], "pro": ["alice", "bob"], "pro_viewers": [],
                     "quiet": ["alice", "bob", "dave"]}}
    for at, segments in expected.items():  # as known then: dave's event arrived on the 11th
        for name, ids in segments.items():
            found = cli(env, "segments", "members", name, "--as-of", at, "--known-at", at)
            assert found["user_ids"] == ids, (at, name)
            assert found["size"] == len(ids)
        sizes = cli(env, "segments", "eval", "--as-of", at, "--known-at", at)
        assert {s["name"]: s["size"] for s in sizes["segments"]} == \
            {name: len(ids) for name, ids in segments.items()}
    # as known now, dave's late event (9 March, received on the 11th) counts on the 10th
    found = cli(env, "segments", "members", "quiet", "--as-of", T1)
    assert found["user_ids"] == ["bob", "dave"]
    assert found["known_at"] > found["as_of"]


def test_explain_sentences(env: dict[str, str]) -> None:
    found = cli(env, "segments", "explain", "viewers", "alice", "--as-of", T1)
    assert found["member"] is True
    assert found["explanation"]["sentence"] == \
        "report_viewed 3 times in the last 7 days; needs at least 3"
    later = cli(env, "segments", "explain", "pro_viewers", "alice", "--as-of", T2)
    assert later["member"] is False
    viewers, pro = later["explanation"]["children"]
    assert (viewers["truth"], pro["truth"]) == (False, True)
    text = cli(env, "segments", "explain", "viewers", "alice", "--as-of", T2,
               json_out=False).stdout
    assert "alice is not in viewers" in text
    assert "[no ] report_viewed 0 times in the last 7 days; needs at least 3" in text


def test_explain_reads_the_applied_vocabulary(env: dict[str, str]) -> None:
    path = Path(env["dir"]) / "features.yaml"
    path.write_text(WORKSPACE + "  - name: report_users\n"
                    "    rule: {kind: used_feature, feature: reports, window: {last: 7}}\n")
    applied = cli({**env, "config": str(path)}, "apply")
    assert [(i["name"], i["action"]) for i in applied["items"]] == [("report_users", "add")]
    # alice viewed reports on 03-04, 03-05 and 03-08: 3 times in [03-03, 03-10)
    found = cli({**env, "config": str(path)}, "segments", "explain", "report_users", "alice",
                "--as-of", T1, "--known-at", T1)
    assert found["member"] is True
    assert found["explanation"]["sentence"] == \
        "used feature reports 3 times in the last 7 days; needs at least once"
    # carol's three views are after T1; bob's one view on 03-02 is before the window;
    # dave's of 03-09 arrived on the 11th
    members = cli({**env, "config": str(path)}, "segments", "members", "report_users",
                  "--as-of", T1, "--known-at", T1)
    assert members["user_ids"] == ["alice"]


def test_unknown_user_and_segment_are_clean_errors(env: dict[str, str]) -> None:
    gone = cli(env, "segments", "explain", "viewers", "carol", "--as-of", T1, ok=False)
    assert gone["error"].startswith("no user 'carol' in project")
    missing = cli(env, "segments", "members", "nope", ok=False)
    assert missing["error"] == "no segment named 'nope'; known: pro, pro_viewers, quiet, viewers"
    bad_time = cli(env, "segments", "eval", "--as-of", "yesterday", ok=False, json_out=False)
    assert "'yesterday' is not an ISO 8601 instant" in bad_time.output


def test_refresh_stores_transitions_and_list_shows_freshness(env: dict[str, str]) -> None:
    # as known then (a refresh at each instant as it happened); dave's late view of 03-09
    # arrived on the 11th, so T1's snapshot does not have it
    first = cli(env, "segments", "refresh", "--as-of", T1, "--known-at", T1)
    assert {(r["segment"], r["size"], r["entered"], r["exited"]) for r in first} == {
        ("viewers", 1, 1, 0), ("pro", 1, 1, 0), ("pro_viewers", 1, 1, 0), ("quiet", 1, 1, 0)}
    second = cli(env, "segments", "refresh", "--as-of", T2, "--known-at", T2)
    # viewers: carol in, alice out; pro: bob in; pro_viewers: alice out; quiet: alice, dave in
    assert {(r["segment"], r["size"], r["entered"], r["exited"]) for r in second} == {
        ("viewers", 1, 1, 1), ("pro", 2, 1, 0), ("pro_viewers", 0, 0, 1), ("quiet", 3, 2, 0)}
    again = cli(env, "segments", "refresh", "--as-of", T2, "--known-at", T2)
    assert all(r["skipped"] for r in again)
    listed = {row["name"]: row for row in cli(env, "segments", "list")}
    assert listed["quiet"]["size"] == 3 and listed["quiet"]["as_of"] == T2
    assert listed["viewers"]["description"] == "views reports often"
    # the latest event that counted as of T2: bob's identify on 03-15 at 10:00 is the last
    # of the 15th (alice's, carol's and his own come earlier that day or before)
    assert listed["viewers"]["data_through"] == "2026-03-15T10:00:00"
    assert listed["viewers"]["last_computed"] is not None
    shown = cli(env, "segments", "show", "quiet")
    assert [(s["as_of"], s["size"], s["version"]) for s in shown["snapshots"]] == \
        [(T1, 1, 1), (T2, 3, 1)]
    assert shown["rule"] == {"kind": "not_in_segment", "segment": "viewers"}
    # a changed file changes nothing until applied; then it is a new stored version, and
    # the snapshots say which one they used
    Path(env["config"]).write_text(WORKSPACE.replace("at_least: 3, window: {last: 7}",
                                                     "at_least: 1, window: {last: 7}"))
    assert {row["name"]: row["version"] for row in cli(env, "segments", "list")}["viewers"] \
        == 1
    check = CliRunner().invoke(app, ["--db", env["db"], "--config", env["config"], "apply",
                                     "--check"])
    assert check.exit_code == 4, check.output
    assert "~ segment viewers: version 1 -> the file's" in check.output
    assert "-  at_least: 3" in check.output and "+  at_least: 1" in check.output
    assert {row["name"]: row["version"] for row in cli(env, "segments", "list")}["viewers"] \
        == 1
    applied = cli(env, "apply")
    assert (applied["applied"], applied["versions"]["viewers"]) == (True, 2)
    later = cli(env, "segments", "refresh", "--as-of", "2026-03-21T00:00:00",
                "--known-at", "2026-03-21T00:00:00")
    # at least once in [03-14, 03-21): carol (14th, 15th); alice, bob, dave are quiet
    assert {r["segment"]: r["size"] for r in later}["viewers"] == 1
    shown = cli(env, "segments", "show", "viewers")
    assert (shown["version"], [s["version"] for s in shown["snapshots"]]) == (2, [1, 1, 2])


def test_backfill_every_day(env: dict[str, str]) -> None:
    done = cli(env, "segments", "refresh", "--backfill-from", "2026-03-08",
               "--as-of", T1, "--every", "1d")
    viewers = [(r["as_of"], r["size"]) for r in done if r["segment"] == "viewers"]
    # alice's third view in the last 7 days is on 03-08 10:00: not yet as of 03-08 00:00
    assert viewers == [("2026-03-08T00:00:00", 0), ("2026-03-09T00:00:00", 1), (T1, 1)]
    shown = cli(env, "segments", "show", "viewers")
    assert [s["size"] for s in shown["snapshots"]] == [0, 1, 1]


def test_members_exports(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "quiet.csv"
    cli(env, "segments", "members", "quiet", "--as-of", T2, "--format", "csv", "--out",
        str(out), json_out=False)
    assert list(csv.reader(io.StringIO(out.read_text()))) == \
        [["user_id"], ["alice"], ["bob"], ["dave"]]
    parquet = tmp_path / "quiet.parquet"
    cli(env, "segments", "members", "quiet", "--as-of", T2, "--format", "parquet", "--out",
        str(parquet), json_out=False)
    assert pq.read_table(parquet)["user_id"].to_pylist() == ["alice", "bob", "dave"]
    printed = cli(env, "segments", "members", "pro", "--as-of", T2, "--format", "csv",
                  json_out=False)
    assert printed.stdout.split() == ['"user_id"', '"alice"', '"bob"']


def test_user_profile_and_segments(env: dict[str, str]) -> None:
    found = cli(env, "user", "alice", "--as-of", T1)
    metrics = found["metrics"]
    # first and last seen count activity (track/page/screen), not the identify of 03-01
    assert metrics["first_seen"] == "2026-03-04T10:00:00"
    assert metrics["last_seen"] == "2026-03-08T10:00:00"
    assert metrics["plan"] == "pro"
    why = {s["segment"]: s["explanation"] for s in found["segments"]}
    assert sorted(why) == ["pro", "pro_viewers", "viewers"]
    assert why["pro"]["sentence"] == 'plan is "pro"; needs eq "pro"'
    assert [f["feature"] for f in found["features"]] == ["reports"]


BAD_RULE = WORKSPACE.replace("at_least: 3, window", "min: 3, window")
UNKNOWN_REF = WORKSPACE.replace("segment: pro}", "segment: professionals}")
CYCLE = WORKSPACE.replace("{kind: not_in_segment, segment: viewers}",
                          "{kind: not_in_segment, segment: quiet}")


@pytest.mark.parametrize(("text", "expected"), [
    (BAD_RULE, "segmently.yaml:8: segments[0].rule.min: Extra inputs are not permitted"),
    (UNKNOWN_REF, "segmently.yaml:12: segments[2].rule: unknown segment 'professionals'"),
    (CYCLE, "segmently.yaml:17: segments[3].rule: segment reference cycle: quiet -> quiet"),
])
def test_workspace_errors_name_the_line(env: dict[str, str], text: str, expected: str) -> None:
    Path(env["config"]).write_text(text)
    failed = cli(env, "apply", json_out=False, ok=False)
    assert expected in failed.output
    # nothing was written: the stored definitions are still the good file's
    assert cli(env, "apply", "--check", json_out=False, ok=False).exit_code == 1
    assert len(cli(env, "segments", "list")) == 4


def test_schema_describes_rules(env: dict[str, str]) -> None:
    schema = cli(env, "schema")
    rule = schema["$defs"]["SegmentDefinition"]["properties"]["rule"]
    assert {"$ref": "#/$defs/Performed"} in rule["oneOf"]
    assert "at_least" in schema["$defs"]["Performed"]["properties"]


def test_real_cli_through_running_server(server: Any, tmp_path: Path) -> None:
    """`serve` holds the DuckDB file: the real CLI sends the call to it and gets the same
    answer."""
    import httpx

    now = datetime.utcnow()  # noqa: DTZ003  (received now: only a present as_of sees them)
    events = [{"type": "track", "event": "report_viewed", "userId": "zed",
               "messageId": f"z{i}", "timestamp": (now - timedelta(days=i)).isoformat() + "Z"}
              for i in (1, 2, 3)]
    response = httpx.post(f"{server.url}/v1/batch", json={"batch": events},
                          auth=(server.write_key, ""))
    assert response.status_code == 200, response.text
    config = tmp_path / "ws.yaml"
    config.write_text(WORKSPACE.replace("project: shop", "project: test"))
    base = [sys.executable, "-m", "segmently.cli", "--db", server.db, "--config", str(config)]
    applied = subprocess.run([*base, "apply"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert applied.returncode == 0, applied.stderr
    assert "+ segment viewers: new" in applied.stdout
    run = subprocess.run(
        [sys.executable, "-m", "segmently.cli", "--db", server.db, "--config", str(config),
         "--json", "segments", "members", "viewers"],
        capture_output=True, text=True, timeout=60, env={**os.environ}, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["user_ids"] == ["zed"]
