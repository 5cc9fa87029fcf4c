"""`segment_flow`, `segment_time` and `segment_next` (insights/flow.py) on DuckDB and
PostgreSQL, from snapshots recorded by hand: every expected number below is worked out in
the comments from the memberships written; and the flow of a small demo with weekly
snapshots against an independent pandas reading of the transitions table."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from segmently.cli import app
from segmently.core import Project
from segmently.insights.registry import InsightError
from segmently.segments import snapshots as snap
from segmently.store import Store, utcnow
from segmently.store.projects import create_project

P, R, O, D = "power_users", "regular", "occasional", "dormant"  # noqa: E741
NONE, NEW = "(none)", "(new)"
DAY = timedelta(days=1)
RULE = {"kind": "performed", "event": "x"}  # never evaluated: snapshots are written by hand


def project(store: Store, *names: str) -> Project:
    p = Project(store, create_project(store, "p").project.project_id)
    for name in names:
        p.save(name, "", RULE)
    return p


def record(store: Store, p: Project, at: datetime, members: dict[str, set[str]]) -> None:
    """One refresh at `at`: snapshots.record of each segment, in one call."""
    snap.record_all(store, p.id, {name: sorted(ids) for name, ids in members.items()}, at)


def this_monday() -> datetime:
    now = utcnow()
    return (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0,
                                                         microsecond=0)


def tiers(store: Store) -> tuple[Project, datetime]:
    """Eight users u1..u8 over the four tiers; M is this week's Monday. Recorded:

        t1 = M-4w+1h  P {u1}      R {u1,u2,u3}  O {u4}           D {u5}
        t2 = M-2w     P {u1,u2}   R {u3,u6}     O {u4,u5}        D {u4}
        t3 = M-1w-2d  P {u1}      R {u2,u6}     O {u5}           D {u3}
        t4 = M        P {u1,u6}   R {u2}        O {u8}           D {u3,u5}
        t5 = between M and now:   R {u2,u4}     (others as at t4)
      and last, a backfill between t2 and t3:
        t2b = M-2w+1d             O {u4,u5,u7}  (u7 in O only from t2b to t3)

    With period=week, periods=3 the boundaries are M-3w, M-2w, M-1w, M, and the state at
    each is the first tier (P, R, O, D) of the latest snapshot at or before it:
        b0 = M-3w (t1):  u1 P  u2 R  u3 R  u4 O  u5 D  u6 new  u8 new
        b1 = M-2w (t2):  u1 P  u2 P  u3 R  u4 O  u5 O  u6 R    u8 new   (u4 O before D)
        b2 = M-1w (t3):  u1 P  u2 R  u3 D  u4 -  u5 O  u6 R    u8 new
        b3 = M    (t4):  u1 P  u2 R  u3 D  u4 -  u5 D  u6 P    u8 O
        now       (t5):  u1 P  u2 R  u3 D  u4 R  u5 D  u6 P    u8 O
    u7 is never in a tier at a boundary: not counted. Users counted: 7."""
    p = project(store, P, R, O, D)
    m = this_monday()
    now = utcnow()
    w = timedelta(weeks=1)
    record(store, p, m - 4 * w + timedelta(hours=1),
           {P: {"u1"}, R: {"u1", "u2", "u3"}, O: {"u4"}, D: {"u5"}})
    record(store, p, m - 2 * w, {P: {"u1", "u2"}, R: {"u3", "u6"}, O: {"u4", "u5"}, D: {"u4"}})
    record(store, p, m - w - 2 * DAY, {P: {"u1"}, R: {"u2", "u6"}, O: {"u5"}, D: {"u3"}})
    record(store, p, m, {P: {"u1", "u6"}, R: {"u2"}, O: {"u8"}, D: {"u3", "u5"}})
    record(store, p, m + (now - m) / 2,
           {P: {"u1", "u6"}, R: {"u2", "u4"}, O: {"u8"}, D: {"u3", "u5"}})
    snap.record(store, p.id, O, {"u4", "u5", "u7"}, m - 2 * w + DAY)  # a backfill
    return p, m


def test_flow_matrices_sankey_and_heatmap(store: Store) -> None:
    p, m = tiers(store)
    got = p.insight("segment_flow", {"period": "week", "periods": "3"})
    assert got["segments"] == [P, R, O, D]  # the tiers, by default
    assert got["states"] == [P, R, O, D, NONE, NEW]
    assert [b["at"] for b in got["boundaries"]] == \
        [(m - timedelta(weeks=k)).isoformat() for k in (3, 2, 1, 0)]
    assert got["users"] == 7
    #          rows: from P R O D none new; columns: to the same
    step0 = [[1, 0, 0, 0, 0, 0],   # u1 P->P
             [1, 1, 0, 0, 0, 0],   # u2 R->P, u3 R->R
             [0, 0, 1, 0, 0, 0],   # u4 O->O
             [0, 0, 1, 0, 0, 0],   # u5 D->O
             [0, 0, 0, 0, 0, 0],
             [0, 1, 0, 0, 0, 1]]   # u6 new->R, u8 new->new
    step1 = [[1, 1, 0, 0, 0, 0],   # u1 P->P, u2 P->R
             [0, 1, 0, 1, 0, 0],   # u6 R->R, u3 R->D
             [0, 0, 1, 0, 1, 0],   # u5 O->O, u4 O->none
             [0, 0, 0, 0, 0, 0],
             [0, 0, 0, 0, 0, 0],
             [0, 0, 0, 0, 0, 1]]   # u8 new->new
    step2 = [[1, 0, 0, 0, 0, 0],   # u1 P->P
             [1, 1, 0, 0, 0, 0],   # u6 R->P, u2 R->R
             [0, 0, 0, 1, 0, 0],   # u5 O->D
             [0, 0, 0, 1, 0, 0],   # u3 D->D
             [0, 0, 0, 0, 1, 0],   # u4 none->none
             [0, 0, 1, 0, 0, 0]]   # u8 new->O
    assert [s["matrix"] for s in got["steps"]] == [step0, step1, step2]
    assert got["totals"] == [[3, 1, 0, 0, 0, 0],
                             [2, 3, 0, 1, 0, 0],
                             [0, 0, 2, 1, 1, 0],
                             [0, 0, 1, 1, 0, 0],
                             [0, 0, 0, 0, 1, 0],
                             [0, 1, 1, 0, 0, 2]]
    assert got["heatmap"] == {"x": got["states"], "y": got["states"], "z": got["totals"]}
    assert [b["sizes"] for b in got["boundaries"]] == [
        {P: 1, R: 2, O: 1, D: 1, NONE: 0, NEW: 2},
        {P: 2, R: 2, O: 2, D: 0, NONE: 0, NEW: 1},
        {P: 1, R: 2, O: 1, D: 1, NONE: 1, NEW: 1},
        {P: 2, R: 1, O: 1, D: 2, NONE: 1, NEW: 0}]
    d = [(m - timedelta(weeks=k)).strftime("%Y-%m-%d") for k in (3, 2, 1, 0)]
    # nodes: the states with users at each boundary, in order (indexes 0..19)
    assert got["sankey"]["nodes"] == [
        f"{P} @ {d[0]}", f"{R} @ {d[0]}", f"{O} @ {d[0]}", f"{D} @ {d[0]}", f"{NEW} @ {d[0]}",
        f"{P} @ {d[1]}", f"{R} @ {d[1]}", f"{O} @ {d[1]}", f"{NEW} @ {d[1]}",
        f"{P} @ {d[2]}", f"{R} @ {d[2]}", f"{O} @ {d[2]}", f"{D} @ {d[2]}", f"{NONE} @ {d[2]}",
        f"{NEW} @ {d[2]}",
        f"{P} @ {d[3]}", f"{R} @ {d[3]}", f"{O} @ {d[3]}", f"{D} @ {d[3]}", f"{NONE} @ {d[3]}"]
    links = got["sankey"]["links"]
    assert list(zip(links["source"], links["target"], links["value"], strict=True)) == [
        (0, 5, 1), (1, 5, 1), (1, 6, 1), (2, 7, 1), (3, 7, 1), (4, 6, 1), (4, 8, 1),
        (5, 9, 1), (5, 10, 1), (6, 10, 1), (6, 12, 1), (7, 11, 1), (7, 13, 1), (8, 14, 1),
        (9, 15, 1), (10, 15, 1), (10, 16, 1), (11, 18, 1), (12, 18, 1), (13, 19, 1),
        (14, 17, 1)]
    assert got["first_snapshots"][P] == (m - timedelta(weeks=4, hours=-1)).isoformat()


def test_flow_to_now_without_new_and_in_another_order(store: Store) -> None:
    p, m = tiers(store)
    # now=true: the present is a 5th boundary; b3 -> now: u4 none->R, the rest stay
    got = p.insight("segment_flow", {"periods": "3", "now": "true"})
    assert got["boundaries"][-1]["label"] == "now"
    assert got["steps"][-1]["matrix"] == [[2, 0, 0, 0, 0, 0],   # u1, u6
                                          [0, 1, 0, 0, 0, 0],   # u2
                                          [0, 0, 1, 0, 0, 0],   # u8
                                          [0, 0, 0, 2, 0, 0],   # u3, u5
                                          [0, 1, 0, 0, 0, 0],   # u4 none->R
                                          [0, 0, 0, 0, 0, 0]]
    # new=false: "new" users count as none; step 0: u6 none->R, u8 none->none
    got = p.insight("segment_flow", {"periods": "3", "new": "false"})
    assert got["states"] == [P, R, O, D, NONE]
    assert got["steps"][0]["matrix"] == [[1, 0, 0, 0, 0],
                                         [1, 1, 0, 0, 0],
                                         [0, 0, 1, 0, 0],
                                         [0, 0, 1, 0, 0],
                                         [0, 1, 0, 0, 1]]
    # dormant before occasional, only those two: users counted u3 u4 u5 u8
    #   u3: new new D D   (first in D at t3)     u4: O D(both at t2) none none
    #   u5: D O O D                              u8: new new new O
    got = p.insight("segment_flow", {"segments": f"{D},{O}", "periods": "3"})
    assert got["states"] == [D, O, NONE, NEW]
    assert got["users"] == 4
    assert [s["matrix"] for s in got["steps"]] == [
        [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 2]],  # u5 D->O, u4 O->D; u3 u8
        [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 1]],  # u4 D->-, u5 O->O, u3 new->D
        [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]]]  # u3 D->D, u5 O->D, u4, u8


def trials(store: Store) -> tuple[Project, datetime]:
    """Segments trial, paid, churned; N = now (instants are days before it).

        trial:   -30d {x0}  -29d {x0,a,b}  -27d {a,c}  -22d {b,c,d}  -17d {d}
                 (-27d recorded last, as a backfill: it writes repeated transitions
                  at -22d, which spells must skip)
        paid:    -30d {z,c}  -26d +a  -22d +d  -20d -c  -15d +c  -12d +b
        churned: -30d {}     -28d {b}  -10d {a,b}

    trial spells: x0 [-30,-27) starts at the first snapshot (censored); a [-29,-22) 7
    days; b [-29,-27) 2 and [-22,-17) 5; c [-27,-17) 10; d [-22, open)."""
    p = project(store, "trial", "paid", "churned")
    now = utcnow().replace(microsecond=0)

    def at(days: int) -> datetime:
        return now - days * DAY

    trial = {30: {"x0"}, 29: {"x0", "a", "b"}, 22: {"b", "c", "d"}, 17: {"d"}}
    paid = {30: {"z", "c"}, 26: {"z", "c", "a"}, 22: {"z", "c", "a", "d"}, 20: {"z", "a", "d"},
            15: {"z", "a", "d", "c"}, 12: {"z", "a", "d", "c", "b"}}
    churned: dict[int, set[str]] = {30: set(), 28: {"b"}, 10: {"a", "b"}}
    for days in sorted({*trial, *paid, *churned}, reverse=True):
        record(store, p, at(days), {name: m[days] for name, m in
                                    (("trial", trial), ("paid", paid), ("churned", churned))
                                    if days in m})
    snap.record(store, p.id, "trial", {"a", "c"}, at(27))  # the backfill
    return p, now


def test_time_in_segment(store: Store) -> None:
    p, now = trials(store)
    got = p.insight("segment_time", {"segments": "trial"})
    [t] = got["segments"]
    # completed, x0 left out: 2, 5, 7, 10 days. Interpolated quantiles at (n-1)q = 3q:
    #   p10 0.3 -> 2 + 0.3*3 = 2.9; p25 0.75 -> 2 + 0.75*3 = 4.25; median 1.5 -> 6.0;
    #   p75 2.25 -> 7 + 0.25*3 = 7.75; p90 2.7 -> 7 + 0.7*3 = 9.1; mean 24/4 = 6
    assert t["completed"] == pytest.approx({"count": 4, "mean": 6.0, "min": 2.0, "p10": 2.9,
                                            "p25": 4.25, "median": 6.0, "p75": 7.75,
                                            "p90": 9.1, "max": 10.0})
    assert t["censored"] == 1  # x0
    # open: d, in since -22d: 22 days (plus the moment between recording and asking)
    assert t["open"]["count"] == 1
    age = (datetime.fromisoformat(got["now"]) - (now - 22 * DAY)).total_seconds() / 86400
    assert t["open"]["median_age"] == pytest.approx(age)
    # Kaplan-Meier over whole days, 5 spells (d censored at 22): exits on days 2, 5, 7, 10
    #   at least 3 days: 1 - 1/5 = 0.8; 6: 0.8 * (1 - 1/4) = 0.6; 8: 0.6 * (1 - 1/3) = 0.4;
    #   11: 0.4 * (1 - 1/2) = 0.2; then d alone up to day 22: 0.2 at 23
    assert [(s["days"], round(s["share"], 9)) for s in t["survival"]] == \
        [(0, 1.0), (3, 0.8), (6, 0.6), (8, 0.4), (11, 0.2), (23, 0.2)]
    assert t["km_median"] == 7  # S drops to 0.4 <= 0.5 among spells longer than 7 days

    # with x0 (3 days): 2, 3, 5, 7, 10: median 5, quantiles at 4q: p25 3, p75 7; mean 5.4
    got = p.insight("segment_time", {"segments": "trial", "include_censored": "true"})
    c = got["segments"][0]["completed"]
    assert (c["count"], c["median"], c["p25"], c["p75"]) == (5, 5.0, 3.0, 7.0)
    assert c["mean"] == pytest.approx(5.4)
    # spells that started in the last 23 days: b's second (5 days) and d's (open)
    got = p.insight("segment_time", {"segments": "trial", "days": "23"})
    t = got["segments"][0]
    assert (t["completed"]["count"], t["completed"]["median"], t["open"]["count"]) == (1, 5.0, 1)
    # paid: z, c censored at -30d; a [-26, open), d [-22, open), c again [-15, open),
    # b [-12, open): no completed spell, four open
    got = p.insight("segment_time", {"segments": "paid"})
    t = got["segments"][0]
    assert (t["completed"], t["open"]["count"], t["censored"]) == ({"count": 0}, 4, 2)
    assert t["km_median"] is None


def test_what_entrants_did_next(store: Store) -> None:
    p, _ = trials(store)
    # entrants of trial (first real entry): a -29d, b -29d, c -27d, d -22d (x0 censored)
    # paid within 14 days: a (+3 days); c (left paid at -20d, back at -15d: +12 days);
    #   not d (entered paid at the same refresh: already), not b (+17 days)
    #   already in paid at their entry: c (since -30d), d (entered with trial): 2
    # churned within 14: b (+1 day); not a (+19 days)
    got = p.insight("segment_next", {"segment": "trial", "targets": "paid,churned",
                                     "period": "day", "periods": "31"})
    assert (got["entrants"], got["open"]) == (4, 0)  # every entry is 22+ days old
    assert got["targets"] == [
        {"segment": "paid", "reached": 2, "share": 0.5, "already": 2, "median_days": 7.5},
        {"segment": "churned", "reached": 1, "share": 0.25, "already": 0, "median_days": 1.0}]
    # within 20 days: b reaches paid (+17) and a churned (+19); median of 3, 12, 17 = 12;
    # of 1, 19 = 10. 25 days: d's window (-22d + 25d) is still open
    got = p.insight("segment_next", {"segment": "trial", "targets": "paid,churned",
                                     "within_days": "20", "period": "day", "periods": "31"})
    assert [(t["reached"], t["median_days"]) for t in got["targets"]] == [(3, 12.0), (2, 10.0)]
    got = p.insight("segment_next", {"segment": "trial", "targets": "paid", "within_days": "25",
                                     "period": "day", "periods": "31"})
    assert got["open"] == 1
    # cohorts by day of entry: -29d a, b: paid 1 (a), churned 1 (b); -27d c: paid 1;
    # -22d d: none; the other 28 days have no entrant
    got = p.insight("segment_next", {"segment": "trial", "targets": "paid,churned",
                                     "period": "day", "periods": "31", "by_period": "true"})
    cohorts = {c["start"][:10]: c for c in got["cohorts"] if c["entrants"]}
    now = datetime.fromisoformat(got["to"])
    day = {k: (now - k * DAY).strftime("%Y-%m-%d") for k in (29, 27, 22)}
    assert sorted(cohorts) == sorted(day.values())
    assert [(t["reached"], t["share"]) for t in cohorts[day[29]]["targets"]] == \
        [(1, 0.5), (1, 0.5)]
    assert [(t["reached"], t["share"]) for t in cohorts[day[27]]["targets"]] == \
        [(1, 1.0), (0, 0.0)]
    assert [(t["reached"], t["share"]) for t in cohorts[day[22]]["targets"]] == \
        [(0, 0.0), (0, 0.0)]
    assert len(got["cohorts"]) == 31
    # only the last 3 days of entries: nobody entered trial then
    got = p.insight("segment_next", {"segment": "trial", "period": "day", "periods": "3"})
    assert got["entrants"] == 0
    assert {t["segment"] for t in got["targets"]} == {"paid", "churned"}  # all others
    assert all(t["share"] is None for t in got["targets"])


def test_wrong_parameters_name_themselves(store: Store) -> None:
    p = project(store, "trial")
    with pytest.raises(InsightError, match="segments: required"):
        p.insight("segment_flow", {})  # none of the tiers in this project
    with pytest.raises(InsightError, match="segments: no segment named 'nope'"):
        p.insight("segment_flow", {"segments": "trial,nope"})
    with pytest.raises(InsightError, match="segments: a segment is named twice"):
        p.insight("segment_flow", {"segments": "trial,trial"})
    with pytest.raises(InsightError, match="periods"):
        p.insight("segment_flow", {"segments": "trial", "periods": "0"})
    with pytest.raises(InsightError, match="period"):
        p.insight("segment_flow", {"segments": "trial", "period": "year"})
    with pytest.raises(InsightError, match="days"):
        p.insight("segment_time", {"days": "-1"})
    with pytest.raises(InsightError, match="segment: no segment named 'nope'"):
        p.insight("segment_next", {"segment": "nope"})
    with pytest.raises(InsightError, match="segment"):
        p.insight("segment_next", {})
    with pytest.raises(InsightError, match="targets: the segment itself"):
        p.insight("segment_next", {"segment": "trial", "targets": "trial"})
    with pytest.raises(InsightError, match="within_days"):
        p.insight("segment_next", {"segment": "trial", "within_days": "0"})
    # a project with the segments and no snapshot yet: all zeros, not an error
    got = p.insight("segment_flow", {"segments": "trial", "periods": "2"})
    assert got["users"] == 0 and got["sankey"]["nodes"] == []
    assert got["segments"] and got["totals"] == [[0, 0, 0]] * 3


# -- the demo, against pandas -------------------------------------------------------------
def pandas_flow(path: Path, project_id: str, names: list[str], bounds: list[datetime]
                ) -> dict[int, dict[tuple[str, str], int]]:
    """The flow read independently: the raw transitions with plain duckdb, then, per
    boundary, each (segment, user)'s latest transition at or before it (pandas)."""
    con = duckdb.connect(str(path), read_only=True)
    t = con.execute("SELECT segment, user_id, kind, as_of FROM segment_transitions "
                    "WHERE project_id = ?", [project_id]).df()
    con.close()
    t = t[t.segment.isin(names)].sort_values(["as_of", "kind"], kind="stable")
    first = t[t.kind == "entered"].groupby("user_id").as_of.min()
    states: dict[int, pd.Series] = {}
    for k, b in enumerate(bounds):
        latest = t[t.as_of <= b].groupby(["segment", "user_id"]).tail(1)
        inside = latest[latest.kind == "entered"]
        rank = inside.segment.map({n: i for i, n in enumerate(names)})
        states[k] = inside.assign(rank=rank).sort_values("rank").groupby("user_id") \
            .segment.first()
    people = set().union(*[set(s.index) for s in states.values()])
    full = {k: {u: s.get(u, NEW if first[u] > bounds[k] else NONE) for u in people}
            for k, s in states.items()}
    out: dict[int, dict[tuple[str, str], int]] = {}
    for k in range(len(bounds) - 1):
        pairs = pd.Series([(full[k][u], full[k + 1][u]) for u in people]).value_counts()
        out[k] = {pair: int(n) for pair, n in pairs.items()}
    return out


def pandas_spells(path: Path, project_id: str, segment: str) -> pd.DataFrame:
    """(user_id, start, until, censored) of a segment, walking each user's transitions in
    order: an entry opens a spell when none is open, an exit closes it."""
    con = duckdb.connect(str(path), read_only=True)
    t = con.execute("SELECT user_id, kind, as_of FROM segment_transitions WHERE "
                    "project_id = ? AND segment = ?", [project_id, segment]).df()
    first = con.execute("SELECT min(as_of) FROM segment_snapshots WHERE project_id = ? "
                        "AND segment = ?", [project_id, segment]).fetchone()[0]
    con.close()
    rows = []
    for user, g in t.sort_values(["user_id", "as_of", "kind"]).groupby("user_id"):
        start = None
        for r in g.itertuples():
            if r.kind == "entered" and start is None:
                start = r.as_of
            elif r.kind == "exited" and start is not None:
                rows.append((user, start, r.as_of))
                start = None
        if start is not None:
            rows.append((user, start, pd.NaT))
    out = pd.DataFrame(rows, columns=["user_id", "start", "until"])
    return out.assign(censored=out.start == first)


@pytest.mark.slow
def test_demo_flow_matches_pandas(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    runner = CliRunner()
    done = runner.invoke(app, ["--db", str(db), "demo", "--users", "300", "--days", "60"])
    assert done.exit_code == 0, done.output
    start = (utcnow() - 60 * DAY).strftime("%Y-%m-%d")
    done = runner.invoke(app, ["--db", str(db), "--json", "segments", "refresh",
                               "--backfill-from", start, "--every", "7d"])
    assert done.exit_code == 0, done.output
    with Store(f"duckdb://{db}") as store:
        p = Project(store, store.con.con.execute(
            "SELECT project_id FROM projects LIMIT 1").fetchone()[0])
        got = p.insight("segment_flow", {"period": "week", "periods": "8"})
        project_id = p.id
    names, states = got["segments"], got["states"]
    assert names == [P, R, O, D]
    bounds = [datetime.fromisoformat(b["at"]) for b in got["boundaries"]]
    expected = pandas_flow(db, project_id, names, bounds)
    moved = 0
    for k, step in enumerate(got["steps"]):
        cells = {(states[i], states[j]): n for i, row in enumerate(step["matrix"])
                 for j, n in enumerate(row) if n}
        assert cells == expected[k], f"step {k}"
        moved += sum(n for (a, b), n in cells.items() if a != b)
    assert moved > 50  # the demo's users do move between tiers

    # time in regular: finished spells' count, median, quartile and mean, open ones
    with Store(f"duckdb://{db}") as store:
        p = Project(store, project_id)
        time = p.insight("segment_time", {"segments": R})["segments"][0]
        nxt = p.insight("segment_next", {"segment": O, "targets": f"{R},{P}",
                                         "within_days": "14", "periods": "12"})
    s = pandas_spells(db, project_id, R)
    kept = s[~s.censored]
    done = kept[kept.until.notna()]
    days = (done.until - done.start).dt.total_seconds() / 86400
    assert len(done) > 10
    assert time["completed"]["count"] == len(done)
    assert time["completed"]["median"] == pytest.approx(days.median())
    assert time["completed"]["p25"] == pytest.approx(days.quantile(0.25))
    assert time["completed"]["mean"] == pytest.approx(days.mean())
    assert time["open"]["count"] == kept.until.isna().sum()
    assert time["censored"] == s.censored.sum()

    # occasional's entrants since the range's start, and who entered regular or power
    # users in the 14 days after
    since = datetime.fromisoformat(nxt["from"])
    a = pandas_spells(db, project_id, O)
    a = a[~a.censored & (a.start >= since)].groupby("user_id").start.min()
    assert nxt["entrants"] == len(a) > 10
    for target, name in zip(nxt["targets"], (R, P), strict=True):
        b = pandas_spells(db, project_id, name)
        b = b[~b.censored]
        joined = b.merge(a.rename("t0"), left_on="user_id", right_index=True)
        gap = joined.start - joined.t0
        hit = joined[(gap > timedelta(0)) & (gap <= timedelta(days=14))]
        assert target["reached"] == hit.user_id.nunique(), name
    assert nxt["targets"][0]["reached"] > 5  # occasional users do become regular
