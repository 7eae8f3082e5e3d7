"""Which device kinds send which messages: the rest is refused with a nack, never stored.

A water meter has no keys, so a key event from one can never become a call for help; a
call box has no water sensor, so a reading or a leak alarm from one is not believed. Such a
frame authenticates (the device holds its key) but is not what the device is: it is
answered `NACK_NOT_FOR_KIND` (0x87, the device drops the frame), counted as
`bidao_frames_nacked_total{reason="wrong_kind"}`, logged (rate-limited), and not stored.
"""

from __future__ import annotations

from firmware_protocol import AckCode, AlarmKind, DeviceAlarm, KeyEvent, Message, WaterReading
from gateway.domain.devices import DeviceKind

WRONG_KIND = "wrong_kind"
"""The counter reason of a refused message."""
WRONG_KIND_CODE = AckCode.NACK_NOT_FOR_KIND
"""The nack a refused message gets."""

_ALARMS: dict[DeviceKind, frozenset[AlarmKind]] = {
    "call_box": frozenset({AlarmKind.TAMPER, AlarmKind.LOW_BATTERY, AlarmKind.POWER_LOSS}),
    "water_meter": frozenset(AlarmKind),
}
"""Alarms each kind can raise: a leak or a valve fault needs a meter."""


def wrong_kind(kind: DeviceKind, message: Message) -> bool:
    """Whether a device of `kind` cannot have sent `message`."""
    if isinstance(message, KeyEvent):
        return kind != "call_box"
    if isinstance(message, WaterReading):
        return kind != "water_meter"
    if isinstance(message, DeviceAlarm):
        return message.alarm not in _ALARMS[kind]
    return False
