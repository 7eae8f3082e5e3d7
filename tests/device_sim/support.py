"""Stand-in gateways for simulator tests: a plain paho client that acks what it can verify,
and the gateway's end of a simulated serial line."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

import firmware_protocol as fp
from device_sim.serial import SerialConcentrator
from firmware_protocol import (
    UPLINK_SUBSCRIPTION,
    Ack,
    AckCode,
    Envelope,
    Message,
    ProtocolError,
    decode,
    downlink_topic,
    encode,
    encode_serial,
    parse_uplink_topic,
)

BOX_ID = "b1da0000000000aa"
BOX_KEY = bytes(range(16))
FLEET_SIZE = 20


async def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll a condition that depends on real I/O; TimeoutError after `timeout` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.005)


class EchoGateway:
    """Answers every verified uplink with an ACK (DUPLICATE for a seq seen before)."""

    def __init__(self, port: int, keys: dict[str, bytes]) -> None:
        self.port = port
        self.keys = dict(keys)
        self.code = AckCode.ACCEPTED
        self.silent = False
        self.uplinks: list[Envelope] = []
        self.rejected = 0
        self._seen: set[tuple[str, int]] = set()
        """(device, position) of every uplink taken."""
        self._downlink_seq: dict[str, int] = {}
        self._state = threading.Condition()
        self._subscribed = threading.Event()
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"echo-{id(self):x}")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def __enter__(self) -> EchoGateway:
        """Connect and return once the uplink subscription is granted."""
        self._client.connect("127.0.0.1", self.port)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            self.__exit__(None, None, None)
            raise TimeoutError("echo gateway did not subscribe")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def send(
        self, device_id: str, message: Message, *, seq: int | None = None, session: int = 1
    ) -> bytes:
        """Publish one downlink (QoS 1, waits for the broker's PUBACK); returns its bytes."""
        with self._state:
            if seq is None:
                seq = self._downlink_seq.get(device_id, 0) + 1
            self._downlink_seq[device_id] = max(seq, self._downlink_seq.get(device_id, 0))
        frame = encode(Envelope(device_id, seq, 0, message, session), self.keys[device_id])
        self.publish_raw(device_id, frame)
        return frame

    def publish_raw(self, device_id: str, payload: bytes) -> None:
        """Publish bytes on a device's downlink topic and wait for the broker to take them."""
        info = self._client.publish(downlink_topic(device_id), payload, qos=1)
        info.wait_for_publish(10)

    def wait(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        """Block until `predicate` holds after some uplink arrived; TimeoutError otherwise."""
        with self._state:
            if not self._state.wait_for(predicate, timeout):
                raise TimeoutError("echo gateway waited in vain")

    def _on_connect(self, client: paho.Client, *_args: Any) -> None:
        client.subscribe(UPLINK_SUBSCRIPTION, qos=1)

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            device_id = parse_uplink_topic(msg.topic)
            envelope = decode(bytes(msg.payload), self.keys[device_id])
        except (ProtocolError, KeyError):
            with self._state:
                self.rejected += 1
                self._state.notify_all()
            return
        with self._state:
            self.uplinks.append(envelope)
            duplicate = (device_id, envelope.position) in self._seen
            self._seen.add((device_id, envelope.position))
            self._state.notify_all()
            if self.silent:
                return
        code = AckCode.DUPLICATE if duplicate else self.code
        mac = bytes(msg.payload)[-8:-4]
        reply = Ack(envelope.seq, code, envelope.session, mac)
        ack = encode(Envelope(device_id, 0, 0, reply, envelope.session), self.keys[device_id])
        client.publish(downlink_topic(device_id), ack, qos=1)


def ack_of(uplink: bytes, key: bytes = BOX_KEY) -> bytes:
    """The gateway's ACK for one uplink frame: its session, seq and MAC named."""
    frame = fp.parse_frame(uplink)
    ack = Ack(frame.seq, fp.AckCode.ACCEPTED, frame.session, frame.mac[:4])
    return encode_serial(encode(Envelope(frame.device_id, 0, 0, ack, frame.session), key))


class FakeGateway:
    """The gateway's end of the line: reads serial frames, writes serial bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = fp.SerialStreamDecoder()
        self.items: list[bytes | fp.ProtocolError] = []

    async def read_items(self, count: int, timeout: float = 5.0) -> list[bytes | fp.ProtocolError]:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self.items += self.decoder.feed(await self.reader.read(1024))
        taken, self.items = self.items[:count], self.items[count:]
        return taken

    async def read_frames(self, count: int, key: bytes = BOX_KEY) -> list[Envelope]:
        frames = []
        for item in await self.read_items(count):
            assert isinstance(item, bytes), item
            frames.append(decode(item, key))
        return frames

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@asynccontextmanager
async def gateway(line: SerialConcentrator) -> AsyncIterator[FakeGateway]:
    reader, writer = await asyncio.open_connection("127.0.0.1", line.port)
    await line.wait_connected(5)
    peer = FakeGateway(reader, writer)
    try:
        yield peer
    finally:
        await peer.close()
