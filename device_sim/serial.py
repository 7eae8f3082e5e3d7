"""A simulated serial concentrator: a loopback TCP server that the gateway opens as socket://."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from types import TracebackType

from device_sim.device import SimulatedDevice
from firmware_protocol import ProtocolError, SerialStreamDecoder, encode_serial, parse_frame


class SerialConcentrator:
    """Devices on one serial bus; the gateway connects to `url` and talks serial framing."""

    def __init__(
        self, devices: Iterable[SimulatedDevice], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.devices = {d.device_id: d for d in devices}
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._backlog: list[bytes] = []
        self._readers: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self.bad_downlinks = 0
        self.connections = 0

    @property
    def url(self) -> str:
        """The pyserial URL of this line."""
        return f"socket://{self._host}:{self._port}"

    async def __aenter__(self) -> SerialConcentrator:
        """Start listening."""
        self._server = await asyncio.start_server(self._on_connect, self._host, self._port)
        self._port = int(self._server.sockets[0].getsockname()[1])
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
        await self.disconnect()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        for task in list(self._readers):
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)

    async def disconnect(self) -> None:
        """Drop the gateway's connection, as when a cable is pulled."""
        writer, self._writer = self._writer, None
        self._connected.clear()
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
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

    async def send_raw(self, data: bytes) -> None:
        """Put raw bytes on the line: noise, broken frames, anything."""
        writer = self._writer
        if writer is None:
            self._backlog.append(data)
            return
        writer.write(data)
        await writer.drain()

    async def retransmit_pending(self) -> int:
        """Send every unacknowledged frame again; returns how many."""
        count = 0
        for device in self.devices.values():
            for frame in device.retransmit_due():
                await self.send(device.device_id, frame)
                count += 1
        return count

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self.disconnect()
        self._writer = writer
        self.connections += 1
        backlog, self._backlog = self._backlog, []
        for data in backlog:
            writer.write(data)
        self._connected.set()
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            decoder = SerialStreamDecoder()
            while data := await reader.read(4096):
                for item in decoder.feed(data):
                    self._route(item)
        except (OSError, ConnectionError):
            pass
        finally:
            if task is not None:
                self._readers.discard(task)
            if self._writer is writer:
                self._writer = None
                self._connected.clear()
            writer.close()

    def _route(self, item: bytes | ProtocolError) -> None:
        if isinstance(item, ProtocolError):
            self.bad_downlinks += 1
            return
        try:
            device = self.devices.get(parse_frame(item).device_id)
        except ProtocolError:
            device = None
        if device is None:
            self.bad_downlinks += 1
            return
        device.handle_downlink(item)
