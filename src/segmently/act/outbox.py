"""The outbox: every message a destination is owed, written in the same transaction as the
segment transitions that cause it (`segments/snapshots.record_all` calls `rows_for`), so a
refresh that committed has its deliveries queued and a SIGKILL at any moment loses none.

    outbox             one row per message: (destination, seq, segment, kind, as_of, users)
    delivery_attempts  every attempt: when, status, latency, a response excerpt, and when
                       the next one is due (none: the message is settled)

Both are append-only. A message is delivered when its latest attempt is `ok`, failed when
its latest attempt is `final` and not ok, else pending (due at `next_at`, or at once with no
attempt yet). A replay appends an attempt that is neither: pending again. Messages of one
destination go out in `seq` order, one at a time (`head`), so an exit is never delivered
before the entry it ends. Next hop: `act/delivery.py` sends them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from segmently.act.destinations import Destination, Subscription, subscribers
from segmently.store import Store, utcnow
from segmently.store.rows import arrow_schema

OUTBOX = "outbox"
MESSAGE_ID = re.compile(r"msg_[0-9a-f]{32}")  # every id `message_id` makes
ATTEMPTS = "delivery_attempts"
OUTBOX_SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "message_id": dt.String(nullable=False),  # the webhook-id: stable across retries
    "destination": dt.String(nullable=False),
    "seq": dt.Int64(nullable=False),  # the order of the destination's messages
    "segment": dt.String(nullable=False),
    "kind": dt.String(nullable=False),  # "entered", "exited", or "sync"
    "as_of": dt.Timestamp(nullable=False),
    "user_ids": dt.string,  # JSON list (changes); null for sync (computed when sent)
    "created_at": dt.Timestamp(nullable=False),
})
ATTEMPTS_SCHEMA = ibis.schema({
    "project_id": dt.String(nullable=False),
    "message_id": dt.String(nullable=False),
    "destination": dt.String(nullable=False),
    "attempt": dt.Int64(nullable=False),  # 1, 2, ...; 0 for a replay request
    "at": dt.Timestamp(nullable=False),
    "ok": dt.Boolean(nullable=False),
    "final": dt.Boolean(nullable=False),  # no further attempt (delivered, or given up)
    "status": dt.int64,  # the HTTP status, if one came back
    "latency_ms": dt.float64,
    "error": dt.string,  # why it failed, for people
    "excerpt": dt.string,  # the start of the response body
    "next_at": dt.timestamp,  # when the next attempt is due (pending messages)
})
ACKS = "sync_acks"
ACKS_SCHEMA = ibis.schema({  # a sync destination has the membership of `as_of` (all pages)
    "project_id": dt.String(nullable=False),
    "destination": dt.String(nullable=False),
    "segment": dt.String(nullable=False),
    "as_of": dt.Timestamp(nullable=False),
    "acked_at": dt.Timestamp(nullable=False),
})
TABLES = {OUTBOX: OUTBOX_SCHEMA, ATTEMPTS: ATTEMPTS_SCHEMA, ACKS: ACKS_SCHEMA}
_ARROW = {name: arrow_schema(s) for name, s in TABLES.items()}


@dataclass(frozen=True)
class Message:
    project_id: str
    message_id: str
    destination: str
    seq: int
    segment: str
    kind: str
    as_of: datetime
    user_ids: list[str] | None
    created_at: datetime
    attempts: int = 0  # attempts so far (replays excluded)

    def to_json(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "destination": self.destination,
                "seq": self.seq, "segment": self.segment, "kind": self.kind,
                "as_of": self.as_of.isoformat(), "users": len(self.user_ids or []),
                "created_at": self.created_at.isoformat(), "attempts": self.attempts}


def ensure_tables(store: Store) -> None:
    store.ensure_tables(TABLES)


def message_id(*parts: object) -> str:
    """A deterministic id: the same refresh never queues a message twice under two ids."""
    return "msg_" + hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def _batches(ids: pa.Array, size: int) -> Iterable[list[str]]:
    values = sorted(ids.to_pylist())  # by user id: a readable, reproducible batch
    for start in range(0, len(values), size):
        yield values[start:start + size]


def rows_for(project_id: str, destinations: dict[str, Destination], as_of: datetime,
             changes: dict[str, tuple[pa.Array, pa.Array]]) -> dict[str, pa.Table]:
    """The outbox rows of one refresh: for each subscription to a segment that changed,
    its entries and exits in batches (changes mode) or one marker (sync mode: the diff is
    computed when it is sent, against what the destination acknowledged)."""
    rows: list[dict[str, Any]] = []
    for segment in sorted(changes):
        entered, exited = changes[segment]
        for dest, sub in subscribers(destinations, segment):
            rows.extend(_subscription_rows(project_id, dest, sub, segment, as_of,
                                           {"entered": entered, "exited": exited}))
    return _stamped(project_id, rows)


def welcome_rows(project_id: str, dest: Destination, version: int,
                 before: Destination | None, members: dict[str, tuple[datetime, pa.Array]]
                 ) -> dict[str, pa.Table]:
    """The outbox rows that start a subscription new in `dest` (not in `before`, its
    previous version) with the segment's current members: entries in changes mode, the
    whole list in sync mode. `members`: segment -> (its latest snapshot's instant, its
    members now). A segment counted as soon as it is saved (`core.Project.count`) has no
    entries left for a destination made after it: this is how such a destination hears of
    them, as Segment Engage sends an audience's members when a destination is connected."""
    if not dest.enabled:
        return {}
    had = {(seg, kind) for sub in (before.subscriptions if before and before.enabled else [])
           for seg in sub.segments
           for kind in (["sync"] if sub.mode == "sync" else sub.changes)}
    rows: list[dict[str, Any]] = []
    for sub in dest.subscriptions:
        for segment in sub.segments:
            kind = "sync" if sub.mode == "sync" else "entered"
            if segment not in members or (segment, kind) in had or \
                    (kind == "entered" and "entered" not in sub.changes):
                continue
            as_of, ids = members[segment]
            new = [{**r, "message_id": message_id(r["message_id"], "welcome", version)}
                   for r in _subscription_rows(project_id, dest, sub, segment, as_of,
                                               {"entered": ids, "exited": ids[:0]})
                   if r["kind"] in ("sync", "entered")]
            rows.extend(new)
    return _stamped(project_id, rows)


def _stamped(project_id: str, rows: list[dict[str, Any]]) -> dict[str, pa.Table]:
    now = utcnow()
    base = int(now.timestamp() * 1_000_000) * 1000  # seq: later refreshes sort after
    for i, row in enumerate(rows):
        row.update(project_id=project_id, seq=base + i, created_at=now)
    if not rows:
        return {}
    return {OUTBOX: pa.Table.from_pylist(rows, schema=_ARROW[OUTBOX])}


def _subscription_rows(project_id: str, dest: Destination, sub: Subscription, segment: str,
                       as_of: datetime, moved: dict[str, pa.Array]) -> list[dict[str, Any]]:
    if sub.mode == "sync":
        if not any(len(moved[k]) for k in moved):
            return []
        return [{"message_id": message_id(project_id, dest.name, segment, as_of, "sync"),
                 "destination": dest.name, "segment": segment, "kind": "sync",
                 "as_of": as_of, "user_ids": None}]
    out = []
    for kind in sub.changes:  # entries first: within one refresh no user does both
        for n, batch in enumerate(_batches(moved[kind], sub.batch_size)):
            out.append({"message_id": message_id(project_id, dest.name, segment, as_of,
                                                 kind, n),
                        "destination": dest.name, "segment": segment, "kind": kind,
                        "as_of": as_of, "user_ids": json.dumps(batch)})
    return out


# -- reading -------------------------------------------------------------------------------
def _latest_attempts(store: Store, project_id: str) -> ir.Table:
    a = store.table(ATTEMPTS)
    a = a.filter(a.project_id == project_id)
    ranked = a.mutate(_r=ibis.row_number().over(group_by=a.message_id,
                                                order_by=[a.at.desc(), a.attempt.desc()]),
                      _n=ibis.ifelse(a.attempt > 0, 1, 0).sum().over(group_by=a.message_id))
    return ranked.filter(ranked._r == 0).drop("_r")


def states(store: Store, project_id: str, destination: str | None = None) -> ir.Table:
    """Every outbox message with its state: `state` is delivered, failed or pending, and
    `next_at` when a pending one is due (null: at once)."""
    ensure_tables(store)
    o = store.table(OUTBOX)
    o = o.filter(o.project_id == project_id)
    if destination is not None:
        o = o.filter(o.destination == destination)
    last = _latest_attempts(store, project_id).select(
        "message_id", last_ok="ok", last_final="final", next_at="next_at", tries="_n",
        last_at="at", last_status="status", last_error="error")
    j = o.left_join(last, "message_id").drop("message_id_right")
    state = ibis.cases((j.last_ok.fill_null(False), "delivered"),
                       (j.last_final.fill_null(False), "failed"), else_="pending")
    return j.mutate(state=state, tries=j.tries.fill_null(0))


def _message(row: dict[str, Any]) -> Message:
    return Message(row["project_id"], row["message_id"], row["destination"], int(row["seq"]),
                   row["segment"], row["kind"], row["as_of"],
                   json.loads(row["user_ids"]) if row["user_ids"] else None,
                   row["created_at"], int(row["tries"]))


def pending(store: Store, project_id: str, destination: str, limit: int = 200
            ) -> list[tuple[Message, datetime | None]]:
    """The destination's first unsettled messages in order, each with when it is due
    (None: now): one query for a pass's worth of deliveries."""
    t = states(store, project_id, destination)
    rows = t.filter(t.state == "pending").order_by("seq").limit(limit).to_pyarrow().to_pylist()
    return [(_message(row), row["next_at"]) for row in rows]


def head(store: Store, project_id: str, destination: str
         ) -> tuple[Message | None, datetime | None]:
    """The destination's first unsettled message and when it is due (None: now); (None,
    None) when nothing is owed."""
    first = pending(store, project_id, destination, limit=1)
    return first[0] if first else (None, None)


def attempt_row(message: Message, *, attempt: int, ok: bool, final: bool,
                status: int | None = None, latency_ms: float | None = None,
                error: str | None = None, excerpt: str | None = None,
                next_at: datetime | None = None, at: datetime | None = None
                ) -> dict[str, Any]:
    return {"project_id": message.project_id, "message_id": message.message_id,
            "destination": message.destination, "attempt": attempt, "at": at or utcnow(),
            "ok": ok, "final": final, "status": status, "latency_ms": latency_ms,
            "error": error[:500] if error else None,
            "excerpt": excerpt[:500] if excerpt else None, "next_at": next_at}


def record_attempts(store: Store, rows: list[dict[str, Any]],
                    also: dict[str, pa.Table] | None = None) -> None:
    """Append attempts (with `also`'s rows in the same transaction: a sync's ack)."""
    if rows or also:
        store.insert_tables({ATTEMPTS: pa.Table.from_pylist(rows, schema=_ARROW[ATTEMPTS]),
                             **(also or {})})


def record_attempt(store: Store, message: Message, *, also: dict[str, pa.Table] | None = None,
                   **fields: Any) -> None:
    """Append one attempt (`attempt_row`'s fields)."""
    record_attempts(store, [attempt_row(message, **fields)], also)


def acked(store: Store, project_id: str, destination: str, segment: str) -> datetime | None:
    """The instant whose membership the destination acknowledged last (None: never)."""
    ensure_tables(store)
    t = store.table(ACKS)
    t = t.filter((t.project_id == project_id) & (t.destination == destination)
                 & (t.segment == segment))
    return t.as_of.cast(dt.timestamp).max().to_pyarrow().as_py()  # nullable: none yet


def ack_rows(message: Message, as_of: datetime) -> dict[str, pa.Table]:
    return {ACKS: pa.Table.from_pylist([{
        "project_id": message.project_id, "destination": message.destination,
        "segment": message.segment, "as_of": as_of, "acked_at": utcnow()}],
        schema=_ARROW[ACKS])}


def streak(store: Store, message: Message) -> int:
    """Failed attempts since the message was queued or last replayed (the retry step)."""
    count = 0
    for row in attempts(store, message.project_id, message.message_id, limit=1000):
        if row["attempt"] == 0:
            break
        count += 1
    return count


def attempts(store: Store, project_id: str, message_id: str | None = None,
             destination: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The delivery log, newest first."""
    ensure_tables(store)
    a = store.table(ATTEMPTS)
    a = a.filter(a.project_id == project_id)
    if message_id is not None:
        a = a.filter(a.message_id == message_id)
    if destination is not None:
        a = a.filter(a.destination == destination)
    return a.order_by([a.at.desc(), a.attempt.desc()]).limit(limit).to_pyarrow().to_pylist()


def replay(store: Store, project_id: str, message_ids: list[str]) -> int:
    """Queue messages again (delivered or failed ones too): an attempt row that is neither
    ok nor final makes each pending, due at once; returns how many were found."""
    ensure_tables(store)
    o = store.table(OUTBOX)
    found = o.filter((o.project_id == project_id) & o.message_id.isin(message_ids)) \
        .select("message_id", "destination").to_pyarrow().to_pylist()
    if not found:
        return 0
    now = utcnow()
    rows = [{"project_id": project_id, "message_id": r["message_id"],
             "destination": r["destination"], "attempt": 0, "at": now, "ok": False,
             "final": False, "status": None, "latency_ms": None,
             "error": "replay requested", "excerpt": None, "next_at": now} for r in found]
    store.insert_table(ATTEMPTS, pa.Table.from_pylist(rows, schema=_ARROW[ATTEMPTS]))
    return len(rows)
