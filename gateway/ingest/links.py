"""What the pipeline needs from a transport: frames in, downlinks out."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

TransportName = Literal["mqtt", "serial"]


class LinkDownError(Exception):
    """The link cannot send right now (disconnected, port closed)."""


class Link(Protocol):
    """A transport link that can carry downlink frames to devices."""

    @property
    def name(self) -> str:
        """Unique link name: "mqtt" or the serial link's name."""
        ...

    @property
    def transport(self) -> TransportName:
        """Which kind of transport this is."""
        ...

    async def send_downlink(self, device_id: str, frame: bytes) -> None:
        """Send one encoded frame to a device; LinkDownError if the link is down."""
        ...

    async def send_replies(self, frames: Sequence[tuple[str, bytes]]) -> None:
        """Send protocol acks and nacks, (device id, encoded frame) in order.

        A reply answers a frame its device sends again until it is answered, so it needs no
        delivery guarantee of its own (over MQTT it goes at QoS 0: no PUBACK to wait for, and
        nothing for the broker to keep for a box that is away, which will resend and be
        answered again). LinkDownError if the link is down.
        """
        ...


@dataclass(slots=True)
class InboundFrame:
    """Bytes that arrived on a link, waiting for the pipeline."""

    data: bytes
    link: Link
    received_at: float
    topic_device_id: str | None = None
    """For MQTT: the device id the topic names, checked against the frame."""
    settle: Callable[[], None] | None = None
    """Transport-level completion (the MQTT PUBACK), called once the frame's fate is durable."""
    arrived: float = field(default_factory=time.perf_counter)
    """time.perf_counter() when it was handed over (for `bidao_urgent_stage_seconds`; the
    injected clock's `received_at` is what the rules see)."""


Submit = Callable[[InboundFrame], bool]
"""Hand a frame to the pipeline, which settles it exactly once (queued, or refused: False)."""
