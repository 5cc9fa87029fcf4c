"""The instants and periods people type (`--as-of`, `known_at=`, `--every`), read once
for every shell: ISO 8601 text or a datetime in, an aware UTC datetime out. Used by
`core.Project`, `commands.py` and `api.py`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from segmently.errors import SegmentlyError
from segmently.segments.windows import instants as instants_of
from segmently.segments.windows import to_utc
from segmently.store import utcnow

MAX_BACKFILL_STEPS = 10_000
Instant = str | datetime | None


class InstantError(SegmentlyError, ValueError):
    code = "invalid_instant"


def instant(value: Instant, field: str = "as_of") -> datetime:
    """An evaluation instant: ISO 8601 text (offset or Z; none means UTC), or now."""
    if value is None:
        return utcnow()
    try:
        if isinstance(value, datetime):
            return to_utc(value)
        return to_utc(datetime.fromisoformat(value))
    except ValueError as exc:
        if isinstance(value, datetime):
            raise InstantError(f"{field}: {exc}") from None
        raise InstantError(f"{field}: {value!r} is not an ISO 8601 instant "
                           "(2026-03-01 or 2026-03-01T12:00:00Z)") from None


def pair(as_of: Instant, known_at: Instant) -> tuple[datetime, datetime]:
    """The two instants of an evaluation (docs/rules.md, Time), each defaulting to the
    same reading of now."""
    at = instant(as_of) if as_of is not None else None
    known = instant(known_at, "known_at") if known_at is not None else None
    return instants_of(at, known)


def period(text: str) -> timedelta:
    """`1d`, `12h`, `30m`, `1w` -> a timedelta (backfill step)."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) < 1:
        raise InstantError(f"every: {text!r} is not a period like 1d, 12h, 30m or 1w")
    return timedelta(**{units[unit]: int(number)})


def steps(start: datetime, end: datetime, every: timedelta) -> Iterator[datetime]:
    """start, start + every, ... up to and including end (a backfill's instants)."""
    if end < start:
        raise InstantError(f"backfill_from: {start.isoformat()} is after {end.isoformat()}")
    count = int((end - start) / every)
    if count >= MAX_BACKFILL_STEPS:
        raise InstantError(f"backfill: {count + 1} instants; at most {MAX_BACKFILL_STEPS} "
                           "(use a longer --every)")
    for i in range(count + 1):
        yield start + i * every
