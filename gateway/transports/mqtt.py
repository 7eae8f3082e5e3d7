"""The MQTT link: paho-mqtt 2.x driven from the event loop, acks sent only after commit.

paho does no I/O of its own here: its socket is watched by the loop (add_reader /
add_writer), so every paho callback runs on the loop thread and none may raise.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from firmware_protocol import (
    UPLINK_SUBSCRIPTION,
    ProtocolError,
    downlink_topic,
    parse_uplink_topic,
)
from gateway.clock import Clock
from gateway.config import MqttSettings
from gateway.links import InboundFrame, LinkDownError, TransportName
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

Submit = Callable[[InboundFrame], bool]
"""Hand a frame to the pipeline; False if it was dropped (it will never be settled)."""

MAX_INFLIGHT_DOWNLINKS = 1000
"""Downlinks published but not yet PUBACKed by the broker (fewer if the broker asks)."""


class MqttConnectError(Exception):
    """The broker refused or did not answer the connection."""


class MqttLink:
    """A persistent MQTT v5 session subscribed to every device's uplink topic."""

    def __init__(
        self, settings: MqttSettings, submit: Submit, clock: Clock, metrics: GatewayMetrics
    ) -> None:
        self._settings = settings
        self._submit = submit
        self._clock = clock
        self._metrics = metrics
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._connected = asyncio.Event()
        self._connack: asyncio.Future[None] | None = None
        self._lost: asyncio.Future[None] | None = None
        self._misc_task: asyncio.Task[None] | None = None
        self._generation = 0
        self._closing = False
        self._intake = True
        # Downlink flow control is ours, not paho's: paho rescans every message in flight
        # after each PUBACK when it enforces a limit, which costs more than the rest of
        # the downlink path at a few thousand frames per second.
        self._send_quota = MAX_INFLIGHT_DOWNLINKS
        self._inflight = 0
        self._held: deque[tuple[str, bytes]] = deque()
        # Uplink flow control: frames handed to the pipeline and not yet settled. The broker
        # should stop at our Receive Maximum, but mosquitto 2.0 does not once we publish at
        # QoS 1 ourselves; so reading pauses there, and a backlog stays in the broker.
        self._unsettled = 0
        self._reader: tuple[int, paho.Client] | None = None
        self._paused = False

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
        """Whether the session is up."""
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> None:
        """Wait until the first (or next) session is up."""
        async with asyncio.timeout(timeout):
            await self._connected.wait()

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
                    self._metrics.link_failures.labels(self.name).inc()
                    log.warning("MQTT connect failed", extra={"error": str(exc), "retry_s": delay})
                else:
                    delay = self._settings.reconnect_initial_s
                    assert self._lost is not None
                    await self._lost
                    if self._stopping():
                        break
                    self._metrics.link_failures.labels(self.name).inc()
                    log.warning("MQTT connection lost")
                self._teardown_client()
                if self._stopping():
                    break
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter only
                delay = min(delay * 2, self._settings.reconnect_max_s)
        finally:
            self._teardown_client()

    def _stopping(self) -> bool:
        return self._closing

    async def close(self) -> None:
        """Disconnect cleanly (the broker keeps the session); safe to call twice."""
        self._closing = True
        client = self._client
        if client is not None and self.connected:
            client.disconnect()
            lost = self._lost
            if lost is not None:
                try:
                    async with asyncio.timeout(2.0):
                        await asyncio.shield(lost)
                except TimeoutError:
                    log.warning("MQTT disconnect did not complete in time")
        self._teardown_client()

    def stop_intake(self) -> None:
        """Ignore new frames without acking them, so the broker keeps them for next time."""
        self._intake = False

    async def send_downlink(self, device_id: str, frame: bytes) -> None:
        """Publish a downlink frame at QoS 1; LinkDownError while disconnected.

        Once the broker's receive maximum of downlinks awaits their PUBACK, further ones
        are held in order and published as PUBACKs arrive; a reconnect drops them (the
        device retransmits, and its copy is acked again).
        """
        client = self._client
        if client is None or not self.connected:
            raise LinkDownError("MQTT link is down")
        topic = downlink_topic(device_id)
        if self._inflight >= self._send_quota:
            self._held.append((topic, frame))
            return
        self._publish(client, topic, frame)

    def _publish(self, client: paho.Client, topic: str, frame: bytes) -> None:
        info = client.publish(topic, frame, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise LinkDownError(f"MQTT publish failed: {paho.error_string(info.rc)}")
        self._inflight += 1

    # -- connection ---------------------------------------------------------------------

    def _new_client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._settings.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.max_inflight_messages_set(0)  # unlimited in paho: see send_downlink
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
        client.on_publish = self._guard("publish", self._on_publish)
        return client

    async def _connect_once(self) -> None:
        assert self._loop is not None
        self._generation += 1
        self._client = self._new_client()
        self._connack = self._loop.create_future()
        self._lost = self._loop.create_future()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._settings.session_expiry_s
        props.ReceiveMaximum = self._settings.receive_maximum
        client = self._client
        await self._loop.run_in_executor(
            None,
            lambda: client.connect(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=False,
                properties=props,
            ),
        )
        self._misc_task = self._loop.create_task(self._misc_loop(client), name="mqtt-misc")
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
        async with asyncio.timeout(self._settings.connect_timeout_s):
            await asyncio.shield(self._connack)

    async def _misc_loop(self, client: paho.Client) -> None:
        while True:
            if client.loop_misc() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            await asyncio.sleep(1.0)

    def _teardown_client(self) -> None:
        self._connected.clear()
        if self._misc_task is not None:
            self._misc_task.cancel()
            self._misc_task = None
        client, self._client = self._client, None
        self._inflight = 0
        self._held.clear()
        if client is not None:
            # Closes the socket through our callbacks, which unregister it from the loop.
            client._reset_sockets()  # paho has no public close-without-disconnect
        for future in (self._connack, self._lost):
            if future is not None and not future.done():
                future.cancel()

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
        # Without TCP_NODELAY a PUBACK waits for Nagle: 40-90 ms per round trip instead of <1 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        fd = sock.fileno()
        loop = self._loop
        assert loop is not None

        def register() -> None:
            self._reader, self._paused, self._unsettled = (fd, client), False, 0
            loop.add_reader(fd, self._read_ready, client)

        self._in_loop(register)

    def _read_ready(self, client: paho.Client) -> None:
        try:
            client.loop_read()
        except Exception:
            self._metrics.callback_errors.labels("mqtt_read").inc()
            log.exception("MQTT read failed")
            self._mark_lost()
            return
        reader = self._reader
        if (
            self._unsettled >= self._settings.receive_maximum
            and reader is not None
            and reader[1] is client
            and not self._paused
        ):
            assert self._loop is not None
            self._loop.remove_reader(reader[0])
            self._paused = True

    def _frame_settled(self, client: paho.Client) -> None:
        """One frame of this connection left the pipeline; read again once half are out."""
        reader = self._reader
        if reader is None or reader[1] is not client:
            return
        self._unsettled -= 1
        if self._paused and self._unsettled <= self._settings.receive_maximum // 2:
            assert self._loop is not None
            self._paused = False
            self._loop.add_reader(reader[0], self._read_ready, client)

    def _write_ready(self, client: paho.Client) -> None:
        try:
            client.loop_write()
        except Exception:
            self._metrics.callback_errors.labels("mqtt_write").inc()
            log.exception("MQTT write failed")
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
        # The broker's Receive Maximum (absent: 65535) bounds our downlinks in flight.
        receive_maximum = getattr(props, "ReceiveMaximum", None) or MAX_INFLIGHT_DOWNLINKS
        self._send_quota = min(MAX_INFLIGHT_DOWNLINKS, int(receive_maximum))
        client.subscribe(UPLINK_SUBSCRIPTION, options=SubscribeOptions(qos=1))
        self._connected.set()
        self._metrics.link_connects.labels(self.name).inc()
        log.info(
            "MQTT connected",
            extra={"session_present": flags.session_present, "generation": self._generation},
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
        log.info("MQTT disconnected", extra={"reason": str(reason)})
        self._mark_lost()

    def _mark_lost(self) -> None:
        self._connected.clear()
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
        _mid: int,
        _reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        # Every publish of ours is QoS 1, so this is its PUBACK: one more may go out.
        if client is not self._client:
            return
        self._inflight -= 1
        if self._held:
            topic, frame = self._held.popleft()
            try:
                self._publish(client, topic, frame)
            except LinkDownError:
                # The device retransmits; the copy is deduplicated and acked again.
                self._metrics.downlinks_failed.labels("link_down").inc()

    def _on_message(self, client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        if not self._intake:
            return
        generation = self._generation
        mid, qos = msg.mid, msg.qos
        self._unsettled += 1

        def settle() -> None:
            # A message id belongs to one connection; after a reconnect the broker resends.
            if generation == self._generation and self._client is client and self.connected:
                self._frame_settled(client)
                client.ack(mid, qos)

        try:
            topic_device = parse_uplink_topic(msg.topic)
        except ProtocolError as exc:
            self._metrics.frames_rejected.labels("mqtt", exc.reason).inc()
            settle()
            return
        frame = InboundFrame(
            data=bytes(msg.payload),
            link=self,
            received_at=self._clock.now(),
            topic_device_id=topic_device,
            settle=settle,
        )
        if not self._submit(frame):
            self._unsettled -= 1  # dropped, so it will not be settled
