"""The small operations the segment HTTP API composes (segments/service.py did not exist
when the API was written): refresh, summaries with freshness, paginated members, profiles.

Everything takes a store and a project id, so one project's data is only ever read through
its own id; the web layer gets that id from the secret key.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from segmently.profile import stored
from segmently.profile.build import build_profiles
from segmently.profile.config import Vocabulary
from segmently.segments import definitions as defs
from segmently.segments import refreshing
from segmently.segments import snapshots as snap
from segmently.segments.errors import RuleError, UnknownUserError
from segmently.segments.evaluate import evaluate
from segmently.segments.windows import instants, to_utc
from segmently.store import Store, utcnow

MAX_PAGE = 10_000


def _now(as_of: datetime | None) -> datetime:
    return to_utc(as_of) if as_of is not None else utcnow()


# -- refresh ---------------------------------------------------------------------------
def refresh(store: Store, project_id: str, as_of: datetime | None = None,
            vocabulary: Vocabulary | None = None,
            known_at: datetime | None = None) -> list[snap.RefreshResult]:
    """Evaluate every live definition once, at one instant, and record a snapshot of each
    (with the transitions since the previous one); a segment that cannot run is recorded
    with its error and the others refresh (segments/refreshing.py). `vocabulary` declares
    the features, milestones and scores product conditions read."""
    live, broken = defs.current(store, project_id), defs.broken(store, project_id)
    if not live and not broken:
        return []
    versions = {n: d.version for n, d in live.items()} | {n: b.version for n, b in broken.items()}
    return refreshing.refresh(store, project_id, {n: d.rule for n, d in live.items()},
                              versions, as_of, vocabulary,
                              failed={n: b.error for n, b in broken.items()},
                              known_at=known_at)


# -- reading snapshots -------------------------------------------------------------------
def latest_snapshots(store: Store, project_id: str) -> dict[str, dict[str, Any]]:
    snap.ensure_tables(store)
    s = snap.snapshots(store, project_id)
    ranked = s.mutate(_r=ibis.row_number().over(group_by=s.segment, order_by=s.as_of.desc()))
    rows = ranked.filter(ranked._r == 0).drop("_r").to_pyarrow().to_pylist()
    return {row["segment"]: row for row in rows}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _freshness(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"size": None, "last_computed": None, "as_of": None, "known_at": None,
                "data_through": None, "computed_version": None}
    return {"size": int(row["size"]), "last_computed": _iso(row["computed_at"]),
            "as_of": _iso(row["as_of"]), "known_at": _iso(row["known_at"] or row["as_of"]),
            "data_through": _iso(row["data_through"]), "computed_version": int(row["version"])}


def error_json(row: dict[str, Any] | None) -> dict[str, Any] | None:
    """A segment's latest refresh error as the API shows it (None: its latest refresh ran)."""
    if row is None:
        return None
    return {"message": row["message"], "as_of": _iso(row["as_of"]),
            "at": _iso(row["computed_at"]), "version": int(row["version"])}


def summaries(store: Store, project_id: str) -> list[dict[str, Any]]:
    """Every live segment with its version, the freshness of its latest snapshot and the
    error of its latest refresh if it failed. A definition that no longer validates is
    listed too (rule None), with why."""
    latest = latest_snapshots(store, project_id)
    errors = refreshing.latest_errors(store, project_id)
    out = [{"name": name, "description": d.description, "version": d.version,
            **_freshness(latest.get(name)), "error": error_json(errors.get(name))}
           for name, d in defs.current(store, project_id).items()]
    out += [{"name": name, "description": "", "version": b.version,
             **_freshness(latest.get(name)),
             "error": error_json(errors.get(name)) or {
                 "message": b.error, "as_of": None, "at": None, "version": b.version}}
            for name, b in defs.broken(store, project_id).items()]
    return sorted(out, key=lambda row: row["name"])


def detail(store: Store, project_id: str, name: str) -> dict[str, Any]:
    """One segment: live definition, every version, and its size at every snapshot."""
    d = defs.get(store, project_id, name)
    snap.ensure_tables(store)
    s = snap.snapshots(store, project_id, name).order_by("as_of").to_pyarrow().to_pylist()
    error = refreshing.latest_errors(store, project_id).get(name)
    return {**d.to_json(), **_freshness(s[-1] if s else None), "error": error_json(error),
            "versions": [v.to_json() for v in defs.history(store, project_id, name)],
            "sizes": [{"as_of": _iso(r["as_of"]), "known_at": _iso(r["known_at"] or r["as_of"]),
                       "size": int(r["size"]),
                       "version": int(r["version"])} for r in s]}


# -- members -----------------------------------------------------------------------------
def encode_cursor(user_id: str) -> str:
    return base64.urlsafe_b64encode(user_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise RuleError("cursor: not a cursor returned by this API") from exc


@dataclass(frozen=True)
class MembersPage:
    user_ids: list[str]
    next_cursor: str | None
    as_of: datetime
    source: str  # "snapshot" or "live"

    def to_json(self) -> dict[str, Any]:
        return {"members": self.user_ids, "next_cursor": self.next_cursor,
                "as_of": self.as_of.isoformat(), "source": self.source}


def _page(ids: ir.Table, limit: int, after: str | None) -> tuple[list[str], str | None]:
    if after is not None:
        ids = ids.filter(ids.user_id > after)
    got = ids.order_by("user_id").limit(limit + 1).to_pyarrow()["user_id"].to_pylist()
    more = len(got) > limit
    return got[:limit], encode_cursor(got[limit - 1]) if more else None


def members_page(store: Store, project_id: str, name: str, *, as_of: datetime | None = None,
                 limit: int = 100, cursor: str | None = None,
                 vocabulary: Vocabulary | None = None,
                 known_at: datetime | None = None) -> MembersPage:
    """Members sorted by user id, `limit` at a time (keyset pagination: a cursor is the
    last id of the previous page). From the latest snapshot of the live version, or
    evaluated live when `as_of` or `known_at` is given or there is no such snapshot."""
    if not 1 <= limit <= MAX_PAGE:
        raise RuleError(f"limit: must be between 1 and {MAX_PAGE}")
    after = decode_cursor(cursor) if cursor else None
    found = member_ids(store, project_id, name, as_of, vocabulary, known_at)
    users, nxt = _page(found.ids, limit, after)
    return MembersPage(users, nxt, found.as_of, found.source)


@dataclass(frozen=True)
class Members:
    ids: ir.Table  # one column, user_id
    as_of: datetime
    source: str  # "snapshot" or "live"


def member_ids(store: Store, project_id: str, name: str, as_of: datetime | None = None,
               vocabulary: Vocabulary | None = None,
               known_at: datetime | None = None) -> Members:
    """A segment's members as a lazy table: from the latest snapshot of the live version,
    else (an `as_of` or `known_at`, no snapshot, or a newer version) evaluated live."""
    live = defs.current(store, project_id)
    if name not in live:
        raise defs.not_found(store, project_id, name)
    latest = latest_snapshots(store, project_id).get(name)
    if as_of is None and known_at is None and latest is not None \
            and latest["version"] == live[name].version:
        return Members(snap.members_at(store, project_id, name, latest["as_of"]),
                       latest["as_of"], "snapshot")
    ev = evaluate(store, project_id, {n: d.rule for n, d in live.items()}, as_of,
                  only=[name], vocabulary=vocabulary, known_at=known_at)
    return Members(ev.members(name), ev.as_of, "live")


def members_of(store: Store, project_id: str, names: list[str],
               vocabulary: Vocabulary | None = None) -> ir.Table:
    """(segment, user_id) of several segments, each read as `member_ids` would: the ones
    whose latest snapshot is of their live version in one query, the rest evaluated live
    together."""
    live = defs.current(store, project_id)
    for name in names:
        if name not in live:
            raise defs.not_found(store, project_id, name)
    latest = latest_snapshots(store, project_id)
    stored = {n: latest[n]["as_of"] for n in names
              if n in latest and latest[n]["version"] == live[n].version}
    parts = [snap.members_at_each(store, project_id, stored)] if stored else []
    rest = [n for n in names if n not in stored]
    if rest:
        ev = evaluate(store, project_id, {n: d.rule for n, d in live.items()}, _now(None),
                      only=rest, vocabulary=vocabulary)
        parts += [ev.members(n).select(segment=ibis.literal(n), user_id="user_id")
                  for n in rest]
    if not parts:
        return ibis.memtable({"segment": [], "user_id": []},
                             schema={"segment": "string", "user_id": "string"})
    return ibis.union(*[p.select(segment=p.segment.cast("string"),  # nullability differs
                                 user_id=p.user_id.cast("string")) for p in parts])


# -- profiles ----------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def profile(store: Store, project_id: str, user_id: str, vocab: Vocabulary,
            as_of: datetime | None = None, known_at: datetime | None = None) -> dict[str, Any]:
    """The user's metrics (profile.build_profiles, one row) and features used, at as_of as
    known at known_at (each default now). At an instant a profile run was stored for, its
    engagement scale spares reading every user's activity."""
    when, known = instants(as_of, known_at)
    run = stored.find(store, project_id, vocab, when) if known_at is None else None
    built = build_profiles(store, project_id, vocab, when, person=user_id,
                           engagement_scale=run.engagement_scale if run else None,
                           known_at=known)
    rows = built.users.filter(built.users.user_id == user_id).to_pyarrow().to_pylist()
    if not rows:
        raise UnknownUserError(f"no user {user_id!r} in this project as of {when.isoformat()}")
    out: dict[str, Any] = {"user_id": user_id, "as_of": when.isoformat(),
                           "known_at": known.isoformat(),
                           "metrics": {k: _plain(v) for k, v in rows[0].items()
                                       if k != "user_id"}}
    if built.features is not None:
        f = built.features
        used = f.filter(f.person_id == user_id).to_pyarrow().to_pylist()
        out["features"] = [{k: _plain(v) for k, v in row.items() if k != "person_id"}
                           for row in used]
    return out
