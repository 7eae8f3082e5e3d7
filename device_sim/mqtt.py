"""Many simulated devices behind one paho-mqtt client, as a test or demo fleet.

paho runs its network loop on its own thread. Downlinks are handed to the addressed
`SimulatedDevice` on that thread (the device guards its state with a lock), then waiters
are woken: asyncio waiters through `call_soon_threadsafe`, blocking waiters through a
condition variable. No exception leaves a paho callback; each is counted and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
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
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        """Broker login (a box logs in as its device id, docs/protocol.md section 7.1)."""
        self.password = password
        self.devices = {d.device_id: d for d in devices}
        self.client_id = client_id or f"bidao-sim-{id(self):x}"
        self.session_expiry_s = session_expiry_s
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

    def pending_total(self) -> int:
        """Frames of all devices still waiting for their ack."""
        return sum(d.pending_count for d in list(self.devices.values()))

    # Blocking API.

    def start(self) -> None:
        """Connect, subscribe to downlinks and return once the subscription is granted."""
        if self._client is not None:
            return
        self._ready.clear()
        self._connect_refused = None
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        client.max_inflight_messages_set(MAX_INFLIGHT)
        client.max_queued_messages_set(0)  # unlimited: bulk sends must not be refused
        client.reconnect_delay_set(1, 2)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        try:
            client.connect(self.host, self.port, KEEPALIVE_S, **self._session_args())
            client.loop_start()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        if not self._ready.wait(self.connect_timeout_s):
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
        await asyncio.to_thread(self.stop)
        self._loop = None

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

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            parts = msg.topic.split("/")
            device = self.devices.get(parts[3]) if len(parts) == 5 else None
            if device is None:
                self.unrouted_downlinks += 1
                return
            self.downlinks += 1
            taken = device.handle_downlink(bytes(msg.payload))
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
