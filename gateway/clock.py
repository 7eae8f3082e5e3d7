"""The one clock seam: wall time and sleeping, real or driven by tests."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any, Protocol


class Clock(Protocol):
    """Wall-clock time in unix seconds, and sleeping measured on the same clock."""

    def now(self) -> float:
        """Current time, unix seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        """Current time, unix seconds."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that only moves when a test calls `advance`; sleepers wake in due order.

    It starts on a weekday at 12:46 in China, when contacts with office hours are available.
    """

    def __init__(self, start: float = 1_780_030_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        """Current simulated time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until the simulated time has moved `seconds` forward."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._counter), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose time has come, in order."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            due, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, due)
            if not future.done():
                future.set_result(None)
            # Let the woken task run before later sleepers wake, as real time would.
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)


def polled(clock: Clock, due: float | None, poll_s: float) -> float:
    """`due`, but no later than `poll_s` from now.

    Rows another process commits wake nobody here, so whoever waits for them looks again at
    least this often.
    """
    limit = clock.now() + poll_s
    return limit if due is None else min(due, limit)


async def sleep_until_or_woken(clock: Clock, due: float | None, wake: asyncio.Event) -> None:
    """Return when the clock reaches `due` (never, if None) or as soon as `wake` is set."""
    waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(wake.wait())]
    if due is not None:
        waiters.append(asyncio.ensure_future(_sleep_until(clock, due)))
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def _sleep_until(clock: Clock, due: float) -> None:
    """Sleep until the clock reaches `due`, measured when the sleep begins, not before."""
    await clock.sleep(due - clock.now())


class AcceleratedClock:
    """Real time sped up `factor` times from `anchor` (unix seconds; default: now).

    A simulator given the same factor and anchor reads the same time, so a story of hours
    runs in seconds against a gateway started with it (`bidao run --speed N`).
    """

    def __init__(self, factor: float, anchor: float | None = None) -> None:
        if factor <= 0:
            raise ValueError(f"speed must be positive, got {factor}")
        self.factor = factor
        self.anchor = time.time() if anchor is None else anchor

    def now(self) -> float:
        """Accelerated time, unix seconds."""
        return self.anchor + (time.time() - self.anchor) * self.factor

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of accelerated time (a `factor`-th of it in real time)."""
        await asyncio.sleep(max(0.0, seconds) / self.factor)
