"""Campaigns as code and from the command line: a workspace file's `campaigns:` and
`in_app:` applied, checked, exported and drifted like its segments; `segmently campaigns`
and `segmently in-app` (the userHash checked against an HMAC computed here)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest
import yaml
from clitools import runner, shop_db

from segmently.act import campaigns as camps
from segmently.store import Store

WORKSPACE = """\
project: shop
milestones:
  - name: invited
    events: [{event: teammate_invited}]
segments:
  - name: buyers
    rule: {kind: performed, event: purchase}
in_app: {cooldown_hours: 12}
campaigns:
  - name: ask_buyers
    kind: nps
    audience: {in: [buyers]}
    frequency: {every_days: 90}
    content: {}
  - name: start_here
    kind: checklist
    frequency: until_dismissed
    content:
      title: Get started
      tasks:
        - {id: invite, label: Invite a teammate, milestone: invited}
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[str, str]:
    return shop_db(tmp_path, WORKSPACE)


def test_apply_check_export_drift(shop: tuple[str, str], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    db, pid = shop
    cli = runner(tmp_path, monkeypatch)
    out = cli("--db", db, "apply").output
    assert "+ campaign ask_buyers: new" in out and "+ campaign start_here: new" in out
    assert cli("--db", db, "apply", "--check").exit_code == 0
    listed = {c["name"]: c for c in cli("--db", db, "campaigns", "list", "--json",
                                        parse=True)}
    assert sorted(listed) == ["ask_buyers", "start_here"]
    assert listed["ask_buyers"]["frequency"] == {"every_days": 90}
    assert listed["ask_buyers"]["holdout_percent"] == 10  # the default
    assert cli("--db", db, "in-app", "show", "--json", parse=True)["cooldown_hours"] == 12
    exported = cli("--db", db, "export").output
    (tmp_path / "exported.yaml").write_text(exported)
    assert cli("--db", db, "apply", "exported.yaml", "--check").exit_code == 0
    assert [c["name"] for c in yaml.safe_load(exported)["campaigns"]] == \
        ["ask_buyers", "start_here"]
    with Store(db) as s:  # an edit over the API
        changed = camps.get(s, pid, "ask_buyers").campaign.model_copy(
            update={"priority": 5})
        camps.save(s, pid, changed, source="api")
    drift = cli("--db", db, "apply", code=4).output
    assert "! campaign ask_buyers: changed over the HTTP API (version 2)" in drift
    assert "-priority:5" in drift.replace(" ", "") and "+priority:0" in drift.replace(" ", "")
    cli("--db", db, "apply", "--force")
    assert cli("--db", db, "campaigns", "show", "ask_buyers", "--json",
               parse=True)["priority"] == 0


def test_a_bad_campaign_in_the_file_writes_nothing(shop: tuple[str, str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db, _ = shop
    cli = runner(tmp_path, monkeypatch)
    (tmp_path / "bad.yaml").write_text(WORKSPACE + """\
  - name: broken
    kind: modal
    audience: {in: [nobody]}
    content: {title: Hi, body: There}
""")
    out = cli("--db", db, "apply", "bad.yaml", code=1).output
    assert "audience: no segment named 'nobody'" in out
    assert cli("--db", db, "segments", "list", "--json", parse=True) == []
    (tmp_path / "bad.yaml").write_text(WORKSPACE.replace("kind: nps", "kind: popup"))
    assert "campaigns[0] ask_buyers: kind" in cli("--db", db, "apply", "bad.yaml",
                                                  code=1).output


def test_campaigns_and_in_app_commands(shop: tuple[str, str], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    db, _ = shop
    cli = runner(tmp_path, monkeypatch)
    cli("--db", db, "apply")
    (tmp_path / "banner.yaml").write_text(
        "name: sale\nkind: banner\ncontent: {body: 20% off today}\n")
    made = cli("--db", db, "--json", "campaigns", "add", "banner.yaml", parse=True)
    assert made["version"] == 1 and made["content"]["position"] == "top"
    assert "exists" in cli("--db", db, "campaigns", "add", "banner.yaml", code=1).output
    (tmp_path / "banner.yaml").write_text(
        "name: sale\nkind: banner\ncontent: {body: 30% off today}\n")
    assert cli("--db", db, "--json", "campaigns", "add", "banner.yaml", "--replace",
               parse=True)["version"] == 2
    assert "no campaign named 'nope'" in cli("--db", db, "campaigns", "show", "nope",
                                             code=1).output
    assert "turns it on" in cli("--db", db, "in-app", "hash", "u1", code=1).output
    on = cli("--db", db, "--json", "in-app", "set", "--identity-verification", parse=True)
    secret = on["verification_secret"]
    assert cli("--db", db, "--json", "in-app", "show", parse=True)["verification_secret"] \
        != secret  # cut unless --reveal
    assert cli("--db", db, "--json", "in-app", "show", "--reveal",
               parse=True)["verification_secret"] == secret
    got = cli("--db", db, "--json", "in-app", "hash", "u1", parse=True)["user_hash"]
    assert got == hmac.new(secret.encode(), b"u1", hashlib.sha256).hexdigest()
    assert cli("--db", db, "--json", "campaigns", "delete", "sale", parse=True)["deleted"]
