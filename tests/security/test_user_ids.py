"""User ids holding any character are addressable on every user route and the UI page
(issue 9: "User ids containing `/` (or any character)").

Starlette decodes `%2F` to `/` before routing, so `{user_id}` could not match an id with a
slash, and `x%2Fsegments` reached the segments route of user `x`. `web/guard.py` keeps
`%2F` and `%25` encoded for routing and each route decodes its id once. Each hostile id
below gets events, traits and segment memberships of its own (the expectations are
worked out from what the test sends, per id), so an id confused with another, cut at a
slash or decoded twice shows up as someone else's data or a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import markupsafe
from requestkit import segment, ui_cookie

if TYPE_CHECKING:  # a bare `import conftest` may find another directory's conftest.py
    from conftest import Server

HOSTILE = ["a/b", "a%2Fb", "a%252Fb", "/", "//", "/lead", "trail/", "a//b", "..", ".",
           "../../etc/passwd", "%2E%2E", "a?b=c", "?", "#frag", "a#b", "sp ace", "a+b",
           "😀/ü", "%", "%25", "100%", "x", "x/segments", "x/traits", "segments", "a\\b",
           "<script>alert(1)</script>", "'; DROP TABLE events; --", "\u202etxt"]
SEGMENTS = {"hitters": {"kind": "performed", "event": "hit"},
            "odds": {"kind": "performed", "event": "odd"}}


def messages(i: int, user: str) -> list[dict[str, Any]]:
    """What user number i sends: traits, a `hit`, and an `odd` for odd numbers."""
    sent = [{"type": "identify", "user_id": user, "message_id": f"m{i}-identify",
             "traits": {"plan": f"p{i}", "name": user}},
            {"type": "track", "event": "hit", "user_id": user, "message_id": f"m{i}-hit",
             "properties": {"who": user}}]
    if i % 2:
        sent.append({"type": "track", "event": "odd", "user_id": user,
                     "message_id": f"m{i}-odd"})
    return sent


def expected_segments(i: int) -> list[str]:
    return ["hitters", "odds"] if i % 2 else ["hitters"]


def fill(server: Server) -> httpx.Client:
    """Every hostile user's events, the two segments, one refresh; a client with the key."""
    api = httpx.Client(base_url=server.url, timeout=60,
                       headers={"Authorization": f"Bearer {server.secret_key}"})
    events = [m for i, user in enumerate(HOSTILE) for m in messages(i, user)]
    sent = httpx.post(f"{server.url}/v1/events", json={"events": events},
                      headers={"Authorization": f"Bearer {server.write_key}"})
    assert sent.json() == {"success": True, "accepted": len(events)}
    for name, rule in SEGMENTS.items():
        assert api.post("/api/segments", json={"name": name, "rule": rule}).status_code == 201
    assert api.post("/api/refresh").status_code == 200
    return api


# one id of each way a path can go wrong (a separator, its encodings, dot segments, a query
# or fragment, percent signs, a route's own words, wide and control-like characters): the
# routes that evaluate (a profile, an explanation: a query each) are asked for these
EVALUATED = {"a/b", "a%2Fb", "/", "..", "../../etc/passwd", "a?b=c", "#frag", "😀/ü", "%",
             "x/segments", "a\\b", "\u202etxt"}


def test_every_user_route_serves_hostile_ids(server: Server) -> None:
    api = fill(server)
    assert EVALUATED <= set(HOSTILE)
    for i, user in enumerate(HOSTILE):
        path = f"/api/users/{segment(user)}"
        assert api.get(f"{path}/segments").json() == {
            "user_id": user, "segments": expected_segments(i)}, user
        assert api.get(f"{path}/traits").json() == {
            "user_id": user, "traits": {"plan": f"p{i}", "name": user}}
        if user not in EVALUATED:
            continue
        profile = api.get(path).json()
        assert (profile["user_id"], profile["segments"]) == (user, expected_segments(i))
        at_refresh = api.get(f"{path}/at-refresh").json()
        assert (at_refresh["user_id"], at_refresh["segments"]) == (user, expected_segments(i))
        timeline = api.get(f"{path}/timeline").json()
        assert timeline["user_id"] == user
        assert {e["message_id"] for e in timeline["events"]} == \
            {m["message_id"] for m in messages(i, user)}, user
        for name in SEGMENTS:
            why = api.get(f"/api/segments/{name}/explain/{segment(user)}").json()
            assert (why["user_id"], why["member"]) == (user, name in expected_segments(i))


def test_an_unknown_id_shaped_like_a_route_is_a_404_not_another_route(server: Server
                                                                       ) -> None:
    """`nobody/segments` is a user (unknown: 404 on the profile), not the segments of
    `nobody`; `x%2Ftraits` is the profile of `x/traits`, never the traits of `x`."""
    api = fill(server)
    missing = api.get(f"/api/users/{segment('nobody/segments')}")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_user")
    assert "'nobody/segments'" in missing.json()["message"]
    assert api.get(f"/api/users/{segment('x/traits')}").json()["user_id"] == "x/traits"
    assert api.get("/api/users/x/traits").json()["traits"]["name"] == "x"


def test_the_ui_user_page_serves_hostile_ids(server: Server) -> None:
    """Signed in: the page names the user (escaped in its HTML); its script calls the
    API with that id. Signed out: the sign-in form returns to the very same path."""
    fill(server)
    cookie = ui_cookie(server.url, server.secret_key)
    ui = httpx.Client(base_url=server.url, cookies={"segmently_session": cookie})
    anonymous = httpx.Client(base_url=server.url)
    for user in HOSTILE:
        path = f"/ui/users/{segment(user)}"
        page = ui.get(path)
        assert page.status_code == 200, user
        assert f'data-user="{markupsafe.escape(user)}"' in page.text, user
        away = anonymous.get(path)
        assert away.status_code == 303
        target = parse_qs(urlsplit(away.headers["location"]).query)["next"][0]
        assert target == path, user
        back = httpx.post(f"{server.url}/ui/login", data={"secret_key": server.secret_key,
                                                          "next": target})
        assert (back.status_code, back.headers["location"]) == (303, path), user
