"""Billing, emitted by each account's owner: trial, conversion, monthly payments with
failures and retries, cancellation, and the plan changes they cause.

A trial that ends unconverted emits subscription_cancelled with reason trial_expired, so
"on trial" (started, neither converted nor cancelled since) ends when the trial does.
The first payment, made when converting, always succeeds; a failed one is retried
PAYMENT_RETRY_DAYS later. Nothing of an account is billed after its cancellation.
Its `EventPart`s go to `generate.py`, which assembles a chunk's rows (`rows.py`).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from segmently.demo import parts as k
from segmently.demo import strings as s
from segmently.demo import vocabulary as v
from segmently.demo.parts import EventPart
from segmently.demo.population import (
    CANCELLED,
    DAY,
    EXPIRED,
    PLAN_CANCELLED,
    PLAN_EXPIRED,
    Population,
)

FAIL_P, FAIL_P_BEFORE_CANCEL = 0.08, 0.3
PERIOD = v.BILLING_PERIOD_DAYS * DAY


def billing(rng: np.random.Generator, pop: Population) -> tuple[EventPart, EventPart]:
    """(billing events, plan changes: (account's owner, time, new plan code) as arg)."""
    a = pop.accounts
    owner, tier = a.first_user, s.pick(v.PAID_PLANS, a.tier)
    plan = s.quoted(tier)
    parts = [EventPart(owner, a.created + 1.0, np.full(a.n, k.TRIAL_STARTED),
                       s.json_object([("plan", plan), ("trial_days", str(v.TRIAL_DAYS))]))]
    paid = np.flatnonzero(~np.isnan(a.converted_at))
    conv = a.converted_at[paid]
    parts.append(EventPart(owner[paid], conv, np.full(len(paid), k.TRIAL_CONVERTED),
                           s.json_object([("plan", plan.take(paid)),
                                          ("mrr", s.num(a.mrr[paid]))])))
    parts.append(payments(rng, pop, paid))
    gone = np.flatnonzero(a.outcome == CANCELLED)
    reason = s.pick(v.CANCEL_REASONS, rng.integers(0, len(v.CANCEL_REASONS), len(gone)))
    parts.append(EventPart(owner[gone], a.cancelled_at[gone], np.full(len(gone), k.CANCELLED),
                           s.json_object([("plan", plan.take(gone)),
                                          ("reason", s.quoted(reason))])))
    expired = np.flatnonzero(a.outcome == EXPIRED)
    parts.append(EventPart(owner[expired], a.trial_end[expired],
                           np.full(len(expired), k.CANCELLED),
                           s.json_object([("plan", plan.take(expired)),
                                          ("reason", f'"{v.TRIAL_EXPIRED_REASON}"')])))
    changes_acc = np.concatenate([paid, gone, expired])
    changes = EventPart(
        changes_acc,
        np.concatenate([conv, a.cancelled_at[gone], a.trial_end[expired]]),
        np.full(len(changes_acc), k.GROUP_PLAN),
        s.const("{}", len(changes_acc)),
        arg=np.concatenate([a.tier[paid] + 1, np.full(len(gone), PLAN_CANCELLED),
                            np.full(len(expired), PLAN_EXPIRED)]))
    return EventPart.concat(parts), changes


def payments(rng: np.random.Generator, pop: Population, paid: np.ndarray) -> EventPart:
    a = pop.accounts
    stop = np.where(np.isnan(a.cancelled_at[paid]), pop.window, a.cancelled_at[paid])
    first = a.converted_at[paid] + 5.0
    count = np.ceil((stop - first) / PERIOD).astype(np.int64).clip(min=1)
    acc = np.repeat(paid, count)
    nth = np.arange(len(acc)) - np.repeat(np.cumsum(count) - count, count)
    at = np.repeat(first, count) + nth * PERIOD
    until = np.repeat(stop, count)
    fail_p = np.where(a.outcome[acc] == CANCELLED, FAIL_P_BEFORE_CANCEL, FAIL_P)
    failed = (nth > 0) & (rng.random(len(acc)) < fail_p)
    retried = failed & (at + v.PAYMENT_RETRY_DAYS * DAY < until)
    ok_acc = np.concatenate([acc[~failed], acc[retried]])
    ok_at = np.concatenate([at[~failed], at[retried] + v.PAYMENT_RETRY_DAYS * DAY])
    ok_nth = np.concatenate([nth[~failed], nth[retried]])
    succeeded = EventPart(a.first_user[ok_acc], ok_at, np.full(len(ok_acc), k.PAYMENT_SUCCEEDED),
                          payment_properties(pop, ok_acc, ok_nth))
    bad_acc, bad_nth = acc[failed], nth[failed]
    reason = s.pick(v.FAILURE_REASONS, rng.integers(0, len(v.FAILURE_REASONS), len(bad_acc)))
    failures = EventPart(a.first_user[bad_acc], at[failed], np.full(len(bad_acc), k.PAYMENT_FAILED),
                         payment_properties(pop, bad_acc, bad_nth, reason))
    return EventPart.concat([succeeded, failures])


def payment_properties(pop: Population, acc: np.ndarray, nth: np.ndarray,
                       reason: pa.Array | None = None) -> pa.Array:
    a = pop.accounts
    fields = [("amount", s.num(a.mrr[acc])),
              ("currency", s.quoted(s.pick(v.CURRENCIES, a.currency[acc]))),
              ("plan", s.quoted(s.pick(v.PAID_PLANS, a.tier[acc]))),
              ("invoice_id", s.quoted(s.concat("inv_", s.num(a.first + acc), "_", s.num(nth))))]
    if reason is not None:
        fields.append(("reason", s.quoted(reason)))
    return s.json_object(fields)


def plan_calls(pop: Population, changes: EventPart) -> EventPart:
    """For each plan change: the owner's group call (plan, mrr) and an identify (plan) of
    every user of the account who had signed up by then."""
    a, u = pop.accounts, pop.users
    acc = changes.user  # account indexes in a plan-change part
    group = EventPart(a.first_user[acc], changes.ts + 1.0, changes.kind,
                      changes.properties, changes.arg)
    size = a.size[acc]
    member = np.repeat(a.first_user[acc], size) + (
        np.arange(size.sum()) - np.repeat(np.cumsum(size) - size, size))
    at = np.repeat(changes.ts, size) + 2.0
    joined = u.signup[member] < np.repeat(changes.ts, size)
    n = int(joined.sum())
    identify = EventPart(member[joined], at[joined], np.full(n, k.IDENTIFY_PLAN),
                         s.const("{}", n), np.repeat(changes.arg, size)[joined])
    return EventPart.concat([group, identify])
