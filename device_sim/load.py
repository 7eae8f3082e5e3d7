"""Load mode: N generated devices sending at a target rate for a while, with a summary.

Each frame's ack latency is measured from its first send to the ACK that reaches its
device (a resend keeps its first send time, so a lost frame shows as a long latency). A
frame still unacknowledged `resend_after_s` after it was last sent is sent again, as
firmware does; the summary says how many were.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from device_sim.device import DeviceKind, SimulatedDevice, fleet_identity
from device_sim.mqtt import MqttFleet
from firmware_protocol import Ack, Envelope, position

TICK_S = 0.01
PROGRESS_EVERY_S = 1.0


class LoadDevice(SimulatedDevice):
    """A fleet device that notes when each of its frames was first sent and when it was acked."""

    def __init__(
        self, index: int, session: int, latencies: list[float], kind: DeviceKind = "water_meter"
    ) -> None:
        device_id, key = fleet_identity(index)
        super().__init__(device_id, kind, key, session=session)
        self.queue_max = None  # a load generator keeps every frame until acked
        self.sent_at: dict[int, float] = {}
        self.last_sent: dict[int, float] = {}
        self._latencies = latencies

    def next_frame(self, litres: int) -> bytes:
        """A reading (a heartbeat from a box), noted as sent now."""
        frame = self.water_reading(litres) if self.kind == "water_meter" else self.heartbeat()
        pos = position(self.session, self.next_seq - 1)
        now = time.perf_counter()
        self.sent_at[pos] = now
        self.last_sent[pos] = now
        return frame

    def handle_downlink(self, data: bytes) -> Envelope | None:
        """As a device does; an ACK of one of ours records its latency."""
        envelope = super().handle_downlink(data)
        if envelope is not None and isinstance(envelope.message, Ack):
            ack = envelope.message
            pos = position(ack.acked_session, ack.acked_seq)
            sent = self.sent_at.pop(pos, None)
            self.last_sent.pop(pos, None)
            if sent is not None:
                self._latencies.append(time.perf_counter() - sent)
        return envelope


@dataclass
class LoadSummary:
    """What a load run sent and got back."""

    devices: int
    rate: float
    duration_s: float
    sent: int = 0
    acked: int = 0
    retransmitted: int = 0
    unacked: int = 0
    latencies: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float | None:
        """The p-th percentile of ack latency, seconds (nearest rank), None if nothing acked."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]

    def lines(self) -> list[str]:
        """The summary a person reads."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.1f} ms"

        return [
            f"devices {self.devices}, target {self.rate:g} frames/s for {self.duration_s:g} s",
            (
                f"sent {self.sent}, acked {self.acked}, retransmitted {self.retransmitted}, "
                f"unacked {self.unacked}"
            ),
            (
                f"ack latency p50 {ms(self.percentile(50))}, p99 {ms(self.percentile(99))}, "
                f"max {ms(max(self.latencies) if self.latencies else None)}"
            ),
        ]


async def run_load(
    host: str,
    port: int,
    *,
    devices: int,
    rate: float,
    duration_s: float,
    drain_s: float = 10.0,
    resend_after_s: float = 2.0,
    session: int | None = None,
    kind: DeviceKind = "water_meter",
    progress: Callable[[str], None] | None = None,
) -> LoadSummary:
    """`rate` frames/s from `devices` fleet devices for `duration_s`; then up to `drain_s`."""
    summary = LoadSummary(devices, rate, duration_s)
    start_session = int(time.time()) if session is None else session
    fleet_devices = [LoadDevice(i, start_session, summary.latencies, kind) for i in range(devices)]
    async with MqttFleet(host, port, fleet_devices) as fleet:
        started = time.perf_counter()
        last_progress = started
        n = 0
        while (now := time.perf_counter()) - started < duration_s:
            due = int((now - started) * rate)
            while n < due:
                device = fleet_devices[n % devices]
                fleet.publish(device.device_id, device.next_frame(n // devices))
                n += 1
            summary.retransmitted += _resend_stale(fleet, fleet_devices, resend_after_s)
            if progress is not None and now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                acked = len(summary.latencies)
                progress(
                    f"{now - started:5.1f}/{duration_s:g} s  sent {n}  acked {acked}  "
                    f"{n / max(now - started, 1e-9):.0f} frames/s"
                )
            await asyncio.sleep(TICK_S)
        summary.sent = n
        deadline = time.perf_counter() + drain_s
        while fleet.pending_total() and time.perf_counter() < deadline:
            summary.retransmitted += _resend_stale(fleet, fleet_devices, resend_after_s)
            await asyncio.sleep(TICK_S)
    summary.acked = len(summary.latencies)
    summary.unacked = sum(d.pending_count for d in fleet_devices)
    return summary


def _resend_stale(fleet: MqttFleet, devices: list[LoadDevice], after_s: float) -> int:
    """Send again every frame unacknowledged `after_s` after it was last sent."""
    now = time.perf_counter()
    count = 0
    for device in devices:
        if not device.last_sent:
            continue
        for session, seq, frame in device.queued_frames:
            pos = position(session, seq)
            if now - device.last_sent.get(pos, now) >= after_s:
                fleet.publish(device.device_id, frame)
                device.last_sent[pos] = now
                count += 1
    return count


def print_progress(line: str) -> None:
    """The progress line, rewritten in place on a terminal."""
    end = "\r" if sys.stderr.isatty() else "\n"
    sys.stderr.write(line + end)
    sys.stderr.flush()
