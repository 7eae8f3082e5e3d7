"""The one way out to a device: sequence numbers, encoding, routing and counting of downlinks.

Protocol acks (the pipeline), box indications, configuration and key provisioning all leave
through `Downlinker`, so each device has one sequence allocator (`DeviceState`), every frame
is encoded in one place and one set of metrics counts what left and what could not.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from firmware_protocol import ACKED_MAC_LEN, Ack, AckCode, Envelope, Frame, Message, encode
from gateway.clock import Clock
from gateway.ingest.links import Link, LinkDownError
from gateway.ingest.registry import DeviceRegistry, DeviceState
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Store

log = logging.getLogger(__name__)

DownlinkFailure = Literal["unknown_device", "no_route", "link_down"]
MessageFactory = Callable[[DeviceState, int, int], Message]
"""Builds a downlink that depends on its own header: (device, session, seq) -> message."""


class DownlinkError(Exception):
    """A downlink could not be sent: unknown device, no link yet, or the link is down."""

    def __init__(self, reason: DownlinkFailure, message: str) -> None:
        super().__init__(message)
        self.reason: DownlinkFailure = reason


@dataclass(frozen=True, slots=True)
class Reply:
    """A protocol ack or nack owed to a device, sent back on the link its frame came on.

    It names the frame by (session, seq) and the first bytes of its MAC, and is MACed with
    the key the frame was MACed with (`key_id`), or the current key when that is unknown.
    """

    link: Link
    device: DeviceState
    frame: Frame
    code: AckCode

    @property
    def seq(self) -> int:
        """The answered frame's seq (within its session)."""
        return self.frame.seq


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
        """Send acks (they take no downlink seq: nothing to store); a down link is counted only.

        Each link gets its replies in one call, in order (over MQTT, at QoS 0).
        """
        now = int(self._clock.now())
        by_link: dict[str, tuple[Link, list[tuple[str, bytes]], Counter[str]]] = {}
        for reply in replies:
            device, frame = reply.device, reply.frame
            key = device.record.key_for(frame.key_id)
            key_id = frame.key_id
            if key is None or reply.code == AckCode.NACK_UNKNOWN_KEY:
                key, key_id = device.record.key, device.record.key_version
            last_session, last_seq = device.resync_point()
            ack = Ack(
                frame.seq,
                reply.code,
                frame.session,
                frame.mac[:ACKED_MAC_LEN],
                last_session,
                last_seq,
            )
            envelope = Envelope(device.device_id, 0, now, ack, frame.session, key_id)
            entry = by_link.get(reply.link.name)
            if entry is None:
                entry = by_link[reply.link.name] = (reply.link, [], Counter())
            entry[1].append((device.device_id, encode(envelope, key)))
            entry[2][reply.code.name] += 1
        for name, (link, frames, codes) in by_link.items():
            try:
                await link.send_replies(frames)
            except LinkDownError:
                # The devices retransmit; the copies are deduplicated and acked again.
                self._metrics.downlinks_failed.labels("link_down").inc(len(frames))
                continue
            # Counted per batch: a labelled child costs a lock and a lookup each time.
            for code, count in codes.items():
                self._metrics.acks_sent.labels(code).inc(count)
            self._metrics.downlinks_sent.labels(name, "Ack").inc(len(frames))

    async def send(self, device_id: str, message: Message | MessageFactory) -> int:
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
        session, seq = state.allocate_downlink_seq()
        if callable(message):
            message = message(state, session, seq)
        envelope = Envelope(
            device_id, seq, int(self._clock.now()), message, session, state.record.key_version
        )
        frame = encode(envelope, state.key)
        try:
            await link.send_downlink(device_id, frame)
        except LinkDownError as exc:
            raise self._error("link_down", str(exc)) from exc
        self._metrics.downlinks_sent.labels(link.name, type(message).__name__).inc()
        return seq

    def _error(self, reason: DownlinkFailure, message: str) -> DownlinkError:
        self._metrics.downlinks_failed.labels(reason).inc()
        return DownlinkError(reason, message)
