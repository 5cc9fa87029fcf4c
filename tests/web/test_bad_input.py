"""Bad input over real HTTP: every limit and malformation gets its precise 4xx, and nothing
stored is harmed.

The main test runs a table of hostile requests against one real server, interleaved with
good ones, then checks that the server still answers and that the database holds exactly
the events of the accepted requests (no more, no fewer, each once, strings verbatim).
Batch semantics: one bad event rejects its whole batch, so a batch of 10 with one bad
event stores none of them.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Server, start_server
from segmently.store import Store
from segmently.store.projects import create_project

MB = 1024 * 1024
HOSTILE = [
    "'; DROP TABLE events; --",
    'Robert"); DROP TABLE students;-- \\ \' " `',
    "名前 🚀 e\u0301 \u202eevil\u202c \u200b zero-width",
    "$identify",
    "x" * 512,
]


@dataclass
class Case:
    """One request and the answer it must get."""

    name: str
    body: bytes | None
    status: int
    code: str | None = None
    fragment: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True


def ev(mid: str, **kw: Any) -> dict[str, Any]:
    return {"event": "clicked", "user_id": "u1", "message_id": mid, **kw}


def js(value: Any) -> bytes:
    return json.dumps(value).encode()


def nested(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    cur = root
    for _ in range(levels - 1):
        cur["a"] = {}
        cur = cur["a"]
    return root


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


def bad_cases(server: Server) -> list[Case]:
    deep = b"[" * 100_000 + b"]" * 100_000
    ten = [ev(f"batch-{i}") for i in range(10)]
    ten[6] = {"event": "clicked", "message_id": "batch-6"}  # no user id
    return [
        # sizes
        Case("single event body over 2 MB", js(ev("big-1", properties={"x": "a" * (2 * MB)})),
             413, "payload_too_large", "the limit is 2097152 bytes"),
        Case("batch body over 20 MB", b" " * (20 * MB + 1), 413, "payload_too_large",
             "the limit is 20971520 bytes"),
        Case("event over 1 MB", js({"events": [ev("big-2", properties={"x": "a" * MB})]}),
             413, "event_too_large", "events[0] is 1048"),
        Case("gzip bomb", gzip.compress(b" " * (40 * MB), 1), 413, "payload_too_large",
             "decompressed body is larger than the limit of 20971520 bytes",
             {"Content-Encoding": "gzip"}),
        # structure
        Case("nested 33 levels", js(ev("deep-1", properties=nested(33))), 400, "too_deep",
             "event.properties is nested more than 32 levels deep"),
        Case("nested in a batch", js({"events": [ev("deep-2"), ev("deep-3", context=nested(40))]}),
             400, "too_deep", "events[1].context is nested more than 32 levels deep"),
        Case("nested 300 levels", js(ev("deep-4", properties=nested(300))), 400, "too_deep",
             "event.properties is nested more than 32 levels deep"),
        Case("nested 100k levels", b'{"event":"a","user_id":"u","properties":{"x":' + deep + b"}}",
             400, "malformed_json", "body is not valid JSON"),
        Case("malformed JSON", b'{"event": "a", "user_id": ', 400, "malformed_json",
             "body is not valid JSON"),
        Case("empty body", b"", 400, "malformed_json", "body is not valid JSON"),
        Case("invalid UTF-8", b'{"event":"\xff\xfe","user_id":"u"}', 400, "malformed_json",
             "not valid UTF-8"),
        Case("NaN", b'{"event":"a","user_id":"u","properties":{"x":NaN}}', 400, "malformed_json",
             "body is not valid JSON"),
        Case("array body", b"[1, 2]", 400, "bad_type", "body must be a JSON object"),
        Case("string body", b'"hello"', 400, "bad_type", "body must be a JSON object"),
        Case("null body", b"null", 400, "bad_type", "body must be a JSON object"),
        Case("empty batch", js({"events": []}), 400, "empty_batch", "events is empty"),
        Case("events not a list", js({"events": {"a": 1}}), 400, "invalid_event",
             "events: Input should be a valid list"),
        Case("event not an object", js({"events": [ev("ok-x"), 7]}), 400, "invalid_event",
             "events[1]: Input should be a valid dictionary"),
        # types and fields
        Case("event name an object", js(ev("t-1", event={"a": 1})), 400, "invalid_event",
             "event: Input should be a valid string"),
        Case("user id a boolean", js(ev("t-2", user_id=True)), 400, "invalid_event",
             "user_id: Input should be a valid string"),
        Case("properties a list", js(ev("t-3", properties=[1, 2])), 400, "invalid_event",
             "properties: Input should be a valid dictionary"),
        Case("unknown type", js(ev("t-4", type="purchase")), 400, "invalid_event", "type: Input"),
        Case("unknown field", js(ev("t-5", userId="u2")), 400, "invalid_event",
             "userId: Extra inputs are not permitted"),
        Case("unknown field in a batch", js({"events": [ev("t-6")], "writeKey": "x"}), 400,
             "invalid_event", "writeKey: Extra inputs are not permitted"),
        Case("missing user id", js({"event": "a", "message_id": "t-7"}), 400, "missing_field",
             "event needs a user id or an anonymous id"),
        Case("blank user id", js(ev("t-8", user_id="   ")), 400, "missing_field",
             "needs a user id or an anonymous id"),
        Case("missing event name", js({"user_id": "u", "message_id": "t-9"}), 400,
             "missing_field", "event.event is required for a track event"),
        Case("empty event name", js(ev("t-10", event="")), 400, "invalid_event",
             "event: String should have at least 1 character"),
        # timestamps
        Case("timestamp far in the future", js(ev("ts-1", timestamp="2999-01-01T00:00:00Z")),
             400, "timestamp_in_future", "event.timestamp 2999-01-01T00:00:00Z is more than"),
        Case("timestamp 2 days ahead", js(ev("ts-2", timestamp=iso(timedelta(days=2)))), 400,
             "timestamp_in_future", "in the future"),
        Case("timestamp not a date", js(ev("ts-3", timestamp="yesterday")), 400,
             "invalid_event", "timestamp: Input should be a valid datetime"),
        Case("timestamp beyond year 9999", js(ev("ts-4", timestamp=1e30)), 400, "invalid_event",
             "timestamp: Input should be a valid datetime"),
        Case("timestamp a boolean", js(ev("ts-5", timestamp=True)), 400, "invalid_event",
             "timestamp: Input should be a valid datetime"),
        # hostile strings that cannot be stored verbatim everywhere, or are too long
        Case("NUL in the event name", js(ev("h-1", event="a\x00b")), 400, "bad_value",
             "event.event contains a NUL character"),
        Case("NUL in the user id", js(ev("h-2", user_id="u\x00")), 400, "bad_value",
             "event.user_id contains a NUL character"),
        Case("NUL in a trait name", js(ev("h-3", type="identify", traits={"a\x00": 1})), 400,
             "bad_value", "event.traits has a name with a NUL character"),
        Case("user id too long", js(ev("h-4", user_id="u" * 513)), 400, "invalid_event",
             "user_id: String should have at most 512 characters"),
        Case("event name too long", js(ev("h-5", event="e" * 1025)), 400, "invalid_event",
             "event: String should have at most 1024 characters"),
        # encodings
        Case("brotli declared", js(ev("enc-1")), 415, "unsupported_encoding",
             "unsupported Content-Encoding 'br'", {"Content-Encoding": "br"}),
        Case("gzip declared, plain sent", js(ev("enc-2")), 400, "bad_encoding",
             "body is not valid gzip", {"Content-Encoding": "gzip"}),
        Case("truncated gzip", gzip.compress(js(ev("enc-3")))[:-12], 400, "bad_encoding",
             "truncated gzip", {"Content-Encoding": "gzip"}),
        # keys
        Case("no write key", js(ev("k-1")), 401, "unauthorized", "missing write key", auth=False),
        Case("unknown write key", js(ev("k-2")), 401, "unauthorized", "unknown write key",
             {"Authorization": "Bearer wk_not_a_key"}, auth=False),
        Case("secret key instead of write key", js(ev("k-3")), 401, "unauthorized",
             "unknown write key", {"Authorization": f"Bearer {server.secret_key}"}, auth=False),
        Case("garbage Basic auth", js(ev("k-4")), 401, "unauthorized", "missing write key",
             {"Authorization": "Basic !!!not-base64"}, auth=False),
        # batch semantics
        Case("one bad event among 10", js({"events": ten}), 400, "missing_field",
             "events[6] needs a user id or an anonymous id"),
    ]


def good_requests(server: Server) -> list[tuple[bytes, dict[str, str], list[dict[str, Any]]]]:
    """Requests that must be accepted, and the events each one sends."""
    out = []
    single = ev("good-1", timestamp=iso(timedelta(hours=1)), properties={"plan": "pro"})
    out.append((js(single), {}, [single]))
    batch = [ev(f"good-batch-{i}", user_id=f"u{i}") for i in range(10)]
    out.append((js({"events": batch}), {}, batch))
    hostile = [ev(f"hostile-{i}", event=s if len(s) <= 1024 else s[:1024], user_id=s,
                  properties={s: s, "nul": "a\x00b", "quote": "\"'"}) for i, s in
               enumerate(HOSTILE)]
    out.append((js({"events": hostile}), {}, hostile))
    zipped = ev("good-gzip")
    out.append((gzip.compress(js(zipped)), {"Content-Encoding": "gzip"}, [zipped]))
    basic = ev("good-basic")
    import base64

    token = base64.b64encode(f"{server.write_key}:".encode()).decode()
    out.append((js(basic), {"Authorization": f"Basic {token}"}, [basic]))
    header = ev("good-header", event="e" * 1024)
    out.append((js(header), {"X-Write-Key": server.write_key}, [header]))
    fixed = [ev(f"batch-{i}") for i in range(10)]  # the rejected batch, corrected
    out.append((js({"events": fixed}), {}, fixed))
    return out


def post(http: httpx.Client, server: Server, body: bytes | None, headers: dict[str, str],
         auth: bool = True) -> httpx.Response:
    base = {"Content-Type": "application/json"}
    if auth:
        base["Authorization"] = f"Bearer {server.write_key}"
    return http.post("/v1/events", content=body, headers={**base, **headers})


def test_every_bad_input_gets_a_precise_4xx_and_harms_nothing(server: Server) -> None:
    wrong: list[str] = []
    expected: dict[str, dict[str, Any]] = {}
    cases, goods = bad_cases(server), good_requests(server)
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for i, case in enumerate(cases):
            response = post(http, server, case.body, case.headers, case.auth)
            body = response.json()
            if (response.status_code, body.get("code")) != (case.status, case.code) or \
                    case.fragment not in body.get("message", ""):
                wrong.append(f"{case.name}: {response.status_code} {body}")
            if i < len(goods):  # interleave accepted requests with the rejected ones
                raw, headers, events = goods[i]
                good = post(http, server, raw, headers)
                if good.status_code != 200:
                    wrong.append(f"good request {i}: {good.status_code} {good.text}")
                expected.update({e["message_id"]: e for e in events})
        assert http.get("/healthz").json()["status"] == "ok"
    assert not wrong, "\n".join(wrong)
    server.stop()

    with Store(server.db) as store:
        rows = store.events(server.project_id).to_pyarrow().to_pylist()
    assert Counter(r["message_id"] for r in rows) == Counter(set(expected))
    for row in rows:
        sent = expected[row["message_id"]]
        assert (row["event"], row["user_id"]) == (sent["event"], sent["user_id"])
        assert json.loads(row["properties"]) == sent.get("properties", {})


@pytest.mark.slow
def test_streamed_body_and_event_count_limits_from_env(tmp_path: Path) -> None:
    """Limits.from_env: a chunked body (no Content-Length) is cut off while streaming."""
    db = f"duckdb://{tmp_path / 'limits.duckdb'}"
    with Store(db) as s:
        key = create_project(s, "limits").project.write_key
    proc, url = start_server(db, tmp_path / "server.log", env={
        "SEGMENTLY_MAX_BATCH_BODY": str(64 * 1024), "SEGMENTLY_MAX_SINGLE_BODY": "4096",
        "SEGMENTLY_MAX_EVENT_BYTES": "1024", "SEGMENTLY_MAX_BATCH_EVENTS": "50",
        "SEGMENTLY_MAX_DEPTH": "3", "SEGMENTLY_MAX_FUTURE": "60"})

    def chunks() -> Iterator[bytes]:
        yield b'{"events": ['
        for i in range(2000):
            yield js(ev(f"s{i}")) + b","
        yield js(ev("last")) + b"]}"

    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(base_url=url, timeout=60, headers=headers) as http:
            def check(content: Any, status: int, code: str, fragment: str) -> None:
                r = http.post("/v1/events", content=content)
                assert (r.status_code, r.json()["code"]) == (status, code), r.text
                assert fragment in r.json()["message"]

            check(chunks(), 413, "payload_too_large", "the limit is 65536 bytes")
            check(js({"events": [ev(f"n{i}") for i in range(51)]}), 413, "batch_too_large",
                  "events holds 51 events; the limit is 50")
            check(js(ev("one", properties={"x": "a" * 5000})), 413, "payload_too_large",
                  "the limit is 4096 bytes")
            check(js({"events": [ev("ev", properties={"x": "a" * 2000})]}), 413,
                  "event_too_large", "one event may be at most 1024 bytes")
            check(js(ev("d", properties=nested(4))), 400, "too_deep", "more than 3 levels")
            check(js(ev("f", timestamp=iso(timedelta(minutes=5)))), 400,
                  "timestamp_in_future", "0:01:00 in the future")
            ok = http.post("/v1/events", content=js({"events": [ev(f"n{i}") for i in range(50)]}))
            assert ok.status_code == 200, ok.text
            assert http.get("/healthz").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with Store(db) as s:
        stored = s.table("events").select("message_id").to_pyarrow()["message_id"].to_pylist()
    assert sorted(stored) == sorted(f"n{i}" for i in range(50))


@pytest.mark.parametrize("encoding", ["deflate", "zstd", "gzip, br"])
def test_unsupported_content_encodings_are_refused(server: Server, encoding: str) -> None:
    r = httpx.post(f"{server.url}/v1/events", content=js(ev("enc")),
                   headers={"Authorization": f"Bearer {server.write_key}",
                            "Content-Encoding": encoding})
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_encoding")
