"""The PostHog capture API against a real `segmently serve`: the official posthog-python
client, raw requests in every encoding and endpoint spelling, and the errors SDKs see.

Stored rows are read back with a fresh Store after the server stopped and compared field
by field with what was sent.
"""

from __future__ import annotations

import base64
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx
import orjson
import pandas as pd
from posthog import Posthog

from segmently.store import Store

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
SPELLINGS = [p + s for p in ("/batch", "/capture", "/e", "/i/v0/e", "/track") for s in ("/", "")]


def lz_compress_base64(text: str) -> str:
    """A line-by-line port of lz-string's JavaScript `compressToBase64` (checked against
    outputs of the JS library below), to build lz64 bodies as posthog-js does."""
    units = [chr(u) for u in memoryview(text.encode("utf-16-le")).cast("H")]
    dictionary: dict[str, int] = {}
    to_create: set[str] = set()
    out: list[str] = []
    state = {"val": 0, "pos": 0}
    enlarge_in, dict_size, num_bits, w = 2, 3, 2, ""

    def write(value: int, bits: int) -> None:
        for _ in range(bits):
            state["val"] = (state["val"] << 1) | (value & 1)
            if state["pos"] == 5:
                state["pos"] = 0
                out.append(B64[state["val"]])
                state["val"] = 0
            else:
                state["pos"] += 1
            value >>= 1

    def emit(w: str) -> None:
        nonlocal enlarge_in, num_bits
        if w in to_create:
            wide = ord(w[0]) >= 256
            write(1 if wide else 0, num_bits)
            write(ord(w[0]), 16 if wide else 8)
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in, num_bits = 1 << num_bits, num_bits + 1
            to_create.discard(w)
        else:
            write(dictionary[w], num_bits)
        enlarge_in -= 1
        if enlarge_in == 0:
            enlarge_in, num_bits = 1 << num_bits, num_bits + 1

    for c in units:
        if c not in dictionary:
            dictionary[c] = dict_size
            dict_size += 1
            to_create.add(c)
        if w + c in dictionary:
            w = w + c
        else:
            emit(w)
            dictionary[w + c] = dict_size
            dict_size += 1
            w = c
    if w:
        emit(w)
    write(2, num_bits)
    while True:
        state["val"] <<= 1
        if state["pos"] == 5:
            out.append(B64[state["val"]])
            break
        state["pos"] += 1
    res = "".join(out)
    return res + ("", "===", "==", "=")[len(res) % 4]  # lz-string pads 1 extra char with ===


def test_the_test_compressor_matches_lz_string_js() -> None:
    # Outputs of the JS library published in CyberChef's, langserve's and an lz-string
    # C# port's test suites.
    assert lz_compress_base64("hello world") == "BYUwNmD2AEDukCcwBMg="
    assert lz_compress_base64('{ "key": "value" }') == "N4AgRA1gpgnmBc4BuBDANgVymEBfIA=="
    assert lz_compress_base64("Žluťoučký kůň úpěl ďábelské ódy!") == (
        "r6ABsK6KaAD2aLCADWBfgBPQ9oCAlAZAvgDobEARlB4QAEOAjAUxAGd4BL5AZ4BMBPAQiA==")


def _rows(db: str, table: str) -> pd.DataFrame:
    with Store(db, read_only=True) as s:
        return s.table(table).execute()


def _utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None)


def test_official_posthog_python_client(server) -> None:  # type: ignore[no-untyped-def]
    sent = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    ids = {k: str(uuid.uuid4()) for k in ("capture", "identify", "set", "once", "alias", "group")}
    client = Posthog(server.write_key, host=server.url, sync_mode=True)
    client.capture("report_viewed", distinct_id="user-1", properties={"report": "weekly", "n": 3},
                   timestamp=sent, uuid=ids["capture"], groups={"company": "acme"})
    client.capture("$identify", distinct_id="user-1", uuid=ids["identify"],
                   properties={"$anon_distinct_id": "anon-9", "$set": {"email": "a@x.io"}})
    client.set(distinct_id="user-1", properties={"plan": "pro"}, uuid=ids["set"])
    client.set_once(distinct_id="user-1", properties={"signup": "2026-01-01"}, uuid=ids["once"])
    client.alias(previous_id="user-1", distinct_id="crm-77", uuid=ids["alias"])
    client.group_identify("company", "acme", {"name": "Acme", "seats": 12}, uuid=ids["group"])
    client.shutdown()
    gz = Posthog(server.write_key, host=server.url, sync_mode=True, gzip=True)
    gz_id = str(uuid.uuid4())
    gz.capture("exported", distinct_id="user-2", uuid=gz_id)
    gz.shutdown()
    server.stop()

    ev = _rows(server.db, "events").set_index("message_id")
    assert sorted(ev.index) == sorted([*ids.values(), gz_id])
    assert set(ev.source) == {"posthog"}
    c = ev.loc[ids["capture"]]
    assert (c.type, c.event, c.user_id, c.account_id) == (
        "track", "report_viewed", "user-1", "acme")
    assert c.anonymous_id is None
    props = orjson.loads(c.properties)
    assert (props["report"], props["n"], props["$groups"]) == ("weekly", 3, {"company": "acme"})
    assert props["$lib"] == "posthog-python" and "api_key" not in props
    # Skew correction moves the time by the client->server delay only (same machine).
    assert abs(c.timestamp.to_pydatetime() - _utc(sent)) < timedelta(seconds=10)
    i = ev.loc[ids["identify"]]
    assert (i.type, i.event, i.user_id, i.anonymous_id) == (
        "identify", "$identify", "user-1", "anon-9")
    assert ev.loc[ids["alias"]][["type", "user_id"]].tolist() == ["alias", "user-1"]
    g = ev.loc[ids["group"]]
    assert (g.event, g.account_id) == ("$groupidentify", "acme")
    assert ev.loc[gz_id][["event", "user_id"]].tolist() == ["exported", "user-2"]

    traits = _rows(server.db, "traits")
    got = {(r.kind, r.entity_id, r.trait, orjson.loads(r.value), r.once, r.message_id)
           for r in traits.itertuples()}
    assert got == {
        ("user", "user-1", "email", "a@x.io", False, ids["identify"]),
        ("user", "user-1", "plan", "pro", False, ids["set"]),
        ("user", "user-1", "signup", "2026-01-01", True, ids["once"]),
        ("account", "acme", "name", "Acme", False, ids["group"]),
        ("account", "acme", "seats", 12, False, ids["group"]),
    }
    idents = _rows(server.db, "identities")
    assert {(r.alias_id, r.user_id, r.message_id) for r in idents.itertuples()} == {
        ("anon-9", "user-1", ids["identify"]), ("crm-77", "user-1", ids["alias"])}


def _event(name: str, token: str | None, **extra: object) -> dict:  # type: ignore[type-arg]
    props = {"token": token} if token else {}
    return {"event": name, "distinct_id": "raw-user", "uuid": str(uuid.uuid4()),
            "properties": props, **extra}


def test_raw_requests_every_spelling_and_encoding(server) -> None:  # type: ignore[no-untyped-def]
    key = server.write_key
    expected: dict[str, str] = {}  # uuid -> event name
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for path in SPELLINGS:
            e = _event(f"spelled {path}", key)
            r = http.post(path, json=e)
            assert (r.status_code, r.json()) == (200, {"status": 1}), (path, r.text)
            expected[e["uuid"]] = e["event"]

        def post(name: str, path: str, make, **kw) -> None:  # type: ignore[no-untyped-def]
            e = _event(name, key)
            r = http.post(path, content=make(json.dumps([e]).encode()), **kw)
            assert (r.status_code, r.json()) == (200, {"status": 1}), (name, r.text)
            expected[e["uuid"]] = name

        post("gzip header", "/batch/", gzip.compress, headers={"Content-Encoding": "gzip"})
        post("gzip magic", "/e/", gzip.compress)
        post("gzip-js", "/e/?compression=gzip-js&ver=1.200.0", gzip.compress,
             headers={"Content-Type": "text/plain"})
        post("base64 query", "/e/?compression=base64", base64.b64encode)
        post("base64 bare", "/capture/", base64.b64encode)
        post("lz64 query", "/e/?compression=lz64",
             lambda b: lz_compress_base64(b.decode()).encode())
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        post("lz64 form", "/e/",
             lambda b: ("compression=lz64&data=" + lz_compress_base64(b.decode())).encode(),
             headers=form)
        post("base64 form", "/track", lambda b: b"data=" + quote(base64.b64encode(b)).encode(),
             headers=form)
        get = _event("get data", key)
        data = base64.b64encode(json.dumps(get).encode()).decode()
        r = http.get("/capture/", params={"data": data})
        assert r.status_code == 200, r.text
        expected[get["uuid"]] = "get data"

        batch = {"api_key": key, "sent_at": datetime.now(UTC).isoformat(),
                 "batch": [_event("in batch 1", None), _event("in batch 2", None)]}
        assert http.post("/batch", json=batch).status_code == 200
        expected.update({e["uuid"]: e["event"] for e in batch["batch"]})
        assert http.post("/batch", json=batch).status_code == 200  # a retry: deduplicated

        pre = http.options("/e/", headers={"Origin": "https://app.example",
                                           "Access-Control-Request-Method": "POST"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
    server.stop()
    ev = _rows(server.db, "events")
    assert dict(zip(ev.message_id, ev.event, strict=True)) == expected
    assert set(ev.user_id) == {"raw-user"}
    assert all("token" not in orjson.loads(p) for p in ev.properties)


def test_errors_in_posthog_shape_and_nothing_stored(server) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url, timeout=10) as http:
        missing = http.post("/e/", json=_event("x", None))
        assert missing.status_code == 401
        body = missing.json()
        assert (body["type"], body["code"]) == ("authentication_error", "missing_api_key")
        assert body["detail"] == body["message"] and "api_key" in body["detail"]

        unknown = http.post("/batch/", json={"api_key": "phc_nope", "batch": [_event("x", None)]})
        assert unknown.status_code == 401
        assert unknown.json()["code"] == "invalid_api_key"

        bad = {"api_key": server.write_key,
               "batch": [_event("fine", None), {"event": "no id", "uuid": "u-2"}]}
        r = http.post("/batch/", json=bad)
        assert r.status_code == 400
        body = r.json()
        assert body["type"] == "validation_error" and body["code"] == "missing_field"
        assert body["detail"] == "batch[1].distinct_id is required"

        r = http.post("/e/?compression=lz64", content=b"not*lz64",
                      headers={"Content-Type": "text/plain"})
        assert (r.status_code, r.json()["code"]) == (400, "bad_encoding")
        # lz-string JS output of '{ "key": "value" }': decodes, then has no event name.
        r = http.post("/e/?compression=lz64&token=" + server.write_key,
                      content=b"N4AgRA1gpgnmBc4BuBDANgVymEBfIA==")
        assert r.status_code == 400 and r.json()["detail"] == "event must be a non-empty string"
        # One event may come in a body of at most max_single_body (2 MB) once decoded.
        big = _event("big", server.write_key)
        big["properties"]["blob"] = "x" * (2100 * 1024)
        r = http.post("/capture/", content=gzip.compress(json.dumps(big).encode()))
        assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")
    server.stop()
    assert len(_rows(server.db, "events")) == 0
