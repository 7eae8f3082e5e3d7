"""A hand-written MQTT v5 publisher for benches: QoS 1 frames as fast as the broker takes them.

Not a device (device_sim's fleets use paho): it encodes every packet before sending, writes
them in large chunks, counts PUBACKs and never subscribes to downlinks, so little CPU goes
into publishing and a bench measures the broker and the receiver instead.

Run `python -m bench.burst --port PORT --devices 100 --frames 30000` to publish readings from
the generated fleet devices (`device_sim.device.fleet_identity`), MACed with their keys.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time
from collections.abc import Sequence

from device_sim.device import SimulatedDevice, fleet_identity
from firmware_protocol import uplink_topic

__all__ = [
    "DISCONNECT",
    "PUBLISH_QOS1",
    "BurstConnection",
    "BurstError",
    "encode_packet",
    "mqtt_string",
    "publish_burst",
]

WINDOW = 1000
"""PUBLISHes waiting for their PUBACK at most (also capped by the broker's receive maximum)."""
KEEPALIVE_S = 30
EXIT_OK, EXIT_NO_BROKER = 0, 2


class BurstError(Exception):
    """The broker refused, dropped or did not answer a burst publisher."""


# MQTT v5 packet types and the CONNACK properties a burst publisher must be able to skip.
CONNACK, PUBLISH_QOS1, PUBACK, DISCONNECT = 0x20, 0x32, 0x40, 0xE0
_RECEIVE_MAXIMUM = 0x21
_FIXED_PROPERTY_LEN = {
    0x01: 1, 0x02: 4, 0x11: 4, 0x13: 2, 0x17: 1, 0x18: 4, 0x19: 1, 0x21: 2, 0x22: 2, 0x23: 2,
    0x24: 1, 0x25: 1, 0x27: 4, 0x28: 1, 0x29: 1, 0x2A: 1,
}  # fmt: skip
_STRING_PAIR_PROPERTY = 0x26
_SERVER_RECEIVE_MAXIMUM_DEFAULT = 65535


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def mqtt_string(text: str) -> bytes:
    """An MQTT UTF-8 string: two length bytes, then the text."""
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def encode_packet(first_byte: int, body: bytes) -> bytes:
    """A whole MQTT packet: the first byte, the remaining length, the body."""
    return bytes([first_byte]) + _varint(len(body)) + body


def _take_packet(buffer: bytearray) -> tuple[int, bytes] | None:
    """Remove and return (first byte, body) of the first whole packet in `buffer`."""
    length, multiplier = 0, 1
    for pos in range(1, min(len(buffer), 5)):
        length += (buffer[pos] & 0x7F) * multiplier
        multiplier *= 128
        if not buffer[pos] & 0x80:
            end = pos + 1 + length
            if len(buffer) < end:
                return None
            packet = (buffer[0], bytes(buffer[pos + 1 : end]))
            del buffer[:end]
            return packet
    if len(buffer) >= 5:
        raise BurstError("malformed packet length from the broker")
    return None


def _receive_maximum(properties: bytes) -> int:
    pos = 0
    while pos < len(properties):
        prop = properties[pos]
        pos += 1
        if prop == _RECEIVE_MAXIMUM:
            return int.from_bytes(properties[pos : pos + 2], "big")
        if prop in _FIXED_PROPERTY_LEN:
            pos += _FIXED_PROPERTY_LEN[prop]
            continue
        for _ in range(2 if prop == _STRING_PAIR_PROPERTY else 1):  # strings, binary data
            pos += 2 + int.from_bytes(properties[pos : pos + 2], "big")
    return _SERVER_RECEIVE_MAXIMUM_DEFAULT


class BurstConnection:
    """A bare MQTT v5 publisher on a blocking socket: CONNECT, QoS 1 PUBLISHes, PUBACKs."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.acked = 0
        self.refused = 0

    def read_packet(self) -> tuple[int, bytes]:
        """The next whole packet from the broker (first byte, body)."""
        while (packet := _take_packet(self.buffer)) is None:
            self._fill()
        return packet

    def _fill(self) -> None:
        data = self.sock.recv(1 << 16)
        if not data:
            raise BurstError("the broker closed the connection")
        self.buffer += data

    def connect(self, client_id: str) -> int:
        """Send CONNECT (clean start, no session kept); the broker's receive maximum."""
        body = mqtt_string("MQTT") + bytes([5, 0x02]) + KEEPALIVE_S.to_bytes(2, "big") + b"\x00"
        self.sock.sendall(encode_packet(0x10, body + mqtt_string(client_id)))
        first, body = self.read_packet()
        if first != CONNACK or len(body) < 2:
            raise BurstError(f"expected CONNACK, got packet type 0x{first:02x}")
        if body[1] >= 0x80:
            raise BurstError(f"broker refused the publisher: reason 0x{body[1]:02x}")
        if len(body) == 2:
            return _SERVER_RECEIVE_MAXIMUM_DEFAULT
        length, pos, multiplier = 0, 2, 1
        while body[pos] & 0x80:
            length += (body[pos] & 0x7F) * multiplier
            pos, multiplier = pos + 1, multiplier * 128
        length += body[pos] * multiplier
        return _receive_maximum(body[pos + 1 : pos + 1 + length])

    def read_acks(self) -> None:
        """Wait for at least one packet, then count every whole PUBACK that has arrived."""
        self._fill()
        while (packet := _take_packet(self.buffer)) is not None:
            first, body = packet
            if first == DISCONNECT:
                reason = body[0] if body else 0
                raise BurstError(f"the broker disconnected the publisher: reason 0x{reason:02x}")
            if first == PUBACK:
                self.acked += 1
                if len(body) > 2 and body[2] >= 0x80:
                    self.refused += 1


def publish_burst(
    host: str,
    port: int,
    frames: Sequence[tuple[str, bytes]],
    *,
    window: int = WINDOW,
    client_id: str | None = None,
    connect_timeout_s: float = 10.0,
    timeout_s: float = 600.0,
) -> float:
    """Publish pre-built (device_id, frame) pairs at QoS 1 as fast as the broker takes them.

    Every PUBLISH packet is encoded before the first is sent; they go out in large writes
    with at most `window` (and the broker's receive maximum) waiting for their PUBACK.
    Returns seconds from the first publish to the last PUBACK; BurstError if the broker
    refuses a frame or the connection ends first, TimeoutError (an OSError) if the broker
    sends nothing for `timeout_s`.
    """
    topics = {device_id: mqtt_string(uplink_topic(device_id)) for device_id, _ in frames}
    packets = [
        # Packet ids 1..65535 in turn; never more than `window` < 65535 of them in flight.
        encode_packet(
            PUBLISH_QOS1, topics[device_id] + (n % 0xFFFF + 1).to_bytes(2, "big") + b"\x00" + frame
        )
        for n, (device_id, frame) in enumerate(frames)
    ]
    total = len(packets)
    with socket.create_connection((host, port), timeout=connect_timeout_s) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = BurstConnection(sock)
        window = max(1, min(window, conn.connect(client_id or f"bidao-burst-{id(conn):x}"), 0xFFFE))
        sock.settimeout(timeout_s)
        sent = 0
        started = time.perf_counter()
        while conn.acked < total:
            room = min(total - sent, window - (sent - conn.acked))
            if room > 0:
                sock.sendall(b"".join(packets[sent : sent + room]))
                sent += room
            conn.read_acks()
        elapsed = time.perf_counter() - started
        with contextlib.suppress(OSError):
            sock.sendall(encode_packet(DISCONNECT, b""))
    if conn.refused:
        raise BurstError(f"the broker refused {conn.refused} of {total} frames")
    return elapsed


def fleet_readings(devices: int, frames: int, session: int) -> list[tuple[str, bytes]]:
    """`frames` readings from the first `devices` fleet devices in turn, MACed with their keys."""
    fleet = []
    for i in range(devices):
        device_id, key = fleet_identity(i)
        fleet.append(SimulatedDevice(device_id, "water_meter", key, session=session))
    return [
        (fleet[n % devices].device_id, fleet[n % devices].water_reading(n, 0, 0))
        for n in range(frames)
    ]


PUBLISHED_LINE = "{frames} frames from {devices} devices published in {seconds:.6f} s"
"""The first words of the line a run prints (bench/ingest.py parses it)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Publish fleet readings in one burst; print how long it took."""
    parser = argparse.ArgumentParser(prog="python -m bench.burst", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="broker address (loopback)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--session", type=int, default=None, help="default: unix time")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds of broker silence")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.frames < 1:
        parser.error("--devices and --frames must be at least 1")
    session = int(time.time()) if args.session is None else args.session
    # Every frame is built (and MACed) before the first is sent, so only sending is timed.
    frames = fleet_readings(args.devices, args.frames, session)
    try:
        elapsed = publish_burst(args.host, args.port, frames, timeout_s=args.timeout)
    except (OSError, BurstError) as exc:
        print(f"cannot publish to the broker at {args.host}:{args.port}: {exc}")
        return EXIT_NO_BROKER
    line = PUBLISHED_LINE.format(frames=args.frames, devices=args.devices, seconds=elapsed)
    print(f"{line} ({args.frames / elapsed:.0f} frames/s, QoS 1, protocol acks not awaited)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
