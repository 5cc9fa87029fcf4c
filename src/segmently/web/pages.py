"""The UI's pages: Jinja2 templates filled by small scripts that call the /api routes.

Pages hold no data of their own: each one is a shell naming what it shows (a segment, a
user) and `static/ui.js` fetches the JSON the API answers, so what a person sees is what
an API client gets. Signing in exchanges the secret key (or a project name and the UI
password set with `segmently projects password`) for a session cookie
(`web/session.py`); every page without a valid session redirects to the sign-in form.
Scripts and styles come from this package, plotly.js from the installed plotly package:
nothing is fetched from a CDN.
"""

from __future__ import annotations

import asyncio
import math
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from segmently.insights import registry
from segmently.store.passwords import project_for_password
from segmently.web.guard import path_value
from segmently.web.session import COOKIE, LIFETIME_SECONDS
from segmently.web.state import AppState

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)
MAX_FORM = 4096


def _state(request: Request) -> AppState:
    return request.app.state.segmently


async def _page(request: Request, template: str, title: str, status: int = 200,
                **params: Any) -> Response:
    """The page for a signed-in session, else a redirect to the sign-in form (a session
    not in memory is read from the store, off the event loop)."""
    sessions, token = _state(request).sessions, request.cookies.get(COOKIE)
    if await asyncio.to_thread(sessions.project, token) is None:
        raw = request.scope.get("raw_path")  # as sent: ids keep their escapes (%2F, %2E)
        target = quote(raw.decode("ascii") if raw else request.url.path)
        return RedirectResponse(f"/ui/login?next={target}", status_code=303)
    return templates.TemplateResponse(request, template, {"title": title, **params},
                                      status_code=status)


@router.get("/login")
async def login_form(request: Request, next: str = "/ui/") -> Response:
    return templates.TemplateResponse(request, "login.html",
                                      {"title": "Sign in", "next": next, "error": None})


def _safe_next(target: str) -> str:
    """Only paths of this UI: never an absolute or protocol-relative URL elsewhere."""
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/"


def _signed_in(state: AppState, form: dict[str, str]) -> str | None:
    """The project of a secret key, or of a project name and its UI password."""
    secret, name = form.get("secret_key", "").strip(), form.get("project", "").strip()
    project = state.keys.by_secret_key(secret) if secret else None
    if project is not None:
        return project.project_id
    return project_for_password(state.store, name, secret) if name and secret else None


def _login_error(request: Request, target: str, error: str, status: int,
                 headers: dict[str, str] | None = None) -> Response:
    return templates.TemplateResponse(request, "login.html", {
        "title": "Sign in", "next": target, "error": error}, status_code=status,
        headers=headers)


@router.post("/login")
async def login(request: Request) -> Response:
    state = _state(request)
    client = request.client.host if request.client else ""
    wait = math.ceil(state.sign_ins.wait("", client))  # an address past its limit: unread
    if wait > 0:
        return _login_error(request, "/ui/", f"Too many failed sign-ins; try again in {wait}"
                            " seconds.", 429, {"Retry-After": str(wait)})
    body = (await request.body())[:MAX_FORM].decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(body).items()}
    target = _safe_next(form.get("next", "/ui/"))
    name = form.get("project", "").strip()
    wait = math.ceil(state.sign_ins.wait(name, client))
    if wait > 0:
        return _login_error(request, target, f"Too many failed sign-ins; try again in {wait}"
                            " seconds.", 429, {"Retry-After": str(wait)})
    project_id = await asyncio.to_thread(_signed_in, state, form)
    if project_id is None:
        state.sign_ins.failed(name, client)
        return _login_error(request, target, "That is neither a project's secret key nor "
                            "the password of the project named.", 401)
    response = RedirectResponse(target, status_code=303)
    token = await asyncio.to_thread(state.sessions.create, project_id)
    response.set_cookie(COOKIE, token,
                        max_age=LIFETIME_SECONDS, httponly=True, samesite="strict",
                        path="/", secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await asyncio.to_thread(_state(request).sessions.end, request.cookies.get(COOKIE))
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
async def overview(request: Request) -> Response:
    return await _page(request, "overview.html", "Overview")


@router.get("/builder")
async def new_segment(request: Request) -> Response:
    return await _page(request, "builder.html", "Build a segment", segment=None)


@router.get("/builder/{name}")
async def edit_segment(request: Request, name: str) -> Response:
    return await _page(request, "builder.html", f"Edit {name}", segment=name)


@router.get("/segments/{name}")
async def segment(request: Request, name: str) -> Response:
    return await _page(request, "segment.html", name, segment=name)


@router.get("/users/{user_id}")
async def user(request: Request, user_id: str) -> Response:
    user_id = path_value(user_id)  # any character, '/' included (web/guard.py)
    return await _page(request, "user.html", user_id, user_id=user_id)


@router.get("/journey")
async def journey(request: Request) -> Response:
    return await _page(request, "journey.html", "Journey and features")


@router.get("/insights")
async def insights_index(request: Request) -> Response:
    return await _page(request, "insights/index.html", "Insights")


@router.get("/insights/{name}")
async def insight_page(request: Request, name: str) -> Response:
    """An analysis's own page (templates/insights/<name>.html); for a name without one,
    the list of analyses with a 404 (signed out: the sign-in form, as for every page)."""
    found = registry.load_all().get(name)
    if found is None or not found.page or not (HERE / "templates" / "insights" /
                                                f"{name}.html").is_file():
        return await _page(request, "insights/index.html", "Insights", status=404)
    return await _page(request, f"insights/{name}.html", found.summary, insight=name)


@router.get("/campaigns")
async def campaigns(request: Request) -> Response:
    return await _page(request, "campaigns.html", "In-app campaigns")


@router.get("/campaigns/{name}")
async def campaign_page(request: Request, name: str) -> Response:
    return await _page(request, "campaign.html", name, campaign=name)


@router.get("/destinations")
async def destinations(request: Request) -> Response:
    return await _page(request, "destinations.html", "Destinations")


@router.get("/destinations/{name}")
async def destination(request: Request, name: str) -> Response:
    return await _page(request, "destination.html", name, destination=name)


@cache
def _plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


def mount_ui(app: FastAPI) -> None:
    """Pages under /ui, their assets under /ui/static, and / leading to the UI."""
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")

    @app.get("/ui/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> Response:
        return Response(_plotly_js(), media_type="text/javascript",
                        headers={"cache-control": "public, max-age=86400"})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=303)

    app.include_router(router)
