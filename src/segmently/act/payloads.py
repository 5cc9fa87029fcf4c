"""What each kind of destination is sent for a message (docs/act.md documents every field).

    webhook  {"type": "segment.entered", "segment", "as_of", "users": [{"user_id"}], ...}
             or, for sync, {"type": "segment.sync", "action": members|add_members|
             remove_members, "members": [...], "page_info": {...}}; signed per Standard
             Webhooks (`act/sending.py`)
    slack    {"text": "12 users entered at_risk: usr_1, usr_2, ... and 9 more <link>"}
    segment  a /v1/batch of `identify` (trait <segment>: true|false) and `track`
             ("Segment Entered" / "Segment Exited"), Basic auth with the write key
    files    a CSV or Parquet file per message (`act/delivery.py` writes it)

Next hop: `act/sending.py` posts the request.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from segmently.act.destinations import Destination
from segmently.act.outbox import Message

SLACK_NAMES = 10  # user ids a Slack message names before "and N more"
SYNC_PAGE = 1000  # users a sync request carries (Mixpanel's cohort sync pages by 1,000)
SEGMENT_PAGE = 200  # users a Segment-compatible batch carries: 2 calls each, well under
#                     Segment's 500 KB a batch with long user and segment names


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    signed_id: str | None = None  # the webhook-id to sign with (webhooks only)


@dataclass(frozen=True)
class Page:
    """One request of a sync: its action, its users, its place among the pages."""

    action: str  # "members" (first, whole), "add_members", "remove_members"
    user_ids: list[str]
    number: int
    total: int


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(at: datetime) -> str:
    """UTC with a Z (instants are stored naive, in UTC)."""
    return at.replace(tzinfo=None).isoformat() + "Z"


def changes(dest: Destination, message: Message) -> Request:
    """The request for a batch of entries or exits."""
    users = message.user_ids or []
    if dest.kind == "slack":
        return Request(dest.url or "", _json({"text": slack_text(dest, message)}),
                       dict(dest.headers))
    if dest.kind == "segment":
        return _segment_batch(dest, message, users, message.kind == "entered")
    return Request(dest.url or "", _json({
        "type": f"segment.{message.kind}", "message_id": message.message_id,
        "segment": message.segment, "as_of": _iso(message.as_of),
        "users": [{"user_id": u} for u in users]}), dict(dest.headers), message.message_id)


def sync(dest: Destination, message: Message, page: Page, page_id: str) -> Request:
    """One page of a sync (Mixpanel's cohort-sync shape: action, members, page_info)."""
    if dest.kind == "segment":
        return _segment_batch(dest, message, page.user_ids, page.action != "remove_members",
                              page_id)
    if dest.kind == "slack":
        verb = "left" if page.action == "remove_members" else \
            ("is in" if len(page.user_ids) == 1 else "are in")
        noun = "user" if len(page.user_ids) == 1 else "users"
        text = f"{len(page.user_ids)} {noun} {verb} {message.segment}: " + \
            _names(page.user_ids)
        return Request(dest.url or "", _json({"text": text}), dict(dest.headers))
    return Request(dest.url or "", _json({
        "type": "segment.sync", "message_id": page_id, "action": page.action,
        "segment": message.segment, "as_of": _iso(message.as_of),
        "members": [{"user_id": u} for u in page.user_ids],
        "page_info": {"total_pages": page.total, "page_count": page.number}}),
        dict(dest.headers), page_id)


def test(dest: Destination, message: Message) -> Request:
    """What `send test` posts: a signed ping that changes nothing."""
    if dest.kind == "slack":
        return Request(dest.url or "", _json({"text": f"Segmently test message for {dest.name}"}),
                       dict(dest.headers))
    if dest.kind == "segment":  # one event of an anonymous test visitor (an empty batch is
        url = _batch_url(dest)    # refused by Segment-compatible endpoints)
        return Request(url, _json({"batch": [{
            "type": "track", "anonymousId": "segmently-test", "event": "Segmently Test",
            "messageId": message.message_id, "properties": {"destination": dest.name}}]}),
            {**dest.headers, "Authorization": _basic(dest)})
    return Request(dest.url or "", _json({"type": "test", "message_id": message.message_id,
                                          "destination": dest.name}),
                   dict(dest.headers), message.message_id)


def _names(users: list[str]) -> str:
    shown = ", ".join(users[:SLACK_NAMES])
    more = len(users) - SLACK_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def slack_text(dest: Destination, message: Message) -> str:
    users = message.user_ids or []
    noun = "user" if len(users) == 1 else "users"
    text = f"{len(users)} {noun} {message.kind} {message.segment}: {_names(users)}"
    if dest.public_url:
        link = f"{dest.public_url.rstrip('/')}/ui/segments/{quote(message.segment, safe='')}"
        text += f" <{link}|open the segment>"
    return text


def _segment_batch(dest: Destination, message: Message, users: list[str], inside: bool,
                   base_id: str | None = None) -> Request:
    """A Segment-spec /v1/batch: the membership as a trait, the change as an event; message
    ids derive from the outbox message, so a retry stores nothing twice."""
    base = base_id or message.message_id
    event = "Segment Entered" if inside else "Segment Exited"
    at = _iso(message.as_of)
    batch: list[dict[str, Any]] = []
    for user in users:
        batch.append({"type": "identify", "userId": user, "messageId": f"{base}:i:{user}",
                      "timestamp": at, "traits": {message.segment: inside}})
        batch.append({"type": "track", "userId": user, "messageId": f"{base}:t:{user}",
                      "timestamp": at, "event": event,
                      "properties": {"segment": message.segment}})
    return Request(_batch_url(dest), _json({"batch": batch}),
                   {**dest.headers, "Authorization": _basic(dest)})


def _batch_url(dest: Destination) -> str:
    url = (dest.url or "").rstrip("/")
    return url if url.endswith("/v1/batch") else url + "/v1/batch"


def _basic(dest: Destination) -> str:
    return "Basic " + base64.b64encode(f"{dest.write_key or ''}:".encode()).decode()


def pages(members: list[str], added: list[str], removed: list[str], first: bool,
          size: int = SYNC_PAGE) -> list[Page]:
    """A sync's requests: the whole membership the first time, else the additions then the
    removals, `size` users a request (an empty first sync is one empty page)."""
    chunks: list[tuple[str, list[str]]] = []
    if first:
        chunks = [("members", members[i:i + size])
                  for i in range(0, max(len(members), 1), size)]
    else:
        for action, ids in (("add_members", added), ("remove_members", removed)):
            chunks += [(action, ids[i:i + size]) for i in range(0, len(ids), size)]
    return [Page(action, ids, n + 1, len(chunks)) for n, (action, ids) in enumerate(chunks)]
