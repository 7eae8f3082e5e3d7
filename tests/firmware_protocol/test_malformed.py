"""One named test per way a frame can be wrong; each raises its own ProtocolError subclass."""

from __future__ import annotations

import struct

import pytest

import firmware_protocol as fp
from firmware_protocol import (
    Envelope,
    Heartbeat,
    Key,
    KeyEvent,
    decode,
    decode_message,
    encode,
    parse_frame,
)

KEY = bytes(range(16))
DEVICE = "b1da000000000001"
GREEN = encode(Envelope(DEVICE, 1, 0, KeyEvent(Key.GREEN_CALL)), KEY)


def reframe(msg_type: int, payload: bytes, version: int = 2) -> bytes:
    header = struct.pack(
        ">BB8sBIIIH", version, msg_type, bytes.fromhex(DEVICE), 0, 1, 1, 0, len(payload)
    )
    return header + payload + fp.compute_mac(KEY, header + payload)


def test_bad_mac() -> None:
    with pytest.raises(fp.BadMacError):
        decode(GREEN, bytes(16))


def test_bad_mac_on_a_flipped_payload_bit() -> None:
    tampered = bytearray(GREEN)
    tampered[fp.HEADER_LEN] ^= 0x02
    with pytest.raises(fp.BadMacError):
        decode(bytes(tampered), KEY)


def test_truncated_below_the_header() -> None:
    with pytest.raises(fp.TruncatedFrameError):
        parse_frame(GREEN[:10])


def test_truncated_payload() -> None:
    with pytest.raises(fp.TruncatedFrameError):
        parse_frame(GREEN[:-1])


def test_too_long() -> None:
    with pytest.raises(fp.FrameTooLongError):
        parse_frame(GREEN + bytes(fp.MAX_FRAME_LEN))


def test_payload_len_over_the_cap() -> None:
    frame = bytearray(GREEN)
    frame[23:25] = (fp.MAX_PAYLOAD_LEN + 1).to_bytes(2, "big")
    with pytest.raises(fp.PayloadTooLongError):
        parse_frame(bytes(frame))


def test_trailing_bytes_are_a_length_mismatch() -> None:
    with pytest.raises(fp.LengthMismatchError):
        parse_frame(GREEN + b"\x00")


def test_unknown_version() -> None:
    with pytest.raises(fp.UnknownVersionError):
        parse_frame(reframe(0x01, b"\x01\x01\x00", version=1))


def test_unknown_message_type() -> None:
    with pytest.raises(fp.UnknownMessageTypeError):
        parse_frame(reframe(0x7F, b"\x01\x01\x00"))


@pytest.mark.parametrize(
    ("msg_type", "payload", "why"),
    [
        (0x01, b"\x01\x01", "short key event"),
        (0x01, b"\x09\x01\x00", "undefined key"),
        (0x01, b"\x01\x00\x00", "zero press count"),
        (0x01, b"\x01\x01\x02", "undefined flag bit"),
        (0x02, bytes(21), "zero heartbeat interval"),
        (0x02, b"\x65" + bytes(11) + b"\x01" + bytes(8), "battery 101 percent"),
        (0x02, bytes(13), "v1 heartbeat length"),
        (0x03, b"\x00\x00\x00\x01\x00\x00\x00\x80", "undefined meter status bit"),
        (0x04, b"\x07\x01\x00\x00", "undefined alarm"),
        (0x04, b"\x01\x02\x00\x00", "alarm state 2"),
        (0x81, bytes(12) + b"\x05" + bytes(8), "undefined ack code"),
        (0x81, b"\x00\x00\x00\x01\x00", "v1 ack length"),
        (0x82, b"\x0c\x00\x00\x00\x01\x00\x00\x00", "undefined indication"),
        (0x83, bytes(7), "short config"),
        (0x84, bytes(20), "short provision"),
    ],
)
def test_invalid_payload(msg_type: int, payload: bytes, why: str) -> None:
    frame = parse_frame(reframe(msg_type, payload))
    with pytest.raises(fp.InvalidPayloadError):
        decode_message(frame)


def test_invalid_escape_on_serial() -> None:
    items = fp.SerialStreamDecoder().feed(b"\x7e\x01\x7d\x00\x02\x7e")
    assert len(items) == 1
    assert isinstance(items[0], fp.InvalidEscapeError)


def test_bad_crc_on_serial() -> None:
    wire = bytearray(fp.encode_serial(GREEN))
    wire[3] ^= 0x01
    items = fp.SerialStreamDecoder().feed(bytes(wire))
    assert len(items) == 1
    assert isinstance(items[0], fp.BadCrcError)


def test_serial_body_without_closing_flag_is_capped() -> None:
    decoder = fp.SerialStreamDecoder()
    items = decoder.feed(b"\x7e" + b"\x01" * (fp.MAX_BODY_LEN * 2 + 10))
    assert len(items) == 1
    assert isinstance(items[0], fp.FrameTooLongError)
    assert decoder.buffered == 0
    # The line recovers at the next flag.
    assert decoder.feed(fp.encode_serial(GREEN)) == [GREEN]


def test_serial_body_too_short_for_a_crc() -> None:
    items = fp.SerialStreamDecoder().feed(b"\x7e\x01\x7e")
    assert isinstance(items[0], fp.TruncatedFrameError)


def test_encode_rejects_out_of_range_fields() -> None:
    with pytest.raises(fp.InvalidMessageError):
        encode(Envelope(DEVICE, 1, 0, KeyEvent(Key.GREEN_CALL, 256)), KEY)
    with pytest.raises(fp.InvalidMessageError):
        encode(Envelope(DEVICE, 2**32, 0, KeyEvent(Key.GREEN_CALL)), KEY)
    with pytest.raises(fp.InvalidMessageError):
        encode(Envelope(DEVICE, 1, 0, Heartbeat(101, 0, 0, (1, 0, 0), 0, 60)), KEY)
    with pytest.raises(fp.InvalidKeyError):
        encode(Envelope(DEVICE, 1, 0, KeyEvent(Key.GREEN_CALL)), b"short")
    with pytest.raises(fp.InvalidDeviceIdError):
        encode(Envelope("xyz", 1, 0, KeyEvent(Key.GREEN_CALL)), KEY)


def test_topics() -> None:
    assert fp.uplink_topic(DEVICE.upper()) == f"bidao/v2/0/{DEVICE}/up"
    assert fp.uplink_topic(DEVICE, "44") == f"bidao/v2/44/{DEVICE}/up"
    assert fp.downlink_topic(DEVICE, "44") == f"bidao/v2/44/{DEVICE}/down"
    assert fp.parse_uplink_topic(f"bidao/v2/0/{DEVICE}/up") == DEVICE
    assert fp.parse_uplink_topic_shard(f"bidao/v2/c3/{DEVICE}/up") == ("c3", DEVICE)
    assert fp.uplink_subscription() == "bidao/v2/+/+/up"
    assert fp.uplink_subscription("c3") == "bidao/v2/c3/+/up"
    for bad in (
        "bidao/v2/0/xyz/up",
        f"bidao/v2/0/{DEVICE}/down",
        f"bidao/v1/{DEVICE}/up",
        f"bidao/v2/{DEVICE}/up",
        f"bidao/v2/0/{DEVICE.upper()}/up",
        f"bidao/v2/C3/{DEVICE}/up",
        f"bidao/v2/123456789/{DEVICE}/up",
        "bidao/v2/0/+/up",
        "x" * 100,
    ):
        with pytest.raises(fp.InvalidTopicError):
            fp.parse_uplink_topic(bad)
    with pytest.raises(fp.TopicMismatchError):
        fp.check_topic_matches("b1da000000000002", parse_frame(GREEN))


def test_key_rotation_round_trip_and_check() -> None:
    new_key = bytes(range(100, 116))
    wrapped, check = fp.wrap_key(KEY, DEVICE, 2, 9, new_key)
    assert wrapped != new_key
    assert fp.unwrap_key(KEY, DEVICE, 2, 9, wrapped, check) == new_key
    with pytest.raises(fp.KeyCheckError):
        fp.unwrap_key(KEY, DEVICE, 2, 10, wrapped, check)  # another seq: another keystream
    with pytest.raises(fp.KeyCheckError):
        fp.unwrap_key(KEY, DEVICE, 3, 9, wrapped, check)  # another session too


def test_frames_below_the_minimum_are_truncated_at_every_length() -> None:
    for size in range(fp.MIN_FRAME_LEN):
        with pytest.raises(fp.TruncatedFrameError):
            parse_frame(GREEN[:size])


def test_session_and_key_id_are_in_the_header() -> None:
    frame = parse_frame(encode(Envelope(DEVICE, 7, 0, KeyEvent(Key.RED_HANGUP), 5, 9), KEY))
    assert (frame.key_id, frame.session, frame.seq) == (9, 5, 7)
    assert frame.position == (5 << 32) | 7
    with pytest.raises(fp.InvalidMessageError):
        encode(Envelope(DEVICE, 1, 0, KeyEvent(Key.GREEN_CALL), 2**32), KEY)
    with pytest.raises(fp.InvalidMessageError):
        encode(Envelope(DEVICE, 1, 0, KeyEvent(Key.GREEN_CALL), 1, 256), KEY)


def test_every_error_has_its_own_reason() -> None:
    classes = [
        c for c in vars(fp).values() if isinstance(c, type) and issubclass(c, fp.ProtocolError)
    ]
    reasons = [c.reason for c in classes]
    assert len(reasons) == len(set(reasons))
