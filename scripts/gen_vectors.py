"""Generate firmware_protocol/vectors/v2.json, the golden vectors for every implementation.

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
    compute_mac,
    encode,
    encode_serial,
    wrap_key,
)
from firmware_protocol.frame import HEADER
from firmware_protocol.sequence import SequenceTracker

VECTORS = Path(__file__).resolve().parent.parent / "firmware_protocol" / "vectors" / "v2.json"
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
OTHER_KEY = bytes.fromhex("f0e1d2c3b4a5968778695a4b3c2d1e0f")
NEW_KEY = bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
BOX = "b1da000000000001"
METER = "b1da00000000a002"
STUFFED = "7e7d7e7d7e7d7e7d"  # device id whose bytes all need stuffing on serial
T0 = 1_780_000_000
SESSION = 3
MAC4 = bytes.fromhex("a1b2c3d4")


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


@dataclasses.dataclass(frozen=True)
class _V:
    name: str
    description: str
    device_id: str
    session: int
    seq: int
    message: Message
    key: bytes = KEY
    key_id: int = 0


def _valid() -> list[_V]:
    wrapped, check = wrap_key(KEY, BOX, SESSION, 7, NEW_KEY)
    out = [
        _V("key_green", "green key, one short press", BOX, SESSION, 1, KeyEvent(Key.GREEN_CALL)),
        _V("key_red", "red key (hang up)", BOX, SESSION, 2, KeyEvent(Key.RED_HANGUP)),
        _V(
            "key_thumbs_up_long",
            "thumbs-up, long press",
            BOX,
            SESSION,
            3,
            KeyEvent(Key.THUMBS_UP, 1, True),
        ),
        _V(
            "key_thumbs_down_max_count",
            "thumbs-down pressed 255 times",
            BOX,
            SESSION,
            4,
            KeyEvent(Key.THUMBS_DOWN, 255, False),
        ),
        _V(
            "heartbeat_box",
            "call box heartbeat, weak signal, 2 unanswered sends",
            BOX,
            SESSION,
            5,
            Heartbeat(87, 2950, -97, (1, 2, 3), 86_400, 60, 2, 1, 9),
        ),
        _V(
            "heartbeat_mains",
            "mains powered meter, max values, highest session and seq",
            METER,
            0xFFFFFFFE,
            0xFFFFFFFE,
            Heartbeat(255, 65535, 127, (255, 255, 255), 0xFFFFFFFF, 65535, 65535, 65535, 2**32 - 1),
            OTHER_KEY,
            255,
        ),
        _V(
            "water_reading",
            "meter reading with flow, first frame of a blank device (session 0)",
            METER,
            0,
            1,
            WaterReading(123_456, 42, MeterStatus(0)),
            OTHER_KEY,
        ),
        _V(
            "water_reading_all_status",
            "every meter status bit set",
            METER,
            0,
            2,
            WaterReading(0xFFFFFFFF, 65535, MeterStatus(0x7F)),
            OTHER_KEY,
        ),
    ]
    for n, alarm in enumerate(AlarmKind):
        out.append(
            _V(
                f"alarm_{alarm.name.lower()}",
                f"alarm {alarm.name} raised",
                BOX,
                SESSION,
                10 + n,
                DeviceAlarm(alarm, True, 3100 if alarm == AlarmKind.LOW_BATTERY else 0),
            )
        )
    out.append(
        _V(
            "alarm_low_battery_cleared",
            "low battery cleared at 3100 mV",
            BOX,
            SESSION,
            20,
            DeviceAlarm(AlarmKind.LOW_BATTERY, False, 3100),
        )
    )
    out.extend(
        _V(
            f"ack_{code.name.lower()}",
            f"ACK {code.name} for uplink (3, 9); gateway's newest is (3, 12)",
            BOX,
            SESSION,
            0,
            Ack(9, code, SESSION, MAC4, SESSION, 12),
        )
        for code in AckCode
    )
    for n, kind in enumerate(IndicationKind):
        out.append(
            _V(
                f"indication_{kind.name.lower()}",
                f"indication {kind.name} for ticket 4242",
                BOX,
                SESSION,
                1 + n,
                Indication(kind, 4242, next(iter(LedPattern)), n),
            )
        )
    for n, led in enumerate(LedPattern):
        out.append(
            _V(
                f"led_{led.name.lower()}",
                f"LED pattern {led.name}",
                BOX,
                SESSION,
                50 + n,
                Indication(next(iter(IndicationKind)), 0, led, 0),
            )
        )
    out += [
        _V("config", "new intervals and clock", BOX, SESSION, 6, Config(60, 900, T0)),
        _V("config_clock_only", "set the clock only", BOX, SESSION, 8, Config(0, 0, T0)),
        _V(
            "provision",
            f"rotate to key {NEW_KEY.hex()} as key_id 1 (wrapped for session 3, seq 7)",
            BOX,
            SESSION,
            7,
            Provision(1, wrapped, check),
        ),
        _V(
            "stuffing",
            "device id and payload full of 0x7E/0x7D: serial stuffing",
            STUFFED,
            0x7E7D7E7D,
            0x7E7D7E7D,
            KeyEvent(Key.GREEN_CALL, 0x7E, False),
            key_id=0x7E,
        ),
    ]
    return out


def _raw(
    payload: bytes,
    *,
    version: int = 2,
    msg_type: int = 0x01,
    payload_len: int | None = None,
    session: int = SESSION,
    seq: int = 1,
) -> bytes:
    """A correctly MACed frame around arbitrary header values and payload."""
    length = len(payload) if payload_len is None else payload_len
    header = HEADER.pack(version, msg_type, bytes.fromhex(BOX), 0, session, seq, T0, length)
    signed = header + payload
    return signed + compute_mac(KEY, signed)


def _invalid(frames: dict[str, bytes]) -> list[dict[str, Any]]:
    green = frames["key_green"]
    bad_mac = green[:-1] + bytes([green[-1] ^ 0x01])
    serial_green = encode_serial(green)
    bad_crc = serial_green[:-2] + bytes([serial_green[-2] ^ 0x01]) + serial_green[-1:]
    short_serial = encode_serial(green[:20])  # good CRC, too short for a frame
    wrapped, _ = wrap_key(KEY, BOX, SESSION, 7, NEW_KEY)
    bad_check = encode(
        Envelope(BOX, 7, T0, Provision(1, wrapped, b"\x00\x00\x00\x00"), SESSION), KEY
    )
    cases: list[tuple[str, str, str, bytes]] = [
        ("truncated_header", "TruncatedFrameError", "frame_hex", green[:20]),
        ("truncated_below_minimum", "TruncatedFrameError", "frame_hex", green[:32]),
        ("truncated_payload", "TruncatedFrameError", "frame_hex", green[:-1]),
        ("too_long", "FrameTooLongError", "frame_hex", green + bytes(201)),
        ("unknown_version_1", "UnknownVersionError", "frame_hex", b"\x01" + green[1:]),
        ("unknown_type", "UnknownMessageTypeError", "frame_hex", green[:1] + b"\x05" + green[2:]),
        (
            "payload_len_over_200",
            "PayloadTooLongError",
            "frame_hex",
            _raw(b"\x01\x01\x00", payload_len=201),
        ),
        ("length_mismatch", "LengthMismatchError", "frame_hex", green + b"\x00"),
        ("bad_mac", "BadMacError", "frame_hex", bad_mac),
        ("invalid_payload", "InvalidPayloadError", "frame_hex", _raw(b"\x09\x01\x00")),
        ("key_check", "KeyCheckError", "frame_hex", bad_check),
        ("bad_crc", "BadCrcError", "serial_hex", bad_crc),
        (
            "invalid_escape",
            "InvalidEscapeError",
            "serial_hex",
            serial_green[:5] + b"\x7d\x01" + serial_green[5:],
        ),
        ("serial_body_without_crc", "TruncatedFrameError", "serial_hex", b"\x7e\x01\x7e"),
        ("serial_short_frame", "TruncatedFrameError", "serial_hex", short_serial),
    ]
    import firmware_protocol as fp

    return [
        {
            "name": name,
            "error": error,
            "code": getattr(fp, error).code,
            "key": KEY.hex(),
            kind: data.hex(),
        }
        for name, error, kind, data in cases
    ]


def _streams() -> list[dict[str, Any]]:
    """Uplinks offered one after another, each with the ACK the gateway owes it."""
    stories: list[tuple[str, str, list[tuple[int, int, bytes]], bool]] = [
        (
            "in_order_copy_and_late",
            "new frames, a copy (same MAC), a late frame within the window",
            [(3, 1, b"A"), (3, 3, b"B"), (3, 3, b"B"), (3, 2, b"C")],
            False,
        ),
        (
            "seq_reused_other_content",
            "a green press reusing (3, 2), already used by a heartbeat: renumbered",
            [(3, 1, b"A"), (3, 2, b"H"), (3, 2, b"G"), (4, 1, b"G")],
            False,
        ),
        (
            "counter_lost_reboot",
            "box back at session 1 after 20000 frames of session 3: resync, then session 4",
            [(3, 20000, b"A"), (1, 1, b"G"), (4, 1, b"G")],
            False,
        ),
        (
            "window_edge",
            "exactly 4096 below is accepted late, 4097 below is resynchronised",
            [(3, 5000, b"A"), (3, 904, b"B"), (3, 903, b"C")],
            False,
        ),
        (
            "blank_flash",
            "erased flash: the box uses session 0 and resynchronises above the gateway's newest",
            [(5, 10, b"A"), (0, 1, b"G"), (6, 1, b"G")],
            False,
        ),
        (
            "reserved_values",
            "0xFFFFFFFF as session or seq, and seq 0, are never accepted",
            [(3, 1, b"A"), (0xFFFFFFFF, 1, b"B"), (3, 0xFFFFFFFF, b"C"), (3, 0, b"D")],
            False,
        ),
        (
            "older_session",
            "a frame of an older session that was never stored: resync (it is renumbered)",
            [(3, 1, b"A"), (4, 1, b"B"), (3, 2, b"C"), (5, 1, b"C")],
            False,
        ),
        (
            "reset_counters",
            "after bidao device reset-counters a lower session is accepted",
            [(9, 100, b"A"), (1, 1, b"B")],
            True,
        ),
    ]
    out = []
    for name, description, frames, reset_before_last in stories:
        tracker = SequenceTracker()
        steps = []
        for index, (session, seq, content) in enumerate(frames):
            if reset_before_last and index == len(frames) - 1:
                tracker.reset()
                steps.append({"reset_counters": True})
            mac = compute_mac(KEY, content)
            code, last_session, last_seq = tracker.offer(session, seq, mac)
            steps.append(
                {
                    "session": session,
                    "seq": seq,
                    "mac": mac.hex(),
                    "code": code.name,
                    "last_session": last_session,
                    "last_seq": last_seq,
                }
            )
        out.append({"name": name, "description": description, "steps": steps})
    return out


def build() -> dict[str, Any]:
    """The whole vector document."""
    valid = []
    frames: dict[str, bytes] = {}
    for v in _valid():
        envelope = Envelope(v.device_id, v.seq, T0, v.message, v.session, v.key_id)
        frame = encode(envelope, v.key)
        frames[v.name] = frame
        valid.append(
            {
                "name": v.name,
                "description": v.description,
                "key": v.key.hex(),
                "device_id": v.device_id,
                "key_id": v.key_id,
                "session": v.session,
                "seq": v.seq,
                "timestamp": T0,
                "msg_type": v.message.TYPE.name,
                "fields": _fields(v.message),
                "frame_hex": frame.hex(),
                "serial_hex": encode_serial(frame).hex(),
            }
        )
    return {
        "protocol": "bidao firmware protocol",
        "version": 2,
        "notes": "frame_hex is the MQTT payload; serial_hex is the same frame on a serial line;"
        " streams are uplinks offered in order with the ACK code and (last_session, last_seq)"
        " the gateway answers (mac: the frame's 8-byte MAC).",
        "valid": valid,
        "invalid": _invalid(frames),
        "streams": _streams(),
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
