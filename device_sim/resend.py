"""Resending as firmware does: each box waits its backoff, then sends its queue again.

docs/protocol.md section 6: a box resends every frame still waiting for its ACK, green
calls and alarms first, after 2 s, 4 s, 8 s ... (capped at 5 minutes, +-20 % jitter), and
the backoff starts again from 2 s when any ACK arrives. `SimulatedDevice` keeps the queue
and computes the delay; a `Resender` does the waiting, one timer per box, on a clock it is
given, so a test moves time by hand (gateway.clock.ManualClock fits) and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from device_sim.device import SimulatedDevice

__all__ = ["RealClock", "Resender", "SimClock"]


class SimClock(Protocol):
    """What a resend timer needs of a clock: the time, and a sleep on that clock."""

    def now(self) -> float:
        """Seconds on this clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...


class RealClock:
    """Wall-clock time and real sleeps (the command line's boxes)."""

    def now(self) -> float:
        """Unix seconds."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """A real sleep."""
        await asyncio.sleep(seconds)


Send = Callable[[SimulatedDevice, bytes], Awaitable[None]]


class _Timer:
    """One box's resend timer and what wakes it."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device
        self.queued = asyncio.Event()
        """A frame was sent while nothing waited: start the timer."""
        self.answered = asyncio.Event()
        """An ACK arrived: the backoff starts again, and so does the wait."""
        self.task: asyncio.Task[None] | None = None


class Resender:
    """Runs one resend timer per box on `clock`, sending through `send`.

    Transports call `queued` after sending a new frame and `answered` (from any thread,
    through the loop) after an ACK. A box with nothing waiting has no timer running.
    """

    def __init__(self, clock: SimClock, send: Send) -> None:
        self._clock = clock
        self._send = send
        self._timers: dict[str, _Timer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.resends = 0
        """Frames sent again because their wait ran out."""
        self.waits: list[tuple[str, float]] = []
        """(device_id, seconds) of every wait started, in order (what a test checks)."""

    def start(self, devices: list[SimulatedDevice]) -> None:
        """Start a timer for each box; call on the event loop that will run them."""
        self._loop = asyncio.get_running_loop()
        for device in devices:
            self.add(device)

    def add(self, device: SimulatedDevice) -> None:
        """Start a timer for one more box (once started)."""
        if self._loop is None or device.device_id in self._timers:
            return
        timer = _Timer(device)
        timer.task = self._loop.create_task(self._run(timer), name=f"sim-resend-{device.device_id}")
        self._timers[device.device_id] = timer
        if device.pending_count:
            timer.queued.set()

    async def stop(self) -> None:
        """Stop every timer; safe to call twice."""
        timers, self._timers = list(self._timers.values()), {}
        self._loop = None
        tasks = [t.task for t in timers if t.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def queued(self, device_id: str) -> None:
        """A new frame left the box (call on the loop): its timer runs if it was idle."""
        timer = self._timers.get(device_id)
        if timer is not None:
            timer.queued.set()

    def answered(self, device_id: str) -> None:
        """An ACK reached the box; safe to call from any thread."""
        loop = self._loop
        timer = self._timers.get(device_id)
        if loop is None or timer is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(self._wake, timer)

    @staticmethod
    def _wake(timer: _Timer) -> None:
        timer.answered.set()
        timer.queued.set()  # frames renumbered after a nack wait for their answer too

    async def _run(self, timer: _Timer) -> None:
        device = timer.device
        while True:
            if not device.pending_count:
                timer.queued.clear()
                if not device.pending_count:
                    await timer.queued.wait()
                continue
            timer.answered.clear()
            delay = device.resend_delay_s()
            if await self._sleep_unless_answered(device.device_id, delay, timer.answered):
                continue  # any ACK resets the backoff: wait again from now, from 2 s
            for frame in device.retransmit_due():
                self.resends += 1
                await self._send(device, frame)

    async def _sleep(self, device_id: str, delay: float) -> None:
        # Noted in the same step that starts the sleep: a test that sees the wait may move
        # the clock past it.
        self.waits.append((device_id, delay))
        await self._clock.sleep(delay)

    async def _sleep_unless_answered(
        self, device_id: str, delay: float, answered: asyncio.Event
    ) -> bool:
        """Sleep `delay` on the clock; True if an ACK came first."""
        sleeper = asyncio.ensure_future(self._sleep(device_id, delay))
        waiter = asyncio.ensure_future(answered.wait())
        try:
            done, _ = await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waiter):
                task.cancel()
            await asyncio.gather(sleeper, waiter, return_exceptions=True)
        return waiter in done
