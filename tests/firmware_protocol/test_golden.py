"""Golden vectors: every one encodes to its bytes and decodes back, on both transports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import firmware_protocol as fp
from firmware_protocol import SerialStreamDecoder, decode, encode, encode_serial
from firmware_protocol.sequence import SequenceTracker
from tests.firmware_protocol.vectors import INVALID, STREAMS, VALID, envelope_of

ROOT = Path(__file__).resolve().parents[2]
ids = [v["name"] for v in VALID]


def test_vector_file_is_what_the_generator_makes() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_vectors.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_every_message_type_has_a_vector() -> None:
    assert {v["msg_type"] for v in VALID} == {t.name for t in fp.MessageType}


def test_every_enum_value_has_a_vector() -> None:
    fields = [v["fields"] for v in VALID]
    assert {f["code"] for f in fields if "acked_mac" in f} == {c.name for c in fp.AckCode}
    assert {f["alarm"] for f in fields if "alarm" in f} == {a.name for a in fp.AlarmKind}
    assert {f["key"] for f in fields if "press_count" in f} == {k.name for k in fp.Key}
    assert {f["kind"] for f in fields if "led" in f} == {k.name for k in fp.IndicationKind}
    assert {f["led"] for f in fields if "led" in f} == {p.name for p in fp.LedPattern}


def test_every_decoder_error_has_a_vector_with_its_code() -> None:
    for vector in INVALID:
        assert getattr(fp, vector["error"]).code == vector["code"]
    named = {v["error"] for v in INVALID}
    decoder_errors = {
        "TruncatedFrameError",
        "FrameTooLongError",
        "UnknownVersionError",
        "UnknownMessageTypeError",
        "PayloadTooLongError",
        "LengthMismatchError",
        "BadMacError",
        "InvalidPayloadError",
        "BadCrcError",
        "InvalidEscapeError",
        "KeyCheckError",
    }
    assert named == decoder_errors


@pytest.mark.parametrize("stream", STREAMS, ids=[s["name"] for s in STREAMS])
def test_streams_follow_the_sequence_rules(stream: dict[str, Any]) -> None:
    tracker = SequenceTracker()
    for step in stream["steps"]:
        if step.get("reset_counters"):
            tracker.reset()
            continue
        got = tracker.offer(step["session"], step["seq"], bytes.fromhex(step["mac"]))
        assert got == (fp.AckCode[step["code"]], step["last_session"], step["last_seq"])


@pytest.mark.parametrize("vector", VALID, ids=ids)
def test_encode_gives_the_golden_bytes(vector: dict[str, Any]) -> None:
    frame = encode(envelope_of(vector), bytes.fromhex(vector["key"]))
    assert frame.hex() == vector["frame_hex"]
    assert encode_serial(frame).hex() == vector["serial_hex"]


@pytest.mark.parametrize("vector", VALID, ids=ids)
def test_decode_gives_the_golden_fields(vector: dict[str, Any]) -> None:
    assert decode(bytes.fromhex(vector["frame_hex"]), bytes.fromhex(vector["key"])) == (
        envelope_of(vector)
    )


@pytest.mark.parametrize("vector", VALID, ids=ids)
def test_serial_whole_split_and_byte_by_byte(vector: dict[str, Any]) -> None:
    wire = bytes.fromhex(vector["serial_hex"])
    frame = bytes.fromhex(vector["frame_hex"])
    assert SerialStreamDecoder().feed(wire) == [frame]
    for cut in range(1, len(wire)):
        decoder = SerialStreamDecoder()
        assert decoder.feed(wire[:cut]) + decoder.feed(wire[cut:]) == [frame], cut
    decoder = SerialStreamDecoder()
    out: list[bytes | fp.ProtocolError] = []
    for byte in wire:
        out += decoder.feed(bytes([byte]))
    assert out == [frame]
    assert decoder.buffered <= 1


def test_serial_many_frames_concatenated_with_shared_flags_and_noise() -> None:
    frames = [bytes.fromhex(v["frame_hex"]) for v in VALID]
    separate = b"".join(encode_serial(f) for f in frames)
    shared = b"\x7e" + b"\x7e".join(encode_serial(f)[1:-1] for f in frames) + b"\x7e"
    noisy = b"\x00\xff\x13" + b"\x7e\x7e\x7e".join(encode_serial(f) for f in frames)
    for stream in (separate, shared, noisy):
        decoder = SerialStreamDecoder()
        got = [item for i in range(0, len(stream), 7) for item in decoder.feed(stream[i : i + 7])]
        assert got == frames


@pytest.mark.parametrize("vector", INVALID, ids=[v["name"] for v in INVALID])
def test_invalid_vectors_raise_their_named_error(vector: dict[str, Any]) -> None:
    error: type[fp.ProtocolError] = getattr(fp, vector["error"])
    key = bytes.fromhex(vector["key"])
    if error is fp.KeyCheckError:
        envelope = decode(bytes.fromhex(vector["frame_hex"]), key)
        message = envelope.message
        assert isinstance(message, fp.Provision)
        with pytest.raises(error):
            fp.unwrap_key(
                key,
                envelope.device_id,
                envelope.session,
                envelope.seq,
                message.wrapped_key,
                message.key_check,
            )
    elif "frame_hex" in vector:
        with pytest.raises(error):
            decode(bytes.fromhex(vector["frame_hex"]), key)
    else:
        items = SerialStreamDecoder().feed(bytes.fromhex(vector["serial_hex"]))
        assert len(items) == 1
        assert isinstance(items[0], error)


def test_crc_check_value() -> None:
    assert fp.crc16(b"123456789") == 0x29B1
