"""What the running app holds (`AppState`): the store, the group-commit writer, key and
session lookups, limits and settings, and the runtime it wires (`runtime/`: the membership
index, the refresher, the profile runs' Keeper). Made by `web/app.py` `create_app`; every
route reads it from `request.app.state.segmently`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from segmently.act.identity import verify_messages
from segmently.collect.limits import Limits
from segmently.profile import vocabularies
from segmently.runtime.deliverer import Deliverer
from segmently.runtime.engagement import Engagement
from segmently.runtime.insights import Answers
from segmently.runtime.memberships import MembershipIndex
from segmently.runtime.profiles import Keeper
from segmently.runtime.refresher import Refresher
from segmently.settings import Settings
from segmently.settings import load as load_settings
from segmently.store import Message, Store
from segmently.store.writer import GroupCommitWriter
from segmently.web.auth import KeyCache
from segmently.web.session import Sessions, SignInThrottle


@dataclass
class AppState:
    store: Store
    limits: Limits = field(default_factory=Limits)
    control_token: str | None = None  # lets the local CLI run commands here
    settings: Settings = field(default_factory=load_settings)  # create_app passes its own
    writer: GroupCommitWriter = field(init=False)
    keys: KeyCache = field(init=False)
    index: MembershipIndex = field(init=False)  # current memberships, for targeting
    refresher: Refresher = field(init=False)  # segment refreshes, on request and scheduled
    deliverer: Deliverer = field(init=False)  # the outbox to destinations (act/)
    engagement: Engagement = field(init=False)  # in-app targeting state (act/)
    sessions: Sessions = field(init=False)  # UI sign-ins
    sign_ins: SignInThrottle = field(default_factory=SignInThrottle)  # failed ones
    profiles: Keeper = field(default_factory=Keeper)  # member tables
    insights: Answers = field(default_factory=Answers)  # analyses' answers, per refresh

    def __post_init__(self) -> None:
        self.writer = GroupCommitWriter(self.store)
        self.keys = KeyCache(self.store)
        self.sessions = Sessions(self.store)
        self.index = MembershipIndex(self.store)
        self.refresher = Refresher(self.store, self.index, self.settings.refresh_seconds,
                                   self._refreshed, self.settings.incremental_seconds)
        self.deliverer = Deliverer(self.store, self.settings)
        self.refresher.after_changes = lambda _project: self.deliverer.wake()
        self.engagement = Engagement(self.store, self.index)

    def _refreshed(self, project_id: str, as_of: datetime) -> None:
        """Store the new instant's profiles in the background: a refresh answers without
        them. Deliveries the refresh queued go out now; the insight answers asked for
        lately are recomputed."""
        self.deliverer.wake()
        self.insights.changed(project_id)
        self.profiles.later(self.store, project_id,
                            vocabularies.vocabulary(self.store, project_id), as_of,
                            only_if_used=True)

    async def write(self, project_id: str, messages: list[Message]) -> int:
        """Resolve once the messages are committed: only then may the client hear 200.
        Events of identified users must prove who they are when the project verifies
        identities (act/identity.py); once committed, the targeting state sees them and
        the next incremental refresh re-evaluates their users."""
        settings = self.engagement.settings
        verify_messages(settings(project_id) if self.engagement.settings_fresh(project_id)
                        else await asyncio.to_thread(settings, project_id), messages)
        accepted = await asyncio.wrap_future(self.writer.submit(project_id, messages))
        self.engagement.observe(project_id, messages)
        self.refresher.touch(project_id, {u for m in messages if (u := m.distinct_id)})
        return accepted
