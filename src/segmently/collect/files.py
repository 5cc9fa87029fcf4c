"""What a file to import is, and reading it as a stream: containers, compression, delimiters.

A file is a *container* (JSON lines, CSV/TSV, Parquet), possibly compressed as a whole
(gzip `.gz`, zstd `.zst`; also recognised by their magic bytes when the name does not
say). Compressed files stream like plain ones: Arrow decompresses while the importer
reads (`pa.CompressedInputStream`), so nothing is unpacked to disk or held whole in
memory. Progress is the position in the file on disk (compressed bytes).

The importer (`importer.py`) reads tables through `csv_reader` / Parquet's
`iter_batches` and JSON lines through `json_lines`, a chunk at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from segmently.collect.decode import parse_json
from segmently.collect.errors import InputError
from segmently.collect.jsonrows import RowItem

CONTAINERS = ("jsonl", "csv", "parquet")
# --format values: containers, "tsv" (CSV with tabs), and the vendor names of before --from.
FORMATS = ("jsonl", "csv", "tsv", "parquet", "segment", "posthog")
EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
              ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
DELIMITERS = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
BLOCK = 1 << 22  # bytes read at a time from a JSON-lines stream


@dataclass(frozen=True)
class FileKind:
    container: str  # one of CONTAINERS
    compression: str | None  # "gzip", "zstd" or None
    delimiter: str = ","  # CSV only
    vendor: str | None = None  # set by a legacy --format segment/posthog

    def describe(self) -> str:
        name = "tsv" if self.container == "csv" and self.delimiter == "\t" else self.container
        return f"{name}+{self.compression}" if self.compression else name


def _sniff(path: Path) -> str | None:
    with path.open("rb") as fh:
        head = fh.read(4)
    for magic, name in MAGIC.items():
        if head.startswith(magic):
            return name
    return None


def detect(path: Path, fmt: str | None, delimiter: str | None = None) -> FileKind:
    """The container (from --format, else the extension under any .gz/.zst), the
    compression (the extension, else the magic bytes) and the CSV delimiter."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression is not None:
        suffixes = suffixes[:-1]
    else:
        compression = _sniff(path)
    vendor: str | None = None
    kind: str | None
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}",
                             code="bad_format")
        kind = fmt
        if fmt in ("segment", "posthog"):
            kind, vendor = "jsonl", fmt
    else:
        kind = EXTENSIONS.get(suffixes[-1]) if suffixes else None
        if kind is None:
            raise InputError(f"cannot tell the format of {path.name!r} from its extension; "
                             f"pass --format ({', '.join(FORMATS[:4])})", code="bad_format")
    container = "csv" if kind == "tsv" else kind
    if container == "parquet" and compression is not None:
        raise InputError(f"{path.name}: a Parquet file is compressed inside; decompress the "
                         f"outer {compression} first", code="bad_format")
    if delimiter is not None and container != "csv":
        raise InputError("--delimiter applies to CSV/TSV files only", code="bad_format")
    return FileKind(container, compression, _delimiter(delimiter, kind), vendor)


def _delimiter(given: str | None, kind: str) -> str:
    if given is None:
        return "\t" if kind == "tsv" else ","
    value = DELIMITERS.get(given, given)
    if len(value) != 1 or value in ("\n", "\r", '"'):
        raise InputError(f"--delimiter must be one character (or tab), got {given!r}",
                         code="bad_format")
    return value


class Stream:
    """The file's bytes, decompressed if need be; `position` is on disk (for progress)."""

    def __init__(self, path: Path, compression: str | None) -> None:
        self.raw = pa.OSFile(str(path), "rb")
        self.data: Any = (pa.CompressedInputStream(self.raw, compression)
                          if compression else self.raw)

    @property
    def position(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        if self.data is not self.raw:
            self.data.close()
        self.raw.close()


def _skip(row: Any) -> str:
    return "skip"


def csv_reader(path: Path, kind: FileKind, block_size: int, invalid_row: Any) -> tuple[
        Stream, pacsv.CSVStreamingReader]:
    """A streaming CSV reader with every column as text (types are the mapping's job);
    `invalid_row` is called for rows that do not have the header's columns."""
    parse = {"delimiter": kind.delimiter}
    probe_stream = Stream(path, kind.compression)
    try:
        probe = pacsv.open_csv(probe_stream.data,
                               read_options=pacsv.ReadOptions(block_size=1 << 16),
                               parse_options=pacsv.ParseOptions(invalid_row_handler=_skip,
                                                                **parse))
        names = probe.schema.names
        probe.close()
    finally:
        probe_stream.close()
    stream = Stream(path, kind.compression)
    try:
        reader = pacsv.open_csv(
            stream.data,
            read_options=pacsv.ReadOptions(use_threads=False, block_size=block_size),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid_row,
                                             ignore_empty_lines=False, **parse),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                 strings_can_be_null=True),
        )
    except BaseException:
        stream.close()
        raise
    return stream, reader


def json_lines(stream: Stream, rows: int, name: str) -> Iterator[list[RowItem]]:
    """Chunks of at most `rows` parsed JSON lines, numbered as a user counts lines
    (blank lines are not rows). Reads blocks, not lines: one call per 4 MB."""
    number, rest, chunk = 0, b"", []
    while True:
        try:
            block = stream.data.read(BLOCK)
        except (OSError, pa.ArrowInvalid) as exc:
            raise InputError(f"{name}: cannot be read after line {number}: {exc}",
                             code="bad_file") from None
        if not block:
            break
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        for line in lines:
            number += 1
            if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]  # a UTF-8 byte order mark
            item = _line(line, number)
            if item is not None:
                chunk.append(item)
                if len(chunk) >= rows:
                    yield chunk
                    chunk = []
    if rest:
        item = _line(rest, number + 1)
        if item is not None:
            chunk.append(item)
    if chunk:
        yield chunk


def _line(line: bytes, number: int) -> RowItem | None:
    if not line.strip():
        return None
    try:
        return RowItem(number, parse_json(line, "the line"))
    except InputError as exc:
        return RowItem(number, error=exc.message)
