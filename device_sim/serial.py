"""A simulated serial concentrator: a loopback TCP server the gateway opens as socket://.

The line carries serial-framed protocol frames (firmware_protocol.encode_serial) both
ways. One gateway connection at a time, as on a real bus: a new connection replaces the
old one. Bytes sent while no gateway is connected wait in a bounded backlog and go out,
in order, when it connects again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable
from types import TracebackType

from device_sim.device import SimulatedDevice
from device_sim.resend import Resender, SimClock
from firmware_protocol import Ack, ProtocolError, SerialStreamDecoder, encode_serial, parse_frame

log = logging.getLogger(__name__)

READ_CHUNK = 4096
DEFAULT_MAX_BACKLOG = 100_000


class SerialConcentrator:
    """Devices on one serial bus; the gateway connects to `url` and talks serial framing.

    Given a `clock`, each box resends its unacknowledged frames by itself as firmware does
    (backoff on that clock, reset by any ACK: `device_sim.resend`). Without one the caller
    resends with `retransmit_pending()`.
    """

    def __init__(
        self,
        devices: Iterable[SimulatedDevice],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_backlog: int = DEFAULT_MAX_BACKLOG,
        clock: SimClock | None = None,
    ) -> None:
        self.devices = {d.device_id: d for d in devices}
        self._host = host
        self._port = port
        self._max_backlog = max_backlog
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._backlog: deque[bytes] = deque()
        self._readers: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._changed = asyncio.Event()
        self.connections = 0
        self.downlinks = 0
        # Bytes between two flags that were not a frame (CRC, escape or length wrong).
        self.bad_downlinks = 0
        # Well-framed downlinks for no device on this line, or with a broken header.
        self.unrouted_downlinks = 0
        # Oldest queued bytes dropped because the backlog was full.
        self.dropped_uplinks = 0
        self.resender = None if clock is None else Resender(clock, self._resend)
        """The boxes' resend timers, when the line was given a clock."""

    @property
    def port(self) -> int:
        """The TCP port; known once the server has started."""
        if self._port == 0:
            raise RuntimeError("the concentrator is not started")
        return self._port

    @property
    def url(self) -> str:
        """The pyserial URL of this line."""
        return f"socket://{self._host}:{self.port}"

    @property
    def connected(self) -> bool:
        """Whether a gateway has the line open."""
        return self._writer is not None

    def add(self, device: SimulatedDevice) -> None:
        """Put another device on the line."""
        self.devices[device.device_id] = device
        if self.resender is not None:
            self.resender.add(device)

    async def _resend(self, _device: SimulatedDevice, frame: bytes) -> None:
        await self.send_raw(encode_serial(frame))

    def pending_total(self) -> int:
        """Frames of all devices still waiting for their ack."""
        return sum(d.pending_count for d in self.devices.values())

    async def start(self) -> None:
        """Start listening."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._on_connect, self._host, self._port)
        self._port = int(self._server.sockets[0].getsockname()[1])
        if self.resender is not None:
            self.resender.start(list(self.devices.values()))

    async def __aenter__(self) -> SerialConcentrator:
        """Start listening."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop listening and drop the connection."""
        await self.close()

    async def close(self) -> None:
        """Close everything; safe to call twice."""
        if self.resender is not None:
            await self.resender.stop()
        await self.disconnect()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        readers = list(self._readers)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    async def disconnect(self) -> None:
        """Drop the gateway's connection, as when a cable is pulled."""
        writer, self._writer = self._writer, None
        self._connected.clear()
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def wait_connected(self, timeout: float) -> None:
        """Wait until the gateway has opened the line."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def send(self, device_id: str, frame: bytes) -> None:
        """Put one device's frame on the line (queued while the gateway is not connected)."""
        if device_id not in self.devices:
            raise KeyError(f"device {device_id} is not on this line")
        await self.send_raw(encode_serial(frame))
        if self.resender is not None:
            self.resender.queued(device_id)

    async def send_raw(self, data: bytes) -> None:
        """Put raw bytes on the line: noise, broken frames, anything."""
        writer = self._writer
        if writer is None or writer.is_closing():
            self._queue(data)
            return
        try:
            writer.write(data)
            await writer.drain()
        except OSError:
            # The gateway went away mid-write; the bytes may or may not have left, and a
            # second copy is harmless (the gateway deduplicates by sequence number).
            self._queue(data)

    def _resend_now(self, frame: bytes) -> None:
        """Put a frame on the line from the reader (no drain: the next write drains)."""
        data = encode_serial(frame)
        writer = self._writer
        if writer is None or writer.is_closing():
            self._queue(data)
            return
        try:
            writer.write(data)
        except OSError:
            self._queue(data)

    def _queue(self, data: bytes) -> None:
        if len(self._backlog) >= self._max_backlog:
            self._backlog.popleft()
            self.dropped_uplinks += 1
        self._backlog.append(data)

    async def retransmit_pending(self) -> int:
        """Send every unacknowledged frame again; returns how many."""
        count = 0
        for device in list(self.devices.values()):
            for frame in device.retransmit_due():
                await self.send(device.device_id, frame)
                count += 1
        return count

    async def wait_all_acked(self, timeout: float) -> None:
        """Return when no device has a frame waiting for its ack; TimeoutError otherwise."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self._changed.clear()
                    if self.pending_total() == 0:
                        return
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"{self.pending_total()} frames still unacknowledged") from None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            task.set_name("sim-serial-line")
            self._readers.add(task)
        try:
            await self.disconnect()
            self._writer = writer
            self.connections += 1
            while self._backlog:
                writer.write(self._backlog.popleft())
            await writer.drain()
            self._connected.set()
            await self._read(reader)
        except OSError as exc:
            log.info("gateway connection to the simulated line failed: %s", exc)
        finally:
            if task is not None:
                self._readers.discard(task)
            if self._writer is writer:
                self._writer = None
                self._connected.clear()
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = SerialStreamDecoder()
        while data := await reader.read(READ_CHUNK):
            for item in decoder.feed(data):
                self._route(item)
            self._changed.set()

    def _route(self, item: bytes | ProtocolError) -> None:
        if isinstance(item, ProtocolError):
            self.bad_downlinks += 1
            return
        try:
            device = self.devices.get(parse_frame(item).device_id)
        except ProtocolError:
            device = None
        if device is None:
            self.unrouted_downlinks += 1
            return
        self.downlinks += 1
        taken = device.handle_downlink(item)
        if self.resender is not None and taken is not None and isinstance(taken.message, Ack):
            self.resender.answered(device.device_id)  # the backoff starts again
        for frame in device.take_resend():
            self._resend_now(frame)
        # A refused stale downlink: the heartbeat moves the gateway's counter on.
        wanted = device.take_wanted_heartbeat()
        if wanted is not None:
            self._resend_now(wanted)
