"""The v2 frame, identical on MQTT and (inside serial framing) on a serial line.

    offset  size  field
    ------  ----  -----------------------------------------------------------
         0     1  version        PROTOCOL_VERSION (2)
         1     1  msg_type       MessageType
         2     8  device_id      EUI-64; text form: 16 lowercase hex digits
        10     1  key_id         version of the key that MACs this frame
        11     4  session        u32 boot session of the device (0xFFFFFFFF reserved)
        15     4  seq            u32 number within the session (0 and 0xFFFFFFFF reserved)
        19     4  timestamp      u32 unix seconds of the sender (0 = clock not set)
        23     2  payload_len    u16, at most MAX_PAYLOAD_LEN
        25     n  payload        type-specific, fixed length per type
      25+n     8  mac            HMAC-SHA256(key[key_id], bytes[0:25+n])[:8]

All integers are big-endian. Checks, in this order (docs/protocol.md section 2.3): length
at least MIN_FRAME_LEN, at most MAX_FRAME_LEN, version, message type, payload_len at most
MAX_PAYLOAD_LEN, length equal to MIN_FRAME_LEN + payload_len, then (with the key the
key_id names) the MAC, then the payload.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from firmware_protocol.errors import (
    BadMacError,
    FrameTooLongError,
    InvalidDeviceIdError,
    InvalidKeyError,
    InvalidMessageError,
    KeyCheckError,
    LengthMismatchError,
    PayloadTooLongError,
    TruncatedFrameError,
    UnknownMessageTypeError,
    UnknownVersionError,
)
from firmware_protocol.messages import (
    KEY_CHECK_LEN,
    MESSAGE_CLASSES,
    WRAPPED_KEY_LEN,
    Message,
    MessageType,
)

PROTOCOL_VERSION = 2
HEADER = struct.Struct(">BB8sBIIIH")
HEADER_LEN = HEADER.size
MAC_LEN = 8
MAX_PAYLOAD_LEN = 200
MIN_FRAME_LEN = HEADER_LEN + MAC_LEN
MAX_FRAME_LEN = HEADER_LEN + MAX_PAYLOAD_LEN + MAC_LEN
KEY_LEN = 16
DEVICE_ID_LEN = 8
U32_MAX = 0xFFFFFFFF
RESERVED = 0xFFFFFFFF
"""Reserved session and seq value: what erased flash reads; never sent."""
POSITION_BITS = 32

DeviceId = str
_HEX = frozenset("0123456789abcdef")
_KEYWRAP_LABEL = b"bidao-v2-keywrap"
_KEYCHECK_LABEL = b"bidao-v2-keycheck"


def position(session: int, seq: int) -> int:
    """One integer that orders a device's frames: session, then seq (session << 32 | seq)."""
    return (session << POSITION_BITS) | seq


def split_position(pos: int) -> tuple[int, int]:
    """(session, seq) of a position."""
    return pos >> POSITION_BITS, pos & U32_MAX


def parse_device_id(text: str) -> DeviceId:
    """The canonical (lowercase) form of a 16-hex-digit device id."""
    canonical = text.strip().lower() if isinstance(text, str) else ""
    if len(canonical) != 2 * DEVICE_ID_LEN or not set(canonical) <= _HEX:
        raise InvalidDeviceIdError(f"device id must be 16 hex digits, got {text!r}")
    return canonical


def _check_key(key: bytes) -> None:
    if len(key) != KEY_LEN:
        raise InvalidKeyError(f"device key must be {KEY_LEN} bytes, got {len(key)}")


def compute_mac(key: bytes, signed: bytes) -> bytes:
    """The 8-byte truncated HMAC-SHA256 of `signed` under `key`."""
    _check_key(key)
    return hmac.new(key, signed, hashlib.sha256).digest()[:MAC_LEN]


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame as it came off the wire: structure checked, MAC not yet verified."""

    version: int
    msg_type: MessageType
    device_id: DeviceId
    key_id: int
    session: int
    seq: int
    timestamp: int
    payload: bytes
    mac: bytes

    @property
    def position(self) -> int:
        """The frame's place in its device's order: (session, seq) as one integer."""
        return position(self.session, self.seq)

    def signed_bytes(self) -> bytes:
        """Header and payload: the bytes the MAC covers."""
        header = HEADER.pack(
            self.version,
            self.msg_type,
            bytes.fromhex(self.device_id),
            self.key_id,
            self.session,
            self.seq,
            self.timestamp,
            len(self.payload),
        )
        return header + self.payload


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified, decoded frame: who sent it, its numbers, and the message.

    `session` and `key_id` come last so that (device_id, seq, timestamp, message) reads as in
    every other place; a frame's order within its device is (session, seq).
    """

    device_id: DeviceId
    seq: int
    timestamp: int
    message: Message
    session: int = 0
    key_id: int = 0

    @property
    def position(self) -> int:
        """(session, seq) as one integer."""
        return position(self.session, self.seq)


def parse_frame(data: bytes) -> Frame:
    """Check a frame's structure and split it; no key is needed yet."""
    if len(data) > MAX_FRAME_LEN:
        raise FrameTooLongError(f"frame is {len(data)} bytes, the cap is {MAX_FRAME_LEN}")
    if len(data) < MIN_FRAME_LEN:
        raise TruncatedFrameError(f"frame is {len(data)} bytes, at least {MIN_FRAME_LEN} needed")
    fields = HEADER.unpack_from(data)
    version, msg_type, device_id, key_id, session, seq, timestamp, payload_len = fields
    if version != PROTOCOL_VERSION:
        raise UnknownVersionError(f"protocol version {version} is not supported")
    try:
        kind = MessageType(msg_type)
    except ValueError:
        raise UnknownMessageTypeError(f"message type 0x{msg_type:02x} is not defined") from None
    if payload_len > MAX_PAYLOAD_LEN:
        raise PayloadTooLongError(f"payload_len {payload_len} exceeds {MAX_PAYLOAD_LEN}")
    expected = HEADER_LEN + payload_len + MAC_LEN
    if len(data) < expected:
        raise TruncatedFrameError(f"frame is {len(data)} bytes, payload_len needs {expected}")
    if len(data) > expected:
        raise LengthMismatchError(f"frame is {len(data)} bytes, payload_len gives {expected}")
    payload = bytes(data[HEADER_LEN : HEADER_LEN + payload_len])
    return Frame(
        version,
        kind,
        device_id.hex(),
        key_id,
        session,
        seq,
        timestamp,
        payload,
        bytes(data[-MAC_LEN:]),
    )


def verify_frame(frame: Frame, key: bytes) -> None:
    """Raise BadMacError unless the frame's MAC is right for `key` (constant-time compare)."""
    if not hmac.compare_digest(compute_mac(key, frame.signed_bytes()), frame.mac):
        raise BadMacError(f"MAC does not match the key of device {frame.device_id}")


def decode_message(frame: Frame) -> Message:
    """The message in the frame's payload; InvalidPayloadError if malformed."""
    return MESSAGE_CLASSES[frame.msg_type].from_payload(frame.payload)


def decode(data: bytes, key: bytes) -> Envelope:
    """Parse, authenticate and decode one frame."""
    frame = parse_frame(data)
    verify_frame(frame, key)
    return Envelope(
        frame.device_id,
        frame.seq,
        frame.timestamp,
        decode_message(frame),
        frame.session,
        frame.key_id,
    )


def encode(envelope: Envelope, key: bytes) -> bytes:
    """The frame bytes for `envelope`, MACed with `key`."""
    device_id = parse_device_id(envelope.device_id)
    for name, value, high in (
        ("seq", envelope.seq, U32_MAX),
        ("session", envelope.session, U32_MAX),
        ("timestamp", envelope.timestamp, U32_MAX),
        ("key_id", envelope.key_id, 0xFF),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise InvalidMessageError(f"{name}={value!r} is outside 0..{high}")
    message = envelope.message
    payload = message.to_payload()
    header = HEADER.pack(
        PROTOCOL_VERSION,
        message.TYPE,
        bytes.fromhex(device_id),
        envelope.key_id,
        envelope.session,
        envelope.seq,
        envelope.timestamp,
        len(payload),
    )
    signed = header + payload
    return signed + compute_mac(key, signed)


def _keystream(current_key: bytes, device_id: DeviceId, session: int, seq: int) -> bytes:
    material = (
        _KEYWRAP_LABEL
        + bytes.fromhex(parse_device_id(device_id))
        + session.to_bytes(4, "big")
        + seq.to_bytes(4, "big")
    )
    return hmac.new(current_key, material, hashlib.sha256).digest()[:WRAPPED_KEY_LEN]


def key_check_value(key: bytes) -> bytes:
    """The 4-byte check value of a key."""
    _check_key(key)
    return hmac.new(key, _KEYCHECK_LABEL, hashlib.sha256).digest()[:KEY_CHECK_LEN]


def wrap_key(
    current_key: bytes, device_id: DeviceId, session: int, seq: int, new_key: bytes
) -> tuple[bytes, bytes]:
    """(wrapped_key, key_check) for a PROVISION frame whose header has `session` and `seq`."""
    _check_key(current_key)
    _check_key(new_key)
    stream = _keystream(current_key, device_id, session, seq)
    return bytes(a ^ b for a, b in zip(new_key, stream, strict=True)), key_check_value(new_key)


def unwrap_key(
    current_key: bytes, device_id: DeviceId, session: int, seq: int, wrapped: bytes, check: bytes
) -> bytes:
    """The new key from a PROVISION frame; KeyCheckError if it does not match its check value."""
    _check_key(current_key)
    if len(wrapped) != WRAPPED_KEY_LEN:
        raise InvalidKeyError(f"wrapped key must be {WRAPPED_KEY_LEN} bytes")
    stream = _keystream(current_key, device_id, session, seq)
    new_key = bytes(a ^ b for a, b in zip(wrapped, stream, strict=True))
    if not hmac.compare_digest(key_check_value(new_key), check):
        raise KeyCheckError("unwrapped key does not match its check value")
    return new_key
