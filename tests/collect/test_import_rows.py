"""Every row of a file is an event: identical rows are kept, a re-import stores none again,
and a second version of the file stores only what it adds. On DuckDB and PostgreSQL.

Expected ids follow the documented rule (`imp_` + MD5 of the content + `:` + n); where the
hash itself is checked it is computed here from the row's JSON, independently of the code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmently.collect.importer import ImportOptions, import_file, store_sink
from segmently.store import Store, schema
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # whole imports, file by file

PURCHASE = "u1,purchase,2026-07-14,12.00"
ID = re.compile(r"^imp_([0-9a-f]{32}):([0-9]+)$")


def run(store: Store, path: Path, **options: Any) -> dict[str, Any]:
    t = store.table(schema.PROJECTS)
    ids = t.select("project_id").to_pyarrow()["project_id"].to_pylist()
    pid = ids[0] if ids else create_project(store, "p").project.project_id
    report = import_file(path, pid, store_sink(store, pid), ImportOptions(**options)).as_dict()
    return report


def stored(store: Store) -> list[dict[str, Any]]:
    rows = store.table(schema.EVENTS).to_pyarrow().to_pylist()
    return sorted(rows, key=lambda r: r["message_id"])


def counts(report: dict[str, Any]) -> tuple[int, int, int, int]:
    return (report["rows_read"], report["stored"], report["already_stored"], report["bad_rows"])


def csv(path: Path, *lines: str) -> Path:
    path.write_text("user_id,event,timestamp,amount\n" + "".join(f"{x}\n" for x in lines))
    return path


def test_four_identical_csv_lines_are_four_purchases(store: Store, tmp_path: Path) -> None:
    path = csv(tmp_path / "p.csv", PURCHASE, PURCHASE, PURCHASE, PURCHASE)
    assert counts(run(store, path)) == (4, 4, 0, 0)
    rows = stored(store)
    assert [(r["user_id"], r["event"], r["timestamp"]) for r in rows] == \
        [("u1", "purchase", datetime(2026, 7, 14))] * 4
    assert sum(json.loads(r["properties"])["amount"] for r in rows) == 48.0
    parts = [ID.match(r["message_id"]).groups() for r in rows]  # type: ignore[union-attr]
    assert len({h for h, _ in parts}) == 1  # one content
    assert sorted(int(n) for _, n in parts) == [1, 2, 3, 4]


def test_reimport_stores_nothing_and_a_second_version_only_its_additions(
        store: Store, tmp_path: Path) -> None:
    first = csv(tmp_path / "v1.csv", PURCHASE, "u2,login,2026-07-14,", PURCHASE, PURCHASE)
    assert counts(run(store, first)) == (4, 4, 0, 0)
    assert counts(run(store, first)) == (4, 0, 4, 0)
    before = {r["message_id"] for r in stored(store)}
    # v2: another row in the middle, the same purchase a fourth time, and a new row
    second = csv(tmp_path / "v2.csv", PURCHASE, "u3,signup,2026-07-13,", "u2,login,2026-07-14,",
                 PURCHASE, PURCHASE, PURCHASE, "u4,signup,2026-07-13,")
    assert counts(run(store, second)) == (7, 3, 4, 0)
    rows = stored(store)
    assert before < {r["message_id"] for r in rows}
    assert Counter(r["event"] for r in rows) == {"purchase": 4, "login": 1, "signup": 2}
    new = sorted(ID.match(r["message_id"]).group(2)  # type: ignore[union-attr]
                 for r in rows if r["message_id"] not in before)
    assert new == ["1", "1", "4"]  # two new contents, and the fourth purchase


def test_occurrences_count_across_batches(store: Store, tmp_path: Path) -> None:
    """Batches of 2 rows: the 5 copies span 3 batches and are still numbered 1..5."""
    path = csv(tmp_path / "p.csv", PURCHASE, "u9,x,2026-07-14,1", PURCHASE, PURCHASE,
               PURCHASE, "u9,x,2026-07-14,1", PURCHASE)
    assert counts(run(store, path, batch_rows=2)) == (7, 7, 0, 0)
    numbers = sorted((r["user_id"], int(r["message_id"].rsplit(":", 1)[1]))
                     for r in stored(store))
    assert numbers == [("u1", 1), ("u1", 2), ("u1", 3), ("u1", 4), ("u1", 5),
                       ("u9", 1), ("u9", 2)]
    assert counts(run(store, path, batch_rows=3)) == (7, 0, 7, 0)  # other batch sizes


def test_identical_json_lines_and_their_ids(store: Store, tmp_path: Path) -> None:
    line = {"user_id": "u1", "event": "purchase", "timestamp": "2026-07-14", "amount": 12.0}
    text = json.dumps(line)
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join([text, text, "", text]) + "\n")
    assert counts(run(store, path)) == (3, 3, 0, 0)
    canonical = json.dumps(line, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.md5(canonical).hexdigest()
    assert [r["message_id"] for r in stored(store)] == [f"imp_{digest}:{n}" for n in (1, 2, 3)]
    assert counts(run(store, path)) == (3, 0, 3, 0)


def test_identical_parquet_rows(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"user_id": ["u1"] * 3 + ["u2"], "event": ["purchase"] * 4,
                             "timestamp": ["2026-07-14"] * 4, "amount": [12.0] * 4}), path)
    assert counts(run(store, path, batch_rows=2)) == (4, 4, 0, 0)
    assert Counter(r["user_id"] for r in stored(store)) == {"u1": 3, "u2": 1}
    assert counts(run(store, path)) == (4, 0, 4, 0)


def test_a_message_id_given_twice_is_one_event(store: Store, tmp_path: Path) -> None:
    """Rows that carry their own id are that event: repeats are the same event again."""
    path = tmp_path / "m.csv"
    path.write_text("message_id,user_id,event,timestamp\nm1,u1,a,2026-07-14\n"
                    "m1,u1,a,2026-07-14\nm2,u1,a,2026-07-14\n")
    assert counts(run(store, path)) == (3, 2, 1, 0)
    assert [r["message_id"] for r in stored(store)] == ["m1", "m2"]


@pytest.mark.postgres
def test_import_on_postgresql_keeps_rows_and_is_idempotent(pg_database: str,
                                                             tmp_path: Path) -> None:
    with Store(pg_database) as store:
        for name in store.con.list_tables():
            store.con.drop_table(name)
    with Store(pg_database) as store:
        path = csv(tmp_path / "p.csv", PURCHASE, PURCHASE, "u2,login,2026-07-14,")
        assert counts(run(store, path)) == (3, 3, 0, 0)
        assert counts(run(store, path)) == (3, 0, 3, 0)
        rows = stored(store)
        assert Counter(r["event"] for r in rows) == {"purchase": 2, "login": 1}
        rollups = store.table(schema.ROLLUPS).to_pyarrow().to_pylist()
        assert sum(r["n"] for r in rollups) == 3


def test_cli_reimport_a_month_later_stores_nothing(tmp_path: Path) -> None:
    """The store's dedup window (7 days of arrival) is for live retries; `segmently
    import` checks a file's ids against all of the project's history."""
    import subprocess
    import sys

    db = tmp_path / "db.duckdb"
    with Store(f"duckdb://{db}") as store:
        create_project(store, "p")
    path = csv(tmp_path / "p.csv", PURCHASE, PURCHASE)

    def cli_import() -> dict[str, Any]:
        done = subprocess.run([sys.executable, "-m", "segmently.cli", "--db", str(db), "--json",
                               "import", str(path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    assert counts(cli_import()) == (2, 2, 0, 0)
    with Store(f"duckdb://{db}") as store:  # as if the first import ran 30 days ago
        store.con.raw_sql("UPDATE events SET received_at = received_at - INTERVAL 30 DAY")
    assert counts(cli_import()) == (2, 0, 2, 0)
    with Store(f"duckdb://{db}") as store:
        assert store.table(schema.EVENTS).count().to_pyarrow().as_py() == 2


@pytest.mark.parametrize("write_rows", [1, 1_000_000])
def test_an_id_repeated_in_later_batches_keeps_the_first_traits(
        store: Store, tmp_path: Path, write_rows: int) -> None:
    """Batches are converted apart and written together (or not): either way the first
    occurrence of an id is the event, and only its traits are stored."""
    path = tmp_path / "i.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [
        {"type": "identify", "user_id": "u1", "message_id": "m1", "timestamp": "2026-07-14",
         "traits": {"plan": "free"}},
        {"type": "identify", "user_id": "u1", "message_id": "m1", "timestamp": "2026-07-15",
         "traits": {"plan": "pro"}},
        {"type": "identify", "user_id": "u2", "message_id": "m2", "timestamp": "2026-07-15",
         "traits": {"plan": "team"}},
    ]))
    report = run(store, path, json_batch_rows=1, write_rows=write_rows)
    assert counts(report) == (3, 2, 1, 0)
    traits = sorted((r["entity_id"], r["value"])
                    for r in store.table(schema.TRAITS).to_pyarrow().to_pylist())
    assert traits == [("u1", '"free"'), ("u2", '"team"')]
