"""The outbox a refresh writes: nothing for a backfill or without destinations, nothing
without the snapshots it belongs to; replays send the same webhook-id again."""

from __future__ import annotations

from datetime import timedelta

import pytest
from receivers import DAY, HOUR, Receiver, T, buy, deliver, log, queued, shop, table_rows

from segmently.act import outbox
from segmently.act.destinations import new_secret
from segmently.segments import snapshots as snap
from segmently.store import Store, utcnow

DUCKDB = pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)


def hook(url: str, secret: str, segment: str = "buyers", **more: object) -> dict[str, object]:
    return {"name": "hook", "kind": "webhook", "url": url, "secret": secret,
            "subscriptions": [{"segments": [segment]}], **more}


def test_a_backfill_queues_nothing(store: Store) -> None:
    project = shop(store)
    project.save_destination(hook("http://127.0.0.1:9/hook", new_secret()))
    for day in range(4):
        buy(store, project.id, [f"u{day}"], T - 4 * DAY + day * DAY + HOUR)
    done = project.backfill(T - 3 * DAY, T, every=DAY)
    assert [(r.as_of, r.entered, r.exited) for r in done] == [
        (T - 3 * DAY, 1, 0), (T - 2 * DAY, 1, 1), (T - DAY, 1, 1), (T, 1, 1)]
    assert table_rows(store, outbox.OUTBOX, project.id) == []
    buy(store, project.id, ["late"], T + HOUR)
    project.refresh(T + DAY)  # a refresh of now does queue
    assert [(r["kind"], r["user_ids"]) for r in queued(store, project.id)] == [
        ("entered", '["late"]'), ("exited", '["u3"]')]


@DUCKDB
def test_a_refresh_without_destinations_writes_no_outbox(store: Store) -> None:
    project = shop(store)
    project.save("other", "", {"kind": "performed", "event": "visit"})
    buy(store, project.id, ["u0"], T - HOUR)
    project.refresh(T)
    assert "outbox" not in store.con.list_tables()  # not even made
    project.save_destination(hook("http://127.0.0.1:9/hook", new_secret(), "other"))
    project.save_destination({**hook("http://127.0.0.1:9/hook", new_secret()),
                              "name": "off", "enabled": False})
    project.save_destination({"name": "bare", "kind": "webhook",
                              "url": "http://127.0.0.1:9/hook"})  # no subscriptions
    buy(store, project.id, ["u1"], T + DAY)
    [result] = [r for r in project.refresh(T + DAY + HOUR) if r.segment == "buyers"]
    assert (result.entered, result.exited) == (1, 1)
    assert table_rows(store, outbox.OUTBOX, project.id) == []  # "other" did not change


@DUCKDB
def test_outbox_rows_and_snapshots_commit_together(store: Store,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    project = shop(store)
    project.save_destination(hook("http://127.0.0.1:9/hook", new_secret()))
    buy(store, project.id, ["u0"], T - HOUR)

    def broken(*args: object) -> object:
        raise RuntimeError("the outbox could not be written")

    monkeypatch.setattr(outbox, "rows_for", broken)
    with pytest.raises(RuntimeError):
        project.refresh(T)
    assert snap.latest(store, project.id) == {}  # no snapshot without its deliveries
    monkeypatch.undo()
    [result] = project.refresh(T)
    assert result.entered == 1
    assert len(queued(store, project.id)) == 1


def test_replay_resends_a_delivered_message_with_the_same_webhook_id(store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as receiver:
        project = shop(store)
        project.save_destination({**hook(receiver.url, secret),
                                  "subscriptions": [{"segments": ["buyers"], "batch_size": 1}]})
        buy(store, project.id, ["u0", "u1", "u2"], T - HOUR)
        project.refresh(T)
        first, second, third = queued(store, project.id)
        assert deliver(store).delivered == 3
        assert outbox.replay(store, project.id, [first["message_id"], "msg_unknown"]) == 1
        assert queued(store, project.id)[0]["state"] == "pending"
        assert deliver(store).delivered == 1
        ids = [a.webhook_id for a in receiver.arrivals]
        assert ids == [first["message_id"], second["message_id"], third["message_id"],
                       first["message_id"]]
        assert receiver.arrivals[3].body == receiver.arrivals[0].body
        assert all(a.verified for a in receiver.arrivals)
        attempts = log(store, project.id, first["message_id"])
        assert [(a["attempt"], a["ok"], a["final"]) for a in attempts] == [
            (1, True, True), (0, False, False), (2, True, True)]
        assert attempts[1]["error"] == "replay requested"
        # a time range: the destination's messages created since a moment
        assert project.replay(destination="hook", since=utcnow() - timedelta(hours=1)) == 3
        assert deliver(store).delivered == 3
        assert [a.webhook_id for a in receiver.arrivals[4:]] == ids[:3]
        assert {r["state"] for r in queued(store, project.id)} == {"delivered"}


@DUCKDB
def test_a_new_subscription_starts_with_the_members(store: Store) -> None:
    """By hand: u0 and u1 bought an hour before T, so the refresh at T, with no
    destination yet, made them buyers and queued nothing. A destination saved after it
    queues their entries once, stamped with that snapshot's instant; saved unchanged, or
    given `exited` too, it queues no more entries; a sync subscription added to it queues
    its marker (the whole list is sent then); a disabled destination, nothing."""
    project = shop(store)
    buy(store, project.id, ["u0", "u1"], T - HOUR)
    project.refresh(T)
    assert table_rows(store, outbox.OUTBOX, project.id) == []
    secret = new_secret()
    project.save_destination(hook("http://127.0.0.1:9/hook", secret), create=True)
    rows = [(r["kind"], r["segment"], r["user_ids"], r["as_of"])
            for r in queued(store, project.id)]
    assert rows == [("entered", "buyers", '["u0", "u1"]', T)]
    project.save_destination(hook("http://127.0.0.1:9/hook", secret))  # unchanged
    both = {"segments": ["buyers"], "changes": ["entered", "exited"]}
    project.save_destination(hook("http://127.0.0.1:9/hook", secret, subscriptions=[both]))
    assert len(queued(store, project.id)) == 1
    synced = {"segments": ["buyers"], "mode": "sync"}
    project.save_destination(hook("http://127.0.0.1:9/hook", secret,
                                  subscriptions=[both, synced]))
    assert [r["kind"] for r in queued(store, project.id)] == ["entered", "sync"]
    project.save_destination({**hook("http://127.0.0.1:9/hook", new_secret()),
                              "name": "off", "enabled": False}, create=True)
    assert len(queued(store, project.id)) == 2
    buy(store, project.id, ["u2"], T + HOUR)  # the next refresh: only what changed
    project.refresh(T + 2 * HOUR)
    assert [(r["kind"], r["user_ids"]) for r in queued(store, project.id)][2:] == [
        ("entered", '["u2"]'), ("sync", None)]
