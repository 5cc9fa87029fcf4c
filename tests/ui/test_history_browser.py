"""End to end in Debian's Chromium (issue 11): a segment's history with diffs, revert,
rename and delete on its page, each checked against the API's answer; and the overview,
`GET /api/segments` and `segmently segments list` naming the same segments when some come
from the UI and others from `segmently apply`.

A module of its own: its server (uikit.ui_server, one per module) holds only what these
tests write."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from playwright.sync_api import Dialog, Page, expect
from uikit import WORKSPACE, UiServer, api, page, ui_server  # noqa: F401 - fixtures

RULE = {"kind": "performed", "event": "report_viewed", "at_least": 2}


def sign_in(page: Page, server: UiServer, path: str) -> None:
    page.goto(server.url + path)
    page.fill("input[name=secret_key]", server.secret_key)
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + path)


def answer_dialogs(page: Page, *accept: bool) -> list[str]:
    """Answer the next confirm()s in order (True: OK); returns their messages as they come."""
    messages: list[str] = []
    answers = list(accept)

    def on_dialog(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept() if answers.pop(0) else dialog.dismiss()
        if not answers:
            page.remove_listener("dialog", on_dialog)

    page.on("dialog", on_dialog)
    return messages


def names(server: UiServer) -> list[str]:
    return [s["name"] for s in api(server, "GET", "/api/segments").json()["segments"]]


def test_history_revert_rename_delete(page: Page, ui_server: UiServer) -> None:  # noqa: F811
    seg = "/ui/segments/history_demo"
    assert api(ui_server, "POST", "/api/segments", json={  # version 1, by the secret key
        "name": "history_demo", "description": "twice", "rule": RULE}).status_code == 201

    # version 2 in the builder, version 3 over the API with the UI's session
    sign_in(page, ui_server, "/ui/builder/history_demo")
    page.locator("[data-field=at_least]").fill("3")
    page.click("#save")
    expect(page.locator("#save-result")).to_contain_text("Saved history_demo, version 2")
    put = page.request.put(ui_server.url + "/api/segments/history_demo",
                           data={"description": "three times <b>bold</b>"})
    assert put.ok, put.text()
    assert put.json()["version"] == 3

    page.goto(ui_server.url + seg)
    items = page.locator("#versions li.version")
    expect(items).to_have_count(3)
    assert [items.nth(i).get_attribute("data-version") for i in range(3)] == ["3", "2", "1"]
    expect(items.locator(".who")).to_have_text(["UI", "UI", "API"])
    expect(items.nth(0).locator(".tag.current")).to_have_text("current")
    expect(items.nth(0).locator("button.revert")).to_have_count(0)  # the live version
    expect(page.locator("#versions button.revert")).to_have_count(2)
    expect(page.locator("#managed")).to_be_hidden()  # no workspace file wrote it

    v2 = items.nth(1)
    expect(v2.locator("pre.diff")).to_be_hidden()  # collapsed until opened
    v2.locator("summary").click()
    expect(v2.locator(".diff-del")).to_contain_text(["at_least: 2"])
    expect(v2.locator(".diff-add")).to_contain_text(["at_least: 3"])
    v3 = items.nth(0)
    v3.locator("summary").click()
    expect(v3.locator(".diff-add")).to_contain_text(["description: three times <b>bold</b>"])
    expect(v3.locator("pre.diff b")).to_have_count(0)  # text, never markup

    # revert to version 1: cancelled once (nothing written), then confirmed
    asked = answer_dialogs(page, False, True)
    revert_v1 = items.nth(2).get_by_role("button", name="Revert to this version (version 1)")
    revert_v1.click()
    revert_v1.click()
    expect(page.locator("#history-result")).to_have_text("Reverted: version 4 equals version 1.")
    assert len(asked) == 2 and "version 1" in asked[0]
    expect(items).to_have_count(4)  # the cancelled revert wrote nothing
    expect(items.nth(0).locator(".who")).to_have_text("UI")
    expect(items.nth(0).locator(".tag.current")).to_have_count(1)
    live = api(ui_server, "GET", "/api/segments/history_demo").json()
    first = api(ui_server, "GET", "/api/segments/history_demo/history").json()["versions"][0]
    assert (live["version"], live["versions"][-1]["source"]) == (4, "ui")
    assert (live["rule"], live["description"]) == (first["rule"], first["description"])
    assert live["rule"] == {**RULE, "where": []} and live["description"] == "twice"
    expect(page.locator("#description")).to_have_text("twice")

    # rename: refused while another segment refers to it (400), or to a taken name (409)
    assert api(ui_server, "POST", "/api/segments", json={
        "name": "taken", "rule": {"kind": "in_segment", "segment": "history_demo"}}) \
        .status_code == 201
    expect(page.locator("#rename-form")).to_be_hidden()
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(page.get_by_label("New name")).to_be_focused()
    page.get_by_label("New name").fill("history_renamed")
    page.get_by_role("button", name="Rename segment").click()
    expect(page.locator("#segment-error")).to_contain_text("taken")
    assert api(ui_server, "PUT", "/api/segments/taken", json={"rule": RULE}).status_code == 200
    page.get_by_label("New name").fill("taken")
    page.get_by_role("button", name="Rename segment").click()
    expect(page.locator("#segment-error")).to_contain_text("a segment named 'taken' exists")
    expect(page).to_have_url(ui_server.url + seg)
    page.get_by_label("New name").fill("history_renamed")
    page.get_by_role("button", name="Rename segment").click()
    expect(page).to_have_url(ui_server.url + "/ui/segments/history_renamed")
    expect(page.locator("#versions li.version")).to_have_count(1)
    expect(page.locator("#versions .who")).to_have_text(["UI"])
    listed = names(ui_server)
    assert "history_renamed" in listed and "history_demo" not in listed

    # delete: back to the overview, which no longer lists it
    asked = answer_dialogs(page, True)
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(ui_server.url + "/ui/")
    assert "history_renamed" in asked[0]
    expect(page.locator("#segments tr[data-segment=taken]")).to_have_count(1)  # loaded
    expect(page.locator("#segments tr[data-segment=history_renamed]")).to_have_count(0)
    assert "history_renamed" not in names(ui_server)

    # a deleted segment's page keeps its history, and a revert brings it back
    page.goto(ui_server.url + "/ui/segments/history_renamed")
    expect(page.locator("#gone")).to_contain_text("deleted or renamed (version 2")
    expect(page.locator("#live")).to_be_hidden()
    expect(page.locator("#versions li.version")).to_have_count(2)
    expect(page.locator("#versions li.version").nth(0).locator(".tag.deleted")).to_have_count(1)
    answer_dialogs(page, True)
    page.get_by_role("button", name="Revert to this version (version 1)").click()
    expect(page.locator("#history-result")).to_have_text("Reverted: version 3 equals version 1.")
    expect(page.locator("#gone")).to_be_hidden()
    expect(page.locator("#description")).to_have_text("twice")
    assert "history_renamed" in names(ui_server)
    for name in ("history_renamed", "taken"):
        assert api(ui_server, "DELETE", f"/api/segments/{name}").status_code == 200


def test_ui_api_and_cli_list_the_same_segments(page: Page, ui_server: UiServer,  # noqa: F811
                                               tmp_path: Path) -> None:
    """One segment built in the UI, two written by `segmently apply` (the real CLI, which
    sends its calls to the server holding the DuckDB file): the overview, the API and
    `segmently segments list --json` name the same three. A UI edit of an applied segment
    is drift to the next apply, as its page says."""
    sign_in(page, ui_server, "/ui/builder")
    page.fill("#seg-name", "built_in_ui")
    page.click(".group-head .add-cond")
    page.locator(".cond [data-field=event]").fill("report_viewed")
    page.click("#save")
    expect(page.locator("#save-result")).to_contain_text("Saved built_in_ui, version 1")

    workspace = tmp_path / "segmently.yaml"
    workspace.write_text("project: shop\n" + WORKSPACE + """\
segments:
- name: applied_viewers
  description: viewed a report
  rule: {kind: performed, event: report_viewed}
- name: applied_growth
  rule: {kind: plan, is: growth}
""")
    cli = [sys.executable, "-m", "segmently.cli", "--db", ui_server.db, "--config",
           str(workspace)]
    applied = subprocess.run([*cli, "apply"], capture_output=True, text=True, timeout=120,
                             check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    listed = subprocess.run([*cli, "--json", "segments", "list"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stderr
    from_cli = [s["name"] for s in json.loads(listed.stdout)]
    from_api = names(ui_server)

    page.goto(ui_server.url + "/ui/")
    rows = page.locator("#segments tbody tr[data-segment]")
    expect(rows).to_have_count(len(from_api))
    from_ui = [rows.nth(i).get_attribute("data-segment") for i in range(rows.count())]
    assert from_ui == from_api == from_cli
    assert {"built_in_ui", "applied_viewers", "applied_growth"} <= set(from_api)

    # the applied segment's page says a workspace file manages it; a UI edit is drift
    page.click("#segments tr[data-segment=applied_viewers] a")
    expect(page.locator("#versions .who")).to_have_text(["workspace file (apply)"])
    expect(page.locator("#managed")).to_contain_text("Managed by a workspace file")
    expect(page.locator("#managed")).to_contain_text("drift")
    put = page.request.put(ui_server.url + "/api/segments/applied_viewers",
                           data={"description": "edited in the UI"})
    assert put.ok, put.text()
    page.reload()
    expect(page.locator("#versions .who")).to_have_text(["UI", "workspace file (apply)"])
    expect(page.locator("#managed")).to_contain_text("version 1 was written by `segmently apply`")
    plan = subprocess.run([*cli, "apply", "--dry-run"], capture_output=True, text=True,
                          timeout=120, check=False)
    assert plan.returncode == 4, plan.stdout + plan.stderr  # drift, left alone
    assert "applied_viewers" in plan.stdout and "in the UI" in plan.stdout
