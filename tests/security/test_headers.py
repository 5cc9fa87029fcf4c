"""Security headers on every response of a real `segmently serve`, and pages that need no
inline script to work (so the policy can forbid it).

Found (issue 9): no response carried a Content-Security-Policy, X-Frame-Options,
X-Content-Type-Options or Referrer-Policy, and /docs started Swagger UI with an inline
script. Expected values are written out here, not imported from web/headers.py, so a
weakened policy fails this test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from conftest import Server, start_server
from segmently.store import Store
from segmently.store.projects import create_project

EXPECTED = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
STATIC = Path(__file__).resolve().parents[2] / "src" / "segmently" / "web" / "static"
TEMPLATES = STATIC.parent / "templates"
HOSTILE_ID = '"><img src=x onerror=alert(1)><script>alert(2)<\\script>'  # a user id


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real server for the module (these tests only read)."""
    tmp = tmp_path_factory.mktemp("headers")
    db = f"duckdb://{tmp / 'h.duckdb'}"
    with Store(db) as s:
        new = create_project(s, "test")
    proc, url = start_server(db, tmp / "server.log")
    srv = Server(url, db, new.project.write_key, new.secret_key, new.project.project_id,
                 proc, tmp / "server.log")
    try:
        yield srv
    finally:
        srv.stop()


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def assert_secure_headers(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get(name) == value, (response.url, name)
    policy = directives(response.headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"]  # no inline script, no eval, no other host
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    for name, sources in policy.items():
        assert "*" not in sources and not any(s.startswith(("http:", "https:"))
                                              for s in sources), name
        if name != "style-src":  # plotly.js and Swagger UI inject <style> as they draw
            assert "'unsafe-inline'" not in sources, name
        assert "'unsafe-eval'" not in sources, name


ANONYMOUS = [("GET", "/"), ("GET", "/ui/"), ("GET", "/ui/login"), ("GET", "/ui/static/ui.js"),
             ("GET", "/ui/static/ui.css"), ("GET", "/ui/plotly.min.js"), ("GET", "/docs"),
             ("GET", "/static/swagger/swagger-ui-bundle.js"), ("GET", "/openapi.json"),
             ("GET", "/healthz"), ("GET", "/api/segments"), ("GET", "/no/such/page"),
             ("GET", "/ui/static/no-such-file.js"), ("POST", "/ui/login"),
             ("GET", "/ui/users/a%00b")]  # refused (400) before any route runs


@pytest.mark.parametrize(("method", "path"), ANONYMOUS)
def test_every_response_carries_the_headers(server: Server, method: str, path: str) -> None:
    """Pages, redirects, static files, JSON, errors (401, 404) alike."""
    response = httpx.request(method, server.url + path, timeout=60, follow_redirects=False,
                             content=b"secret_key=wrong" if method == "POST" else None)
    assert response.status_code < 500, response.text
    assert_secure_headers(response)


def test_ingestion_and_api_answers_carry_the_headers(server: Server) -> None:
    key = {"Authorization": f"Bearer {server.secret_key}"}
    for response in (
        httpx.post(f"{server.url}/v1/batch", json={"batch": []}, timeout=60,
                   auth=("wk_unknown", "")),  # 401
        httpx.get(f"{server.url}/api/segments", headers=key, timeout=60),  # 200
        httpx.get(f"{server.url}/api/segments/nope", headers=key, timeout=60),  # 404
    ):
        assert response.status_code < 500, response.text
        assert_secure_headers(response)


class Markup(HTMLParser):
    """What a page would need inline script for: script bodies, on...= handlers,
    javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_code: list[str] = []
        self.handlers: list[str] = []
        self.js_urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"{tag} {name}")
            if value and re.sub(r"\s", "", value).lower().startswith("javascript:"):
                self.js_urls.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_code.append(data.strip()[:80])


PAGES = ["/ui/", "/ui/builder", "/ui/builder/some_segment", "/ui/segments/some_segment",
         "/ui/users/u1", "/ui/journey", f"/ui/users/{quote(HOSTILE_ID, safe='')}"]


@pytest.fixture
def session(server: Server) -> Iterator[httpx.Client]:
    """A signed-in client (the session cookie of a real sign-in)."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/ui/login", data={"secret_key": server.secret_key, "next": "/ui/"})
        assert r.status_code == 303 and "segmently_session" in client.cookies, r.text
        yield client


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_no_inline_script(session: httpx.Client, path: str) -> None:
    response = session.get(path)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert_secure_headers(response)
    markup = Markup()
    markup.feed(response.text)
    assert markup.scripts and all(s.get("src", "").startswith("/") for s in markup.scripts)
    assert markup.inline_code == [] and markup.handlers == [] and markup.js_urls == []
    assert "<img" not in response.text and "<script>alert" not in response.text


def test_sign_in_and_docs_pages_need_no_inline_script(server: Server) -> None:
    for path in ("/ui/login", "/docs"):
        markup = Markup()
        markup.feed(httpx.get(server.url + path, timeout=60).text)
        assert all(s.get("src", "").startswith("/") for s in markup.scripts), path
        assert markup.inline_code == [] and markup.handlers == [] and markup.js_urls == []


def test_templates_and_scripts_hold_no_inline_code_or_html_sinks() -> None:
    """The sources, so a page not opened above cannot hide one either."""
    for template in TEMPLATES.glob("*.html"):
        markup = Markup()
        markup.feed(template.read_text())
        assert markup.inline_code == [] and markup.handlers == [], template.name
        assert markup.js_urls == [], template.name
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|"
                       r"new Function|javascript:|setAttribute\(\s*['\"]on", re.I)
    for script in STATIC.glob("*.js"):
        found = sinks.findall(script.read_text())
        assert found == [], f"{script.name}: {found}"
