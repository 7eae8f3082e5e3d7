"""A connection given up while it connects (the gateway stopping, the link restarted) leaves
no error behind: the CONNACK it waited for is cancelled, not failed with nobody to hear it.

Closing the socket fails a CONNACK still awaited ("connection closed before CONNACK"); when
the connect itself is what was cancelled, nobody awaits it any more, and asyncio would log
"Future exception was never retrieved" once the future is collected.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from gateway.config import MqttSettings
from gateway.ingest.transports.mqtt import _Connection
from gateway.metrics import GatewayMetrics
from tests.gateway.support import wait_for


class _HeldExecutor(ThreadPoolExecutor):
    """Runs each call, then holds its result back until released (a slow connect)."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="asyncio_held")
        self.ran = threading.Event()
        self.release = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        def held() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                self.ran.set()
                self.release.wait(60)

        return super().submit(held)


@contextlib.contextmanager
def _silent_broker() -> Iterator[socket.socket]:
    """A listening socket that takes connections and never answers them."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


async def test_a_connect_cancelled_after_the_socket_opened_leaves_no_unretrieved_error() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    executor = _HeldExecutor()
    loop.set_default_executor(executor)
    with _silent_broker() as broker:
        settings = MqttSettings(port=broker.getsockname()[1])
        connection = _Connection(
            "intake",
            settings,
            GatewayMetrics(),
            client_id="teardown-test",
            persistent=False,
            receive_maximum=10,
            on_connected=lambda _client, _props: None,
        )
        running = asyncio.create_task(connection.run())
        try:
            # The socket is open and CONNECT queued; the connect has not returned yet.
            await wait_for(executor.ran.is_set, timeout=60, what="the connect ran")
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        finally:
            executor.release.set()
            executor.shutdown(wait=True)
    del connection, running
    gc.collect()
    await asyncio.sleep(0)
    assert [str(e.get("exception") or e.get("message")) for e in errors] == []
