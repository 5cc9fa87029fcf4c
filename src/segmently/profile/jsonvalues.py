"""Reading values out of JSON text columns (properties, trait values), on every engine.

One semantics everywhere, so that DuckDB, PostgreSQL and Spark agree:
- anything reads as a string: strings as themselves, other values as their JSON text
  (9 -> "9", true -> "true", {"a": 1} -> '{"a":1}'); a missing key or JSON null is NULL;
- a number, or a string that spells a number ("9", "-1.5e3"), reads as a number;
- "true"/"false" (JSON booleans or those strings) read as booleans.

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

NUMBER = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"
INTEGER = r"^\s*-?[0-9]+\s*$"
WHOLE = r"^\s*-?[0-9]+(\.0*)?\s*$"  # also 8.0: a whole number sent as a float
WRAP_KEY = "v"


@ibis.udf.scalar.builtin(name="json_extract_string")
def _duckdb_extract(json: str, pointer: str) -> str:  # type: ignore[empty-body]
    """DuckDB: the value at a JSON Pointer as text."""


@ibis.udf.scalar.builtin(name="json_object_field_text")
def _pg_extract(json: dt.JSON, key: str) -> str:  # type: ignore[empty-body]
    """PostgreSQL: the value under one key as text (the function behind `->>`).

    Not json_extract_path_text: sqlglot rewrites that one and emits its key unescaped."""


@ibis.udf.scalar.builtin(name="from_json")
def _spark_from_json(json: str, schema: str) -> dt.Map(dt.string, dt.string):  # type: ignore[empty-body,valid-type]
    """Spark: a JSON object parsed into a string -> string map."""


@ibis.udf.scalar.builtin(name="element_at")
def _spark_element_at(m: dt.Map(dt.string, dt.string), key: str) -> str:  # type: ignore[empty-body,valid-type]
    """Spark: a map's value for a key (NULL when absent)."""


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
            return _duckdb_extract(text, _pointer(key))
        case "postgres":
            return _pg_extract(text.cast("json"), key)
        case "pyspark":
            return _spark_element_at(_spark_from_json(text, "map<string,string>"), key)
        case _:  # other Ibis backends: best effort through Ibis's own JSON access
            return text.cast("json")[key].str


def string_at(text: ir.StringValue, key: str | None = None) -> ir.StringValue:
    """The value at `key` of the JSON object in `text` (or of `text` itself) as a string."""
    if key is None:  # a bare JSON value: wrap it in an object to read it the same way
        return _extract(ibis.literal('{"' + WRAP_KEY + '":') + text + "}", WRAP_KEY)
    return _extract(text, key)


def number_at(text: ir.StringValue, key: str | None = None) -> ir.FloatingValue:
    s = string_at(text, key)
    return ibis.cases((s.re_search(NUMBER), s.cast("float64")), else_=ibis.null("float64"))


def int_at(text: ir.StringValue, key: str | None = None) -> ir.IntegerValue:
    """An integer, written as one or as a whole number with a decimal point (8.0, not
    8.5); else null. PostgreSQL will not cast "8.0" to an integer: it goes through float."""
    s = string_at(text, key)
    return ibis.cases((s.re_search(INTEGER), s.cast("int64")),
                      (s.re_search(WHOLE), s.cast("float64").cast("int64")),
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
