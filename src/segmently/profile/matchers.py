"""Matching events by name and property filters: the unit features and milestones are made of.

Property values are read from the JSON text of `properties` with strict types: a filter
compares numbers with numbers and strings with strings, so "9" never equals 9.
"""

from __future__ import annotations

from typing import Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import BaseModel, ConfigDict, Field, model_validator

FilterOp = Literal["eq", "ne", "in", "not_in", "contains", "regex", "gt", "ge", "lt", "le",
                   "between", "is_set", "is_not_set"]
Scalar = str | int | float | bool


class PropertyFilter(BaseModel):
    """`property op value`, e.g. {property: plan, op: in, value: [pro, team]}."""

    model_config = ConfigDict(extra="forbid")
    property: str = Field(min_length=1, max_length=256)
    op: FilterOp = "eq"
    value: Scalar | list[Scalar] | None = None

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
        return self


def _example(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


def typed_value(json_value: ir.JSONValue, like: Any) -> ir.Value:
    """The JSON value unwrapped to the type of the value it is compared with."""
    if isinstance(like, bool):
        return json_value.bool
    if isinstance(like, int | float):
        return json_value.float
    return json_value.str


def filter_expr(props: ir.JSONValue, f: PropertyFilter) -> ir.BooleanValue:
    raw = props[f.property]
    if f.op in ("is_set", "is_not_set"):  # a JSON null counts as not set
        is_set = raw.notnull() & (raw.cast("string") != "null")
        return is_set if f.op == "is_set" else ~is_set
    col = typed_value(raw, _example(f.value))
    v = f.value
    match f.op:
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
    raise AssertionError(f.op)


class EventMatcher(BaseModel):
    """An event name and the property filters an event must pass (all of them)."""

    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1, max_length=1024)
    where: list[PropertyFilter] = Field(default_factory=list)

    def expr(self, events: ir.Table) -> ir.BooleanValue:
        cond = events.event == self.event
        if self.where:
            props = events.properties.cast("json")
            for f in self.where:
                cond &= filter_expr(props, f).fill_null(False)
        return cond


def any_of(matchers: list[EventMatcher], events: ir.Table) -> ir.BooleanValue:
    cond: ir.BooleanValue = ibis.literal(False)
    for m in matchers:
        cond |= m.expr(events)
    return cond
