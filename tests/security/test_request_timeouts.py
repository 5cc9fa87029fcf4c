"""Half-sent requests are answered 408 and let go, many at once, while others are served
(issue 9: "a thousand half-sent requests are held for 20 s+").

A real `segmently serve` with short deadlines (SEGMENTLY_BODY_TIMEOUT,
SEGMENTLY_HEAD_TIMEOUT = 3 s, so the test is quick; the defaults are 10 s) and raw
sockets that send a head and half a body, or half a head, then stall. No timing is
asserted beyond "answered while the stalled ones were still waiting" and generous bounds.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from requestkit import Answer, closed_by_server, connect, head, read_answer

from conftest import start_server
from segmently.store import Store
from segmently.store.projects import create_project

pytestmark = pytest.mark.slow  # every test talks to a real server

DEADLINE = 3.0
STALLED_BODIES = 400
STALLED_HEADS = 200


@pytest.fixture
def short_deadlines(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(url, write key) of a server whose heads and bodies must arrive within 3 s."""
    db = f"duckdb://{tmp_path / 'timeouts.duckdb'}"
    with Store(db) as store:
        key = create_project(store, "timeouts").project.write_key
    proc, url = start_server(db, tmp_path / "server.log", env={
        "SEGMENTLY_BODY_TIMEOUT": str(DEADLINE), "SEGMENTLY_HEAD_TIMEOUT": str(DEADLINE)})
    try:
        yield url, key
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def nothing_answered(socks: list[socket.socket]) -> bool:
    readable, _, _ = select.select(socks, [], [], 0)
    return not readable


def answers(socks: list[socket.socket]) -> list[tuple[Answer, bool]]:
    out = []
    for sock in socks:
        out.append((read_answer(sock), closed_by_server(sock)))
        sock.close()
    return out


def test_stalled_bodies_and_heads_get_408_while_others_are_served(
        short_deadlines: tuple[str, str]) -> None:
    url, key = short_deadlines
    event = b'{"type": "track", "event": "stalled", "user_id": "u1"}'
    started = time.monotonic()  # the first stalled request's deadline counts from here
    bodies = []
    for _ in range(STALLED_BODIES):  # a valid key, a declared body, half of it sent
        sock = connect(url, timeout=60)
        sock.sendall(head("POST", "/v1/events", {"Authorization": f"Bearer {key}",
                                                 "Content-Type": "application/json",
                                                 "Content-Length": str(len(event))})
                     + event[:20])
        bodies.append(sock)
    heads = []
    for i in range(STALLED_HEADS):  # half a request head; every tenth sends nothing at all
        sock = connect(url, timeout=60)
        if i % 10:
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        heads.append(sock)

    # others are served meanwhile, in full, while every stalled request still waits
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
    sent = httpx.post(f"{url}/v1/events", content=event, timeout=30,
                      headers={"Authorization": f"Bearer {key}",
                               "Content-Type": "application/json"})
    assert sent.json() == {"success": True, "accepted": 1}
    served = time.monotonic() - started
    if served < DEADLINE * 0.9:  # (on a machine too loaded to serve within 3 s: moot)
        assert nothing_answered(bodies + heads)

    for answer, closed in answers(bodies):
        assert (answer.status, answer.json()) == (408, {
            "code": "body_timeout",
            "message": f"the request body did not arrive within {DEADLINE:g} seconds"})
        assert closed
    for answer, closed in answers(heads):
        assert (answer.status, answer.json()["code"]) == (408, "head_timeout")
        assert closed
    assert time.monotonic() - started < 60  # let go after their deadline, not held
    assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200


def test_a_slow_body_that_arrives_in_time_is_accepted(short_deadlines: tuple[str, str]
                                                      ) -> None:
    """The deadline is for the whole body, not between chunks, and it is generous: a
    body sent in pieces over a second is stored."""
    url, key = short_deadlines
    event = b'{"type": "track", "event": "slow", "user_id": "u2"}'
    with connect(url) as sock:
        sock.sendall(head("POST", "/v1/events", {"Authorization": f"Bearer {key}",
                                                 "Content-Length": str(len(event))}))
        for i in range(0, len(event), 10):
            sock.sendall(event[i:i + 10])
            time.sleep(0.2)
        answer = read_answer(sock)
    assert (answer.status, answer.json()) == (200, {"success": True, "accepted": 1})
