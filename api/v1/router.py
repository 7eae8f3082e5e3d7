"""The /api/v1 router: every resource router under one prefix, and the error handlers."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from api.v1.devices import devices_router
from api.v1.errors import install_error_handlers
from api.v1.figures import figures_router
from api.v1.grid import grid_router
from api.v1.session import session_router
from api.v1.tickets import tickets_router
from gateway.application import Application

PREFIX = "/api/v1"


def install_api(app: FastAPI, application: Application) -> None:
    """Add the JSON API under /api/v1 to `app`, with its JSON error answers."""
    app.state.application = application
    router = APIRouter(prefix=PREFIX)
    router.include_router(session_router())
    router.include_router(grid_router())
    router.include_router(devices_router())
    router.include_router(tickets_router())
    router.include_router(figures_router())
    app.include_router(router)
    install_error_handlers(app, application)

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi() -> JSONResponse:
        # Also at /openapi.json (FastAPI's own); no HTML docs: they would load script from
        # a CDN, and a county server may have no internet.
        return JSONResponse(app.openapi())
