"""The Python API over the application core: apply a workspace, then evaluate, list members
and explain, against a hand-made log (u1 purchased twice, u2 once, u3 never)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import segmently
from segmently.segments.workspace import parse_workspace
from segmently.store import Message, Store
from segmently.store.projects import create_project

AS_OF = datetime(2026, 5, 1)
WORKSPACE = """\
project: shop
features:
  - name: buying
    events: [{event: purchase}]
segments:
  - name: repeat_buyers
    rule: {kind: performed, event: purchase, at_least: 2, window: {last: 30}}
  - name: users_of_buying
    rule: {kind: used_feature, feature: buying, window: {last: 30}}
"""


def test_apply_then_evaluate(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'api.duckdb'}"
    with Store(url) as s:
        pid = create_project(s, "shop").project.project_id
        s.append(pid, [Message(message_id=f"m{i}", type="track", event=event, source="test",
                               timestamp=AS_OF - timedelta(days=days), user_id=user)
                       for i, (user, event, days) in enumerate([
                           ("u1", "purchase", 3), ("u1", "purchase", 10), ("u2", "purchase", 5),
                           ("u3", "login", 1), ("u2", "purchase", 45)])])
    with segmently.connect(url) as sg:
        plan = sg.apply(parse_workspace(WORKSPACE))
        assert {(i.kind, i.name, i.action) for i in plan.items if i.action != "same"} == {
            ("feature", "buying", "add"), ("segment", "repeat_buyers", "add"),
            ("segment", "users_of_buying", "add")}
        wide = sg.evaluate(as_of=AS_OF).set_index("user_id")
        assert wide["repeat_buyers"].to_dict() == {"u1": True, "u2": False, "u3": False}
        assert wide["users_of_buying"].to_dict() == {"u1": True, "u2": True, "u3": False}
        assert sg.members("repeat_buyers", as_of=AS_OF)["user_id"].tolist() == ["u1"]
        why = sg.explain("repeat_buyers", "u2", as_of=AS_OF)
        assert (bool(why.loc[0, "truth"]), why.loc[0, "observed"]) == (False, {"count": 1})
        assert "users_of_buying" in sg.export()
        assert [v.version for v in sg.project().history("repeat_buyers")] == [1]


def test_campaigns_and_insights(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'api.duckdb'}"
    with Store(url) as s:
        create_project(s, "shop")
    with segmently.connect(url) as sg:
        sg.apply(parse_workspace(WORKSPACE))
        made = sg.save_campaign({"name": "hello", "kind": "banner",
                                 "audience": {"in": ["repeat_buyers"]},
                                 "content": {"body": "Thanks for coming back"}})
        assert made["version"] == 1
        table = sg.campaigns()
        assert table.loc[0, "name"] == "hello" and table.loc[0, "assigned"] == 0
        sg.refresh(as_of=AS_OF)
        changes = sg.insight("segment_changes", segments="repeat_buyers", period="day",
                             periods=1)
        assert changes["segments"][0]["segment"] == "repeat_buyers"
