"""How `segmently import` reads a timestamp: the one definition of the rules.

Both import paths run these same Ibis expressions in an in-memory DuckDB: tables column by
column (`tabular.py`, inside the batch's conversion), JSON lines a chunk of values at once
(`TimestampParser`, used by `formats.py` and the vendor mappings). So a value reads the
same in a CSV cell, a Parquet column and a JSON line, and there is no second
implementation to drift from this one.

A value is read as (after trimming spaces):

- a native timestamp or date (Parquet): as it is, zoned ones converted to UTC;
- ISO 8601 text: `YYYY-MM-DD`, optionally `T` or a space and `HH:MM`, `HH:MM:SS` or
  `HH:MM:SS.f` (1 to 9 digits, truncated to microseconds), optionally `Z` or an offset
  `+HH`, `+HHMM`, `+HH:MM`; no offset means UTC. Years 1000 to 9999; a date or time that
  does not exist (`2024-02-30`, `25:00`) is refused, never rolled over;
- a number (JSON or Parquet numbers, or text of digits with an optional fraction), by
  magnitude, so that each unit covers the instants after 1973-03-03 09:46:40 UTC:
  from 10^8 up to 10^11 epoch seconds, up to 10^14 epoch milliseconds, up to 10^17 epoch
  microseconds;
- an 8-digit whole number (`19970101`, digit text or an integer column) as a compact
  `YYYYMMDD` date: below 10^8 it cannot be epoch seconds after 1973, so it is not
  ambiguous; one that is not a valid date is refused;
- with `--timestamp-format FORMAT`: text (and whole numbers, by their digits) read with
  that strptime format only (DuckDB's `strptime` directives; `%z` reads `+HH:MM`/`+HHMM`
  offsets, converted to UTC; without it the time is UTC).

Anything else is refused with a reason (never guessed): other text, numbers below 10^8
that are not such a date (`1234567`: seconds in 1970?), a fraction on an 8-digit number,
negative numbers (before 1970), numbers of 10^17 and more, NaN, booleans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from segmently.collect.errors import InputError

SECONDS_FROM = 10**8  # 1973-03-03T09:46:40Z in seconds
MILLIS_FROM = 10**11  # the same instant in milliseconds (10^11 s would be year 5138)
MICROS_FROM = 10**14
MICROS_UNTIL = 10**17
COMPACT_FROM = 10**7  # 8-digit whole numbers: YYYYMMDD

_YEAR = "[1-9][0-9]{3}"
_DATE = f"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?"
_OFFSET = "(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)"
ISO = f"^{_DATE}([T ]{_TIME}{_OFFSET}?)?$"
INTEGER = "^[0-9]+$"
DECIMAL = "^[0-9]+\\.[0-9]+$"
NEGATIVE = "^-[0-9]+(\\.[0-9]+)?$"

# Why a value was refused: code -> sentence (completed with the value by `describe`).
REASONS = {
    "missing": "is missing",
    "unrecognized": "is not ISO 8601 (2024-01-05T10:00:00Z), a date, YYYYMMDD or epoch "
                    "seconds/milliseconds/microseconds; pass --timestamp-format for other forms",
    "invalid": "is not a date and time that exists",
    "too_small": "is ambiguous: a number below 100000000 is not read as epoch seconds (it "
                 "would be before 1973-03-03) and only an 8-digit whole number is a YYYYMMDD date",
    "not_a_date": "has 8 digits but is not a valid YYYYMMDD date (and is too small for epoch "
                  "seconds)",
    "negative": "is negative: epoch values before 1970 are not read",
    "too_large": "is 10^17 or more, too large for epoch microseconds",
    "no_match": "does not match --timestamp-format",
    "bad_type": "must be text or a number",
}


class TimestampRules(BaseModel):
    """What the import was told about its timestamps (only the strptime format today)."""

    model_config = ConfigDict(frozen=True)
    format: str | None = None


@ibis.udf.scalar.builtin(name="try_strptime")
def _strptime_naive(text: str, fmt: str) -> dt.Timestamp():  # type: ignore[valid-type]
    """DuckDB: text read with a strptime format, NULL when it does not match."""


@ibis.udf.scalar.builtin(name="try_strptime")
def _strptime_zoned(text: str, fmt: str) -> dt.Timestamp(timezone="UTC"):  # type: ignore[valid-type]
    """DuckDB: the same with `%z` in the format, which makes a TIMESTAMPTZ."""


_EPOCH = ibis.timestamp("1970-01-01 00:00:00")
_NULL_TS = ibis.null("timestamp")


def _from_micros(micros: ir.IntegerValue) -> ir.TimestampValue:
    return _EPOCH + micros.as_interval("us")


def _compact(v: ir.IntegerValue) -> ir.TimestampValue:
    """An 8-digit whole number as YYYYMMDD (NULL when that date does not exist)."""
    text = (v // 10000).cast("string") + "-" + ((v // 100) % 100).cast("string").lpad(2, "0") \
        + "-" + (v % 100).cast("string").lpad(2, "0")
    return text.try_cast("date").cast("timestamp")


def _whole(v: ir.IntegerValue) -> ir.TimestampValue:
    micros = ibis.cases(
        (v >= MICROS_UNTIL, ibis.null("int64")),
        (v >= MICROS_FROM, v),
        (v >= MILLIS_FROM, v * 1000),
        (v >= SECONDS_FROM, v * 1_000_000),
        else_=ibis.null("int64"),
    )
    return ibis.cases(
        ((v >= COMPACT_FROM) & (v < SECONDS_FROM), _compact(v)),
        else_=_from_micros(micros),
    )


def _whole_reason(v: ir.IntegerValue) -> ir.StringValue:
    return ibis.cases(
        (v < 0, "negative"),
        (v < COMPACT_FROM, "too_small"),
        (v < SECONDS_FROM, "not_a_date"),
        (v >= MICROS_UNTIL, "too_large"),
        else_="invalid",
    )


def _fraction(v: ir.FloatingValue) -> ir.TimestampValue:
    micros = ibis.cases(
        (v.isnan() | (v >= MICROS_UNTIL), ibis.null("float64")),
        (v >= MICROS_FROM, v),
        (v >= MILLIS_FROM, v * 1000),
        (v >= SECONDS_FROM, v * 1_000_000),
        else_=ibis.null("float64"),
    )
    return _from_micros(micros.round().cast("int64"))


def _fraction_reason(v: ir.FloatingValue) -> ir.StringValue:
    return ibis.cases(
        (v.isnan(), "missing"),
        (v < 0, "negative"),
        (v < SECONDS_FROM, "too_small"),
        (v >= MICROS_UNTIL, "too_large"),
        else_="invalid",
    )


def _formatted(text: ir.StringValue, fmt: str) -> ir.TimestampValue:
    if "%z" in fmt:
        return _strptime_zoned(text, fmt).cast("timestamp")
    return _strptime_naive(text, fmt)


def _text(text: ir.StringValue) -> ir.TimestampValue:
    return ibis.cases(
        (text.re_search(INTEGER), _whole(text.try_cast("int64"))),
        (text.re_search(DECIMAL), _fraction(text.try_cast("float64"))),
        (text.re_search(ISO), text.try_cast("timestamp('UTC')").cast("timestamp")),
        else_=_NULL_TS,
    )


def _text_reason(text: ir.StringValue) -> ir.StringValue:
    whole = text.try_cast("int64")
    return ibis.cases(
        (text.isnull() | (text == ""), "missing"),
        (text.re_search(INTEGER), ibis.cases((whole.isnull(), "too_large"),
                                             else_=_whole_reason(whole))),
        (text.re_search(DECIMAL), _fraction_reason(text.try_cast("float64"))),
        (text.re_search(NEGATIVE), "negative"),
        (text.re_search(ISO), "invalid"),
        else_="unrecognized",
    )


def _trimmed(col: ir.Value) -> ir.StringValue:
    text = col.cast("string").strip()
    return ibis.cases((text == "", ibis.null("string")), else_=text)


def parse(col: ir.Value, rules: TimestampRules) -> ir.TimestampValue:
    """Naive UTC timestamp of any accepted column, NULL where the value is missing or
    refused (`reason` says why)."""
    dtype = col.type()
    if dtype.is_timestamp() or dtype.is_date():
        return col.cast("timestamp")
    if rules.format is not None:
        if dtype.is_floating() or dtype.is_decimal():
            return _NULL_TS
        return _formatted(_trimmed(col), rules.format)
    if dtype.is_integer():
        return _whole(col.cast("int64"))
    if dtype.is_floating() or dtype.is_decimal():
        return _fraction(col.cast("float64"))
    return _text(_trimmed(col))


def reason(col: ir.Value, rules: TimestampRules) -> ir.StringValue:
    """The code (a key of REASONS) of why `parse` gave NULL for a value."""
    dtype = col.type()
    if dtype.is_timestamp() or dtype.is_date():
        return ibis.literal("missing")
    if rules.format is not None:
        if dtype.is_floating() or dtype.is_decimal():
            return ibis.cases((col.isnull(), "missing"), else_="no_match")
        return ibis.cases((_trimmed(col).isnull(), "missing"), else_="no_match")
    if dtype.is_integer():
        return ibis.cases((col.isnull(), "missing"), else_=_whole_reason(col.cast("int64")))
    if dtype.is_floating() or dtype.is_decimal():
        return ibis.cases((col.isnull(), "missing"),
                          else_=_fraction_reason(col.cast("float64")))
    return _text_reason(_trimmed(col).fill_null(""))


def describe(code: str, value: Any, where: str = "timestamp") -> str:
    """A bad row's sentence: `timestamp '19970101.5' is ambiguous: ...`."""
    if code in ("missing", "bad_type") or value is None:
        return f"{where} {REASONS[code]}"
    return f"{where} {str(value)[:64]!r} {REASONS[code]}"


def check_format(fmt: str) -> None:
    """Refuse a --timestamp-format DuckDB cannot use, before any row is read."""
    if "%" not in fmt:
        raise InputError(f"--timestamp-format {fmt!r} has no % directive (e.g. %d/%m/%Y %H:%M)",
                         code="bad_format")
    con = duckdb.connect()
    try:
        con.execute("SELECT try_strptime('', ?)", [fmt])
    except duckdb.Error as exc:
        raise InputError(f"--timestamp-format {fmt!r} is not a strptime format: "
                         f"{str(exc).splitlines()[0]}", code="bad_format") from None
    finally:
        con.close()


_VALUE = "v"
_TABLE = "segmently_timestamps"


class TimestampParser:
    """Reads timestamps held as Python values (JSON lines) with the rules above, a chunk
    of values per DuckDB query; `reasons` explains the refused ones. One per import."""

    def __init__(self, rules: TimestampRules, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.rules = rules
        self._own = con is None
        self.con = con if con is not None else duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        self._sql: dict[tuple[pa.DataType, str], str] = {}

    def close(self) -> None:
        if self._own:
            self.con.close()

    def _compiled(self, typ: pa.DataType, what: str) -> str:
        key = (typ, what)
        if key not in self._sql:
            t = ibis.table(ibis.Schema.from_pyarrow(pa.schema([(_VALUE, typ)])), name=_TABLE)
            column = t[_VALUE]
            expr = parse(column, self.rules) if what == "parse" else reason(column, self.rules)
            self._sql[key] = str(ibis.to_sql(t.select(out=expr), dialect="duckdb"))
        return self._sql[key]

    def run(self, values: pa.Array, what: str) -> list[Any]:
        """`parse` (datetimes or None) or `reason` (codes) of an Arrow array of values."""
        if len(values) == 0:
            return []
        self.con.register(_TABLE, pa.table({_VALUE: values}))
        try:
            out = self.con.execute(self._compiled(values.type, what)).to_arrow_table()
        finally:
            self.con.unregister(_TABLE)
        return out["out"].to_pylist()

    def parse_values(self, values: Sequence[Any]) -> list[datetime | str]:
        """Each value's naive UTC datetime, or the reason code it was refused for."""
        out: list[datetime | str] = ["missing"] * len(values)
        groups: dict[str, tuple[list[int], list[Any]]] = {
            "text": ([], []), "int": ([], []), "float": ([], [])}
        for i, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, datetime | date):  # native (Parquet rows): as it is
                out[i] = _native(value)
            elif isinstance(value, bool) or not isinstance(value, str | int | float):
                out[i] = "bad_type"
            elif isinstance(value, str):
                _add(groups["text"], i, value)
            elif isinstance(value, int):  # beyond int64: its digits, read as text is
                _add(groups["int" if -2**63 <= value < 2**63 else "text"], i,
                     value if -2**63 <= value < 2**63 else str(value))
            elif math.isnan(value) or math.isinf(value):
                out[i] = "missing" if math.isnan(value) else "too_large"
            else:
                _add(groups["float"], i, value)
        types = {"text": pa.string(), "int": pa.int64(), "float": pa.float64()}
        for kind, (index, raw) in groups.items():
            if not index:
                continue
            array = pa.array(raw, types[kind])
            parsed = self.run(array, "parse")
            refused = [j for j, ts in enumerate(parsed) if ts is None]
            codes = self.run(array.take(pa.array(refused, pa.int64())), "reason") if refused else []
            for j, ts in enumerate(parsed):
                if ts is not None:
                    out[index[j]] = ts
            for j, code in zip(refused, codes, strict=True):
                out[index[j]] = code
        return out


def _native(value: date) -> datetime:
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def _add(group: tuple[list[int], list[Any]], i: int, value: Any) -> None:
    group[0].append(i)
    group[1].append(value)
