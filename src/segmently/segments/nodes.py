"""The lowered form of a rule: `Node`s, and the words explain builds its sentences from.

Every condition kind's lowering (segments/kinds/) returns a Node; evaluate.py selects its
`truth`, explain.py its `observed` values and `sentence`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from segmently.segments.conditions import EventCondition

Observed = Callable[[ir.Table], dict[str, ir.Value]]
Sentence = Callable[[dict[str, Any]], str]


@dataclass
class Node:
    """One node of a lowered rule: how to compute it, and how to say what it found."""

    kind: str
    label: str  # the rule in words, e.g. "report_viewed at least 5 times in the last 30 days"
    truth: Callable[[ir.Table], ir.BooleanValue]
    observed: Observed = lambda t: {}  # noqa: E731
    sentence: Sentence = lambda obs: ""  # noqa: E731
    children: list[Node] = field(default_factory=list)


def _and(values: list[ir.BooleanValue], empty: bool) -> ir.BooleanValue:
    """AND (empty=True) or OR of the values, as a balanced tree: a chain of 500 would be an
    expression 500 deep, past what the compilers recurse through."""
    if not values:
        return ibis.literal(empty)
    while len(values) > 1:
        pairs = [(a & b) if empty else (a | b)
                 for a, b in zip(values[::2], values[1::2], strict=False)]
        values = pairs + values[len(pairs) * 2:]
    return values[0]


def _times(n: Any) -> str:
    return "once" if n == 1 else f"{n} times"


def _event_label(c: EventCondition) -> str:
    where = " and ".join(f"{f.property} {f.op} {json.dumps(f.value)}" if f.value is not None
                         else f"{f.property} {f.op}" for f in c.where)
    return f"{c.event}" + (f" (where {where})" if where else "")


def _compare_value(col: ir.Value, op: str, value: Any) -> ir.BooleanValue:
    if op == "between":
        return col.between(value[0], value[1])
    return {"eq": col.__eq__, "ne": col.__ne__, "gt": col.__gt__, "ge": col.__ge__,
            "lt": col.__lt__, "le": col.__le__}[op](value)


_OP_WORDS = {"eq": "equal to", "ne": "not equal to", "gt": "above", "ge": "at least",
             "lt": "below", "le": "at most", "between": "between"}


def _days_ago(as_of: datetime, instant: datetime | None) -> str:
    if instant is None:
        return "never"
    days = int((as_of - instant).total_seconds() // 86_400)
    return f"{days} day{'' if days == 1 else 's'} ago ({instant.isoformat(sep=' ')})"
