"""The segment benchmark's baselines (bench/baselines/) against the engine, on crafted data.

bench/segments.py compares Segmently with hand-written SQL and pandas on demo data, which
never has anonymous ids, late arrivals, set_once traits or odd NPS answers. Here each
user is one such case, with the members of every library segment checked by hand; the
engine, the SQL and pandas must all give exactly these.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from segmently.core import Project
from segmently.demo.workspace import demo_workspace
from segmently.segments.evaluate import evaluate
from segmently.segments.library import library_rules
from segmently.store import Message, Store
from segmently.store.projects import create_project

BENCH = Path(__file__).resolve().parents[2] / "bench"
AS_OF = datetime(2026, 3, 31)
D, S = timedelta(days=1), timedelta(seconds=1)
EARLY = datetime(2026, 1, 1)  # received_at of everything not late

EXPECTED = {
    "power_users": {"b1"},  # 40 views exactly at the window start, active 7 of 14 days
    "regular": {"p1"},  # $page as a track event counts as a session
    "occasional": {"g1", "r1", "r2", "u1"},
    "dormant": {"k1", "k2", "k3", "n10", "n11", "s3", "s4"},  # k4 exactly 14 days ago
    "new_this_week": {"a3", "s1", "u3"},  # a3: its merge into u4 comes after as_of
    "at_risk": {"k1", "k3", "k5"},  # k2 1 s before the earlier window, k4 in the recent
    "resurrected": {"r2"},  # r1's first $page is exactly 35 days ago: inside the gap
    "stuck_in_onboarding": {"s2"},  # s1 signed up exactly 7 days ago: not more
    "activated": {"s4", "t1", "t2", "t3", "t5", "x1"},  # s3: 14 days after first seen
    # each user's latest whole-number answer 0-10, if they answered in the last 12 months
    "promoters": {"c1", "c2", "c3", "n1", "n10"},  # "9"; "1e1" and "inf" are no scores
    "passives": {"n5", "n13"},  # " 8 ", 8.0
    "detractors": {"n12"},  # 10, then 6 (the average, 8, would be passive); n7: `true`
    "trial_likely_to_convert": {"t2", "t5", "x1"},  # t1: a set beats a later set_once
    "missed_a_payment": {"c2", "l3"},  # l1's failure arrived after as_of
    "champions": {"c1"},  # c2 missed a payment, c3 cancelled
    "feature_discovery": {"k5", "u1"},  # u1 through its anonymous id
}


def _cases() -> tuple[list[Message], list[tuple[datetime, list[Message]]]]:
    """(messages received early, [(received_at, messages)] appended later)."""
    n = 0

    def m(user: str | None, event: str, at: datetime, kind: str = "track",
          anon: str | None = None, **kw: Any) -> Message:
        nonlocal n
        n += 1
        return Message(message_id=f"m{n}", type=kind, event=event, timestamp=at,
                       source="native", user_id=user, anonymous_id=anon, **kw)

    def ident(user: str | None, at: datetime, **kw: Any) -> Message:
        return m(user, "$identify", at, "identify", **kw)

    def nps(user: str, score: Any, at: datetime = AS_OF - 2 * D) -> Message:
        return m(user, "nps_submitted", at, properties={"score": score})

    def page(user: str, at: datetime, kind: str = "page") -> Message:
        return m(user, "$page", at, kind)

    early = [m("b1", "report_viewed", AS_OF - 14 * D) for _ in range(40)]
    early += [page("b1", AS_OF - d * D) for d in range(1, 8)] + [m("b1", "report_viewed", AS_OF)]
    early += [nps(u, s) for u, s in (("n1", "9"), ("n2", "nine"), ("n3", None), ("n5", " 8 "),
                                     ("n6", "1e1"), ("n7", True), ("n8", "inf"))]
    early += [nps("n10", 10, datetime(2025, 3, 31)), nps("n11", 10, datetime(2025, 3, 30))]
    early += [nps("n12", 10, AS_OF - 40 * D), nps("n12", 6), nps("n13", 8.0)]
    early += [m(None, "$page", AS_OF - 3 * D, "page", anon="a1"),
              m(None, "report_viewed", AS_OF - 3 * D, anon="a1"),
              m(None, "dashboard_viewed", AS_OF - 3 * D, anon="a1"),
              ident("u1", AS_OF - 2 * D, alias_id="a1"),
              m(None, "signed_up", AS_OF - 3 * D, anon="a2"),
              ident("u2", AS_OF - 10 * D, alias_id="a2"), ident("u3", AS_OF - 9 * D, alias_id="a2"),
              m(None, "signed_up", AS_OF - 3 * D, anon="a3"),
              ident("u4", AS_OF + D, alias_id="a3")]
    early += [ident("t1", AS_OF - 5 * D, traits={"plan": "growth"}),
              ident("t1", AS_OF - 4 * D, traits_once={"plan": "trial"}),
              ident("t2", AS_OF - 5 * D, traits_once={"plan": "trial"}),
              ident("t2", AS_OF - 4 * D, traits_once={"plan": "growth"}),
              ident("t3", AS_OF - 5 * D, traits={"plan": "trial"}),
              ident("t3", AS_OF - 4 * D, traits={"plan": None}),
              ident(None, AS_OF - 5 * D, anon="a5", traits={"plan": "trial"}),
              ident("t5", AS_OF - 4 * D, alias_id="a5")]
    for u in ("t1", "t2", "t3", "t5"):
        early += [m(u, "first_report_created", AS_OF - 6 * D)]
        early += [m(u, "report_viewed", AS_OF - d * D - timedelta(hours=1)) for d in range(5)]
    early += [m("s1", "signed_up", AS_OF - 7 * D), m("s2", "signed_up", AS_OF - 7 * D - S),
              ident("s3", AS_OF - 30 * D), m("s3", "first_report_created", AS_OF - 16 * D),
              ident("s4", AS_OF - 30 * D), m("s4", "first_report_created", AS_OF - 16 * D - S),
              page("r1", AS_OF - 35 * D), page("r1", AS_OF - D),
              page("r2", AS_OF - 35 * D - S), page("r2", AS_OF - D)]
    early += [page("p1", AS_OF - d * D, "track") for d in (1, 2, 8, 9)]
    early += [m("k1", "report_created", AS_OF - 42 * D),
              m("k2", "report_created", AS_OF - 42 * D - S),
              m("k3", "dashboard_viewed", AS_OF - 14 * D - S),
              m("k4", "dashboard_viewed", AS_OF - 14 * D),
              m("k5", "dashboard_viewed", AS_OF - 20 * D), m("k5", "report_viewed", AS_OF - 2 * D)]
    for u, plan in (("c1", "growth"), ("c2", "growth"), ("c3", "cancelled")):
        early += [nps(u, 10, AS_OF - 3 * D), ident(u, AS_OF - 50 * D, traits={"plan": plan})]
        early += [m(u, "report_viewed", AS_OF - d * D) for d in range(1, 9)]
    early += [m("c2", "payment_failed", AS_OF - 30 * D),
              m("c1", "payment_failed", AS_OF - 30 * D - S)]
    early += [page("g1", AS_OF - d * D) for d in (7, 8, 20, 21)]
    early += [m("x1", "report_viewed", AS_OF - d * D, "screen") for d in range(1, 4)]
    early += [m("x1", "first_report_created", AS_OF - 5 * D),
              ident("x1", AS_OF - 5 * D, traits={"plan": "trial"})]
    late = [(AS_OF + S, [m("l1", "payment_failed", AS_OF - D),
                         ident("u5", AS_OF - D, alias_id="a1")]),
            (AS_OF, [m("l3", "payment_failed", AS_OF - D)])]
    return early, late


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    db = tmp_path_factory.mktemp("baselines") / "crafted.duckdb"
    with Store(f"duckdb://{db}") as store:
        project = create_project(store, "demo").project.project_id
        early, late = _cases()
        store.append(project, early, received_at=EARLY)
        for received, messages in late:
            store.append(project, messages, received_at=received)
    yield db, project


def _members(wide: pd.DataFrame) -> dict[str, set[str]]:
    return {c: set(wide.user_id[wide[c].fillna(False).astype(bool)])
            for c in wide.columns if c != "user_id"}


def test_engine_sql_and_pandas_give_the_hand_checked_members(crafted: tuple[Path, str]) -> None:
    db, project = crafted
    with Store(f"duckdb://{db}", read_only=True) as store:
        ws = demo_workspace()  # the baselines hold the library (not the demo's extras)
        ev = evaluate(store, project, library_rules(ws), AS_OF, vocabulary=ws, known_at=AS_OF)
        engine = Project.wide(ev).to_pyarrow().to_pandas()
    sys.path.insert(0, str(BENCH))
    try:
        from baselines.pandas_library import library
    finally:
        sys.path.remove(str(BENCH))
    with duckdb.connect(str(db), read_only=True) as con:
        sql = con.execute((BENCH / "baselines" / "library.sql").read_text(),
                          {"project_id": project, "as_of": AS_OF}).df()
        frame = library(con, project, AS_OF)
    for name, wide in (("engine", engine), ("sql", sql), ("pandas", frame)):
        assert _members(wide) == EXPECTED, name
        assert set(wide.user_id) == set(engine.user_id), name
