"""The v1 frame, identical on MQTT and (inside serial framing) on a serial line.

    offset  size  field
    ------  ----  -----------------------------------------------------------
         0     1  version        PROTOCOL_VERSION (1)
         1     1  msg_type       MessageType
         2     8  device_id      EUI-64; text form: 16 lowercase hex digits
        10     4  seq            u32, per device and direction
        14     4  timestamp      u32 unix seconds of the sender (0 = clock not set)
        18     2  payload_len    u16, at most MAX_PAYLOAD_LEN
        20     n  payload        type-specific, fixed length per type
      20+n     8  mac            HMAC-SHA256(device_key, bytes[0:20+n])[:8]

All integers are big-endian.
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

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">BB8sIIH")
HEADER_LEN = HEADER.size
MAC_LEN = 8
MAX_PAYLOAD_LEN = 200
MIN_FRAME_LEN = HEADER_LEN + MAC_LEN
MAX_FRAME_LEN = HEADER_LEN + MAX_PAYLOAD_LEN + MAC_LEN
KEY_LEN = 16
DEVICE_ID_LEN = 8
U32_MAX = 0xFFFFFFFF

DeviceId = str
_HEX = frozenset("0123456789abcdef")
_KEYWRAP_LABEL = b"bidao-v1-keywrap"
_KEYCHECK_LABEL = b"bidao-v1-keycheck"


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
    seq: int
    timestamp: int
    payload: bytes
    mac: bytes

    def signed_bytes(self) -> bytes:
        """Header and payload: the bytes the MAC covers."""
        header = HEADER.pack(
            self.version,
            self.msg_type,
            bytes.fromhex(self.device_id),
            self.seq,
            self.timestamp,
            len(self.payload),
        )
        return header + self.payload


@dataclass(frozen=True, slots=True)
class Envelope:
    """A verified, decoded frame: who sent it, its numbers, and the message."""

    device_id: DeviceId
    seq: int
    timestamp: int
    message: Message


def parse_frame(data: bytes) -> Frame:
    """Check a frame's structure and split it; no key is needed yet."""
    if len(data) > MAX_FRAME_LEN:
        raise FrameTooLongError(f"frame is {len(data)} bytes, the cap is {MAX_FRAME_LEN}")
    if len(data) < MIN_FRAME_LEN:
        raise TruncatedFrameError(f"frame is {len(data)} bytes, at least {MIN_FRAME_LEN} needed")
    version, msg_type, device_id, seq, timestamp, payload_len = HEADER.unpack_from(data)
    if version != PROTOCOL_VERSION:
        raise UnknownVersionError(f"protocol version {version} is not supported")
    try:
        kind = MessageType(msg_type)
    except ValueError:
        raise UnknownMessageTypeError(f"message type 0x{msg_type:02x} is not defined") from None
    if payload_len > MAX_PAYLOAD_LEN:
        raise FrameTooLongError(f"payload_len {payload_len} exceeds {MAX_PAYLOAD_LEN}")
    expected = HEADER_LEN + payload_len + MAC_LEN
    if len(data) < expected:
        raise TruncatedFrameError(f"frame is {len(data)} bytes, payload_len needs {expected}")
    if len(data) > expected:
        raise LengthMismatchError(f"frame is {len(data)} bytes, payload_len gives {expected}")
    payload = bytes(data[HEADER_LEN : HEADER_LEN + payload_len])
    return Frame(version, kind, device_id.hex(), seq, timestamp, payload, bytes(data[-MAC_LEN:]))


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
    return Envelope(frame.device_id, frame.seq, frame.timestamp, decode_message(frame))


def encode(envelope: Envelope, key: bytes) -> bytes:
    """The frame bytes for `envelope`, MACed with `key`."""
    device_id = parse_device_id(envelope.device_id)
    for name, value in (("seq", envelope.seq), ("timestamp", envelope.timestamp)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U32_MAX:
            raise InvalidMessageError(f"{name}={value!r} is outside 0..{U32_MAX}")
    message = envelope.message
    payload = message.to_payload()
    header = HEADER.pack(
        PROTOCOL_VERSION,
        message.TYPE,
        bytes.fromhex(device_id),
        envelope.seq,
        envelope.timestamp,
        len(payload),
    )
    signed = header + payload
    return signed + compute_mac(key, signed)


def _keystream(current_key: bytes, device_id: DeviceId, seq: int) -> bytes:
    material = _KEYWRAP_LABEL + bytes.fromhex(parse_device_id(device_id)) + seq.to_bytes(4, "big")
    return hmac.new(current_key, material, hashlib.sha256).digest()[:WRAPPED_KEY_LEN]


def key_check_value(key: bytes) -> bytes:
    """The 4-byte check value of a key."""
    _check_key(key)
    return hmac.new(key, _KEYCHECK_LABEL, hashlib.sha256).digest()[:KEY_CHECK_LEN]


def wrap_key(
    current_key: bytes, device_id: DeviceId, seq: int, new_key: bytes
) -> tuple[bytes, bytes]:
    """(wrapped_key, key_check) for a PROVISION frame with downlink sequence number `seq`."""
    _check_key(current_key)
    _check_key(new_key)
    stream = _keystream(current_key, device_id, seq)
    return bytes(a ^ b for a, b in zip(new_key, stream, strict=True)), key_check_value(new_key)


def unwrap_key(
    current_key: bytes, device_id: DeviceId, seq: int, wrapped: bytes, check: bytes
) -> bytes:
    """The new key from a PROVISION frame; KeyCheckError if it does not match its check value."""
    _check_key(current_key)
    if len(wrapped) != WRAPPED_KEY_LEN:
        raise InvalidKeyError(f"wrapped key must be {WRAPPED_KEY_LEN} bytes")
    stream = _keystream(current_key, device_id, seq)
    new_key = bytes(a ^ b for a, b in zip(wrapped, stream, strict=True))
    if not hmac.compare_digest(key_check_value(new_key), check):
        raise KeyCheckError("unwrapped key does not match its check value")
    return new_key
