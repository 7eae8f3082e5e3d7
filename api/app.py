"""The HTTP application: built in a factory around a running gateway, served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Response

from api.twilio_webhooks import twilio_router
from gateway.application import for_service
from gateway.service import GatewayService


def create_app(service: GatewayService) -> FastAPI:
    """The FastAPI app for one gateway: health, metrics, provider webhooks."""
    app = FastAPI(title="Bidao (必到)", docs_url=None, redoc_url=None)
    application = for_service(service)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(application.metrics_text(), media_type="text/plain; version=0.0.4")

    if application.settings.notify.provider == "twilio":
        app.include_router(twilio_router(service))
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_component(service: GatewayService) -> Callable[[], Coroutine[Any, Any, None]]:
    """A uvicorn server for the app, to run in the gateway's task group."""
    http = service.settings.http
    config = uvicorn.Config(
        create_app(service),
        host=http.host,
        port=http.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = _Server(config)

    async def run() -> None:
        serving = asyncio.ensure_future(server.serve())
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            # Finish open requests and close the socket before the gateway goes on stopping.
            server.should_exit = True
            await serving
            raise

    return run
