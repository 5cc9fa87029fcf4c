"""Sync mode (Mixpanel's cohort-sync protocol): the whole membership first (`members`,
pages of 1,000 with page_info), then `add_members` / `remove_members` diffs against what
the destination acknowledged; after an outage, one diff to the latest snapshot. The
receiver's reconstructed membership is compared with the segment's latest snapshot
membership computed by a hand-written SQL query over segment_transitions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from receivers import DAY, HOUR, Ok, Receiver, Status, T, buy, deliver, queued, shop, table_rows

from segmently.act import outbox
from segmently.act.destinations import new_secret
from segmently.store import Store, utcnow

DUCKDB = pytest.mark.parametrize("store_url", ["duckdb"], indirect=True)


def sync_hook(url: str, secret: str) -> dict[str, Any]:
    return {"name": "crm", "kind": "webhook", "url": url, "secret": secret,
            "subscriptions": [{"segments": ["buyers"], "mode": "sync"}]}


def reconstruct(bodies: list[dict[str, Any]]) -> set[str]:
    """The membership a receiver following the protocol holds after these requests."""
    state: set[str] = set()
    building: set[str] = set()
    for body in bodies:
        ids = {m["user_id"] for m in body["members"]}
        page = body["page_info"]
        if body["action"] == "members":
            building = ids if page["page_count"] == 1 else building | ids
            if page["page_count"] == page["total_pages"]:
                state = set(building)
        elif body["action"] == "add_members":
            state |= ids
        else:
            assert body["action"] == "remove_members"
            state -= ids
    return state


def latest_members(store: Store, project_id: str, segment: str = "buyers") -> set[str]:
    """The members at the segment's latest snapshot: each user's last transition at or
    before it is an entry (written here in SQL, not through segmently's readers)."""
    sql = f"""
        SELECT user_id FROM (
            SELECT user_id, kind,
                   ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY as_of DESC) AS r
            FROM segment_transitions
            WHERE project_id = '{project_id}' AND segment = '{segment}'
              AND as_of <= (SELECT MAX(as_of) FROM segment_snapshots
                            WHERE project_id = '{project_id}' AND segment = '{segment}')
        ) AS t WHERE r = 1 AND kind = 'entered'"""
    return set(store.con.sql(sql).to_pyarrow()["user_id"].to_pylist())


def acks(store: Store, project_id: str) -> list[Any]:
    return sorted(r["as_of"] for r in table_rows(store, outbox.ACKS, project_id))


@DUCKDB
@pytest.mark.slow
def test_the_first_sync_sends_every_member_in_pages_then_diffs(store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as crm:
        project = shop(store)
        project.save_destination(sync_hook(crm.url, secret))
        stay = [f"u{i:04d}" for i in range(2490)]
        leave = [f"x{i}" for i in range(10)]
        buy(store, project.id, stay, T - HOUR)
        buy(store, project.id, leave, T - 20 * HOUR)
        [result] = project.refresh(T)
        assert result.size == 2500
        [marker] = queued(store, project.id)
        assert (marker["kind"], marker["user_ids"]) == ("sync", None)

        assert deliver(store).delivered == 1
        bodies = [a.json for a in crm.arrivals]
        assert [(b["action"], b["page_info"], len(b["members"])) for b in bodies] == [
            ("members", {"total_pages": 3, "page_count": 1}, 1000),
            ("members", {"total_pages": 3, "page_count": 2}, 1000),
            ("members", {"total_pages": 3, "page_count": 3}, 500)]
        everyone = sorted(stay + leave)
        assert [[m["user_id"] for m in b["members"]] for b in bodies] == [
            everyone[:1000], everyone[1000:2000], everyone[2000:]]
        assert {(b["type"], b["segment"], b["as_of"]) for b in bodies} == {
            ("segment.sync", "buyers", "2026-05-01T00:00:00Z")}
        assert all(a.verified for a in crm.arrivals)
        ids = [a.webhook_id for a in crm.arrivals]
        assert len(set(ids)) == 3 and ids == [b["message_id"] for b in bodies]
        assert acks(store, project.id) == [T]

        # five hours later the x's bought too long ago; n0..n2 just bought
        buy(store, project.id, ["n0", "n1", "n2"], T + 4 * HOUR)
        [result] = project.refresh(T + 5 * HOUR)
        assert (result.entered, result.exited) == (3, 10)
        deliver(store)
        diff = [a.json for a in crm.arrivals[3:]]
        assert [(b["action"], b["page_info"], [m["user_id"] for m in b["members"]])
                for b in diff] == [
            ("add_members", {"total_pages": 2, "page_count": 1}, ["n0", "n1", "n2"]),
            ("remove_members", {"total_pages": 2, "page_count": 2}, leave)]
        assert acks(store, project.id) == [T, T + 5 * HOUR]
        expected = set(stay) | {"n0", "n1", "n2"}
        assert reconstruct([a.json for a in crm.arrivals]) == expected == \
            latest_members(store, project.id)
        assert [r["state"] for r in queued(store, project.id)] == ["delivered"] * 2


def outage_plan(store: Store, project_id: str) -> None:
    """R1 = T {a, b, c}; R2 = T+1d {a, d}; R3 = T+2d {a, e}; R4 = T+3d {a, c, e} (each a
    buyer in the day before; d enters and leaves while the receiver is down)."""
    buy(store, project_id, ["a", "b", "c"], T - HOUR)
    buy(store, project_id, ["a"], T + 2 * HOUR)
    buy(store, project_id, ["d"], T + 3 * HOUR)
    buy(store, project_id, ["a"], T + DAY + HOUR)
    buy(store, project_id, ["e"], T + DAY + 2 * HOUR)
    buy(store, project_id, ["a", "c", "e"], T + 2 * DAY + HOUR)


@pytest.mark.slow
def test_after_an_outage_one_diff_brings_the_receiver_to_the_latest_snapshot(
        store: Store) -> None:
    secret = new_secret()
    with Receiver(secret) as crm:
        project = shop(store)
        project.save_destination(sync_hook(crm.url, secret))
        outage_plan(store, project.id)
        project.refresh(T)
        deliver(store)
        assert [(a.json["action"], [m["user_id"] for m in a.json["members"]])
                for a in crm.arrivals] == [("members", ["a", "b", "c"])]
        crm.down()
        now = utcnow()
        for day, when in ((1, now), (2, now), (3, now + timedelta(seconds=5))):
            project.refresh(T + day * DAY)
            assert deliver(store, when).failed == 1
        markers = queued(store, project.id)
        assert [(r["kind"], r["as_of"], r["state"]) for r in markers] == [
            ("sync", T, "delivered"), ("sync", T + DAY, "pending"),
            ("sync", T + 2 * DAY, "pending"), ("sync", T + 3 * DAY, "pending")]
        errors = [a["error"] for a in outbox.attempts(store, project.id,
                                                      markers[1]["message_id"])]
        assert len(errors) == 3 and all(e.startswith("ConnectError") for e in errors)

        crm.up()
        assert deliver(store, now + timedelta(seconds=305)).delivered >= 1
        after = [a.json for a in crm.arrivals[1:]]
        assert [(b["action"], b["page_info"], [m["user_id"] for m in b["members"]])
                for b in after] == [
            ("add_members", {"total_pages": 2, "page_count": 1}, ["e"]),
            ("remove_members", {"total_pages": 2, "page_count": 2}, ["b"])]
        assert all(a.verified for a in crm.arrivals)
        # dated by the snapshot whose membership it brings, R4's (not R2's, whose refresh
        # queued the marker that was sent)
        assert {b["as_of"] for b in after} == {"2026-05-04T00:00:00Z"}
        assert reconstruct([a.json for a in crm.arrivals]) == {"a", "c", "e"} == \
            latest_members(store, project.id)
        assert [r["state"] for r in queued(store, project.id)] == ["delivered"] * 4
        assert acks(store, project.id) == [T, T + 3 * DAY]
        assert deliver(store, now + DAY).delivered == 0
        assert len(crm.arrivals) == 3  # the settled markers sent nothing


@pytest.mark.slow
@DUCKDB
def test_a_partly_delivered_diff_then_a_change_leaves_no_stale_member(store: Store) -> None:
    """R1 {x} acknowledged; R2 {b}: add_members [b] is taken, remove_members [x] fails;
    R3 {x} again. The receiver holds {x, b} until told otherwise: the retry must bring it
    to {x}, though the acknowledged state ({x}) equals the latest."""
    secret = new_secret()
    with Receiver(secret) as crm:
        project = shop(store)
        project.save_destination(sync_hook(crm.url, secret))
        buy(store, project.id, ["x"], T - HOUR)
        buy(store, project.id, ["b"], T + 2 * HOUR)
        buy(store, project.id, ["x"], T + DAY + HOUR)
        project.refresh(T)
        deliver(store)
        crm.then(Ok(), Status(500))
        project.refresh(T + DAY)
        now = utcnow()
        assert deliver(store, now).failed == 1
        assert [(a.json["action"], a.accepted) for a in crm.arrivals[1:]] == [
            ("add_members", True), ("remove_members", False)]
        project.refresh(T + 2 * DAY)
        deliver(store, now + timedelta(seconds=1))
        held = reconstruct([a.json for a in crm.arrivals if a.accepted])
        assert held == latest_members(store, project.id) == {"x"}
