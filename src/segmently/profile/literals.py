"""Typed literals. PostgreSQL reads a bare 0.0 as numeric (Decimal in results), and Ibis
emits float64 literals bare and elides casts it believes redundant; a cast to the
non-nullable float64 type is the one it keeps, so float literals are written that way."""

from __future__ import annotations

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir


def f64(value: float) -> ir.FloatingScalar:
    return ibis.literal(float(value)).cast(dt.Float64(nullable=False))
