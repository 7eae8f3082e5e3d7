"""Many simulated devices behind one paho-mqtt client, as a test or demo fleet."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from device_sim.device import SimulatedDevice
from firmware_protocol import KEY_LEN, uplink_topic

log = logging.getLogger(__name__)

DOWNLINK_SUBSCRIPTION = "bidao/v1/+/down"
FLEET_BASE_ID = 0xB1DA000000000000


def fleet_identity(index: int) -> tuple[str, bytes]:
    """(device_id, key) of the index-th fleet device; the gateway side derives the same."""
    device_id = f"{FLEET_BASE_ID + index:016x}"
    key = hmac.new(b"bidao-sim-fleet", device_id.encode(), hashlib.sha256).digest()[:KEY_LEN]
    return device_id, key


class MqttFleet:
    """Publishes the devices' uplinks at QoS 1 and hands each downlink to its device."""

    def __init__(
        self,
        host: str,
        port: int,
        devices: Iterable[SimulatedDevice],
        client_id: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.devices = {d.device_id: d for d in devices}
        self._client_id = client_id or f"bidao-sim-{id(self):x}"
        self._client: paho.Client | None = None
        self._subscribed = threading.Event()
        self.callback_errors = 0
        self.unrouted_downlinks = 0

    def add(self, device: SimulatedDevice) -> None:
        """Put another device behind this client."""
        self.devices[device.device_id] = device

    async def __aenter__(self) -> MqttFleet:
        """Connect, subscribe to downlinks and return once the subscription is in place."""
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(1, 2)
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self._client = client
        await asyncio.to_thread(client.connect, self.host, self.port, 30)
        client.loop_start()
        if not await asyncio.to_thread(self._subscribed.wait, 10):
            await self.close()
            raise TimeoutError(f"fleet could not subscribe on {self.host}:{self.port}")
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
        """Disconnect and stop the network thread; safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)

    async def send(self, device_id: str, frame: bytes) -> None:
        """Publish raw bytes on a device's uplink topic at QoS 1."""
        client = self._client
        if client is None:
            raise RuntimeError("fleet is not connected")
        info = client.publish(uplink_topic(device_id), frame, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise ConnectionError(paho.error_string(info.rc))
        # Queued while disconnected is fine: paho sends it after reconnecting.
        await asyncio.sleep(0)

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(d.pending_count for d in self.devices.values()):
            if loop.time() > deadline:
                waiting = sum(d.pending_count for d in self.devices.values())
                raise TimeoutError(f"{waiting} frames still unacknowledged")
            await asyncio.sleep(0.01)

    # paho callbacks run on paho's network thread; none may raise.

    def _on_socket_open(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            self.callback_errors += 1

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        _flags: paho.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        try:
            if not reason.is_failure:
                client.subscribe(DOWNLINK_SUBSCRIPTION, qos=1)
                self._subscribed.set()
        except Exception:
            self.callback_errors += 1
            log.exception("fleet on_connect failed")

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            parts = msg.topic.split("/")
            device = self.devices.get(parts[2]) if len(parts) == 4 else None
            if device is None:
                self.unrouted_downlinks += 1
                return
            device.handle_downlink(bytes(msg.payload))
        except Exception:
            self.callback_errors += 1
            log.exception("fleet on_message failed")
