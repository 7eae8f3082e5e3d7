"""The MQTT link: paho-mqtt 2.x driven from the event loop, acks sent only after commit.

paho does no I/O of its own here: its sockets are watched by the loop (add_reader /
add_writer), so every paho callback runs on the loop thread and none may raise.

The link holds two connections to the broker:

- intake: a persistent session subscribed to every uplink topic with manual PUBACKs. It
  never publishes, so the broker honours its Receive Maximum (mosquitto 2.0 stops doing so
  for a client once that client publishes at QoS 1 itself). Its credit is that same
  Receive Maximum: reading pauses if that many frames wait in the pipeline, a safety net
  that a broker keeping its word never trips.
- downlink: a clean session that only publishes: acks and nacks at QoS 0 (the device
  resends until answered, docs/protocol.md §7), indications, CONFIG and PROVISION at QoS 1,
  whose PUBACKs it reads. Its socket is read whatever the intake is doing, so acks never wait
  behind uplink flow control (with one shared connection, pausing intake also stopped the
  PUBACKs of our own acks, and acks waited in the send window for seconds to minutes).
  Measured on mosquitto 2.0.11 (tests/gateway/test_ack_latency.py, 30,000 frames from
  1,000 devices in one burst): commit -> ack received p50 79 ms, p99 0.72 s, worst 1.07 s.

Both connections announce a Maximum Packet Size of MAX_PACKET_SIZE (MQTT v5, 3.1.2.11.4):
the broker must not send the gateway a larger packet, and discards a larger uplink instead
of forwarding it. A frame is at most 228 bytes, so nothing valid is lost, and a 64 MiB
publish never reaches this process's memory, whatever the broker's own limits.

Topics: the device id in `bidao/v2/<shard>/<device_id>/up` is 16 lower-case hex digits. One spelled
in upper case is taken under its lower-case id (so a call for help still gets through),
counted in `bidao_uplink_topics_normalised_total` and logged (rate-limited); the ack goes
to the lower-case downlink topic as always. Any other bad topic is rejected, counted under
its reason in `bidao_frames_rejected_total` and logged within the same budget.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from firmware_protocol import (
    DEFAULT_SHARD,
    UPLINK_SUBSCRIPTION,
    ProtocolError,
    downlink_topic,
    parse_uplink_topic_shard,
)
from gateway.clock import Clock
from gateway.config import MqttSettings
from gateway.ingest.links import InboundFrame, LinkDownError, Submit, TransportName
from gateway.logs import RateLimitedLog
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)
_SHARDS_REMEMBERED = 1_000_000

MAX_INFLIGHT_DOWNLINKS = 1000
"""Downlinks published but not yet PUBACKed by the broker (fewer if the broker asks)."""
DOWNLINK_RECEIVE_MAXIMUM = 10
"""The downlink connection subscribes to nothing; this only bounds a misbehaving broker."""
CLOSE_FLUSH_S = 2.0
READ_BURST = 64
"""Packets read from one connection per wake-up of the event loop, at most."""
MAX_PACKET_SIZE = 1024
"""The largest MQTT packet the gateway accepts (a frame is at most 228 bytes, its topic 64)."""
TOPIC_LOG_INTERVAL_S = 60.0


READ_CHUNK = 65536
"""Bytes taken from the socket per read: many small packets at once."""
_PUBLISH_QOS1 = 0x32
"""PUBLISH (type 3) at QoS 1, as the first byte of its fixed header with DUP and RETAIN off."""
_PUBLISH_FLAGS_IGNORED = 0x09
"""DUP and RETAIN: they change nothing in how an uplink is handled."""

_PUBACK = b"\x40\x02"
"""PUBACK's fixed header: a success needs no reason code or properties (MQTT 5, 3.4.2.1)."""

LeanPublish = Callable[[paho.Client, str, int, bytes], None]
"""A QoS 1 PUBLISH as the intake needs it: (client, topic, packet id, payload)."""


def _varint(n: int) -> bytes:
    """MQTT's variable byte integer."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _qos0_publish(topic: bytes, payload: bytes) -> bytes:
    """A QoS 0 PUBLISH packet (MQTT 5, no properties)."""
    body = len(topic).to_bytes(2, "big") + topic + b"\x00" + payload
    return b"\x30" + _varint(len(body)) + body


class MqttConnectError(Exception):
    """The broker refused or did not answer the connection."""


class _LeanClient(paho.Client):
    """paho's client reading its socket in chunks, with a short path for QoS 1 PUBLISH.

    paho reads a packet with at least three `recv` calls (the command byte, each length
    byte, then the body) and builds a Properties object, an MQTTMessage and a topic match
    for every PUBLISH. The intake receives thousands of small QoS 1 PUBLISHes a second and
    needs none of that (profiled: it was a third of the event loop's time at 1,000 frames/s).
    Here one `recv` takes what the kernel holds (up to READ_CHUNK); every complete QoS 1
    PUBLISH in it goes straight to `lean_publish(client, topic, packet id, payload)` (its
    properties are skipped: an uplink carries none the gateway uses), and every other packet
    (CONNACK, SUBACK, PUBACK, PINGRESP, DISCONNECT, a QoS 0 PUBLISH) is handed to paho's own
    handler as if paho had read it. A packet larger than MAX_PACKET_SIZE (which the broker was
    told it must not send) closes the connection as a protocol error before it is buffered
    whole. `hold()` true stops the processing between packets (reading is being paused); the
    rest waits in `buffered` until the next read.

    This leans on paho 2.x internals (`_sock`, `_in_packet`, `_packet_handle`,
    `_loop_rc_handle`, `_msgtime_mutex`; pyproject.toml allows paho 2.x only).
    tests/gateway/test_mqtt_reader.py drives it byte by byte; test_edges.py and every MQTT
    story run both paths against mosquitto.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean_publish: LeanPublish | None = None
        self.hold: Callable[[], bool] = lambda: False
        self.buffered = bytearray()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:  # noqa: ARG002 - paho's signature
        """Read what the socket holds and handle every complete packet (unless held)."""
        sock = self._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        try:
            data = sock.recv(READ_CHUNK)
        except BlockingIOError:
            data = None
        except OSError:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if data is not None:
            if not data:
                return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
            self.buffered += data
            with self._msgtime_mutex:
                self._last_bytes_received = paho.time_func()
        return self.handle_buffered()

    def handle_buffered(self) -> MQTTErrorCode:
        """Handle the complete packets already read, in order, until `hold()`."""
        buf = self.buffered
        size = len(buf)
        pos = 0
        try:
            while pos < size and not self.hold():
                command = buf[pos]
                length, mult, at = 0, 1, pos + 1
                while True:
                    if at >= size:
                        return MQTTErrorCode.MQTT_ERR_SUCCESS  # the length is still coming
                    byte = buf[at]
                    at += 1
                    length += (byte & 0x7F) * mult
                    mult *= 128
                    if not byte & 0x80:
                        break
                    if at - pos > 4:
                        return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_PROTOCOL)
                if length > MAX_PACKET_SIZE:
                    log.warning("MQTT packet over the announced maximum", extra={"bytes": length})
                    return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_PROTOCOL)
                end = at + length
                if end > size:
                    return MQTTErrorCode.MQTT_ERR_SUCCESS  # the body is still coming
                pos = end
                lean = self.lean_publish
                if lean is not None and command & ~_PUBLISH_FLAGS_IGNORED == _PUBLISH_QOS1:
                    rc = self._lean(lean, bytes(buf[at:end]))
                else:
                    rc = self._paho_handles(command, bytes(buf[at:end]))
                if rc:
                    return self._loop_rc_handle(rc)
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        finally:
            del buf[:pos]

    def _lean(self, handle: LeanPublish, body: bytes) -> MQTTErrorCode:
        """A QoS 1 PUBLISH (MQTT v5): topic, packet id, properties skipped, payload."""
        size = len(body)
        if size < 4:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        topic_end = 2 + (body[0] << 8 | body[1])
        at = topic_end + 2
        if at >= size:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        mid = body[topic_end] << 8 | body[topic_end + 1]
        props, mult = 0, 1
        while True:
            if at >= size:
                return MQTTErrorCode.MQTT_ERR_PROTOCOL
            byte = body[at]
            at += 1
            props += (byte & 0x7F) * mult
            mult *= 128
            if not byte & 0x80:
                break
        at += props
        if at > size or mid == 0:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        try:
            topic = body[2:topic_end].decode("utf-8")
        except UnicodeDecodeError:
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        handle(self, topic, mid, body[at:])
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def send_raw(self, packets: bytes) -> MQTTErrorCode:
        """Queue whole packets built by the caller, written in order with paho's own.

        Queued as one entry of paho's outgoing queue under command 0 (no packet type), so
        paho writes them (partial writes included) and keeps the keepalive clock, but does
        none of the per-message bookkeeping of `publish` or `ack`: no message info, lock,
        packet id, callback or syscall per packet.
        """
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        return self._packet_queue(0, packets, 0, 0)

    def _paho_handles(self, command: int, body: bytes) -> MQTTErrorCode:
        """Any other packet, through paho's own handler, as paho's reader would pass it."""
        self._in_packet = {
            "command": command,
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": len(body),
            "packet": bytearray(body),
            "to_process": 0,
            "pos": 0,
        }
        try:
            rc = self._packet_handle()
        except MalformedPacket:
            rc = MQTTErrorCode.MQTT_ERR_PROTOCOL
        self._in_packet = {
            "command": 0,
            "have_remaining": 0,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": 0,
            "packet": bytearray(b""),
            "to_process": 0,
            "pos": 0,
        }
        return rc


class _Connection:
    """One MQTT v5 connection on the event loop, reconnected with capped backoff and jitter."""

    def __init__(
        self,
        role: str,
        settings: MqttSettings,
        metrics: GatewayMetrics,
        *,
        client_id: str,
        persistent: bool,
        receive_maximum: int,
        on_connected: Callable[[paho.Client, Properties | None], None],
        on_message: LeanPublish | None = None,
        on_publish: Callable[[paho.Client, int], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        on_state: Callable[[], None] | None = None,
    ) -> None:
        self.role = role
        self._settings = settings
        self._metrics = metrics
        self._client_id = client_id
        self._persistent = persistent
        self._receive_maximum = receive_maximum
        self._on_connected = on_connected
        self._on_message_cb = on_message
        self._on_publish_cb = on_publish
        self._on_lost_cb = on_lost
        self._on_state_cb = on_state
        self.client: _LeanClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self.connected = asyncio.Event()
        self._connack: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._misc_task: asyncio.Task[None] | None = None
        self.generation = 0
        self._closing = False
        self._reader: tuple[int, _LeanClient] | None = None
        self._paused = False
        self._delivered = 0
        """Messages and PUBACKs handed to the callbacks: what one read burst made progress on."""

    async def run(self) -> None:
        """Connect, stay connected, reconnect with capped exponential backoff and jitter."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        delay = self._settings.reconnect_initial_s
        try:
            while not self._stopping():
                try:
                    await self._connect_once()
                except (OSError, MqttConnectError, TimeoutError) as exc:
                    self._metrics.link_failures.labels(self.role).inc()
                    log.warning(
                        "MQTT connect failed",
                        extra={"connection": self.role, "error": str(exc), "retry_s": delay},
                    )
                else:
                    delay = self._settings.reconnect_initial_s
                    assert self._lost is not None
                    await self._lost
                    if self._stopping():
                        break
                    self._metrics.link_failures.labels(self.role).inc()
                    log.warning("MQTT connection lost", extra={"connection": self.role})
                self._teardown()
                if self._stopping():
                    break
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter only
                delay = min(delay * 2, self._settings.reconnect_max_s)
        finally:
            self._teardown()

    def _stopping(self) -> bool:
        return self._closing

    async def close(self) -> None:
        """Disconnect cleanly (a persistent session stays with the broker); safe to call twice."""
        self._closing = True
        client = self.client
        if client is not None and self.connected.is_set():
            client.disconnect()
            lost = self._lost
            if lost is not None:
                try:
                    async with asyncio.timeout(CLOSE_FLUSH_S):
                        await asyncio.shield(lost)
                except TimeoutError:
                    log.warning("MQTT disconnect did not complete in time")
        self._teardown()

    def pause_reading(self) -> None:
        """Stop reading this connection's socket (its data waits in the kernel and the broker)."""
        reader = self._reader
        if reader is not None and not self._paused:
            assert self._loop is not None
            self._loop.remove_reader(reader[0])
            self._paused = True

    def resume_reading(self) -> None:
        """Read again after `pause_reading`."""
        reader = self._reader
        if reader is not None and self._paused:
            assert self._loop is not None
            self._paused = False
            self._loop.add_reader(reader[0], self._read_ready, reader[1])
            if reader[1].buffered:  # packets read before the pause: the socket may stay quiet
                self._loop.call_soon(self._read_ready, reader[1])

    @property
    def paused(self) -> bool:
        """Whether reading is paused."""
        return self._paused

    def _new_client(self) -> _LeanClient:
        client = _LeanClient(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        if self._settings.username:
            client.username_pw_set(
                self._settings.user_of(self.role), self._settings.password.get_secret_value()
            )
        client.max_inflight_messages_set(0)  # unlimited in paho: the link keeps its own window
        client.max_queued_messages_set(0)
        client.on_socket_open = self._guard("socket_open", self._on_socket_open)
        client.on_socket_close = self._guard("socket_close", self._on_socket_close)
        client.on_socket_register_write = self._guard("register_write", self._on_register_write)
        client.on_socket_unregister_write = self._guard(
            "unregister_write", self._on_unregister_write
        )
        client.on_connect = self._guard("connect", self._on_connect)
        client.on_disconnect = self._guard("disconnect", self._on_disconnect)
        client.on_message = self._guard("message", self._on_message)
        client.hold = lambda: self._paused
        if self._on_message_cb is not None:
            client.lean_publish = self._guard("message", self._on_lean_publish)
        client.on_publish = self._guard("publish", self._on_publish)
        return client

    async def _connect_once(self) -> None:
        assert self._loop is not None
        self.generation += 1
        self.client = self._new_client()
        self._connack = self._loop.create_future()
        self._lost = self._loop.create_future()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._settings.session_expiry_s if self._persistent else 0
        props.ReceiveMaximum = self._receive_maximum
        props.MaximumPacketSize = MAX_PACKET_SIZE
        client = self.client
        await self._loop.run_in_executor(
            None,
            lambda: client.connect(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=not self._persistent,
                properties=props,
            ),
        )
        self._misc_task = self._loop.create_task(
            self._misc_loop(client), name=f"mqtt-{self.role}-misc"
        )
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        async with asyncio.timeout(self._settings.connect_timeout_s):
            await asyncio.shield(self._connack)

    async def _misc_loop(self, client: paho.Client) -> None:
        while True:
            if client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            await asyncio.sleep(1.0)

    def _teardown(self) -> None:
        self.connected.clear()
        self._state_changed()
        if self._misc_task is not None:
            self._misc_task.cancel()
            self._misc_task = None
        client, self.client = self.client, None
        if client is not None:
            # Closes the socket through our callbacks, which unregister it from the loop.
            client._reset_sockets()  # paho has no public close-without-disconnect
        for future in (self._connack, self._lost):
            if future is None:
                continue
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                # Closing the socket fails a CONNACK still pending: a connect awaiting it has
                # the error; one that was itself cancelled never looks (never retrieved).
                future.exception()
        if self._on_lost_cb is not None:
            self._on_lost_cb()

    def _state_changed(self) -> None:
        if self._on_state_cb is not None:
            self._on_state_cb()

    # -- paho callbacks (loop thread, except socket_open/register_write during connect) ----

    def _guard(self, where: str, func: Callable[..., None]) -> Callable[..., None]:
        """Wrap a paho callback so that no exception can reach paho."""

        def guarded(*args: Any) -> None:
            try:
                func(*args)
            except Exception:
                self._metrics.callback_errors.labels(f"mqtt_{where}").inc()
                log.exception("error in MQTT callback", extra={"callback": where})

        return guarded

    def _in_loop(self, func: Callable[[], None]) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            func()
        else:
            self._loop.call_soon_threadsafe(func)

    def _on_socket_open(self, client: paho.Client, _userdata: Any, sock: Any) -> None:
        assert isinstance(client, _LeanClient)
        # Without TCP_NODELAY a PUBACK waits for Nagle: 40-90 ms per round trip instead of <1 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fd = sock.fileno()
        loop = self._loop
        assert loop is not None

        def register() -> None:
            self._reader, self._paused = (fd, client), False
            loop.add_reader(fd, self._read_ready, client)

        self._in_loop(register)

    def _read_ready(self, client: _LeanClient) -> None:
        try:
            # paho reads one packet per loop_read on a connection with nothing of its own in
            # flight (the intake), so a burst costs a trip round the event loop per message.
            # Read on while packets keep coming, up to READ_BURST; a pause takes effect before
            # the next packet, and whatever is left wakes the loop again (level-triggered).
            for _ in range(READ_BURST):
                before = self._delivered
                client.loop_read()
                if self._paused or self._delivered == before or client is not self.client:
                    break
        except Exception:
            self._metrics.callback_errors.labels("mqtt_read").inc()
            log.exception("MQTT read failed", extra={"connection": self.role})
            self._mark_lost()

    def _write_ready(self, client: paho.Client) -> None:
        try:
            client.loop_write()
        except Exception:
            self._metrics.callback_errors.labels("mqtt_write").inc()
            log.exception("MQTT write failed", extra={"connection": self.role})
            self._mark_lost()

    def _on_socket_close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        assert self._loop is not None
        self._reader = None
        fd = sock.fileno()
        if fd >= 0:
            self._loop.remove_reader(fd)
            self._loop.remove_writer(fd)
        self._mark_lost()

    def _on_register_write(self, client: paho.Client, _userdata: Any, sock: Any) -> None:
        fd = sock.fileno()
        loop = self._loop
        assert loop is not None
        self._in_loop(lambda: loop.add_writer(fd, self._write_ready, client))

    def _on_unregister_write(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        fd = sock.fileno()
        loop = self._loop
        assert loop is not None
        if fd >= 0:

            def unregister() -> None:
                loop.remove_writer(fd)

            self._in_loop(unregister)

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        connack = self._connack
        if reason.is_failure:
            if connack is not None and not connack.done():
                connack.set_exception(MqttConnectError(f"broker refused: {reason}"))
            return
        self._on_connected(client, props)
        self.connected.set()
        self._state_changed()
        self._metrics.link_connects.labels(self.role).inc()
        log.info(
            "MQTT connected",
            extra={
                "connection": self.role,
                "session_present": flags.session_present,
                "generation": self.generation,
            },
        )
        if connack is not None and not connack.done():
            connack.set_result(None)

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        log.info("MQTT disconnected", extra={"connection": self.role, "reason": str(reason)})
        self._mark_lost()

    def _mark_lost(self) -> None:
        self.connected.clear()
        self._state_changed()
        lost = self._lost
        if lost is not None and not lost.done():
            lost.set_result(None)
        connack = self._connack
        if connack is not None and not connack.done():
            connack.set_exception(MqttConnectError("connection closed before CONNACK"))

    def _on_publish(
        self,
        client: paho.Client,
        _userdata: Any,
        mid: int,
        _reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._delivered += 1
        if client is self.client and self._on_publish_cb is not None:
            self._on_publish_cb(client, mid)

    def _on_message(self, client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        """A PUBLISH paho decoded (not QoS 1: those take the lean path); packet id 0 at QoS 0."""
        self._on_lean_publish(client, msg.topic, msg.mid if msg.qos else 0, bytes(msg.payload))

    def _on_lean_publish(self, client: paho.Client, topic: str, mid: int, payload: bytes) -> None:
        self._delivered += 1
        if self._on_message_cb is not None:
            self._on_message_cb(client, topic, mid, payload)


class MqttLink:
    """Uplinks from a persistent subscription, downlinks over a connection of their own."""

    def __init__(
        self, settings: MqttSettings, submit: Submit, clock: Clock, metrics: GatewayMetrics
    ) -> None:
        self._settings = settings
        self._submit = submit
        self._clock = clock
        self._metrics = metrics
        self._intake_open = True
        self._credit = settings.receive_maximum
        self._unsettled = 0
        # Downlink flow control is ours, not paho's: paho rescans every message in flight
        # after each PUBACK when it enforces a limit, which costs more than the rest of
        # the downlink path at a few thousand frames per second.
        self._send_quota = MAX_INFLIGHT_DOWNLINKS
        self._inflight = 0
        self._awaiting: dict[int, tuple[str, bytes]] = {}
        """QoS 1 downlinks published and waiting for their PUBACK: packet id -> (topic, frame)."""
        self._pubacks: list[int] = []
        """Packet ids settled in this turn of the loop, PUBACKed together at its end."""
        self._pubacks_client: paho.Client | None = None
        self._shards: dict[str, str] = {}
        """The shard each device last published in (its downlink topic)."""
        self._held: deque[tuple[str, bytes]] = deque()
        """Downlinks waiting for a slot in the broker's receive window, or for a connection."""
        self._topic_log = RateLimitedLog(log, TOPIC_LOG_INTERVAL_S)
        self._intake = _Connection(
            "mqtt",
            settings,
            metrics,
            client_id=settings.client_id,
            persistent=True,
            receive_maximum=settings.receive_maximum,
            on_connected=self._intake_connected,
            on_message=self._on_message,
            on_state=self._state_changed,
        )
        self._downlink = _Connection(
            "mqtt_downlink",
            settings,
            metrics,
            client_id=f"{settings.client_id}-down",
            persistent=False,
            receive_maximum=DOWNLINK_RECEIVE_MAXIMUM,
            on_connected=self._downlink_connected,
            on_publish=self._on_puback,
            on_lost=self._downlink_lost,
            on_state=self._state_changed,
        )
        self._state_listeners: list[Callable[[bool, float], None]] = []
        self._reported_up = False

    @property
    def name(self) -> str:
        """The link's name."""
        return "mqtt"

    @property
    def transport(self) -> TransportName:
        """The kind of transport."""
        return "mqtt"

    @property
    def connected(self) -> bool:
        """Whether both connections are up."""
        return self._intake.connected.is_set() and self._downlink.connected.is_set()

    @property
    def intake_client(self) -> paho.Client | None:
        """The paho client of the subscription (for benchmarks that time PUBACKs)."""
        return self._intake.client

    @property
    def unsettled(self) -> int:
        """Frames of the current intake session handed to the pipeline and not yet settled."""
        return self._unsettled

    @property
    def held(self) -> int:
        """Downlinks waiting for room in the broker's receive window."""
        return len(self._held)

    @property
    def in_flight(self) -> int:
        """QoS 1 downlinks published and waiting for their PUBACK (replies never count)."""
        return self._inflight

    def on_state(self, listener: Callable[[bool, float], None]) -> None:
        """Have `listener(up, at)` called whenever `connected` changes (on the event loop)."""
        self._state_listeners.append(listener)

    def _state_changed(self) -> None:
        up = self.connected
        if up == self._reported_up:
            return
        self._reported_up = up
        at = self._clock.now()
        for listener in self._state_listeners:
            listener(up, at)

    async def wait_connected(self, timeout: float) -> None:
        """Wait until both connections are up."""
        async with asyncio.timeout(timeout):
            await self._downlink.connected.wait()
            await self._intake.connected.wait()

    async def run(self) -> None:
        """Keep both connections up until cancelled."""
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._downlink.run(), name="mqtt-downlink")
            tg.create_task(self._intake.run(), name="mqtt-intake")

    async def close(self) -> None:
        """Disconnect both (the intake session stays with the broker); safe to call twice."""
        await self._intake.close()
        # Acks already handed over get a moment to leave before the downlink goes.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_FLUSH_S
        while (self._held or self._inflight) and self._downlink.connected.is_set():
            if loop.time() > deadline:
                log.warning("MQTT downlinks still unconfirmed at close", extra={"count": self.held})
                break
            await asyncio.sleep(0.01)
        await self._downlink.close()

    def stop_intake(self) -> None:
        """Ignore new frames without acking them, so the broker keeps them for next time."""
        self._intake_open = False

    async def send_downlink(self, device_id: str, frame: bytes) -> None:
        """Publish a downlink frame at QoS 1; LinkDownError while disconnected.

        Once the broker's receive maximum of downlinks awaits their PUBACK, further ones
        are held in order and published as PUBACKs arrive. A downlink handed over is the
        link's to deliver: if the connection is lost before the broker confirmed it (PUBACK),
        it is published again, in order, on the next connection. A box that had it already
        refuses the copy as stale and says so in a heartbeat; nothing else changes.
        """
        client = self._downlink.client
        if client is None or not self._downlink.connected.is_set():
            raise LinkDownError("MQTT downlink connection is down")
        # The reply goes to the shard the device last published in.
        topic = downlink_topic(device_id, self._shards.get(device_id, DEFAULT_SHARD))
        if self._held or self._inflight >= self._send_quota:
            self._held.append((topic, frame))
            return
        self._publish(client, topic, frame)

    async def send_replies(self, frames: Sequence[tuple[str, bytes]]) -> None:
        """Publish acks and nacks at QoS 0, in order; LinkDownError while disconnected.

        No PUBACK and no flow-control slot: the device resends its frame until it is
        answered, so a reply lost with a connection is answered again (docs/protocol.md §7).
        """
        client = self._downlink.client
        if client is None or not self._downlink.connected.is_set():
            raise LinkDownError("MQTT downlink connection is down")
        shards = self._shards
        packets = b"".join(
            _qos0_publish(downlink_topic(d, shards.get(d, DEFAULT_SHARD)).encode(), frame)
            for d, frame in frames
        )
        rc = client.send_raw(packets)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise LinkDownError(f"MQTT publish failed: {paho.error_string(rc)}")

    def _publish(self, client: paho.Client, topic: str, frame: bytes) -> None:
        info = client.publish(topic, frame, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise LinkDownError(f"MQTT publish failed: {paho.error_string(info.rc)}")
        self._inflight += 1
        self._awaiting[info.mid] = (topic, frame)

    def _publish_held(self, client: paho.Client) -> None:
        """Publish held downlinks, in order, while the broker's receive window has room."""
        while self._held and self._inflight < self._send_quota:
            topic, frame = self._held[0]
            try:
                self._publish(client, topic, frame)
            except LinkDownError:
                return  # the connection is going: kept for the next one
            self._held.popleft()

    # -- downlink connection ----------------------------------------------------------------

    def _downlink_connected(self, client: paho.Client, props: Properties | None) -> None:
        # The broker's Receive Maximum (absent: 65535) bounds our downlinks in flight.
        receive_maximum = getattr(props, "ReceiveMaximum", None) or MAX_INFLIGHT_DOWNLINKS
        self._send_quota = min(MAX_INFLIGHT_DOWNLINKS, int(receive_maximum))
        if self._held:
            log.info(
                "MQTT downlinks the lost connection had not confirmed go out on this one: %d",
                len(self._held),
            )
            self._metrics.downlinks_resent.inc(len(self._held))
            self._publish_held(client)

    def _downlink_lost(self) -> None:
        # What the broker did not confirm may not have reached it: first in line next time.
        self._held.extendleft(reversed(self._awaiting.values()))
        self._inflight = 0
        self._awaiting.clear()

    def _on_puback(self, client: paho.Client, mid: int) -> None:
        # paho reports a QoS 0 reply once written and a QoS 1 downlink once PUBACKed; only
        # the latter frees a slot for one more.
        if self._awaiting.pop(mid, None) is None:
            return
        self._inflight -= 1
        self._publish_held(client)

    # -- intake connection ----------------------------------------------------------------

    def _intake_connected(self, client: paho.Client, _props: Properties | None) -> None:
        self._unsettled = 0
        self._intake.resume_reading()
        client.subscribe(UPLINK_SUBSCRIPTION, options=SubscribeOptions(qos=1))

    def _queue_puback(self, client: paho.Client, mid: int) -> None:
        """PUBACK `mid` with the others settled in this turn of the loop, in one write."""
        if self._pubacks and client is not self._pubacks_client:
            self._flush_pubacks()
        if not self._pubacks:
            self._pubacks_client = client
            asyncio.get_running_loop().call_soon(self._flush_pubacks)
        self._pubacks.append(mid)

    def _flush_pubacks(self) -> None:
        mids, self._pubacks = self._pubacks, []
        intake = self._intake.client
        # A packet id belongs to its connection: after a reconnect the broker resends.
        if not mids or intake is None or self._pubacks_client is not intake:
            return
        if not self._intake.connected.is_set():
            return
        intake.send_raw(b"".join(_PUBACK + mid.to_bytes(2, "big") for mid in mids))

    def _frame_settled(self) -> None:
        """One frame of the current session left the pipeline; read again once half are out."""
        self._unsettled -= 1
        if self._intake.paused and self._unsettled <= self._credit // 2:
            self._intake.resume_reading()

    def _on_message(self, client: paho.Client, topic: str, mid: int, payload: bytes) -> None:
        """An uplink PUBLISH; `mid` 0 when it came at QoS 0 (nothing to acknowledge)."""
        if not self._intake_open:
            return
        generation = self._intake.generation
        self._unsettled += 1
        settled = False

        def settle() -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            # A message id belongs to one connection; after a reconnect the broker resends.
            if (
                generation == self._intake.generation
                and self._intake.client is client
                and self._intake.connected.is_set()
            ):
                self._frame_settled()
                if mid:
                    self._queue_puback(client, mid)

        if self._unsettled >= self._credit and not self._intake.paused:
            self._metrics.link_read_pauses.labels(self.name).inc()
            self._intake.pause_reading()
        parsed = self._topic_device(topic)
        if parsed is None:
            settle()
            return
        self._submit(
            InboundFrame(
                data=payload,
                link=self,
                received_at=self._clock.now(),
                topic_device_id=parsed[1],
                settle=settle,
            )
        )

    def _topic_device(self, topic: str) -> tuple[str, str] | None:
        """The shard and device id an uplink topic names (an upper-case id taken as lower).

        None: the topic is rejected (counted and logged). The device's shard is noted: its
        downlinks go to the same shard.
        """
        now = self._clock.now()
        try:
            shard, device_id = parse_uplink_topic_shard(topic)
        except ProtocolError as exc:
            parts = topic.split("/")
            lowered = (
                "/".join([*parts[:3], parts[3].lower(), *parts[4:]]) if len(parts) == 5 else topic
            )
            try:
                if lowered == topic:
                    raise
                shard, device_id = parse_uplink_topic_shard(lowered)
            except ProtocolError:
                self._metrics.frames_rejected.labels("mqtt", exc.reason).inc()
                self._topic_log.warning(
                    (exc.reason,), now, "uplink topic rejected", reason=exc.reason, topic=topic[:80]
                )
                return None
            self._metrics.uplink_topics_normalised.labels("mqtt").inc()
            self._topic_log.warning(
                (device_id, "upper_case_topic"),
                now,
                "device id in the uplink topic is upper case; taken as lower case, acks go to "
                "the lower-case downlink topic",
                device_id=device_id,
                topic=topic,
            )
        if self._shards.get(device_id) != shard:
            if len(self._shards) > _SHARDS_REMEMBERED:
                self._shards.clear()
            self._shards[device_id] = shard
        return shard, device_id
