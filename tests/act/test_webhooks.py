"""Webhook destinations against a real receiver on loopback that verifies every Standard
Webhooks signature with the specification's library: batches, payloads, ids stable across
retries, order per user through the retry schedule, giving up, 410, redirects."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from receivers import (
    DAY,
    HOUR,
    Drip,
    Hang,
    Receiver,
    Reset,
    Slow,
    Status,
    T,
    buy,
    deliver,
    log,
    queued,
    shop,
    table_rows,
)

from segmently.act import destinations as dests
from segmently.act import sending
from segmently.act.destinations import new_secret
from segmently.store import Store, utcnow

SCHEDULE = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]  # s: the issue's retry delays
# engine-independent logic runs on DuckDB only (the outbox reads themselves run on both
# engines in the tests that are not marked so): the directory stays under a minute
DUCKDB = pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)


def webhook(url: str, secret: str, **sub: object) -> dict[str, object]:
    return {"name": "hook", "kind": "webhook", "url": url, "secret": secret,
            "subscriptions": [{"segments": ["buyers"], **sub}]}


def test_entries_and_exits_arrive_signed_in_batches(store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as hook:
        project = shop(store)
        project.save_destination({**webhook(hook.url, secret, batch_size=3),
                                  "headers": {"X-Team": "growth"}})
        users = [f"u{i}" for i in range(7)]
        buy(store, project.id, users, T - HOUR)
        [result] = project.refresh(T)
        assert (result.entered, result.exited) == (7, 0)
        entered = queued(store, project.id)
        assert [(r["kind"], json.loads(r["user_ids"])) for r in entered] == [
            ("entered", ["u0", "u1", "u2"]), ("entered", ["u3", "u4", "u5"]),
            ("entered", ["u6"])]  # batches of 3, in user-id order
        assert [r["state"] for r in entered] == ["pending"] * 3

        report = deliver(store)
        assert (report.delivered, report.failed) == (3, 0)
        assert [a.webhook_id for a in hook.arrivals] == [r["message_id"] for r in entered]
        assert all(a.verified for a in hook.arrivals)  # standardwebhooks' own verify
        for arrival, row in zip(hook.arrivals, entered, strict=True):
            assert arrival.path == "/hook"
            assert arrival.headers["x-team"] == "growth"
            assert arrival.headers["content-type"] == "application/json"
            assert arrival.json == {"type": "segment.entered", "message_id": row["message_id"],
                                    "segment": "buyers", "as_of": "2026-05-01T00:00:00Z",
                                    "users": [{"user_id": u}
                                              for u in json.loads(row["user_ids"])]}
        got = [u["user_id"] for a in hook.arrivals for u in a.json["users"]]
        assert sorted(got) == users  # each once

        # a day and a bit later u0 and u1 bought again; the five others left
        buy(store, project.id, ["u0", "u1"], T + DAY)
        [result] = project.refresh(T + DAY + HOUR)
        assert (result.entered, result.exited) == (0, 5)
        deliver(store)
        exits = hook.arrivals[3:]
        assert [a.json["type"] for a in exits] == ["segment.exited"] * 2
        assert [[u["user_id"] for u in a.json["users"]] for a in exits] == [
            ["u2", "u3", "u4"], ["u5", "u6"]]
        assert {a.json["as_of"] for a in exits} == {"2026-05-02T01:00:00Z"}
        assert all(a.verified for a in exits)
        rows = queued(store, project.id)
        assert [r["state"] for r in rows] == ["delivered"] * 5
        assert [a.webhook_id for a in hook.arrivals] == [r["message_id"] for r in rows]
        attempt = log(store, project.id, rows[0]["message_id"])
        assert [(a["attempt"], a["ok"], a["final"], a["status"]) for a in attempt] == [
            (1, True, True, 204)]
        assert deliver(store).delivered == 0  # nothing owed: nothing sent again
        assert len(hook.arrivals) == 5


@DUCKDB
def test_a_rotation_signs_with_both_secrets(store: Store) -> None:
    old, new = new_secret(), new_secret()
    with Receiver(old, new) as both, Receiver(old) as only_old:
        project = shop(store)
        buy(store, project.id, ["u0"], T - HOUR)
        project.save_destination({**webhook(both.url, new), "previous_secret": old})
        project.save_destination({**webhook(only_old.url, new), "name": "old",
                                  "previous_secret": old})
        project.refresh(T)
        deliver(store)
        [a] = both.arrivals
        [b] = only_old.arrivals
        assert a.verified and b.verified  # each secret alone verifies it
        assert len(a.headers["webhook-signature"].split(" ")) == 2
        assert a.headers["webhook-signature"].split(" ")[0].startswith("v1,")


@DUCKDB
@pytest.mark.slow
def test_retries_keep_the_webhook_id_and_a_duplicate_has_the_same_id(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 500, a reset connection, no answer in time (the receiver got the body: a duplicate
    on the retry), then a slow answer in time: four requests, one id, one body."""
    monkeypatch.setattr(sending, "TIMEOUT", 1.0)
    secret = new_secret()
    with Receiver(secret) as hook:
        hook.then(Status(500), Reset(), Hang(2.5), Slow(0.4))
        project = shop(store)
        project.save_destination(webhook(hook.url, secret))
        buy(store, project.id, ["u0", "u1"], T - HOUR)
        project.refresh(T)
        [row] = queued(store, project.id)
        now = utcnow()
        at = [now, now, now + timedelta(seconds=5), now + timedelta(seconds=305)]
        for when in at:
            deliver(store, when)
        assert deliver(store, at[-1] + DAY).delivered == 0
        assert [type(a.fault).__name__ for a in hook.arrivals] == [
            "Status", "Reset", "Hang", "Slow"]
        assert {a.webhook_id for a in hook.arrivals} == {row["message_id"]}
        assert {a.body for a in hook.arrivals} == {hook.arrivals[0].body}
        assert all(a.verified for a in hook.arrivals)
        attempts = log(store, project.id, row["message_id"])
        assert [(a["attempt"], a["ok"], a["final"], a["status"]) for a in attempts] == [
            (1, False, False, 500), (2, False, False, None), (3, False, False, None),
            (4, True, True, 204)]
        assert attempts[0]["error"] == "500 Internal Server Error"
        assert attempts[1]["error"].startswith(("RemoteProtocolError", "ReadError", "WriteError"))
        assert attempts[2]["error"] == "no answer within 1 s"
        assert [a["next_at"] for a in attempts] == [at[1], at[2], at[3], None]
        assert attempts[3]["latency_ms"] >= 400
        assert queued(store, project.id)[0]["state"] == "delivered"


@DUCKDB
@pytest.mark.slow
def test_an_answer_dripped_past_the_timeout_is_a_failure(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """"A 2xx within 15 s" (here 1 s): a receiver that sends its status line a few bytes
    every half second answers every read in time, and the whole answer in 2.5 s. That is
    no success, and it must not hold the worker (every destination waits behind it) for
    longer than the timeout."""
    monkeypatch.setattr(sending, "TIMEOUT", 1.0)
    secret = new_secret()
    with Receiver(secret) as hook:
        hook.then(Drip(0.5, 6))
        project = shop(store)
        project.save_destination(webhook(hook.url, secret))
        buy(store, project.id, ["u0"], T - HOUR)
        project.refresh(T)
        [row] = queued(store, project.id)
        deliver(store)
        [attempt] = log(store, project.id, row["message_id"])
        assert (attempt["ok"], attempt["latency_ms"] < 1800) == (False, True), \
            f"ok={attempt['ok']} after {attempt['latency_ms']} ms with a 1 s timeout"


@pytest.mark.slow
def test_an_exit_follows_its_entry_through_the_retry_schedule(store: Store) -> None:
    """u0 enters at refresh 1 and exits at refresh 2 while the receiver answers 500: once
    it recovers, the entry arrives, then the exit. Each failure's next_at follows the
    schedule, and a pass before it is due sends nothing."""
    failures = 5  # the receiver is back for the 6th try (after 0 s, 5 s, 5 min, 30 min, 2 h)
    secret = new_secret()
    with Receiver(secret) as hook:
        hook.fail(failures)
        project = shop(store)
        project.save_destination(webhook(hook.url, secret))
        buy(store, project.id, ["u0"], T - HOUR)
        project.refresh(T)
        now = utcnow()
        deliver(store, now)  # attempt 1 fails
        project.refresh(T + 2 * DAY)  # u0 exits while the entry is still owed
        entry, exit_ = queued(store, project.id)
        assert (entry["kind"], exit_["kind"]) == ("entered", "exited")
        when = now
        for step in range(failures):
            due = when + timedelta(seconds=SCHEDULE[step])
            if SCHEDULE[step] == 300:
                assert deliver(store, due - timedelta(seconds=1)).failed == 0  # not yet due
            deliver(store, due)
            when = due
        assert [a.webhook_id for a in hook.arrivals] == \
            [entry["message_id"]] * (failures + 1) + [exit_["message_id"]]
        assert [a.json["type"] for a in hook.arrivals if a.accepted] == [
            "segment.entered", "segment.exited"]
        attempts = log(store, project.id, entry["message_id"])
        assert [a["ok"] for a in attempts] == [False] * failures + [True]
        for a, b, delay in zip(attempts, attempts[1:], SCHEDULE, strict=False):
            assert a["next_at"] == a["at"] + timedelta(seconds=delay) == b["at"]
        assert attempts[-1]["next_at"] is None
        assert [r["state"] for r in queued(store, project.id)] == ["delivered"] * 2


@DUCKDB
@pytest.mark.slow
def test_after_the_schedule_the_message_fails_and_the_next_one_goes(store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as hook:
        hook.fail(9)  # the first try and all 8 retries
        project = shop(store)
        project.save_destination(webhook(hook.url, secret))
        buy(store, project.id, ["u0"], T - HOUR)
        project.refresh(T)
        project.refresh(T + 2 * DAY)
        entry, exit_ = queued(store, project.id)
        when = utcnow()
        deliver(store, when)
        for delay in SCHEDULE:
            when += timedelta(seconds=delay)
            deliver(store, when)
        attempts = log(store, project.id, entry["message_id"])
        assert len(attempts) == 9
        assert [a["final"] for a in attempts] == [False] * 8 + [True]
        assert [round((a["next_at"] - a["at"]).total_seconds()) for a in attempts[:8]] == \
            SCHEDULE
        assert attempts[8]["next_at"] is None
        assert [r["state"] for r in queued(store, project.id)] == ["failed", "pending"]
        assert len(hook.arrivals) == 9  # the exit waited for the entry's last try
        deliver(store, when)
        assert hook.arrivals[-1].webhook_id == exit_["message_id"]
        assert [r["state"] for r in queued(store, project.id)] == ["failed", "delivered"]
        assert dests.get(store, project.id, "hook").enabled  # 27.6 h of failures: not 5 days


def versions(store: Store, project_id: str) -> list[tuple[int, str, dict[str, object]]]:
    rows = sorted(table_rows(store, dests.VERSIONS.table, project_id), key=lambda r: r["version"])
    return [(r["version"], r["source"], json.loads(r["definition"])) for r in rows]


@pytest.mark.slow
@DUCKDB
def test_410_disables_the_destination(store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as hook:
        hook.then(Status(410, body=b"gone for good"))
        project = shop(store)
        project.save_destination(webhook(hook.url, secret))
        buy(store, project.id, ["u0"], T - HOUR)
        project.refresh(T)
        [row] = queued(store, project.id)
        report = deliver(store)
        assert report.disabled == [f"{project.id}/hook"]
        (v1, s1, d1), (v2, s2, d2) = versions(store, project.id)
        assert (v1, s1, d1["enabled"], d1["disabled_reason"]) == (1, "api", True, None)
        assert (v2, s2, d2["enabled"]) == (2, "delivery", False)
        assert d2["disabled_reason"] == f"the receiver answered 410 Gone ({row['message_id']})"
        assert {k: v for k, v in d2.items() if k not in ("enabled", "disabled_reason")} == \
            {k: v for k, v in d1.items() if k not in ("enabled", "disabled_reason")}
        [attempt] = log(store, project.id, row["message_id"])
        assert (attempt["status"], attempt["final"], attempt["excerpt"]) == (
            410, True, "gone for good")
        assert queued(store, project.id)[0]["state"] == "failed"
        project.refresh(T + 2 * DAY)  # a disabled destination is owed nothing new
        assert len(queued(store, project.id)) == 1
        assert deliver(store, utcnow() + DAY).delivered == 0
        assert len(hook.arrivals) == 1


@pytest.mark.slow
@DUCKDB
def test_five_days_of_failures_disable_the_destination(store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as hook:
        hook.fail(100)
        project = shop(store)
        project.save_destination(webhook(hook.url, secret))
        buy(store, project.id, ["u0"], T - HOUR)
        project.refresh(T)
        [row] = queued(store, project.id)
        start = utcnow()
        deliver(store, start)
        almost = start + timedelta(days=5) - timedelta(minutes=1)
        assert deliver(store, almost).disabled == []
        assert dests.get(store, project.id, "hook").enabled
        report = deliver(store, start + timedelta(days=5))
        assert report.disabled == [f"{project.id}/hook"]
        disabled = dests.get(store, project.id, "hook")
        assert not disabled.enabled
        assert disabled.disabled_reason == "failing for 5 days: 500 Internal Server Error"
        assert [a["final"] for a in log(store, project.id, row["message_id"])] == [
            False, False, True]
        assert deliver(store, start + timedelta(days=9)).failed == 0
        assert len(hook.arrivals) == 3


@pytest.mark.slow
@DUCKDB
def test_a_redirect_is_a_failure_and_is_not_followed(store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as hook, Receiver(secret) as target:
        hook.then(Status(302, {"location": target.url}), Status(307, {"location": target.url}))
        project = shop(store)
        project.save_destination(webhook(hook.url, secret))
        buy(store, project.id, ["u0"], T - HOUR)
        project.refresh(T)
        [row] = queued(store, project.id)
        now = utcnow()
        deliver(store, now)
        deliver(store, now)
        assert target.arrivals == []
        first, second = log(store, project.id, row["message_id"])
        assert (first["status"], first["ok"]) == (302, False)
        assert first["error"] == f"302: a redirect (to {target.url}), not followed"
        assert (second["status"], second["ok"]) == (307, False)
        deliver(store, now + timedelta(seconds=5))  # the third try: a plain 204
        assert [a.webhook_id for a in hook.arrivals] == [row["message_id"]] * 3
        assert target.arrivals == []
