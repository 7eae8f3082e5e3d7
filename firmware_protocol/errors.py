"""Every way protocol input can be wrong, as one exception tree.

    ProtocolError
     ├── FramingError
     │    ├── TruncatedFrameError      fewer bytes than the header or the stated length needs
     │    ├── FrameTooLongError        longer than MAX_FRAME_LEN (or the serial body cap)
     │    ├── LengthMismatchError      payload_len disagrees with the bytes present
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

Each class carries `reason`, a short snake_case label for counters.
"""

from __future__ import annotations

from typing import ClassVar


class ProtocolError(Exception):
    """Root of every protocol error."""

    reason: ClassVar[str] = "protocol_error"


class FramingError(ProtocolError):
    """The bytes do not form a frame."""

    reason = "framing"


class TruncatedFrameError(FramingError):
    """Fewer bytes than the frame needs."""

    reason = "truncated"


class FrameTooLongError(FramingError):
    """More bytes than any valid frame has."""

    reason = "too_long"


class LengthMismatchError(FramingError):
    """The stated payload length disagrees with the bytes present."""

    reason = "length_mismatch"


class BadCrcError(FramingError):
    """A serial frame whose CRC does not match."""

    reason = "bad_crc"


class InvalidEscapeError(FramingError):
    """A serial escape byte followed by a byte that may not be escaped."""

    reason = "invalid_escape"


class UnknownVersionError(ProtocolError):
    """A protocol version this code does not speak."""

    reason = "unknown_version"


class UnknownMessageTypeError(ProtocolError):
    """A message type code that is not defined."""

    reason = "unknown_type"


class InvalidPayloadError(ProtocolError):
    """A payload of the wrong size or with an undefined field value."""

    reason = "invalid_payload"


class InvalidMessageError(ProtocolError):
    """A message that cannot be encoded: a field out of its range."""

    reason = "invalid_message"


class AuthenticationError(ProtocolError):
    """Authentication failed."""

    reason = "authentication"


class BadMacError(AuthenticationError):
    """The frame's MAC does not match the device key."""

    reason = "bad_mac"


class KeyCheckError(AuthenticationError):
    """An unwrapped key does not match its check value."""

    reason = "key_check"


class InvalidKeyError(ProtocolError):
    """A key of the wrong length."""

    reason = "invalid_key"


class InvalidDeviceIdError(ProtocolError):
    """A device id that is not 16 hex digits."""

    reason = "invalid_device_id"


class TopicError(ProtocolError):
    """An MQTT topic problem."""

    reason = "topic"


class InvalidTopicError(TopicError):
    """A topic outside the Bidao scheme."""

    reason = "invalid_topic"


class TopicMismatchError(TopicError):
    """The topic names another device than the frame."""

    reason = "topic_mismatch"
