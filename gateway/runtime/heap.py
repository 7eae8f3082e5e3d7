"""Short collector pauses with a county's worth of device state in memory.

CPython's cyclic collector walks every object in the generation it collects, and a full
pass walks all of them. With 200,000 devices heard, the gateway holds about a million
objects (device states and records, silence entries, water watches) that live as long as
the gateway. Measured on the reference machine (bench/scale.py, steady state at 3,500
frames/s): each full pass stopped the event loop for 0.4-0.5 s, 33 passes took 7 s while
the fleet was first heard, and the probe boxes' ack p99 was 1.3 s. Walking these objects
never finds garbage.

So `bidao run` (the process owner: never a test process hosting gateways) runs this part:

- larger young generations (`gc_thresholds`): fewer passes, and a frame's objects, alive
  for the length of its batch, die young instead of being promoted and walked again;
- every `gc_freeze_interval_s`, one full pass over what is not frozen yet (it frees what
  is garbage, so nothing dead is frozen), then `gc.freeze()`: every survivor leaves the
  collector's sight, and later passes walk only what was made since. Frozen objects are
  still freed when their last reference goes, which is how device state is replaced. The
  interval is 10 s: just after a restart, with random devices of a 200,000-device county
  heard for the first time at 3,500 frames/s, a 30 s interval let each pass walk 30 s of
  new device state (in each of two 30 s runs, a full pass of 0.35-0.38 s and a young pass
  of 0.16-0.24 s), and the probe boxes' ack p99 was 329-614 ms in five runs; at 10 s it
  was 106-270 ms in four (on a machine where bare paho takes about 25,000 msg/s);
- only garbage *cycles* among frozen objects stay (an object alive at a freeze that later
  dies inside a cycle), so every `gc_thaw_interval_s` everything is unfrozen and walked
  once (the one long pause, at 200,000 devices about as long as a full pass was before).

`bidao_gc_pause_seconds{generation}` shows every pass; `bidao_gc_frozen_objects` the
frozen count, which levels off once the fleet has been heard (if it rises from one thaw to
the next, cycles are being frozen). Counting them walks every frozen object (66-84 ms at
200,000 devices, more than the pass itself once the fleet is frozen), so they are counted
only when everything was just walked anyway: at the first settle and the one after each
thaw.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from gateway.clock import Clock
from gateway.config import RuntimeSettings
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)


class HeapKeeper:
    """Sets the collector's thresholds and freezes long-lived objects on a schedule."""

    def __init__(self, settings: RuntimeSettings, clock: Clock, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._started: float | None = None
        self._installed: tuple[int, int, int] | None = None
        self._thawed_at = 0.0
        self._count_frozen = True
        """The next settle counts the frozen objects (the first, and the one after a thaw)."""

    def install(self) -> None:
        """Set the thresholds and time every pass (once; `uninstall` undoes it)."""
        if self._installed is not None:
            return
        self._installed = gc.get_threshold()
        gc.set_threshold(*self._settings.gc_thresholds)
        gc.callbacks.append(self._timed)

    def uninstall(self) -> None:
        """Unfreeze everything and put the collector back as it was."""
        if self._installed is None:
            return
        gc.unfreeze()
        gc.set_threshold(*self._installed)
        gc.callbacks.remove(self._timed)
        self._installed = None
        self._metrics.gc_frozen.set(0)

    def _timed(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            pause = time.perf_counter() - self._started
            self._metrics.gc_pause.labels(str(info["generation"])).observe(pause)
            self._started = None

    def settle(self) -> float:
        """A full pass over what is not frozen, then freeze the survivors; seconds it took."""
        began = time.perf_counter()
        gc.collect()
        gc.freeze()
        took = time.perf_counter() - began
        extra: dict[str, float] = {"pause_s": round(took, 4)}
        if self._count_frozen:
            self._count_frozen = False
            extra["frozen"] = gc.get_freeze_count()
            self._metrics.gc_frozen.set(extra["frozen"])
        log.debug("heap settled", extra=extra)
        return took

    def thaw(self) -> None:
        """Unfreeze everything: the next `settle` walks it all once and frees dead cycles."""
        gc.unfreeze()
        self._thawed_at = self._clock.now()
        self._count_frozen = True

    async def step(self) -> None:
        """One interval: wait, thaw if it is time, settle."""
        await self._clock.sleep(self._settings.gc_freeze_interval_s)
        thaw_every = self._settings.gc_thaw_interval_s
        if thaw_every and self._clock.now() - self._thawed_at >= thaw_every:
            self.thaw()
        self.settle()

    async def run(self) -> None:
        """Install, then settle every interval until cancelled (uninstalled on the way out)."""
        self.install()
        self._thawed_at = self._clock.now()
        try:
            if not self._settings.gc_freeze_interval_s:
                await asyncio.Event().wait()  # thresholds and timing only, never a freeze
            while True:
                await self.step()
        finally:
            self.uninstall()
