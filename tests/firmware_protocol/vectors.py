"""Loading the golden vectors and turning their fields back into messages."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from firmware_protocol import (
    Ack,
    AckCode,
    AlarmKind,
    Config,
    DeviceAlarm,
    Envelope,
    Heartbeat,
    Indication,
    IndicationKind,
    Key,
    KeyEvent,
    LedPattern,
    Message,
    MeterStatus,
    Provision,
    WaterReading,
)


def load() -> dict[str, Any]:
    """The vector document shipped with the package."""
    text = resources.files("firmware_protocol").joinpath("vectors/v2.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def message_of(vector: dict[str, Any]) -> Message:  # noqa: PLR0911 - one case per type
    """The message a valid vector describes."""
    f = vector["fields"]
    match vector["msg_type"]:
        case "KEY_EVENT":
            return KeyEvent(Key[f["key"]], f["press_count"], f["long_press"])
        case "HEARTBEAT":
            return Heartbeat(
                f["battery_pct"],
                f["battery_mv"],
                f["rssi_dbm"],
                tuple(f["firmware"]),
                f["uptime_s"],
                f["heartbeat_interval_s"],
                f["unanswered"],
                f["refused_downlinks"],
                f["last_downlink_seq"],
            )
        case "WATER_READING":
            return WaterReading(f["total_litres"], f["flow_lph"], MeterStatus(f["status"]))
        case "DEVICE_ALARM":
            return DeviceAlarm(AlarmKind[f["alarm"]], f["active"], f["value"])
        case "ACK":
            return Ack(
                f["acked_seq"],
                AckCode[f["code"]],
                f["acked_session"],
                bytes.fromhex(f["acked_mac"]),
                f["last_session"],
                f["last_seq"],
            )
        case "INDICATION":
            return Indication(
                IndicationKind[f["kind"]],
                f["ticket_ref"],
                LedPattern[f["led"]],
                f["voice_prompt"],
            )
        case "CONFIG":
            return Config(f["heartbeat_interval_s"], f["report_interval_s"], f["clock_unix"])
        case "PROVISION":
            return Provision(
                f["key_id"], bytes.fromhex(f["wrapped_key"]), bytes.fromhex(f["key_check"])
            )
    raise AssertionError(vector["msg_type"])


def envelope_of(vector: dict[str, Any]) -> Envelope:
    """The envelope a valid vector describes."""
    return Envelope(
        vector["device_id"],
        vector["seq"],
        vector["timestamp"],
        message_of(vector),
        vector["session"],
        vector["key_id"],
    )


VECTORS = load()
VALID: list[dict[str, Any]] = VECTORS["valid"]
INVALID: list[dict[str, Any]] = VECTORS["invalid"]
STREAMS: list[dict[str, Any]] = VECTORS["streams"]
