"""Group commit: many concurrent requests, one transaction.

Request handlers submit their messages and wait; a single writer thread drains everything
queued, writes it in one transaction per project and only then resolves the waiting
futures. A request is therefore acknowledged only after its events are committed, while
the cost of a commit (and of the dedup lookup) is shared by every request in the group.

When the database cannot be reached (PostgreSQL down or restarting; `Store.append_rows`
has already retried once on a fresh connection), every waiting future fails with
`DatabaseUnavailableError`, which the web layer answers 503 with Retry-After: the SDKs
send the batch again, and nothing was acknowledged that is not committed.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime

from segmently.store.connections import is_disconnect, unavailable
from segmently.store.rows import Message
from segmently.store.store import Store, utcnow


@dataclass(slots=True)
class _Request:
    project_id: str
    messages: list[Message]
    future: Future[int] = field(default_factory=Future)


class GroupCommitWriter:
    def __init__(self, store: Store, *, max_group_events: int = 100_000) -> None:
        self.store = store
        self.max_group_events = max_group_events
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="segmently-writer", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._thread.start()
            self._started = True

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join()
            self._started = False

    def submit(self, project_id: str, messages: list[Message]) -> Future[int]:
        """Queue messages; the future resolves to their count once they are committed."""
        request = _Request(project_id, messages)
        self._queue.put(request)
        return request.future

    def _drain(self, first: _Request) -> tuple[list[_Request], bool]:
        group, size, stop = [first], len(first.messages), False
        while size < self.max_group_events:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
                break
            group.append(item)
            size += len(item.messages)
        return group, stop

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, stop = self._drain(first)
            self._commit(group, utcnow())
            if stop:
                return

    def _commit(self, group: list[_Request], received_at: datetime) -> None:
        by_project: dict[str, list[_Request]] = {}
        for request in group:
            by_project.setdefault(request.project_id, []).append(request)
        for project_id, requests in by_project.items():
            messages = [m for r in requests for m in r.messages]
            try:
                self.store.append(project_id, messages, received_at)
            except BaseException as exc:  # every waiter must hear about the failure
                failure = unavailable(exc) if is_disconnect(exc) else exc
                for r in requests:
                    r.future.set_exception(failure)
                continue
            for r in requests:
                r.future.set_result(len(r.messages))
