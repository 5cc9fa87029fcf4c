"""The other kinds of destination, each against the real thing: Slack's text to a
receiver, the Segment-compatible batch to a second `segmently serve` (its /v1/batch, read
back from its database), and files written to a folder."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from receivers import DAY, HOUR, Lost, Receiver, T, buy, deliver, queued, shop

from conftest import start_server  # tests/conftest.py: the only conftest.py of the suite
from segmently.act.destinations import DestinationError
from segmently.settings import Settings
from segmently.store import Store, utcnow
from segmently.store.projects import create_project

DUCKDB = pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)
LINK = "<https://segmently.example.com/ui/segments/buyers|open the segment>"


@DUCKDB
def test_slack_gets_a_readable_text_per_batch(store: Store) -> None:
    with Receiver() as slack:
        project = shop(store)
        project.save_destination({"name": "cs", "kind": "slack", "url": slack.url,
                                  "subscriptions": [{"segments": ["buyers"]}]})
        project.save_destination({"name": "cs-link", "kind": "slack", "url": slack.url,
                                  "public_url": "https://segmently.example.com/",
                                  "subscriptions": [{"segments": ["buyers"],
                                                     "changes": ["entered"]}]})
        buy(store, project.id, ["u0", "u1", "u2"], T - HOUR)
        project.refresh(T)
        deliver(store)
        assert sorted(a.json["text"] for a in slack.arrivals) == [
            "3 users entered buyers: u0, u1, u2",
            f"3 users entered buyers: u0, u1, u2 {LINK}"]
        assert all("webhook-signature" not in a.headers for a in slack.arrivals)

        many = [f"v{i:02d}" for i in range(13)]
        buy(store, project.id, many, T + DAY)
        project.refresh(T + DAY + HOUR)  # the u's bought over a day before: they left
        buy(store, project.id, ["v00"], T + 2 * DAY)
        project.refresh(T + 2 * DAY + HOUR)  # only v00 bought again
        deliver(store)
        plain = [a.json["text"] for a in slack.arrivals[2:] if LINK not in a.json["text"]]
        linked = [a.json["text"] for a in slack.arrivals[2:] if LINK in a.json["text"]]
        assert plain == [
            "13 users entered buyers: v00, v01, v02, v03, v04, v05, v06, v07, v08, v09 "
            "and 3 more",
            "3 users exited buyers: u0, u1, u2",
            "12 users exited buyers: v01, v02, v03, v04, v05, v06, v07, v08, v09, v10 "
            "and 2 more"]
        assert linked == ["13 users entered buyers: v00, v01, v02, v03, v04, v05, v06, v07, "
                          f"v08, v09 and 3 more {LINK}"]


@DUCKDB
@pytest.mark.slow
def test_the_segment_compatible_destination_reaches_a_second_segmently(
        store: Store, tmp_path: Path) -> None:
    """Through a proxy that loses the first answer (the batch was stored, the sender saw a
    500 and sent it again): every call is stored once, by its messageId."""
    db = f"duckdb://{tmp_path / 'downstream.duckdb'}"
    with Store(db) as other:
        made = create_project(other, "downstream")
    downstream = made.project.project_id
    proc, url = start_server(db, tmp_path / "downstream.log", env={
        "SEGMENTLY_REFRESH_SECONDS": "0", "SEGMENTLY_DELIVER_SECONDS": "0"})
    try:
        with Receiver(forward_to=url) as proxy:
            proxy.then(Lost())
            project = shop(store)
            project.save_destination({"name": "cdp", "kind": "segment", "url": proxy.base,
                                      "write_key": made.project.write_key,
                                      "subscriptions": [{"segments": ["buyers"]}]})
            buy(store, project.id, ["u0", "u1", "u2"], T - HOUR)
            project.refresh(T)
            buy(store, project.id, ["u0"], T + DAY)
            project.refresh(T + DAY + HOUR)  # u1 and u2 left
            entry, exit_ = queued(store, project.id)
            now = utcnow()
            assert deliver(store, now).failed == 1  # stored, but the answer was lost
            assert deliver(store, now).delivered == 2
            assert [a.path for a in proxy.arrivals] == ["/v1/batch"] * 3
            assert proxy.arrivals[0].body == proxy.arrivals[1].body
            assert proxy.arrivals[0].headers["authorization"].startswith("Basic ")
            first = proxy.arrivals[0].json["batch"]
            assert first[:2] == [
                {"type": "identify", "userId": first[0]["userId"],
                 "messageId": f"{entry['message_id']}:i:{first[0]['userId']}",
                 "timestamp": "2026-05-01T00:00:00Z", "traits": {"buyers": True}},
                {"type": "track", "userId": first[0]["userId"],
                 "messageId": f"{entry['message_id']}:t:{first[0]['userId']}",
                 "timestamp": "2026-05-01T00:00:00Z", "event": "Segment Entered",
                 "properties": {"segment": "buyers"}}]
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    with Store(db) as other:  # the server has stopped: DuckDB allows one process a file
        e, tr = other.table("events"), other.table("traits")
        events = e.filter(e.project_id == downstream).to_pyarrow().to_pylist()
        traits = tr.filter(tr.project_id == downstream).to_pyarrow().to_pylist()
    got = {r["message_id"]: (r["type"], r["user_id"], r["event"] if r["type"] == "track"
                             else None) for r in events}
    assert len(got) == len(events) == 10  # stored once each, though sent twice
    want = {}
    for message, users, event in ((entry, ["u0", "u1", "u2"], "Segment Entered"),
                                  (exit_, ["u1", "u2"], "Segment Exited")):
        for u in users:
            want[f"{message['message_id']}:i:{u}"] = ("identify", u, None)
            want[f"{message['message_id']}:t:{u}"] = ("track", u, event)
    assert got == want
    tracks = [r for r in events if r["type"] == "track"]
    assert {json.loads(r["properties"])["segment"] for r in tracks} == {"buyers"}
    assert {r["timestamp"] for r in events if r["message_id"].startswith(entry["message_id"])} \
        == {T}
    assert sorted((r["entity_id"], r["trait"], json.loads(r["value"]), r["message_id"])
                  for r in traits) == sorted(
        [(u, "buyers", True, f"{entry['message_id']}:i:{u}") for u in ("u0", "u1", "u2")]
        + [(u, "buyers", False, f"{exit_['message_id']}:i:{u}") for u in ("u1", "u2")])


def read_ids(path: Path) -> list[str]:
    table = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
    assert table.column_names == ["user_id"]
    return table["user_id"].to_pylist()


@DUCKDB
def test_files_are_written_owner_only_with_the_user_ids(store: Store, tmp_path: Path) -> None:
    project = shop(store)
    for fmt in ("csv", "parquet"):
        project.save_destination({"name": fmt, "kind": "files", "format": fmt,
                                  "folder": f"exports/{fmt}",
                                  "subscriptions": [{"segments": ["buyers"],
                                                     "batch_size": 3}]})
    buy(store, project.id, ["u0", "u1", "u2", "u3"], T - HOUR)
    project.refresh(T)
    buy(store, project.id, ["u0"], T + DAY)
    project.refresh(T + DAY + HOUR)
    rooted = Settings(allow_private_destinations=True, files_root=str(tmp_path / "root"))
    assert deliver(store, settings=rooted).delivered == 6
    for fmt in ("csv", "parquet"):
        rows = queued(store, project.id, fmt)  # inside the project's own folder of the root
        folder = tmp_path / "root" / project.id / "exports" / fmt / "buyers"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = sorted(folder.iterdir())
        assert {f.name for f in files} == {
            f"20260501T000000-entered-{rows[0]['message_id']}.{fmt}",
            f"20260501T000000-entered-{rows[1]['message_id']}.{fmt}",
            f"20260502T010000-exited-{rows[2]['message_id']}.{fmt}"}
        for f in files:
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
        assert [read_ids(folder / f"{r['as_of']:%Y%m%dT%H%M%S}-{r['kind']}-"
                                  f"{r['message_id']}.{fmt}") for r in rows] == [
            ["u0", "u1", "u2"], ["u3"], ["u1", "u2", "u3"]]
        assert {r["state"] for r in rows} == {"delivered"}


@DUCKDB
def test_a_files_folder_stays_inside_the_projects_own(store: Store) -> None:
    """A destination names a folder inside its project's folder of SEGMENTLY_FILES_ROOT:
    an absolute path or one climbing out with `..` is refused, naming the field."""
    project = shop(store)
    for folder in ("/etc/cron.d", "../other_project", "a/../../b", "a\\..\\b", ""):
        with pytest.raises(DestinationError, match="folder: a files destination needs a "
                           "relative folder"):
            project.save_destination({"name": "f", "kind": "files", "folder": folder})
