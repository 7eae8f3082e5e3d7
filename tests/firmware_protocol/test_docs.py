"""docs/protocol.md's worked example is the golden vector it names, byte for byte."""

from __future__ import annotations

import re
from pathlib import Path

from firmware_protocol import crc16, encode_serial
from tests.firmware_protocol.vectors import VALID

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
HEX_BYTE = re.compile(r"^[0-9a-f]{2}$")


def worked_example() -> tuple[str, bytes, str]:
    """(vector name, the bytes drawn in the example, the prose after it)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Worked example (vector `", 1)[1]
    name = section.split("`", 1)[0]
    block, prose = section.split("```\n", 2)[1:3]
    drawn = bytearray()
    for line in block.splitlines():
        for token in line.split():
            if not HEX_BYTE.match(token):
                break
            drawn.append(int(token, 16))
    return name, bytes(drawn), prose.split("\n\n", 1)[0]


def test_worked_example_matches_its_golden_vector() -> None:
    name, drawn, prose = worked_example()
    vector = next(v for v in VALID if v["name"] == name)
    frame = bytes.fromhex(vector["frame_hex"])
    assert drawn == frame
    crc = crc16(frame)
    assert f"CRC `0x{crc:04x}`" in prose
    serial = encode_serial(frame)
    assert serial.hex() == vector["serial_hex"]
    assert serial == b"\x7e" + frame + crc.to_bytes(2, "big") + b"\x7e"  # nothing to stuff
    shown = re.search(r"`7e ([0-9a-f]+)…([0-9a-f]+) ([0-9a-f]{4}) 7e`", prose)
    assert shown is not None
    head, tail, crc_text = shown.groups()
    assert frame.hex().startswith(head)
    assert frame.hex().endswith(tail)
    assert crc_text == f"{crc:04x}"
