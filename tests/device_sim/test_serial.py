"""SerialConcentrator: serial framing over a loopback socket, with a test client as gateway."""

from __future__ import annotations

import asyncio

import pytest

import firmware_protocol as fp
from device_sim.device import SimulatedDevice
from device_sim.serial import SerialConcentrator
from firmware_protocol import Ack, Envelope, Key, decode, encode, encode_serial
from tests.device_sim.support import BOX_ID, BOX_KEY, FakeGateway, ack_of, gateway, wait_until

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

OTHER_ID = "b1da0000000000bb"
OTHER_KEY = bytes(range(100, 116))


def downlink(seq: int, message: fp.Message, device_id: str = BOX_ID, key: bytes = BOX_KEY) -> bytes:
    return encode_serial(encode(Envelope(device_id, seq, 0, message, 1), key))


async def test_frames_acks_and_garbage() -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    async with SerialConcentrator([box]) as line:
        assert line.url == f"socket://127.0.0.1:{line.port}"
        await line.send(BOX_ID, box.press(Key.GREEN_CALL))  # queued until the gateway connects
        async with gateway(line) as gw:
            await line.send_raw(b"\x00\x7e\x01\x7e")
            first, noise = await gw.read_items(2)
            assert isinstance(first, bytes)
            assert decode(first, BOX_KEY).message == fp.KeyEvent(Key.GREEN_CALL)
            assert isinstance(noise, fp.ProtocolError)
            await gw.write(ack_of(first))
            await line.wait_all_acked(5)
        assert box.acked == {1}
        assert (line.downlinks, line.bad_downlinks, line.unrouted_downlinks) == (1, 0, 0)


async def test_downlinks_are_routed_split_and_checked() -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    other = SimulatedDevice(OTHER_ID, "call_box", OTHER_KEY)
    async with SerialConcentrator([box, other]) as line:
        async with gateway(line) as gw:
            shown = fp.Indication(fp.IndicationKind.ARE_YOU_OK, 0, fp.LedPattern.AMBER_BLINK, 3)
            stream = (
                b"line noise"
                + downlink(1, shown)
                + b"\x7e\x7d\x01\x7e"  # invalid escape
                + downlink(1, fp.Config(45, 45), OTHER_ID, OTHER_KEY)
                + downlink(1, Ack(1), "b1da0000000000cc")  # nobody on this line
                + encode_serial(b"\x01" * 40)  # good CRC, not a frame
            )
            for i in range(len(stream)):  # byte by byte, as a slow UART would
                await gw.write(stream[i : i + 1])
            await wait_until(lambda: line.unrouted_downlinks == 2)
        assert box.indications == [shown]
        assert other.heartbeat_interval_s == 45
        assert (line.downlinks, line.bad_downlinks, line.unrouted_downlinks) == (2, 1, 2)


async def test_gateway_reconnects_and_gets_queued_and_resent_frames() -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    async with SerialConcentrator([box]) as line:
        async with gateway(line) as gw:
            await line.send(BOX_ID, box.press(Key.GREEN_CALL))
            assert [e.seq for e in await gw.read_frames(1)] == [1]
        # The gateway went away before acking; a frame built meanwhile waits in the backlog.
        await wait_until(lambda: not line.connected)
        await line.send(BOX_ID, box.heartbeat())
        async with gateway(line) as gw:
            assert [e.seq for e in await gw.read_frames(1)] == [2]
            assert await line.retransmit_pending() == 2
            assert [e.seq for e in await gw.read_frames(2)] == [1, 2]
            await gw.write(b"".join(ack_of(f) for f in box.retransmit_due()))
            await line.wait_all_acked(5)
        assert line.connections == 2


async def test_a_new_connection_replaces_the_old_one() -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    async with SerialConcentrator([box]) as line, gateway(line) as old:
        reader, writer = await asyncio.open_connection("127.0.0.1", line.port)
        new = FakeGateway(reader, writer)
        try:
            async with asyncio.timeout(5):
                assert await old.reader.read(1024) == b""  # dropped
            await wait_until(lambda: line.connections == 2)
            await line.send(BOX_ID, box.press(Key.THUMBS_DOWN))
            assert [e.seq for e in await new.read_frames(1)] == [1]
        finally:
            await new.close()


async def test_disconnect_backlog_cap_and_close_twice() -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    line = SerialConcentrator([box], max_backlog=2)
    with pytest.raises(RuntimeError, match="not started"):
        _ = line.url
    await line.start()
    for _ in range(3):
        await line.send(BOX_ID, box.heartbeat())
    assert line.dropped_uplinks == 1
    with pytest.raises(KeyError):
        await line.send(OTHER_ID, b"")
    async with gateway(line) as gw:
        assert [e.seq for e in await gw.read_frames(2)] == [2, 3]
        await line.disconnect()
        assert await gw.reader.read(1024) == b""
    await line.close()
    await line.close()
    with pytest.raises(TimeoutError, match="3 frames"):
        await line.wait_all_acked(0.01)
