"""Each timestamp form, read the same from a CSV cell, a JSON line and a Parquet column;
each ambiguous or impossible value refused with its line, never misread.

Expected instants are written out by hand (epoch values checked with `date -u -d @N`):
1704448800 s = 2024-01-05T10:00:00Z; 10^8 s = 10^11 ms = 10^14 us = 1973-03-03T09:46:40Z.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from segmently.collect.errors import InputError
from segmently.collect.importer import ImportOptions, import_file, store_sink
from segmently.store import Store, schema
from segmently.store.projects import create_project

TEN = datetime(2024, 1, 5, 10, 0)
PLUS_ONE = timezone(timedelta(hours=1))
EPOCH_START = datetime(1973, 3, 3, 9, 46, 40)

# (value as text, expected instant)
TEXT_FORMS = [
    ("2024-01-05T10:00:00Z", TEN),
    ("2024-01-05T12:00:00+02:00", TEN),
    ("2024-01-05T12:00:00+0200", TEN),
    ("2024-01-05T11:00:00+01", TEN),
    ("2024-01-05T05:30:00-04:30", TEN),
    ("2024-01-05 10:00:00", TEN),  # no offset: UTC
    ("2024-01-05T10:00", TEN),
    ("2024-01-05T10:00:00.123456789Z", datetime(2024, 1, 5, 10, 0, 0, 123456)),
    ("2026-07-14 10:00:00.123000", datetime(2026, 7, 14, 10, 0, 0, 123000)),  # Amplitude's
    ("2024-01-05", datetime(2024, 1, 5)),
    (" 2024-01-05 ", datetime(2024, 1, 5)),
    ("20240105", datetime(2024, 1, 5)),
    ("19970101", datetime(1997, 1, 1)),
]
# (number, expected instant): the same numbers as JSON numbers, CSV text, Parquet columns
NUMBER_FORMS = [
    (1704448800, TEN),
    (1704448800123, datetime(2024, 1, 5, 10, 0, 0, 123000)),
    (1704448800123456, datetime(2024, 1, 5, 10, 0, 0, 123456)),
    (1704448800.5, datetime(2024, 1, 5, 10, 0, 0, 500000)),
    (100_000_000, EPOCH_START),  # the smallest seconds
    (100_000_000_000, EPOCH_START),  # the smallest milliseconds
    (100_000_000_000_000, EPOCH_START),  # the smallest microseconds
    (19970101, datetime(1997, 1, 1)),  # 8 digits: YYYYMMDD
]
# (value, what the reason says): refused, whatever the container
REFUSED = [
    ("19970132", "has 8 digits but is not a valid YYYYMMDD date"),
    ("99999999", "has 8 digits but is not a valid YYYYMMDD date"),
    ("19970101.5", "is ambiguous"),
    ("1234567", "is ambiguous"),
    ("86400", "is ambiguous"),
    ("-1704448800", "is negative"),
    ("100000000000000000", "is 10^17 or more"),
    ("2024-02-30", "is not a date and time that exists"),
    ("2024-1-5", "is not ISO 8601"),
    ("05/01/2024", "is not ISO 8601"),
    ("2024-01-05T24:00:00Z", "is not ISO 8601"),
    ("yesterday", "is not ISO 8601"),
]


def run(store: Store, path: Path, **options: Any) -> dict[str, Any]:
    t = store.table(schema.PROJECTS)
    ids = t.select("project_id").to_pyarrow()["project_id"].to_pylist()
    pid = ids[0] if ids else create_project(store, "p").project.project_id
    return import_file(path, pid, store_sink(store, pid), ImportOptions(**options)).as_dict()


def times_by_user(store: Store) -> dict[str, datetime]:
    rows = store.table(schema.EVENTS).select("user_id", "timestamp").to_pyarrow().to_pylist()
    return {r["user_id"]: r["timestamp"] for r in rows}


def write_rows(path: Path, container: str, values: list[Any]) -> Path:
    """One event per value, user u<i>; CSV writes values as text, JSON as JSON values."""
    users = [f"u{i}" for i in range(len(values))]
    if container == "csv":
        path.write_text("user_id,event,timestamp\n" + "".join(
            f"{u},e,{json.dumps(v) if isinstance(v, float) else v}\n"
            for u, v in zip(users, values, strict=True)))
    elif container == "jsonl":
        path.write_text("".join(json.dumps({"user_id": u, "event": "e", "timestamp": v}) + "\n"
                                for u, v in zip(users, values, strict=True)))
    else:
        kinds = {type(v) for v in values}
        typ = pa.string() if kinds == {str} else pa.int64() if kinds == {int} else pa.float64()
        pq.write_table(pa.table({"user_id": users, "event": ["e"] * len(values),
                                 "timestamp": pa.array(values, typ)}), path)
    return path


def first_line(container: str) -> int:
    return 2 if container == "csv" else 1  # the CSV header is line 1


@pytest.mark.parametrize("container", ["csv", "jsonl", "parquet"])
def test_text_forms(store: Store, tmp_path: Path, container: str) -> None:
    values = [v for v, _ in TEXT_FORMS]
    report = run(store, write_rows(tmp_path / f"t.{container}", container, values))
    assert (report["stored"], report["bad"]) == (len(values), [])
    assert times_by_user(store) == {f"u{i}": ts for i, (_, ts) in enumerate(TEXT_FORMS)}


@pytest.mark.parametrize("container", ["csv", "jsonl", "parquet"])
def test_number_forms(store: Store, tmp_path: Path, container: str) -> None:
    ints = [(v, ts) for v, ts in NUMBER_FORMS if isinstance(v, int)]
    floats = [(v, ts) for v, ts in NUMBER_FORMS if isinstance(v, float)]
    cases = ints + floats if container != "parquet" else ints  # Parquet: one type a column
    report = run(store, write_rows(tmp_path / f"n.{container}", container, [v for v, _ in cases]))
    assert (report["stored"], report["bad"]) == (len(cases), [])
    assert times_by_user(store) == {f"u{i}": ts for i, (_, ts) in enumerate(cases)}


def test_parquet_float_and_native_columns(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"user_id": ["a", "b", "c", "d"], "event": ["e"] * 4,
                             "timestamp": pa.array([1704448800.5, 1704448800123.0, None,
                                                    19970101.0], pa.float64())}), path)
    report = run(store, path)
    assert report["stored"] == 2
    assert [(b["line"], b["reason"]) for b in report["bad"]] == [
        (3, "timestamp is missing"),
        (4, "timestamp '19970101.0' is ambiguous: a number below 100000000 is not read as "
            "epoch seconds (it would be before 1973-03-03) and only an 8-digit whole number is "
            "a YYYYMMDD date"),
    ]
    assert times_by_user(store) == {"a": datetime(2024, 1, 5, 10, 0, 0, 500000),
                                    "b": datetime(2024, 1, 5, 10, 0, 0, 123000)}
    native = tmp_path / "native.parquet"
    pq.write_table(pa.table({
        "user_id": ["n1", "n2"], "event": ["e", "e"],
        "timestamp": pa.array([datetime(2024, 1, 5, 11, 0, tzinfo=PLUS_ONE),
                               datetime(2024, 1, 5, 12, 0, tzinfo=PLUS_ONE)],
                              pa.timestamp("ms", tz="+01:00"))}), native)
    assert run(store, native)["stored"] == 2
    assert times_by_user(store)["n1"] == TEN  # 11:00+01:00


@pytest.mark.parametrize("container", ["csv", "jsonl", "parquet"])
def test_ambiguous_and_impossible_values_are_bad_rows_with_their_line(
        store: Store, tmp_path: Path, container: str) -> None:
    values = ["2024-01-05T10:00:00Z"] + [v for v, _ in REFUSED]
    report = run(store, write_rows(tmp_path / f"r.{container}", container, values))
    assert report["stored"] == 1
    base = first_line(container) + 1
    assert [(b["line"], b["reason"].split(" ", 2)[1]) for b in report["bad"]] == [
        (base + i, repr(v)) for i, (v, _) in enumerate(REFUSED)]
    for bad, (_, says) in zip(report["bad"], REFUSED, strict=True):
        assert says in bad["reason"], bad


def test_19970101_is_never_taken_as_1970(store: Store, tmp_path: Path) -> None:
    """The misreading the issue found: 19970101 as epoch seconds is 1970-08-20."""
    path = write_rows(tmp_path / "d.jsonl", "jsonl", [19970101, "19970101"])
    assert run(store, path)["stored"] == 2
    assert set(times_by_user(store).values()) == {datetime(1997, 1, 1)}


def test_json_values_that_are_no_timestamp(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text('{"user_id": "a", "event": "e", "timestamp": true}\n'
                    '{"user_id": "b", "event": "e", "timestamp": {"at": 1}}\n'
                    '{"user_id": "c", "event": "e"}\n'
                    '{"user_id": "d", "event": "e", "timestamp": 1e300}\n')
    report = run(store, path)
    assert [(b["line"], b["reason"]) for b in report["bad"]] == [
        (1, "timestamp must be text or a number"),
        (2, "timestamp must be text or a number"),
        (3, "timestamp is missing"),
        (4, "timestamp '1e+300' is 10^17 or more, too large for epoch microseconds"),
    ]


@pytest.mark.parametrize("container", ["csv", "jsonl"])
def test_timestamp_format(store: Store, tmp_path: Path, container: str) -> None:
    values = ["05/01/2024 10:00", "2024-01-05T10:00:00Z", "31/02/2024 10:00"]
    path = write_rows(tmp_path / f"f.{container}", container, values)
    report = run(store, path, timestamp_format="%d/%m/%Y %H:%M")
    assert report["stored"] == 1
    assert times_by_user(store) == {"u0": TEN}
    line = first_line(container)
    assert [(b["line"], b["reason"]) for b in report["bad"]] == [
        (line + 1, "timestamp '2024-01-05T10:00:00Z' does not match --timestamp-format"),
        (line + 2, "timestamp '31/02/2024 10:00' does not match --timestamp-format"),
    ]


def test_timestamp_format_with_an_offset(store: Store, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "z.csv", "csv", ["05/01/2024 12:00 +02:00", "05/01/2024 10:00"])
    report = run(store, path, timestamp_format="%d/%m/%Y %H:%M %z")
    assert report["stored"] == 1 and report["bad"][0]["line"] == 3
    assert times_by_user(store) == {"u0": TEN}


def test_a_format_without_directives_is_refused_before_reading(store: Store,
                                                               tmp_path: Path) -> None:
    path = write_rows(tmp_path / "x.csv", "csv", ["2024-01-05"])
    with pytest.raises(InputError, match="has no % directive"):
        run(store, path, timestamp_format="dd/mm/yyyy")
    floats = tmp_path / "x.parquet"
    pq.write_table(pa.table({"user_id": ["a"], "event": ["e"], "timestamp": [1.5]}), floats)
    with pytest.raises(InputError, match="--timestamp-format reads text; column 'timestamp'"):
        run(store, floats, timestamp_format="%Y")
