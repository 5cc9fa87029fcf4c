"""Time windows of conditions, resolved against the evaluation instant `as_of`.

A window is half-open, [start, end): an event exactly at the start counts, an event exactly
at the end does not. Windows end at `as_of` at the latest (events at or after `as_of` are
never seen). Forms, written as a mapping keyed by the form's name:

- `{last: 30, unit: days}`: the last 30 days (or weeks; months are calendar months, the
  day clamped to the month's length) before as_of;
- `{between: [2026-01-01, 2026-02-01]}`: from the first instant to the second (inclusive,
  exclusive), capped at as_of;
- `{within_days_of_first_seen: 7}`: the user's first 7 days, from their first event.

No window means all history up to as_of.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from segmently.segments.errors import RuleError
from segmently.store import utcnow

EARLIEST = datetime(1900, 1, 1)  # instants a rule or an evaluation may name, [EARLIEST,
LATEST = datetime(2200, 1, 1)  # LATEST) in UTC: every window start stays a valid datetime


def to_utc(instant: datetime) -> datetime:
    """Naive UTC, the store's convention: aware instants are converted, naive ones kept.
    Instants outside [1900-01-01, 2200-01-01) are refused (RuleError, a 400): a window of
    100,000 days before year 1 cannot be computed, and no product has events there."""
    try:
        utc = instant.astimezone(UTC).replace(tzinfo=None) if instant.tzinfo else instant
    except OverflowError:
        utc = EARLIEST.replace(year=1)  # 0001-01-01T00:00+14:00 has no UTC instant
    if not EARLIEST <= utc < LATEST:
        raise RuleError(f"{instant.isoformat()} is outside the supported range "
                        f"{EARLIEST.date()} to {LATEST.date()} (UTC)")
    return utc


def instants(as_of: datetime | None, known_at: datetime | None) -> tuple[datetime, datetime]:
    """The two instants of an evaluation in naive UTC: what had happened (`as_of`) and
    what had been received (`known_at`); each defaults to now, one clock reading for both.
    Next: every read bounds `timestamp < as_of` and `received_at <= known_at`
    (store/views.py, store/rollups.py)."""
    now = utcnow()
    return (to_utc(as_of) if as_of is not None else now,
            to_utc(known_at) if known_at is not None else now)


def minus_months(instant: datetime, months: int) -> datetime:
    total = instant.year * 12 + (instant.month - 1) - months
    year, month = divmod(total, 12)
    day = min(instant.day, calendar.monthrange(year, month + 1)[1])
    return instant.replace(year=year, month=month + 1, day=day)


def quantity(n: int, unit: str) -> str:
    """`1 day`, `2 days`: explanations read as sentences."""
    return f"{n} {unit if n != 1 else unit[:-1]}"


@dataclass(frozen=True, slots=True)
class Span:
    """A resolved window: [start, end) in naive UTC; None start = all history;
    `first_seen_days` = relative to each user's first event instead."""

    start: datetime | None = None
    end: datetime | None = None
    first_seen_days: int | None = None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LastWindow(_Strict):
    last: int = Field(ge=1, le=100_000)
    unit: Literal["days", "weeks", "months"] = "days"

    def span(self, as_of: datetime) -> Span:
        if self.unit == "months":
            return Span(start=minus_months(as_of, self.last))
        days = self.last * (7 if self.unit == "weeks" else 1)
        return Span(start=as_of - timedelta(days=days))

    def describe(self) -> str:
        return f"in the last {quantity(self.last, self.unit)}"


class BetweenWindow(_Strict):
    between: tuple[datetime, datetime]

    @field_validator("between")
    @classmethod
    def _ordered(cls, v: tuple[datetime, datetime]) -> tuple[datetime, datetime]:
        start, end = to_utc(v[0]), to_utc(v[1])
        if start >= end:
            raise ValueError("the window's start must be before its end")
        return start, end

    def span(self, as_of: datetime) -> Span:
        start, end = self.between
        return Span(start=start, end=min(end, as_of))

    def describe(self) -> str:
        start, end = self.between
        return f"between {start.isoformat(sep=' ')} and {end.isoformat(sep=' ')}"


class FirstSeenWindow(_Strict):
    within_days_of_first_seen: int = Field(ge=1, le=100_000)

    def span(self, as_of: datetime) -> Span:
        return Span(first_seen_days=self.within_days_of_first_seen)

    def describe(self) -> str:
        return f"within {quantity(self.within_days_of_first_seen, 'days')} of first seen"


WINDOW_TAGS = ("last", "between", "within_days_of_first_seen")


def _window_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        found = [k for k in WINDOW_TAGS if k in value]
        return found[0] if len(found) == 1 else None
    tags: dict[type, str] = {LastWindow: "last", BetweenWindow: "between",
                             FirstSeenWindow: "within_days_of_first_seen"}
    return tags.get(type(value))


Window = Annotated[
    Annotated[LastWindow, Tag("last")]
    | Annotated[BetweenWindow, Tag("between")]
    | Annotated[FirstSeenWindow, Tag("within_days_of_first_seen")],
    Discriminator(_window_tag, custom_error_type="window",
                  custom_error_message="a window is one of {last: N, unit: days|weeks|months}, "
                                       "{between: [start, end]} or "
                                       "{within_days_of_first_seen: N}"),
]


def span_of(window: LastWindow | BetweenWindow | FirstSeenWindow | None, as_of: datetime) -> Span:
    return Span() if window is None else window.span(as_of)


def describe(window: LastWindow | BetweenWindow | FirstSeenWindow | None) -> str:
    return "ever" if window is None else window.describe()
