"""The official RudderStack Python SDK (rudder-sdk-python) against a real `segmently serve`.

RudderStack's SDKs speak Segment's HTTP API (`/v1/batch`, Basic auth with the write key,
gzip) but put identify traits in `context.traits` and none at the top level, so until
collect/segment.py read `context.traits` every trait they sent was dropped. Expected
traits are what the SDK calls below were given, written out by hand; they are read back
twice: through the API (`/api/users/{id}/traits`, the latest traits as every page and
segment sees them) and as rows in the DuckDB file once the server has stopped.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from segmently.store import Store

rudder = pytest.importorskip("rudderstack.analytics.client")
rudder_request = pytest.importorskip("rudderstack.analytics.request")

if TYPE_CHECKING:
    from conftest import Server

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def stored(server: Server) -> dict[str, list[dict[str, Any]]]:
    """Every row of the server's project, per table (the server must be stopped)."""
    server.stop()
    out: dict[str, list[dict[str, Any]]] = {}
    with Store(server.db) as store:
        for name in ("events", "traits", "identities", "account_links"):
            t = store.table(name)
            out[name] = t.filter(t.project_id == server.project_id).to_pyarrow().to_pylist()
    return out


def test_rudderstack_sdk_traits_are_stored(server: Server) -> None:
    sdk = rudder.Client(server.write_key, host=server.url, sync_mode=True)
    sdk.identify("u1", {"plan": "pro", "seats": 3}, anonymous_id="anon-1",
                 timestamp=T0, message_id="r-identify")
    sdk.track("u1", "Report Viewed", {"report": "weekly"}, context={
        "traits": {"email": "u1@x.test"}, "groupId": "acme"},
        timestamp=T0 + timedelta(minutes=1), message_id="r-track")
    sdk.group("u1", "acme", {"name": "Acme Inc"}, context={"traits": {"role": "admin"}},
              timestamp=T0 + timedelta(minutes=2), message_id="r-group")
    sdk.page("u1", "Docs", "Pricing", {"url": "https://x.test/pricing"},
             timestamp=T0 + timedelta(minutes=3), message_id="r-page")
    sdk.alias("old-1", "u1", timestamp=T0 + timedelta(minutes=4), message_id="r-alias")

    errors: list[Exception] = []
    queued = rudder.Client(server.write_key, host=server.url, upload_size=2,
                           on_error=lambda exc, batch: errors.append(exc))
    for i in range(3):  # batched and gzipped, as the SDK sends by default
        queued.identify(f"q{i}", {"rank": i}, timestamp=T0, message_id=f"r-q{i}")
    queued.flush()
    queued.shutdown()
    assert errors == []

    with pytest.raises(rudder_request.APIError) as bad_key:
        rudder.Client("wk_nope", host=server.url, sync_mode=True).track("u1", "x")
    assert bad_key.value.status == 401

    seen = httpx.get(f"{server.url}/api/users/u1/traits", timeout=60,
                     headers={"Authorization": f"Bearer {server.secret_key}"})
    assert seen.status_code == 200, seen.text
    assert seen.json()["traits"] == {"plan": "pro", "seats": 3, "email": "u1@x.test",
                                     "role": "admin"}

    rows = stored(server)
    assert {r["message_id"] for r in rows["events"]} == {
        "r-identify", "r-track", "r-group", "r-page", "r-alias", "r-q0", "r-q1", "r-q2"}
    traits = {(r["kind"], r["entity_id"], r["trait"], r["message_id"]): json.loads(r["value"])
              for r in rows["traits"]}
    assert traits == {
        ("user", "u1", "plan", "r-identify"): "pro",
        ("user", "u1", "seats", "r-identify"): 3,
        ("user", "u1", "email", "r-track"): "u1@x.test",
        ("user", "u1", "role", "r-group"): "admin",
        ("account", "acme", "name", "r-group"): "Acme Inc",
        ("user", "q0", "rank", "r-q0"): 0,
        ("user", "q1", "rank", "r-q1"): 1,
        ("user", "q2", "rank", "r-q2"): 2,
    }
    assert sorted((r["alias_id"], r["user_id"]) for r in rows["identities"]) == [
        ("anon-1", "u1"), ("old-1", "u1")]
    assert [(r["user_id"], r["account_id"]) for r in rows["account_links"]] == [("u1", "acme")]
    track = next(r for r in rows["events"] if r["message_id"] == "r-track")
    assert (track["event"], track["account_id"]) == ("Report Viewed", "acme")
    assert json.loads(track["context"])["library"]["name"] == "analytics-python"
