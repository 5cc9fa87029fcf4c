"""PostHog capture format: decoding of every envelope, and the mapping to messages.

lz64 vectors are outputs of the JavaScript lz-string library as published by others
(CyberChef's test suite, langserve's "generated with original js lib" test, an
lz-string C# port's test table), plus napi-rs's Rust port (same bits, one extra '='
of padding), not of any code here.
"""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from segmently.collect.errors import InputError
from segmently.collect.limits import Limits
from segmently.collect.posthog import find_token, parse_posthog
from segmently.collect.posthog_decode import decode_query, decode_request, lz_decompress_base64

NOW = datetime(2026, 1, 10, 12, 0, 0)
LIMITS = Limits()
MB = 1024 * 1024

GLOSSARY = ('{"glossary":{"title":"example glossary","GlossDiv":{"title":"S","GlossList":'
            '{"GlossEntry":{"ID":"SGML","SortAs":"SGML","GlossTerm":"Standard Generalized Markup'
            ' Language","Acronym":"SGML","Abbrev":"ISO 8879:1986","GlossDef":{"para":"A meta-'
            'markup language, used to create markup languages such as DocBook.","GlossSeeAlso":'
            '["GML","XML"]},"GlossSee":"markup"}}}}}')
GLOSSARY_LZ64 = (
    "N4Ig5gNg9gzjCGAnAniAXKALgS0xApuiPgB7wC2ADgQASSwIogA0IA4tHACLYBu6WXASIBlFu04wAMthiYBEhgFEAd"
    "piYYQASS6i2AWSniRURJgCCMPYfEcGAFXyJyozPBUATJB5pt8Kp3gIbAAvfB99JABrAFdKGil3MBj4MEJWcwBjRCgV"
    "ZBc0EBEDIwyAIzLEfH5CrREAeRoADiaAdgBONABGdqaANltJLnwAMwVKJHgicxpyfDcAWnJouJoIJJS05hoYmHCaTC"
    "gabPx4THxZlfj1lWTU/BgaGBjMgAsaeEeuKEyAISgoFEAHSDBgifD4cwQGBQdAAbXYNlYAA0bABdAC+rDscHBhEKy0"
    "QsUoIAxZLJQA")
LZ64_VECTORS = [
    ("BYUwNmD2AEDukCcwBMg=", "hello world"),
    ("MYewdgzgLgBAhgLhmArgWwEYFMBOMC8MAjANxA===", "const a: number = 1;"),
    ("N4AgRA1gpgnmBc4BuBDANgVymEBfIA==", '{ "key": "value" }'),
    ("r6ABsK6KaAD2aLCADWBfgBPQ9oCAlAZAvgDobEARlB4QAEOAjAUxAGd4BL5AZ4BMBPAQiA==",
     "Žluťoučký kůň úpěl ďábelské ódy!"),
    (GLOSSARY_LZ64, GLOSSARY),
]
EVENT = {"event": "signed_up", "distinct_id": "u1", "properties": {"plan": "pro"}}


def decode(body: bytes, *, content_type: str | None = "application/json",
           content_encoding: str | None = None, params: dict[str, str] | None = None,
           limit: int = MB):  # type: ignore[no-untyped-def]
    return decode_request(body, content_type=content_type, content_encoding=content_encoding,
                          params=params or {}, limit=limit)


def parse(payload, fields=None, account_group=None):  # type: ignore[no-untyped-def]
    return parse_posthog(payload, NOW, LIMITS, fields=fields, account_group=account_group)


def one(event: dict, **kw):  # type: ignore[no-untyped-def, type-arg]
    [msg] = parse(event, **kw)
    return msg


# -- decoding ------------------------------------------------------------------------------

@pytest.mark.parametrize(("compressed", "text"), LZ64_VECTORS)
def test_lz64_matches_the_javascript_library(compressed: str, text: str) -> None:
    assert lz_decompress_base64(compressed, MB) == text


def test_lz64_body_by_query_and_by_form_with_plus_turned_to_space() -> None:
    expected = json.loads(GLOSSARY)
    by_query = decode(GLOSSARY_LZ64.encode(), content_type="text/plain",
                      params={"compression": "lz64"})
    assert by_query.payload == expected
    # posthog-js posts data=<lz64> unescaped: '+' arrives as ' ' after form decoding.
    assert "+" in GLOSSARY_LZ64
    form = f"data={GLOSSARY_LZ64}&compression=lz64".encode()
    by_form = decode(form, content_type="application/x-www-form-urlencoded")
    assert by_form.payload == expected
    assert by_form.fields["compression"] == "lz64"


@pytest.mark.parametrize(("headers", "params"), [
    ({"content_encoding": "gzip"}, {}),
    ({}, {}),  # recognized by the gzip magic bytes alone
    ({"content_type": "text/plain"}, {"compression": "gzip-js"}),
])
def test_gzip_by_header_magic_bytes_or_query(headers: dict[str, str],
                                             params: dict[str, str]) -> None:
    body = gzip.compress(json.dumps([EVENT]).encode())
    assert decode(body, params=params, **headers).payload == [EVENT]


def test_base64_by_query_by_fallback_and_in_a_form() -> None:
    b64 = base64.b64encode(json.dumps(EVENT).encode())
    assert decode(b64, params={"compression": "base64"}).payload == EVENT
    assert decode(b64).payload == EVENT  # not JSON, so PostHog tries base64
    unpadded = b64.rstrip(b"=")
    form = b"data=" + quote(unpadded.decode()).encode() + b"&api_key=phc_1"
    decoded = decode(form, content_type="application/x-www-form-urlencoded; charset=utf-8")
    assert decoded.payload == EVENT
    assert decoded.fields["api_key"] == "phc_1"


def test_form_with_plain_json_and_get_with_data_query() -> None:
    form = ("data=" + quote(json.dumps(EVENT))).encode()
    assert decode(form, content_type="application/x-www-form-urlencoded").payload == EVENT
    b64 = base64.b64encode(json.dumps(EVENT).encode()).decode()
    assert decode_query({"data": b64, "token": "t"}, MB).payload == EVENT


@pytest.mark.parametrize(("body", "kw", "code", "words"), [
    (b"!!!", {"params": {"compression": "lz64"}}, "bad_encoding", "outside base64"),
    (b"{}", {"params": {"compression": "br"}}, "bad_encoding", "'br' is not supported"),
    (b"not json", {}, "malformed_json", "not valid JSON"),
    (b"\x1f\x8bnot gzip", {}, "bad_encoding", "not valid gzip"),
    (b"data=", {"content_type": "application/x-www-form-urlencoded"}, "missing_field",
     "no data field"),
])
def test_bad_bodies_are_named(body: bytes, kw: dict[str, object], code: str, words: str) -> None:
    with pytest.raises(InputError) as err:
        decode(body, **kw)
    assert err.value.code == code and err.value.status == 400
    assert words in err.value.message


def test_decompression_is_bounded() -> None:
    big = json.dumps({"event": "x", "distinct_id": "u", "properties": {"p": "a" * 5000}})
    with pytest.raises(InputError) as err:
        decode(gzip.compress(big.encode()), limit=1000)
    assert err.value.status == 413
    with pytest.raises(InputError) as err:
        lz_decompress_base64(GLOSSARY_LZ64, 100)
    assert err.value.status == 413


# -- tokens ---------------------------------------------------------------------------------

def test_token_from_query_form_body_or_events() -> None:
    assert find_token({"batch": [EVENT], "api_key": " phc_a "}, {}) == "phc_a"
    assert find_token(EVENT, {"token": "phc_q"}) == "phc_q"
    js = [{**EVENT, "properties": {"token": "phc_js"}}] * 2
    assert find_token(js, {}) == "phc_js"
    assert find_token({**EVENT, "$token": "phc_t"}, {}) == "phc_t"
    assert find_token(EVENT, {}) is None
    mixed = [{**EVENT, "properties": {"token": "a"}}, {**EVENT, "properties": {"token": "b"}}]
    with pytest.raises(InputError) as err:
        find_token(mixed, {})
    assert err.value.code == "multiple_tokens"


# -- mapping --------------------------------------------------------------------------------

def test_capture_keeps_name_id_uuid_timestamp_and_properties_without_token() -> None:
    msg = one({"event": "$pageview", "distinct_id": 42, "uuid": "0190-a",
               "timestamp": "2026-01-09T10:00:00+02:00",
               "properties": {"token": "phc_x", "$current_url": "/a", "$lib": "web",
                              "$lib_version": "1.2"}})
    assert (msg.type, msg.event, msg.user_id, msg.anonymous_id) == ("page", "$pageview", "42", None)
    assert msg.message_id == "0190-a"
    assert msg.timestamp == datetime(2026, 1, 9, 8, 0, 0)
    assert msg.properties == {"$current_url": "/a", "$lib": "web", "$lib_version": "1.2"}
    assert msg.context == {"library": {"name": "web", "version": "1.2"}}
    assert msg.source == "posthog"


def test_missing_uuid_gets_a_fresh_id_per_event() -> None:
    a, b = parse({"batch": [EVENT, EVENT]})
    assert a.message_id and b.message_id and a.message_id != b.message_id


def test_time_offset_and_clock_skew_as_posthog_computes_them() -> None:
    ts = "2026-01-10T11:00:00Z"
    # Client clock 10 minutes ahead: sent_at 11:10 arrives at 12:00, event was 50 min ago.
    batch = {"sent_at": "2026-01-10T11:10:00Z", "batch": [
        {**EVENT, "timestamp": ts},
        {**EVENT, "timestamp": ts, "properties": {"$ignore_sent_at": True}},
        {**EVENT, "offset": 1500},
        {**EVENT},
    ]}
    got = [m.timestamp for m in parse(batch)]
    assert got == [datetime(2026, 1, 10, 11, 50), datetime(2026, 1, 10, 11, 0),
                   NOW - timedelta(milliseconds=1500), NOW]
    # posthog-js sends sent_at as the `_` query parameter, in milliseconds.
    sent_ms = int((datetime(2026, 1, 10, 11, 30) - datetime(1970, 1, 1)).total_seconds() * 1000)
    [m] = parse([{**EVENT, "timestamp": ts}], fields={"_": str(sent_ms)})
    assert m.timestamp == datetime(2026, 1, 10, 11, 30)


def test_anonymous_or_identified_distinct_id() -> None:
    anon = one({**EVENT, "distinct_id": "d1", "properties": {"$device_id": "d1"}})
    assert (anon.user_id, anon.anonymous_id) == (None, "d1")
    flagged = one({**EVENT, "properties": {"$is_identified": False}})
    assert (flagged.user_id, flagged.anonymous_id) == (None, "u1")
    personless = one({**EVENT, "properties": {"$process_person_profile": False}})
    assert (personless.user_id, personless.anonymous_id) == (None, "u1")
    told = one({**EVENT, "distinct_id": "d1", "properties": {"$device_id": "d1",
                                                              "$is_identified": True}})
    assert (told.user_id, told.anonymous_id) == ("d1", None)
    known = one({**EVENT, "properties": {"$device_id": "d1"}})
    assert (known.user_id, known.anonymous_id) == ("u1", "d1")
    in_props = one({"event": "e", "properties": {"distinct_id": "p1"}})
    assert in_props.user_id == "p1"


def test_identify_merges_the_anonymous_id_and_sets_traits() -> None:
    msg = one({"event": "$identify", "distinct_id": "user@x.io",
               "properties": {"$anon_distinct_id": "anon-1", "$device_id": "anon-1",
                              "$is_identified": False, "$set": {"name": "Ann"},
                              "$set_once": {"first_seen_plan": "free"}}})
    assert (msg.type, msg.user_id, msg.anonymous_id, msg.alias_id) == (
        "identify", "user@x.io", "anon-1", "anon-1")
    assert msg.traits == {"name": "Ann"}
    assert msg.traits_once == {"first_seen_plan": "free"}
    assert "$set" not in msg.properties and "$set_once" not in msg.properties


def test_set_and_set_once_at_top_level_as_posthog_python_sends_them() -> None:
    s = one({"event": "$set", "distinct_id": "u1", "$set": {"plan": "team"}})
    assert (s.type, s.user_id, s.traits, s.traits_once) == (
        "identify", "u1", {"plan": "team"}, None)
    o = one({"event": "$set_once", "distinct_id": "u1", "$set_once": {"src": "ad"}})
    assert (o.traits, o.traits_once) == (None, {"src": "ad"})
    on_capture = one({**EVENT, "properties": {"$set": {"seats": 3}}})
    assert (on_capture.type, on_capture.traits) == ("track", {"seats": 3})


def test_create_alias_links_alias_to_distinct_id() -> None:
    msg = one({"event": "$create_alias", "distinct_id": "main",
               "properties": {"alias": "crm-7", "distinct_id": "main"}})
    assert (msg.type, msg.user_id, msg.alias_id, msg.anonymous_id) == (
        "alias", "main", "crm-7", None)


def test_groupidentify_sets_account_traits_of_the_account_group_only() -> None:
    ev = {"event": "$groupidentify", "distinct_id": "u1",
          "properties": {"$group_type": "company", "$group_key": "acme",
                         "$group_set": {"name": "Acme", "seats": 12}}}
    msg = one(ev)
    assert (msg.type, msg.account_id, msg.account_traits) == (
        "track", "acme", {"name": "Acme", "seats": 12})
    other = one(ev, account_group="team")
    assert (other.account_id, other.account_traits) == (None, None)


def test_groups_on_any_event_give_the_account() -> None:
    ev = {**EVENT, "properties": {"$groups": {"team": "t1", "company": "acme"}}}
    assert one(ev).account_id == "t1"  # no account group configured: the first type
    assert one(ev, account_group="company").account_id == "acme"
    assert one(ev, account_group="org").account_id is None
    assert one(ev).properties["$groups"] == {"team": "t1", "company": "acme"}


@pytest.mark.parametrize(("payload", "words"), [
    ({"batch": [EVENT, {"event": "x"}]}, "batch[1].distinct_id is required"),
    ([EVENT, {"distinct_id": "u"}], "batch[1].event must be a non-empty string"),
    ({"batch": [{**EVENT, "timestamp": "yesterday"}]}, "batch[0].timestamp is not an ISO 8601"),
    ({**EVENT, "properties": [1]}, "properties must be a JSON object"),
    ({**EVENT, "offset": True}, "offset must be a number of milliseconds"),
    ({"batch": [{**EVENT, "offset": 1e300}]}, "batch[0].offset is out of range"),
    ({"event": "$create_alias", "distinct_id": "u"}, "properties.alias is required"),
    ({"event": "$groupidentify", "distinct_id": "u", "properties": {"$group_type": "c"}},
     "properties.$group_key is required"),
    ({**EVENT, "properties": {"$groups": "acme"}}, "properties.$groups must be a JSON object"),
    ({"batch": []}, "batch holds no event"),
    ({"batch": {}}, "batch must be a JSON array"),
    ("hello", "body must be a JSON object"),
    ({**EVENT, "timestamp": "2026-01-12T12:00:00Z"}, "in the future"),
    ({"sent_at": "soon", "batch": [EVENT]}, "sent_at is not an ISO 8601"),
])
def test_bad_events_are_named(payload: object, words: str) -> None:
    with pytest.raises(InputError) as err:
        parse(payload)
    assert words in err.value.message
    assert err.value.status == 400
