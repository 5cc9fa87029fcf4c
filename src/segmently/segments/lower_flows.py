"""Lowering of sequences and account conditions: the kinds that need a side table.

A sequence reads raw events ordered in time, which no per-user aggregate can express; an
account condition evaluates a nested rule for every user of the project and rolls it up
per account. Each registers a join builder with `Aggregates` (run only when a rule has
one), keyed by the condition itself so equal conditions share it.

Sequences use window functions only (a running max per user), no as-of joins (Spark has
none): for step k+1, the events of step k that end a valid chain and the events of step
k+1 are put in one stream ordered by (timestamp, step k+1 first); the latest step-k time
strictly before each step-(k+1) event is a running max, and the event extends the chain
when that time exists and is within the step's limit. Keeping the *latest* valid
predecessor is enough: a later start only makes the next gap shorter.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from segmently.profile.accounts import user_accounts
from segmently.profile.matchers import EventMatcher
from segmently.segments import conditions as c
from segmently.segments.nodes import Node
from segmently.segments.windows import Span, describe, quantity, span_of
from segmently.store import Store
from segmently.store.views import resolved_events

if TYPE_CHECKING:
    from segmently.segments.aggregates import Aggregates
    from segmently.segments.rules import Rule


def events_in_span(store: Store, project_id: str, as_of: datetime, person: str | None,
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


def _next_step(prev: ir.Table, cur: ir.Table, limit: int | None) -> ir.Table:
    """The step events that follow a valid previous step (strictly later, within limit)."""
    u = prev.mutate(_cur=ibis.literal(0)).union(cur.mutate(_cur=ibis.literal(1)))
    w = ibis.window(group_by=u.person_id, order_by=[u.ts, u._cur.desc()],
                    preceding=None, following=0)
    u = u.mutate(_prev=ibis.cases((u._cur == 0, u.ts), else_=ibis.null("timestamp"))
                 .max().over(w))
    ok = (u._cur == 1) & u._prev.notnull()
    if limit is not None:
        ok &= u._prev >= u.ts - ibis.interval(seconds=limit)
    return u.filter(ok).select("person_id", "ts")


class FlowConditions:
    aggs: Aggregates
    as_of: datetime
    segments: dict[str, Rule]
    _stack: list[str]
    _joined: dict[Hashable, str]  # side table key -> its column prefix

    def _join_column(self, key: Hashable) -> str:
        """A generated column prefix per side table (no user text in identifiers)."""
        return self._joined.setdefault(key, f"_j{len(self._joined)}")

    def lower(self, rule: Rule) -> Node:  # the Lowerer's
        raise NotImplementedError

    # -- sequences -------------------------------------------------------------------
    def _lower_sequence(self, rule: c.Sequence) -> Node:
        key = ("sequence", json.dumps(rule.model_dump(mode="json", exclude={"window"})),
               span_of(rule.window, self.as_of))
        col = self._join_column(key)
        steps, done, at = rule.steps, col + "_steps", col + "_at"
        span = span_of(rule.window, self.as_of)

        def build(store: Store, project_id: str, person: str | None) -> ir.Table:
            e = events_in_span(store, project_id, self.as_of, person, span, self.aggs.known_at)

            def of(step: c.Step) -> ir.Table:
                m = e.filter(EventMatcher(event=step.event, where=step.where).expr(e))
                return m.select("person_id", ts=m.timestamp)

            valid = of(steps[0])
            parts = [valid.mutate(_k=ibis.literal(1))]
            for k, step in enumerate(steps[1:], 2):
                valid = _next_step(valid, of(step), step.limit_seconds())
                parts.append(valid.mutate(_k=ibis.literal(k)))
            every = ibis.union(*parts)
            return every.group_by(_p=every.person_id).aggregate(
                **{done: every._k.max(), at: every.ts.min(where=every._k == len(steps))})

        self.aggs.join(key, build)
        names = " then ".join(_step_label(s) for s in steps)
        win = describe(rule.window)
        return Node("sequence", f"{names} {win}", lambda t: t[done].fill_null(0) == len(steps),
                    lambda t: {"steps": t[done].fill_null(0), "completed_at": t[at]},
                    lambda o: (f"completed {names} at {o['completed_at'].isoformat(sep=' ')}"
                               if o["completed_at"] else
                               f"reached step {o['steps']} of {len(steps)} of {names} {win}")
                              + f"; needs all {len(steps)} steps {win}")

    # -- accounts --------------------------------------------------------------------
    def _lower_account(self, rule: c.Account) -> Node:
        sub = self._sub_lowerer()
        inner = sub.lower(rule.rule)
        key = ("account", id(inner))
        col = self._join_column(key)
        members, matching = col + "_users", col + "_matching"

        def build(store: Store, project_id: str, person: str | None) -> ir.Table:
            t = sub.aggs.table(store, project_id)  # every user: accounts span users
            truth = t.select(_u=t.person_id, _m=inner.truth(t))
            acc = user_accounts(store, project_id, self.as_of, self.aggs.known_at)
            acc = acc.filter(acc.account_id.notnull())
            j = acc.left_join(truth, acc.person_id == truth._u)
            m = j._m.fill_null(False)
            per = j.group_by(_a=j.account_id).aggregate(
                **{members: j.count(), matching: j.count(where=m)})
            side = acc.inner_join(per, acc.account_id == per._a)
            side = side.select(_p=side.person_id, **{members: side[members],
                                                    matching: side[matching]})
            return side.filter(side._p == person) if person is not None else side

        self.aggs.join(key, build)
        need = {"any": "some", "all": "all", "none": "none"}[rule.match]

        def truth(t: ir.Table) -> ir.BooleanValue:
            n, k = t[members], t[matching]
            cond = {"any": k > 0, "all": k == n, "none": k == 0}[rule.match]
            return (n.notnull() & cond).fill_null(False)

        return Node("account", f"{need} of the account's users match: {inner.label}", truth,
                    lambda t: {"users": t[members], "matching": t[matching]},
                    lambda o: ("no account" if o["users"] is None else
                               f"{o['matching']} of the account's {o['users']} users match "
                               f"{inner.label}") + f"; needs {need}")

    def _sub_lowerer(self) -> Any:
        """A Lowerer of its own (its rule runs over every user), sharing the reference
        stack so a cycle through an account condition is still an error."""
        sub = type(self)(self.aggs.fresh(), self.segments)  # type: ignore[call-arg]
        sub._stack = list(self._stack)
        return sub


def _step_label(s: c.Step) -> str:
    where = " and ".join(f"{f.property} {f.op} {json.dumps(f.value)}" for f in s.where)
    limit = s.limit_seconds()
    within = ""
    if limit is not None:
        unit = ("minutes", s.within_minutes) if s.within_minutes else \
            ("hours", s.within_hours) if s.within_hours else ("days", s.within_days)
        within = f" within {quantity(unit[1], unit[0])}"
    return s.event + (f" (where {where})" if where else "") + within

