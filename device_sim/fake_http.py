"""The plumbing the fake providers (`phones`, `aliyun`, `wecom`) share.

FakeService    a loopback HTTP server in a thread (start/stop or a context manager),
and the worker threads that play messages out and call the application
back, which stopping and `wait_idle` wait for
FakeHandler    the request handler's base: on_get/on_post/on_put, JSON replies, the
request body, no log lines
call_back      a request to the application under test (a status callback, a receipt)
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, cast

CALLBACK_TIMEOUT_S = 10.0
"""How long a fake waits for the application to answer one of its callbacks."""
JOIN_S = 10.0
"""How long stopping waits for each thread of a fake."""


class FakeServer(ThreadingHTTPServer):
    """A threading HTTP server that counts the connections it has taken and not yet handled."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self.handling = 0
        self.idle = threading.Condition()

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Count the connection, then handle it in a thread of its own."""
        with self.idle:
            self.handling += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._handled()
            raise

    def process_request_thread(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Handle one connection; it is no longer counted once done with, answered or not."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._handled()

    def _handled(self) -> None:
        with self.idle:
            self.handling -= 1
            self.idle.notify_all()


class FakeHandler(BaseHTTPRequestHandler):
    """A fake's request handler: quiet (the fake's records are the log), answers JSON."""

    json_type = "application/json"
    """The Content-Type of a JSON answer, as the provider sends it."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Quiet: the fake's records are the log."""

    def do_GET(self) -> None:
        """A GET: `on_get`."""
        self.on_get()

    def do_POST(self) -> None:
        """A POST: `on_post`."""
        self.on_post()

    def do_PUT(self) -> None:
        """A PUT: `on_put`."""
        self.on_put()

    def on_get(self) -> None:
        """Answer a GET; unsupported unless the fake says otherwise (as http.server does)."""
        self._unsupported()

    def on_post(self) -> None:
        """Answer a POST; unsupported unless the fake says otherwise."""
        self._unsupported()

    def on_put(self) -> None:
        """Answer a PUT; unsupported unless the fake says otherwise."""
        self._unsupported()

    def _unsupported(self) -> None:
        self.send_error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({self.command!r})")

    def _reply(self, status: int, body: object) -> None:
        """Answer `body` as JSON."""
        self._send(status, json.dumps(body, ensure_ascii=False).encode(), self.json_type)

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        """Answer these bytes."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        """The request's body (empty when it has none)."""
        return self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))


class FakeService:
    """A fake provider on 127.0.0.1 in a thread: start() and stop(), or a context manager.

    Subclasses name their handler (`_handler`, a FakeHandler given `fake = self`) and their
    serving thread (`_thread_name`), and start their background work with `_start_worker`
    (stopping waits for it; `_stopping` tells it to give up waiting).
    """

    _thread_name = "fake-http"

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        """Set by `stop`: whatever waits on it gives up, so no thread outlives the fake."""

    def _handler(self) -> type[FakeHandler]:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:port of the running fake."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        """Start serving."""
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop serving."""
        self.stop()

    def start(self) -> None:
        """Serve in a background thread."""
        handler = cast("type[FakeHandler]", type("Handler", (self._handler(),), {"fake": self}))
        self._stopping.clear()
        self._server = FakeServer(("127.0.0.1", self._port), handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self._thread_name, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving once the workers are done (they stop waiting); safe to call twice."""
        self._stopping.set()
        for worker in self._started_workers():
            worker.join(JOIN_S)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(JOIN_S)
            self._thread = None

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every worker started so far (callbacks, pushes) has finished."""
        deadline = time.monotonic() + timeout
        for worker in self._started_workers():
            worker.join(max(0.0, deadline - time.monotonic()))

    def _start_worker(self, target: Callable[[], None], name: str) -> None:
        """Run `target` on a thread of its own, which stopping and `wait_idle` wait for."""
        worker = threading.Thread(target=target, name=name, daemon=True)
        with self._lock:  # listed once started: a thread cannot be joined before
            worker.start()
            self._workers.append(worker)

    def _started_workers(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._workers)


def call_back(request: urllib.request.Request) -> bytes:
    """Send a request to the application under test (on loopback); its answer's body.

    OSError (an HTTP error status too) if there is no answer.
    """
    with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT_S) as response:  # noqa: S310
        return bytes(response.read())
