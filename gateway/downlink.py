"""Downlinks from the domain (indications, configuration, key rotation) to a device."""

from __future__ import annotations

import logging

from firmware_protocol import Envelope, Message, encode
from gateway.clock import Clock
from gateway.links import Link, LinkDownError
from gateway.metrics import GatewayMetrics
from gateway.registry import DeviceRegistry
from gateway.store import Store

log = logging.getLogger(__name__)


class DownlinkError(Exception):
    """A downlink could not be sent: unknown device, no link yet, or the link is down."""


class DownlinkSender:
    """Sends an authenticated message over whichever link the device last used."""

    def __init__(
        self,
        store: Store,
        registry: DeviceRegistry,
        clock: Clock,
        metrics: GatewayMetrics,
    ) -> None:
        self._store = store
        self._registry = registry
        self._clock = clock
        self._metrics = metrics
        self._links: dict[str, Link] = {}

    def add_link(self, link: Link) -> None:
        """Make a link available for routing."""
        self._links[link.name] = link

    async def send(self, device_id: str, message: Message) -> int:
        """Encode `message` with the device key and next downlink seq, send it, return the seq."""
        state = await self._registry.lookup(device_id)
        if state is None:
            self._metrics.downlinks_failed.labels("unknown_device").inc()
            raise DownlinkError(f"unknown device {device_id}")
        link = self._links.get(state.last_link or "")
        if link is None:
            self._metrics.downlinks_failed.labels("no_route").inc()
            raise DownlinkError(f"device {device_id} has not been heard on any link yet")
        mark = state.reservation_for(1)
        if mark is not None:
            # Stored before use, so a restart never reuses a seq the device has seen.
            async with self._store.transaction() as uow:
                await uow.set_downlink_seq(device_id, mark)
            state.reserved(mark)
        # No await between taking the number and writing the frame: downlinks leave in order.
        seq = state.allocate_downlink_seq()
        frame = encode(Envelope(device_id, seq, int(self._clock.now()), message), state.key)
        try:
            await link.send_downlink(device_id, frame)
        except LinkDownError as exc:
            self._metrics.downlinks_failed.labels("link_down").inc()
            raise DownlinkError(str(exc)) from exc
        self._metrics.downlinks_sent.labels(link.name, type(message).__name__).inc()
        return seq
