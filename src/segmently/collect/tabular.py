"""Column-wise conversion of an Arrow batch (CSV, Parquet) into rows of the events table.

No per-row Python: one Ibis expression over the input batch renames and casts the mapped
columns, parses timestamps (ISO text, epoch seconds/milliseconds, native timestamps),
builds `properties` as JSON text from the leftover columns (a struct cast to JSON), derives
a content hash as message id where the file has none, and flags bad rows with a reason
code. The expression is compiled once per file (the schema is fixed) and run by an
in-memory DuckDB on each batch. Only the rare identify/group/alias rows go through
`Message` objects, for their traits, identities and account links.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import ibis
import numpy as np
import ibis.expr.types as ir
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from segmently.collect.common import MAX_ID_LENGTH, MAX_NAME_LENGTH
from segmently.collect.errors import InputError
from segmently.collect.formats import DEFAULT_NAMES, ID_TARGETS, SOURCE
from segmently.store import schema
from segmently.store.rows import ARROW_SCHEMAS, MESSAGE_TYPES, Message, RowBatch, to_rows

BATCH = "segmently_import_batch"
ROW, BAD = "__row", "__bad"
EPOCH_MS_ABOVE = 1e11  # like collect.common.parse_timestamp: larger numbers are ms
EPOCH_MAX = 1e14  # beyond year 5000 even in milliseconds: out of range
REASONS = {
    "missing_id": "needs a user id or an anonymous id",
    "bad_type": "type must be one of " + ", ".join(MESSAGE_TYPES),
    "missing_event": "event name is missing",
    "missing_timestamp": "timestamp is missing",
    "bad_timestamp": "timestamp is not an ISO 8601 time or epoch seconds/milliseconds",
    "future_timestamp": "timestamp is more than the allowed skew in the future",
    "too_long": f"an id is longer than {MAX_ID_LENGTH} or the event name longer than "
                f"{MAX_NAME_LENGTH} characters",
}
RARE_TYPES = ("identify", "group", "alias")


def _value_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def _is_text(typ: pa.DataType) -> bool:
    return pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ)


def check_columns(arrow_schema: pa.Schema, cols: dict[str, str]) -> None:
    """A missing or wrongly typed column is wrong in every row: refuse the file up front."""
    have = ", ".join(arrow_schema.names)
    if "user_id" not in cols and "anonymous_id" not in cols:
        raise InputError(f"no user id column: map one with --map user_id=COLUMN (or "
                         f"anonymous_id=COLUMN); the file's columns: {have}", code="bad_mapping")
    if "timestamp" not in cols:
        raise InputError(f"no timestamp column: map one with --map timestamp=COLUMN; "
                         f"the file's columns: {have}", code="bad_mapping")
    if "event" not in cols and "type" not in cols:
        raise InputError(f"no event column: map one with --map event=COLUMN; "
                         f"the file's columns: {have}", code="bad_mapping")
    for target, src in cols.items():
        typ = _value_type(arrow_schema.field(src).type)
        if target in ID_TARGETS:
            ok = _is_text(typ) or pa.types.is_integer(typ)
            want = "text or integers"
        elif target == "timestamp":
            ok = (_is_text(typ) or pa.types.is_integer(typ) or pa.types.is_floating(typ)
                  or pa.types.is_timestamp(typ) or pa.types.is_date(typ))
            want = "a timestamp, a date, ISO 8601 text or epoch numbers"
        else:
            ok, want = _is_text(typ), "text"
        if not ok:
            raise InputError(f"column {src!r} (mapped to {target}) has type {typ}; "
                             f"{target} must be {want}", code="bad_type")


def _blank_to_null(value: ir.StringValue) -> ir.StringValue:
    return ibis.cases((value.strip() == "", ibis.null("string")), else_=value)


def _epoch(num: ir.NumericValue) -> ir.TimestampValue:
    micros = ibis.cases(
        (num.abs() >= EPOCH_MAX, ibis.null("float64")),
        (num.abs() > EPOCH_MS_ABOVE, num * 1000),
        else_=num * 1_000_000,
    ).cast("int64")
    return ibis.timestamp("1970-01-01 00:00:00") + micros.as_interval("us")


def _timestamp(col: ir.Value) -> ir.TimestampValue:
    """Any accepted timestamp column -> naive UTC (the compute session runs in UTC)."""
    dtype = col.type()
    if dtype.is_timestamp() or dtype.is_date():
        return col.cast("timestamp")
    if dtype.is_numeric():
        return _epoch(col.cast("float64"))
    text = col.cast("string").strip()
    num = text.try_cast("float64")
    return ibis.cases(
        (num.notnull(), _epoch(num)),
        else_=text.try_cast("timestamp('UTC')").cast("timestamp"),
    )


def _text(t: ir.Table, cols: dict[str, str], target: str) -> ir.StringValue:
    if target not in cols:
        return ibis.null("string")
    return _blank_to_null(t[cols[target]].cast("string"))


def _properties(t: ir.Table, names: list[str]) -> ir.StringValue:
    if not names:
        return ibis.literal("{}")
    return ibis.struct({n: t[n] for n in names}).cast("json").cast("string")


def _content_id(parts: list[ir.StringValue]) -> ir.StringValue:
    joined = parts[0].fill_null("\x1e")
    for part in parts[1:]:
        joined = joined + "\x1f" + part.fill_null("\x1e")
    return "imp_" + joined.hexdigest("md5")


def _too_long(event: ir.StringValue, ids: list[ir.StringValue]) -> ir.BooleanValue:
    too_long = event.length().fill_null(0) > MAX_NAME_LENGTH
    for value in ids:
        too_long |= value.length().fill_null(0) > MAX_ID_LENGTH
    return too_long


def normalize_expr(arrow_schema: pa.Schema, cols: dict[str, str]) -> ir.Table:
    """Stage 1, per input schema: mapped columns renamed and cast, properties as JSON."""
    t = ibis.table(ibis.Schema.from_pyarrow(arrow_schema), name=BATCH)
    typ = _text(t, cols, "type").fill_null("track")
    named = _text(t, cols, "event")
    ts_col = t[cols["timestamp"]]
    raw_ts = _text(t, cols, "timestamp") if ts_col.type().is_string() else ts_col
    leftover = [n for n in arrow_schema.names if n not in set(cols.values()) and n != ROW]
    return t.select(
        type=typ,
        event=named.fill_null(typ.substitute(DEFAULT_NAMES, else_=ibis.null("string"))),
        user_id=_text(t, cols, "user_id"),
        anonymous_id=_text(t, cols, "anonymous_id"),
        account_id=_text(t, cols, "account_id"),
        given_id=_text(t, cols, "message_id"),
        timestamp=_timestamp(ts_col),
        ts_missing=raw_ts.isnull(),
        properties=_properties(t, leftover),
        **{ROW: t[ROW]},
    )


NORMALIZED = ibis.schema({
    "type": "string", "event": "string", "user_id": "string", "anonymous_id": "string",
    "account_id": "string", "given_id": "string", "timestamp": "timestamp",
    "ts_missing": "boolean", "properties": "string", ROW: "int64",
})


def finish_expr(project_id: str, now: datetime, max_future: timedelta) -> ir.Table:
    """Stage 2, over stage 1's output: message ids (given or a content hash) and the
    reason a row is bad (null when it is good). Two stages so that DuckDB computes each
    normalized value once."""
    n = ibis.table(NORMALIZED, name=BATCH)
    hashed = _content_id([n.type, n.event, n.user_id, n.anonymous_id, n.account_id,
                          n.timestamp.cast("string"), n.properties])
    reason = ibis.cases(
        (n.user_id.isnull() & n.anonymous_id.isnull(), "missing_id"),
        (~n.type.isin(MESSAGE_TYPES), "bad_type"),
        (n.event.isnull(), "missing_event"),
        (n.ts_missing, "missing_timestamp"),
        (n.timestamp.isnull(), "bad_timestamp"),
        (n.timestamp > ibis.literal(now + max_future, "timestamp"), "future_timestamp"),
        (_too_long(n.event, [n.user_id, n.anonymous_id, n.account_id, n.given_id]),
         "too_long"),
        else_=ibis.null("string"),
    )
    return n.select(
        project_id=ibis.literal(project_id),
        message_id=n.given_id.fill_null(hashed),
        type=n.type,
        event=n.event,
        user_id=n.user_id,
        anonymous_id=n.anonymous_id,
        account_id=n.account_id,
        timestamp=n.timestamp,
        properties=n.properties,
        context=ibis.literal("{}"),
        source=ibis.literal(SOURCE),
        **{ROW: n[ROW], BAD: reason},
    )


@dataclass
class BadRow:
    line: int
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "reason": self.reason}


@dataclass
class Converted:
    rows: RowBatch
    bad: list[BadRow]


class TabularConverter:
    """Converts the batches of one file; the expression is compiled once per batch schema
    (a Parquet file has one; CSV property columns may type differently per batch)."""

    def __init__(self, cols: dict[str, str], project_id: str, now: datetime,
                 max_future: timedelta) -> None:
        self.cols = cols
        self.project_id = project_id
        self.now, self.max_future = now, max_future
        self._sql: dict[pa.Schema, str] = {}
        finish = finish_expr(project_id, now, max_future)
        self._finish_sql = str(ibis.to_sql(finish, dialect="duckdb"))
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")

    def close(self) -> None:
        self.con.close()

    def _compiled(self, arrow_schema: pa.Schema) -> str:
        sql = self._sql.get(arrow_schema)
        if sql is None:
            check_columns(arrow_schema, self.cols)
            with_row = arrow_schema.append(pa.field(ROW, pa.int64()))
            expr = normalize_expr(with_row, self.cols)
            sql = self._sql[arrow_schema] = str(ibis.to_sql(expr, dialect="duckdb"))
        return sql

    def _run(self, sql: str, table: pa.Table) -> pa.Table:
        self.con.register(BATCH, table)
        try:
            return self.con.execute(sql).to_arrow_table()
        finally:
            self.con.unregister(BATCH)

    def convert(self, batch: pa.RecordBatch, lines: pa.Array, received_at: datetime) -> Converted:
        """Event rows of a batch; `lines` holds each row's line (or row) number."""
        batch = _prepare(batch)
        sql = self._compiled(batch.schema)
        table = pa.Table.from_batches([batch]).append_column(
            ROW, pa.array(np.arange(batch.num_rows, dtype=np.int64)))
        out = self._run(self._finish_sql, self._run(sql, table))
        bad_mask = pc.is_valid(out[BAD])
        bad = self._bad_rows(out.filter(bad_mask), table, lines)
        good = out.filter(pc.invert(bad_mask)) if bad else out
        events = _events_table(good, received_at)
        return Converted(_with_derived(self.project_id, events, received_at), bad)

    def _bad_rows(self, bad: pa.Table, source: pa.Table, lines: pa.Array) -> list[BadRow]:
        out = []
        for row, code in zip(bad[ROW].to_pylist(), bad[BAD].to_pylist(), strict=True):
            reason = REASONS[code]
            if code in ("bad_timestamp", "future_timestamp"):
                raw = source[self.cols["timestamp"]][row].as_py()
                reason = f"{reason}: {str(raw)[:64]!r}"
            elif code == "bad_type":
                reason = f"{reason}, got {source[self.cols['type']][row].as_py()!r}"
            out.append(BadRow(lines[row].as_py(), reason))
        return out


def _prepare(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Dictionary columns decoded; zoned timestamps made naive UTC here, where it is
    free (Arrow stores UTC), rather than by a time zone conversion in DuckDB."""
    arrays = []
    for array in batch.columns:
        if pa.types.is_dictionary(array.type):
            array = pc.cast(array, array.type.value_type)
        if pa.types.is_timestamp(array.type) and array.type.tz is not None:
            array = pc.cast(array, pa.timestamp(array.type.unit))
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _events_table(out: pa.Table, received_at: datetime) -> pa.Table:
    target = ARROW_SCHEMAS[schema.EVENTS]
    received = pa.repeat(pa.scalar(received_at, pa.timestamp("us")), out.num_rows)
    out = out.drop_columns([ROW, BAD]).append_column("received_at", received)
    columns = [out[name].cast(target.field(name).type) for name in target.names]
    return pa.Table.from_arrays(columns, schema=target)


def _with_derived(project_id: str, events: pa.Table, received_at: datetime) -> RowBatch:
    """Traits, identities and account links of the rare identify/group/alias rows."""
    rare = events.filter(pc.is_in(events["type"], pa.array(RARE_TYPES)))
    messages = [_message(r) for r in rare.to_pylist()]
    derived = to_rows(project_id, messages, received_at)
    derived.events = events
    return derived


def _message(row: dict[str, object]) -> Message:
    props = orjson.loads(row["properties"] or "{}")  # type: ignore[arg-type]
    typ, user, anon = row["type"], row["user_id"], row["anonymous_id"]
    return Message(
        message_id=row["message_id"], type=typ, event=row["event"],  # type: ignore[arg-type]
        timestamp=row["timestamp"], source=SOURCE, user_id=user,  # type: ignore[arg-type]
        anonymous_id=anon, account_id=row["account_id"],  # type: ignore[arg-type]
        properties=props,
        traits=props if typ == "identify" else None,
        account_traits=props if typ == "group" else None,
        alias_id=anon if user and typ in ("identify", "alias") else None,  # type: ignore[arg-type]
    )
