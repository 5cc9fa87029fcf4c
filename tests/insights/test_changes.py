"""`segment_changes` on DuckDB and PostgreSQL, from transitions written by hand-chosen
refreshes: the counts per week are the ones listed in each comment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from segmently.core import Project
from segmently.insights.registry import InsightError
from segmently.segments import snapshots as snap
from segmently.store import Store, utcnow
from segmently.store.projects import create_project


def test_entries_and_exits_per_week(store: Store) -> None:
    p = Project(store, create_project(store, "p").project.project_id)
    p.save("buyers", "", {"kind": "performed", "event": "buy"})
    now = utcnow().replace(microsecond=0)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0)
    # three weeks ago: a, b enter; last week: b exits, c enters; this week: d enters
    snap.record(store, p.id, "buyers", ["a", "b"], monday - timedelta(weeks=3) + timedelta(hours=1))
    snap.record(store, p.id, "buyers", ["a", "c"], monday - timedelta(weeks=1) + timedelta(days=2))
    snap.record(store, p.id, "buyers", ["a", "c", "d"], monday + timedelta(minutes=1))
    got = p.insight("segment_changes", {"segments": "buyers", "period": "week",
                                        "periods": "4"})
    [seg] = got["segments"]
    assert [(w["entered"], w["exited"]) for w in seg["periods"]] == \
        [(2, 0), (0, 0), (1, 1), (1, 0)]
    assert seg["periods"][-1]["start"] == monday.isoformat()


def test_a_wrong_parameter_names_itself(store: Store) -> None:
    p = Project(store, create_project(store, "p").project.project_id)
    with pytest.raises(InsightError, match="period"):
        p.insight("segment_changes", {"period": "fortnight"})
    with pytest.raises(InsightError, match="nope"):
        p.insight("segment_changes", {"segments": "nope"})
    with pytest.raises(InsightError, match="colour"):
        p.insight("segment_changes", {"colour": "red"})
