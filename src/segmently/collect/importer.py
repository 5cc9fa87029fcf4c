"""`segmently import FILE`: stream a file into the event store, every row kept.

Any container (`files.py`: JSON lines, CSV/TSV, Parquet, gzip or zstd compressed) holding
generic rows (named by a column mapping and constants, `formats.py`) or a vendor's export
(`--from mixpanel|amplitude|posthog|segment`, `vendors/`). Memory stays bounded whatever the
file size: Parquet is read batch by batch (`ParquetFile.iter_batches`), CSV by blocks
(`pyarrow.csv.open_csv`), JSON lines in chunks of lines, and the only state kept across
batches is the occurrence counter (12 bytes per distinct id-less row, `occurrences.py`).
Each batch becomes one RowBatch (generic tables column-wise by `tabular.py`, rows one by
one by `jsonrows.py`) and goes to a `sink`: `Store.append_rows` locally, or the running
server's `/internal/v1/append`.

Every row is kept and a re-import stores nothing twice: a row without a message id gets
`imp_<md5 of its content>:<n>`, n the occurrence of that content in the file, so four
identical purchase lines are four purchases, and importing the file again finds all four
ids already stored (within the store's dedup window on DuckDB, for ever on PostgreSQL).
The report says how many rows were read, how many events stored and already stored, and
which rows were bad and why.

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
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, InstanceOf, ValidationError, model_validator

from segmently.collect import files, timestamps
from segmently.collect.converted import BadRow, Converted
from segmently.collect.errors import InputError
from segmently.collect.files import FileKind
from segmently.collect.formats import GenericRows, resolve_mapping, with_event
from segmently.collect.jsonrows import RowConverter, RowFormat, RowItem
from segmently.collect.limits import Limits
from segmently.collect.tabular import TabularConverter
from segmently.collect.timestamps import TimestampRules
from segmently.collect.vendors import VENDORS, row_format
from segmently.errors import validation_message
from segmently.settings import Settings
from segmently.settings import load as load_settings
from segmently.store import AppendResult, RowBatch, Store, utcnow

Sink = Callable[[RowBatch], AppendResult]
# (rows read so far, position, total): position/total in rows (Parquet) or bytes on disk.
ProgressFn = Callable[[int, int, int], None]


class ImportOptions(BaseModel):
    """How to read one file (the `segmently import` options)."""

    model_config = ConfigDict(extra="forbid")

    format: str | None = None  # container: jsonl, csv, tsv, parquet (or segment/posthog)
    source: str | None = None  # vendor export: mixpanel, amplitude, posthog, segment
    mapping: dict[str, str] = Field(default_factory=dict)  # target -> column
    constants: dict[str, str] = Field(default_factory=dict)  # --set column=value
    event: str | None = None  # --event NAME: every row is that event
    delimiter: str | None = None  # CSV: one character, or "tab"
    timestamp_format: str | None = None  # strptime format for timestamps
    strict: bool = False
    batch_rows: int = Field(default=250_000, gt=0)  # rows per batch (and transaction), tables
    json_batch_rows: int = Field(default=20_000, gt=0)  # rows per batch, JSON lines and vendors
    # events per transaction: small batches (JSON lines) are written together. Bigger
    # writes save CPU (1M-event transactions: 17 s instead of 21 s for 2M rows) but hold
    # more at once (a 6M-row import peaked at 2.2 GB instead of 1.4 GB): see bench/RESULTS.md
    write_rows: int = Field(default=250_000, gt=0)
    max_bad_reported: int = Field(default=20, ge=0)
    # the vendors' account keys, and the limits unless given: the caller's settings, else
    # the environment's
    settings: InstanceOf[Settings] = Field(default_factory=load_settings)
    limits: Limits = Field(default_factory=Limits)

    @model_validator(mode="after")
    def _limits_of_the_settings(self) -> ImportOptions:
        if "limits" not in self.model_fields_set:
            self.limits = Limits.from_settings(self.settings)
        return self


def import_options(**values: Any) -> ImportOptions:
    """ImportOptions, with a validation error as an InputError (one line for the CLI)."""
    try:
        return ImportOptions(**values)
    except ValidationError as exc:
        raise InputError(validation_message(exc, "option "), code="bad_option") from None


@dataclass
class ImportReport:
    file: str
    format: str
    rows_read: int = 0  # data rows of the file, bad ones included
    stored: int = 0  # events stored by this import
    already_stored: int = 0  # events whose message id the project already held
    bad_rows: int = 0
    bad: list[BadRow] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        """The name of before: events not stored because their id was already stored."""
        return self.already_stored

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "rows_read": self.rows_read,
                "stored": self.stored, "already_stored": self.already_stored,
                "bad_rows": self.bad_rows, "bad": [b.as_dict() for b in self.bad]}


@dataclass
class _Batch:
    converted: Converted
    rows: int  # data rows read, bad ones included
    position: int
    total: int


@dataclass(frozen=True)
class _Plan:
    """What was decided about the file before reading a row."""

    kind: FileKind
    vendor: str | None
    mapping: dict[str, str]
    constants: dict[str, str]
    rules: TimestampRules

    @property
    def label(self) -> str:
        return f"{self.vendor} ({self.kind.describe()})" if self.vendor else self.kind.describe()


class StrictImportError(InputError):
    """--strict and the file has a bad row; nothing was stored."""


def plan(path: Path, options: ImportOptions) -> _Plan:
    """Detect the file's kind and check the options against it, before any row is read."""
    kind = files.detect(path, options.format, options.delimiter)
    vendor = options.source or kind.vendor
    if options.source is not None and kind.vendor not in (None, options.source):
        raise InputError(f"--format {kind.vendor} and --from {options.source} disagree",
                         code="bad_format")
    if vendor is not None:
        if vendor not in VENDORS:
            raise InputError(f"unknown --from {vendor!r}; choose one of {', '.join(VENDORS)}",
                             code="bad_format")
        given = [name for name, value in (("--map", options.mapping), ("--set", options.constants),
                                          ("--event", options.event),
                                          ("--timestamp-format", options.timestamp_format))
                 if value]
        if given:
            raise InputError(f"{', '.join(given)} apply to generic files; a {vendor} export "
                             "has its own mapping (docs/import.md)", code="bad_option")
    if options.timestamp_format is not None:
        timestamps.check_format(options.timestamp_format)
    mapping, constants = with_event(options.mapping, options.constants, options.event)
    return _Plan(kind, vendor, mapping, constants,
                 TimestampRules(format=options.timestamp_format))


def import_file(path: str | Path, project_id: str, sink: Sink,
                options: ImportOptions | None = None,
                progress: ProgressFn | None = None) -> ImportReport:
    """Import one file into project_id through `sink`; returns what happened."""
    options = options or ImportOptions()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}", code="not_found")
    how = plan(path, options)
    if options.strict:
        _validate(path, how, project_id, options)
    report = ImportReport(file=str(path), format=how.label)
    limit = min(options.write_rows, getattr(sink, "max_rows", options.write_rows))
    for batch in _read_ahead(_grouped(_batches(path, how, project_id, options), limit)):
        _record_bad(report, batch.converted.bad, options.max_bad_reported)
        report.rows_read += batch.rows
        if batch.converted.rows.events.num_rows:
            result = sink(batch.converted.rows)
            report.stored += result.stored
            report.already_stored += result.duplicates
        if progress is not None:
            progress(report.rows_read, batch.position, batch.total)
    return report


def _grouped(batches: Iterator[_Batch], limit: int) -> Iterator[_Batch]:
    """Converted batches gathered into one write (transaction) of at least `limit` events,
    in the reader's thread: converted in small batches (memory), written in big ones."""
    group: list[_Batch] = []
    for batch in batches:
        group.append(batch)
        if sum(b.converted.rows.events.num_rows for b in group) >= limit:
            yield _joined(group)
            group = []
    if group:
        yield _joined(group)


def _joined(group: list[_Batch]) -> _Batch:
    bad = [row for b in group for row in b.converted.bad]
    rows = _merged([b.converted.rows for b in group])
    last = group[-1]
    return _Batch(Converted(rows, bad), sum(b.rows for b in group), last.position, last.total)


def _merged(parts: list[RowBatch]) -> RowBatch:
    """Converted batches as one transaction's rows. A message id repeated in a later part
    keeps only the first part's derived rows, as separate transactions would (the store
    drops the later event, and must not write its traits beside the first)."""
    if len(parts) == 1:
        return parts[0]
    events = pa.concat_tables([p.events for p in parts])
    repeated = len(pc.unique(events["message_id"])) < events.num_rows
    derived: dict[str, list[pa.Table]] = {"traits": [], "identities": [], "account_links": []}
    for i, part in enumerate(parts):
        for name, table in (("traits", part.traits), ("identities", part.identities),
                            ("account_links", part.account_links)):
            if table.num_rows and i and repeated:
                earlier = pa.concat_arrays([c for p in parts[:i]
                                            for c in p.events["message_id"].chunks])
                table = table.filter(pc.invert(pc.is_in(table["message_id"], earlier)))
            derived[name].append(table)
    return RowBatch(events=events, **{k: pa.concat_tables(v) for k, v in derived.items()})


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


def _validate(path: Path, how: _Plan, project_id: str, options: ImportOptions) -> None:
    """The strict pre-pass: convert everything, write nothing, stop at the first bad row."""
    for batch in _batches(path, how, project_id, options):
        if batch.converted.bad:
            first = min(batch.converted.bad, key=lambda b: b.line)
            raise StrictImportError(f"line {first.line}: {first.reason} (--strict: nothing "
                                    "was stored)", code="bad_row")


def _record_bad(report: ImportReport, bad: list[BadRow], keep: int) -> None:
    report.bad_rows += len(bad)
    room = keep - len(report.bad)
    if room > 0:
        report.bad.extend(sorted(bad, key=lambda b: b.line)[:room])


def _batches(path: Path, how: _Plan, project_id: str, options: ImportOptions) -> Iterator[_Batch]:
    """Generic tables go column-wise; JSON lines and every vendor's rows row by row."""
    if how.vendor is None and how.kind.container != "jsonl":
        if how.kind.container == "csv":
            return _csv_batches(path, how, project_id, options)
        return _parquet_batches(path, how, project_id, options)
    fmt: RowFormat = (row_format(how.vendor, options.settings) if how.vendor
                      else GenericRows(how.mapping))
    return _row_batches(path, how, fmt, project_id, options)


# -- rows one by one (JSON lines, vendor exports) ------------------------------------------
def _row_batches(path: Path, how: _Plan, fmt: RowFormat, project_id: str,
                 options: ImportOptions) -> Iterator[_Batch]:
    converter = RowConverter(fmt, project_id, options.limits, how.rules, how.constants)
    try:
        for items, position, total in _row_items(path, how, options):
            now = utcnow()
            converted = converter.convert(items, now, now)
            yield _Batch(converted, len(items), position, total)
    finally:
        converter.close()


def _row_items(path: Path, how: _Plan, options: ImportOptions) -> Iterator[
        tuple[list[RowItem], int, int]]:
    """(rows, position, total) chunks of any container, as Python objects."""
    size = path.stat().st_size
    if how.kind.container == "jsonl":
        stream = files.Stream(path, how.kind.compression)
        try:
            for chunk in files.json_lines(stream, options.json_batch_rows, path.name):
                yield chunk, stream.position, size
        finally:
            stream.close()
        return
    if how.kind.container == "parquet":
        pf = _parquet_file(path)
        done, total = 0, pf.metadata.num_rows
        for batch in pf.iter_batches(batch_size=options.json_batch_rows):
            rows = batch.to_pylist()
            yield [RowItem(done + 1 + i, r) for i, r in enumerate(rows)], done + len(rows), total
            done += len(rows)
        return
    skips = _CsvSkips()
    stream, reader = _csv(path, how.kind, skips, max(1 << 20, options.json_batch_rows * 256))
    done = 0
    try:
        for batch in _csv_read(reader, path):
            lines = skips.line_numbers(done, batch.num_rows)
            done += batch.num_rows
            batch, lines = _drop_blank(batch, lines)
            items = [RowItem(int(n), r) for n, r in zip(lines, batch.to_pylist(), strict=True)]
            items += [RowItem(b.line, error=b.reason) for b in skips.take_bad()]
            yield items, stream.position, size
    finally:
        stream.close()


# -- tables column-wise --------------------------------------------------------------------
def _converter(names: list[str], how: _Plan, project_id: str, options: ImportOptions) -> tuple[
        TabularConverter, dict[str, str]]:
    columns = list(dict.fromkeys([*names, *how.constants]))
    cols = resolve_mapping(columns, how.mapping)
    return TabularConverter(cols, project_id, utcnow(), options.limits.max_future, how.rules,
                            how.constants), cols


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path.name} is not a readable Parquet file: {exc}",
                         code="bad_file") from exc


def _parquet_batches(path: Path, how: _Plan, project_id: str,
                     options: ImportOptions) -> Iterator[_Batch]:
    pf = _parquet_file(path)
    total, done = pf.metadata.num_rows, 0
    converter, _ = _converter(pf.schema_arrow.names, how, project_id, options)
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


def _csv(path: Path, kind: FileKind, skips: _CsvSkips, block_size: int) -> tuple[
        files.Stream, Any]:
    try:
        return files.csv_reader(path, kind, block_size, skips)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{path.name} is not a readable {kind.describe()} file: "
                         f"{str(exc).splitlines()[0]}", code="bad_file") from None


def _csv_read(reader: Any, path: Path) -> Iterator[pa.RecordBatch]:
    """The reader's batches; a file that breaks off (a truncated gzip, bytes that are not
    text) is one clear error naming the data rows read before it."""
    rows = 0
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"{path.name}: cannot be read after {rows:,} data rows: "
                             f"{str(exc).splitlines()[0]}", code="bad_file") from None
        rows += batch.num_rows
        yield batch


def _csv_batches(path: Path, how: _Plan, project_id: str,
                 options: ImportOptions) -> Iterator[_Batch]:
    skips = _CsvSkips()
    stream, reader = _csv(path, how.kind, skips, max(1 << 20, options.batch_rows * 64))
    total, done = path.stat().st_size, 0
    converter, cols = _converter(reader.schema.names, how, project_id, options)
    try:
        for batch in _csv_read(reader, path):
            lines = skips.line_numbers(done, batch.num_rows)
            done += batch.num_rows
            batch, lines = _drop_blank(batch, lines)
            batch = _numbers_as_numbers(batch, set(cols.values()))
            converted = converter.convert(batch, pa.array(lines), utcnow())
            unsplit = skips.take_bad()
            converted.bad = unsplit + converted.bad
            yield _Batch(converted, batch.num_rows + len(unsplit), stream.position, total)
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
def store_sink(store: Store, project_id: str, memory_limit: str | None = None) -> Sink:
    """Write into a store this process holds. DuckDB's own progress bar is turned off:
    it would print into the output (and the --json report) of long inserts.
    `memory_limit` (DuckDB's, for the whole database in this process: the CLI sets it)
    bounds what DuckDB keeps cached of the rows written, which otherwise grows with the
    file (a 6-million-row import held 370 MB of table blocks at the end)."""
    if store.engine == "duckdb":
        store.con.raw_sql("SET enable_progress_bar = false")
        if memory_limit is not None:
            store.backends.get().con.execute("SET memory_limit = ?", [memory_limit])
    return lambda rows: store.append_rows(project_id, rows)
