"""One server task tells every open dashboard that tickets or alarms changed.

    LiveFeed.subscribe()  an async iterator of change marks for one browser's event stream

The task starts with the first subscriber and stops with the last. It compares the facade's
`change_mark()` (the newest ticket event and alarm) every `http.dashboard_poll_s` and, when
it moved, wakes every subscriber at once: one cheap query for all browsers, never one per
browser. Each browser then fetches what it may see through the scoped facade methods.
`close()` ends every stream (the HTTP server is stopping): open streams would otherwise keep
the server waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from gateway.application import Application
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

Mark = tuple[int, int]


class LiveFeed:
    """Fans the change marker out to every subscribed event stream."""

    def __init__(self, application: Application) -> None:
        self._application = application
        self._interval = application.settings.http.dashboard_poll_s
        self._subscribers: set[asyncio.Queue[Mark | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self.mark: Mark = (0, 0)

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._subscribers)

    async def subscribe(self, keepalive_s: float) -> AsyncIterator[Mark | None]:
        """None once subscribed, then each change's mark (None after a quiet keepalive_s)."""
        queue: asyncio.Queue[Mark | None] = asyncio.Queue(maxsize=1)
        self._subscribers.add(queue)
        try:
            async with self._starting:  # one task however many arrive at once
                if self._task is None:
                    self.mark = await self._read()
                    self._task = asyncio.create_task(self._watch(), name="dashboard-feed")
            yield None  # subscribed: every change from now on will be told
            while True:
                try:
                    mark = await asyncio.wait_for(queue.get(), keepalive_s)
                except TimeoutError:
                    yield None
                    continue
                if mark is None:
                    return
                yield mark
        finally:
            self._subscribers.discard(queue)
            if not self._subscribers and self._task is not None:
                task, self._task = self._task, None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def close(self) -> None:
        """End every open stream now; new ones may still be opened later."""
        for queue in list(self._subscribers):
            _offer(queue, None)

    async def _read(self) -> Mark:
        try:
            return await self._application.change_mark()
        except GatewayError as exc:  # the store is busy or gone: try again next time
            log.warning("dashboard feed: cannot read the change mark: %s", exc)
            return self.mark

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            mark = await self._read()
            if mark != self.mark:
                self.mark = mark
                for queue in list(self._subscribers):
                    _offer(queue, mark)


def _offer(queue: asyncio.Queue[Mark | None], item: Mark | None) -> None:
    """Put `item`, replacing a mark the slow reader has not taken yet (only the newest counts)."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)
