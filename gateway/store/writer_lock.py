"""The store's writer lock: one write transaction at a time, urgent ones next in line.

asyncio.Lock is first come, first served: a call for help's transaction waited behind every
transaction queued before it (a telemetry batch, the outbox's claims, the water watch's
deadlines), each with its own commit and fsync. Here an urgent waiter is handed the lock as
soon as the holder releases it, ahead of ordinary waiters queued earlier; among the urgent,
and among the ordinary, the first to ask goes first. The lock is handed over, never barged:
a task that asks while others wait queues behind them even if the lock is momentarily free.

Urgent waiters cannot starve the others for long: only the ingest pipeline's urgent lane
asks for urgent transactions, and it yields to telemetry after `urgent_burst` batches.
"""

from __future__ import annotations

import asyncio
from collections import deque


class WriterLock:
    """A mutex with two queues: urgent waiters are handed the lock before ordinary ones."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._ordinary: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        """Whether a task holds the lock."""
        return self._held

    def waiting(self) -> tuple[int, int]:
        """(urgent, ordinary) tasks waiting (a probe for tests)."""
        return (
            sum(not f.done() for f in self._urgent),
            sum(not f.done() for f in self._ordinary),
        )

    async def acquire(self, *, urgent: bool = False) -> None:
        """Wait for the lock; an urgent caller goes before every ordinary one waiting."""
        if not self._held and self.waiting() == (0, 0):
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._ordinary).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed the lock just as it was cancelled: pass it on
            raise

    def release(self) -> None:
        """Hand the lock to the next waiter (urgent first), or free it."""
        if not self._held:
            raise RuntimeError("WriterLock released while not held")
        for queue in (self._urgent, self._ordinary):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the lock stays held, now by the waiter
                    return
        self._held = False
