"""A grid import at the row cap while a box keeps sending: its acks keep flowing."""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Ack, Envelope
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from gateway.services import grid_import
from tests.gateway.grid import UNITS_CSV, households_csv
from tests.gateway.support import gateway_settings, send_until_acked

BOX = "00000000000000e1"
KEY = bytes(range(48, 64))
BEAT_S = 0.3
STALL_BOUND_S = 0.2
"""The longest the event loop may stay blocked during the import."""
ACK_BOUND_S = 1.0


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
async def test_acks_keep_flowing_during_an_import_at_the_row_cap(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    households = grid_import.MAX_ROWS
    text = households_csv(households)
    box = TimedBox()
    async with (
        GatewayService(gateway_settings(tmp_path, broker)) as gw,
        MqttFleet("127.0.0.1", broker.port, [box]) as fleet,
    ):
        await gw.register_device(BOX, "call_box", KEY)
        await gw.import_csv("units", UNITS_CSV)
        await send_until_acked(fleet, box, box.heartbeat())
        before = len(box.acked_at)

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
        await fleet.wait_all_acked(10.0)
        lag = gw.loop_lag.worst_recent_s()

    assert (result.inserted, result.rejected, result.devices) == (households, 0, households)
    latencies = sorted(box.acked_at[seq] - sent for seq, sent in box.sent.items())
    assert len(box.acked_at) - before == len(latencies)
    worst = latencies[-1]
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    print(
        f"\nimported {households:,} households in {elapsed:.1f} s "
        f"({result.transactions} transactions); {len(latencies)} heartbeats acked, "
        f"frame -> ack p50 {1000 * statistics.median(latencies):.0f} ms, "
        f"p99 {1000 * p99:.0f} ms, worst {1000 * worst:.0f} ms (target 200 ms); "
        f"worst event-loop lag {1000 * lag:.0f} ms"
    )
    # Heartbeats kept flowing through the whole import (the box's own thread may wake late
    # on a busy machine, so not every 0.3 s slot is filled), and every one was acked.
    assert len(latencies) >= int(elapsed / BEAT_S) // 2
    # A loop that never blocks is what the 200 ms target is about, and that is asserted; the
    # ack time also holds the OS's scheduling of three processes on a shared machine, so it
    # gets a bound that still catches the old whole-file stall (11.8 s) by far.
    assert lag < STALL_BOUND_S, f"the event loop was blocked for {1000 * lag:.0f} ms"
    assert worst < ACK_BOUND_S, f"an ack took {1000 * worst:.0f} ms during the import"
