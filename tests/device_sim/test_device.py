"""The simulated device builds real frames and applies downlinks as firmware would."""

from __future__ import annotations

import asyncio

import firmware_protocol as fp
from device_sim.device import MeterModel, SimulatedDevice
from device_sim.mqtt import MqttFleet, fleet_identity
from device_sim.serial import SerialConcentrator
from firmware_protocol import Ack, AckCode, Envelope, Key, decode, encode
from gateway.broker import MosquittoBroker

ID = "b1da0000000000aa"
KEY = bytes(range(16))


def downlink(seq: int, message: fp.Message, key: bytes = KEY) -> bytes:
    return encode(Envelope(ID, seq, 0, message), key)


def test_frames_decode_and_seq_increments() -> None:
    box = SimulatedDevice(ID, "call_box", KEY, first_seq=7, clock=lambda: 1000.0)
    first = decode(box.press(Key.GREEN_CALL, 2), KEY)
    second = decode(box.heartbeat(interval_s=30), KEY)
    assert (first.seq, second.seq, first.timestamp) == (7, 8, 1000)
    assert first.message == fp.KeyEvent(Key.GREEN_CALL, 2, False)
    assert isinstance(second.message, fp.Heartbeat)
    assert second.message.heartbeat_interval_s == 30
    assert sorted(box.pending) == [7, 8]


def test_ack_clears_pending_and_nack_is_recorded() -> None:
    box = SimulatedDevice(ID, "call_box", KEY)
    box.press(Key.GREEN_CALL)
    box.press(Key.RED_HANGUP)
    assert box.handle_downlink(downlink(1, Ack(1, AckCode.ACCEPTED))) is not None
    assert box.handle_downlink(downlink(2, Ack(2, AckCode.NACK_INVALID_PAYLOAD))) is not None
    assert box.pending == {}
    assert box.acked == {1}
    assert box.nacked == {2: AckCode.NACK_INVALID_PAYLOAD}


def test_forged_and_replayed_downlinks_are_ignored() -> None:
    box = SimulatedDevice(ID, "call_box", KEY)
    box.press(Key.GREEN_CALL)
    assert box.handle_downlink(downlink(5, Ack(1), key=bytes(16))) is None
    assert box.handle_downlink(b"\x00garbage") is None
    assert box.handle_downlink(downlink(5, Ack(1))) is not None
    assert box.handle_downlink(downlink(5, Ack(1))) is None  # same downlink seq again
    assert box.rejected_downlinks == 3


def test_provision_rotates_the_key() -> None:
    box = SimulatedDevice(ID, "call_box", KEY)
    new_key = bytes(range(50, 66))
    wrapped, check = fp.wrap_key(KEY, ID, 3, new_key)
    assert box.handle_downlink(downlink(3, fp.Provision(2, wrapped, check))) is not None
    assert (box.key, box.key_version) == (new_key, 2)
    assert decode(box.press(Key.THUMBS_UP), new_key).message == fp.KeyEvent(Key.THUMBS_UP)
    bad = fp.Provision(3, wrapped, b"\x00\x00\x00\x00")
    assert box.handle_downlink(downlink(4, bad, key=new_key)) is not None
    assert box.key == new_key  # a failed key check leaves the key alone


def test_retransmit_sends_the_same_frames_again() -> None:
    box = SimulatedDevice(ID, "call_box", KEY)
    frames = [box.press(Key.GREEN_CALL), box.heartbeat()]
    assert box.retransmit_due() == frames


def test_meter_model() -> None:
    model = MeterModel()
    day = 86_400 * 20_000
    assert model.total_at(100, day, day + 86_400) == 100 + sum(model.hourly_litres)
    assert MeterModel(no_use=True).total_at(100, day, day + 86_400) == 100
    assert MeterModel(no_use=True).flow_at(day + 8 * 3600) == 0


def test_fleet_identity_is_stable() -> None:
    assert fleet_identity(0)[0] == "b1da000000000000"
    assert fleet_identity(1) == fleet_identity(1)
    assert len(fleet_identity(1)[1]) == 16


async def test_fleet_over_a_real_broker(broker: MosquittoBroker) -> None:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    box = SimulatedDevice(ID, "call_box", KEY)
    loop = asyncio.get_running_loop()
    echoed: asyncio.Queue[bytes] = asyncio.Queue()
    # A stand-in gateway that acks whatever it receives.
    gateway = paho.Client(CallbackAPIVersion.VERSION2, client_id="echo")

    def on_message(client: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        env = decode(payload, KEY)
        client.publish(fp.downlink_topic(env.device_id), downlink(env.seq, Ack(env.seq)), qos=1)
        loop.call_soon_threadsafe(echoed.put_nowait, payload)

    gateway.on_message = on_message
    gateway.connect("127.0.0.1", broker.port)
    gateway.subscribe(fp.UPLINK_SUBSCRIPTION, qos=1)
    gateway.loop_start()
    try:
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            await fleet.send(ID, box.press(Key.GREEN_CALL))
            await fleet.wait_all_acked(10)
            assert box.acked == {1}
            assert decode(await asyncio.wait_for(echoed.get(), 10), KEY).seq == 1
    finally:
        gateway.disconnect()
        gateway.loop_stop()


async def test_concentrator_frames_garbage_and_acks() -> None:
    box = SimulatedDevice(ID, "call_box", KEY)
    async with SerialConcentrator([box]) as line:
        await line.send(ID, box.press(Key.GREEN_CALL))  # queued until the gateway connects
        reader, writer = await asyncio.open_connection("127.0.0.1", int(line.url.rsplit(":", 1)[1]))
        await line.wait_connected(5)
        await line.send_raw(b"\x00\x7e\x01\x7e")
        decoder = fp.SerialStreamDecoder()
        items: list[bytes | fp.ProtocolError] = []
        while len(items) < 2:
            items += decoder.feed(await asyncio.wait_for(reader.read(1024), 5))
        assert decode(items[0], KEY).seq == 1  # type: ignore[arg-type]
        assert isinstance(items[1], fp.ProtocolError)
        writer.write(fp.encode_serial(downlink(1, Ack(1))))
        await writer.drain()
        for _ in range(500):
            if not box.pending:
                break
            await asyncio.sleep(0.01)
        assert box.acked == {1}
        writer.close()
        await writer.wait_closed()
