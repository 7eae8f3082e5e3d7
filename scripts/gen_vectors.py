"""Generate firmware_protocol/vectors/v1.json, the golden vectors for every implementation.

Run it to (re)write the file; with --check it exits 1 if the file differs from what the
code makes (CI runs the check).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
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
    encode,
    encode_serial,
    wrap_key,
)

VECTORS = Path(__file__).resolve().parent.parent / "firmware_protocol" / "vectors" / "v1.json"
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
OTHER_KEY = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
NEW_KEY = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
BOX = "b1da000000000001"
METER = "b1da00000000a002"
STUFFED = "7e7d7e7d7e7d7e7d"  # device id whose bytes all need stuffing on serial
T0 = 1_780_000_000


def _fields(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in dataclasses.fields(message):
        name = field.name
        value = getattr(message, name)
        if isinstance(value, bool):
            out[name] = value
        elif isinstance(value, MeterStatus):
            out[name] = int(value)
        elif hasattr(value, "name") and hasattr(value, "value"):
            out[name] = value.name
        elif isinstance(value, bytes):
            out[name] = value.hex()
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


def _valid() -> list[tuple[str, str, str, int, Message, bytes]]:
    wrapped, check = wrap_key(KEY, BOX, 7, NEW_KEY)
    return [
        ("key_green", "green key, one short press", BOX, 1, KeyEvent(Key.GREEN_CALL), KEY),
        ("key_red", "red key (hang up)", BOX, 2, KeyEvent(Key.RED_HANGUP), KEY),
        (
            "key_thumbs_up_long",
            "thumbs-up, long press",
            BOX,
            3,
            KeyEvent(Key.THUMBS_UP, 1, True),
            KEY,
        ),
        (
            "key_thumbs_down_max_count",
            "thumbs-down pressed 255 times",
            BOX,
            4,
            KeyEvent(Key.THUMBS_DOWN, 255, False),
            KEY,
        ),
        (
            "heartbeat_box",
            "call box heartbeat, weak signal",
            BOX,
            5,
            Heartbeat(87, 2950, -97, (1, 2, 3), 86_400, 60),
            KEY,
        ),
        (
            "heartbeat_mains",
            "mains powered meter, max values",
            METER,
            0xFFFFFFFF,
            Heartbeat(255, 65535, 127, (255, 255, 255), 0xFFFFFFFF, 65535),
            OTHER_KEY,
        ),
        (
            "water_reading",
            "meter reading with flow",
            METER,
            10,
            WaterReading(123_456, 42, MeterStatus(0)),
            OTHER_KEY,
        ),
        (
            "water_reading_all_status",
            "every meter status bit set",
            METER,
            11,
            WaterReading(0xFFFFFFFF, 65535, MeterStatus(0x7F)),
            OTHER_KEY,
        ),
        ("alarm_tamper", "tamper raised", BOX, 6, DeviceAlarm(AlarmKind.TAMPER, True, 0), KEY),
        (
            "alarm_low_battery_cleared",
            "low battery cleared at 3100 mV",
            BOX,
            7,
            DeviceAlarm(AlarmKind.LOW_BATTERY, False, 3100),
            KEY,
        ),
        ("ack_accepted", "gateway accepts uplink 1", BOX, 1, Ack(1, AckCode.ACCEPTED), KEY),
        ("ack_duplicate", "gateway saw uplink 5 already", BOX, 2, Ack(5, AckCode.DUPLICATE), KEY),
        (
            "nack_invalid_payload",
            "gateway refuses uplink 9",
            BOX,
            3,
            Ack(9, AckCode.NACK_INVALID_PAYLOAD),
            KEY,
        ),
        (
            "indication_on_the_way",
            "helper on the way for ticket 4242",
            BOX,
            4,
            Indication(IndicationKind.HELPER_ON_THE_WAY, 4242, LedPattern.GREEN_BLINK, 12),
            KEY,
        ),
        (
            "indication_are_you_ok",
            "are-you-ok prompt",
            BOX,
            5,
            Indication(IndicationKind.ARE_YOU_OK, 0, LedPattern.AMBER_BLINK, 30),
            KEY,
        ),
        ("config", "new intervals and clock", BOX, 6, Config(60, 900, T0), KEY),
        (
            "provision",
            f"rotate to key {NEW_KEY.hex()} (wrapped with seq 7)",
            BOX,
            7,
            Provision(1, wrapped, check),
            KEY,
        ),
        (
            "stuffing",
            "device id and payload full of 0x7E/0x7D: serial stuffing",
            STUFFED,
            0x7E7D7E7D,
            KeyEvent(Key.GREEN_CALL, 0x7E, False),
            KEY,
        ),
    ]


def _invalid(frames: dict[str, bytes]) -> list[dict[str, str]]:
    green = frames["key_green"]
    bad_mac = green[:-1] + bytes([green[-1] ^ 0x01])
    serial_green = encode_serial(green)
    bad_crc = serial_green[:-2] + bytes([serial_green[-2] ^ 0x01]) + serial_green[-1:]
    return [
        {"name": "bad_mac", "error": "BadMacError", "key": KEY.hex(), "frame_hex": bad_mac.hex()},
        {
            "name": "truncated",
            "error": "TruncatedFrameError",
            "key": KEY.hex(),
            "frame_hex": green[:-3].hex(),
        },
        {
            "name": "too_long",
            "error": "FrameTooLongError",
            "key": KEY.hex(),
            "frame_hex": (green + bytes(200)).hex(),
        },
        {
            "name": "length_mismatch",
            "error": "LengthMismatchError",
            "key": KEY.hex(),
            "frame_hex": (green + b"\x00").hex(),
        },
        {
            "name": "unknown_version",
            "error": "UnknownVersionError",
            "key": KEY.hex(),
            "frame_hex": (b"\x02" + green[1:]).hex(),
        },
        {
            "name": "unknown_type",
            "error": "UnknownMessageTypeError",
            "key": KEY.hex(),
            "frame_hex": (green[:1] + b"\x05" + green[2:]).hex(),
        },
        {
            "name": "invalid_payload",
            "error": "InvalidPayloadError",
            "key": KEY.hex(),
            "frame_hex": encode_with_raw_payload(b"\x09\x01\x00").hex(),
        },
        {"name": "bad_crc", "error": "BadCrcError", "key": KEY.hex(), "serial_hex": bad_crc.hex()},
        {
            "name": "invalid_escape",
            "error": "InvalidEscapeError",
            "key": KEY.hex(),
            "serial_hex": (serial_green[:5] + b"\x7d\x01" + serial_green[5:]).hex(),
        },
    ]


def encode_with_raw_payload(payload: bytes) -> bytes:
    """A correctly MACed KEY_EVENT frame around an arbitrary payload (for invalid vectors)."""
    import hashlib
    import hmac
    import struct

    header = struct.Struct(">BB8sIIH").pack(1, 0x01, bytes.fromhex(BOX), 1, T0, len(payload))
    signed = header + payload
    return signed + hmac.new(KEY, signed, hashlib.sha256).digest()[:8]


def build() -> dict[str, Any]:
    """The whole vector document."""
    valid = []
    frames: dict[str, bytes] = {}
    for name, description, device_id, seq, message, key in _valid():
        frame = encode(Envelope(device_id, seq, T0, message), key)
        frames[name] = frame
        valid.append(
            {
                "name": name,
                "description": description,
                "key": key.hex(),
                "device_id": device_id,
                "seq": seq,
                "timestamp": T0,
                "msg_type": message.TYPE.name,
                "fields": _fields(message),
                "frame_hex": frame.hex(),
                "serial_hex": encode_serial(frame).hex(),
            }
        )
    return {
        "protocol": "bidao firmware protocol",
        "version": 1,
        "notes": "frame_hex is the MQTT payload; serial_hex is the same frame on a serial line.",
        "valid": valid,
        "invalid": _invalid(frames),
    }


def render() -> str:
    """The JSON text of the vector file."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write or check the vector file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = VECTORS.read_text(encoding="utf-8") if VECTORS.exists() else ""
        if current != text:
            print(f"{VECTORS} is out of date: run python scripts/gen_vectors.py", file=sys.stderr)
            return 1
        print(f"{VECTORS.name}: up to date")
        return 0
    VECTORS.parent.mkdir(parents=True, exist_ok=True)
    VECTORS.write_text(text, encoding="utf-8")
    print(f"wrote {VECTORS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
