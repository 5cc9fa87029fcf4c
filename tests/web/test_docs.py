"""/docs works offline: the page and every asset it loads come from this server."""

from __future__ import annotations

import re

import httpx


def test_docs_load_only_local_assets(server) -> None:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=server.url) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
        assert len(urls) >= 3, page.text  # script, stylesheet, spec
        assert all(u.startswith("/") for u in urls), urls
        for u in urls:
            assert client.get(u).status_code == 200, u
        spec = client.get("/openapi.json").json()
        assert {"/v1/batch", "/v1/events", "/capture/"} <= set(spec["paths"])
