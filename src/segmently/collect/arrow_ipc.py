"""A RowBatch on the wire: how `segmently import` hands converted rows to a running server.

The body is the four tables of a RowBatch (events, traits, identities, account_links, in
that order), each an Arrow IPC stream preceded by its length as 8 little-endian bytes.
One body is one `Store.append_rows` call, so one transaction on the server. The server
checks every table's columns and types against the store's schema before writing.
"""

from __future__ import annotations

import struct

import pyarrow as pa
import pyarrow.ipc as ipc

from segmently.collect.errors import InputError
from segmently.store.rows import ARROW_SCHEMAS, RowBatch

ORDER = ("events", "traits", "identities", "account_links")
MEDIA_TYPE = "application/vnd.segmently.rowbatch"
_LEN = struct.Struct("<Q")


def _stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def encode(rows: RowBatch) -> bytes:
    parts = []
    for name in ORDER:
        data = _stream(getattr(rows, name))
        parts.append(_LEN.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def _table(name: str, data: memoryview) -> pa.Table:
    try:
        table = ipc.open_stream(pa.py_buffer(data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{name}: not an Arrow IPC stream: {exc}", code="bad_encoding") from exc
    want = ARROW_SCHEMAS[name]
    got = pa.schema([pa.field(f.name, f.type) for f in table.schema])
    if got != pa.schema([pa.field(f.name, f.type) for f in want]):
        raise InputError(f"{name}: columns {got} do not match the store's {want}",
                         code="bad_schema")
    return table.cast(want)


def decode(body: bytes) -> RowBatch:
    view, offset, tables = memoryview(body), 0, {}
    for name in ORDER:
        if offset + _LEN.size > len(view):
            raise InputError(f"body ends before the {name} table", code="bad_encoding")
        (size,) = _LEN.unpack_from(view, offset)
        offset += _LEN.size
        if offset + size > len(view):
            raise InputError(f"{name} table is truncated", code="bad_encoding")
        tables[name] = _table(name, view[offset:offset + size])
        offset += size
    if offset != len(view):
        raise InputError("unexpected bytes after the last table", code="bad_encoding")
    return RowBatch(**tables)
