"""Segment's HTTP Tracking API against a real `segmently serve`: the official
segment-analytics-python client, and raw HTTP (Basic auth, writeKey in the body, gzip,
retries, limits, errors). Stored rows are read back from the DuckDB file once the server
has stopped (DuckDB allows one process per file)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import pytest
from segment.analytics import Client
from segment.analytics.request import APIError

from segmently.collect.limits import Limits
from segmently.store import Store

if TYPE_CHECKING:  # a bare `import conftest` may find another directory's conftest.py
    from conftest import Server

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SKEW = timedelta(seconds=5)  # the client runs on this machine: sentAt ~ receivedAt


def naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def stored(server: Server) -> dict[str, list[dict[str, Any]]]:
    """Every row of the server's project, per table (the server must be stopped)."""
    server.stop()
    out: dict[str, list[dict[str, Any]]] = {}
    with Store(server.db) as store:
        for name in ("events", "traits", "identities", "account_links"):
            t = store.table(name)
            out[name] = t.filter(t.project_id == server.project_id).to_pyarrow().to_pylist()
    return out


def by_id(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["message_id"]: r for r in rows}


def test_official_python_sdk_round_trip(server: Server) -> None:
    sdk = Client(server.write_key, host=server.url, sync_mode=True)
    sdk.identify("u1", {"plan": "pro", "seats": 3}, anonymous_id="anon-1",
                 timestamp=T0, message_id="m-identify")
    sdk.track("u1", "Report Viewed", {"report": "weekly", "n": 3}, context={"groupId": "acme"},
              timestamp=T0 + timedelta(minutes=1), message_id="m-track")
    sdk.group("u1", "acme", {"name": "Acme Inc", "employees": 40}, message_id="m-group")
    sdk.alias("old-1", "u1", message_id="m-alias")
    sdk.page("u1", "Docs", "Pricing", {"url": "https://x.test/pricing"}, message_id="m-page")
    sdk.screen(anonymous_id="anon-2", name="Home", properties={"tab": "feed"},
               message_id="m-screen")

    errors: list[Exception] = []
    queued = Client(server.write_key, host=server.url, gzip=True, upload_size=3,
                    on_error=lambda exc, batch: errors.append(exc))
    sent = [queued.track(anonymous_id="anon-3", event="Clicked", properties={"i": i})[1]
            for i in range(5)]
    queued.flush()
    queued.shutdown()
    assert errors == []

    with pytest.raises(APIError) as bad_key:
        Client("wk_nope", host=server.url, sync_mode=True).track("u1", "x")
    assert (bad_key.value.status, bad_key.value.message) == (401, "unknown write key")
    future = datetime.now(UTC) + timedelta(days=3)
    with pytest.raises(APIError) as bad_call:
        sdk.track("u1", "x", timestamp=future, message_id="m-future")
    assert (bad_call.value.status, bad_call.value.code) == (400, "timestamp_in_future")

    rows = stored(server)
    events = by_id(rows["events"])
    assert set(events) == {"m-identify", "m-track", "m-group", "m-alias", "m-page",
                           "m-screen", *(m["messageId"] for m in sent)}
    expected = {  # message id: (type, event, user, anonymous, account, properties)
        "m-identify": ("identify", "$identify", "u1", "anon-1", None, {}),
        "m-track": ("track", "Report Viewed", "u1", None, "acme", {"report": "weekly", "n": 3}),
        "m-group": ("group", "$group", "u1", None, "acme", {}),
        "m-alias": ("alias", "$alias", "u1", None, None, {}),
        "m-page": ("page", "$page", "u1", None, None,
                   {"url": "https://x.test/pricing", "name": "Pricing", "category": "Docs"}),
        "m-screen": ("screen", "$screen", None, "anon-2", None, {"tab": "feed", "name": "Home"}),
    }
    for mid, (typ, name, user, anon, account, props) in expected.items():
        row = events[mid]
        assert (row["type"], row["event"], row["user_id"], row["anonymous_id"],
                row["account_id"], row["source"]) == (typ, name, user, anon, account, "segment")
        assert json.loads(row["properties"]) == props, mid
        assert json.loads(row["context"])["library"]["name"] == "analytics-python"
    assert abs(events["m-identify"]["timestamp"] - naive(T0)) < SKEW
    assert abs(events["m-track"]["timestamp"] - naive(T0 + timedelta(minutes=1))) < SKEW
    for msg in sent:
        row = events[msg["messageId"]]
        assert (row["event"], row["anonymous_id"]) == ("Clicked", "anon-3")
        assert json.loads(row["properties"]) == msg["properties"]
        client_time = naive(datetime.fromisoformat(msg["timestamp"]))
        assert abs(row["timestamp"] - client_time) < SKEW
        assert timedelta(0) <= row["received_at"] - row["timestamp"] < SKEW

    traits = {(r["kind"], r["entity_id"], r["trait"]): json.loads(r["value"])
              for r in rows["traits"]}
    assert traits == {("user", "u1", "plan"): "pro", ("user", "u1", "seats"): 3,
                      ("account", "acme", "name"): "Acme Inc",
                      ("account", "acme", "employees"): 40}
    assert sorted((r["alias_id"], r["user_id"], r["message_id"]) for r in rows["identities"]) \
        == [("anon-1", "u1", "m-identify"), ("old-1", "u1", "m-alias")]
    assert [(r["user_id"], r["account_id"], r["message_id"]) for r in rows["account_links"]] \
        == [("u1", "acme", "m-group")]


def post(server: Server, path: str, body: Any, *, key: str | None = None,
         compress: bool = False) -> httpx.Response:
    data = orjson.dumps(body)
    headers = {"Content-Type": "application/json"}
    if compress:
        data, headers["Content-Encoding"] = gzip.compress(data), "gzip"
    auth = (key, "") if key is not None else None
    return httpx.post(server.url + path, content=data, headers=headers, auth=auth, timeout=30)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def test_raw_http_auth_gzip_retries_limits_and_errors(server: Server) -> None:
    key, limits = server.write_key, Limits()
    ok = {"success": True}
    r = post(server, "/v1/track", {"userId": "u1", "event": "basic", "messageId": "r-basic"},
             key=key)
    assert (r.status_code, r.json()) == (200, ok)
    r = post(server, "/v1/identify", {"writeKey": key, "userId": "u2", "messageId": "r-body",
                                      "traits": {"role": "admin"}})
    assert (r.status_code, r.json()) == (200, ok)

    # A device whose clock is 3 h fast sends, gzipped, calls made 10 s before sentAt.
    device_now = datetime.now(UTC) + timedelta(hours=3)
    skewed = {"sentAt": iso(device_now), "batch": [
        {"type": "track", "event": "skewed", "anonymousId": "a1", "messageId": f"r-skew-{i}",
         "timestamp": iso(device_now - timedelta(seconds=10))} for i in range(2)]}
    assert post(server, "/v1/batch", skewed, key=key, compress=True).status_code == 200

    retried = {"writeKey": key, "batch": [
        {"type": "track", "event": "retried", "userId": "u3", "messageId": f"r-retry-{i}"}
        for i in range(3)]}
    assert [post(server, "/v1/batch", retried).json() for _ in range(2)] == [ok, ok]

    bad = {"batch": [{"type": "track", "event": "fine", "userId": "u4", "messageId": "r-bad-0"},
                     {"type": "track", "event": "x", "userId": "u4", "properties": [1]}]}
    r = post(server, "/v1/batch", bad, key=key)
    assert r.status_code == 400
    assert r.json()["message"] == "batch[1].properties must be a JSON object, got list"

    for body, auth, message in [({"userId": "u", "event": "x"}, None, "missing write key"),
                                ({"userId": "u", "event": "x"}, "wk_nope", "unknown write key"),
                                ({"userId": "u", "event": "x", "writeKey": "wk_nope"}, None,
                                 "unknown write key")]:
        r = post(server, "/v1/track", body, key=auth)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        assert r.json()["message"].startswith(message)

    # A body over the single-call limit is refused on /v1/track and fine on /v1/batch.
    blob = "x" * (limits.max_single_body // 3 + 1000)
    calls = [{"type": "track", "event": "big", "userId": "u5", "messageId": f"r-big-{i}",
              "properties": {"blob": blob}} for i in range(3)]
    r = post(server, "/v1/track", {**calls[0], "properties": {"a": blob, "b": blob, "c": blob}},
             key=key)
    assert r.status_code == 413 and str(limits.max_single_body) in r.json()["message"]
    assert post(server, "/v1/batch", {"batch": calls}, key=key).status_code == 200
    bomb = {"userId": "u", "event": "x", "properties": {"z": "0" * limits.max_single_body}}
    r = post(server, "/v1/track", bomb, key=key, compress=True)
    assert r.status_code == 413 and "decompressed body is larger" in r.json()["message"]

    rows = stored(server)
    ids = [r["message_id"] for r in rows["events"]]
    assert sorted(ids) == sorted(["r-basic", "r-body", "r-skew-0", "r-skew-1", "r-retry-0",
                                  "r-retry-1", "r-retry-2", "r-big-0", "r-big-1", "r-big-2"])
    events = by_id(rows["events"])
    for mid in ("r-skew-0", "r-skew-1"):
        lag = events[mid]["received_at"] - events[mid]["timestamp"]
        assert timedelta(seconds=10) <= lag < timedelta(seconds=10) + SKEW
    assert json.loads(events["r-big-1"]["properties"]) == {"blob": blob}
    assert [(r["entity_id"], r["trait"], r["value"]) for r in rows["traits"]] == [
        ("u2", "role", '"admin"')]
