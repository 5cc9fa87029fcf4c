"""What the running app holds: the store, the writer, key lookups and limits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from segmently.collect.limits import Limits
from segmently.store import Message, Store
from segmently.store.writer import GroupCommitWriter
from segmently.web.auth import KeyCache


@dataclass
class AppState:
    store: Store
    limits: Limits = field(default_factory=Limits)
    control_token: str | None = None  # lets the local CLI run commands here
    writer: GroupCommitWriter = field(init=False)
    keys: KeyCache = field(init=False)

    def __post_init__(self) -> None:
        self.writer = GroupCommitWriter(self.store)
        self.keys = KeyCache(self.store)

    async def write(self, project_id: str, messages: list[Message]) -> int:
        """Resolve once the messages are committed: only then may the client hear 200."""
        return await asyncio.wrap_future(self.writer.submit(project_id, messages))
