"""Segment's wire format -> Message, on hand-written payloads with hand-computed answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from segmently.collect.errors import InputError
from segmently.collect.limits import Limits
from segmently.collect.segment import find_write_key, parse_segment
from segmently.store.rows import to_rows

NOW = datetime(2026, 3, 1, 12, 0, 0)  # receivedAt
LIMITS = Limits()


def one(call: dict[str, Any], kind: str = "track") -> Any:
    [msg] = parse_segment(call, kind, NOW, LIMITS)
    return msg


def batch(*calls: dict[str, Any], **top: Any) -> list[Any]:
    return parse_segment({"batch": list(calls), **top}, "batch", NOW, LIMITS)


def test_clock_skew_is_corrected_as_segment_does() -> None:
    # The device clock is 3 h fast; it sent the call 5 s after it happened.
    msg = one({"event": "e", "userId": "u", "timestamp": "2026-03-01T15:00:00Z",
               "sentAt": "2026-03-01T15:00:05.000Z"})
    assert msg.timestamp == datetime(2026, 3, 1, 11, 59, 55)
    assert msg.context["originalTimestamp"] == "2026-03-01T15:00:00Z"


def test_offsets_are_honoured_before_the_correction() -> None:
    # 16:00+01:00 is 15:00Z; sent 15:00:30Z, i.e. 30 s later -> 11:59:30.
    msg = one({"event": "e", "userId": "u", "timestamp": "2026-03-01T16:00:00+01:00",
               "sentAt": "2026-03-01T15:00:30Z"})
    assert msg.timestamp == datetime(2026, 3, 1, 11, 59, 30)


def test_batch_sent_at_applies_to_calls_without_their_own() -> None:
    msgs = batch(
        {"type": "track", "event": "a", "userId": "u", "timestamp": "2026-03-01T10:00:00Z"},
        {"type": "track", "event": "b", "userId": "u", "timestamp": "2026-03-01T10:00:00Z",
         "sentAt": "2026-03-01T10:00:30Z"},
        {"type": "track", "event": "c", "userId": "u"},
        sentAt="2026-03-01T10:01:00Z",
    )
    assert [m.timestamp for m in msgs] == [
        datetime(2026, 3, 1, 11, 59, 0),  # 60 s before the batch was sent
        datetime(2026, 3, 1, 11, 59, 30),  # its own sentAt: 30 s
        NOW,  # no timestamp: receivedAt
    ]
    assert "originalTimestamp" not in msgs[2].context


def test_timestamp_without_sent_at_is_taken_as_sent() -> None:
    msg = one({"event": "e", "userId": "u", "timestamp": "2025-12-24T08:30:00Z"})
    assert msg.timestamp == datetime(2025, 12, 24, 8, 30)
    assert "originalTimestamp" not in msg.context


def test_original_timestamp_field_is_used_when_timestamp_is_absent() -> None:
    msg = one({"event": "e", "userId": "u", "originalTimestamp": "2026-03-01T09:00:00Z",
               "sentAt": "2026-03-01T09:00:10Z"})
    assert msg.timestamp == datetime(2026, 3, 1, 11, 59, 50)


def test_a_fast_device_clock_is_not_a_future_timestamp_once_corrected() -> None:
    ahead = {"event": "e", "userId": "u", "timestamp": "2026-03-03T12:00:00Z"}  # 2 days ahead
    with pytest.raises(InputError) as err:
        one(ahead)
    assert err.value.code == "timestamp_in_future"
    msg = one({**ahead, "sentAt": "2026-03-03T12:00:01Z"})
    assert msg.timestamp == datetime(2026, 3, 1, 11, 59, 59)


def test_track_fields_and_unknown_fields_ignored() -> None:
    msg = one({"event": "Report Viewed", "userId": 42, "anonymousId": "anon-1",
               "messageId": "m-1", "properties": {"report": "weekly", "n": 3},
               "context": {"ip": "1.2.3.4", "groupId": "acme"},
               "integrations": {"All": False}, "_metadata": {"bundled": []},
               "type": "track", "channel": "server", "receivedAt": "2020-01-01T00:00:00Z",
               "writeKey": "wk", "version": 2})
    assert (msg.type, msg.event, msg.source) == ("track", "Report Viewed", "segment")
    assert (msg.user_id, msg.anonymous_id, msg.message_id) == ("42", "anon-1", "m-1")
    assert msg.properties == {"report": "weekly", "n": 3}
    assert msg.context == {"ip": "1.2.3.4", "groupId": "acme"}
    assert msg.account_id == "acme"  # context.groupId
    assert msg.alias_id is None and msg.traits is None


def test_missing_message_ids_are_generated_and_distinct() -> None:
    a, b = batch({"type": "track", "event": "x", "userId": "u"},
                 {"type": "track", "event": "x", "userId": "u"})
    assert a.message_id and b.message_id and a.message_id != b.message_id


def test_page_and_screen_names_go_to_properties() -> None:
    page = one({"userId": "u", "name": "Pricing", "category": "Docs",
                "properties": {"url": "https://x.test/pricing"}}, "page")
    assert (page.type, page.event) == ("page", "$page")
    assert page.properties == {"url": "https://x.test/pricing", "name": "Pricing",
                               "category": "Docs"}
    screen = one({"anonymousId": "a", "name": "Home", "category": None}, "screen")
    assert (screen.type, screen.event, screen.properties) == ("screen", "$screen",
                                                              {"name": "Home"})


def test_identify_sets_traits_and_merges_the_anonymous_id() -> None:
    msg = one({"userId": "u1", "anonymousId": "anon-9", "traits": {"plan": "pro"}}, "identify")
    assert (msg.type, msg.event) == ("identify", "$identify")
    assert msg.traits == {"plan": "pro"} and msg.alias_id == "anon-9"
    alone = one({"userId": "u1", "traits": {"plan": "pro"}}, "identify")
    assert alone.alias_id is None


def test_group_sets_account_traits_and_links_the_user() -> None:
    msg = one({"userId": "u1", "groupId": "acme", "traits": {"name": "Acme", "seats": 12}},
              "group")
    assert (msg.type, msg.event, msg.account_id) == ("group", "$group", "acme")
    assert msg.account_traits == {"name": "Acme", "seats": 12} and msg.traits is None
    rows = to_rows("p", [msg], NOW)
    assert [(r["user_id"], r["account_id"]) for r in rows.account_links.to_pylist()] == [
        ("u1", "acme")]
    assert {(r["kind"], r["entity_id"], r["trait"]) for r in rows.traits.to_pylist()} == {
        ("account", "acme", "name"), ("account", "acme", "seats")}


def test_alias_merges_previous_id_into_user_id() -> None:
    msg = one({"previousId": "old-id", "userId": "u1"}, "alias")
    assert (msg.type, msg.event, msg.user_id, msg.alias_id) == ("alias", "$alias", "u1",
                                                                "old-id")
    rows = to_rows("p", [msg], NOW)
    assert [(r["alias_id"], r["user_id"]) for r in rows.identities.to_pylist()] == [
        ("old-id", "u1")]


def test_batch_context_applies_to_every_call_and_calls_win() -> None:
    a, b = batch({"type": "track", "event": "x", "userId": "u", "context": {"locale": "fr"}},
                 {"type": "identify", "userId": "u"},
                 context={"locale": "en", "device": {"type": "phone"}})
    assert a.context == {"locale": "fr", "device": {"type": "phone"}}
    assert b.context == {"locale": "en", "device": {"type": "phone"}}


def test_write_key_from_the_body() -> None:
    assert find_write_key({"writeKey": " wk_1 ", "batch": []}) == "wk_1"
    assert find_write_key({"writeKey": 3}) is None and find_write_key([]) is None


TRACK = {"type": "track", "event": "x", "userId": "u"}


@pytest.mark.parametrize(("body", "kind", "expected"), [
    ({"batch": [TRACK, {**TRACK, "properties": [1]}]}, "batch",
     "batch[1].properties must be a JSON object"),
    ({"batch": [{**TRACK, "userId": {"id": 1}}]}, "batch", "batch[0].userId must be a string"),
    ({"batch": [{**TRACK, "timestamp": "yesterday"}]}, "batch",
     "batch[0].timestamp is not an ISO 8601 timestamp"),
    ({"batch": [{**TRACK, "timestamp": "2026-03-01T10:00:00Z", "sentAt": True}]}, "batch",
     "batch[0].sentAt must be an ISO 8601 timestamp"),
    ({"batch": [TRACK], "sentAt": "soon"}, "batch", "sentAt is not an ISO 8601 timestamp"),
    ({"batch": [TRACK], "context": "web"}, "batch", "context must be a JSON object"),
    ({"batch": [{**TRACK, "context": []}]}, "batch", "batch[0].context must be a JSON object"),
    ({"batch": [{"event": "x", "userId": "u"}]}, "batch", "batch[0].type must be one of"),
    ({"batch": [{**TRACK, "type": "purchase"}]}, "batch", "batch[0].type must be one of"),
    ({"batch": [{**TRACK, "event": ""}]}, "batch", "batch[0].event must be a non-empty string"),
    ({"batch": [{"type": "group", "userId": "u"}]}, "batch",
     "batch[0].groupId is required for group"),
    ({"batch": [TRACK, "track"]}, "batch", "batch[1] must be a JSON object"),
    ({"batch": [{"type": "track", "event": "x"}]}, "batch",
     "batch[0] needs a user id or an anonymous id"),
    ({"batch": {"0": TRACK}}, "batch", "batch must be a JSON array"),
    ({"batch": []}, "batch", "batch holds no call"),
    ([TRACK], "batch", "body must be a JSON object"),
    ({"event": "x", "userId": "u", "properties": "p"}, "track",
     "properties must be a JSON object"),
    ({"event": "x", "userId": "u", "context": {"groupId": {"id": 1}}}, "track",
     "context.groupId must be a string"),
    ({"userId": "u", "traits": ["plan"]}, "identify", "traits must be a JSON object"),
    ({"userId": "u", "name": 7}, "page", "name must be a string"),
    ({"userId": "u"}, "alias", "previousId is required for alias"),
    ({"previousId": "p"}, "alias", "userId is required for alias"),
])
def test_bad_input_names_the_field(body: Any, kind: str, expected: str) -> None:
    with pytest.raises(InputError) as err:
        parse_segment(body, kind, NOW, LIMITS)
    assert expected in err.value.message and err.value.status == 400


def test_too_many_calls_is_413() -> None:
    with pytest.raises(InputError) as err:
        parse_segment({"batch": [TRACK] * 3}, "batch", NOW, Limits(max_batch_events=2))
    assert err.value.status == 413 and "3 calls; the limit is 2" in err.value.message
