"""SIGKILL `segmently serve` in the middle of delivering, then start it again: every queued
message arrives, each webhook-id at least once, a duplicate only with the same id and the
same body, and for every user the entry before the exit that ends it. On DuckDB and on
PostgreSQL (the outbox is the store's, whichever it is)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from receivers import BUYERS, DAY, HOUR, Receiver, Slow, T, buy

from conftest import start_server
from segmently.act import destinations as dests
from segmently.act import outbox
from segmently.core import Project
from segmently.store import Store
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow
USERS = [f"u{i:02d}" for i in range(24)]


def queue(store: Store, secret: str, url: str) -> tuple[str, list[str]]:
    """24 buyers enter at T, and leave a day later: 48 messages of one user each."""
    project = Project(store, create_project(store, "shop").project.project_id)
    project.save("buyers", "", BUYERS)
    project.save_destination(dests.Destination(
        name="hook", kind="webhook", url=url, secret=secret,
        subscriptions=[dests.Subscription(segments=["buyers"], batch_size=1)]))
    buy(store, project.id, USERS, T - HOUR)
    project.refresh(T)
    project.refresh(T + 2 * DAY)
    t = outbox.states(store, project.id)
    return project.id, t.order_by("seq").message_id.to_pyarrow().to_pylist()


def test_sigkill_mid_delivery_loses_nothing_and_keeps_order(store_url: str,
                                                            tmp_path: Path) -> None:
    secret = dests.new_secret()
    with Receiver(secret) as hook, Store(store_url) as store:
        _, expected = queue(store, secret, hook.url)
        assert len(expected) == 2 * len(USERS)
        hook.then(*[Slow(0.05)] * len(expected))  # slow enough to be killed mid-way
        env = {"SEGMENTLY_REFRESH_SECONDS": "0", "SEGMENTLY_DELIVER_SECONDS": "0.2",
               "SEGMENTLY_ALLOW_PRIVATE_DESTINATIONS": "1"}
        store.close()
        proc, _ = start_server(store_url, tmp_path / "first.log", env=env)
        try:
            hook.wait_for(10, timeout=60)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        killed_at = len(hook.arrivals)
        assert killed_at < len(expected), "the kill came after everything was sent"
        proc, _ = start_server(store_url, tmp_path / "second.log", env=env)
        try:
            deadline = time.monotonic() + 120
            while set(expected) - set(hook.ids(accepted_only=True)):
                assert time.monotonic() < deadline, "not every message arrived"
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    arrived = [a for a in hook.arrivals if a.accepted]
    assert {a.webhook_id for a in arrived} == set(expected)  # none lost, none made up
    assert all(a.verified for a in arrived)
    bodies: dict[str | None, bytes] = {}
    for a in arrived:  # a duplicate is the same message: same id, same body
        assert bodies.setdefault(a.webhook_id, a.body) == a.body
    first: dict[tuple[str, str], int] = {}
    for n, a in enumerate(arrived):
        data = json.loads(a.body)
        for user in data["users"]:
            first.setdefault((user["user_id"], data["type"]), n)
    for user in USERS:  # in order per user: the exit never before the entry it ends
        assert first[(user, "segment.entered")] < first[(user, "segment.exited")], user
