"""The built-in library on demo data: every segment is non-empty and means what its name
says, judged against the generator's ground truth (personas, stages, plans; never stored)
and hand-written DuckDB queries over the stored events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from segmently.cli import app
from segmently.demo import DemoOptions, run_demo
from segmently.demo import vocabulary as v
from segmently.demo.workspace import demo_vocabulary, planted_segments, write_workspace
from segmently.segments.evaluate import evaluate
from segmently.segments.library import builtin_segments, library_rules
from segmently.segments.workspace import load_workspace
from segmently.store import Store

END = datetime(2026, 11, 1)
OPTIONS = DemoOptions(users=1500, days=90, seed=11, end=END)


class Lib:
    def __init__(self, store: Store, truth: pa.Table, accounts: pa.Table) -> None:
        self.db = store.con.con
        ev = evaluate(store, store_project(store), library_rules(demo_vocabulary()), END)
        wide = ev.table.to_pyarrow()
        self.members = {name: set(wide.filter(wide[col])["user_id"].to_pylist())
                        for name, col in ev.columns.items()}
        self.db.register("truth_users", truth)
        self.db.register("truth_accounts", accounts)

    def ids(self, sql: str, *params: Any) -> set[str]:
        return {r[0] for r in self.db.execute(sql, list(params)).fetchall()}

    def persona(self, name: str) -> set[str]:
        return self.ids("SELECT user_id FROM truth_users WHERE persona = ?", name)


def store_project(store: Store) -> str:
    return store.con.con.execute("SELECT project_id FROM events LIMIT 1").fetchone()[0]


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lib]:
    path = tmp_path_factory.mktemp("library") / "demo.duckdb"
    with Store(f"duckdb://{path}") as store:
        report = run_demo(store, OPTIONS, "demo", keep_truth=True)
        yield Lib(store, pa.concat_tables([u for u, _ in report.truth]),
                  pa.concat_tables([a for _, a in report.truth]))


@pytest.mark.slow
def test_every_segment_is_non_empty_and_documented(lib: Lib) -> None:
    names = [s.name for s in builtin_segments(demo_vocabulary())]
    assert names == ["power_users", "regular", "occasional", "dormant", "new_this_week",
                     "at_risk", "resurrected", "stuck_in_onboarding", "activated", "promoters",
                     "passives", "detractors", "trial_likely_to_convert", "missed_a_payment",
                     "champions", "feature_discovery"]
    assert all(s.description for s in builtin_segments(demo_vocabulary()))
    assert {n: bool(lib.members[n]) for n in names} == {n: True for n in names}


def test_activity_segments_follow_personas(lib: Lib) -> None:
    m, power, dormant = lib.members, lib.persona(v.POWER), lib.persona(v.DORMANT)
    assert len(m["power_users"] & power) > 0.6 * len(power)
    assert len(m["power_users"] & power) > 0.7 * len(m["power_users"])
    assert not m["power_users"] & dormant
    assert not m["dormant"] & m["power_users"]
    assert not m["dormant"] & power
    assert len(m["dormant"] & dormant) > 0.5 * len(dormant)
    regular = lib.persona(v.REGULAR)
    assert len(m["regular"] & regular) > 0.5 * len(regular)
    assert len(m["regular"] & regular) > 0.6 * len(m["regular"])
    assert not m["power_users"] & m["regular"] and not m["occasional"] & m["regular"]
    assert not m["occasional"] & m["power_users"]
    occasional = lib.persona(v.OCCASIONAL)
    assert len(m["occasional"] & occasional) > len(m["regular"] & occasional)
    resurrected = lib.persona(v.RESURRECTED)
    assert len(m["resurrected"] & resurrected) > 0.7 * len(resurrected)
    assert len(m["resurrected"] & resurrected) > 0.7 * len(m["resurrected"])


def test_new_this_week_is_who_signed_up_in_the_last_7_days(lib: Lib) -> None:
    assert lib.members["new_this_week"] == lib.ids(
        "SELECT user_id FROM truth_users WHERE signup >= ? AND signup < ?",
        datetime(2026, 10, 25), END)


def test_journey_segments_follow_the_generated_stages(lib: Lib) -> None:
    before = lib.ids("SELECT user_id FROM truth_users WHERE stage IN (?, ?, ?)",
                     v.SIGNED_UP, v.WORKSPACE_CREATED, v.DATA_SOURCE_CONNECTED)
    stuck_long = lib.ids("SELECT user_id FROM truth_users WHERE stage IN (?, ?, ?) "
                         "AND signup < ?", v.SIGNED_UP, v.WORKSPACE_CREATED,
                         v.DATA_SOURCE_CONNECTED, datetime(2026, 10, 1))
    assert lib.members["stuck_in_onboarding"] <= before
    assert stuck_long <= lib.members["stuck_in_onboarding"]
    assert not lib.members["activated"] & before


def test_nps_segments_partition_answerers_as_a_hand_written_query_says(lib: Lib) -> None:
    """By each user's latest answer (the demo's scores are integers 0-10), among users
    who answered in the 12 months before the end."""
    rows = lib.db.execute(
        "SELECT user_id, arg_max(CAST(json_extract(properties, '$.score') AS DOUBLE), "
        "timestamp) FROM events WHERE event = 'nps_submitted' AND timestamp < ? "
        "GROUP BY user_id HAVING max(timestamp) >= ?", [END, datetime(2025, 11, 1)]).fetchall()
    expected = {"promoters": {u for u, s in rows if s >= 9},
                "passives": {u for u, s in rows if 7 <= s < 9},
                "detractors": {u for u, s in rows if s < 7}}
    assert {k: lib.members[k] for k in expected} == expected
    assert set().union(*expected.values()) == {u for u, _ in rows}
    assert lib.members["champions"] <= lib.members["promoters"]


def test_missed_a_payment_matches_a_hand_written_query(lib: Lib) -> None:
    assert lib.members["missed_a_payment"] == lib.ids(
        "SELECT DISTINCT user_id FROM events WHERE event = 'payment_failed' "
        "AND timestamp >= ? AND timestamp < ?", datetime(2026, 10, 2), END)
    assert not lib.members["champions"] & lib.members["missed_a_payment"]


def test_trial_likely_to_convert_holds_only_users_on_trial(lib: Lib) -> None:
    on_trial = lib.ids("SELECT u.user_id FROM truth_users u JOIN truth_accounts a "
                       "USING (account_id) WHERE a.plan = 'trial'")
    assert lib.members["trial_likely_to_convert"] <= on_trial
    assert len(lib.members["trial_likely_to_convert"]) < len(on_trial)


def test_feature_discovery_uses_reports_and_dashboards_never_alerts(lib: Lib) -> None:
    expected = lib.ids(
        "SELECT user_id FROM events GROUP BY user_id HAVING "
        "count(*) FILTER (WHERE event = 'report_viewed' AND timestamp >= ?) > 0 AND "
        "count(*) FILTER (WHERE event = 'dashboard_viewed' AND timestamp >= ?) > 0 AND "
        "count(*) FILTER (WHERE event = 'alert_created') = 0",
        datetime(2026, 10, 4), datetime(2026, 10, 4))
    assert lib.members["feature_discovery"] == expected


def test_demo_workspace_file_round_trips(tmp_path: Path) -> None:
    path = write_workspace(tmp_path / "segmently.yaml")
    ws = load_workspace(path)
    assert {s.name: s.rule for s in ws.segments} == {
        **library_rules(demo_vocabulary()), **{s.name: s.rule for s in planted_segments()}}
    assert [f.name for f in ws.features if f.core] == list(v.CORE_FEATURES)
    assert [m.name for m in ws.milestones] == list(v.MILESTONES)
    assert ws.engagement.weights[v.REPORT_CREATED] == 3.0


@pytest.mark.slow
def test_demo_command_writes_the_workspace_and_explains_a_member(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    out = CliRunner().invoke(app, ["--db", str(db), "--json", "demo", "--users", "150",
                                   "--days", "60", "--end", "2026-11-01"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert Path(result["workspace"]) == tmp_path / "segmently.yaml"
    assert load_workspace(tmp_path / "segmently.yaml").segments
    shown = {s["segment"]: s for s in result["segments"]}
    assert list(shown) == [*library_rules(demo_vocabulary()),
                           *(s.name for s in planted_segments())]
    for s in shown.values():
        assert (s["member"] is None) == (s["size"] == 0)
        if s["member"]:
            assert s["why"]["truth"] is True


@pytest.mark.slow
def test_nps_segments_read_each_users_latest_answer_of_the_last_year(store: Store) -> None:
    """ann answered 10, then 6: a detractor now (an average, 8, would say passive); bob's
    only answer is 13 months old: in none; cat's latest, 8.0, is a whole number: passive."""
    from datetime import timedelta

    from segmently.profile.config import Vocabulary
    from segmently.store import Message

    def answer(mid: str, user: str, score: Any, days_ago: int) -> Message:
        return Message(message_id=mid, type="track", event="nps_submitted",
                       timestamp=END - timedelta(days=days_ago), source="native",
                       user_id=user, properties={"score": score})

    store.append("p", [answer("1", "ann", 10, 200), answer("2", "ann", 6, 20),
                       answer("3", "bob", 10, 400), answer("4", "cat", 8.0, 5)],
                 received_at=END - timedelta(days=500))
    nps = {d.name: d.rule for d in builtin_segments(Vocabulary())
           if d.name in ("promoters", "passives", "detractors")}
    ev = evaluate(store, "p", nps, END)
    got = {name: set(ev.members(name).to_pyarrow()["user_id"].to_pylist()) for name in nps}
    assert got == {"promoters": set(), "passives": {"cat"}, "detractors": {"ann"}}
