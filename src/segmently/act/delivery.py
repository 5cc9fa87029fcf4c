"""The delivery worker: sends every destination's outbox messages in order, at least once,
and records each attempt (`act/outbox.py`).

    deliver_due(store, settings)   # one pass over every project; what it did

Per destination, one message at a time in `seq` order: the first unsettled one is sent
when due; success is final, a failure is retried immediately, then after 5 s, 5 min,
30 min, 2 h, 5 h, 10 h and 10 h (the message then counts as failed and the next one goes),
and a destination that answers 410, or has failed for 5 days without a success, is
disabled with the reason (a new version of it, source "delivery"). A sync message sends
the diff between the segment's latest snapshot and the membership the destination last
acknowledged (all pages delivered), in pages of 1,000, then records the new
acknowledgement in the same transaction as its success. Run by `serve`
(`runtime/deliverer.py`) or `segmently deliver`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from segmently.act import destinations, outbox, payloads, sending
from segmently.act.destinations import Destination
from segmently.act.outbox import Message
from segmently.segments import snapshots as snap
from segmently.settings import Settings
from segmently.store import Store, utcnow
from segmently.store.projects import list_projects

log = logging.getLogger(__name__)
_LOCKS: weakref.WeakKeyDictionary[Store, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
RETRY_DELAYS = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)  # s after failures 1..8
GIVE_UP_AFTER = timedelta(days=5)
PARTLY = "partly delivered:"  # a sync attempt's excerpt when some of its pages went
MAX_PER_PASS = 500  # messages one destination sends in one pass (others get their turn)
FLUSH = 100  # successes recorded in one transaction


@dataclass
class Report:
    delivered: int = 0
    failed: int = 0  # attempts that failed (retried later, or given up)
    disabled: list[str] = field(default_factory=list)
    next_due: datetime | None = None  # the earliest retry seen waiting (the next pass)

    def to_json(self) -> dict[str, Any]:
        return {"delivered": self.delivered, "failed": self.failed, "disabled": self.disabled}


def deliver_due(store: Store, settings: Settings | None = None,
                project_id: str | None = None, now: datetime | None = None) -> Report:
    """One pass: every enabled destination of every project (or one) sends what is due at
    `now` (default: the clock's now; tests pass instants to walk the retry schedule)."""
    settings = settings or Settings()
    now = now or utcnow()
    with _pass_lock(store):  # serve's loop and a `segmently deliver` it runs: one at a time
        return _deliver(store, settings, project_id, now)


def _pass_lock(store: Store) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(store)
        if lock is None:
            lock = _LOCKS[store] = threading.Lock()
        return lock


def _deliver(store: Store, settings: Settings, project_id: str | None,
             now: datetime) -> Report:
    report = Report()
    outbox.ensure_tables(store)
    ids = [project_id] if project_id else [p.project_id for p in list_projects(store)]
    with sending.Channel() as client:
        for pid in ids:
            for dest in destinations.current(store, pid).values():
                if dest.enabled:
                    _drain(store, pid, dest, settings, client, report, now)
    return report


def _drain(store: Store, project_id: str, dest: Destination, settings: Settings,
           client: sending.Channel, report: Report, now: datetime) -> None:
    """Send the destination's due messages in order until one fails. Successes are
    recorded together, every FLUSH and before anything else is written (a crash between
    a send and its record resends that message: at least once, with the same id)."""
    done: list[dict[str, object]] = []
    try:
        for message, due in outbox.pending(store, project_id, dest.name, MAX_PER_PASS):
            if due is not None and due > now:
                report.next_due = min(report.next_due or due, due)
                return
            if message.kind == "sync":
                outbox.record_attempts(store, done)
                done = []
            outcome = _send(store, dest, message, settings, client, now)
            if outcome is None:  # a sync found nothing to send: settled by _send
                continue
            if outcome.ok:
                report.delivered += 1
                if message.kind != "sync":  # a sync records itself, with its ack
                    done.append(outbox.attempt_row(
                        message, attempt=message.attempts + 1, ok=True, final=True,
                        status=outcome.status, latency_ms=outcome.latency_ms,
                        excerpt=outcome.excerpt, at=now))
                if len(done) >= FLUSH:
                    outbox.record_attempts(store, done)
                    done = []
                continue
            report.failed += 1
            outbox.record_attempts(store, done)
            done = []
            retry = _failed(store, dest, message, outcome, now)
            if retry is None:
                report.disabled.append(f"{project_id}/{dest.name}")
            elif isinstance(retry, datetime):
                report.next_due = min(report.next_due or retry, retry)
            return  # in order: nothing after it goes before it
    finally:
        outbox.record_attempts(store, done)


def _send(store: Store, dest: Destination, message: Message, settings: Settings,
          client: sending.Channel, now: datetime) -> sending.Outcome | None:
    if message.kind == "sync":
        return _sync(store, dest, message, settings, client, now)
    if dest.kind == "files":
        return _write_file(dest, message, message.user_ids or [], message.kind, settings)
    return sending.send(dest, payloads.changes(dest, message),
                        settings.allow_private_destinations, client)


def _sync(store: Store, dest: Destination, message: Message, settings: Settings,
          client: sending.Channel, now: datetime) -> sending.Outcome | None:
    """Send the diff from the acknowledged membership to the latest snapshot's; on success
    the acknowledgement moves there (and older sync messages of the segment are settled)."""
    latest = snap.latest(store, message.project_id).get(message.segment)
    target = latest["as_of"] if latest else message.as_of
    current = _members(store, message.project_id, message.segment, target)
    acked = outbox.acked(store, message.project_id, dest.name, message.segment)
    if acked is not None and acked >= target:
        _settle(store, message, f"already acknowledged as of {acked.isoformat()}", now)
        return None
    old = _members(store, message.project_id, message.segment, acked) if acked else []
    added = sorted(set(current) - set(old))
    removed = sorted(set(old) - set(current))
    started = time.perf_counter()
    if dest.kind == "files":
        outcome = _write_file(dest, message, current, "members", settings)
    else:
        outcome = sending.Outcome(True, None, 0.0)
        # after a diff delivered in part (its additions, not its removals) the receiver's
        # state is no base for a diff: the whole membership goes
        whole = acked is None or _partly_delivered(store, message)
        size = payloads.SEGMENT_PAGE if dest.kind == "segment" else payloads.SYNC_PAGE
        sent = payloads.pages(current, added, removed, first=whole, size=size)
        for page in sent:
            page_id = outbox.message_id(message.message_id, acked, target, page.action,
                                        page.number)
            dated = replace(message, as_of=target)  # the snapshot it brings, not the queuing
            outcome = sending.send(dest, payloads.sync(dest, dated, page, page_id),
                                   settings.allow_private_destinations, client)
            if not outcome.ok:
                if page.number > 1:
                    return replace(outcome, excerpt=f"{PARTLY} {page.number - 1} of "
                                   f"{len(sent)} pages; {outcome.excerpt or ''}".strip())
                return outcome
    if outcome.ok:
        outbox.record_attempt(store, message, attempt=message.attempts + 1, ok=True,
                              final=True, status=outcome.status,
                              latency_ms=round((time.perf_counter() - started) * 1000, 2),
                              excerpt=f"{len(added)} added, {len(removed)} removed"
                              if acked else f"{len(current)} members", at=now,
                              also=outbox.ack_rows(message, target))
    return outcome


def _partly_delivered(store: Store, message: Message) -> bool:
    """Whether the message's latest attempt delivered some of its pages, not all."""
    latest = outbox.attempts(store, message.project_id, message.message_id, limit=1)
    return bool(latest) and (latest[0]["excerpt"] or "").startswith(PARTLY)


def _members(store: Store, project_id: str, segment: str, at: datetime) -> list[str]:
    ids = snap.members_at(store, project_id, segment, at).to_pyarrow()["user_id"]
    return sorted(ids.to_pylist())


def _settle(store: Store, message: Message, why: str, now: datetime) -> None:
    outbox.record_attempt(store, message, attempt=message.attempts + 1, ok=True, final=True,
                          excerpt=why, at=now)


def _failed(store: Store, dest: Destination, message: Message, outcome: sending.Outcome,
            now: datetime) -> datetime | bool | None:
    """Record a failed attempt; when it is retried (False: given up, the next message
    goes at the next pass; None: the destination was disabled)."""
    step = outbox.streak(store, message) + 1  # this failure's number since queued/replayed
    since = _failing_since(store, message)
    reason = None
    if outcome.gone:
        reason = f"the receiver answered 410 Gone ({message.message_id})"
    elif since is not None and now - since >= GIVE_UP_AFTER:
        reason = f"failing for {GIVE_UP_AFTER.days} days: {outcome.error}"
    final = reason is not None or step > len(RETRY_DELAYS)
    next_at = None if final else now + timedelta(seconds=RETRY_DELAYS[step - 1])
    outbox.record_attempt(store, message, attempt=message.attempts + 1, ok=False, final=final,
                          status=outcome.status, latency_ms=outcome.latency_ms,
                          error=outcome.error, excerpt=outcome.excerpt, next_at=next_at,
                          at=now)
    if reason is None:
        return next_at if next_at is not None else False
    disabled = dest.model_copy(update={"enabled": False, "disabled_reason": reason})
    destinations.save(store, message.project_id, disabled, source="delivery")
    log.warning("destination %s of %s disabled: %s", dest.name, message.project_id, reason)
    return None


def _failing_since(store: Store, message: Message) -> datetime | None:
    """When the destination's current run of failures began (None: its last attempt
    succeeded, or it never tried)."""
    rows = outbox.attempts(store, message.project_id, destination=message.destination,
                           limit=10_000)
    since = None
    for row in rows:  # newest first
        if row["ok"]:
            break
        if row["attempt"] > 0:
            since = row["at"]
    return since


def send_test(dest: Destination, settings: Settings, project_id: str) -> sending.Outcome:
    """A signed `{"type": "test"}` to the destination now (a files destination writes an
    empty file): what the UI's "send test" button and `destinations test` do."""
    message = Message(project_id, outbox.message_id("test", dest.name, utcnow()), dest.name, 0,
                      "test", "test", utcnow(), [], utcnow())
    if dest.kind == "files":
        return _write_file(dest, message, [], "test", settings)
    return sending.send(dest, payloads.test(dest, message), settings.allow_private_destinations)


def _write_file(dest: Destination, message: Message, users: list[str], what: str,
                settings: Settings) -> sending.Outcome:
    """A files destination: `<files root>/<project>/<folder>/<segment>/<as_of>-<what>-<id>.
    <csv|parquet>`, readable by its owner only (user ids are the project's data); a
    project writes only inside its own folder of the root."""
    started = time.perf_counter()
    folder = Path(settings.files_root) / message.project_id / (dest.folder or ".") \
        / message.segment.replace("/", "_")
    name = f"{message.as_of:%Y%m%dT%H%M%S}-{what}-{message.message_id}.{dest.format}"
    table = pa.table({"user_id": pa.array(users, pa.string())})
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as sink:
            if dest.format == "parquet":
                pq.write_table(table, sink)
            else:
                pacsv.write_csv(table, sink)
    except OSError as exc:
        return sending.Outcome(False, None, 0.0, f"cannot write {folder}: {exc.strerror}")
    return sending.Outcome(True, None, round((time.perf_counter() - started) * 1000, 2),
                           excerpt=str(path))
