"""The delivery loop of a running server: a thread that runs `act.delivery.deliver_due`
at once after a refresh or a replay queued messages (`wake`), when the earliest retry it
saw waiting is due, and otherwise every `deliver_seconds` (SEGMENTLY_DELIVER_SECONDS; for
messages queued by another process; 0: no loop, run `segmently deliver`). An idle server
reads the outbox that seldom, not every second. One pass at a time; a pass that fails
(the database down) is logged and the next one retries: the outbox keeps every message.
"""

from __future__ import annotations

import logging
import threading

from segmently.act.delivery import Report, deliver_due
from segmently.settings import Settings
from segmently.store import Store, utcnow

log = logging.getLogger(__name__)


class Deliverer:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.interval = settings.deliver_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="segmently-deliver",
                                        daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A refresh queued messages: deliver now rather than at the next tick."""
        self._wake.set()

    def run_once(self, project_id: str | None = None) -> Report:
        """One pass (deliver_due holds the store's pass lock: one at a time per process)."""
        return deliver_due(self.store, self.settings, project_id)

    def _loop(self) -> None:
        wait = self.interval
        while not self._stop.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            if self._stop.is_set():
                return
            wait = self.interval
            try:
                due = self.run_once().next_due
            except Exception:  # noqa: BLE001 - the next pass retries; nothing is lost
                log.exception("delivery pass failed")
                continue
            if due is not None:
                wait = min(wait, max((due - utcnow()).total_seconds(), 0.05))

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
