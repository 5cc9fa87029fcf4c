"""The FastAPI application: it composes routers over one store and holds no logic.

Made by `cli/serve.py` (and the tests) with the loaded settings; what it holds is
`web/state.py`'s `AppState`. Its routers: ingestion (`native_routes`, `segment_routes`,
`posthog_routes`), the segment API (`segment_api`), the UI's reads (`ui_api`) and pages
(`pages`), the CLI's way in (`internal_routes`), `/healthz` and `/docs`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from segmently import __version__
from segmently.collect.limits import Limits
from segmently.errors import SegmentlyError
from segmently.settings import Settings
from segmently.settings import load as load_settings
from segmently.store import Store
from segmently.web import (
    act_api,
    campaign_api,
    campaign_routes,
    insights_api,
    internal_routes,
    native_routes,
    posthog_routes,
    segment_api,
    segment_routes,
    ui_api,
)
from segmently.web.docs import mount_docs
from segmently.web.guard import RequestGuard
from segmently.web.headers import SecurityHeaders
from segmently.web.health import mount_health
from segmently.web.pages import mount_ui
from segmently.web.state import AppState


def create_app(
    store: Store, limits: Limits | None = None, *, control_token: str | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The app over `store`, with the settings loaded once by the caller (`settings.load()`
    when none are given: the environment's); `limits` default to the settings'."""
    settings = settings if settings is not None else load_settings()
    state = AppState(store, limits or Limits.from_settings(settings),
                     control_token=control_token, settings=settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.writer.start()
        state.refresher.start()
        state.deliverer.start()
        state.engagement.start()
        try:
            yield
        finally:
            state.engagement.stop()
            state.deliverer.stop()
            state.refresher.stop()
            state.writer.stop()

    app = FastAPI(
        title="Segmently",
        version=__version__,
        description="Product usage segmentation: ingestion, segments, memberships.",
        lifespan=lifespan,
        docs_url=None,  # served offline by web/docs.py
        redoc_url=None,
    )
    app.state.segmently = state
    app.add_middleware(RequestGuard, limits=state.limits)  # targets, body limits and timeout
    app.add_middleware(campaign_routes.PublicCors)  # /v1/ and /sdk/: any origin
    app.add_middleware(SecurityHeaders)  # CSP and friends on every response (outermost)
    mount_docs(app)

    @app.exception_handler(SegmentlyError)
    async def user_error(request: Request, exc: SegmentlyError) -> JSONResponse:
        """The one handler of the error root (errors.py): every error a user can cause
        carries its code and status, so none is ever a 500."""
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        """A client that left mid-body (any route, FastAPI's own body reads included): a
        400 nobody reads, rather than a logged traceback."""
        return JSONResponse({"code": "client_disconnected",
                             "message": "the client disconnected before sending the body"},
                            status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return JSONResponse({"code": "invalid_request", "message": f"{where}: {err['msg']}"},
                              status_code=400)

    mount_health(app, store)  # /healthz asks the database; unreachable -> 503

    app.include_router(native_routes.router)
    app.include_router(posthog_routes.router)
    app.include_router(segment_routes.router)
    app.include_router(segment_api.router)
    app.include_router(ui_api.router)
    app.include_router(insights_api.router)  # after ui_api: /insights/funnel is its
    app.include_router(act_api.router)
    app.include_router(campaign_routes.router)
    app.include_router(campaign_api.router)
    app.include_router(internal_routes.router)
    mount_ui(app)
    return app
