"""`friction` on DuckDB and PostgreSQL: a funnel over crafted users whose counts, times,
instead-events and stuck users are worked out by hand in the comments; the stuck rules
saved as segments hold exactly those users; and, on a small demo, one funnel's counts and
times against an independent pandas computation over the raw events read with duckdb."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from segmently.core import Project
from segmently.insights.registry import InsightError
from segmently.segments.rules import parse_rule
from segmently.store import Message, Store, utcnow
from segmently.store.projects import create_project

H = timedelta(hours=1)
D = timedelta(days=1)


def ev(mid: str, user: str | None, event: str, at: datetime, kind: str = "track",
       anon: str | None = None, **extra) -> Message:  # type: ignore[no-untyped-def]
    return Message(message_id=mid, type=kind, event=event, timestamp=at, source="native",
                   user_id=user, anonymous_id=anon, **extra)


def crafted(store: Store) -> tuple[Project, datetime]:
    """Steps a -> b -> c, window 2 days (48 h), range 30 days; times from T0 (10 days ago).

    u1: a 0h, b 1h, c 3h                       -> step 3 (b +3600 s, c +7200 s); vip
    u2: a 0h, b 2h, c 6h                       -> step 3 (+7200, +14400)
    u3: a 0h, b 4h, x 5h, y 6h, x 7h, w 50h    -> stuck at 2 (+14400); w is past the
                                                  window (a + 48h): not "instead"; vip
    u4: a 0h, c 5h, b 10h, x 11h               -> stuck at 2 (+36000): its c is before b
    u5: b -1h, a 0h, z 1h                      -> stuck at 1 (b before a); vip
    u8: a 0h, a 1h, b 1.5h, $page 2h, identify 2.5h -> stuck at 2 (+5400 from the first
                                                  a); identify is no activity: not instead
    u9: a 0h, b 0h (the same instant), c 1h    -> stuck at 1: b is not strictly later
    u10: a 0h as anonymous anon10, merged into u10 at 0.5h, b 1h, c 2h -> step 3
                                                  (+3600, +3600)
    u7: a 40 days ago only                     -> outside the range: not in the funnel
    vip (plan trait): u1, u3, u5
    """
    p = Project(store, create_project(store, "p").project.project_id)
    t0 = (utcnow() - 10 * D).replace(minute=0, second=0, microsecond=0)
    rows = [
        ev("1", "u1", "a", t0), ev("2", "u1", "b", t0 + H), ev("3", "u1", "c", t0 + 3 * H),
        ev("4", "u2", "a", t0), ev("5", "u2", "b", t0 + 2 * H), ev("6", "u2", "c", t0 + 6 * H),
        ev("7", "u3", "a", t0), ev("8", "u3", "b", t0 + 4 * H), ev("9", "u3", "x", t0 + 5 * H),
        ev("10", "u3", "y", t0 + 6 * H), ev("11", "u3", "x", t0 + 7 * H),
        ev("12", "u3", "w", t0 + 50 * H),
        ev("13", "u4", "a", t0), ev("14", "u4", "c", t0 + 5 * H), ev("15", "u4", "b", t0 + 10 * H),
        ev("16", "u4", "x", t0 + 11 * H),
        ev("17", "u5", "b", t0 - H), ev("18", "u5", "a", t0), ev("19", "u5", "z", t0 + H),
        ev("20", "u8", "a", t0), ev("21", "u8", "a", t0 + H), ev("22", "u8", "b", t0 + 1.5 * H),
        ev("23", "u8", "$page", t0 + 2 * H, kind="page"),
        ev("24", "u8", "$identify", t0 + 2.5 * H, kind="identify"),
        ev("25", "u9", "a", t0), ev("26", "u9", "b", t0), ev("27", "u9", "c", t0 + H),
        ev("28", None, "a", t0, anon="anon10"),
        ev("29", "u10", "$identify", t0 + 0.5 * H, kind="identify", alias_id="anon10"),
        ev("30", "u10", "b", t0 + H), ev("31", "u10", "c", t0 + 2 * H),
        ev("32", "u7", "a", utcnow() - 40 * D),
    ] + [ev(f"v{u}", u, "$identify", t0 - 20 * D, kind="identify", traits={"plan": "vip"})
         for u in ("u1", "u3", "u5")]
    store.append(p.id, rows)
    p.save("vip", "", {"kind": "property", "property": "plan", "op": "eq", "value": "vip"})
    return p, t0


def shape(step: dict) -> tuple:  # type: ignore[type-arg]
    return (step["users"], step["dropped"], step["stuck"])


def members(p: Project, names: list[str]) -> dict[str, list[str]]:
    """Each saved segment's members, evaluated now (one pass for all of them)."""
    ev = p.evaluation(only=names)
    return {n: sorted(ev.members(n).to_pyarrow()["user_id"].to_pylist()) for n in names}


def test_counts_times_instead_and_stuck_segments_by_hand(store: Store) -> None:
    p, _ = crafted(store)
    got = p.insight("friction", {"steps": "a,b,c", "window": "2", "unit": "days",
                                 "range": "30"})
    [f] = got["funnels"]
    assert f["segment"] is None and f["users"] == 8
    s1, s2, s3 = f["steps"]
    # entrants u1 u2 u3 u4 u5 u8 u9 u10 = 8; b: u1 u2 u3 u4 u8 u10 = 6; c: u1 u2 u10 = 3
    assert [shape(s) for s in f["steps"]] == [(8, 0, 2), (6, 2, 3), (3, 3, None)]
    assert [s["conversion_from_previous"] for s in f["steps"]] == \
        pytest.approx([1.0, 6 / 8, 3 / 6])
    assert [s["conversion_from_first"] for s in f["steps"]] == pytest.approx([1.0, 6 / 8, 3 / 8])
    # a -> b seconds: 3600 (u1), 3600 (u10), 5400 (u8), 7200 (u2), 14400 (u3), 36000 (u4)
    # median (5400 + 7200) / 2 = 6300; p90 at rank 5 x 0.9 = 4.5: 14400 + 0.5 x 21600 = 25200
    assert (s1["median_seconds"], s1["p90_seconds"]) == (None, None)
    assert s2["median_seconds"] == pytest.approx(6300)
    assert s2["p90_seconds"] == pytest.approx(25200)
    # b -> c seconds: 3600 (u10), 7200 (u1), 14400 (u2): median 7200;
    # p90 at rank 2 x 0.9 = 1.8: 7200 + 0.8 x 7200 = 12960
    assert s3["median_seconds"] == pytest.approx(7200)
    assert s3["p90_seconds"] == pytest.approx(12960)
    # stuck at 1: u5 (z at 1h), u9 (c at 1h; its b at the same instant is not after a)
    assert [(i["event"], i["users"], i["events"]) for i in s1["instead"]] == \
        [("c", 1, 1), ("z", 1, 1)]
    assert [i["share"] for i in s1["instead"]] == pytest.approx([0.5, 0.5])
    # stuck at 2: u3 (x, y, x; w past the window), u4 (x; its c came before b),
    # u8 ($page; the identify is not activity, the second a was before b)
    assert [(i["event"], i["users"], i["events"]) for i in s2["instead"]] == \
        [("x", 2, 3), ("$page", 1, 1), ("y", 1, 1)]
    assert [i["share"] for i in s2["instead"]] == pytest.approx([2 / 3, 1 / 3, 1 / 3])
    assert s3["instead"] == [] and s3["stuck_rule"] is None

    # one funnel per segment: vip is u1 (step 3), u3 (stuck at 2), u5 (stuck at 1)
    [v] = p.insight("friction", {"steps": "a,b,c", "window": "2", "segments": "vip"})["funnels"]
    assert v["segment"] == "vip"
    assert [shape(s) for s in v["steps"]] == [(3, 0, 1), (2, 1, 1), (1, 1, None)]
    # a -> b: 3600 (u1), 14400 (u3): median 9000, p90 3600 + 0.9 x 10800 = 13320
    assert v["steps"][1]["median_seconds"] == pytest.approx(9000)
    assert v["steps"][1]["p90_seconds"] == pytest.approx(13320)
    assert v["steps"][2]["median_seconds"] == pytest.approx(7200)
    assert [(i["event"], i["users"], i["events"]) for i in v["steps"][1]["instead"]] == \
        [("x", 1, 2), ("y", 1, 1)]
    assert [(i["event"], i["share"]) for i in v["steps"][0]["instead"]] == [("z", 1.0)]
    assert v["steps"][1]["stuck_rule"]["all"][0] == {"kind": "in_segment", "segment": "vip"}

    # the stuck users as segments, saved and evaluated
    assert s1["stuck_rule"] == {"all": [
        {"kind": "performed", "event": "a", "window": {"last": 30}},
        {"not": {"kind": "sequence", "steps": [{"event": "a"}, {"event": "b"}],
                 "window": {"last": 30}}}]}
    assert s2["stuck_name"] == "stuck_at_b_before_c"
    assert v["steps"][1]["stuck_name"] == "vip_stuck_at_b_before_c"
    for step in (s1, s2, v["steps"][1]):
        parse_rule(step["stuck_rule"], "rule")
        p.save(step["stuck_name"], step["stuck_description"], step["stuck_rule"])
    assert members(p, [s1["stuck_name"], s2["stuck_name"], v["steps"][1]["stuck_name"]]) == {
        s1["stuck_name"]: ["u5", "u9"], s2["stuck_name"]: ["u3", "u4", "u8"],
        v["steps"][1]["stuck_name"]: ["u3"]}


def test_window_in_hours_is_inclusive(store: Store) -> None:
    p, _ = crafted(store)
    got = p.insight("friction", {"steps": "a,b,c", "window": "3", "unit": "hours",
                                 "instead": "1"})
    s1, s2, _ = got["funnels"][0]["steps"]
    # within 3 h of a: b for u1 (1h), u2 (2h), u8 (1.5h), u10 (1h); c for u1 (exactly 3h,
    # included) and u10 (2h); u2's c at 6h is too late
    assert [s["users"] for s in got["funnels"][0]["steps"]] == [8, 4, 2]
    assert got["window"] == {"value": 3, "unit": "hours", "seconds": 10800}
    # stuck at 1: u3, u4, u5, u9; within 3 h only u5's z (1h) and u9's c (1h): c first by
    # name, the top 1 kept. Stuck at 2: u2 (its c at 6h is out), u8 ($page at 2h)
    assert [(i["event"], i["users"]) for i in s1["instead"]] == [("c", 1)]
    assert s1["instead"][0]["share"] == pytest.approx(1 / 4)
    assert [(i["event"], i["users"], i["share"]) for i in s2["instead"]] == [("$page", 1, 0.5)]


def test_a_late_converter_is_stuck_in_the_funnel_not_in_the_segment(store: Store) -> None:
    """The documented difference: the segment has no conversion window."""
    p = Project(store, create_project(store, "p").project.project_id)
    t0 = (utcnow() - 10 * D).replace(microsecond=0)
    # u6: a, then b 3 days later (past the 2-day window), never c
    store.append(p.id, [ev("1", "u6", "a", t0), ev("2", "u6", "b", t0 + 3 * D)])
    got = p.insight("friction", {"steps": "a,b,c", "window": "2"})
    s1, s2, _ = got["funnels"][0]["steps"]
    assert [s["users"] for s in got["funnels"][0]["steps"]] == [1, 0, 0]
    assert s1["stuck"] == 1 and s1["instead"] == []  # b came after the window
    for step in (s1, s2):
        p.save(step["stuck_name"], "", step["stuck_rule"])
    assert members(p, [s1["stuck_name"], s2["stuck_name"]]) == {
        s1["stuck_name"]: [],  # they did go on to b
        s2["stuck_name"]: ["u6"]}  # did a then b, not c


def test_wrong_parameters_name_themselves(store: Store) -> None:
    p = Project(store, create_project(store, "p").project.project_id)
    for params, word in [({"steps": "a"}, "steps"), ({"steps": ",".join("abcdefghijk")}, "steps"),
                         ({"steps": "a,b", "window": "0"}, "window"),
                         ({"steps": "a,b", "unit": "weeks"}, "unit"),
                         ({"steps": "a,b", "range": "-1"}, "range"),
                         ({"steps": "a,b", "segments": "nope"}, "nope"),
                         ({"steps": "a,b", "colour": "red"}, "colour"), ({}, "steps")]:
        with pytest.raises(InsightError, match=word):
            p.insight("friction", params)


def test_an_empty_project_has_an_empty_funnel(store: Store) -> None:
    p = Project(store, create_project(store, "p").project.project_id)
    got = p.insight("friction", {"steps": "a,b"})
    assert [(s["users"], s["conversion_from_first"]) for s in got["funnels"][0]["steps"]] \
        == [(0, 0.0), (0, 0.0)]


# -- the demo against pandas --------------------------------------------------------------
STEPS = ["signed_up", "workspace_created", "data_source_connected", "first_report_created"]


@pytest.mark.slow
def test_a_demo_funnel_matches_pandas(tmp_path: Path) -> None:
    import duckdb
    import numpy as np
    import pandas as pd

    from segmently.demo import DemoOptions, run_demo

    db = tmp_path / "demo.duckdb"
    with Store(f"duckdb://{db}") as store:
        report = run_demo(store, DemoOptions(users=300, days=60), "demo")
        p = Project(store, report.project_id)
        got = p.insight("friction", {"steps": ",".join(STEPS), "window": "3", "range": "45"})
        now = datetime.fromisoformat(got["end"])
    with duckdb.connect(str(db), read_only=True) as con:
        raw = con.sql("SELECT coalesce(user_id, anonymous_id) AS person, event, timestamp "
                      "FROM events").df()  # the demo has no anonymous merges
    raw = raw[(raw.timestamp >= now - timedelta(days=45)) & (raw.timestamp < now)]
    window = timedelta(days=3)
    reached: list[dict[str, pd.Timestamp]] = []
    for _, rows in raw.groupby("person"):
        times: dict[str, pd.Timestamp] = {}
        firsts = rows[rows.event == STEPS[0]].timestamp
        if firsts.empty:
            continue
        anchor = last = firsts.min()
        times[STEPS[0]] = anchor
        for name in STEPS[1:]:
            later = rows[(rows.event == name) & (rows.timestamp > last)
                         & (rows.timestamp <= anchor + window)].timestamp
            if later.empty:
                break
            last = times[name] = later.min()
        reached.append(times)
    counts = [sum(name in t for t in reached) for name in STEPS]
    assert counts[0] > 100 and counts[-1] > 20  # a real funnel, not an empty one
    assert [s["users"] for s in got["funnels"][0]["steps"]] == counts
    for k in range(1, len(STEPS)):
        secs = np.array([(t[STEPS[k]] - t[STEPS[k - 1]]).total_seconds()
                         for t in reached if STEPS[k] in t])
        step = got["funnels"][0]["steps"][k]
        assert step["median_seconds"] == pytest.approx(np.median(secs), abs=1e-3)
        assert step["p90_seconds"] == pytest.approx(np.quantile(secs, 0.9), abs=1e-3)
