"""Condition kinds that need a side table: sequence and account.

A sequence reads raw events ordered in time, which no per-user aggregate can express; an
account condition evaluates a nested rule for every user of the project and rolls it up
per account. Each class docstring is the condition's semantics. Each lowering registers a
join builder with `Aggregates` (run only when a rule has one), keyed by the condition
itself so equal conditions share it. Registered at the bottom.

Sequences use window functions only (a running max per user), no as-of joins (Spark has
none): for step k+1, the events of step k that end a valid chain and the events of step
k+1 are put in one stream ordered by (timestamp, step k+1 first); the latest step-k time
strictly before each step-(k+1) event is a running max, and the event extends the chain
when that time exists and is within the step's limit. Keeping the *latest* valid
predecessor is enough: a later start only makes the next gap shorter.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal, get_args

import ibis
import ibis.expr.types as ir
from pydantic import Field, model_validator

from segmently.profile.accounts import user_accounts
from segmently.profile.matchers import EventMatcher, FilterOp, Filters
from segmently.segments.conditions import Condition, Strict
from segmently.segments.nodes import Node
from segmently.segments.registry import register
from segmently.segments.spans import events_in_span
from segmently.segments.windows import Window, describe, quantity, span_of
from segmently.store import Store
from segmently.store.views import Persons, is_person

if TYPE_CHECKING:
    from segmently.segments.lower import Lowerer
    from segmently.segments.rules import Rule


class Step(Strict):
    """One step of a sequence: an event (with filters), at most `within_*` after the
    previous step (no limit: any time later in the window)."""

    event: str = Field(min_length=1, max_length=1024)
    where: Filters = Field(default_factory=list)
    within_minutes: int | None = Field(default=None, ge=1, le=144_000_000)
    within_hours: int | None = Field(default=None, ge=1, le=2_400_000)
    within_days: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _one_limit(self) -> Step:
        if sum(v is not None for v in (self.within_minutes, self.within_hours,
                                       self.within_days)) > 1:
            raise ValueError("give at most one of within_minutes, within_hours, within_days")
        return self

    def limit_seconds(self) -> int | None:
        for value, unit in ((self.within_minutes, 60), (self.within_hours, 3600),
                            (self.within_days, 86_400)):
            if value is not None:
                return value * unit
        return None


class Sequence(Condition):
    """Performed the steps in order: an event of step k+1 strictly after (later timestamp)
    an event of step k, and at most the step's `within_*` after it; every event inside the
    window. Any such chain counts (not only the earliest first step). Other events in
    between do not matter."""

    kind: Literal["sequence"]
    steps: list[Step] = Field(min_length=2, max_length=10)
    window: Window | None = None

    @model_validator(mode="after")
    def _first_unbounded(self) -> Sequence:
        if self.steps[0].limit_seconds() is not None:
            raise ValueError("the first step has no previous step: within_* goes on later steps")
        return self


class Account(Condition):
    """The user's account (profile.accounts.user_accounts at as_of) has `any` / `all` /
    `none` of its users matching `rule` (evaluated for every user of the project, at the
    same as_of). A user without an account is never a member, whatever `match` says."""

    kind: Literal["account"]
    match: Literal["any", "all", "none"] = "any"
    rule: Rule


# -- lowering ------------------------------------------------------------------------------
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


# -- sequences -------------------------------------------------------------------


def lower_sequence(lw: Lowerer, rule: Sequence) -> Node:
    key = ("sequence", json.dumps(rule.model_dump(mode="json", exclude={"window"})),
           span_of(rule.window, lw.as_of))
    col = lw.join_column(key)
    steps, done, at = rule.steps, col + "_steps", col + "_at"
    span = span_of(rule.window, lw.as_of)

    def build(store: Store, project_id: str, person: Persons) -> ir.Table:
        e = events_in_span(store, project_id, lw.as_of, person, span, lw.aggs.known_at)

        def of(step: Step) -> ir.Table:
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

    lw.aggs.join(key, build)
    names = " then ".join(_step_label(s) for s in steps)
    win = describe(rule.window)
    return Node("sequence", f"{names} {win}", lambda t: t[done].fill_null(0) == len(steps),
                lambda t: {"steps": t[done].fill_null(0), "completed_at": t[at]},
                lambda o: (f"completed {names} at {o['completed_at'].isoformat(sep=' ')}"
                           if o["completed_at"] else
                           f"reached step {o['steps']} of {len(steps)} of {names} {win}")
                          + f"; needs all {len(steps)} steps {win}")


# -- accounts --------------------------------------------------------------------


def lower_account(lw: Lowerer, rule: Account) -> Node:
    sub = lw.sub_lowerer()
    inner = sub.lower(rule.rule)
    key = ("account", id(inner))
    col = lw.join_column(key)
    members, matching = col + "_users", col + "_matching"

    def build(store: Store, project_id: str, person: Persons) -> ir.Table:
        t = sub.aggs.table(store, project_id)  # every user: accounts span users
        truth = t.select(_u=t.person_id, _m=inner.truth(t))
        acc = user_accounts(store, project_id, lw.as_of, lw.aggs.known_at)
        acc = acc.filter(acc.account_id.notnull())
        j = acc.left_join(truth, acc.person_id == truth._u)
        m = j._m.fill_null(False)
        per = j.group_by(_a=j.account_id).aggregate(
            **{members: j.count(), matching: j.count(where=m)})
        side = acc.inner_join(per, acc.account_id == per._a)
        side = side.select(_p=side.person_id, **{members: side[members],
                                                matching: side[matching]})
        return side.filter(is_person(side._p, person)) if person is not None else side

    lw.aggs.join(key, build)
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


def _step_label(s: Step) -> str:
    where = " and ".join(f"{f.property} {f.op} {json.dumps(f.value)}" for f in s.where)
    limit = s.limit_seconds()
    within = ""
    if limit is not None:
        unit = ("minutes", s.within_minutes) if s.within_minutes else \
            ("hours", s.within_hours) if s.within_hours else ("days", s.within_days)
        within = f" within {quantity(int(unit[1] or 0), unit[0])}"
    return s.event + (f" (where {where})" if where else "") + within


# -- registration --------------------------------------------------------------------------
LIMIT_UNITS = ["minutes", "hours", "days"]  # a sequence step's within_<unit>
register(Sequence, lower_sequence, family="events",
         fields="`steps: [{event, where, within_minutes\\|hours\\|days}]`, `window`",
         true_when="the steps happened in order, each strictly later than the previous and "
                   "within its limit",
         example={"kind": "sequence", "steps": [
             {"event": "purchase", "where": [{"property": "amount", "op": "lt", "value": 1e300}]},
             {"event": "answered", "where": [{"property": "answer", "op": "contains",
                                              "value": "a"}]}]},
         widgets={"steps": {"widget": "steps", "options": list(get_args(FilterOp)),
                            "units": LIMIT_UNITS}})
register(Account, lower_account, family="references", nests=True,
         fields="`match: any\\|all\\|none`, `rule`",
         true_when="the user's account has any / all / none of its users matching the rule; "
                   "a user without an account is never in",
         example={"kind": "account", "rule": {"kind": "property", "property": "plan",
                                              "op": "eq", "value": "pro"}})
