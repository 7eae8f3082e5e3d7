"""Serial framing for RS-485/UART lines: HDLC-style flags, byte stuffing and CRC-16.

    0x7E | stuff( frame | crc16_be(frame) ) | 0x7E

CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) over the
unstuffed frame. Stuffing: 0x7E -> 0x7D 0x5E, 0x7D -> 0x7D 0x5D. A closing flag may be
the next frame's opening flag; repeated flags are idle fill. Bytes before the first
flag are line noise and are skipped.
"""

from __future__ import annotations

import binascii

from firmware_protocol.errors import (
    BadCrcError,
    FrameTooLongError,
    InvalidEscapeError,
    ProtocolError,
    TruncatedFrameError,
)
from firmware_protocol.frame import MAX_FRAME_LEN, MIN_FRAME_LEN

FLAG = 0x7E
ESCAPE = 0x7D
ESCAPE_XOR = 0x20
CRC_LEN = 2
MAX_BODY_LEN = MAX_FRAME_LEN + CRC_LEN
"""Largest unstuffed body (frame and CRC) between two flags."""
MAX_STUFFED_LEN = 2 * MAX_BODY_LEN
"""Largest stuffed body: past this without a closing flag, the bytes are discarded."""

_FLAG_BYTES = bytes([FLAG])
_ESCAPE_BYTES = bytes([ESCAPE])


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of `data` (check value 0x29B1 for b"123456789")."""
    return binascii.crc_hqx(data, 0xFFFF)


def _stuff(body: bytes) -> bytes:
    return body.replace(_ESCAPE_BYTES, b"\x7d\x5d").replace(_FLAG_BYTES, b"\x7d\x5e")


def _unstuff(stuffed: bytes) -> bytes:
    parts = stuffed.split(_ESCAPE_BYTES)
    out = bytearray(parts[0])
    for part in parts[1:]:
        if not part or part[0] not in (FLAG ^ ESCAPE_XOR, ESCAPE ^ ESCAPE_XOR):
            raise InvalidEscapeError("0x7D must be followed by 0x5E or 0x5D")
        out.append(part[0] ^ ESCAPE_XOR)
        out += part[1:]
    return bytes(out)


def encode_serial(frame: bytes) -> bytes:
    """Wrap one frame for the serial line."""
    if len(frame) > MAX_FRAME_LEN:
        raise FrameTooLongError(f"frame is {len(frame)} bytes, the cap is {MAX_FRAME_LEN}")
    body = frame + crc16(frame).to_bytes(CRC_LEN, "big")
    return _FLAG_BYTES + _stuff(body) + _FLAG_BYTES


def _check_body(stuffed: bytes) -> bytes | ProtocolError:
    if len(stuffed) > MAX_STUFFED_LEN:
        return FrameTooLongError(f"serial body of {len(stuffed)} bytes exceeds the cap")
    try:
        body = _unstuff(stuffed)
    except InvalidEscapeError as exc:
        return exc
    if len(body) > MAX_BODY_LEN:
        return FrameTooLongError(f"serial body of {len(body)} bytes exceeds {MAX_BODY_LEN}")
    if len(body) < MIN_FRAME_LEN + CRC_LEN:
        return TruncatedFrameError(f"serial body of {len(body)} bytes is too short for a frame")
    frame, crc = body[:-CRC_LEN], int.from_bytes(body[-CRC_LEN:], "big")
    if crc16(frame) != crc:
        return BadCrcError(f"CRC 0x{crc:04x} does not match 0x{crc16(frame):04x}")
    return frame


def decode_serial(buffer: bytes | bytearray) -> tuple[int, list[bytes | ProtocolError]]:
    """(bytes consumed, frames or errors found); 0 consumed and no items means: need more."""
    data = bytes(buffer)
    items: list[bytes | ProtocolError] = []
    start = data.find(_FLAG_BYTES)
    if start < 0:
        return len(data), items
    while True:
        while start + 1 < len(data) and data[start + 1] == FLAG:
            start += 1
        end = data.find(_FLAG_BYTES, start + 1)
        if end < 0:
            if len(data) - start - 1 > MAX_STUFFED_LEN:
                items.append(FrameTooLongError("no closing flag within the serial body cap"))
                return len(data), items
            return start, items
        items.append(_check_body(data[start + 1 : end]))
        start = end


class SerialStreamDecoder:
    """Feeds arbitrary chunks of a serial stream; keeps only an incomplete tail."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes held back waiting for the rest of a frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | ProtocolError]:
        """Frames (CRC checked and stripped) or errors found in the stream so far."""
        self._buffer += data
        consumed, items = decode_serial(self._buffer)
        del self._buffer[:consumed]
        return items
