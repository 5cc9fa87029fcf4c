"""Column-wise conversion of an Arrow batch (CSV, Parquet) into rows of the events table.

No per-row Python: one Ibis expression over the input batch sets the constant columns
(`--set`, `--event`), renames and casts the mapped columns, parses timestamps by the rules
of `timestamps.py`, builds `properties` as JSON text from the leftover columns (a struct
cast to JSON), hashes each row's content (MD5) where the file has no message id, and flags
bad rows with a reason code. The expression is compiled once per batch schema and run by
an in-memory DuckDB on each batch. An id-less row's message id is `imp_<md5>:<n>`, n its
content's occurrence in the file so far (`occurrences.py`), so identical rows are all kept
and a re-import stores none of them again. Only the rare identify/group/alias rows go
through `Message` objects, for their traits, identities and account links; the next hop
is `Store.append_rows` (via the importer's sink).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import ibis
import ibis.expr.types as ir
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from segmently.collect import timestamps
from segmently.collect.common import MAX_ID_LENGTH, MAX_NAME_LENGTH
from segmently.collect.converted import BadRow, Converted
from segmently.collect.errors import InputError
from segmently.collect.formats import DEFAULT_NAMES, ID_TARGETS, SOURCE
from segmently.collect.occurrences import OccurrenceCounter, keys_of_hex
from segmently.collect.timestamps import TimestampParser, TimestampRules
from segmently.store import schema
from segmently.store.rows import ARROW_SCHEMAS, MESSAGE_TYPES, Message, RowBatch, to_rows

BATCH = "segmently_import_batch"
STAGE = "segmently_import_normalized"  # stage 1's rows, a materialized CTE of stage 2
ROW, BAD = "__row", "__bad"
REASONS = {
    "missing_id": "needs a user id or an anonymous id",
    "bad_type": "type must be one of " + ", ".join(MESSAGE_TYPES),
    "missing_event": "event name is missing",
    "missing_timestamp": "timestamp is missing",
    "bad_timestamp": "timestamp is not readable",  # detailed by timestamps.describe
    "future_timestamp": "timestamp is more than the allowed skew in the future",
    "too_long": f"an id is longer than {MAX_ID_LENGTH} or the event name longer than "
                f"{MAX_NAME_LENGTH} characters",
}
RARE_TYPES = ("identify", "group", "alias")


def _value_type(typ: pa.DataType) -> pa.DataType:
    return typ.value_type if pa.types.is_dictionary(typ) else typ


def _is_text(typ: pa.DataType) -> bool:
    return pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_string_view(typ)


def check_columns(arrow_schema: pa.Schema, cols: dict[str, str],
                  rules: TimestampRules | None = None) -> None:
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
    ts_type = _value_type(arrow_schema.field(cols["timestamp"]).type)
    if rules is not None and rules.format is not None and not (
            _is_text(ts_type) or pa.types.is_integer(ts_type)):
        raise InputError(f"--timestamp-format reads text; column {cols['timestamp']!r} has "
                         f"type {ts_type}", code="bad_type")


def _blank_to_null(value: ir.StringValue) -> ir.StringValue:
    return ibis.cases((value.strip() == "", ibis.null("string")), else_=value)


def _text(t: ir.Table, cols: dict[str, str], target: str) -> ir.StringValue:
    if target not in cols:
        return ibis.null("string")
    return _blank_to_null(t[cols[target]].cast("string"))


def _properties(t: ir.Table, names: list[str]) -> ir.StringValue:
    if not names:
        return ibis.literal("{}")
    return ibis.struct({n: t[n] for n in names}).cast("json").cast("string")


def _content_md5(parts: list[ir.StringValue]) -> ir.StringValue:
    """MD5 (hex) of a row's normalized content: fields joined by \\x1f, NULL as \\x1e."""
    joined = parts[0].fill_null("\x1e")
    for part in parts[1:]:
        joined = joined + "\x1f" + part.fill_null("\x1e")
    return joined.hexdigest("md5")


def _too_long(event: ir.StringValue, ids: list[ir.StringValue]) -> ir.BooleanValue:
    too_long = event.length().fill_null(0) > MAX_NAME_LENGTH
    for value in ids:
        too_long |= value.length().fill_null(0) > MAX_ID_LENGTH
    return too_long


def normalize_expr(arrow_schema: pa.Schema, cols: dict[str, str],
                   rules: TimestampRules | None = None,
                   constants: dict[str, str] | None = None) -> ir.Table:
    """Stage 1, per input schema: constant columns set (replacing the file's column of
    that name), mapped columns renamed and cast, timestamps parsed, properties as JSON."""
    rules = rules or TimestampRules()
    t = ibis.table(ibis.Schema.from_pyarrow(arrow_schema), name=BATCH)
    if constants:
        t = t.mutate(**{name: ibis.literal(value, "string") for name, value in constants.items()})
    typ = _text(t, cols, "type").fill_null("track")
    named = _text(t, cols, "event")
    ts_col = t[cols["timestamp"]]
    raw_ts = _text(t, cols, "timestamp") if ts_col.type().is_string() else ts_col
    leftover = [n for n in t.columns if n not in set(cols.values()) and n != ROW]
    return t.select(
        type=typ,
        event=named.fill_null(typ.substitute(DEFAULT_NAMES, else_=ibis.null("string"))),
        user_id=_text(t, cols, "user_id"),
        anonymous_id=_text(t, cols, "anonymous_id"),
        account_id=_text(t, cols, "account_id"),
        given_id=_text(t, cols, "message_id"),
        timestamp=timestamps.parse(ts_col, rules),
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
    reason a row is bad (null when it is good). Two stages (one query: stage 1 is a
    MATERIALIZED common table expression) so that DuckDB computes each normalized value
    once."""
    n = ibis.table(NORMALIZED, name=STAGE)
    hashed = _content_md5([n.type, n.event, n.user_id, n.anonymous_id, n.account_id,
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
        given_id=n.given_id,
        content=ibis.cases((n.given_id.isnull(), hashed), else_=ibis.null("string")),
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


class TabularConverter:
    """Converts the batches of one file, in order; the expression is compiled once per
    batch schema (a Parquet file has one; CSV property columns may type differently per
    batch). Holds the file's occurrence counter, so one converter per file and pass."""

    def __init__(self, cols: dict[str, str], project_id: str, now: datetime,
                 max_future: timedelta, rules: TimestampRules | None = None,
                 constants: dict[str, str] | None = None) -> None:
        self.cols = cols
        self.project_id = project_id
        self.now, self.max_future = now, max_future
        self.rules = rules or TimestampRules()
        self.constants = dict(constants or {})
        self.occurrences = OccurrenceCounter()
        self._sql: dict[pa.Schema, str] = {}
        finish = finish_expr(project_id, now, max_future)
        self._finish_sql = str(ibis.to_sql(finish, dialect="duckdb"))
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self.con.execute("SET enable_progress_bar = false")
        self._timestamps = TimestampParser(self.rules, self.con)

    def close(self) -> None:
        self.con.close()

    def _compiled(self, arrow_schema: pa.Schema) -> str:
        sql = self._sql.get(arrow_schema)
        if sql is None:
            check_columns(_with_constants(arrow_schema, self.constants), self.cols, self.rules)
            with_row = arrow_schema.append(pa.field(ROW, pa.int64()))
            expr = normalize_expr(with_row, self.cols, self.rules, self.constants)
            stage = str(ibis.to_sql(expr, dialect="duckdb"))
            sql = self._sql[arrow_schema] = (f'WITH "{STAGE}" AS MATERIALIZED ({stage}) '
                                             f"{self._finish_sql}")
        return sql

    def _run(self, sql: str, table: pa.Table) -> pa.Table:
        self.con.register(BATCH, table)
        try:
            return self.con.execute(sql).to_arrow_table()
        finally:
            self.con.unregister(BATCH)

    def convert(self, batch: pa.RecordBatch, lines: pa.Array, received_at: datetime) -> Converted:
        """Event rows of a batch; `lines` holds each row's line (or row) number. Batches
        must come in file order (occurrence numbers count from the file's start)."""
        batch = _prepare(batch)
        sql = self._compiled(batch.schema)
        table = pa.Table.from_batches([batch]).append_column(
            ROW, pa.array(np.arange(batch.num_rows, dtype=np.int64)))
        out = self._run(sql, table)
        bad_mask = pc.is_valid(out[BAD])
        bad = self._bad_rows(out.filter(bad_mask), table, lines)
        good = out.filter(pc.invert(bad_mask)) if bad else out
        events = _events_table(good, self._message_ids(good), received_at)
        return Converted(_with_derived(self.project_id, events, received_at), bad)

    def _message_ids(self, good: pa.Table) -> pa.ChunkedArray:
        """The file's id where it has one, else `imp_<md5>:<n>` (n: the occurrence of
        that content in the file, counting this row)."""
        given, content = good["given_id"], good["content"]
        hashed = pc.is_valid(content)
        if not pc.any(hashed).as_py():
            return given
        numbers = np.zeros(good.num_rows, dtype=np.int64)
        mask = hashed.to_numpy(zero_copy_only=False)
        numbers[mask] = self.occurrences.number(
            keys_of_hex(content.filter(hashed).combine_chunks()))
        ids = pc.binary_join_element_wise(pc.binary_join_element_wise("imp_", content, ""),
                                          pa.array(numbers).cast(pa.string()), ":")
        return pc.coalesce(given, ids)

    def _bad_rows(self, bad: pa.Table, source: pa.Table, lines: pa.Array) -> list[BadRow]:
        rows, codes = bad[ROW].to_pylist(), bad[BAD].to_pylist()
        ts_rows = [r for r, c in zip(rows, codes, strict=True) if c == "bad_timestamp"]
        why: dict[int, str] = {}
        if ts_rows:  # why each timestamp was refused, by the same rules (timestamps.py)
            raw = source[self.cols["timestamp"]].take(pa.array(ts_rows, pa.int64()))
            why = dict(zip(ts_rows, self._timestamps.run(raw.combine_chunks(), "reason"),
                           strict=True))
        out = []
        for row, code in zip(rows, codes, strict=True):
            reason = REASONS[code]
            if code == "bad_timestamp":
                reason = timestamps.describe(why[row], source[self.cols["timestamp"]][row].as_py())
            elif code == "future_timestamp":
                raw = source[self.cols["timestamp"]][row].as_py()
                reason = f"{reason}: {str(raw)[:64]!r}"
            elif code == "bad_type":
                reason = f"{reason}, got {source[self.cols['type']][row].as_py()!r}"
            out.append(BadRow(lines[row].as_py(), reason))
        return out


def _with_constants(arrow_schema: pa.Schema, constants: dict[str, str]) -> pa.Schema:
    """The schema the expression sees: constant columns are text, replacing any of the file."""
    for name in constants:
        if name in arrow_schema.names:
            arrow_schema = arrow_schema.remove(arrow_schema.get_field_index(name))
        arrow_schema = arrow_schema.append(pa.field(name, pa.string()))
    return arrow_schema


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


def _events_table(out: pa.Table, message_ids: pa.ChunkedArray | pa.Array,
                  received_at: datetime) -> pa.Table:
    target = ARROW_SCHEMAS[schema.EVENTS]
    received = pa.repeat(pa.scalar(received_at, pa.timestamp("us")), out.num_rows)
    out = out.drop_columns([ROW, BAD, "given_id", "content"]).append_column(
        "received_at", received).append_column("message_id", message_ids)
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
