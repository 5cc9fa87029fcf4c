"""Matching events by name and property filters: the unit features and milestones are made of.

Property values are read from the JSON text of `properties` as the filter's value asks:
numerically for a number, as text for a string (profile/jsonvalues.py has the rules).
Used by the vocabulary's features and milestones (`config.py`, `adoption.py`) and by the
event conditions' filters (`segments/kinds/`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, model_validator

from segmently.profile.jsonvalues import bool_at, number_at, string_at
from segmently.profile.regexes import RegexError, check_regex

FilterOp = Literal["eq", "ne", "in", "not_in", "contains", "regex", "gt", "ge", "lt", "le",
                   "between", "is_set", "is_not_set"]
MAX_TEXT = 1024  # characters of one value a rule compares with
MAX_VALUES = 1000  # values of one `in` list
# Values every engine can hold as a literal: int64, finite float64, text of bounded length.
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Scalar = Text | Int64 | Finite | bool
Values = Annotated[list[Scalar], Field(max_length=MAX_VALUES)]


class PropertyFilter(BaseModel):
    """`property op value`, e.g. {property: plan, op: in, value: [pro, team]}."""

    model_config = ConfigDict(extra="forbid")
    property: str = Field(min_length=1, max_length=256)
    op: FilterOp = "eq"
    value: Scalar | Values | None = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> PropertyFilter:
        if self.op in ("is_set", "is_not_set"):
            return self
        if self.op in ("in", "not_in", "between"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"op {self.op!r} needs a non-empty list as value")
            if self.op == "between" and len(self.value) != 2:
                raise ValueError("op 'between' needs [low, high]")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a single value")
        if self.op in ("contains", "regex") and not isinstance(self.value, str):
            raise ValueError(f"op {self.op!r} needs a string value")
        if self.op == "regex":
            try:
                check_regex(str(self.value))
            except RegexError as exc:
                raise ValueError(f"value: {exc} (docs/rules.md, Regular expressions)") from None
        return self


MAX_FILTERS = 32  # property filters on one event
Filters = Annotated[list[PropertyFilter], Field(max_length=MAX_FILTERS)]


def _example(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def typed_value(props: ir.StringValue, key: str | None, like: Any) -> ir.Value:
    """The property unwrapped to the type of the value it is compared with."""
    if isinstance(like, bool):
        return bool_at(props, key)
    if isinstance(like, int | float):
        return number_at(props, key)
    return string_at(props, key)


def filter_expr(props: ir.StringValue, f: PropertyFilter) -> ir.BooleanValue:
    """`props` is JSON text (an events.properties column)."""
    return compare(props, f.property, f.op, f.value)


def compare(text: ir.StringValue, key: str | None, op: str, v: Any) -> ir.BooleanValue:
    """`value op v`, the value at `key` of the JSON in `text` (key None: `text` is itself one
    JSON value, e.g. a trait) read as v's type; NULL when it does not read as that type."""
    if op in ("is_set", "is_not_set"):  # a JSON null counts as not set
        present = string_at(text, key).notnull()
        return present if op == "is_set" else ~present
    col = typed_value(text, key, _example(v))
    match op:
        case "eq":
            return col == v
        case "ne":
            return col != v
        case "in":
            return col.isin(v)
        case "not_in":
            return ~col.isin(v)
        case "contains":
            return col.contains(v)
        case "regex":
            return col.re_search(v)
        case "gt":
            return col > v
        case "ge":
            return col >= v
        case "lt":
            return col < v
        case "le":
            return col <= v
        case "between":
            return col.between(v[0], v[1])
    raise AssertionError(op)


class EventMatcher(BaseModel):
    """An event name and the property filters an event must pass (all of them)."""

    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1, max_length=1024)
    where: Filters = Field(default_factory=list)

    def expr(self, events: ir.Table) -> ir.BooleanValue:
        cond = events.event == self.event
        for f in self.where:
            cond &= filter_expr(events.properties, f).fill_null(False)
        return cond


def any_of(matchers: Iterable[EventMatcher], events: ir.Table) -> ir.BooleanValue:
    cond: ir.BooleanValue = ibis.literal(False)
    for m in matchers:
        cond |= m.expr(events)
    return cond
