"""`campaign_results` on DuckDB and PostgreSQL over a hand-made campaign: assignments
written with `assignments.record`, events with `store.append`; every count below is
worked out by hand from the data in the comments."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from segmently.act import assignments
from segmently.act.assignments import Assignment
from segmently.act.campaigns import UnknownCampaignError
from segmently.core import Project
from segmently.insights.registry import InsightError
from segmently.store import Message, Store
from segmently.store.projects import create_project

AS_OF = datetime(2026, 3, 1)
D = datetime(2026, 2, 1)  # D + n days = February n + 1


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """February `day`, at that time."""
    return datetime(2026, 2, day, hour, minute, second)


# (user, arm, assigned at); t5 is recorded a second time, later, held out: the first wins;
# h5 is assigned after as_of: not counted
ASSIGNED = [
    ("t1", "treatment", at(2, 10)), ("t2", "treatment", at(2, 10)),
    ("t3", "treatment", at(3, 8)), ("t4", "treatment", at(3, 8)),
    ("t5", "treatment", at(4, 9)), ("t6", "treatment", at(4, 9)),
    ("t5", "holdout", at(5, 9)),
    ("h1", "holdout", at(2, 11)), ("h2", "holdout", at(2, 11)),
    ("h3", "holdout", at(3, 12)), ("h4", "holdout", at(27, 6)),
    ("h5", "holdout", datetime(2026, 3, 2)),
]
# (user, when, plan of the purchase)
BUYS = [
    ("t1", at(2, 12), "pro"),  # same day, two hours after assignment: converted
    ("t2", at(2, 9), "pro"),  # an hour BEFORE assignment: not converted
    ("t3", at(10, 8), "basic"),  # exactly assigned_at + 7 days: converted (end included)
    ("t4", at(10, 8, 0, 1), "pro"),  # one second after the window: not converted
    ("t5", at(6, 15), "pro"),  # in the middle of the window: converted
    ("h1", at(5, 10), "pro"),  # converted
    ("h3", at(20, 10), "basic"),  # 17 days after: not converted
    ("h4", at(28, 10), "basic"),  # window still open at as_of: converted so far
]
# t6, h2: never buy. shown: t1, t2, t3 (t4 was shown another campaign)
SHOWN = [("t1", at(2, 10, 0, 5), "tour"), ("t2", at(2, 10, 0, 5), "tour"),
         ("t3", at(3, 8, 1), "tour"), ("t4", at(3, 8, 1), "other")]


def setup(store: Store) -> Project:
    p = Project(store, create_project(store, "p").project.project_id)
    goals: dict[str, dict[str, Any]] = {
        "tour": {"kind": "performed", "event": "buy"},
        # a rule that is not one windowless event: evaluated per assignment day
        "recent": {"kind": "performed", "event": "buy", "window": {"last": 3,
                                                                   "unit": "days"}},
        # property filters: read from raw events
        "pro": {"kind": "performed", "event": "buy",
                "where": [{"property": "plan", "op": "eq", "value": "pro"}]},
    }
    for name, rule in goals.items():
        p.save_campaign({"name": name, "kind": "banner", "holdout_percent": 50,
                         "goal": {"rule": rule, "within_days": 7}, "content": {"body": "hi"}})
        assignments.record(store, p.id, [Assignment(name, u, arm, 1, when)  # type: ignore[arg-type]
                                         for u, arm, when in ASSIGNED])
    p.save_campaign({"name": "nogoal", "kind": "banner", "content": {"body": "hi"}})
    messages = [Message(message_id=f"buy-{u}", type="track", event="buy", timestamp=when,
                        source="test", user_id=u, properties={"plan": plan})
                for u, when, plan in BUYS]
    messages += [Message(message_id=f"shown-{u}-{c}", type="track", event="campaign_shown",
                         timestamp=when, source="test", user_id=u,
                         properties={"campaign": c}) for u, when, c in SHOWN]
    store.append(p.id, messages, received_at=AS_OF - timedelta(days=1))
    return p


def arms(got: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {a["arm"]: (a["assigned"], a["converted"]) for a in got["arms"]}


def test_conversions_per_arm_by_intention_to_treat(store: Store) -> None:
    p = setup(store)
    got = p.insight("campaign_results", {"campaign": "tour", "as_of": AS_OF.isoformat()})
    # treatment t1..t6, converted t1, t3, t5; holdout h1..h4, converted h1, h4
    assert arms(got) == {"treatment": (6, 3), "holdout": (4, 2)}
    rates = {a["arm"]: a["rate"] for a in got["arms"]}
    assert rates == {"treatment": pytest.approx(0.5), "holdout": pytest.approx(0.5)}
    # windows closed by as_of: everyone but h4 (assigned Feb 27, open until Mar 6)
    assert {a["arm"]: (a["complete"], a["converted_complete"]) for a in got["arms"]} == \
        {"treatment": (6, 3), "holdout": (3, 1)}
    # shown: t1, t2, t3 of treatment; t4's exposure was another campaign's
    assert got["shown"] == {"treatment": 3, "holdout": 0}
    assert got["raw"]["absolute"]["estimate"] == pytest.approx(0.0)
    # SRM against 50%: expected 5 and 5, seen 6 and 4: chi2 = 1/5 + 1/5 = 0.4,
    # p = erfc(sqrt(0.2)) = 0.527
    assert got["srm"]["chi2"] == pytest.approx(0.4)
    assert got["srm"]["p_value"] == pytest.approx(0.5271, abs=1e-4)
    assert got["srm"]["flagged"] is False
    # 6 and 4 users: far below the 100 per arm a verdict needs
    assert got["too_early"]["flag"] is True and got["verdict"] == "too_early"
    assert got["significant"] is False and "sequential" in got["method"]
    # retained at day 7 (activity on days 7-13 after the assignment day; exposures do not
    # count): t3 and t4 bought on Feb 10 (assigned Feb 3); nobody in the holdout, whose
    # h4 has no closed window yet
    [d7] = [m for m in got["secondary"] if m["metric"] == "retained_d7"]
    assert (d7["treatment"]["n"], d7["treatment"]["value"]) == (6, pytest.approx(2 / 6))
    assert (d7["holdout"]["n"], d7["holdout"]["value"]) == (3, 0.0)

    # the daily cumulative conversions per arm
    daily = got["daily"]
    # from Feb 2 (the first assignment) to Feb 28 (the last day before as_of)
    assert daily["days"][0] == "2026-02-02" and daily["days"][-1] == "2026-02-28"
    t, h = daily["treatment"], daily["holdout"]
    # Feb 2: t1, t2 assigned, t1 converted; h1, h2 assigned
    assert (t["assigned"][0], t["converted"][0], h["assigned"][0], h["converted"][0]) == \
        (2, 1, 2, 0)
    # Feb 5: treatment 6 assigned, t1 and t5 (Feb 6 is the next day) -> 1 then; h1 bought
    assert (t["assigned"][3], t["converted"][3], h["converted"][3]) == (6, 1, 1)
    # Feb 10: t3 converts -> 3; the end: 6/3 and 4/2
    assert t["converted"][8] == 3
    assert (t["assigned"][-1], t["converted"][-1], h["assigned"][-1], h["converted"][-1]) \
        == (6, 3, 4, 2)
    assert h["rate"][-1] == pytest.approx(0.5)


def test_a_rule_goal_and_a_filtered_goal(store: Store) -> None:
    p = setup(store)
    got = p.insight("campaign_results", {"campaign": "recent", "as_of": AS_OF.isoformat()})
    # bought in the 3 days before the end of assignment day + 7 (capped at as_of):
    # t1 (Feb 2 -> Feb 10: needs Feb 7-9) no; t3, t4 (Feb 3 -> Feb 11: Feb 8-10) yes;
    # t5 (Feb 4 -> Feb 12: Feb 9-11; bought Feb 6) no; h1 (Feb 5) no; h3 (Feb 20, assigned
    # Feb 3 -> Feb 11) no; h4 (Feb 27 -> capped at Mar 1: Feb 26-28, bought Feb 28) yes
    assert arms(got) == {"treatment": (6, 2), "holdout": (4, 1)}
    assert "evaluated" in got["goal"]["judged"]
    # a goal with property filters is read from raw events
    got = p.insight("campaign_results", {"campaign": "pro", "as_of": AS_OF.isoformat()})
    # plan pro within the window: t1, t5 (t3 bought basic, t2 before, t4 too late);
    # h1 (h4 bought basic)
    assert arms(got) == {"treatment": (6, 2), "holdout": (4, 1)}


def test_srm_too_early_and_errors(store: Store) -> None:
    p = setup(store)
    p.save_campaign({"name": "skewed", "kind": "banner", "holdout_percent": 50,
                     "goal": {"rule": {"kind": "performed", "event": "buy"}, "within_days": 7},
                     "content": {"body": "hi"}})
    rows = [Assignment("skewed", f"s{i}", "treatment" if i < 30 else "holdout", 1, at(2))
            for i in range(35)]
    assignments.record(store, p.id, rows)
    got = p.insight("campaign_results", {"campaign": "skewed", "as_of": AS_OF.isoformat(),
                                         "min_users": "10"})
    # 30 against 5 where 17.5 each were expected: chi2 = 2 * 12.5^2 / 17.5 = 17.857,
    # p = 2.4e-5 < 0.001
    assert got["srm"]["chi2"] == pytest.approx(17.857, abs=1e-3)
    assert got["srm"]["flagged"] is True
    # 5 held out: under min_users 10; nobody converted either
    assert got["too_early"]["flag"] is True
    assert any("holdout: 5 users" in r for r in got["too_early"]["reasons"])
    with pytest.raises(UnknownCampaignError, match="nope"):
        p.insight("campaign_results", {"campaign": "nope"})
    with pytest.raises(InsightError, match="no goal"):
        p.insight("campaign_results", {"campaign": "nogoal"})
    with pytest.raises(InsightError, match="campaign"):
        p.insight("campaign_results", {})
    with pytest.raises(InsightError, match="min_users"):
        p.insight("campaign_results", {"campaign": "tour", "min_users": "1"})
    with pytest.raises(InsightError, match="as_of"):
        p.insight("campaign_results", {"campaign": "tour", "as_of": "yesterday-ish"})


@pytest.mark.slow
def test_the_demos_planted_lift_is_recovered(tmp_path: Any) -> None:
    """The demo plants a lift for show_alerts (demo/planted.py): the analysis finds it,
    significant and positive, and its counts are those of an independent pandas reading
    of the stored assignments and events."""
    import pandas as pd

    from segmently.demo import DemoOptions, run_demo
    from segmently.demo.workspace import demo_workspace

    end = datetime(2026, 11, 1)
    with Store(f"duckdb://{tmp_path / 'demo.duckdb'}") as store:
        report = run_demo(store, DemoOptions(users=2000, days=90, seed=11, end=end), "demo")
        p = Project(store, report.project_id)
        p.apply(demo_workspace("demo"))
        got = p.insight("campaign_results", {"campaign": "show_alerts",
                                             "as_of": end.isoformat()})
        a = store.table("campaign_assignments").to_pandas()
        e = store.table("events").to_pandas()
    assert got["verdict"] == "positive" and got["significant"] is True
    assert got["raw"]["sequential"]["absolute"]["low"] > 0
    assert got["srm"]["flagged"] is False and got["too_early"]["flag"] is False
    # by pandas: the first alert_created in (assigned_at, assigned_at + 14 days]
    a = a[a.campaign == "show_alerts"].sort_values("assigned_at").drop_duplicates("user_id")
    alerts = e[e.event == "alert_created"][["user_id", "timestamp"]]
    j = a.merge(alerts, on="user_id", how="left")
    inside = (j.timestamp > j.assigned_at) & (j.timestamp <= j.assigned_at + pd.Timedelta(days=14))
    converted = set(j[inside].user_id)
    expected = {arm: (int((a.arm == arm).sum()), int(a[a.arm == arm].user_id.isin(converted)
                                                     .sum())) for arm in ("treatment", "holdout")}
    assert arms(got) == expected
    assert expected["holdout"][0] > 100
    shown = e[e.event == "campaign_shown"].user_id
    assert got["shown"] == {arm: int(a[a.arm == arm].user_id.isin(shown).sum())
                            for arm in ("treatment", "holdout")}
    assert got["shown"]["holdout"] == 0 and got["shown"]["treatment"] > 0
