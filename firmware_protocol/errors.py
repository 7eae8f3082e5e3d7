"""Every way protocol input can be wrong, as one exception tree.

    ProtocolError
     ├── FramingError
     │    ├── TruncatedFrameError      fewer bytes than MIN_FRAME_LEN or than payload_len needs
     │    ├── FrameTooLongError        longer than MAX_FRAME_LEN (or the serial body cap)
     │    ├── PayloadTooLongError      payload_len above MAX_PAYLOAD_LEN
     │    ├── LengthMismatchError      more bytes than payload_len gives
     │    ├── BadCrcError              serial CRC-16 does not match
     │    └── InvalidEscapeError       0x7D followed by something other than 0x5E / 0x5D
     ├── UnknownVersionError
     ├── UnknownMessageTypeError
     ├── InvalidPayloadError           payload of the wrong size or with an undefined value
     ├── InvalidMessageError           (encoding) a field out of its range
     ├── AuthenticationError
     │    ├── BadMacError
     │    └── KeyCheckError            an unwrapped key does not match its check value
     ├── InvalidKeyError               a key that is not KEY_LEN bytes
     ├── InvalidDeviceIdError
     └── TopicError
          ├── InvalidTopicError
          └── TopicMismatchError

Each class carries `reason`, a short snake_case label for counters, and `code`, the numeric
error code of docs/protocol.md section 2.3 (what a C implementation returns).
"""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(Exception):
    """Root of every protocol error."""

    reason: ClassVar[str] = "protocol_error"
    code: ClassVar[int] = 0


class FramingError(ProtocolError):
    """The bytes do not form a frame."""

    reason = "framing"
    code = 0


class TruncatedFrameError(FramingError):
    """Fewer bytes than the frame needs."""

    reason = "truncated"
    code = 1


class FrameTooLongError(FramingError):
    """More bytes than any valid frame has."""

    reason = "too_long"
    code = 2


class PayloadTooLongError(FramingError):
    """The header states a payload longer than MAX_PAYLOAD_LEN."""

    reason = "payload_too_long"
    code = 5


class LengthMismatchError(FramingError):
    """The stated payload length disagrees with the bytes present."""

    reason = "length_mismatch"
    code = 6


class BadCrcError(FramingError):
    """A serial frame whose CRC does not match."""

    reason = "bad_crc"
    code = 9


class InvalidEscapeError(FramingError):
    """A serial escape byte followed by a byte that may not be escaped."""

    reason = "invalid_escape"
    code = 10


class UnknownVersionError(ProtocolError):
    """A protocol version this code does not speak."""

    reason = "unknown_version"
    code = 3


class UnknownMessageTypeError(ProtocolError):
    """A message type code that is not defined."""

    reason = "unknown_type"
    code = 4


class InvalidPayloadError(ProtocolError):
    """A payload of the wrong size or with an undefined field value."""

    reason = "invalid_payload"
    code = 8


class InvalidMessageError(ProtocolError):
    """A message that cannot be encoded: a field out of its range."""

    reason = "invalid_message"
    code = 20


class AuthenticationError(ProtocolError):
    """Authentication failed."""

    reason = "authentication"
    code = 7


class BadMacError(AuthenticationError):
    """The frame's MAC does not match the device key."""

    reason = "bad_mac"
    code = 7


class KeyCheckError(AuthenticationError):
    """An unwrapped key does not match its check value."""

    reason = "key_check"
    code = 11


class InvalidKeyError(ProtocolError):
    """A key of the wrong length."""

    reason = "invalid_key"
    code = 21


class InvalidDeviceIdError(ProtocolError):
    """A device id that is not 16 hex digits."""

    reason = "invalid_device_id"
    code = 22


class TopicError(ProtocolError):
    """An MQTT topic problem."""

    reason = "topic"
    code = 23


class InvalidTopicError(TopicError):
    """A topic outside the Bidao scheme."""

    reason = "invalid_topic"
    code = 23


class TopicMismatchError(TopicError):
    """The topic names another device than the frame."""

    reason = "topic_mismatch"
    code = 24
