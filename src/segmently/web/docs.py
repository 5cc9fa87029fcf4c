"""OpenAPI docs at /docs, served from an installed package: no CDN, works offline.

FastAPI's default /docs page loads Swagger UI from a CDN; a self-hosted system must not
depend on the network of whoever opens it, so the assets come from the installed
`fastapi-offline` package (Swagger UI 5: FastAPI's documents are OpenAPI 3.1, which the
Swagger UI 4 of `swagger-ui-bundle` cannot draw).
FastAPI's page also starts Swagger UI with an inline script, which the Content-Security-
Policy every response carries (`web/headers.py`: scripts from this server only) refuses;
so the page is written here and Swagger UI is started by `static/docs.js`, which reads
the OpenAPI URL from its own script tag.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/static/swagger"
ASSET_DIR = Path(fastapi_offline.__file__).parent / "static"
START_SCRIPT = "/ui/static/docs.js"  # the UI's static files: public, they hold no data


def docs_html(title: str, openapi_url: str) -> str:
    """The /docs page: no inline script, no inline style."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
<link rel="icon" href="{ASSETS}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="{START_SCRIPT}" data-openapi-url="{escape(openapi_url)}"></script>
</body>
</html>
"""


def mount_docs(app: FastAPI) -> None:
    app.mount(ASSETS, StaticFiles(directory=ASSET_DIR), name="swagger")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_html(f"{app.title} API", app.openapi_url or "/openapi.json"))
