"""Compressed and delimited files stream (gzip, zstd, TSV, any delimiter), constant columns
(`--set`, `--event`), and file-level mistakes answered in one line by the CLI.

The compressed files are written here with Arrow's own compressors; the rows expected
from them are written out by hand.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmently.collect.errors import InputError
from segmently.collect.importer import ImportOptions, import_file, store_sink
from segmently.store import Store, schema
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # whole imports, file by file

CSV = ("user_id,event,timestamp,plan\n"
       "u1,signup,2026-07-14T10:00:00Z,pro\n"
       "u2,signup,1784023200,free\n"
       "u3,,2026-07-14,free\n")
JSONL = "".join(json.dumps(r) + "\n" for r in [
    {"user_id": "u1", "event": "signup", "timestamp": "2026-07-14T10:00:00Z", "plan": "pro"},
    {"user_id": "u2", "event": "signup", "timestamp": 1784023200, "plan": "free"},
    {"user_id": "u3", "timestamp": "2026-07-14", "plan": "free"},
])
TEN = datetime(2026, 7, 14, 10, 0)  # 1784023200 = 2026-07-14T10:00:00Z
EXPECTED = [("u1", "signup", TEN, {"plan": "pro"}), ("u2", "signup", TEN, {"plan": "free"})]


def run(store: Store, path: Path, **options: Any) -> dict[str, Any]:
    t = store.table(schema.PROJECTS)
    ids = t.select("project_id").to_pyarrow()["project_id"].to_pylist()
    pid = ids[0] if ids else create_project(store, "p").project.project_id
    return import_file(path, pid, store_sink(store, pid), ImportOptions(**options)).as_dict()


def events(store: Store) -> list[tuple[Any, ...]]:
    rows = store.table(schema.EVENTS).to_pyarrow().to_pylist()
    return sorted((r["user_id"], r["event"], r["timestamp"], json.loads(r["properties"]))
                  for r in rows)


def compressed(path: Path, text: str, codec: str) -> Path:
    with pa.CompressedOutputStream(str(path), codec) as out:
        out.write(text.encode())
    return path


@pytest.mark.parametrize(("name", "codec", "text", "fmt"), [
    ("e.csv.gz", "gzip", CSV, None),
    ("e.csv.zst", "zstd", CSV, None),
    ("e.jsonl.gz", "gzip", JSONL, None),
    ("e.json.zst", "zstd", JSONL, None),
    ("e.csv.gz", "gzip", CSV, "csv"),  # the traceback of issue 10
    ("export.bin", "gzip", JSONL, "jsonl"),  # gzip told by its magic bytes
    ("export.dat", "zstd", CSV, "csv"),
])
def test_compressed_files_stream(store: Store, tmp_path: Path, name: str, codec: str,
                                 text: str, fmt: str | None) -> None:
    path = compressed(tmp_path / name, text, codec)
    report = run(store, path, format=fmt, batch_rows=1, json_batch_rows=1)
    assert (report["rows_read"], report["stored"], report["bad_rows"]) == (3, 2, 1)
    assert report["bad"][0]["line"] == (4 if "csv" in name or fmt == "csv" else 3)
    assert report["format"].endswith(f"+{codec}")
    assert events(store) == EXPECTED
    assert run(store, path, format=fmt)["already_stored"] == 2


def test_tsv_by_extension_and_any_delimiter(store: Store, tmp_path: Path) -> None:
    tsv = tmp_path / "e.tsv"
    tsv.write_text(CSV.replace(",", "\t"))
    assert run(store, tsv)["stored"] == 2
    assert events(store) == EXPECTED
    semi = tmp_path / "e.txt"
    semi.write_text("user_id;event;timestamp;note\nu9;x;2026-07-14;a,b\n")
    assert run(store, semi, format="csv", delimiter=";")["stored"] == 1
    tabbed = compressed(tmp_path / "t.tsv.gz", CSV.replace(",", "\t"), "gzip")
    assert run(store, tabbed)["already_stored"] == 2
    piped = tmp_path / "p.csv"
    piped.write_text(CSV.replace(",", "|"))
    assert run(store, piped, delimiter="pipe")["already_stored"] == 2
    assert ("u9", "x", datetime(2026, 7, 14), {"note": "a,b"}) in events(store)


def test_event_and_set_constants(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("customer,ts,total,source\nc1,2026-07-14,10,web\nc2,2026-07-14,20,app\n")
    report = run(store, path, mapping={"user_id": "customer", "timestamp": "ts"},
                 event="Order Completed", constants={"account_id": "acme", "source": "crm",
                                                     "plan": "pro"})
    assert report["stored"] == 2
    rows = store.table(schema.EVENTS).to_pyarrow().to_pylist()
    assert sorted((r["user_id"], r["event"], r["account_id"], json.loads(r["properties"]))
                  for r in rows) == [
        ("c1", "Order Completed", "acme", {"total": 10, "source": "crm", "plan": "pro"}),
        ("c2", "Order Completed", "acme", {"total": 20, "source": "crm", "plan": "pro"}),
    ]
    lines = tmp_path / "orders.jsonl"
    lines.write_text('{"customer": "c3", "ts": "2026-07-14", "event": "ignored"}\n')
    run(store, lines, mapping={"user_id": "customer", "timestamp": "ts"}, event="Order Completed",
        constants={"account_id": "acme"})
    row = [r for r in store.table(schema.EVENTS).to_pyarrow().to_pylist() if r["user_id"] == "c3"]
    assert (row[0]["event"], row[0]["account_id"]) == ("Order Completed", "acme")


def test_constants_are_refused_when_they_contradict(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(CSV)
    with pytest.raises(InputError, match="--event and --map event=... both name the event"):
        run(store, path, mapping={"event": "plan"}, event="x")
    with pytest.raises(InputError, match="apply to generic files"):
        run(store, path, source="mixpanel", constants={"a": "b"})


def test_broken_files_are_one_clear_error(store: Store, tmp_path: Path) -> None:
    truncated = tmp_path / "t.csv.gz"
    truncated.write_bytes(gzip.compress(CSV.encode() * 50)[:60])
    with pytest.raises(InputError, match="t.csv.gz"):
        run(store, truncated)
    not_gzip = tmp_path / "n.jsonl.gz"
    not_gzip.write_text(JSONL)
    with pytest.raises(InputError, match="n.jsonl.gz: cannot be read"):
        run(store, not_gzip)
    parquet = tmp_path / "p.parquet.gz"
    pq.write_table(pa.table({"a": [1]}), tmp_path / "p.parquet")
    parquet.write_bytes(gzip.compress((tmp_path / "p.parquet").read_bytes()))
    with pytest.raises(InputError, match="a Parquet file is compressed inside"):
        run(store, parquet)
    with pytest.raises(InputError, match="--delimiter must be one character"):
        run(store, tmp_path / "p.parquet", format="csv", delimiter="ab")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "segmently.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_import_options_and_one_line_errors(tmp_path: Path) -> None:
    db = str(tmp_path / "db.duckdb")
    with Store(f"duckdb://{db}") as store:
        create_project(store, "p")
    path = compressed(tmp_path / "x.csv.gz", CSV, "gzip")
    done = cli("--db", db, "--json", "import", str(path), "--format", "csv",
               "--set", "source=crm", "--set", "plan=team")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert (report["stored"], report["already_stored"], report["bad_rows"]) == (2, 0, 1)
    tsv = tmp_path / "x.tsv"
    tsv.write_text("user_id\tts\nu7\t14/07/2026 10:00\n")
    done = cli("--db", db, "--json", "import", str(tsv), "--map", "timestamp=ts",
               "--event", "Visited", "--timestamp-format", "%d/%m/%Y %H:%M")
    assert json.loads(done.stdout)["stored"] == 1, done.stdout + done.stderr
    for args, says in [
        (["--from", "nope"], "unknown --from 'nope'"),
        (["--set", "novalue"], "--set 'novalue' must look like column=value"),
        (["--timestamp-format", "plain"], "has no % directive"),
        (["--from", "amplitude", "--map", "user_id=a"], "apply to generic files"),
    ]:
        bad = cli("--db", db, "import", str(path), *args)
        assert bad.returncode == 1
        assert says in bad.stdout and "Traceback" not in bad.stdout + bad.stderr
        assert len(bad.stdout.strip().splitlines()) == 1, bad.stdout
