"""Load mode: N generated devices sending at a target rate for a while, with a summary.

Each frame's ack latency is measured from its first send to the ACK that reaches its
device (a resend keeps its first send time, so a lost frame shows as a long latency). A
frame still unacknowledged `resend_after_s` after it was sent is sent again, then after
twice as long each time (capped as firmware caps it); the summary says how many were.
Whether the target was reached is judged from what the broker took (its PUBACKs within the
sending window) and from how far the sender fell behind its schedule, not from what was
handed to the MQTT client.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from paho.mqtt.enums import MQTTProtocolVersion

from device_sim.device import BACKOFF_MAX_S, DeviceKind, SimulatedDevice, fleet_identity
from device_sim.mqtt import MqttFleet
from firmware_protocol import Ack, AckAction, Envelope, position

LoadKind = Literal["water_meter", "call_box", "mixed"]
"""What the fleet ids are: meters (readings), boxes (heartbeats), or the first half boxes."""
LOAD_KINDS: tuple[LoadKind, ...] = ("water_meter", "call_box", "mixed")
TICK_S = 0.01
PROGRESS_EVERY_S = 1.0
REACHED_SHARE = 0.97
"""The broker must have taken this share of the target rate for the target to count as met."""
LAG_LIMIT_S = 0.5
"""... and the sender never this far behind its schedule (a stall, then a burst)."""
BAR_WIDTH = 24
BUILD_AHEAD_MAX = 300_000
"""A run of at most this many frames builds them all before sending (about 40 µs each);
a longer one builds each as it goes."""
WINDOW = 500
"""Publishes waiting for the broker's PUBACK at most: below mosquitto's receive maximum (1000
as Bidao configures it), which paho does not keep by itself."""


def load_identities(
    devices: int, kind: LoadKind = "water_meter", first: int = 0
) -> Iterator[tuple[str, DeviceKind, bytes]]:
    """(device_id, kind, key) of each device a load run with these options uses."""
    for i in range(devices):
        device_id, key = fleet_identity(first + i)
        if kind == "mixed":
            yield device_id, ("call_box" if i < devices // 2 else "water_meter"), key
        else:
            yield device_id, kind, key


@dataclass
class LoadSummary:
    """What a load run sent and got back."""

    devices: int
    rate: float
    duration_s: float
    sent: int = 0
    acked: int = 0
    refused: int = 0
    """Frames the gateway answered with a nack that ends them (unknown key, disabled, ...)."""
    renumbered: int = 0
    """Frames the gateway asked to renumber (a session it had seen: use a newer one)."""
    retransmitted: int = 0
    unacked: int = 0
    sending_s: float = 0.0
    """How long the sending window really lasted."""
    broker_took: int = 0
    """Frames the broker had PUBACKed by the end of the sending window."""
    max_lag_s: float = 0.0
    """How far the sender fell behind its schedule at worst."""
    latencies: list[float] = field(default_factory=list)

    def percentile(self, p: float) -> float | None:
        """The p-th percentile of ack latency, seconds (nearest rank), None if nothing acked."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]

    @property
    def offered_rate(self) -> float:
        """Frames per second the broker took during the sending window."""
        return self.broker_took / self.sending_s if self.sending_s > 0 else 0.0

    @property
    def reached(self) -> bool:
        """The broker took the target rate and the sender kept its schedule."""
        return self.offered_rate >= REACHED_SHARE * self.rate and self.max_lag_s <= LAG_LIMIT_S

    def lines(self) -> list[str]:
        """The summary a person reads."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.1f} ms"

        verdict = "reached" if self.reached else "NOT reached"
        return [
            f"devices {self.devices}, target {self.rate:g} frames/s for {self.duration_s:g} s",
            (
                f"sent {self.sent}, acked {self.acked}, retransmitted {self.retransmitted}, "
                f"unacked {self.unacked}"
                + (f", refused {self.refused}" if self.refused else "")
                + (f", renumbered {self.renumbered}" if self.renumbered else "")
            ),
            (
                f"ack latency p50 {ms(self.percentile(50))}, p99 {ms(self.percentile(99))}, "
                f"max {ms(max(self.latencies) if self.latencies else None)}"
            ),
            (
                f"target {verdict}: the broker took {self.offered_rate:.0f} frames/s in "
                f"{self.sending_s:.1f} s; the sender was at most {self.max_lag_s * 1000:.0f} ms "
                "behind its schedule"
            ),
        ]

    def as_json(self) -> dict[str, Any]:
        """The figures as one JSON object (latencies in seconds, not listed one by one)."""
        figures = asdict(self)
        del figures["latencies"]
        figures.update(
            p50_s=self.percentile(50),
            p99_s=self.percentile(99),
            max_s=max(self.latencies) if self.latencies else None,
            offered_rate=self.offered_rate,
            reached=self.reached,
        )
        return figures


@dataclass
class _Outstanding:
    """Frames of every device sent and not yet answered, in the order they were last sent."""

    summary: LoadSummary
    resend_after_s: float
    due: list[tuple[float, int, LoadDevice, int, float]] = field(default_factory=list)
    """A heap of (resend at, tie-break, device, position, wait before that resend)."""
    count: Iterator[int] = field(default_factory=itertools.count)

    def waits(self, device: LoadDevice, pos: int, now: float, wait: float) -> None:
        """Resend the frame at `pos` `wait` seconds from `now` unless it is answered first."""
        heapq.heappush(self.due, (now + wait, next(self.count), device, pos, wait))


class LoadDevice(SimulatedDevice):
    """A fleet device that notes when each of its frames was first sent and when it was acked."""

    def __init__(
        self, device_id: str, kind: DeviceKind, key: bytes, session: int, book: _Outstanding
    ) -> None:
        self.planned: float | None = None
        """The unix time a frame built ahead will be sent at (its timestamp); None: now."""
        super().__init__(device_id, kind, key, session=session, clock=self._planned_clock)
        self.queue_max = None  # a load generator keeps every frame until acked
        self.waiting: dict[int, tuple[float, bytes]] = {}
        """(first sent, frame) of each frame not answered yet, by position."""
        self._book = book
        self._litres = 0

    def _planned_clock(self) -> float:
        return time.time() if self.planned is None else self.planned

    def build(self) -> tuple[int, bytes]:
        """The next reading (a heartbeat from a box): its position and bytes."""
        if self.kind == "water_meter":
            self._litres += 1
            frame = self.water_reading(self._litres)
        else:
            frame = self.heartbeat()
        return position(self.session, self.next_seq - 1), frame

    def sent(self, pos: int, frame: bytes, now: float) -> None:
        """Note that a frame just went (perf_counter time): it waits for its ACK from now."""
        self.waiting[pos] = (now, frame)
        self._book.waits(self, pos, now, self._book.resend_after_s)

    def handle_downlink(self, data: bytes) -> Envelope | None:
        """As a device does; an ACK of one of ours records its latency, a final nack counts."""
        envelope = super().handle_downlink(data)
        if envelope is None or not isinstance(envelope.message, Ack):
            return envelope
        ack = envelope.message
        action = ack.code.action
        if action not in (AckAction.DROP, AckAction.RENUMBER):
            return envelope  # RESEND_LATER, REVERT_KEY: still waiting, sent again when due
        found = self.waiting.pop(position(ack.acked_session, ack.acked_seq), None)
        if found is None:
            return envelope  # not ours any more: answered before
        summary = self._book.summary
        if action is AckAction.RENUMBER:
            summary.renumbered += 1  # sent again at once under a new number, no longer timed
        elif ack.is_ack:
            summary.latencies.append(time.perf_counter() - found[0])
        else:
            summary.refused += 1
        return envelope


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
    kind: LoadKind = "water_meter",
    first: int = 0,
    progress: Callable[[str], None] | None = None,
    sending: Callable[[], None] | None = None,
) -> LoadSummary:
    """`rate` frames/s from `devices` fleet devices for `duration_s`; then up to `drain_s`.

    `sending` is called once connected, just before the first frame goes.
    """
    summary = LoadSummary(devices, rate, duration_s)
    book = _Outstanding(summary, resend_after_s)
    start_session = int(time.time()) if session is None else session
    fleet_devices = [
        LoadDevice(device_id, device_kind, key, start_session, book)
        for device_id, device_kind, key in load_identities(devices, kind, first)
    ]
    total = math.ceil(rate * duration_s)
    ahead = total <= BUILD_AHEAD_MAX
    frames = _frames(fleet_devices, total, rate, time.time() if ahead else None)
    if ahead:
        # Built (and MACed) before the first goes, so that the sending window's CPU goes
        # into sending and taking acks; each frame carries the time it is planned to go at.
        frames = iter(list(frames))
    async with MqttFleet(
        host,
        port,
        fleet_devices,
        max_inflight=0,
        network_thread=False,
        protocol=MQTTProtocolVersion.MQTTv311,
    ) as fleet:
        if sending is not None:
            sending()
        started = time.perf_counter()
        last_progress = started
        n = 0
        while (now := time.perf_counter()) - started < duration_s:
            due = int((now - started) * rate)
            if due > n:
                summary.max_lag_s = max(summary.max_lag_s, now - started - (n + 1) / rate)
            while n < due and fleet.in_flight < WINDOW:
                device, pos, frame = next(frames)
                fleet.publish(device.device_id, frame)
                device.sent(pos, frame, now)
                n += 1
            summary.retransmitted += _resend_due(fleet, book)
            if progress is not None and now - last_progress >= PROGRESS_EVERY_S:
                last_progress = now
                progress(progress_line(now - started, duration_s, n, len(summary.latencies)))
            await asyncio.sleep(TICK_S)
        summary.sending_s = time.perf_counter() - started
        summary.broker_took = fleet.published
        summary.sent = n
        deadline = time.perf_counter() + drain_s
        while _waiting(fleet_devices) and time.perf_counter() < deadline:
            summary.retransmitted += _resend_due(fleet, book)
            await asyncio.sleep(TICK_S)
    summary.acked = len(summary.latencies)
    summary.unacked = _waiting(fleet_devices)
    return summary


def _frames(
    devices: list[LoadDevice], total: int, rate: float, start: float | None = None
) -> Iterator[tuple[LoadDevice, int, bytes]]:
    """(device, position, frame) of `total` frames, the devices in turn.

    Given `start` (unix time), each frame's timestamp is the moment it is planned to go at.
    """
    for n in range(total):
        device = devices[n % len(devices)]
        device.planned = None if start is None else start + n / rate
        pos, frame = device.build()
        yield device, pos, frame
    for device in devices:
        device.planned = None


def _waiting(devices: list[LoadDevice]) -> int:
    return sum(len(d.waiting) for d in devices)


def _resend_due(fleet: MqttFleet, book: _Outstanding) -> int:
    """Send again every unanswered frame whose wait is over; the next wait is twice as long."""
    due = book.due
    now = time.perf_counter()
    count = 0
    while due and due[0][0] <= now and fleet.in_flight < WINDOW:
        _, _, device, pos, wait = heapq.heappop(due)
        found = device.waiting.get(pos)
        if found is None:
            continue  # answered meanwhile
        fleet.publish(device.device_id, found[1])
        book.waits(device, pos, now, min(2 * wait, BACKOFF_MAX_S))
        count += 1
    return count


def progress_line(elapsed_s: float, duration_s: float, sent: int, acked: int) -> str:
    """A progress bar with what was sent and acked so far."""
    done = min(1.0, elapsed_s / duration_s) if duration_s > 0 else 1.0
    bar = "#" * round(done * BAR_WIDTH)
    return (
        f"[{bar:<{BAR_WIDTH}}] {elapsed_s:5.1f}/{duration_s:g} s  sent {sent}  acked {acked}  "
        f"{sent / max(elapsed_s, 1e-9):.0f} frames/s"
    )


def print_progress(line: str) -> None:
    """The progress line, rewritten in place on a terminal."""
    end = "\r" if sys.stderr.isatty() else "\n"
    sys.stderr.write(line + end)
    sys.stderr.flush()
