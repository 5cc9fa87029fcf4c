"""Nothing is readable without the secret key or a UI session made from it, and a
session only ever reads its own project."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from uikit import UiServer, ui_server  # noqa: F401 - fixture

from conftest import Server, start_server
from segmently.store import Store
from segmently.store.sessions import SESSIONS
from segmently.web.pages import router as pages_router
from segmently.web.session import COOKIE, FAILURES_PER_NAME, MAX_TRACKED, SignInThrottle

PARAMS = {"name": "anything", "user_id": "u1"}


def _api_calls(server: UiServer) -> list[tuple[str, str]]:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    calls = [(method.upper(), re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], path))
             for path, ops in spec["paths"].items() if path.startswith("/api/")
             for method in ops]
    assert len(calls) >= 20  # every segment, UI and user route
    return calls


def _pages() -> list[str]:
    paths = [re.sub(r"\{(\w+)\}", lambda m: PARAMS[m.group(1)], r.path)  # type: ignore[attr-defined]
             for r in pages_router.routes if "GET" in r.methods]  # type: ignore[attr-defined]
    return [p for p in paths if p != "/ui/login"]


def _sign_in(server: UiServer, key: str) -> httpx.Response:
    return httpx.post(f"{server.url}/ui/login", data={"secret_key": key, "next": "/ui/"},
                      follow_redirects=False)


@pytest.mark.parametrize("cookie", [None, "forged-token"])
def test_every_api_call_refuses_without_a_valid_session(ui_server: UiServer,  # noqa: F811
                                                        cookie: str | None) -> None:
    cookies = {COOKIE: cookie} if cookie else None
    for method, path in _api_calls(ui_server):
        r = httpx.request(method, ui_server.url + path, cookies=cookies, json={})
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        r = httpx.request(method, ui_server.url + path, json={},
                          headers={"Authorization": "Bearer sk_not_a_key"})
        assert r.status_code == 401, (method, path, r.status_code)


@pytest.mark.parametrize("cookie", [None, "forged-token"])
def test_every_page_redirects_to_sign_in_without_a_valid_session(ui_server: UiServer,  # noqa: F811
                                                                 cookie: str | None) -> None:
    pages = _pages()
    assert {"/ui/", "/ui/builder", "/ui/journey", "/ui/segments/anything",
            "/ui/users/u1"} <= set(pages)
    for path in pages:
        r = httpx.get(ui_server.url + path, cookies={COOKIE: cookie} if cookie else None,
                      follow_redirects=False)
        assert r.status_code == 303, (path, r.status_code)
        assert r.headers["location"].startswith("/ui/login"), path
        assert "Segments" not in r.text


def test_sign_in_sets_an_httponly_strict_session_that_sign_out_ends(ui_server: UiServer  # noqa: F811
                                                                   ) -> None:
    wrong = _sign_in(ui_server, "sk_wrong")
    assert wrong.status_code == 401 and "neither a project&#39;s secret key" in wrong.text
    assert COOKIE not in wrong.cookies
    ok = _sign_in(ui_server, ui_server.secret_key)
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/"
    header = ok.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header
    token = ok.cookies[COOKIE]
    assert ui_server.secret_key not in header  # the cookie is a token, never the key
    with httpx.Client(base_url=ui_server.url, cookies={COOKIE: token}) as c:
        assert c.get("/ui/").status_code == 200
        assert c.get("/api/overview").json()["users"] == 5
        assert c.post("/ui/logout").status_code == 303
        assert c.get("/api/overview").status_code == 401
        assert c.get("/ui/", follow_redirects=False).status_code == 303


def test_sign_in_never_redirects_off_the_ui(ui_server: UiServer) -> None:  # noqa: F811
    r = httpx.post(f"{ui_server.url}/ui/login", follow_redirects=False,
                   data={"secret_key": ui_server.secret_key, "next": "//evil.example/"})
    assert r.headers["location"] == "/ui/"


def test_a_session_reads_only_its_own_project(ui_server: UiServer) -> None:  # noqa: F811
    token = _sign_in(ui_server, ui_server.other_secret_key).cookies[COOKIE]
    with httpx.Client(base_url=ui_server.url, cookies={COOKIE: token}) as c:
        assert [e["name"] for e in c.get("/api/catalog").json()["events"]] == ["other_only"]
        assert c.get("/api/overview").json()["users"] == 1
        assert c.get("/api/users/u1/timeline").json()["events"] == []
        assert c.get("/api/users/u1/traits").json()["traits"] == {}


def _set_password(server: UiServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI, while `serve` holds the database (the call goes through the server)."""
    return subprocess.run([sys.executable, "-m", "segmently.cli", "--db", server.db,
                           "projects", "password", *args], capture_output=True, text=True)


def test_a_password_set_with_the_cli_signs_in_with_the_project_name(
        ui_server: UiServer) -> None:  # noqa: F811
    short = _set_password(ui_server, "shop", "--password", "short")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    assert _set_password(ui_server, "shop", "--password", "correct horse").returncode == 0
    form = {"project": "shop", "secret_key": "correct horse", "next": "/ui/"}
    ok = httpx.post(f"{ui_server.url}/ui/login", data=form)
    assert ok.status_code == 303
    me = httpx.get(f"{ui_server.url}/api/overview", cookies={COOKIE: ok.cookies[COOKIE]})
    assert me.json()["users"] == 5  # the shop project's data
    for bad in ({**form, "secret_key": "wrong horse!"}, {**form, "project": "other"},
                {**form, "project": ""}):
        r = httpx.post(f"{ui_server.url}/ui/login", data=bad)
        assert r.status_code == 401 and COOKIE not in r.cookies, bad
    assert _set_password(ui_server, "shop", "--password", "battery staple").returncode == 0
    assert httpx.post(f"{ui_server.url}/ui/login", data=form).status_code == 401  # replaced


def test_wrong_passwords_are_throttled_per_project_name(ui_server: UiServer  # noqa: F811
                                                        ) -> None:
    """Five wrong passwords for one name within five minutes: the sixth try is refused
    before any check (names count alike in any case); the secret key still works."""
    form = {"project": "Guessed", "secret_key": "guess number 1", "next": "/ui/"}
    for i in range(FAILURES_PER_NAME):
        r = httpx.post(f"{ui_server.url}/ui/login", data={**form, "secret_key": f"guess {i}"})
        assert r.status_code == 401
    refused = httpx.post(f"{ui_server.url}/ui/login", data={**form, "project": "guessed"})
    assert refused.status_code == 429 and COOKIE not in refused.cookies
    assert 0 < int(refused.headers["retry-after"]) <= 300
    assert "Too many failed sign-ins" in refused.text
    key = httpx.post(f"{ui_server.url}/ui/login", data={"secret_key": ui_server.secret_key})
    assert key.status_code == 303


def test_the_throttle_forgets_failures_after_its_period() -> None:
    now = [0.0]
    throttle = SignInThrottle(per_name=2, per_client=3, period=60, clock=lambda: now[0])
    throttle.failed("shop", "10.0.0.1")
    now[0] = 30
    throttle.failed("SHOP", "10.0.0.2")
    assert throttle.wait("shop", "10.0.0.3") == 30  # the first failure ages out at 60
    assert throttle.wait("other", "10.0.0.1") == 0
    throttle.failed("", "10.0.0.1")
    throttle.failed("", "10.0.0.1")
    assert throttle.wait("", "10.0.0.1") == 30  # three from one address, by any name
    now[0] = 61  # the failure at 0 is forgotten: one left for shop, two for the address
    assert throttle.wait("shop", "10.0.0.3") == 0 and throttle.wait("", "10.0.0.1") == 0


def test_the_throttle_sweeps_names_nobody_tries_again() -> None:
    now = [0.0]
    throttle = SignInThrottle(period=60, clock=lambda: now[0])
    for i in range(MAX_TRACKED + 1):
        throttle.failed(f"name{i}", "")
    now[0] = 61
    throttle.failed("late", "")  # over the bound: the expired ones are dropped
    assert len(throttle._failures) == 1


def test_a_session_outlives_a_restart_and_sign_out_outlives_it_too(server: Server
                                                                    ) -> None:
    """The store keeps each session's hash: a restart of `serve` signs nobody out, and a
    signed-out cookie stays refused after one."""
    def restart() -> str:
        server.stop()
        server.process, url = start_server(server.db, server.log)
        return url

    url = server.url
    token = httpx.post(f"{url}/ui/login", data={"secret_key": server.secret_key}).cookies[COOKIE]
    url = restart()
    with httpx.Client(base_url=url, cookies={COOKIE: token}) as c:
        assert c.get("/api/overview").status_code == 200
        assert c.post("/ui/logout").status_code == 303
    url = restart()
    with httpx.Client(base_url=url, cookies={COOKIE: token}) as c:
        assert c.get("/api/overview").status_code == 401
    server.stop()
    with Store(server.db, read_only=True) as store:  # only a hash of the token is kept
        kept = store.table(SESSIONS).to_pyarrow().to_pylist()
    assert len(kept) == 2 and all(token not in str(row) for row in kept)
