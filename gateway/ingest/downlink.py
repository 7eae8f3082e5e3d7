"""The one way out to a device: sequence numbers, encoding, routing and counting of downlinks.

Protocol acks (the pipeline), box indications, configuration and key provisioning all leave
through `Downlinker`, so each device has one sequence allocator (`DeviceState`), every frame
is encoded in one place and one set of metrics counts what left and what could not.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from firmware_protocol import Ack, AckCode, Envelope, Message, encode
from gateway.clock import Clock
from gateway.ingest.links import Link, LinkDownError
from gateway.ingest.registry import DeviceRegistry, DeviceState
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Store

log = logging.getLogger(__name__)

DownlinkFailure = Literal["unknown_device", "no_route", "link_down"]


class DownlinkError(Exception):
    """A downlink could not be sent: unknown device, no link yet, or the link is down."""

    def __init__(self, reason: DownlinkFailure, message: str) -> None:
        super().__init__(message)
        self.reason: DownlinkFailure = reason


@dataclass(frozen=True, slots=True)
class Reply:
    """A protocol ack or nack owed to a device, sent back on the link its frame came on."""

    link: Link
    device: DeviceState
    seq: int
    code: AckCode


def reservations(replies: Sequence[Reply]) -> dict[str, int]:
    """New downlink seq high-water marks to store before these replies can be sent."""
    owed = Counter(r.device.device_id for r in replies)
    devices = {r.device.device_id: r.device for r in replies}
    marks = {device_id: devices[device_id].reservation_for(n) for device_id, n in owed.items()}
    return {device_id: mark for device_id, mark in marks.items() if mark is not None}


class Downlinker:
    """Encodes with the device key and its next downlink seq, sends, and counts."""

    def __init__(
        self, store: Store, registry: DeviceRegistry, clock: Clock, metrics: GatewayMetrics
    ) -> None:
        self._store = store
        self._registry = registry
        self._clock = clock
        self._metrics = metrics
        self._links: dict[str, Link] = {}

    def add_link(self, link: Link) -> None:
        """Make a link available for routing."""
        self._links[link.name] = link

    async def send_replies(self, replies: Sequence[Reply]) -> None:
        """Send acks whose seq reservations are already stored; a down link is counted only."""
        now = int(self._clock.now())
        acks: Counter[str] = Counter()
        links: Counter[str] = Counter()
        try:
            for reply in replies:
                device = reply.device
                # No await between taking the number and writing the frame: they leave in order.
                seq = device.allocate_downlink_seq()
                envelope = Envelope(device.device_id, seq, now, Ack(reply.seq, reply.code))
                try:
                    await reply.link.send_downlink(device.device_id, encode(envelope, device.key))
                except LinkDownError:
                    # The device retransmits; the copy is deduplicated and acked again.
                    self._metrics.downlinks_failed.labels("link_down").inc()
                    continue
                acks[reply.code.name] += 1
                links[reply.link.name] += 1
        finally:
            # Counted per batch: a labelled child costs a lock and a lookup each time.
            for code, count in acks.items():
                self._metrics.acks_sent.labels(code).inc(count)
            for link, count in links.items():
                self._metrics.downlinks_sent.labels(link, "Ack").inc(count)

    async def send(self, device_id: str, message: Message) -> int:
        """Send `message` over the link the device last used; its seq, or DownlinkError."""
        state = await self._registry.lookup(device_id)
        if state is None:
            raise self._error("unknown_device", f"unknown device {device_id}")
        link = self._links.get(state.last_link or "")
        if link is None:
            raise self._error("no_route", f"device {device_id} has not been heard on any link yet")
        mark = state.reservation_for(1)
        if mark is not None:
            # Stored before use, so a restart never reuses a seq the device has seen.
            async with self._store.transaction() as uow:
                await uow.devices.set_downlink_seq(device_id, mark)
            state.reserved(mark)
        seq = state.allocate_downlink_seq()
        frame = encode(Envelope(device_id, seq, int(self._clock.now()), message), state.key)
        try:
            await link.send_downlink(device_id, frame)
        except LinkDownError as exc:
            raise self._error("link_down", str(exc)) from exc
        self._metrics.downlinks_sent.labels(link.name, type(message).__name__).inc()
        return seq

    def _error(self, reason: DownlinkFailure, message: str) -> DownlinkError:
        self._metrics.downlinks_failed.labels(reason).inc()
        return DownlinkError(reason, message)
