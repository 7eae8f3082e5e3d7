"""Golden vectors: every one encodes to its bytes and decodes back, on both transports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import firmware_protocol as fp
from firmware_protocol import SerialStreamDecoder, decode, encode, encode_serial
from tests.firmware_protocol.vectors import INVALID, VALID, envelope_of

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
    if "frame_hex" in vector:
        with pytest.raises(error):
            decode(bytes.fromhex(vector["frame_hex"]), key)
    else:
        items = SerialStreamDecoder().feed(bytes.fromhex(vector["serial_hex"]))
        assert len(items) == 1
        assert isinstance(items[0], error)


def test_crc_check_value() -> None:
    assert fp.crc16(b"123456789") == 0x29B1
