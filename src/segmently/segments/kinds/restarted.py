"""The `restarted` condition kind: performed the event again after going without it.

    {kind: restarted, event: report_viewed, gap_days: 14}                (the last 30 days)
    {kind: restarted, event: report_viewed, where: [...], gap_days: 14, window: {last: 7}}

PostHog's cohorts have it as "restarted performing event": performed it in a recent
period, not in the period before that, and at some time before (three fixed periods).
Here the gap is measured between consecutive events instead, so a return counts whatever
the calendar: the user's matching events are ordered in time, each event's gap is the time
since the previous matching one, and a return is an event inside the window whose gap is
at least `gap_days` days. It lowers to one side table (aggregates.py `join`): the gap of
every matching event is a `lag` over the user's events (a window function: no as-of join,
which Spark lacks), in whole epoch seconds (the portable day arithmetic), then one
aggregate per user of the events inside the window. Everything here is this one file:
model, lowering, sentence, builder hints and docs row (registry.py); tests in
tests/segments/test_restarted.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import ibis
import ibis.expr.types as ir
from pydantic import Field

from segmently.profile.matchers import EventMatcher
from segmently.segments.conditions import EventCondition
from segmently.segments.nodes import Node, _event_label, _times
from segmently.segments.registry import register
from segmently.segments.windows import LastWindow, Window, describe, quantity, span_of
from segmently.store import Store
from segmently.store.views import Persons, resolved_events

if TYPE_CHECKING:
    from segmently.segments.lower import Lowerer

DAY = 86_400  # seconds


class Restarted(EventCondition):
    """Performed the event again after going without it for at least `gap_days` days: some
    matching event inside the window (the return) comes at least `gap_days` x 24 hours
    after the user's previous matching event, which may lie before the window.

    Matching: the event name and every `where` filter, as in `performed`. The previous
    event is the latest matching one before the return (at any time before as_of); a first
    ever event is no return, and two events at the same instant are no gap. The window
    (default: the last 30 days) bounds only the return. Times compare to the second; no
    matching event in the window, or none with such a gap before it, is false.
    """

    kind: Literal["restarted"]
    gap_days: int = Field(ge=1, le=100_000)
    window: Window = LastWindow(last=30)


def _days(seconds: Any) -> str:
    """A gap in words: whole days as such ("21 days"), else floored to a tenth, so a gap
    one second short of 14 days reads "13.9 days", never "14.0"."""
    seconds = int(seconds)
    if seconds % DAY == 0:
        return quantity(seconds // DAY, "days")
    return f"{seconds * 10 // DAY / 10:.1f} days"


def lower_restarted(lw: Lowerer, c: Restarted) -> Node:
    span = span_of(c.window, lw.as_of)
    key = ("restarted", c.model_dump_json(exclude={"window"}), span)
    col = lw.join_column(key)
    events, back, gap, longest = col + "_n", col + "_at", col + "_gap", col + "_long"
    need_seconds = c.gap_days * DAY

    def build(store: Store, project_id: str, person: Persons) -> ir.Table:
        e = resolved_events(store, project_id, lw.as_of, person, lw.aggs.known_at)
        if span.first_seen_days is not None:  # first seen: the user's first event of any kind
            e = e.mutate(_first=e.timestamp.min().over(group_by=e.person_id))
        m = e.filter(EventMatcher(event=c.event, where=c.where).expr(e))
        m = m.mutate(_s=m.timestamp.epoch_seconds())
        previous = m._s.lag().over(ibis.window(group_by=m.person_id, order_by=m.timestamp))
        m = m.mutate(_gap=m._s - previous)  # NULL for a user's first matching event
        if span.start is not None:
            m = m.filter(m.timestamp >= ibis.literal(span.start, type="timestamp"))
        if span.end is not None:
            m = m.filter(m.timestamp < ibis.literal(span.end, type="timestamp"))
        if span.first_seen_days is not None:
            m = m.filter(m.timestamp < m._first + ibis.interval(days=span.first_seen_days))
        ok = (m._gap >= need_seconds).fill_null(False)
        return m.group_by(_p=m.person_id).aggregate(**{
            events: m.count(),
            back: m.timestamp.max(where=ok),  # the latest return
            gap: m._gap.argmax(m._s, where=ok),  # its gap (a tie's other events have 0)
            longest: m._gap.max(),  # the longest gap before any event in the window
        })

    lw.aggs.join(key, build)
    name, win = _event_label(c), describe(c.window)
    need = f"a gap of at least {quantity(c.gap_days, 'days')}"

    def sentence(o: dict[str, Any]) -> str:
        if o["returned_at"] is not None:
            return (f"{name} again on {o['returned_at'].date().isoformat()} after "
                    f"{_days(o['gap_seconds'])} without; needs {need}")
        count = o["events"] or 0
        if count == 0:
            seen = f"{name} {_times(0)} {win}"
        elif o["longest_gap_seconds"] is None:
            seen = f"{name} once {win}, never before"
        else:
            seen = (f"{name} {_times(count)} {win}, at most "
                    f"{_days(o['longest_gap_seconds'])} after the previous one")
        return f"{seen}; needs {need} before one {win}"

    return Node("restarted", f"{name} again {win} after {need}",
                lambda t: t[back].notnull(),
                lambda t: {"returned_at": t[back], "gap_seconds": t[gap],
                           "longest_gap_seconds": t[longest],
                           "events": t[events].fill_null(0)},
                sentence)


register(Restarted, lower_restarted, family="events",
         fields="`event`, `where`, `gap_days`, `window` (default `{last: 30}`)",
         true_when="back after a gap: a matching event inside the window (the return) comes "
                   "at least `gap_days` x 24 hours after the user's previous matching event, "
                   "which may lie before the window (a first ever event, or one at the same "
                   "instant as the previous, is no return). PostHog's \"restarted performing "
                   "event\", with the gap measured between events rather than fixed periods",
         example={"kind": "restarted", "event": "purchase", "gap_days": 1,
                  "where": [{"property": "amount", "op": "ge", "value": 1}]},
         # a new condition in the builder starts with its window written out: no window
         # here means the last 30 days, where the builder's editor would say "all history"
         widgets={"window": {"widget": "window", "required": True,
                             "default": {"last": 30, "unit": "days"}}})
