"""What a running server keeps in memory to answer `GET /v1/campaigns` in a few
milliseconds: per project, the live campaigns and in-app settings (re-read every few
seconds), each user's `UserState` (what they saw, dismissed, answered, the task events
they did) and the recorded holdout arms.

The state is a fold of ordinary events: loaded once per project from the events table
(`load`), then kept current by `observe`, which the app calls with every batch it has
committed (`web/state.py` `AppState.write`), so a dismissal or an answer counts on the
very next request, on any device. Arms are recorded in memory at once (never re-drawn)
and written to `campaign_assignments` by a background flush (`flush`, every second, and
at shutdown). A campaign saved with new task events makes the next request reload the
state. Decisions are `act/targeting.py`'s; memberships come from `MembershipIndex`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from segmently.act import assignments, targeting
from segmently.act import campaigns as camps
from segmently.act.targeting import UserState
from segmently.profile import vocabularies
from segmently.profile.config import Vocabulary
from segmently.profile.jsonvalues import string_at
from segmently.profile.matchers import any_of
from segmently.runtime.memberships import MembershipIndex
from segmently.store import Message, Store, utcnow
from segmently.store.views import resolved_events

log = logging.getLogger(__name__)
DEFINITIONS_SECONDS = 2.0  # how stale the campaigns and settings may be


@dataclass
class ProjectState:
    campaigns: dict[str, camps.Stored]
    settings: camps.InAppSettings
    vocabulary: Vocabulary
    watched: frozenset[str]
    reaches: dict[str, frozenset[str]] = field(default_factory=dict)  # event -> milestones
    users: dict[str, UserState] = field(default_factory=dict)
    arms: dict[tuple[str, str], str] = field(default_factory=dict)
    read_at: float = field(default_factory=time.monotonic)

    def user(self, user_id: str) -> UserState:
        found = self.users.get(user_id)
        if found is None:
            found = self.users[user_id] = UserState()
        return found


def load(store: Store, project_id: str) -> ProjectState:
    """The project's campaigns and the fold of its watched events and milestones."""
    campaigns = camps.current(store, project_id)
    vocab = vocabularies.vocabulary(store, project_id)
    state = ProjectState(campaigns, camps.settings(store, project_id), vocab,
                         targeting.watched(campaigns.values()),
                         targeting.milestones_by_event(vocab))
    state.arms = dict(assignments.load(store, project_id))
    e = resolved_events(store, project_id)
    rows = e.filter(e.event.isin(sorted(state.watched)) & e.person_id.notnull()).select(
        user="person_id", event="event", at="received_at",
        campaign=string_at(e.properties, "campaign"), task=string_at(e.properties, "task"),
    ).order_by("at").to_pyarrow().to_pylist()
    for row in rows:
        state.user(row["user"]).observe(row["event"], row["at"], row["campaign"], row["task"])
    used = {t.milestone for s in campaigns.values() for t in s.campaign.tasks() if t.milestone}
    for milestone in vocab.milestones:
        if milestone.name not in used:
            continue
        reached = e.filter(any_of(milestone.events, e) & e.person_id.notnull())
        for user in reached.select("person_id").distinct().to_pyarrow()["person_id"] \
                .to_pylist():
            state.user(user).milestones.add(milestone.name)
    return state


class Engagement:
    """Every project's targeting state, and the decisions of `GET /v1/campaigns`."""

    def __init__(self, store: Store, index: MembershipIndex) -> None:
        self.store = store
        self.index = index
        self._projects: dict[str, ProjectState] = {}
        self._lock = threading.RLock()
        self._pending: dict[str, list[assignments.Assignment]] = {}
        self._settings: dict[str, tuple[camps.InAppSettings, float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state -----------------------------------------------------------------------------
    def project(self, project_id: str) -> ProjectState:
        """The state, loaded on first use; definitions re-read when older than a few
        seconds (a reload of the fold only when the watched events changed)."""
        with self._lock:
            state = self._projects.get(project_id)
        if state is None:
            return self._reload(project_id)
        if time.monotonic() - state.read_at > DEFINITIONS_SECONDS:
            campaigns = camps.current(self.store, project_id)
            vocab = vocabularies.vocabulary(self.store, project_id)
            if targeting.watched(campaigns.values()) != state.watched or \
                    vocab != state.vocabulary:
                return self._reload(project_id)
            with self._lock:
                state.campaigns = campaigns
                state.settings = self.settings(project_id)
                state.read_at = time.monotonic()
        return state

    def _reload(self, project_id: str) -> ProjectState:
        fresh = load(self.store, project_id)
        gc.freeze()  # millions of long-lived objects: out of the full collections' scans
        with self._lock:
            old = self._projects.get(project_id)
            if old is not None:  # arms drawn meanwhile and not yet flushed stay
                fresh.arms.update({k: v for k, v in old.arms.items() if k not in fresh.arms})
            self._projects[project_id] = fresh
        return fresh

    def fresh(self, project_id: str) -> bool:
        """Whether `choose` (and `settings`) can answer from memory alone; when not, the
        web layer calls `prepare` in a worker thread first, so the event loop never waits
        on the database."""
        state = self._projects.get(project_id)
        return state is not None and time.monotonic() - state.read_at <= DEFINITIONS_SECONDS \
            and self.settings_fresh(project_id) and self.index.get(project_id) is not None

    def settings_fresh(self, project_id: str) -> bool:
        found = self._settings.get(project_id)
        return found is not None and time.monotonic() - found[1] <= DEFINITIONS_SECONDS

    def prepare(self, project_id: str) -> None:
        """Read what is stale: settings, definitions, the fold, the memberships."""
        self.settings(project_id)
        self.project(project_id)
        self.index.ensure(project_id)

    def settings(self, project_id: str) -> camps.InAppSettings:
        """The project's in-app settings, read at most every few seconds (every ingestion
        request asks, for identity verification)."""
        found = self._settings.get(project_id)
        if found is None or time.monotonic() - found[1] > DEFINITIONS_SECONDS:
            found = (camps.settings(self.store, project_id), time.monotonic())
            self._settings[project_id] = found
        return found[0]

    def forget(self, project_id: str) -> None:
        """Read the definitions again on the next request (after a save through core)."""
        with self._lock:
            state = self._projects.get(project_id)
            if state is not None:
                state.read_at = 0.0
            self._settings.pop(project_id, None)

    def observe(self, project_id: str, messages: Iterable[Message]) -> None:
        """Fold committed events in (only into a project already loaded: a later load
        reads them from the table)."""
        with self._lock:
            state = self._projects.get(project_id)
            if state is None:
                return
            now = utcnow()
            for m in messages:
                user = m.distinct_id
                if user is None or m.type != "track":
                    continue
                if m.event in state.watched:
                    props = m.properties
                    state.user(user).observe(m.event, now, _text(props.get("campaign")),
                                             _text(props.get("task")))
                reached = state.reaches.get(m.event)
                if reached:
                    state.user(user).milestones.update(reached)

    # -- decisions -------------------------------------------------------------------------
    def choose(self, project_id: str, user_id: str, path: str | None,
               event: str | None, now: datetime | None = None) -> targeting.Choice:
        state = self.project(project_id)
        memberships = self.index.ensure(project_id).of(user_id)
        now = now or utcnow()
        with self._lock:
            user = state.users.get(user_id) or UserState()
            choice = targeting.choose(state.campaigns, user_id, user, memberships,
                                      state.arms, state.settings, now, path, event)
            for a in choice.assigned:
                state.arms[(a.campaign, a.user_id)] = a.arm
            if choice.assigned:
                self._pending.setdefault(project_id, []).extend(choice.assigned)
        return choice

    # -- writing the arms --------------------------------------------------------------------
    def flush(self) -> int:
        """Write the arms drawn since the last flush; on failure they wait for the next."""
        with self._lock:
            pending, self._pending = self._pending, {}
        written = 0
        for project_id, rows in pending.items():
            try:
                assignments.record(self.store, project_id, rows)
                written += len(rows)
            except Exception:  # noqa: BLE001 - e.g. the database busy: kept for the next flush
                log.exception("recording %d campaign assignments failed", len(rows))
                with self._lock:
                    self._pending.setdefault(project_id, []).extend(rows)
        return written

    def start(self, every: float = 1.0) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(every):
                self.flush()

        self._thread = threading.Thread(target=loop, name="segmently-assignments",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)

