"""Payments and trials per user: revenue to date, payments made and missed, trial status.
Columns of the profile (`build.py`)."""

from __future__ import annotations

from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from segmently.profile.jsonvalues import number_at
from segmently.profile.literals import f64
from segmently.profile.vocabulary import (
    PAYMENT_AMOUNT,
    PAYMENT_FAILED,
    PAYMENT_SUCCEEDED,
    SUBSCRIPTION_CANCELLED,
    TRIAL_CONVERTED,
    TRIAL_STARTED,
)

BILLING_EVENTS = (PAYMENT_SUCCEEDED, PAYMENT_FAILED, TRIAL_STARTED, TRIAL_CONVERTED,
                  SUBSCRIPTION_CANCELLED)


def billing(events: ir.Table, as_of: datetime, *, window_days: int = 30) -> ir.Table:
    """person_id -> payments_made, payments_missed (all time and in the window),
    revenue_to_date, last_payment_at, trial_started_at, converted_at, cancelled_at, on_trial.

    on_trial: started a trial and neither converted nor cancelled after it started.
    """
    e = events.filter(events.event.isin(BILLING_EVENTS))
    amount = number_at(e.properties, PAYMENT_AMOUNT)
    paid, failed = e.event == PAYMENT_SUCCEEDED, e.event == PAYMENT_FAILED
    recent = e.timestamp >= ibis.literal(as_of - timedelta(days=window_days))
    per_user = e.group_by("person_id").aggregate(
        payments_made=e.count(where=paid),
        payments_missed=e.count(where=failed),
        payments_missed_window=e.count(where=failed & recent),
        revenue_to_date=amount.sum(where=paid),
        last_payment_at=e.timestamp.max(where=paid),
        trial_started_at=e.timestamp.max(where=e.event == TRIAL_STARTED),
        converted_at=e.timestamp.max(where=e.event == TRIAL_CONVERTED),
        cancelled_at=e.timestamp.max(where=e.event == SUBSCRIPTION_CANCELLED),
    )
    started = per_user.trial_started_at
    ended_after = lambda col: col.notnull() & (col >= started)  # noqa: E731
    return per_user.mutate(
        revenue_to_date=per_user.revenue_to_date.fill_null(f64(0.0)),
        on_trial=started.notnull()
        & ~ended_after(per_user.converted_at)
        & ~ended_after(per_user.cancelled_at),
    )
