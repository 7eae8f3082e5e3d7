"""The HTTP application: built in a factory around a running gateway, served by uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from api.aliyun_webhooks import aliyun_router
from api.responder_page import responder_router
from api.twilio_webhooks import twilio_router
from api.v1.router import install_api
from api.web.pages import close_streams, install_web
from gateway.application import Application
from gateway.errors import StartupError


def create_app(application: Application) -> FastAPI:
    """The FastAPI app for a running gateway: health, metrics, responder page, webhooks."""
    app = FastAPI(title="Bidao (必到)", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        health = await application.health()
        return JSONResponse(health.body, status_code=200 if health.serving else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(application.metrics_text(), media_type="text/plain; version=0.0.4")

    app.include_router(responder_router(application))
    install_api(app, application)
    install_web(app, application)
    if application.settings.notify.provider == "twilio":
        app.include_router(twilio_router(application))
    if application.settings.notify.provider == "aliyun":
        app.include_router(aliyun_router(application))
        if application.settings.notify.twilio_account_sid:  # numbers abroad go to Twilio
            app.include_router(twilio_router(application))
    return app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the gateway owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """The gateway's HTTP part: binds its socket during start-up, serves until cancelled."""

    def __init__(self, application: Application) -> None:
        http = application.settings.http
        self.host = http.host
        self.port = http.port
        self._config = uvicorn.Config(
            create_app(application),
            host=http.host,
            port=http.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self._socket: socket.socket | None = None

    def prepare(self) -> None:
        """Listen on host:port now; StartupError naming the port if it cannot be had."""
        if self._socket is None:
            self._socket = self._bind()

    def release(self) -> None:
        """Close the socket if it was never served; safe to call twice."""
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def describe(self) -> str:
        """Where it listens."""
        return f"HTTP http://{self.host}:{self.port}"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            raise StartupError(
                f"cannot listen for HTTP on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        sock.setblocking(False)  # noqa: FBT003 - the socket API's own flag
        self.port = int(sock.getsockname()[1])
        return sock

    async def __call__(self) -> None:
        """Serve until cancelled; finish open requests and close the socket when cancelled."""
        sock, self._socket = self._socket, None
        if sock is None:  # a restart: the previous server closed its socket
            sock = self._bind()
        server = _Server(self._config)
        serving = asyncio.ensure_future(server.serve(sockets=[sock]))
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            close_streams(self._config.app)  # open event streams would hold the exit up
            server.should_exit = True
            await serving
            raise
        except SystemExit as exc:  # uvicorn exits when it cannot start: restart instead
            raise RuntimeError(f"HTTP server could not start (exit {exc.code})") from None
        finally:
            sock.close()


def http_component(application: Application) -> HttpServer:
    """The HTTP server for a running gateway's facade, to add as its "http" component."""
    return HttpServer(application)
