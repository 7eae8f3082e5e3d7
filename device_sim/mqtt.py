"""Many simulated devices behind one paho-mqtt client, as a test or demo fleet.

paho runs its network loop on its own thread. Downlinks are handed to the addressed
`SimulatedDevice` on that thread (the device guards its state with a lock), then waiters
are woken: asyncio waiters through `call_soon_threadsafe`, blocking waiters through a
condition variable. No exception leaves a paho callback; each is counted and logged.

A fleet made with `network_thread=False` (async use only) drives paho from the event loop
instead: the socket's reader and writer are the loop's, so the frames published in one
turn of the loop leave in one write and no thread hands the interpreter back and forth; a
load generator needs that to keep thousands of frames a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from device_sim.device import SimulatedDevice, fleet_identity
from device_sim.resend import Resender, SimClock
from firmware_protocol import Ack, uplink_topic

__all__ = ["DOWNLINK_SUBSCRIPTION", "MqttFleet", "fleet_identity"]

log = logging.getLogger(__name__)

DOWNLINK_SUBSCRIPTION = "bidao/v2/+/+/down"
MAX_INFLIGHT = 1000
KEEPALIVE_S = 30


class MqttFleet:
    """Publishes the devices' uplinks at QoS 1 and hands each downlink to its device.

    Blocking use: `start()` / `stop()` (or `with`), `publish()`, `wait_all_acked_blocking()`.
    Async use: `async with`, `await send()`, `await wait_all_acked()`.

    Given a `clock`, each box resends its unacknowledged frames by itself as firmware does
    (backoff on that clock, reset by any ACK: `device_sim.resend`; async use only). Without
    one the caller resends with `retransmit_pending()`, as a load generator does.
    """

    def __init__(
        self,
        host: str,
        port: int,
        devices: Iterable[SimulatedDevice],
        client_id: str | None = None,
        *,
        session_expiry_s: int = 0,
        connect_timeout_s: float = 10.0,
        clock: SimClock | None = None,
        username: str | None = None,
        password: str | None = None,
        max_inflight: int = MAX_INFLIGHT,
        network_thread: bool = True,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        """Broker login (a box logs in as its device id, docs/protocol.md section 7.1)."""
        self.password = password
        self.devices = {d.device_id: d for d in devices}
        self.client_id = client_id or f"bidao-sim-{id(self):x}"
        self.session_expiry_s = session_expiry_s
        self.max_inflight = max_inflight
        """paho's window of unacknowledged publishes; 0: none, so the caller keeps within the
        broker's receive maximum (`in_flight`). paho rescans all its messages on every
        PUBACK while a window is set: a load generator cannot afford that."""
        self.protocol = protocol
        """MQTT 5 or 3.1.1 (a box may speak either; 3.1.1 parses no properties per packet)."""
        if session_expiry_s > 0 and protocol != MQTTProtocolVersion.MQTTv5:
            raise ValueError("a session expiry needs MQTT 5")
        self.network_thread = network_thread
        """False: in async use, paho is driven from the event loop (no network thread)."""
        self._misc: asyncio.Task[None] | None = None
        self.connect_timeout_s = connect_timeout_s
        self._client: paho.Client | None = None
        self._ready = threading.Event()
        self._connect_refused: str | None = None
        self._state = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._wake_scheduled = False
        self.callback_errors = 0
        self.unrouted_downlinks = 0
        self.downlinks = 0
        self.handed = 0
        """QoS 1 publishes handed to paho."""
        self.published = 0
        """QoS 1 publishes the broker has acknowledged (PUBACK)."""
        self.connects = 0
        self.disconnects = 0
        self.resender = None if clock is None else Resender(clock, self._resend)
        """The boxes' resend timers, when the fleet was given a clock."""

    def add(self, device: SimulatedDevice) -> None:
        """Put another device behind this client."""
        self.devices[device.device_id] = device
        if self.resender is not None:
            self.resender.add(device)

    async def _resend(self, device: SimulatedDevice, frame: bytes) -> None:
        self.publish(device.device_id, frame)

    @property
    def in_flight(self) -> int:
        """Publishes handed to paho that the broker has not acknowledged yet."""
        return self.handed - self.published

    def pending_total(self) -> int:
        """Frames of all devices still waiting for their ack."""
        return sum(d.pending_count for d in list(self.devices.values()))

    # Blocking API.

    def start(self) -> None:
        """Connect, subscribe to downlinks and return once the subscription is granted."""
        if self._client is not None:
            return
        client = self._new_client()
        try:
            client.connect(self.host, self.port, KEEPALIVE_S, **self._session_args())
            client.loop_start()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _new_client(self) -> paho.Client:
        self._ready.clear()
        self._connect_refused = None
        client = (paho.Client if self.network_thread else _LeanClient)(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self.protocol,
        )
        if isinstance(client, _LeanClient):
            client.lean_puback = self._on_lean_puback
            client.lean_downlink = self._deliver
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        client.max_inflight_messages_set(self.max_inflight)
        client.max_queued_messages_set(0)  # unlimited: bulk sends must not be refused
        client.reconnect_delay_set(1, 2)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self._client = client
        return client

    def _wait_ready(self) -> None:
        self._raise_unless_ready(self._ready.wait(self.connect_timeout_s))

    def _raise_unless_ready(self, ready: bool) -> None:
        if not ready:
            raise TimeoutError(f"no subscription on {self.host}:{self.port} in time")
        if self._connect_refused is not None:
            raise ConnectionRefusedError(f"broker refused the fleet: {self._connect_refused}")

    def _session_args(self) -> dict[str, Any]:
        if self.session_expiry_s <= 0:
            return {}
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho
        props.SessionExpiryInterval = self.session_expiry_s
        return {"clean_start": False, "properties": props}

    def stop(self) -> None:
        """Disconnect and stop the network thread; safe to call twice."""
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        client.loop_stop()

    def __enter__(self) -> MqttFleet:
        """Start (blocking)."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop (blocking)."""
        self.stop()

    def publish(self, device_id: str, frame: bytes) -> None:
        """Queue raw bytes on a device's uplink topic at QoS 1 (paho resends after a reconnect)."""
        client = self._client
        if client is None:
            raise RuntimeError("fleet is not started")
        info = client.publish(uplink_topic(device_id), frame, qos=1)
        self.handed += 1
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise ConnectionError(paho.error_string(info.rc))

    def wait_all_acked_blocking(self, timeout: float) -> None:
        """Block until no device has a frame waiting for its ack; TimeoutError otherwise."""
        with self._state:
            if not self._state.wait_for(lambda: self.pending_total() == 0, timeout):
                raise TimeoutError(f"{self.pending_total()} frames still unacknowledged")

    def retransmit_pending_blocking(self) -> int:
        """Publish every unacknowledged frame again; returns how many."""
        count = 0
        for device in list(self.devices.values()):
            for frame in device.retransmit_due():
                self.publish(device.device_id, frame)
                count += 1
        return count

    # Async API: the blocking calls run in a worker thread.

    async def __aenter__(self) -> MqttFleet:
        """Connect, subscribe to downlinks and return once the subscription is granted."""
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        if not self.network_thread:
            try:
                await self._start_on_loop(self._loop)
            except BaseException:
                await self.close()
                raise
            return self
        starting = asyncio.create_task(asyncio.to_thread(self.start), name="sim-mqtt-start")
        try:
            await asyncio.shield(starting)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                # The worker thread cannot be interrupted: let it finish, then undo it.
                with contextlib.suppress(Exception):
                    await starting
                await asyncio.to_thread(self.stop)
            self._loop = None
            raise
        if self.resender is not None:
            self.resender.start(list(self.devices.values()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Disconnect."""
        await self.close()

    async def close(self) -> None:
        """Stop the resend timers, disconnect and stop the network thread; safe to call twice."""
        if self.resender is not None:
            await self.resender.stop()
        if self.network_thread:
            await asyncio.to_thread(self.stop)
        else:
            await self._stop_on_loop()
        self._loop = None

    # Driven from the event loop (network_thread=False).

    async def _start_on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        client = self._new_client()

        def socket_open(_c: paho.Client, userdata: Any, sock: Any) -> None:
            self._on_socket_open(client, userdata, sock)
            loop.add_reader(sock, client.loop_read)

        def socket_close(_c: paho.Client, _userdata: Any, sock: Any) -> None:
            loop.remove_reader(sock)
            loop.remove_writer(sock)

        client.on_socket_open = socket_open
        client.on_socket_close = socket_close
        client.on_socket_register_write = lambda _c, _u, sock: loop.add_writer(
            sock, client.loop_write
        )

        def unregister_write(_c: paho.Client, _userdata: Any, sock: Any) -> None:
            loop.remove_writer(sock)

        client.on_socket_unregister_write = unregister_write
        # A loopback connect: the loop waits no longer than a TCP handshake.
        client.connect(self.host, self.port, KEEPALIVE_S, **self._session_args())
        self._misc = loop.create_task(self._keep_alive(client), name="sim-mqtt-misc")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.connect_timeout_s):
                while not self._ready.is_set():
                    self._changed.clear()
                    await self._changed.wait()  # set by the CONNACK or SUBACK's callback
        self._raise_unless_ready(self._ready.is_set())

    async def _keep_alive(self, client: paho.Client) -> None:
        """Pings the broker when due; reconnects a lost connection, as paho's thread would."""
        while True:
            await asyncio.sleep(1.0)
            if client.loop_misc() == MQTTErrorCode.MQTT_ERR_NO_CONN:
                try:
                    client.reconnect()
                except OSError as exc:
                    log.info("fleet cannot reconnect yet: %s", exc)

    async def _stop_on_loop(self) -> None:
        misc, self._misc = self._misc, None
        if misc is not None:
            misc.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await misc
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        client.loop_write()  # the DISCONNECT leaves now; paho closes the socket after it

    async def send(self, device_id: str, frame: bytes) -> None:
        """Publish raw bytes on a device's uplink topic at QoS 1 (its resend timer starts)."""
        self.publish(device_id, frame)
        if self.resender is not None:
            self.resender.queued(device_id)
        await asyncio.sleep(0)  # let a bulk sender yield to the event loop

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
                    # Clear before checking: a wake-up after the check sets it again.
                    self._changed.clear()
                    if self.pending_total() == 0:
                        return
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"{self.pending_total()} frames still unacknowledged") from None

    # Waking waiters; called on paho's thread.

    def _notify(self) -> None:
        with self._state:
            self._state.notify_all()
            if not self.network_thread:
                self._changed.set()  # on the loop's own thread
                return
            loop = self._loop
            if loop is None or self._wake_scheduled:
                return
            self._wake_scheduled = True
        try:
            loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: nobody waits there any more
            with self._state:
                self._wake_scheduled = False

    def _wake(self) -> None:
        with self._state:
            self._wake_scheduled = False
        self._changed.set()

    # paho callbacks run on paho's network thread; none may raise.

    def _on_socket_open(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception:
            self.callback_errors += 1
            log.exception("fleet could not set TCP_NODELAY")

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        _flags: paho.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        try:
            if reason.is_failure:
                self._connect_refused = str(reason)
                self._ready.set()
                self._notify()
                log.warning("broker refused the fleet: %s", reason)
                return
            self.connects += 1
            # Again on every reconnect: without a persistent session the broker forgot it.
            client.subscribe(DOWNLINK_SUBSCRIPTION, qos=1)
        except Exception:
            self.callback_errors += 1
            log.exception("fleet on_connect failed")

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _props: Properties | None,
    ) -> None:
        try:
            if any(r.is_failure for r in reasons):
                self._connect_refused = f"subscription refused: {reasons}"
            self._ready.set()
            self._notify()
        except Exception:
            self.callback_errors += 1
            log.exception("fleet on_subscribe failed")

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        try:
            self.disconnects += 1
            if reason.is_failure:
                log.info("fleet lost the broker (%s); paho reconnects", reason)
        except Exception:
            self.callback_errors += 1
            log.exception("fleet on_disconnect failed")

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        _reason: ReasonCode,
        _props: Properties,
    ) -> None:
        self.published += 1  # an int increment cannot raise

    def _on_lean_puback(self) -> None:
        self.published += 1

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        self._deliver(msg.topic, bytes(msg.payload))

    def _deliver(self, topic: str, payload: bytes) -> None:
        try:
            parts = topic.split("/")
            device = self.devices.get(parts[3]) if len(parts) == 5 else None
            if device is None:
                self.unrouted_downlinks += 1
                return
            self.downlinks += 1
            taken = device.handle_downlink(payload)
            if self.resender is not None and taken is not None and isinstance(taken.message, Ack):
                self.resender.answered(device.device_id)  # the backoff starts again
            # Renumbered or re-MACed after a nack: sent again at once, as firmware does.
            for frame in device.take_resend():
                self.publish(device.device_id, frame)
            # A refused stale downlink: the heartbeat moves the gateway's counter on.
            wanted = device.take_wanted_heartbeat()
            if wanted is not None:
                self.publish(device.device_id, wanted)
            self._notify()
        except Exception:
            self.callback_errors += 1
            log.exception("fleet on_message failed")


READ_CHUNK = 65536
_PUBACK = 0x40
_PUBLISH_QOS0 = 0x30
_PUBLISH_FLAGS_IGNORED = 0x09
"""DUP and RETAIN: a QoS 0 downlink is taken the same with either."""


class _LeanClient(paho.Client):
    """paho reading its socket in chunks, with short paths for a load generator's traffic.

    paho reads a packet with at least three `recv` calls and builds an MQTTMessage, its
    condition variable and a topic match for every PUBLISH. A fleet at thousands of frames a
    second receives a PUBACK and an ACK downlink (QoS 0) per frame and needs none of that:
    a PUBACK that reports success only releases its message (`lean_puback`), a QoS 0 PUBLISH
    goes straight to `lean_downlink(topic, payload)`. Every other packet is handed to paho's
    own handler as if paho had read it. This leans on paho 2.x internals (`_sock`,
    `_in_packet`, `_packet_handle`, `_loop_rc_handle`, `_out_messages`; pyproject.toml allows
    paho 2.x only), as the gateway's intake does.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lean_puback: Callable[[], None] = lambda: None
        self.lean_downlink: Callable[[str, bytes], None] = lambda _topic, _payload: None
        self.buffered = bytearray()

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:  # noqa: ARG002 - paho's signature
        """Read what the socket holds and handle every complete packet."""
        sock = self._sock
        if sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        try:
            data = sock.recv(READ_CHUNK)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        with self._msgtime_mutex:
            self._last_bytes_received = paho.time_func()
        self.buffered += data
        return self.handle_buffered()

    def handle_buffered(self) -> MQTTErrorCode:
        """Handle the complete packets already read, in order; the rest waits for more."""
        buf = self.buffered
        pos = 0
        try:
            while (found := _remaining_length(buf, pos + 1)) is not None:
                length, at = found
                if at + length > len(buf):
                    break  # the body is still coming
                command, body = buf[pos], bytes(buf[at : at + length])
                pos = at + length
                rc = self._handle(command, body)
                if rc:
                    return self._loop_rc_handle(rc)
        except MalformedPacket:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_PROTOCOL)
        finally:
            del buf[:pos]
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _handle(self, command: int, body: bytes) -> MQTTErrorCode:
        if command == _PUBACK and (len(body) == 2 or (len(body) > 2 and body[2] < 0x80)):
            with self._out_message_mutex:
                message = self._out_messages.pop(body[0] << 8 | body[1], None)
                if message is not None:
                    self._inflight_messages -= 1
            if message is not None:
                self.lean_puback()
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        if command & ~_PUBLISH_FLAGS_IGNORED == _PUBLISH_QOS0 and len(body) >= 2:
            topic_end = 2 + (body[0] << 8 | body[1])
            at = topic_end
            if self._protocol == paho.MQTTv5:  # properties: their length, then skipped
                found = _remaining_length(body, at)
                if found is None:
                    return MQTTErrorCode.MQTT_ERR_PROTOCOL
                at = found[1] + found[0]
            if at > len(body):
                return MQTTErrorCode.MQTT_ERR_PROTOCOL
            try:
                topic = body[2:topic_end].decode("utf-8")
            except UnicodeDecodeError:
                return MQTTErrorCode.MQTT_ERR_PROTOCOL
            self.lean_downlink(topic, body[at:])
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        self._in_packet = _as_read(command, body)
        try:
            return self._packet_handle()
        finally:
            self._in_packet = _as_read(0, b"")


def _remaining_length(buf: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """MQTT's variable byte integer at `at`: (value, its end); None while incomplete."""
    value = 0
    for n in range(4):
        if at + n >= len(buf):
            return None
        byte = buf[at + n]
        value += (byte & 0x7F) << (7 * n)
        if not byte & 0x80:
            return value, at + n + 1
    raise MalformedPacket("a length longer than four bytes")


def _as_read(command: int, body: bytes) -> Any:
    """Paho's state of a packet it has read whole (`Client._in_packet`)."""
    return {
        "command": command,
        "have_remaining": 1 if command else 0,
        "remaining_count": [],
        "remaining_mult": 1,
        "remaining_length": len(body),
        "packet": bytearray(body),
        "to_process": 0,
        "pos": 0,
    }
