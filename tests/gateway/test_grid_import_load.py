"""A grid import at the row cap while boxes keep sending: their acks keep flowing.

What is asserted does not depend on how fast this machine is: a probe box sends a frame from
inside the import, between its chunks, in the check and in the write phase, and the import
waits there until that frame is acknowledged. Were the import holding the event loop or the
store's writer across chunks, the ack could never come. How long acks and loop stalls took
while a second box beats on its own thread is printed, not asserted (bench figures).
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Ack, Envelope
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from gateway.services import grid_import
from tests.gateway.grid import UNITS_CSV, households_csv
from tests.gateway.support import gateway_settings, send_until_acked, wait_for

BOX = "00000000000000e1"
KEY = bytes(range(48, 64))
PROBE = "00000000000000e2"
PROBE_KEY = bytes(range(64, 80))
BEAT_S = 0.3
HANG_GUARD_S = 60.0
"""Only a guard against hanging for ever: a probe's ack that never comes fails the test."""


class TimedBox(SimulatedDevice):
    """A call box that notes when each of its frames was sent and when its ack arrived."""

    def __init__(self) -> None:
        super().__init__(BOX, "call_box", KEY)
        self.sent: dict[int, float] = {}
        self.acked_at: dict[int, float] = {}

    def beat(self, fleet: MqttFleet) -> None:
        """Send one heartbeat now (from any thread)."""
        frame = self.heartbeat()
        self.sent[self.next_seq - 1] = time.monotonic()
        fleet.publish(self.device_id, frame)

    def handle_downlink(self, data: bytes) -> Envelope | None:
        """As firmware does, and the arrival time of every ack (on the fleet's thread)."""
        envelope = super().handle_downlink(data)
        if envelope is not None and isinstance(envelope.message, Ack):
            self.acked_at.setdefault(envelope.message.acked_seq, time.monotonic())
        return envelope


def _beat_until(box: TimedBox, fleet: MqttFleet, stop: threading.Event) -> None:
    """Heartbeats every BEAT_S on a thread of their own, as a box beside the gateway would."""
    while not stop.wait(BEAT_S):
        box.beat(fleet)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_acks_keep_flowing_during_an_import_at_the_row_cap(
    tmp_path: Path,
    broker: MosquittoBroker,
    no_leaked_tasks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    households = grid_import.MAX_ROWS
    text = households_csv(households)
    box = TimedBox()
    probe = SimulatedDevice(PROBE, "call_box", PROBE_KEY)
    async with (
        GatewayService(gateway_settings(tmp_path, broker)) as gw,
        MqttFleet("127.0.0.1", broker.port, [box, probe]) as fleet,
    ):
        await gw.register_device(BOX, "call_box", KEY)
        await gw.register_device(PROBE, "call_box", PROBE_KEY)
        await gw.import_csv("units", UNITS_CSV)
        await send_until_acked(fleet, box, box.heartbeat())
        before = len(box.acked_at)

        chunks = -(-households // gw.settings.grid_import.chunk_rows)
        # Calls of _plan: one per chunk to check the file, then one per chunk to write it.
        probe_at = {2: "check", chunks + 3: "write"}
        probed: list[tuple[str, int]] = []
        plan = grid_import.GridImporter._plan  # the seam between chunks
        calls = 0

        async def plan_then_probe(self: grid_import.GridImporter, *args: Any, **kw: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls in probe_at:
                await fleet.send(PROBE, probe.heartbeat())
                await wait_for(lambda: not probe.pending, HANG_GUARD_S, "probe acked mid-import")
                probed.append((probe_at[calls], calls))
            return await plan(self, *args, **kw)

        monkeypatch.setattr(grid_import.GridImporter, "_plan", plan_then_probe)
        stop = threading.Event()
        beating = threading.Thread(target=_beat_until, args=(box, fleet, stop), name="box")
        beating.start()
        try:
            started = time.perf_counter()
            result = await gw.import_csv("households", text)
            elapsed = time.perf_counter() - started
        finally:
            stop.set()
            await asyncio.to_thread(beating.join)
        await fleet.wait_all_acked(HANG_GUARD_S)
        lag = gw.loop_lag.worst_recent_s()

    assert (result.inserted, result.rejected, result.devices) == (households, 0, households)
    # A frame sent while the import was part-way through each phase was acknowledged there.
    assert probed == [("check", 2), ("write", chunks + 3)]
    assert calls == 2 * chunks
    # Every heartbeat of the beating box was acknowledged.
    latencies = sorted(box.acked_at[seq] - sent for seq, sent in box.sent.items())
    assert len(box.acked_at) - before == len(latencies)
    if latencies:
        worst = latencies[-1]
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        figures = (
            f"frame -> ack p50 {1000 * statistics.median(latencies):.0f} ms, "
            f"p99 {1000 * p99:.0f} ms, worst {1000 * worst:.0f} ms"
        )
    else:
        figures = "no heartbeat fell within the import"
    print(
        f"\nimported {households:,} households in {elapsed:.1f} s "
        f"({result.transactions} transactions); {len(latencies)} heartbeats acked, {figures}; "
        f"worst event-loop lag {1000 * lag:.0f} ms (target 200 ms)"
    )
