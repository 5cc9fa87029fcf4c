"""`segmently import FILE`: stream a JSONL, CSV or Parquet file into the event store.

Memory stays bounded whatever the file size: Parquet is read batch by batch
(`ParquetFile.iter_batches`), CSV by blocks (`pyarrow.csv.open_csv`), JSON lines in
chunks of lines. Each batch becomes one RowBatch (tables converted column-wise by
`tabular.py`, JSON lines one by one by `formats.py`) and goes to a `sink`:
`Store.append_rows` locally, or the running server's `/internal/v1/append`.

Idempotent: rows without a message id get one hashed from their content, so importing
the same file twice stores nothing the second time (within the store's dedup window). As
a consequence, rows that are identical in every column and have no message id are stored
once.

Bad rows are skipped and reported with their line number as a user counts lines in the
file (CSV: the header is line 1; Parquet: the row number, 1-based). `strict=True` makes
the first bad row fatal with nothing stored: the file is first converted completely
without writing (a validation pass, bounded memory), and only written when clean. The
writes are one transaction per batch, not one for the file: a crash in the middle of the
write pass leaves a prefix stored, and re-running the import completes it (idempotent).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from segmently import control
from segmently.collect import arrow_ipc
from segmently.collect.errors import InputError
from segmently.collect.formats import (
    JSON_FORMATS,
    detect_format,
    json_row_message,
    resolve_mapping,
)
from segmently.collect.limits import Limits
from segmently.collect.tabular import BadRow, Converted, TabularConverter
from segmently.store import AppendResult, RowBatch, Store, to_rows, utcnow

Sink = Callable[[RowBatch], AppendResult]
# (rows read so far, position, total): position/total in rows (Parquet) or bytes.
ProgressFn = Callable[[int, int, int], None]


@dataclass
class ImportOptions:
    format: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    batch_rows: int = 250_000  # rows per batch (and per transaction) for CSV and Parquet
    json_batch_rows: int = 20_000  # JSON lines per batch
    max_bad_reported: int = 20
    limits: Limits = field(default_factory=Limits.from_env)


@dataclass
class ImportReport:
    file: str
    format: str
    rows_read: int = 0
    stored: int = 0
    duplicates: int = 0
    bad_rows: int = 0
    bad: list[BadRow] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "rows_read": self.rows_read,
                "stored": self.stored, "duplicates": self.duplicates,
                "bad_rows": self.bad_rows, "bad": [b.as_dict() for b in self.bad]}


@dataclass
class _Batch:
    converted: Converted
    rows: int  # data rows read, bad ones included
    position: int
    total: int


class StrictImportError(InputError):
    """--strict and the file has a bad row; nothing was stored."""


def import_file(path: str | Path, project_id: str, sink: Sink,
                options: ImportOptions | None = None,
                progress: ProgressFn | None = None) -> ImportReport:
    """Import one file into project_id through `sink`; returns what happened."""
    options = options or ImportOptions()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}", code="not_found")
    fmt = detect_format(path, options.format)
    if options.strict:
        _validate(path, fmt, project_id, options)
    report = ImportReport(file=str(path), format=fmt)
    for batch in _read_ahead(_batches(path, fmt, project_id, options)):
        _record_bad(report, batch.converted.bad, options.max_bad_reported)
        report.rows_read += batch.rows
        if batch.converted.rows.events.num_rows:
            result = sink(batch.converted.rows)
            report.stored += result.stored
            report.duplicates += result.duplicates
        if progress is not None:
            progress(report.rows_read, batch.position, batch.total)
    return report


def _read_ahead(batches: Iterator[_Batch]) -> Iterator[_Batch]:
    """Read and convert the next batch in a thread while this one is being written: the
    converter (DuckDB, Arrow) and the store both release the GIL, so on two cores the
    import takes about max(convert, write) rather than their sum. One batch ahead at
    most, so memory stays bounded."""
    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        ahead.put(("batch", batch), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            ahead.put(("error", exc))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="segmently-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = ahead.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            ahead.get_nowait()
        worker.join()


def _validate(path: Path, fmt: str, project_id: str, options: ImportOptions) -> None:
    """The strict pre-pass: convert everything, write nothing, stop at the first bad row."""
    for batch in _batches(path, fmt, project_id, options):
        if batch.converted.bad:
            first = min(batch.converted.bad, key=lambda b: b.line)
            raise StrictImportError(f"line {first.line}: {first.reason} (--strict: nothing "
                                    "was stored)", code="bad_row")


def _record_bad(report: ImportReport, bad: list[BadRow], keep: int) -> None:
    report.bad_rows += len(bad)
    room = keep - len(report.bad)
    if room > 0:
        report.bad.extend(sorted(bad, key=lambda b: b.line)[:room])


def _batches(path: Path, fmt: str, project_id: str, options: ImportOptions) -> Iterator[_Batch]:
    if fmt in JSON_FORMATS:
        return _json_batches(path, fmt, project_id, options)
    if fmt == "csv":
        return _csv_batches(path, project_id, options)
    return _parquet_batches(path, project_id, options)


# -- JSON lines ----------------------------------------------------------------------------
def _json_batches(path: Path, fmt: str, project_id: str,
                  options: ImportOptions) -> Iterator[_Batch]:
    now, total, number = utcnow(), path.stat().st_size, 0
    with path.open("rb") as fh:
        while True:
            messages, bad, rows, number = _read_json_chunk(fh, fmt, number, now, options)
            if rows == 0:
                return
            converted = Converted(to_rows(project_id, messages, utcnow()), bad)
            yield _Batch(converted, rows, fh.tell(), total)


def _read_json_chunk(fh: IO[bytes], fmt: str, number: int, now: datetime,
                     options: ImportOptions) -> tuple[list[Any], list[BadRow], int, int]:
    messages, bad, rows = [], [], 0
    while rows < options.json_batch_rows:
        line = fh.readline()
        if not line:
            break
        number += 1
        if not line.strip():
            continue  # blank lines are not rows
        rows += 1
        try:
            messages.append(json_row_message(fmt, line, options.mapping, now, options.limits))
        except InputError as exc:
            bad.append(BadRow(number, exc.message))
    return messages, bad, rows, number


# -- tables --------------------------------------------------------------------------------
def _converter(names: list[str], project_id: str, options: ImportOptions) -> tuple[
        TabularConverter, dict[str, str]]:
    cols = resolve_mapping(names, options.mapping)
    return TabularConverter(cols, project_id, utcnow(), options.limits.max_future), cols


def _parquet_batches(path: Path, project_id: str, options: ImportOptions) -> Iterator[_Batch]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path.name} is not a readable Parquet file: {exc}",
                         code="bad_file") from exc
    total, done = pf.metadata.num_rows, 0
    converter, _ = _converter(pf.schema_arrow.names, project_id, options)
    try:
        for batch in pf.iter_batches(batch_size=options.batch_rows):
            lines = pa.array(np.arange(done + 1, done + 1 + batch.num_rows))
            done += batch.num_rows
            yield _Batch(converter.convert(batch, lines, utcnow()), batch.num_rows, done, total)
    finally:
        converter.close()


@dataclass
class _CsvSkips:
    """Rows pyarrow could not split into the header's columns, by physical line."""

    bad: list[BadRow] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)

    def __call__(self, row: Any) -> str:
        self.lines.append(row.number)
        self.bad.append(BadRow(row.number, f"expected {row.expected_columns} columns, "
                                           f"got {row.actual_columns}"))
        return "skip"

    def line_numbers(self, first_index: int, count: int) -> np.ndarray:
        """Lines of data rows first_index.. (0-based): header is line 1, skips shift."""
        lines = np.arange(first_index + 2, first_index + 2 + count)
        for skipped in sorted(self.lines):
            lines[lines >= skipped] += 1
        return lines

    def take_bad(self) -> list[BadRow]:
        out, self.bad = self.bad, []
        return out


def _skip(row: Any) -> str:
    return "skip"


def _open_csv(path: Path, skips: _CsvSkips, block_size: int) -> tuple[Any, pacsv.CSVStreamingReader]:
    probe = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16),
                           parse_options=pacsv.ParseOptions(invalid_row_handler=_skip))
    names = probe.schema.names
    probe.close()
    stream = pa.input_stream(path)
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(use_threads=False, block_size=block_size),
        parse_options=pacsv.ParseOptions(invalid_row_handler=skips, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             strings_can_be_null=True),
    )
    return stream, reader


def _csv_batches(path: Path, project_id: str, options: ImportOptions) -> Iterator[_Batch]:
    skips = _CsvSkips()
    try:
        stream, reader = _open_csv(path, skips, block_size=max(1 << 20, options.batch_rows * 64))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path.name} is not a readable CSV file: {exc}", code="bad_file") from exc
    total, done = path.stat().st_size, 0
    converter, cols = _converter(reader.schema.names, project_id, options)
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as exc:
                raise InputError(f"{path.name}: CSV parse error after line "
                                 f"{done + 1}: {exc}", code="bad_file") from exc
            lines = skips.line_numbers(done, batch.num_rows)
            done += batch.num_rows
            batch, lines = _drop_blank(batch, lines)
            batch = _numbers_as_numbers(batch, set(cols.values()))
            converted = converter.convert(batch, pa.array(lines), utcnow())
            unsplit = skips.take_bad()
            converted.bad = unsplit + converted.bad
            yield _Batch(converted, batch.num_rows + len(unsplit), stream.tell(), total)
    finally:
        converter.close()
        stream.close()


def _drop_blank(batch: pa.RecordBatch, lines: np.ndarray) -> tuple[pa.RecordBatch, np.ndarray]:
    """Blank lines parse as all-null rows; they are not rows of the file."""
    if batch.num_rows == 0:
        return batch, lines
    keep = pc.is_valid(batch.column(0))
    for col in batch.columns[1:]:
        keep = pc.or_(keep, pc.is_valid(col))
    if pc.all(keep).as_py():
        return batch, lines
    return batch.filter(keep), lines[keep.to_numpy(zero_copy_only=False)]


def _numbers_as_numbers(batch: pa.RecordBatch, mapped: set[str]) -> pa.RecordBatch:
    """CSV has no types: a property column whose cells all read as numbers becomes numeric
    (in this batch), so properties hold 19.5 rather than "19.5"."""
    arrays = []
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        if name not in mapped and col.null_count < len(col):
            for typ in (pa.int64(), pa.float64()):
                try:
                    col = pc.cast(col, typ)
                    break
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    continue
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


# -- where rows go, and which project ------------------------------------------------------
def store_sink(store: Store, project_id: str) -> Sink:
    """Write into a store this process holds. DuckDB's own progress bar is turned off:
    it would print into the output (and the --json report) of long inserts."""
    if store.engine == "duckdb":
        store.con.raw_sql("SET enable_progress_bar = false")
    return lambda rows: store.append_rows(project_id, rows)


def remote_sink(ctl: control.ServerControl, project_id: str) -> Sink:
    """Send converted rows to the `segmently serve` that holds the DuckDB file."""
    def send(rows: RowBatch) -> AppendResult:
        result = control.remote_append(ctl, project_id, arrow_ipc.encode(rows))
        return AppendResult(result["received"], result["stored"])
    return send


def pick_project(projects: list[dict[str, Any]], wanted: str | None) -> str:
    """The project id for a name or id; with no name, the only project there is."""
    if wanted is None:
        if len(projects) != 1:
            names = ", ".join(p["name"] for p in projects) or "none"
            raise InputError(f"name the project with --project; this database has "
                             f"{len(projects)} ({names})", code="unknown_project")
        return projects[0]["project_id"]
    for p in projects:
        if wanted in (p["name"], p["project_id"]):
            return p["project_id"]
    raise InputError(f"no project named {wanted!r}", code="unknown_project")
