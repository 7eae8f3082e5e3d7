"""A serial link (RS-485/UART concentrator) opened from a pyserial URL, reopened when it fails."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence

import serial
import serial_asyncio_fast

from firmware_protocol import ProtocolError, SerialStreamDecoder, encode_serial
from gateway.clock import Clock
from gateway.config import SerialLinkSettings
from gateway.ingest.links import InboundFrame, LinkDownError, Submit, TransportName
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

READ_CHUNK = 4096


class SerialLink:
    """One serial line with a stream decoder; frames go to the pipeline, acks come back.

    The line holds a credit of frames that may wait in the pipeline; once it is used up the
    link stops reading (bytes wait in the OS buffer and the concentrator) until some settle.
    """

    def __init__(
        self,
        settings: SerialLinkSettings,
        submit: Submit,
        clock: Clock,
        metrics: GatewayMetrics,
    ) -> None:
        self._settings = settings
        self._submit = submit
        self._credit = asyncio.Semaphore(settings.credit)
        self._clock = clock
        self._metrics = metrics
        self._writer: asyncio.StreamWriter | None = None
        self._open = asyncio.Event()
        self._reading = True
        self._state_listeners: list[Callable[[bool, float], None]] = []

    @property
    def name(self) -> str:
        """The configured link name."""
        return self._settings.name

    @property
    def transport(self) -> TransportName:
        """The kind of transport."""
        return "serial"

    @property
    def is_open(self) -> bool:
        """Whether the port is open."""
        return self._open.is_set()

    def on_state(self, listener: Callable[[bool, float], None]) -> None:
        """Have `listener(up, at)` called when the port opens or closes (on the event loop)."""
        self._state_listeners.append(listener)

    def _tell(self, up: bool) -> None:
        at = self._clock.now()
        for listener in self._state_listeners:
            listener(up, at)

    async def wait_open(self, timeout: float) -> None:
        """Wait until the port is open."""
        async with asyncio.timeout(timeout):
            await self._open.wait()

    def stop_reading(self) -> None:
        """Stop taking new frames (for a graceful shutdown); downlinks still go out."""
        self._reading = False

    async def run(self) -> None:
        """Open, read until the port fails, reopen with capped backoff and jitter."""
        delay = self._settings.reopen_initial_s
        while True:
            try:
                reader, writer = await serial_asyncio_fast.open_serial_connection(
                    url=self._settings.url, baudrate=self._settings.baudrate
                )
            except (OSError, serial.SerialException) as exc:
                self._metrics.link_failures.labels(self.name).inc()
                log.warning(
                    "serial open failed",
                    extra={"link": self.name, "error": str(exc), "retry_s": delay},
                )
            else:
                delay = self._settings.reopen_initial_s
                self._writer = writer
                self._open.set()
                self._tell(True)  # noqa: FBT003 - up
                self._metrics.link_connects.labels(self.name).inc()
                log.info("serial link open", extra={"link": self.name})
                try:
                    await self._read(reader)
                except (OSError, serial.SerialException) as exc:
                    log.warning("serial link failed", extra={"link": self.name, "error": str(exc)})
                finally:
                    self._open.clear()
                    self._writer = None
                    writer.close()
                    self._tell(False)  # noqa: FBT003 - down
                self._metrics.link_failures.labels(self.name).inc()
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter only
            delay = min(delay * 2, self._settings.reopen_max_s)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = SerialStreamDecoder()
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                log.warning("serial link closed by the other end", extra={"link": self.name})
                return
            if not self._reading:
                continue
            for item in decoder.feed(data):
                if isinstance(item, ProtocolError):
                    self._metrics.frames_rejected.labels("serial", item.reason).inc()
                    continue
                if self._credit.locked():
                    self._metrics.link_read_pauses.labels(self.name).inc()
                await self._credit.acquire()
                self._submit(
                    InboundFrame(
                        data=item,
                        link=self,
                        received_at=self._clock.now(),
                        settle=self._settler(),
                    )
                )

    def _settler(self) -> Callable[[], None]:
        """Give the frame's credit back, once however often it is called."""
        settled = False

        def settle() -> None:
            nonlocal settled
            if not settled:
                settled = True
                self._credit.release()

        return settle

    async def send_downlink(self, device_id: str, frame: bytes) -> None:
        """Write a serial-framed downlink; every device on the line sees it, the id selects."""
        await self.send_replies(((device_id, frame),))

    async def send_replies(self, frames: Sequence[tuple[str, bytes]]) -> None:
        """Write serial-framed acks and nacks, in order, and wait for them to leave once."""
        writer = self._writer
        if writer is None or writer.is_closing():
            raise LinkDownError(f"serial link {self.name} is closed")
        writer.write(b"".join(encode_serial(frame) for _, frame in frames))
        try:
            await writer.drain()
        except (OSError, serial.SerialException) as exc:
            raise LinkDownError(f"serial link {self.name} write failed: {exc}") from exc
