"""Property-based round trips and a bounded fuzz of the decoders."""

from __future__ import annotations

import contextlib
import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

import firmware_protocol as fp
from firmware_protocol import Envelope, Message, SerialStreamDecoder, decode, encode

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(fp.KeyEvent, st.sampled_from(fp.Key), st.integers(1, 255), st.booleans()),
    st.builds(
        fp.Heartbeat,
        st.one_of(st.integers(0, 100), st.just(255)),
        u16,
        st.integers(-128, 127),
        st.tuples(u8, u8, u8),
        u32,
        st.integers(1, 0xFFFF),
        u16,
        u16,
        u32,
    ),
    st.builds(fp.WaterReading, u32, u16, st.integers(0, 0x7F).map(fp.MeterStatus)),
    st.builds(fp.DeviceAlarm, st.sampled_from(fp.AlarmKind), st.booleans(), u16),
    st.builds(
        fp.Ack, u32, st.sampled_from(fp.AckCode), u32, st.binary(min_size=4, max_size=4), u32, u32
    ),
    st.builds(
        fp.Indication, st.sampled_from(fp.IndicationKind), u32, st.sampled_from(fp.LedPattern), u16
    ),
    st.builds(fp.Config, u16, u16, u32),
    st.builds(
        fp.Provision, u8, st.binary(min_size=16, max_size=16), st.binary(min_size=4, max_size=4)
    ),
)
device_ids = st.binary(min_size=8, max_size=8).map(bytes.hex)
keys = st.binary(min_size=16, max_size=16)
envelopes = st.builds(Envelope, device_ids, u32, u32, messages, u32, u8)


@given(envelopes, keys)
def test_decode_encode_round_trip(envelope: Envelope, key: bytes) -> None:
    assert decode(encode(envelope, key), key) == envelope


@given(st.lists(st.tuples(envelopes, keys), min_size=1, max_size=5), st.integers(1, 64))
def test_serial_round_trip_in_chunks(items: list[tuple[Envelope, bytes]], chunk: int) -> None:
    frames = [encode(env, key) for env, key in items]
    wire = b"".join(fp.encode_serial(f) for f in frames)
    decoder = SerialStreamDecoder()
    out = [x for i in range(0, len(wire), chunk) for x in decoder.feed(wire[i : i + chunk])]
    assert out == frames


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_bytes_give_frames_or_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(fp.ProtocolError):
        decode(data, bytes(16))
    for item in SerialStreamDecoder().feed(data):
        assert isinstance(item, bytes | fp.ProtocolError)


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        if op == 0 and buf:
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            del buf[rng.randrange(len(buf)) :]
        elif op == 2:
            pos = rng.randrange(len(buf) + 1)
            buf[pos:pos] = rng.randbytes(rng.randint(1, 8))
        elif buf:
            pos = rng.randrange(len(buf))
            buf[pos] = rng.choice((0x7E, 0x7D, 0x00, 0xFF))
    return bytes(buf)


def test_fuzz_decoders_only_return_frames_or_protocol_errors() -> None:
    rng = random.Random(20261123)
    key = bytes(range(16))
    samples: list[Message] = [
        fp.KeyEvent(fp.Key.GREEN_CALL),
        fp.Heartbeat(50, 3000, -70, (1, 0, 0), 5, 60),
        fp.WaterReading(10, 2),
        fp.Ack(3),
        fp.Config(60, 900, 0),
    ]
    seeds = [encode(Envelope("b1da000000000001", i, i, m), key) for i, m in enumerate(samples)]
    serial_seeds = [fp.encode_serial(s) for s in seeds]
    decoder = SerialStreamDecoder()
    started = time.perf_counter()
    inputs = 100_000
    outcomes = {"ok": 0, "error": 0}
    for n in range(inputs):
        random_input = n % 4 == 0
        data = (
            rng.randbytes(rng.randint(0, 260)) if random_input else _mutate(rng, rng.choice(seeds))
        )
        try:
            decode(data, key)
        except fp.ProtocolError:
            outcomes["error"] += 1
        else:
            outcomes["ok"] += 1
        if n % 5 == 0:
            wire = _mutate(rng, rng.choice(serial_seeds)) if n % 2 else data
            for item in decoder.feed(wire):
                assert isinstance(item, bytes | fp.ProtocolError)
            assert decoder.buffered <= 2 * fp.MAX_BODY_LEN + 300
    elapsed = time.perf_counter() - started
    assert outcomes["ok"] + outcomes["error"] == inputs
    assert outcomes["error"] > inputs // 2
    print(f"fuzz: {inputs} inputs in {elapsed:.1f} s ({inputs / elapsed:.0f}/s), {outcomes}")
