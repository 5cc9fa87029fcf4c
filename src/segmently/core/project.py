"""The application core: one project's verbs, for every shell.

    p = Project.open(store, "acme")          # by name or id; the only project if None
    p.apply(workspace)                       # the file -> stored definitions (a Plan)
    p.summaries()                            # each segment, its version, size, freshness
    p.evaluation(as_of, known_at)            # every segment in one pass
    p.member_ids("power") / p.members_page(...) / p.explain("power", "u1")
    p.refresh(as_of) / p.backfill(start, end, every)
    p.profile("u1") / p.user_segments("u1")
    p.history("power") / p.revert("power", 2) / p.rename("power", "champions")

The CLI (`cli/` through `commands.py`), the HTTP API and UI (`web/`) and the Python API
(`api.py`) only translate arguments and results to and from these. Every read takes the
project's definitions and vocabulary from the database (`segments/definitions.py`,
`profile/vocabularies.py`): there is no second home to disagree with. Next hops: the
stages in `segments/`, `profile/`, `store/`.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from segmently.act import applying as campaign_apply
from segmently.act import assignments, delivery, outbox, targeting
from segmently.act import campaigns as camps
from segmently.act import destinations as dests
from segmently.core.instants import Instant, instant, pair, steps
from segmently.errors import NotFoundError
from segmently.insights import registry as insight_registry
from segmently.profile import stored, vocabularies
from segmently.profile.build import build_profiles
from segmently.profile.config import Vocabulary
from segmently.profile.jsonvalues import string_at
from segmently.segments import apply as applying
from segmently.segments import definitions as defs
from segmently.segments import refreshing
from segmently.segments import snapshots as snap
from segmently.segments.errors import RuleError, UnknownUserError
from segmently.segments.evaluate import Evaluation, evaluate
from segmently.segments.explain import Explanation, explain_many
from segmently.segments.member_views import Members
from segmently.segments.rules import Rule, parse_rule
from segmently.segments.workspace import Workspace
from segmently.settings import Settings
from segmently.store import Store, utcnow
from segmently.store.projects import Project as StoredProject
from segmently.store.projects import list_projects

MAX_PAGE = 10_000


class UnknownProjectError(NotFoundError):
    code = "unknown_project"


log = logging.getLogger(__name__)


def prepare(store: Store) -> None:
    """Before a refresh: merge the finished receive days' rollups and write their activity
    days (`Store.compact_rollups`: fewer rows for the evaluation and every insight after
    it), then give PostgreSQL's planner statistics of what was written since
    (`Store.refresh_statistics`). Optimisations: a refresh goes on without them."""
    for step in (store.compact_rollups, store.refresh_statistics):
        quietly(step)


def quietly(step: Callable[[], object]) -> None:
    """Run an optimisation; logged if it fails: the answers are the same without it."""
    try:
        step()
    except Exception:  # noqa: BLE001 - logged; the answers are the same without
        log.exception("%s failed", getattr(step, "__name__", step))


def plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO 8601, NaN as None."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


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
    """A segment's latest refresh error as shown (None: its latest refresh ran)."""
    if row is None:
        return None
    return {"message": row["message"], "as_of": _iso(row["as_of"]),
            "at": _iso(row["computed_at"]), "version": int(row["version"])}


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


def choose_project(known: Sequence[tuple[str, str]], project: str | None) -> str:
    """The one lookup of a project among (id, name) pairs: by name or id; with None, the
    only project."""
    names = ", ".join(name for _, name in known) or "none"
    if project is None:
        if len(known) != 1:
            raise UnknownProjectError(f"name a project (--project); this database has "
                                      f"{len(known)}: {names}")
        return known[0][0]
    for pid, name in known:
        if project in (name, pid):
            return pid
    raise UnknownProjectError(f"no project named {project!r}; projects: {names}")


def find_project_id(store: Store, project: str | None) -> str:
    """`choose_project` among the store's projects."""
    return choose_project([(p.project_id, p.name) for p in list_projects(store)], project)


@dataclass
class Project:
    """One project of a store. Cheap to make: it holds no data, only the two handles."""

    store: Store
    id: str

    @classmethod
    def open(cls, store: Store, project: str | None = None) -> Project:
        return cls(store, find_project_id(store, project))

    def record(self) -> StoredProject:
        """The project's row: name, public write key, creation time."""
        found = self._record()
        if found is None:
            raise UnknownProjectError(f"no project {self.id!r}")
        return found

    def _record(self) -> StoredProject | None:
        return next((p for p in list_projects(self.store) if p.project_id == self.id), None)

    # -- definitions ---------------------------------------------------------------------
    def vocabulary(self) -> Vocabulary:
        return vocabularies.vocabulary(self.store, self.id)

    def definitions(self) -> dict[str, defs.Definition]:
        return defs.current(self.store, self.id)

    def rules(self) -> dict[str, Rule]:
        return {n: d.rule for n, d in self.definitions().items()}

    def definition(self, name: str) -> defs.Definition:
        live = self.definitions()
        if name not in live:
            raise defs.not_found(self.store, self.id, name)
        return live[name]

    def plan(self, workspace: Workspace, prune: bool = False) -> applying.Plan:
        """What applying the file would do: vocabulary, segments, then campaigns."""
        campaign_apply.check(self.store, self.id, workspace)
        found = applying.plan(self.store, self.id, workspace, prune)
        found.items += campaign_apply.items(self.store, self.id, workspace, prune)
        return found

    def apply(self, workspace: Workspace, prune: bool = False, force: bool = False,
              dry_run: bool = False) -> applying.Plan:
        """The file written: vocabulary and segments in one transaction, then its
        campaigns and in-app settings (validated before anything is written)."""
        campaign_apply.check(self.store, self.id, workspace)
        with self.store.write_lock:
            done = applying.apply(self.store, self.id, workspace, prune, force, dry_run)
            planned = campaign_apply.items(self.store, self.id, workspace, prune)
            done.items += planned
            if not dry_run:
                actions: tuple[applying.Action, ...] = ("add", "change", "remove", "drift") \
                    if force else ("add", "change", "remove")
                campaign_apply.write(self.store, self.id, workspace, planned, actions)
                done.applied = done.applied or any(i.action in actions for i in planned)
        return done

    def export(self) -> str:
        found = self._record()
        return applying.export(self.store, self.id, found.name if found else None,
                               campaign_apply.export_data(self.store, self.id))

    def save(self, name: str, description: str | None, rule: Rule | dict[str, Any],
             source: str = "api", create: bool = False) -> defs.Definition:
        write = defs.create if create else defs.save
        write(self.store, self.id, name, description, rule, source=source)
        return defs.get(self.store, self.id, name)

    def delete(self, name: str, source: str = "api") -> int:
        return defs.delete(self.store, self.id, name, source=source)

    def history(self, name: str) -> list[defs.Version]:
        found = defs.history(self.store, self.id, name)
        if not found:
            raise defs.UnknownSegmentError(f"no segment named {name!r} ever existed")
        return found

    def revert(self, name: str, version: int, source: str = "api") -> defs.Definition:
        """A new version equal to an earlier one (the history keeps every step)."""
        old = next((v for v in self.history(name) if v.version == version), None)
        if old is None or old.rule is None:
            raise defs.UnknownSegmentError(f"segment {name!r} has no version {version} "
                                           "with a rule (a deletion cannot be reverted to)")
        defs.write(self.store, self.id, {name: (old.description or "", _parse(name, old.rule))},
                   source=source)
        return defs.get(self.store, self.id, name)

    def rename(self, name: str, new_name: str, source: str = "api") -> defs.Definition:
        """The definition under a new name (version 1 of it, or the next after a deletion)
        and the old name deleted, in one transaction; segments referring to the old name
        must be changed first (the reference check refuses otherwise)."""
        old = self.definition(name)
        defs.check_name(new_name)
        if new_name in self.definitions():
            raise defs.SegmentExistsError(f"a segment named {new_name!r} exists")
        defs.write(self.store, self.id, {new_name: (old.description, old.rule), name: None},
                   source=source)
        return defs.get(self.store, self.id, new_name)

    # -- acting --------------------------------------------------------------------------
    def destinations(self) -> dict[str, dests.Destination]:
        return dests.current(self.store, self.id)

    def save_destination(self, data: dict[str, Any] | dests.Destination,
                         source: str = "api", create: bool = False
                         ) -> dests.Destination:
        """Store a destination (every segment it subscribes to must exist)."""
        dest = data if isinstance(data, dests.Destination) else \
            dests.parse(data)
        live = self.definitions()
        for sub in dest.subscriptions:
            for name in sub.segments:
                if name not in live:
                    raise dests.DestinationError(
                        f"subscriptions: no segment named {name!r}; known: "
                        f"{', '.join(sorted(live)) or 'none'}")
        with self.store.write_lock:  # a snapshot is written before or after, never between
            before = dests.current(self.store, self.id).get(dest.name)
            version = dests.save(self.store, self.id, dest, source, create=create)
            saved = dests.get(self.store, self.id, dest.name)
            self._welcome(saved, version, before)
        return saved

    def _welcome(self, dest: dests.Destination, version: int,
                 before: dests.Destination | None) -> None:
        """Queue a new subscription's start: the current members of each counted segment
        (`outbox.welcome_rows`); the delivery worker sends them like a refresh's."""
        names = {s for sub in dest.subscriptions for s in sub.segments}
        latest = {n: row["as_of"] for n, row in snap.latest(self.store, self.id).items()
                  if n in names}
        if not latest:
            return
        rows = snap.members_at_each(self.store, self.id, dict.fromkeys(latest, snap.END)) \
            .to_pyarrow()
        members = {n: (at, pc.filter(rows["user_id"], pc.equal(rows["segment"], n))
                       .combine_chunks().cast(pa.string()))
                   for n, at in latest.items()}
        found = outbox.welcome_rows(self.id, dest, version, before, members)
        if found:
            outbox.ensure_tables(self.store)
            self.store.insert_tables(found)

    def destination(self, name: str) -> dests.Destination:
        return dests.get(self.store, self.id, name)

    def update_destination(self, name: str, data: dict[str, Any], source: str = "api"
                           ) -> dests.Destination:
        """Replace a destination's definition; secrets left out (or null) keep their stored
        values, and saving re-enables it unless told otherwise."""
        old = self.destination(name)
        data = {**data, "name": name}
        for key in ("secret", "previous_secret", "write_key"):
            if data.get(key) is None:
                data[key] = getattr(old, key)
        data.setdefault("disabled_reason", None)
        return self.save_destination(data, source)

    def delete_destination(self, name: str, source: str = "api") -> int:
        return dests.delete(self.store, self.id, name, source)

    def deliveries(self, name: str | None = None, limit: int = 200) -> dict[str, Any]:
        """A destination's (or every one's) messages by state and its latest attempts."""
        if name is not None:
            dests.get(self.store, self.id, name)
        states = outbox.states(self.store, self.id, name)
        counts = states.group_by("state").aggregate(n=states.count()).to_pyarrow().to_pylist()
        return {"destination": name, "counts": {r["state"]: int(r["n"]) for r in counts},
                "attempts": [{k: plain(v) for k, v in row.items()} for row in
                             outbox.attempts(self.store, self.id, destination=name,
                                             limit=limit)]}

    def replay(self, message_ids: list[str] | None = None, destination: str | None = None,
               since: Instant = None, until: Instant = None) -> int:
        """Queue messages again: these ids, or a destination's messages created in
        [since, until) (delivered and failed ones too; the same webhook-id is sent)."""
        if message_ids is None:
            if destination is None or since is None:
                raise dests.DestinationError(
                    "replay: give message ids, or a destination and since")
            dests.get(self.store, self.id, destination)  # unknown: a 404 naming it
            t = outbox.states(self.store, self.id, destination)
            t = t.filter(t.created_at >= instant(since, "since"))
            if until is not None:
                t = t.filter(t.created_at < instant(until, "until"))
            message_ids = t.message_id.to_pyarrow().to_pylist()
        wrong = [m for m in message_ids if not outbox.MESSAGE_ID.fullmatch(m)]
        if wrong:
            raise dests.DestinationError(f"message_ids: {wrong[0]!r} is not a message id "
                                         "(msg_ and 32 hex digits)")
        return outbox.replay(self.store, self.id, message_ids)

    def test_destination(self, name: str, settings: Settings | None = None) -> dict[str, Any]:
        """Send one signed test message now (not through the outbox) and say how it went."""
        dest = dests.get(self.store, self.id, name)
        found = delivery.send_test(dest, settings or Settings(), self.id)
        return {"destination": name, "ok": found.ok, "status": found.status,
                "latency_ms": found.latency_ms, "error": found.error,
                "excerpt": found.excerpt}

    def deliver(self, settings: Settings | None = None) -> delivery.Report:
        """One delivery pass over this project's destinations (`segmently deliver`)."""
        return delivery.deliver_due(self.store, settings, self.id)

    # -- in-app campaigns ----------------------------------------------------------------
    def campaigns(self) -> dict[str, camps.Stored]:
        return camps.current(self.store, self.id)

    def campaign(self, name: str) -> camps.Stored:
        return camps.get(self.store, self.id, name)

    def save_campaign(self, data: dict[str, Any] | camps.Campaign, source: str = "api",
                      create: bool = False) -> camps.Stored:
        """Store a campaign as its next version; its audience's segments and its
        checklist's milestones must exist (a goal's rule may name any segment)."""
        campaign = data if isinstance(data, camps.Campaign) else camps.parse(data)
        live = self.definitions()
        for name in campaign.audience.segments():
            if name not in live:
                raise camps.CampaignError(f"audience: no segment named {name!r}; known: "
                                          f"{', '.join(sorted(live)) or 'none'}")
        milestones = {m.name for m in self.vocabulary().milestones}
        for task in campaign.tasks():
            if task.milestone and task.milestone not in milestones:
                raise camps.CampaignError(
                    f"content.tasks: {task.id}: no milestone named {task.milestone!r}; "
                    f"known: {', '.join(sorted(milestones)) or 'none'}")
        camps.save(self.store, self.id, campaign, source, create=create)
        return self.campaign(campaign.name)

    def delete_campaign(self, name: str, source: str = "api") -> int:
        return camps.delete(self.store, self.id, name, source)

    def campaign_history(self, name: str) -> list[dict[str, Any]]:
        return [v.to_json() for v in camps.history(self.store, self.id, name)]

    def campaign_summaries(self) -> list[dict[str, Any]]:
        """Every live campaign with its users by arm and how many saw it."""
        arms = assignments.counts(self.store, self.id)
        shown = self._shown_users()
        now = utcnow()
        return [{**s.to_json(), "live": s.campaign.enabled and s.campaign.schedule.open_at(now),
                 "assigned": arms.get(name, {}).get("treatment", 0),
                 "held_out": arms.get(name, {}).get("holdout", 0),
                 "shown_users": shown.get(name, 0)}
                for name, s in self.campaigns().items()]

    def _shown_users(self) -> dict[str, int]:
        e = self.store.events(self.id)
        e = e.filter(e.event == targeting.SHOWN)
        e = e.mutate(campaign=string_at(e.properties, "campaign"),
                     who=e.user_id.coalesce(e.anonymous_id))
        rows = e.group_by("campaign").aggregate(n=e.who.nunique()).to_pyarrow().to_pylist()
        return {r["campaign"]: int(r["n"]) for r in rows if r["campaign"] is not None}

    def in_app_settings(self) -> camps.InAppSettings:
        return camps.settings(self.store, self.id)

    def set_in_app_settings(self, data: dict[str, Any], source: str = "api"
                            ) -> camps.InAppSettings:
        """Change some settings (the others kept); turning identity verification on
        makes the verification secret, shown whole in this answer only."""
        value = camps.parse_settings(data, self.in_app_settings())
        return camps.save_settings(self.store, self.id, value, source)

    # -- insights ------------------------------------------------------------------------
    def insight(self, name: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """One analysis of `insights/` (`insights/registry.py`: retention, stickiness,
        segment flow, friction, feature lift, campaign results...) with its parameters
        (validated; a wrong one is a 400 naming it)."""
        found = insight_registry.find(name)
        parsed = insight_registry.parse_params(found, dict(params or {}))
        ctx = insight_registry.Context(self.store, self.id, self.vocabulary(),
                                       self.members_of, lambda: sorted(self.definitions()),
                                       utcnow())
        return found.run(ctx, parsed)

    # -- evaluating ----------------------------------------------------------------------
    def evaluation(self, as_of: Instant = None, known_at: Instant = None,
                   only: list[str] | None = None) -> Evaluation:
        """Every live segment (or `only` these) at as_of as known at known_at (each
        default now), in one pass over the events."""
        rules = self.rules()
        for name in only or []:
            if name not in rules:
                raise defs.not_found(self.store, self.id, name)
        at, known = pair(as_of, known_at)
        return evaluate(self.store, self.id, rules, at, only=only,
                        vocabulary=self.vocabulary(), known_at=known)

    @staticmethod
    def wide(ev: Evaluation) -> ir.Table:
        """user_id plus one boolean column per segment, named by the segment."""
        t = ev.table
        return t.select("user_id", **{name: t[col] for name, col in ev.columns.items()}) \
            .order_by("user_id")

    def evaluated_members(self, name: str, as_of: Instant = None,
                          known_at: Instant = None) -> pa.Table:
        """The sorted user_id of one segment's members, evaluated now (never a snapshot)."""
        return self.evaluation(as_of, known_at, only=[name]).members(name).to_pyarrow()

    def member_ids(self, name: str, as_of: datetime | None = None,
                   known_at: datetime | None = None) -> Members:
        """A segment's members as a lazy table: from the latest snapshot of the live
        version, else (an `as_of` or `known_at`, no snapshot, or a newer version)
        evaluated live."""
        live = self.definition(name)
        latest = snap.latest(self.store, self.id).get(name)
        if as_of is None and known_at is None and latest is not None \
                and latest["version"] == live.version:
            return Members(snap.members_at(self.store, self.id, name, latest["as_of"]),
                           latest["as_of"], "snapshot")
        ev = self.evaluation(as_of, known_at, only=[name])
        return Members(ev.members(name), ev.as_of, "live")

    def members_page(self, name: str, *, as_of: datetime | None = None, limit: int = 100,
                     cursor: str | None = None,
                     known_at: datetime | None = None) -> MembersPage:
        """Members sorted by user id, `limit` at a time (keyset pagination: a cursor is
        the last id of the previous page)."""
        if not 1 <= limit <= MAX_PAGE:
            raise RuleError(f"limit: must be between 1 and {MAX_PAGE}")
        after = decode_cursor(cursor) if cursor else None
        found = self.member_ids(name, as_of, known_at)
        ids = found.ids if after is None else found.ids.filter(found.ids.user_id > after)
        got = ids.order_by("user_id").limit(limit + 1).to_pyarrow()["user_id"].to_pylist()
        more = len(got) > limit
        return MembersPage(got[:limit], encode_cursor(got[limit - 1]) if more else None,
                           found.as_of, found.source)

    def members_of(self, names: list[str]) -> ir.Table:
        """(segment, user_id) of several segments, each read as `member_ids` would: those
        whose latest snapshot is of their live version in one query, the rest evaluated
        live together."""
        live = self.definitions()
        for name in names:
            if name not in live:
                raise defs.not_found(self.store, self.id, name)
        latest = snap.latest(self.store, self.id)
        kept = {n: latest[n]["as_of"] for n in names
                if n in latest and latest[n]["version"] == live[n].version}
        parts = [snap.members_at_each(self.store, self.id, kept)] if kept else []
        rest = [n for n in names if n not in kept]
        if rest:
            ev = self.evaluation(only=rest)
            parts += [ev.members(n).select(segment=ibis.literal(n), user_id="user_id")
                      for n in rest]
        if not parts:
            return ibis.memtable({"segment": [], "user_id": []},
                                 schema={"segment": "string", "user_id": "string"})
        return ibis.union(*[p.select(segment=p.segment.cast("string"),  # nullability
                                     user_id=p.user_id.cast("string")) for p in parts])

    def explain(self, name: str, user_id: str, as_of: Instant = None,
                known_at: Instant = None) -> Explanation:
        return self.explain_user(user_id, [name], as_of, known_at)[name]

    def explain_user(self, user_id: str, names: Iterable[str] | None = None,
                     as_of: Instant = None, known_at: Instant = None
                     ) -> dict[str, Explanation]:
        """Why the user is in or out of each of `names` (default: every segment), in one
        evaluation pass over that user's rows (`segments.explain.explain_many`)."""
        rules = self.rules()
        names = list(rules) if names is None else list(names)
        for name in names:
            if name not in rules:
                raise defs.not_found(self.store, self.id, name)
        at, known = pair(as_of, known_at)
        try:
            return explain_many(self.store, self.id, {n: rules[n] for n in names}, user_id,
                                at, rules, vocabulary=self.vocabulary(), known_at=known)
        except LookupError as exc:
            raise UnknownUserError(str(exc)) from exc

    # -- profiles ------------------------------------------------------------------------
    def profile(self, user_id: str, as_of: Instant = None,
                known_at: Instant = None) -> dict[str, Any]:
        """The user's metrics (profile.build_profiles), features used and milestones
        reached, at as_of as known at known_at. At an instant a profile run was stored
        for, its engagement scale spares reading every user's activity."""
        when, known = pair(as_of, known_at)
        vocab = self.vocabulary()
        run = stored.find(self.store, self.id, vocab, when) if known_at is None else None
        built = build_profiles(self.store, self.id, vocab, when, person=user_id,
                               engagement_scale=run.engagement_scale if run else None,
                               known_at=known)
        rows = built.users.filter(built.users.user_id == user_id).to_pyarrow().to_pylist()
        if not rows:
            raise UnknownUserError(f"no user {user_id!r} in this project as of "
                                   f"{when.isoformat()}")
        out: dict[str, Any] = {"user_id": user_id, "as_of": when.isoformat(),
                               "known_at": known.isoformat(),
                               "metrics": {k: plain(v) for k, v in rows[0].items()
                                           if k != "user_id"}}
        for key, table in (("features", built.features), ("milestones", built.milestones)):
            if table is not None:
                mine = table.filter(table.person_id == user_id).drop("person_id")
                out[key] = [{k: plain(v) for k, v in row.items()}
                            for row in mine.to_pyarrow().to_pylist()]
        return out

    def profile_of_run(self, user_id: str, run: stored.Run) -> dict[str, Any]:
        """What `profile` says at a stored run's instant (as known then), read from the
        run: a user page costs that user's rows, not a profile build."""
        found = stored.person(self.store, run, user_id)
        if found is None:
            raise UnknownUserError(f"no user {user_id!r} in this project as of "
                                   f"{run.as_of.isoformat()}")
        vocab = self.vocabulary()
        out: dict[str, Any] = {"user_id": user_id, "as_of": run.as_of.isoformat(),
                               "known_at": run.as_of.isoformat(),
                               "metrics": {k: plain(v) for k, v in found["users"][0].items()}}
        for key, declared in (("features", vocab.features), ("milestones", vocab.milestones)):
            if declared:
                out[key] = [{k: plain(v) for k, v in row.items()} for row in found[key]]
        return out

    def user_segments(self, user_id: str, as_of: Instant = None,
                      known_at: Instant = None) -> dict[str, Explanation]:
        """The segments the user is in at as_of (as known at known_at), each explained:
        every segment explained in one pass over the user's rows, the true ones kept."""
        try:
            every = self.explain_user(user_id, None, as_of, known_at)
        except UnknownUserError:
            return {}
        return {name: why for name, why in every.items() if why.truth}

    # -- snapshots -----------------------------------------------------------------------
    def refresh(self, as_of: Instant = None, known_at: Instant = None,
                profiles: bool = False, deliver: bool = True) -> list[snap.RefreshResult]:
        """Snapshot every live segment at as_of (and the transitions since its previous
        snapshot; idempotent for an instant already stored). A segment that cannot run is
        recorded with its error and the others refresh. With `deliver`, the entries and
        exits subscribed destinations want are queued in the same transaction (act/); a
        backfill of the past queues none. With `profiles`, the profile run the UI's member
        tables read is stored too."""
        at = instant(as_of)
        known = instant(known_at, "known_at") if known_at is not None else None
        prepare(self.store)
        vocab = self.vocabulary()
        queue = self._outbox(at) if deliver else None
        done = refreshing.refresh_stored(self.store, self.id, at, vocab, known, queue)
        quietly(self.store.refresh_statistics)  # the snapshots the pages read next
        if profiles and done:
            stored.record(self.store, self.id, vocab, at)
        return done

    def count(self, name: str) -> snap.RefreshResult | None:
        """Snapshot one segment just saved, so its pages read stored members like every
        other's; its entries and exits are queued for delivery like a refresh's. None
        when its latest snapshot is of its live version already. A new segment is
        counted at the latest refresh's instant (as known now): its pages agree with the
        others' and that refresh's profile run; a changed one now (its earlier version
        holds that instant)."""
        live = self.definitions()
        if name not in live:
            raise defs.not_found(self.store, self.id, name)
        latest = snap.latest(self.store, self.id)
        mine = latest.get(name)
        if mine is not None and mine["version"] == live[name].version:
            return None
        previous = max((row["as_of"] for n, row in latest.items() if n in live), default=None)
        at = previous if mine is None and previous is not None else instant(None)
        done = refreshing.refresh_stored(self.store, self.id, at, self.vocabulary(),
                                         None, self._outbox(at), only=[name])
        return done[0] if done else None

    def refresh_users(self, users: tuple[str, ...], at: Instant = None
                      ) -> dict[str, tuple[pa.Array, pa.Array]]:
        """Re-evaluate only these users (those with new events) at `at` in every segment
        that depends on the user alone, writing their entries and exits and queueing
        deliveries; segment -> (entered, exited). The scheduled full refresh does the rest
        (`refreshing.refresh_users`)."""
        when = instant(at)
        return refreshing.refresh_users(self.store, self.id, users, when, self.vocabulary(),
                                        self._outbox(when))

    def backfill(self, start: Instant, end: Instant = None,
                 every: timedelta = timedelta(days=1), known_at: Instant = None,
                 profiles: bool = False) -> list[snap.RefreshResult]:
        """Refresh at every instant from start to end (default now), oldest first, all as
        known at one instant (default now): imported history fills the past snapshots."""
        known = instant(known_at, "known_at")
        out: list[snap.RefreshResult] = []
        for at in steps(instant(start, "backfill_from"), instant(end), every):
            out.extend(self.refresh(at, known, deliver=False))
        if profiles and out:
            stored.record(self.store, self.id, self.vocabulary(), max(r.as_of for r in out))
        return out

    def _outbox(self, at: datetime) -> refreshing.Outbox:
        """The hook that turns a refresh's changes into outbox rows. The destinations are
        read in the snapshot's transaction (under the write lock, as a destination's save
        is): one saved meanwhile gets these changes or, after them, its welcome."""
        def rows(changes: dict[str, tuple[pa.Array, pa.Array]]) -> dict[str, pa.Table]:
            found = outbox.rows_for(self.id, dests.current(self.store, self.id), at, changes)
            if found:
                outbox.ensure_tables(self.store)
            return found
        return rows

    def size_history(self, segment: str | None = None) -> ir.Table:
        """segment, as_of, known_at, size, version, computed_at, data_through of every
        snapshot (known_at: what had been received when it was evaluated)."""
        snap.ensure_tables(self.store)
        t = snap.snapshots(self.store, self.id, segment)
        return t.select("segment", "as_of", known_at=t.known_at.coalesce(t.as_of),
                        size="size", version="version", computed_at="computed_at",
                        data_through="data_through").order_by(["segment", "as_of"])

    def summaries(self) -> list[dict[str, Any]]:
        """Every live segment with its version, the freshness of its latest snapshot and
        the error of its latest refresh if it failed; a definition that no longer
        validates is listed too (rule None), with why. What every list shows."""
        latest = snap.latest(self.store, self.id)
        errors = refreshing.latest_errors(self.store, self.id)
        out = [{"name": name, "description": d.description, "version": d.version,
                **_freshness(latest.get(name)), "error": error_json(errors.get(name))}
               for name, d in self.definitions().items()]
        out += [{"name": name, "description": "", "version": b.version,
                 **_freshness(latest.get(name)),
                 "error": error_json(errors.get(name)) or {
                     "message": b.error, "as_of": None, "at": None, "version": b.version}}
                for name, b in defs.broken(self.store, self.id).items()]
        return sorted(out, key=lambda row: row["name"])

    def detail(self, name: str) -> dict[str, Any]:
        """One segment: live definition, every version, and its size at every snapshot."""
        d = defs.get(self.store, self.id, name)
        snap.ensure_tables(self.store)
        s = snap.snapshots(self.store, self.id, name).order_by("as_of").to_pyarrow() \
            .to_pylist()
        error = refreshing.latest_errors(self.store, self.id).get(name)
        return {**d.to_json(), **_freshness(s[-1] if s else None), "error": error_json(error),
                "versions": [v.to_json() for v in defs.history(self.store, self.id, name)],
                "sizes": [{"as_of": _iso(r["as_of"]),
                           "known_at": _iso(r["known_at"] or r["as_of"]),
                           "size": int(r["size"]), "version": int(r["version"])} for r in s]}


def _parse(name: str, rule: Mapping[str, Any]) -> Rule:
    return parse_rule(dict(rule), f"{name}.rule")


def result_json(result: snap.RefreshResult) -> dict[str, Any]:
    return {k: plain(v) for k, v in asdict(result).items()}
