"""The intake's PUBLISH reader on bytes alone: packets split anywhere, several at once, limits.

The same reader runs against mosquitto in every MQTT test; here its edges are driven byte by
byte, which a real socket does only by chance.
"""

from __future__ import annotations

import struct

from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from gateway.ingest.transports.mqtt import MAX_PACKET_SIZE, _LeanClient

Received = tuple[str, int, bytes]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: str, mid: int, payload: bytes, props: bytes = b"", flags: int = 0) -> bytes:
    """A QoS 1 PUBLISH packet as MQTT 5 lays it out."""
    name = topic.encode()
    body = struct.pack(">H", len(name)) + name + struct.pack(">H", mid)
    body += varint(len(props)) + props + payload
    return bytes([0x32 | flags]) + varint(len(body)) + body


def reader() -> tuple[_LeanClient, list[Received]]:
    client = _LeanClient(
        CallbackAPIVersion.VERSION2, client_id="t", protocol=MQTTProtocolVersion.MQTTv5
    )
    got: list[Received] = []
    client.lean_publish = lambda _c, topic, mid, payload: got.append((topic, mid, payload))
    return client, got


def test_packets_split_at_every_byte_come_out_whole_once_and_in_order() -> None:
    user_property = b"\x26" + struct.pack(">H", 1) + b"k" + struct.pack(">H", 3) + b"v\x00v"
    packets = [
        publish("bidao/v2/0/b1da000000000001/up", 1, bytes(range(60))),
        publish("bidao/v2/0/b1da000000000002/up", 65535, b"\xff" * 200, props=user_property),
        publish("bidao/v2/东/b1da000000000003/up", 7, b"", flags=0x09),  # DUP and RETAIN set
    ]
    stream = b"".join(packets)
    client, got = reader()
    for byte in stream:
        client.buffered.append(byte)
        assert client.handle_buffered() == MQTTErrorCode.MQTT_ERR_SUCCESS
    assert got == [
        ("bidao/v2/0/b1da000000000001/up", 1, bytes(range(60))),
        ("bidao/v2/0/b1da000000000002/up", 65535, b"\xff" * 200),
        ("bidao/v2/东/b1da000000000003/up", 7, b""),
    ]
    assert not client.buffered


def test_holding_stops_between_packets_and_the_rest_waits() -> None:
    client, got = reader()
    held = False

    def take_one(_client: object, topic: str, mid: int, payload: bytes) -> None:
        nonlocal held
        got.append((topic, mid, payload))
        held = True  # as the link pauses once its credit is spent

    client.hold = lambda: held
    client.lean_publish = take_one
    client.buffered += publish("a", 1, b"x") + publish("b", 2, b"y")
    client.handle_buffered()
    assert [m for _, m, _ in got] == [1]
    assert client.buffered == bytearray(publish("b", 2, b"y"))
    held = False
    client.handle_buffered()
    assert [m for _, m, _ in got] == [1, 2]


def test_a_packet_over_the_announced_maximum_is_refused_before_its_body_arrives() -> None:
    client, got = reader()
    client.buffered += bytes([0x32]) + varint(MAX_PACKET_SIZE + 1)
    assert client.handle_buffered() == MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert got == []


def test_a_malformed_publish_is_a_protocol_error_not_a_frame() -> None:
    client, got = reader()
    # Its topic length points past the end of the packet.
    client.buffered += bytes([0x32, 4]) + struct.pack(">H", 300) + b"ab"
    assert client.handle_buffered() == MQTTErrorCode.MQTT_ERR_PROTOCOL
    assert got == []
