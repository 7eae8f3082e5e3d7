"""MqttFleet against a real mosquitto, with a plain paho client as the gateway."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

import firmware_protocol as fp
from device_sim.device import SimulatedDevice, fleet_identity
from device_sim.mqtt import MqttFleet
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from tests.device_sim.support import BOX_ID, BOX_KEY, FLEET_SIZE, EchoGateway, wait_until

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")


def fleet_devices(count: int = FLEET_SIZE) -> list[SimulatedDevice]:
    identities = [fleet_identity(i) for i in range(count)]
    return [SimulatedDevice(device_id, "call_box", key) for device_id, key in identities]


async def test_fleet_frames_are_acked(broker: MosquittoBroker, echo: EchoGateway) -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
        await fleet.send(BOX_ID, box.press(fp.Key.GREEN_CALL))
        await fleet.wait_all_acked(10)
        assert box.acked == {1}
        assert [(e.device_id, e.seq) for e in echo.uplinks] == [(BOX_ID, 1)]
        assert echo.uplinks[0].message == fp.KeyEvent(fp.Key.GREEN_CALL)
        assert (fleet.callback_errors, box.rejected_downlinks) == (0, 0)
        client = fleet._client
        assert client is not None
        sock = client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def test_many_devices_bulk(broker: MosquittoBroker, echo: EchoGateway) -> None:
    devices = fleet_devices()
    async with MqttFleet("127.0.0.1", broker.port, devices) as fleet:
        for _ in range(25):
            for device in devices:
                await fleet.send(device.device_id, device.heartbeat())
        await fleet.wait_all_acked(20)
        assert fleet.downlinks == 25 * FLEET_SIZE
    assert all(d.acked == set(range(1, 26)) for d in devices)
    assert len(echo.uplinks) == 25 * FLEET_SIZE


async def test_unanswered_frames_are_retransmitted(
    broker: MosquittoBroker, echo: EchoGateway
) -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    echo.silent = True
    async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
        frames = [box.press(fp.Key.GREEN_CALL), box.press(fp.Key.RED_HANGUP)]
        for frame in frames:
            await fleet.send(BOX_ID, frame)
        await asyncio.to_thread(echo.wait, lambda: len(echo.uplinks) == 2)
        with pytest.raises(TimeoutError, match="2 frames"):
            await fleet.wait_all_acked(0.05)
        echo.silent = False
        assert await fleet.retransmit_pending() == 2
        await fleet.wait_all_acked(10)
    assert (box.acked, box.duplicate_acks) == ({1, 2}, 2)
    assert [e.seq for e in echo.uplinks] == [1, 2, 1, 2]


async def test_downlinks_are_routed_and_checked(broker: MosquittoBroker, echo: EchoGateway) -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    other_id, other_key = fleet_identity(0)
    other = SimulatedDevice(other_id, "call_box", other_key)
    stranger = fleet_identity(1)[0]
    async with MqttFleet("127.0.0.1", broker.port, [box, other]) as fleet:
        shown = fp.Indication(fp.IndicationKind.CALL_REGISTERED, 9, fp.LedPattern.GREEN_SOLID)
        await asyncio.to_thread(echo.publish_raw, BOX_ID, b"not a frame")
        await asyncio.to_thread(echo.publish_raw, stranger, b"for nobody here")
        await asyncio.to_thread(echo.send, BOX_ID, shown)
        await asyncio.to_thread(echo.send, other_id, fp.Config(30, 30))
        await wait_until(lambda: bool(box.indications and other.configs))
        await wait_until(lambda: fleet.unrouted_downlinks == 1)
    assert box.indications == [shown]
    assert other.heartbeat_interval_s == 30
    assert other.indications == []
    assert (box.rejected_downlinks, fleet.unrouted_downlinks, fleet.callback_errors) == (1, 1, 0)


async def test_persistent_session_keeps_downlinks_while_offline(
    broker: MosquittoBroker, echo: EchoGateway
) -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    echo.silent = True
    fleet = MqttFleet("127.0.0.1", broker.port, [box], "sim-persistent", session_expiry_s=60)
    async with fleet:
        frame = box.press(fp.Key.GREEN_CALL)
        await fleet.send(BOX_ID, frame)
        await asyncio.to_thread(echo.wait, lambda: len(echo.uplinks) == 1)
    ack = fp.Ack(1, fp.AckCode.ACCEPTED, 1, frame[-8:-4])
    await asyncio.to_thread(echo.send, BOX_ID, ack, seq=0)  # queued by the broker
    async with fleet:
        await fleet.wait_all_acked(10)
    assert box.acked == {1}


async def test_close_twice_and_unreachable_broker() -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    fleet = MqttFleet("127.0.0.1", free_loopback_port(), [box])
    with pytest.raises(ConnectionRefusedError):
        await fleet.__aenter__()
    await fleet.close()
    await fleet.close()
    with pytest.raises(RuntimeError, match="not started"):
        await fleet.send(BOX_ID, box.press(fp.Key.GREEN_CALL))


def test_blocking_api_from_a_plain_thread(broker: MosquittoBroker, echo: EchoGateway) -> None:
    devices = fleet_devices(5)

    def script() -> int:
        with MqttFleet("127.0.0.1", broker.port, devices) as fleet:
            for device in devices:
                fleet.publish(device.device_id, device.press(fp.Key.THUMBS_UP))
            fleet.wait_all_acked_blocking(10)
            fleet.stop()  # and once more on leaving the block
            return fleet.downlinks

    with ThreadPoolExecutor(1, thread_name_prefix="fleet-script") as pool:
        assert pool.submit(script).result(timeout=20) == 5
    assert all(d.acked == {1} for d in devices)


async def test_silent_broker_times_out_and_cancelling_start_cleans_up() -> None:
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def never_answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        accepted.set()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
    try:
        fleet = MqttFleet("127.0.0.1", port, [box], connect_timeout_s=0.2)
        with pytest.raises(TimeoutError, match="no subscription"):
            await fleet.__aenter__()
        assert fleet._client is None

        accepted.clear()
        fleet = MqttFleet("127.0.0.1", port, [box], connect_timeout_s=0.5)
        starting = asyncio.create_task(fleet.__aenter__())
        async with asyncio.timeout(5):
            await accepted.wait()
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        assert fleet._client is None
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
