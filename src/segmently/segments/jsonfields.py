"""Reading one key of a JSON document safely, and comparing it with a rule's value.

Ibis turns `json[key]` into a JSON *path* (sqlglot parses it): `a.b` reads the nested key,
`$browser` reads `browser`, and a quote in the key fails to compile. Property names are
user data, so we never go through a path: DuckDB gets a JSON pointer (`/key`, where only
`~` and `/` are escaped and the pointer travels as an ordinary string literal) and
PostgreSQL `jsonb_extract_path(doc, key)` with the key as a literal argument.
"""

from __future__ import annotations

from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from segmently.profile.matchers import PropertyFilter
from segmently.segments.errors import RuleError

NUMBER = r"^\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"


@ibis.udf.scalar.builtin(name="json_extract")
def _duckdb_json_extract(doc: dt.JSON, pointer: str) -> dt.JSON:  # type: ignore[empty-body]
    """DuckDB's json_extract with a JSON pointer."""


def json_doc(text: ir.StringValue, engine: str) -> ir.JSONValue:
    """Parse JSON text once (jsonb on PostgreSQL, whose key access takes plain literals)."""
    return text.cast(dt.JSON(binary=True) if engine == "postgres" else dt.json)


def json_field(doc: ir.JSONValue, key: str, engine: str) -> ir.JSONValue:
    if engine == "duckdb":
        return _duckdb_json_extract(doc, "/" + key.replace("~", "~0").replace("/", "~1"))
    if engine == "postgres":
        return doc[key]
    if any(c in key for c in "'\"\\.[]$*"):  # other engines: only plain keys are safe
        raise RuleError(f"property {key!r}: quotes, dots, brackets, $ and * are not "
                        f"supported in property names on {engine}")
    return doc[key]


def is_set(value: ir.JSONValue) -> ir.BooleanValue:
    """Present and not JSON null."""
    return value.notnull() & (value.cast("string") != "null")


def as_string(value: ir.JSONValue) -> ir.StringValue:
    """Strings as themselves, other values as their JSON text (9 -> "9"), null as NULL
    (the reading profile/jsonvalues.py documents, so features and segments agree)."""
    raw = value.cast("string")
    return value.str.coalesce(ibis.cases((raw != "null", raw), else_=ibis.null("string")))


def as_number(value: ir.JSONValue) -> ir.FloatingValue:
    """A number, or a string spelling one ("9"), as float64; anything else NULL."""
    s = as_string(value)
    return ibis.cases((s.re_search(NUMBER), s.cast("float64")), else_=ibis.null("float64"))


def as_bool(value: ir.JSONValue) -> ir.BooleanValue:
    s = as_string(value)
    return ibis.cases((s == "true", True), (s == "false", False), else_=ibis.null("boolean"))


def typed(value: ir.JSONValue, like: Any) -> ir.Value:
    """The value read as the type of what it is compared with."""
    if isinstance(like, bool):
        return as_bool(value)
    if isinstance(like, int | float):
        return as_number(value)
    return as_string(value)


def compare(value: ir.JSONValue, op: str, target: Any) -> ir.BooleanValue:
    """`value op target`, the value read as the target's type; NULL when the value is
    missing or does not read as that type (callers fill it as false)."""
    if op in ("is_set", "is_not_set"):
        return is_set(value) if op == "is_set" else ~is_set(value)
    example = target[0] if isinstance(target, list | tuple) else target
    col = typed(value, example)
    match op:
        case "eq":
            return col == target
        case "ne":
            return col != target
        case "in":
            return col.isin(target)
        case "not_in":
            return ~col.isin(target)
        case "contains":
            return col.contains(target)
        case "regex":
            return col.re_search(target)
        case "gt":
            return col > target
        case "ge":
            return col >= target
        case "lt":
            return col < target
        case "le":
            return col <= target
        case "between":
            return col.between(target[0], target[1])
    raise AssertionError(op)


def filter_expr(props: ir.JSONValue, f: PropertyFilter, engine: str) -> ir.BooleanValue:
    return compare(json_field(props, f.property, engine), f.op, f.value).fill_null(False)


def iso_instant(value: ir.JSONValue) -> ir.StringValue:
    """A JSON string holding an ISO date or timestamp as 'YYYY-MM-DD HH:MM:SS' text, else
    NULL. Compared as text against a formatted instant: no cast, so a malformed date is
    simply not a date (PostgreSQL has no TRY_CAST)."""
    s = value.str
    s19 = s.substr(0, 19).replace("T", " ")
    padded = ibis.cases((s19.length() == 10, s19.concat(" 00:00:00")), else_=s19)
    ok = padded.re_search(r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$")
    return ibis.cases((ok, padded), else_=ibis.null("string"))
