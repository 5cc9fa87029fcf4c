"""`context.traits` are the user's traits on every Segment call type (the spec's Common
fields: "Dictionary of traits of the current user ... fill this object the same way you
would fill traits in an identify call"). RudderStack SDKs send identify traits only
there, so they were dropped before. Hand-written payloads, hand-computed trait rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from segmently.collect.errors import InputError
from segmently.collect.limits import Limits
from segmently.collect.segment import parse_segment
from segmently.store.rows import to_rows

NOW = datetime(2026, 3, 1, 12, 0, 0)


def one(call: dict[str, Any], kind: str) -> Any:
    [msg] = parse_segment(call, kind, NOW, Limits())
    return msg


def trait_rows(*msgs: Any) -> set[tuple[str, str, str, str]]:
    """(kind, entity, trait, JSON value) of every trait row the messages derive."""
    rows = to_rows("p", list(msgs), NOW).traits.to_pylist()
    return {(r["kind"], r["entity_id"], r["trait"], r["value"]) for r in rows}


def test_rudderstack_identify_traits_live_in_context() -> None:
    msg = one({"userId": "u1", "context": {"traits": {"plan": "pro", "seats": 3}}},
              "identify")
    assert msg.traits == {"plan": "pro", "seats": 3}
    assert trait_rows(msg) == {("user", "u1", "plan", '"pro"'), ("user", "u1", "seats", "3")}


def test_identify_merges_context_traits_under_its_own() -> None:
    msg = one({"userId": "u1", "traits": {"plan": "pro"},
               "context": {"traits": {"plan": "free", "email": "a@x.test"}}}, "identify")
    assert msg.traits == {"plan": "pro", "email": "a@x.test"}  # top-level wins


@pytest.mark.parametrize("kind", ["track", "page", "screen"])
def test_context_traits_of_other_calls_are_the_users_traits(kind: str) -> None:
    call = {"anonymousId": "a1", "context": {"traits": {"locale": "fr"}}}
    if kind == "track":
        call["event"] = "Clicked"
    msg = one(call, kind)
    assert msg.traits == {"locale": "fr"}
    assert trait_rows(msg) == {("user", "a1", "locale", '"fr"')}


def test_group_context_traits_are_the_users_and_its_traits_the_accounts() -> None:
    msg = one({"userId": "u1", "groupId": "acme", "traits": {"name": "Acme"},
               "context": {"traits": {"role": "admin"}}}, "group")
    assert trait_rows(msg) == {("account", "acme", "name", '"Acme"'),
                               ("user", "u1", "role", '"admin"')}


def test_alias_context_traits_belong_to_the_user_id() -> None:
    msg = one({"previousId": "old", "userId": "u1", "context": {"traits": {"plan": "pro"}}},
              "alias")
    assert trait_rows(msg) == {("user", "u1", "plan", '"pro"')}


def test_a_batch_context_traits_apply_to_calls_without_their_own() -> None:
    a, b = parse_segment({"batch": [
        {"type": "track", "event": "x", "userId": "u1"},
        {"type": "track", "event": "y", "userId": "u2", "context": {"traits": {"k": 2}}},
    ], "context": {"traits": {"k": 1}}}, "batch", NOW, Limits())
    assert (a.traits, b.traits) == ({"k": 1}, {"k": 2})


def test_no_context_traits_derive_no_trait_rows() -> None:
    msg = one({"userId": "u1", "event": "x", "context": {"locale": "fr"}}, "track")
    assert msg.traits is None and trait_rows(msg) == set()


@pytest.mark.parametrize("bad", ["plan=pro", ["plan"], 3])
def test_context_traits_must_be_an_object(bad: Any) -> None:
    with pytest.raises(InputError, match=r"batch\[0\]\.context\.traits must be a JSON object"):
        parse_segment({"batch": [{"type": "identify", "userId": "u1",
                                  "context": {"traits": bad}}]}, "batch", NOW, Limits())
