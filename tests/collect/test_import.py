"""`segmently import`: every format, the column mapping, dedup on re-import, bad rows with
their exact line numbers, --strict, and import through a running server.

Every file is tiny and written here; the expected rows are written out by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmently import control
from segmently.api import Segmently
from segmently.collect import arrow_ipc
from segmently.collect.errors import InputError
from segmently.collect.importer import ImportOptions, import_file, store_sink
from segmently.core.project import UnknownProjectError, choose_project
from segmently.store import Store, schema
from segmently.store.projects import create_project

MAP = {"user_id": "customer", "event": "action", "timestamp": "ts"}


def run_import(store: Store, path: Path, **options: Any) -> dict[str, Any]:
    pid = project(store)
    return import_file(path, pid, store_sink(store, pid), ImportOptions(**options)).as_dict()


def project(store: Store) -> str:
    t = store.table(schema.PROJECTS)
    ids = t.select("project_id").to_pyarrow()["project_id"].to_pylist()
    return ids[0] if ids else create_project(store, "p").project.project_id


def events(store: Store) -> list[tuple[Any, ...]]:
    """(type, event, user, anonymous, account, timestamp, properties) sorted."""
    rows = store.table(schema.EVENTS).to_pyarrow().to_pylist()
    return sorted(
        (r["type"], r["event"], r["user_id"], r["anonymous_id"], r["account_id"],
         r["timestamp"], json.loads(r["properties"])) for r in rows
    )


def table_rows(store: Store, name: str, *cols: str) -> list[tuple[Any, ...]]:
    rows = store.table(name).to_pyarrow().to_pylist()
    return sorted(tuple(r[c] for c in cols) for r in rows)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CSV_TEXT = """customer,action,ts,plan,amount
u1,signup,2024-01-05T10:00:00Z,pro,19.5
u2,login,1704448800,free,
,login,2024-01-05T10:00:00Z,free,3
u3,,2024-01-05T10:00:00Z,free,3
u4,login,yesterday,free,3
u5,login,2024-01-05 12:00:00+02:00,free,3,extra

u6,login,1704448800000,free,4
"""


def test_csv_with_mapping_stores_good_rows_and_reports_bad_lines(store: Store,
                                                                 tmp_path: Path) -> None:
    report = run_import(store, write(tmp_path / "e.csv", CSV_TEXT), mapping=MAP)
    assert report["rows_read"] == 7  # the blank line 8 is not a row
    assert (report["stored"], report["already_stored"], report["bad_rows"]) == (3, 0, 4)
    assert [(b["line"], b["reason"]) for b in report["bad"]] == [
        (4, "needs a user id or an anonymous id"),
        (5, "event name is missing"),
        (6, "timestamp 'yesterday' is not ISO 8601 (2024-01-05T10:00:00Z), a date, YYYYMMDD "
            "or epoch seconds/milliseconds/microseconds; pass --timestamp-format for other forms"),
        (7, "expected 5 columns, got 6"),
    ]
    ten = datetime(2024, 1, 5, 10, 0)  # 1704448800 = 2024-01-05T10:00:00Z
    assert events(store) == [
        ("track", "login", "u2", None, None, ten, {"plan": "free", "amount": None}),
        ("track", "login", "u6", None, None, ten, {"plan": "free", "amount": 4.0}),
        ("track", "signup", "u1", None, None, ten, {"plan": "pro", "amount": 19.5}),
    ]
    sources = store.table(schema.EVENTS).to_pyarrow()["source"].to_pylist()
    assert sources == ["import"] * 3


@pytest.mark.slow
def test_reimport_stores_nothing_new(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", CSV_TEXT)
    run_import(store, path, mapping=MAP)
    ids_before = sorted(store.table(schema.EVENTS).to_pyarrow()["message_id"].to_pylist())
    again = run_import(store, path, mapping=MAP)
    assert (again["stored"], again["already_stored"], again["bad_rows"]) == (0, 3, 4)
    ids_after = sorted(store.table(schema.EVENTS).to_pyarrow()["message_id"].to_pylist())
    assert ids_after == ids_before and len(set(ids_before)) == 3
    assert all(i.startswith("imp_") for i in ids_before)


def test_jsonl_generic_rows(store: Store, tmp_path: Path) -> None:
    lines = [
        {"user_id": "u1", "event": "Report Viewed", "timestamp": "2024-03-01T08:30:00+01:00",
         "report": "weekly", "properties": {"rows": 3}},
        {"anonymousId": "a1", "event": "Page", "timestamp": 1709280000, "messageId": "m-2"},
        {"user_id": 42, "event": "Login", "timestamp": 1709280000123},
        {"user_id": "u2", "type": "identify", "timestamp": "2024-03-01T00:00:00Z",
         "traits": {"plan": "pro"}},
    ]
    text = "\n".join(orjson.dumps(x).decode() for x in lines)
    text += '\n\n{"user_id": "u3", "event": "x", "timestamp": "2024-03-01"\n'  # line 6
    text += '{"user_id": ["u4"], "event": "x", "timestamp": "2024-03-01"}\n'  # line 7
    text += '[1, 2]\n'  # line 8
    text += '{"user_id": "u5", "event": "x", "timestamp": "2024-03-01", "type": "bogus"}\n'
    report = run_import(store, write(tmp_path / "e.jsonl", text))
    assert (report["rows_read"], report["stored"], report["bad_rows"]) == (8, 4, 4)
    assert [b["line"] for b in report["bad"]] == [6, 7, 8, 9]
    assert report["bad"][0]["reason"].startswith("the line is not valid JSON")
    assert report["bad"][1]["reason"] == "user_id must be a string, got list"
    assert report["bad"][2]["reason"] == "a line must hold a JSON object, got list"
    assert "type must be one of" in report["bad"][3]["reason"]
    march1 = datetime(2024, 3, 1)
    assert events(store) == [
        ("identify", "$identify", "u2", None, None, march1, {}),
        ("track", "Login", "42", None, None, datetime(2024, 3, 1, 8, 0, 0, 123000), {}),
        ("track", "Page", None, "a1", None, datetime(2024, 3, 1, 8, 0), {}),
        ("track", "Report Viewed", "u1", None, None, datetime(2024, 3, 1, 7, 30),
         {"report": "weekly", "rows": 3}),
    ]
    ids = store.table(schema.EVENTS).to_pyarrow()["message_id"].to_pylist()
    assert "m-2" in ids
    assert table_rows(store, schema.TRAITS, "entity_id", "trait", "value") == [
        ("u2", "plan", '"pro"')]


def test_parquet_native_types_and_identify_rows(store: Store, tmp_path: Path) -> None:
    paris = pa.timestamp("ms", tz="Europe/Paris")
    table = pa.table({
        "customer": pa.array([7, 8, 9, None], pa.int64()),
        "anon": ["a7", None, "a9", None],
        "action": pa.array(["Opened", None, "Opened", "Opened"]).dictionary_encode(),
        "kind": ["track", "identify", "track", "track"],
        "at": pa.array([datetime(2024, 6, 1, 12, 0, tzinfo=UTC)] * 4, paris),
        "seats": pa.array([3, 5, None, 1], pa.int32()),
        "vip": [True, False, None, True],
    })
    path = tmp_path / "e.parquet"
    pq.write_table(table, path)
    report = run_import(store, path, mapping={"user_id": "customer", "anonymous_id": "anon",
                                              "event": "action", "timestamp": "at",
                                              "type": "kind"})
    assert (report["rows_read"], report["stored"], report["bad_rows"]) == (4, 3, 1)
    assert report["bad"] == [{"line": 4, "reason": "needs a user id or an anonymous id"}]
    noon = datetime(2024, 6, 1, 12, 0)
    assert events(store) == [
        ("identify", "$identify", "8", None, None, noon, {"seats": 5, "vip": False}),
        ("track", "Opened", "7", "a7", None, noon, {"seats": 3, "vip": True}),
        ("track", "Opened", "9", "a9", None, noon, {"seats": None, "vip": None}),
    ]
    # only the identify row sets traits; track rows with both ids link nothing
    assert table_rows(store, schema.TRAITS, "entity_id", "trait", "value") == [
        ("8", "seats", "5"), ("8", "vip", "false")]
    assert table_rows(store, schema.IDENTITIES, "alias_id", "user_id") == []


def test_segment_lines(store: Store, tmp_path: Path) -> None:
    msgs = [
        {"type": "track", "event": "Signed Up", "userId": "u1", "messageId": "s1",
         "timestamp": "2024-02-01T10:00:00.000Z", "properties": {"plan": "pro"},
         "context": {"ip": "1.2.3.4"}},
        {"type": "identify", "userId": "u1", "anonymousId": "anon-1", "messageId": "s2",
         "timestamp": "2024-02-01T10:01:00Z", "traits": {"email": "a@b.c"}},
        {"type": "page", "name": "Pricing", "anonymousId": "anon-1", "messageId": "s3",
         "originalTimestamp": "2024-02-01T09:59:00Z"},
        {"type": "group", "userId": "u1", "groupId": "acme", "messageId": "s4",
         "timestamp": "2024-02-01T10:02:00Z", "traits": {"name": "Acme"}},
        {"type": "alias", "userId": "u1", "previousId": "old-1", "messageId": "s5",
         "timestamp": "2024-02-01T10:03:00Z"},
        {"type": "track", "userId": "u2", "messageId": "s6", "timestamp": "2024-02-01"},
        {"type": "track", "event": "Old", "userId": "u3", "timestamp": "2020-01-01T00:00:00Z",
         "sentAt": "2020-01-01T01:00:00Z", "receivedAt": "2020-01-01T01:00:01Z"},
    ]
    path = write(tmp_path / "seg.log", "\n".join(json.dumps(m) for m in msgs) + "\n")
    report = run_import(store, path, format="segment")
    assert (report["stored"], report["bad"]) == (6, [{"line": 6, "reason":
                                                       "event must be a non-empty string"}])
    t = datetime(2024, 2, 1, 10, 0)
    assert events(store) == [
        ("alias", "$alias", "u1", None, None, t + timedelta(minutes=3), {}),
        ("group", "$group", "u1", None, "acme", t + timedelta(minutes=2), {}),
        ("identify", "$identify", "u1", "anon-1", None, t + timedelta(minutes=1), {}),
        ("page", "$page", None, "anon-1", None, t - timedelta(minutes=1), {"name": "Pricing"}),
        ("track", "Old", "u3", None, None, datetime(2020, 1, 1), {}),  # history: as written
        ("track", "Signed Up", "u1", None, None, t, {"plan": "pro"}),
    ]
    assert table_rows(store, schema.TRAITS, "kind", "entity_id", "trait", "value") == [
        ("account", "acme", "name", '"Acme"'), ("user", "u1", "email", '"a@b.c"')]
    assert table_rows(store, schema.IDENTITIES, "alias_id", "user_id") == [
        ("anon-1", "u1"), ("old-1", "u1")]
    assert table_rows(store, schema.ACCOUNT_LINKS, "user_id", "account_id") == [("u1", "acme")]
    again = run_import(store, path, format="segment")
    assert (again["stored"], again["already_stored"]) == (0, 6)


def test_posthog_export_lines(store: Store, tmp_path: Path) -> None:
    rows = [
        {"event": "$pageview", "distinct_id": "d1", "uuid": "p1",
         "timestamp": "2024-04-01T00:00:00+00:00", "properties": {"$current_url": "/x"}},
        {"event": "$identify", "distinct_id": "u9", "uuid": "p2",
         "timestamp": "2024-04-01T00:05:00Z",
         "properties": {"$anon_distinct_id": "d1", "$set": {"plan": "team"},
                        "$set_once": {"first_seen_plan": "free"}}},
        {"event": "invoice paid", "distinct_id": "u9", "uuid": "p3",
         "timestamp": "2024-04-02T00:00:00Z",
         "properties": {"amount": 49, "$groups": {"company": "c1"}}},
        {"event": "broken", "uuid": "p4", "timestamp": "2024-04-02T00:00:00Z"},
        {"event": "no uuid", "distinct_id": "u9", "timestamp": "2024-04-03T00:00:00Z"},
    ]
    path = write(tmp_path / "ph.jsonl", "\n".join(json.dumps(r) for r in rows))
    report = run_import(store, path, format="posthog")
    assert report["stored"] == 4
    assert report["bad"] == [{"line": 4, "reason": "distinct_id is required"}]
    # the capture API's mapping: $pageview is a page; $identify merges $anon_distinct_id
    assert events(store) == [
        ("identify", "$identify", "u9", "d1", None, datetime(2024, 4, 1, 0, 5),
         {"$anon_distinct_id": "d1"}),
        ("page", "$pageview", "d1", None, None, datetime(2024, 4, 1), {"$current_url": "/x"}),
        ("track", "invoice paid", "u9", None, "c1", datetime(2024, 4, 2),
         {"amount": 49, "$groups": {"company": "c1"}}),
        ("track", "no uuid", "u9", None, None, datetime(2024, 4, 3), {}),
    ]
    assert table_rows(store, schema.TRAITS, "entity_id", "trait", "value", "once") == [
        ("u9", "first_seen_plan", '"free"', True), ("u9", "plan", '"team"', False)]
    assert table_rows(store, schema.IDENTITIES, "alias_id", "user_id") == [("d1", "u9")]
    sources = set(store.table(schema.EVENTS).to_pyarrow()["source"].to_pylist())
    assert sources == {"import"}
    again = run_import(store, path, format="posthog")
    assert (again["stored"], again["already_stored"]) == (0, 4)


@pytest.mark.slow
def test_strict_stores_nothing_when_a_row_is_bad(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path / "e.csv", CSV_TEXT)
    with pytest.raises(InputError, match=r"^line 4: needs a user id .*nothing was stored"):
        run_import(store, path, mapping=MAP, strict=True, batch_rows=2)
    assert events(store) == []
    clean = write(tmp_path / "ok.csv", "customer,action,ts\nu1,a,2024-01-01\nu2,b,2024-01-02\n")
    report = run_import(store, clean, mapping=MAP, strict=True)
    assert (report["stored"], report["bad_rows"]) == (2, 0)


def test_small_batches_keep_line_numbers(tmp_path: Path) -> None:
    """Batches of 2 rows: lines must still count from the file's start."""
    with Store(f"duckdb://{tmp_path / 'db.duckdb'}") as store:
        report = run_import(store, write(tmp_path / "e.csv", CSV_TEXT), mapping=MAP,
                            batch_rows=2)
        assert [b["line"] for b in report["bad"]] == [4, 5, 6, 7]
        assert report["stored"] == 3
        big = tmp_path / "e.parquet"
        pq.write_table(pa.table({"user_id": ["u", None, "u", None, "u"],
                                 "event": ["e"] * 5, "timestamp": ["2024-01-01"] * 5}), big)
        report = run_import(store, big, batch_rows=2)
        assert [b["line"] for b in report["bad"]] == [2, 4]


def test_file_level_errors_name_the_problem(tmp_path: Path) -> None:
    with Store(f"duckdb://{tmp_path / 'db.duckdb'}") as store:
        path = write(tmp_path / "e.csv", CSV_TEXT)
        with pytest.raises(InputError, match="'nope'.*its columns: customer, action"):
            run_import(store, path, mapping={"user_id": "nope"})
        with pytest.raises(InputError, match="no user id column"):
            run_import(store, path)
        with pytest.raises(InputError, match="cannot tell the format"):
            run_import(store, write(tmp_path / "e.txt", "x"))
        floats = tmp_path / "f.parquet"
        pq.write_table(pa.table({"user_id": [1.5], "event": ["e"], "timestamp": [1]}), floats)
        with pytest.raises(InputError, match="'user_id' .*has type double"):
            run_import(store, floats)
        assert events(store) == []


def test_future_timestamps_are_bad_rows(tmp_path: Path) -> None:
    soon = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with Store(f"duckdb://{tmp_path / 'db.duckdb'}") as store:
        path = write(tmp_path / "e.csv", f"user_id,event,timestamp\nu,e,{soon}\nu,e,2024-01-01\n")
        report = run_import(store, path)
        assert report["stored"] == 1
        assert report["bad"][0]["line"] == 2
        assert "in the future" in report["bad"][0]["reason"]


def test_choose_project() -> None:
    projects = [("prj_1", "a"), ("prj_2", "b")]
    assert choose_project(projects, "b") == "prj_2"
    assert choose_project(projects, "prj_1") == "prj_1"
    assert choose_project(projects[:1], None) == "prj_1"
    with pytest.raises(UnknownProjectError, match=r"--project\); this database has 2: a, b"):
        choose_project(projects, None)
    with pytest.raises(UnknownProjectError, match="no project named 'c'; projects: a, b"):
        choose_project(projects, "c")


def test_rowbatch_wire_rejects_foreign_tables(tmp_path: Path) -> None:
    good = pa.table({"x": [1]})
    stream = pa.BufferOutputStream()
    with pa.ipc.new_stream(stream, good.schema) as w:
        w.write_table(good)
    data = stream.getvalue().to_pybytes()
    body = b"".join(len(data).to_bytes(8, "little") + data for _ in range(4))
    with pytest.raises(InputError, match="^events: columns"):
        arrow_ipc.decode(body)
    with pytest.raises(InputError, match="ends before"):
        arrow_ipc.decode(b"")


def test_python_api_import(tmp_path: Path) -> None:
    url = f"duckdb://{tmp_path / 'db.duckdb'}"
    with Segmently(url) as sg:
        create_project(sg.store, "only")
        report = sg.import_file(write(tmp_path / "e.csv", CSV_TEXT), mapping=MAP)
        assert report.stored == 3
        assert sg.events().count().to_pyarrow().as_py() == 3


def cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmently.cli", "--db", db, *args],
                          capture_output=True, text=True, timeout=120)


def test_import_through_running_server(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path / "e.csv", CSV_TEXT)
    seg = write(tmp_path / "s.jsonl", json.dumps(
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "messageId": "m1",
         "timestamp": "2024-01-01T00:00:00Z", "traits": {"plan": "pro"}}) + "\n")
    first = cli(server.db, "--json", "import", str(path), "--map",
                "user_id=customer,event=action,timestamp=ts")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["stored"], report["bad_rows"]) == (3, 4)
    assert [b["line"] for b in report["bad"]] == [4, 5, 6, 7]
    again = json.loads(cli(server.db, "--json", "import", str(path), "--map",
                           "user_id=customer,event=action,timestamp=ts", "--project",
                           "test").stdout)
    assert (again["stored"], again["already_stored"]) == (0, 3)
    assert cli(server.db, "--json", "import", str(seg), "--format", "segment").returncode == 0
    strict = cli(server.db, "import", str(path), "--map",
                 "user_id=customer,event=action,timestamp=ts", "--strict")
    assert strict.returncode == 1 and "line 4" in strict.stdout
    stats = json.loads(cli(server.db, "--json", "stats").stdout)
    counts = {row["table"]: row["rows"] for row in stats}
    assert counts == {"events": 4, "traits": 1, "identities": 1}
    assert server.process.poll() is None  # the server held the file throughout
    ctl = control.read_control(server.db)
    assert ctl is not None
    url = f"{server.url}/internal/v1/append"
    no_token = httpx.post(url, params={"project_id": server.project_id}, content=b"")
    assert no_token.status_code == 401
    auth = {"Authorization": f"Bearer {ctl.token}"}
    garbage = httpx.post(url, params={"project_id": server.project_id}, content=b"xx",
                         headers=auth)
    assert (garbage.status_code, garbage.json()["code"]) == (400, "bad_encoding")
    unknown = httpx.post(url, params={"project_id": "prj_nope"}, content=b"", headers=auth)
    assert unknown.status_code == 404
