"""A resolved window (`windows.Span`) as Ibis: a per-user instant inside it, and the
resolved events inside it. Shared by the condition kinds of `segments/kinds/` whose value
is an instant (first_performed, reached_milestone) or that read events themselves in a
side table (sequence, survey_answer, restarted)."""

from __future__ import annotations

from datetime import datetime

import ibis
import ibis.expr.types as ir

from segmently.segments.windows import Span
from segmently.store import Store
from segmently.store.views import Persons, resolved_events


def in_span(first: ir.Value, span: Span, first_seen: ir.Value) -> ir.BooleanValue:
    """A per-user instant (NULL: never) falls inside a resolved window."""
    cond = first.notnull()
    if span.first_seen_days is not None:
        cond &= first < first_seen + ibis.interval(days=span.first_seen_days)
    if span.start is not None:
        cond &= first >= ibis.literal(span.start, type="timestamp")
    if span.end is not None:
        cond &= first < ibis.literal(span.end, type="timestamp")
    return cond.fill_null(False)


def events_in_span(store: Store, project_id: str, as_of: datetime, person: Persons,
                   span: Span, known_at: datetime | None = None) -> ir.Table:
    """The resolved events before as_of known at known_at inside a window (optionally of
    one person)."""
    e = resolved_events(store, project_id, as_of, person, known_at)
    if span.first_seen_days is not None:
        e = e.mutate(_first=e.timestamp.min().over(group_by=e.person_id))
        e = e.filter(e.timestamp < e._first + ibis.interval(days=span.first_seen_days))
    if span.start is not None:
        e = e.filter(e.timestamp >= ibis.literal(span.start, type="timestamp"))
    if span.end is not None:
        e = e.filter(e.timestamp < ibis.literal(span.end, type="timestamp"))
    return e
