"""The load fleet's reader on bytes alone: PUBACKs and QoS 0 downlinks split anywhere.

The same reader runs against mosquitto and a real gateway in the load tests; here its edges
are driven byte by byte, which a real socket does only by chance.
"""

from __future__ import annotations

import struct

from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from device_sim.mqtt import _LeanClient
from tests.gateway.test_mqtt_reader import varint


def downlink(topic: str, payload: bytes, props: bytes | None = None, flags: int = 0) -> bytes:
    """A QoS 0 PUBLISH: MQTT 3.1.1 without `props`, MQTT 5 with them."""
    name = topic.encode()
    body = struct.pack(">H", len(name)) + name
    if props is not None:
        body += varint(len(props)) + props
    body += payload
    return bytes([0x30 | flags]) + varint(len(body)) + body


def puback(mid: int, reason: bytes = b"") -> bytes:
    return b"\x40" + varint(2 + len(reason)) + struct.pack(">H", mid) + reason


def reader(protocol: MQTTProtocolVersion) -> tuple[_LeanClient, list[tuple[str, bytes]], list[int]]:
    client = _LeanClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=protocol)
    got: list[tuple[str, bytes]] = []
    acked: list[int] = []
    client.lean_downlink = lambda topic, payload: got.append((topic, payload))
    client.lean_puback = lambda: acked.append(1)
    return client, got, acked


def feed_byte_by_byte(client: _LeanClient, stream: bytes) -> None:
    for byte in stream:
        client.buffered.append(byte)
        assert client.handle_buffered() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert not client.buffered


def test_downlinks_split_at_every_byte_come_out_whole_once_and_in_order() -> None:
    client, got, _ = reader(MQTTProtocolVersion.MQTTv311)
    feed_byte_by_byte(
        client,
        downlink("bidao/v2/0/b1da000000000001/down", bytes(range(45)))
        + downlink("bidao/v2/东/b1da000000000002/down", b"\xff" * 200, flags=0x09)
        + downlink("bidao/v2/0/b1da000000000003/down", b""),
    )
    assert got == [
        ("bidao/v2/0/b1da000000000001/down", bytes(range(45))),
        ("bidao/v2/东/b1da000000000002/down", b"\xff" * 200),
        ("bidao/v2/0/b1da000000000003/down", b""),
    ]


def test_mqtt5_downlink_properties_are_skipped() -> None:
    client, got, _ = reader(MQTTProtocolVersion.MQTTv5)
    user_property = b"\x26" + struct.pack(">H", 1) + b"k" + struct.pack(">H", 3) + b"v\x00v"
    feed_byte_by_byte(client, downlink("t/x", b"ack", props=user_property))
    assert got == [("t/x", b"ack")]


def test_a_puback_releases_its_own_message_once_and_nothing_else() -> None:
    client, _, acked = reader(MQTTProtocolVersion.MQTTv5)
    client.max_inflight_messages_set(0)
    mids = [client.publish("bidao/v2/0/b1da000000000001/up", b"f", qos=1).mid for _ in range(3)]
    assert len(client._out_messages) == 3  # not connected: kept until sent and acknowledged
    stream = puback(mids[0]) + puback(mids[1], b"\x00") + puback(mids[0]) + puback(999)
    feed_byte_by_byte(client, stream + b"\xd0\x00")  # and a PINGRESP, for paho's own handler
    assert len(acked) == 2
    assert list(client._out_messages) == [mids[2]]


def test_a_malformed_length_is_a_protocol_error() -> None:
    client, _, _ = reader(MQTTProtocolVersion.MQTTv311)
    client.buffered += b"\x30\xff\xff\xff\xff\x01"
    assert client.handle_buffered() == MQTTErrorCode.MQTT_ERR_PROTOCOL
