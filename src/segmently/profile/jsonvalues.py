"""Reading values out of JSON text columns (properties, trait values), on every engine.

One semantics everywhere, so that DuckDB, PostgreSQL and Spark agree:
- anything reads as a string: strings as themselves, other values as their JSON text
  (9 -> "9", true -> "true", {"a": 1} -> '{"a":1}'); a missing key or JSON null is NULL;
- a number, or a string that spells a number ("9", "-1.5e3"), reads as a number;
- "true"/"false" (JSON booleans or those strings) read as booleans.

Values that do not fit never make a read fail (one event sent with the public write key must
not break a project): a number is a finite float64 written in at most 100 digits before and
after the point with an exponent of at most two digits, or in the normalized form clients
and JSON encoders write (`d.ddde+307`, up to 20 decimals, exponent at most 307), with
optional spaces around it. Anything else (`1e999`, `NaN`, `Infinity`, 400 digits, a
boolean, an object) is not a number, so numeric conditions are false for it and aggregates
skip it. An integer has at most 18 digits (it fits int64). A NUL inside a string reads as
U+FFFD on every engine: PostgreSQL text cannot hold NUL, and its JSON functions refuse to
read ANY key of an object holding a `\u0000` escape, so on PostgreSQL the escape is
rewritten in the text before it is parsed (only when present: a `strpos` first).

Keys are matched literally, whatever they contain (`$browser`, `a.b`, quotes). Ibis's JSON
path access cannot do that (it parses keys as paths, drops `$`-prefixed keys, and fails on
quotes; on PySpark its UDF cannot read plain strings), so each engine's own key-as-argument
function is used, declared as an Ibis builtin: DuckDB `json_extract_string` with a JSON
Pointer, PostgreSQL `json_object_field_text`, Spark `from_json` to a string map. The key is
always a bound literal, never spliced into a path string the engine parses as SQL.
"""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

# Each alternative is finite and never underflows on any engine (PostgreSQL refuses both
# 1e400 and 1e-400 with an error; DuckDB and Spark turn them into inf and 0).
_PLAIN = r"-?[0-9]{1,100}(\.[0-9]{1,100})?([eE][-+]?[0-9]{1,2})?"  # |x| < 1e200
_NORMAL = r"-?[1-9](\.[0-9]{1,20})?[eE][-+]?([0-9]{1,2}|[12][0-9]{2}|30[0-7])"  # JSON encoders
NUMBER = rf"^ *({_PLAIN}|{_NORMAL}) *$"
INTEGER = r"^ *-?[0-9]{1,18} *$"  # fits int64
WHOLE = r"^ *-?[0-9]{1,18}(\.0{0,100})? *$"  # also 8.0: a whole number sent as a float
WRAP_KEY = "v"


@ibis.udf.scalar.builtin(name="json_extract_string")
def _duckdb_extract(json: str, pointer: str) -> str:  # type: ignore[empty-body]
    """DuckDB: the value at a JSON Pointer as text."""


@ibis.udf.scalar.builtin(name="json_object_field_text")
def _pg_extract(json: dt.JSON, key: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL: the value under one key as text (the function behind `->>`).

    Not json_extract_path_text: sqlglot rewrites that one and emits its key unescaped."""


@ibis.udf.scalar.builtin(name="from_json")
def _spark_from_json(json: str, schema: str) -> dt.Map(dt.string, dt.string):  # type: ignore[valid-type]
    """Spark: a JSON object parsed into a string -> string map."""


@ibis.udf.scalar.builtin(name="element_at")
def _spark_element_at(m: dt.Map(dt.string, dt.string), key: str) -> str:  # type: ignore[empty-body,valid-type]
    """Spark: a map's value for a key (NULL when absent)."""


@ibis.udf.scalar.builtin(name="regexp_replace")
def _pg_regexp_replace(text: str, pattern: str, replacement: str, flags: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL: regexp_replace with flags (Ibis's own re_replace has none)."""


@ibis.udf.scalar.builtin(name="chr")
def _chr(code: int) -> str:  # type: ignore[empty-body]
    """DuckDB and Spark: the character of a code point (a NUL cannot be a SQL literal)."""


# A `\u0000` escape: preceded by an even number of backslashes (`\\u0000` is a backslash
# and the text "u0000"). PostgreSQL's regular expressions have lookbehind.
_PG_NUL_ESCAPE = r"(?<!\\)((?:\\\\)*)\\u0000"
REPLACEMENT = "\ufffd"


def _engine(expr: ir.Expr) -> str:
    try:
        return ibis.get_backend(expr).name
    except Exception:  # noqa: BLE001 - unbound expressions: the default backend is DuckDB
        return "duckdb"


def _pointer(key: str) -> str:
    """RFC 6901: '~' and '/' are the only characters a JSON Pointer escapes."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _extract(text: ir.StringValue, key: str) -> ir.StringValue:
    match _engine(text):
        case "duckdb":
            return _duckdb_extract(text, _pointer(key)).replace(_chr(0), REPLACEMENT)
        case "postgres":
            clean = ibis.cases((text.contains("\\u0000"),
                                _pg_regexp_replace(text, _PG_NUL_ESCAPE, r"\1\\ufffd", "g")),
                               else_=text)
            return _pg_extract(clean.cast("json"), key)
        case "pyspark":
            found = _spark_element_at(_spark_from_json(text, "map<string,string>"), key)
            return found.replace(_chr(0), REPLACEMENT)
        case _:  # other Ibis backends: best effort through Ibis's own JSON access
            return text.cast("json")[key].str


def string_at(text: ir.StringValue, key: str | None = None) -> ir.StringValue:
    """The value at `key` of the JSON object in `text` (or of `text` itself) as a string."""
    if key is None:  # a bare JSON value: wrap it in an object to read it the same way
        return _extract(ibis.literal('{"' + WRAP_KEY + '":') + text + "}", WRAP_KEY)
    return _extract(text, key)


def as_number(s: ir.StringValue) -> ir.FloatingValue:
    """Text that spells a number in range (NUMBER) as float64, else NULL: never an error."""
    return ibis.cases((s.re_search(NUMBER), s.strip().cast("float64")),
                      else_=ibis.null("float64"))


def number_at(text: ir.StringValue, key: str | None = None) -> ir.FloatingValue:
    return as_number(string_at(text, key))


def int_at(text: ir.StringValue, key: str | None = None) -> ir.IntegerValue:
    """An integer, written as one or as a whole number with a decimal point (8.0, not
    8.5); else null. PostgreSQL will not cast "8.0" to an integer: it goes through float."""
    s = string_at(text, key)
    return ibis.cases((s.re_search(INTEGER), s.strip().cast("int64")),
                      (s.re_search(WHOLE), s.strip().cast("float64").cast("int64")),
                      else_=ibis.null("int64"))


def bool_at(text: ir.StringValue, key: str | None = None) -> ir.BooleanValue:
    s = string_at(text, key)
    return ibis.cases((s == "true", True), (s == "false", False), else_=ibis.null("boolean"))


def is_set(text: ir.StringValue, key: str) -> ir.BooleanValue:
    """The key is present with a non-null value."""
    return string_at(text, key).notnull()


ISO_INSTANT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"


def instant_at(text: ir.StringValue, key: str | None = None) -> ir.StringValue:
    """An ISO date or timestamp ("2026-03-01", "2026-03-01T10:00:00Z") as sortable
    'YYYY-MM-DD HH:MM:SS' text, else NULL. Text, not a cast: a malformed date is simply not
    a date on every engine (PostgreSQL has no TRY_CAST, Spark's ANSI casts raise)."""
    s19 = string_at(text, key).substr(0, 19).replace("T", " ")
    padded = ibis.cases((s19.length() == 10, s19.concat(" 00:00:00")), else_=s19)
    return ibis.cases((padded.re_search(ISO_INSTANT), padded), else_=ibis.null("string"))
