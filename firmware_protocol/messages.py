"""Message types and their payloads (all integers big-endian).

    uplink                               downlink
    0x01 KEY_EVENT      3 bytes          0x81 ACK         21 bytes
    0x02 HEARTBEAT     21 bytes          0x82 INDICATION   8 bytes
    0x03 WATER_READING  8 bytes          0x83 CONFIG       8 bytes
    0x04 DEVICE_ALARM   4 bytes          0x84 PROVISION   21 bytes

Each payload has a fixed length; see docs/protocol.md for the byte tables.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar

from firmware_protocol.errors import InvalidMessageError, InvalidPayloadError

WRAPPED_KEY_LEN = 16
KEY_CHECK_LEN = 4
ACKED_MAC_LEN = 4
"""An ACK names its frame by (session, seq) and the first bytes of the frame's MAC."""
BATTERY_MAINS = 255


class MessageType(enum.IntEnum):
    """The message type code in byte 1 of every frame."""

    KEY_EVENT = 0x01
    HEARTBEAT = 0x02
    WATER_READING = 0x03
    DEVICE_ALARM = 0x04
    ACK = 0x81
    INDICATION = 0x82
    CONFIG = 0x83
    PROVISION = 0x84

    @property
    def is_uplink(self) -> bool:
        """Device to gateway (0x01..0x7F)."""
        return self.value < 0x80


class Key(enum.IntEnum):
    """The four keys of the call box."""

    GREEN_CALL = 1
    RED_HANGUP = 2
    THUMBS_UP = 3
    THUMBS_DOWN = 4


class MeterStatus(enum.IntFlag):
    """Water meter status bits."""

    LEAK = 0x0001
    BURST = 0x0002
    REVERSE_FLOW = 0x0004
    TAMPER = 0x0008
    VALVE_CLOSED = 0x0010
    LOW_BATTERY = 0x0020
    SENSOR_FAULT = 0x0040


METER_STATUS_MASK = 0x007F
NO_STATUS = MeterStatus(0)


class AlarmKind(enum.IntEnum):
    """Device alarm codes."""

    TAMPER = 1
    LOW_BATTERY = 2
    LEAK = 3
    VALVE_FAULT = 4
    POWER_LOSS = 5


class AckCode(enum.IntEnum):
    """Result of an uplink: below 0x80 stored (drop it), from 0x80 refused (nack).

    What the device does with each is in `AckAction` and docs/protocol.md section 6.
    """

    ACCEPTED = 0x00
    DUPLICATE = 0x01
    NACK_INVALID_PAYLOAD = 0x80
    NACK_UNSUPPORTED = 0x81
    NACK_DEVICE_DISABLED = 0x82
    NACK_RETRY_LATER = 0x83
    NACK_RESYNC = 0x84
    NACK_SEQ_REUSED = 0x85
    NACK_UNKNOWN_KEY = 0x86
    NACK_NOT_FOR_KIND = 0x87

    @property
    def action(self) -> AckAction:
        """What the device does with the frame this code answers."""
        return _ACTIONS[self]


class AckAction(enum.Enum):
    """The device's reaction to an ACK code."""

    DROP = "drop"
    """Stored (or refused for good): remove the frame from the resend queue."""
    RESEND_LATER = "resend_later"
    """Keep the frame, same bytes, and resend it after the backoff."""
    RENUMBER = "renumber"
    """Unless already in a session above the ACK's last_session, start last_session + 1; give
    the nacked frame the next seq of the current session, re-MAC it and resend it at once."""
    REVERT_KEY = "revert_key"
    """Forget the pending key slot, re-MAC every queued frame with the key that MACed this
    ACK, and resend them at once."""


_ACTIONS: dict[AckCode, AckAction] = {
    AckCode.ACCEPTED: AckAction.DROP,
    AckCode.DUPLICATE: AckAction.DROP,
    AckCode.NACK_INVALID_PAYLOAD: AckAction.DROP,
    AckCode.NACK_UNSUPPORTED: AckAction.DROP,
    AckCode.NACK_DEVICE_DISABLED: AckAction.DROP,
    AckCode.NACK_RETRY_LATER: AckAction.RESEND_LATER,
    AckCode.NACK_RESYNC: AckAction.RENUMBER,
    AckCode.NACK_SEQ_REUSED: AckAction.RENUMBER,
    AckCode.NACK_UNKNOWN_KEY: AckAction.REVERT_KEY,
    AckCode.NACK_NOT_FOR_KIND: AckAction.DROP,
}


class IndicationKind(enum.IntEnum):
    """What the box tells the resident; the words, LED and prompt of each are in indications.py."""

    CALL_REGISTERED = 1
    """The call is stored and people are being called (nobody has accepted yet)."""
    HELPER_ON_THE_WAY = 2
    """Help is coming: someone accepted the call (the prompt names their role)."""
    HELPER_ARRIVED = 3
    RESOLVED = 4
    """Resolved: please rate with the thumbs keys."""
    ARE_YOU_OK = 5
    """Asks "are you OK? press thumbs-up", answered within ARE_YOU_OK_ANSWER_S."""
    CANCELLED = 6
    NOTHING_TO_RATE = 7
    """A thumbs press with no resolved ticket to rate."""
    NOBODY_REACHED = 8
    """Nobody could be reached: call 110/120 or the family."""
    ANSWER_NOTED = 9
    """The thumbs-up that answered "are you OK?" was taken."""
    AWAY_NOTED = 10
    """A long thumbs-up marked the home away for AWAY_NOTED_S (the water watch rests)."""
    AWAY_ENDED = 11
    """A long thumbs-up while the home was marked away: the water watch is on again."""


class LedPattern(enum.IntEnum):
    """LED patterns the box can show (timings in indications.LED_TIMINGS)."""

    OFF = 0
    GREEN_SOLID = 1
    GREEN_BLINK = 2
    RED_SOLID = 3
    RED_BLINK = 4
    AMBER_BLINK = 5


E = TypeVar("E", bound=enum.IntEnum)


def _enum(cls: type[E], value: int, field: str) -> E:
    try:
        return cls(value)
    except ValueError:
        raise InvalidPayloadError(f"{field}: undefined value {value}") from None


def _check_range(field: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidMessageError(f"{field}={value!r} is outside {low}..{high}")


def _unpack(fmt: struct.Struct, payload: bytes, name: str) -> tuple[Any, ...]:
    if len(payload) != fmt.size:
        raise InvalidPayloadError(f"{name} payload is {len(payload)} bytes, expected {fmt.size}")
    return fmt.unpack(payload)


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A key press on the call box."""

    TYPE: ClassVar[MessageType] = MessageType.KEY_EVENT
    FORMAT: ClassVar[struct.Struct] = struct.Struct(">BBB")

    key: Key
    press_count: int = 1
    long_press: bool = False

    def to_payload(self) -> bytes:
        """The payload bytes; InvalidMessageError for out-of-range fields."""
        _check_range("key", int(self.key), 1, 4)
        _check_range("press_count", self.press_count, 1, 255)
        return self.FORMAT.pack(self.key, self.press_count, 1 if self.long_press else 0)

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Decode; InvalidPayloadError if malformed."""
        key, count, flags = _unpack(cls.FORMAT, payload, "KEY_EVENT")
        if count == 0:
            raise InvalidPayloadError("press_count must be at least 1")
        if flags & ~0x01:
            raise InvalidPayloadError(f"undefined key event flags 0x{flags:02x}")
        return cls(_enum(Key, key, "key"), count, bool(flags & 0x01))


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Periodic health report."""

    TYPE: ClassVar[MessageType] = MessageType.HEARTBEAT
    FORMAT: ClassVar[struct.Struct] = struct.Struct(">BHbBBBIHHHI")

    battery_pct: int
    battery_mv: int
    rssi_dbm: int
    firmware: tuple[int, int, int]
    uptime_s: int
    heartbeat_interval_s: int
    unanswered: int = 0
    """Sends without any answer since the last ACK the device accepted (saturates at 65535)."""
    refused_downlinks: int = 0
    """Downlinks refused since boot: bad MAC, unknown key, stale seq (saturates at 65535)."""
    last_downlink_seq: int = 0
    """The highest downlink seq accepted in the current session (0: none yet)."""

    def to_payload(self) -> bytes:
        """The payload bytes; InvalidMessageError for out-of-range fields."""
        if not (0 <= self.battery_pct <= 100 or self.battery_pct == BATTERY_MAINS):
            raise InvalidMessageError(f"battery_pct={self.battery_pct} is not 0..100 or 255")
        _check_range("battery_mv", self.battery_mv, 0, 0xFFFF)
        _check_range("rssi_dbm", self.rssi_dbm, -128, 127)
        if len(self.firmware) != 3:
            raise InvalidMessageError("firmware must be (major, minor, patch)")
        for part in self.firmware:
            _check_range("firmware", part, 0, 255)
        _check_range("uptime_s", self.uptime_s, 0, 0xFFFFFFFF)
        _check_range("heartbeat_interval_s", self.heartbeat_interval_s, 1, 0xFFFF)
        _check_range("unanswered", self.unanswered, 0, 0xFFFF)
        _check_range("refused_downlinks", self.refused_downlinks, 0, 0xFFFF)
        _check_range("last_downlink_seq", self.last_downlink_seq, 0, 0xFFFFFFFF)
        return self.FORMAT.pack(
            self.battery_pct,
            self.battery_mv,
            self.rssi_dbm,
            *self.firmware,
            self.uptime_s,
            self.heartbeat_interval_s,
            self.unanswered,
            self.refused_downlinks,
            self.last_downlink_seq,
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Decode; InvalidPayloadError if malformed."""
        pct, mv, rssi, major, minor, patch, uptime, interval, unanswered, refused, last_dl = (
            _unpack(cls.FORMAT, payload, "HEARTBEAT")
        )
        if pct > 100 and pct != BATTERY_MAINS:
            raise InvalidPayloadError(f"battery_pct: undefined value {pct}")
        if interval == 0:
            raise InvalidPayloadError("heartbeat_interval_s must be at least 1")
        return cls(
            pct, mv, rssi, (major, minor, patch), uptime, interval, unanswered, refused, last_dl
        )


@dataclass(frozen=True, slots=True)
class WaterReading:
    """A water meter reading."""

    TYPE: ClassVar[MessageType] = MessageType.WATER_READING
    FORMAT: ClassVar[struct.Struct] = struct.Struct(">IHH")

    total_litres: int
    flow_lph: int
    status: MeterStatus = NO_STATUS

    def to_payload(self) -> bytes:
        """The payload bytes; InvalidMessageError for out-of-range fields."""
        _check_range("total_litres", self.total_litres, 0, 0xFFFFFFFF)
        _check_range("flow_lph", self.flow_lph, 0, 0xFFFF)
        if int(self.status) & ~METER_STATUS_MASK:
            raise InvalidMessageError(f"undefined meter status bits 0x{int(self.status):04x}")
        return self.FORMAT.pack(self.total_litres, self.flow_lph, int(self.status))

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Decode; InvalidPayloadError if malformed."""
        total, flow, status = _unpack(cls.FORMAT, payload, "WATER_READING")
        if status & ~METER_STATUS_MASK:
            raise InvalidPayloadError(f"undefined meter status bits 0x{status:04x}")
        return cls(total, flow, MeterStatus(status))


@dataclass(frozen=True, slots=True)
class DeviceAlarm:
    """An alarm raised or cleared by the device itself."""

    TYPE: ClassVar[MessageType] = MessageType.DEVICE_ALARM
    FORMAT: ClassVar[struct.Struct] = struct.Struct(">BBH")

    alarm: AlarmKind
    active: bool = True
    value: int = 0

    def to_payload(self) -> bytes:
        """The payload bytes; InvalidMessageError for out-of-range fields."""
        _check_range("alarm", int(self.alarm), 1, 255)
        _check_range("value", self.value, 0, 0xFFFF)
        return self.FORMAT.pack(self.alarm, 1 if self.active else 0, self.value)

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Decode; InvalidPayloadError if malformed."""
        alarm, state, value = _unpack(cls.FORMAT, payload, "DEVICE_ALARM")
        if state > 1:
            raise InvalidPayloadError(f"alarm state: undefined value {state}")
        return cls(_enum(AlarmKind, alarm, "alarm"), state == 1, value)


@dataclass(frozen=True, slots=True)
class Ack:
    """The gateway's answer to one uplink.

    The frame it answers is named by (acked_session, acked_seq) and `acked_mac`, the first
    four bytes of that frame's MAC: a copy of an old ACK cannot acknowledge another frame that
    reused the numbers. (last_session, last_seq) is the newest position the gateway has
    accepted from the device: after NACK_RESYNC or NACK_SEQ_REUSED the device starts session
    last_session + 1.

        off size field
          0    4 acked_session
          4    4 acked_seq
          8    4 acked_mac
         12    1 code
         13    4 last_session
         17    4 last_seq
    """

    TYPE: ClassVar[MessageType] = MessageType.ACK
    FORMAT: ClassVar[struct.Struct] = struct.Struct(f">II{ACKED_MAC_LEN}sBII")

    acked_seq: int
    code: AckCode = AckCode.ACCEPTED
    acked_session: int = 0
    acked_mac: bytes = bytes(ACKED_MAC_LEN)
    last_session: int = 0
    last_seq: int = 0

    @property
    def is_ack(self) -> bool:
        """True for ACCEPTED and DUPLICATE, False for a nack."""
        return self.code < 0x80

    def to_payload(self) -> bytes:
        """The payload bytes; InvalidMessageError for out-of-range fields."""
        for name in ("acked_session", "acked_seq", "last_session", "last_seq"):
            _check_range(name, getattr(self, name), 0, 0xFFFFFFFF)
        if len(self.acked_mac) != ACKED_MAC_LEN:
            raise InvalidMessageError(f"acked_mac must be {ACKED_MAC_LEN} bytes")
        return self.FORMAT.pack(
            self.acked_session,
            self.acked_seq,
            self.acked_mac,
            self.code,
            self.last_session,
            self.last_seq,
        )

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Decode; InvalidPayloadError if malformed."""
        session, seq, mac, code, last_session, last_seq = _unpack(cls.FORMAT, payload, "ACK")
        return cls(seq, _enum(AckCode, code, "code"), session, mac, last_session, last_seq)


@dataclass(frozen=True, slots=True)
class Indication:
    """Something the box should show and say to the resident."""

    TYPE: ClassVar[MessageType] = MessageType.INDICATION
    FORMAT: ClassVar[struct.Struct] = struct.Struct(">BIBH")

    kind: IndicationKind
    ticket_ref: int = 0
    led: LedPattern = LedPattern.OFF
    voice_prompt: int = 0

    def to_payload(self) -> bytes:
        """The payload bytes; InvalidMessageError for out-of-range fields."""
        _check_range("ticket_ref", self.ticket_ref, 0, 0xFFFFFFFF)
        _check_range("voice_prompt", self.voice_prompt, 0, 0xFFFF)
        return self.FORMAT.pack(self.kind, self.ticket_ref, self.led, self.voice_prompt)

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Decode; InvalidPayloadError if malformed."""
        kind, ref, led, prompt = _unpack(cls.FORMAT, payload, "INDICATION")
        return cls(_enum(IndicationKind, kind, "kind"), ref, _enum(LedPattern, led, "led"), prompt)


@dataclass(frozen=True, slots=True)
class Config:
    """New reporting intervals and the time; 0 in a field leaves that setting alone."""

    TYPE: ClassVar[MessageType] = MessageType.CONFIG
    FORMAT: ClassVar[struct.Struct] = struct.Struct(">HHI")

    heartbeat_interval_s: int
    report_interval_s: int
    clock_unix: int = 0

    def to_payload(self) -> bytes:
        """The payload bytes; InvalidMessageError for out-of-range fields."""
        _check_range("heartbeat_interval_s", self.heartbeat_interval_s, 0, 0xFFFF)
        _check_range("report_interval_s", self.report_interval_s, 0, 0xFFFF)
        _check_range("clock_unix", self.clock_unix, 0, 0xFFFFFFFF)
        return self.FORMAT.pack(self.heartbeat_interval_s, self.report_interval_s, self.clock_unix)

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Decode; InvalidPayloadError if malformed."""
        heartbeat, report, clock = _unpack(cls.FORMAT, payload, "CONFIG")
        return cls(heartbeat, report, clock)


@dataclass(frozen=True, slots=True)
class Provision:
    """Key rotation: the new key wrapped under the current one, with a check value."""

    TYPE: ClassVar[MessageType] = MessageType.PROVISION
    FORMAT: ClassVar[struct.Struct] = struct.Struct(f">B{WRAPPED_KEY_LEN}s{KEY_CHECK_LEN}s")

    key_id: int
    """The id the new key will have in frame headers (the current key_id + 1, mod 256)."""
    wrapped_key: bytes
    key_check: bytes

    def __repr__(self) -> str:
        """Key material is not printed."""
        return f"Provision(key_id={self.key_id}, wrapped_key=<hidden>)"

    def to_payload(self) -> bytes:
        """The payload bytes; InvalidMessageError for out-of-range fields."""
        _check_range("key_id", self.key_id, 0, 255)
        if len(self.wrapped_key) != WRAPPED_KEY_LEN or len(self.key_check) != KEY_CHECK_LEN:
            raise InvalidMessageError("wrapped_key must be 16 bytes and key_check 4 bytes")
        return self.FORMAT.pack(self.key_id, self.wrapped_key, self.key_check)

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Decode; InvalidPayloadError if malformed."""
        version, wrapped, check = _unpack(cls.FORMAT, payload, "PROVISION")
        return cls(version, wrapped, check)


Message = KeyEvent | Heartbeat | WaterReading | DeviceAlarm | Ack | Indication | Config | Provision

MESSAGE_CLASSES: dict[MessageType, type[Message]] = {
    cls.TYPE: cls
    for cls in (KeyEvent, Heartbeat, WaterReading, DeviceAlarm, Ack, Indication, Config, Provision)
}
