"""How late the event loop wakes a sleeping task: a blocked loop acks nothing meanwhile."""

from __future__ import annotations

import asyncio
from collections import deque

from gateway.metrics import GatewayMetrics


class LoopLagMonitor:
    """Sleeps `interval_s` again and again and records how much later than asked it woke.

    It measures the real event loop, so it uses the loop's own monotonic time, not the
    injected clock (a test clock that stands still would hide a blocked loop).
    """

    def __init__(self, interval_s: float, window_s: float, metrics: GatewayMetrics) -> None:
        self._interval = interval_s
        self._window = window_s
        self._metrics = metrics
        self._samples: deque[tuple[float, float]] = deque()

    def worst_recent_s(self) -> float:
        """The largest lag measured within the window (0 before the first measurement)."""
        return max((lag for _, lag in self._samples), default=0.0)

    def record(self, at: float, lag: float) -> None:
        """Add one measurement taken at loop time `at`."""
        self._samples.append((at, lag))
        while self._samples and self._samples[0][0] < at - self._window:
            self._samples.popleft()
        self._metrics.loop_lag.observe(lag)
        self._metrics.loop_lag_worst.set(self.worst_recent_s())

    async def run(self) -> None:
        """Measure until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + self._interval
            await asyncio.sleep(self._interval)
            woke = loop.time()
            self.record(woke, max(0.0, woke - asked))
