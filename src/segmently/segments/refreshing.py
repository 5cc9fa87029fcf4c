"""Refreshing a project's segments at one instant, so that one segment that cannot run
costs only itself.

All segments are evaluated in one pass, as always. When that pass fails (a segment's
rule the engine refuses, a name the stored vocabulary no longer declares...), each segment
is evaluated alone: the ones that run are recorded as usual, the ones that fail are
recorded with their error (`segment_errors`, in the snapshots' own transaction), and a
segment whose stored definition no longer validates (`definitions.broken`) is recorded
failed without being run. A lost database connection is not a segment's fault: it is
raised, and nothing is recorded. Called by `core.Project.refresh`. Next:
`snapshots.record_all` stores the result; `core/project.py` (summaries) shows each
segment's latest error until a refresh records it again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from datetime import datetime

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pyarrow as pa

from segmently.profile.config import Vocabulary
from segmently.segments import definitions as defs
from segmently.segments import snapshots as snap
from segmently.segments.definitions import references
from segmently.segments.evaluate import evaluate
from segmently.segments.rules import Rule, rule_json
from segmently.segments.windows import instants
from segmently.store import Store
from segmently.store.connections import is_disconnect

log = logging.getLogger(__name__)
# segment -> (entered, exited) in, rows of other tables out (core/project.py: the outbox)
Outbox = Callable[[dict[str, tuple[pa.Array, pa.Array]]], dict[str, pa.Table]]
MAX_MESSAGE = 500  # characters of an error kept (engine errors can quote whole queries)


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first[:MAX_MESSAGE]


def evaluate_each(store: Store, project_id: str, rules: Mapping[str, Rule], as_of: datetime,
                  vocabulary: Vocabulary | None = None, known_at: datetime | None = None
                  ) -> tuple[dict[str, pa.Array], dict[str, str]]:
    """(members of each segment that ran, error of each that did not)."""
    try:
        return evaluate(store, project_id, rules, as_of, vocabulary=vocabulary,
                        known_at=known_at).member_ids(), {}
    except Exception as exc:  # noqa: BLE001 - which segment failed is found below
        if is_disconnect(exc):
            raise
        log.warning("refresh of project %s: one pass failed (%s); segment by segment",
                    project_id, _message(exc))
    members: dict[str, pa.Array] = {}
    errors: dict[str, str] = {}
    for name in rules:
        try:
            ev = evaluate(store, project_id, _closure(rules, name), as_of, only=[name],
                          vocabulary=vocabulary, known_at=known_at)
            members[name] = ev.member_ids()[name]
        except Exception as exc:  # noqa: BLE001 - recorded with the segment, shown to users
            if is_disconnect(exc):
                raise
            errors[name] = _message(exc)
    return members, errors


def _closure(rules: Mapping[str, Rule], name: str) -> dict[str, Rule]:
    """The segment and those it refers to, transitively (evaluate lowers every rule it is
    given, so a broken neighbour must not be among them)."""
    out: dict[str, Rule] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in out or current not in rules:
            continue  # an unknown reference fails when lowered, naming it
        out[current] = rules[current]
        todo.extend(references(rules[current]))
    return out


def refresh(store: Store, project_id: str, rules: Mapping[str, Rule],
            versions: Mapping[str, int], as_of: datetime | None = None,
            vocabulary: Vocabulary | None = None,
            failed: Mapping[str, str] | None = None,
            known_at: datetime | None = None,
            outbox: Outbox | None = None,
            record: Collection[str] | None = None) -> list[snap.RefreshResult]:
    """Evaluate what can run at as_of as known at known_at (each default now) and record
    it; `failed` (name -> error) are segments known not to run (definitions that no
    longer validate), recorded as failures. `outbox`: given each segment's entries and
    exits, the rows that queue their deliveries, written in the snapshots' transaction.
    `record`: only these are recorded (the others are what they refer to)."""
    as_of, known_at = instants(as_of, known_at)
    members, errors = evaluate_each(store, project_id, rules, as_of, vocabulary, known_at)
    errors.update(failed or {})
    if record is not None:
        members = {n: m for n, m in members.items() if n in record}
        errors = {n: e for n, e in errors.items() if n in record}
    return snap.record_all(store, project_id, members, as_of, versions=dict(versions),
                           data_through=data_through(store, project_id, as_of, known_at),
                           errors=errors, known_at=known_at, also=outbox)


def refresh_stored(store: Store, project_id: str, as_of: datetime | None = None,
                   vocabulary: Vocabulary | None = None,
                   known_at: datetime | None = None,
                   outbox: Outbox | None = None,
                   only: Collection[str] | None = None) -> list[snap.RefreshResult]:
    """Refresh every live stored definition (`segments/definitions.py`) at one instant, or
    `only` these (with what they refer to evaluated, not recorded: a segment just saved);
    a stored definition that no longer validates is recorded failed, the others refresh."""
    live, broken = defs.current(store, project_id), defs.broken(store, project_id)
    rules = {n: d.rule for n, d in live.items()}
    if only is not None:
        rules = {k: r for n in only if n in rules for k, r in _closure(rules, n).items()}
        broken = {n: b for n, b in broken.items() if n in only}
    if not rules and not broken:
        return []
    versions = {n: d.version for n, d in live.items()} | {n: b.version for n, b in broken.items()}
    return refresh(store, project_id, rules, versions, as_of,
                   vocabulary, failed={n: b.error for n, b in broken.items()},
                   known_at=known_at, outbox=outbox, record=only)


def data_through(store: Store, project_id: str, as_of: datetime,
                 known_at: datetime | None = None) -> datetime | None:
    """The latest event time that counts at as_of, as known at known_at (default as_of):
    what "data through" means."""
    e = store.events(project_id)
    e = e.filter(e.timestamp < as_of, e.received_at <= (known_at or as_of))
    return e.timestamp.max().to_pyarrow().as_py()


def latest_errors(store: Store, project_id: str) -> dict[str, dict[str, object]]:
    """Each segment's latest error, when no snapshot was recorded after it (the error is
    what its latest refresh found)."""
    snap.ensure_tables(store)
    errs = snap.errors(store, project_id)
    ranked = errs.mutate(_r=ibis.row_number().over(group_by=errs.segment,
                                                   order_by=errs.computed_at.desc()))
    latest = ranked.filter(ranked._r == 0).drop("_r")
    s = snap.snapshots(store, project_id)
    done = s.group_by("segment").aggregate(_last=s.computed_at.cast(dt.timestamp).max())
    joined = latest.left_join(done, "segment")
    still: ir.BooleanValue = joined._last.isnull() | (joined.computed_at >= joined._last)
    rows = joined.filter(still).select("segment", "version", "as_of", "computed_at",
                                       "message").to_pyarrow().to_pylist()
    return {row["segment"]: row for row in rows}


# -- incremental: only the users with new events -------------------------------------------
POPULATION_KINDS = frozenset({"metric", "account"})  # truth depends on other users too


def _kinds(data: object) -> set[str]:
    if isinstance(data, dict):
        found = {data["kind"]} if isinstance(data.get("kind"), str) else set()
        return found.union(*(_kinds(v) for v in data.values()))
    if isinstance(data, list):
        return set().union(*(_kinds(v) for v in data))
    return set()


def per_user(rules: Mapping[str, Rule]) -> dict[str, Rule]:
    """The segments whose truth for a user depends on that user's data alone (so
    re-evaluating only the users with new events is exact): no metric condition (scores
    and percentiles are relative to every user) and no account condition (an account's
    other users), in the segment or any segment it refers to."""
    own = {name: _kinds(rule_json(rule)) for name, rule in rules.items()}
    return {name: rules[name] for name in rules
            if all(not own.get(n, set()) & POPULATION_KINDS for n in _closure(rules, name))}


def refresh_users(store: Store, project_id: str, persons: tuple[str, ...], at: datetime,
                  vocabulary: Vocabulary | None = None, outbox: Outbox | None = None
                  ) -> dict[str, tuple[pa.Array, pa.Array]]:
    """Re-evaluate the per-user segments for these persons at `at` (known now), and write
    the entries and exits against their current memberships as transitions (no snapshot:
    the next full refresh counts from them) with their outbox rows. Returns segment ->
    (entered, exited). Segments that fail here are left to the full refresh."""
    live = defs.current(store, project_id)
    rules = per_user({n: d.rule for n, d in live.items()})
    if not rules or not persons:
        return {}
    try:
        ev = evaluate(store, project_id, rules, at, vocabulary=vocabulary, known_at=at,
                      persons=persons)
        now = {name: set(ids.to_pylist()) for name, ids in ev.member_ids().items()}
    except Exception as exc:  # noqa: BLE001 - the full refresh records the error
        if is_disconnect(exc):
            raise
        log.warning("incremental refresh of project %s skipped: %s", project_id,
                    _message(exc))
        return {}
    was = snap.current_of(store, project_id, list(rules), persons)
    changes = {name: (pa.array(sorted(now[name] - was.get(name, set())), pa.string()),
                      pa.array(sorted(was.get(name, set()) - now[name]), pa.string()))
               for name in rules}
    changes = {n: c for n, c in changes.items() if len(c[0]) or len(c[1])}
    snap.record_changes(store, project_id, changes, at, outbox)
    return changes
