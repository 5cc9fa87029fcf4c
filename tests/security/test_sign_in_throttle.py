"""An address past its failed sign-in limit is refused before its form is read.

Twenty wrong sign-ins from one address (under different project names, so no name's own
limit is reached) make the next attempt a 429 answered at once: the request below declares
a body and never sends it, so an answer proves the server did not wait to read it.
"""

from __future__ import annotations

import httpx
from requestkit import connect, head, read_answer

from conftest import Server
from segmently.web.session import FAILURES_PER_CLIENT


def test_a_throttled_address_is_refused_unread(server: Server) -> None:
    for i in range(FAILURES_PER_CLIENT):
        r = httpx.post(f"{server.url}/ui/login", data={"project": f"name{i}",
                                                       "secret_key": "wrong"})
        assert r.status_code == 401
    sock = connect(server.url, timeout=5)  # well inside the 10 s the body could take
    sock.sendall(head("POST", "/ui/login", {
        "Content-Type": "application/x-www-form-urlencoded", "Content-Length": "1000"}))
    answer = read_answer(sock)
    sock.close()
    assert answer.status == 429 and 0 < int(answer.headers["retry-after"]) <= 300
    assert b"Too many failed sign-ins" in answer.body
    # and with a form: the right key waits out the address's period too
    r = httpx.post(f"{server.url}/ui/login", data={"secret_key": server.secret_key})
    assert r.status_code == 429
