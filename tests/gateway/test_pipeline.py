"""The pipeline acks only what is committed, retries a failing store, isolates a poison frame."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from bench.burst import publish_burst
from device_sim.device import SimulatedDevice, fleet_identity
from device_sim.mqtt import MqttFleet
from device_sim.serial import SerialConcentrator
from firmware_protocol import AckCode, Indication, IndicationKind, Key, LedPattern, position
from gateway.config import DeviceKind, SerialLinkSettings, load_settings
from gateway.errors import ConfigError
from gateway.ingest.links import InboundFrame, TransportName
from gateway.ingest.pipeline import AcceptedFrame
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from gateway.store.ports import UnitOfWork
from tests.gateway.support import gateway_settings, sample, wait_for

BOX, OTHER = "00000000000000d1", "00000000000000d2"
KEY = bytes(range(16, 32))
_SERIAL_LINKS = TypeAdapter(list[SerialLinkSettings])


def fleet_device(index: int, kind: DeviceKind) -> SimulatedDevice:
    """The index-th generated fleet device."""
    device_id, key = fleet_identity(index)
    return SimulatedDevice(device_id, kind, key)


def load_serial(values: list[dict[str, object]]) -> list[SerialLinkSettings]:
    """Serial link settings, validated."""
    return _SERIAL_LINKS.validate_python(values)


class FlakyStore:
    """An ingest handler that makes the first `failures` commits fail like a full disk."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0

    async def stage(
        self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]
    ) -> Callable[[], None] | None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise sqlite3.OperationalError("database or disk is full")
        return None


class PoisonFor:
    """An ingest handler with a bug that only one device's frames trigger."""

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id

    async def stage(
        self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]
    ) -> Callable[[], None] | None:
        if any(f.state.device_id == self.device_id for f in frames):
            raise RuntimeError("domain bug")
        return None


async def test_no_ack_until_the_commit_succeeds(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    settings = gateway_settings(
        tmp_path, broker, pipeline={"commit_retry_initial_s": 0.05, "commit_retry_max_s": 0.05}
    )
    box = SimulatedDevice(BOX, "call_box", KEY)
    flaky = FlakyStore(failures=5)
    async with GatewayService(settings) as gw, MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
        await gw.register_device(BOX, "call_box", KEY)
        gw.add_ingest_handler(flaky)
        await fleet.send(BOX, box.press(Key.GREEN_CALL))
        await wait_for(lambda: flaky.attempts >= 3, what="failing commits")
        assert box.pending, "acked before anything was committed"
        assert await gw.store.devices.count_events() == 0
        await wait_for(lambda: not box.pending, what="ack after the store recovered")
        assert await gw.store.devices.count_events() == 1
        assert sample(gw, "bidao_commit_failures_total") == 5
        assert sample(gw, "bidao_acks_sent_total", code="ACCEPTED") == 1


async def test_a_burst_waits_in_the_broker_not_in_the_gateway(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    # mosquitto 2.0 does not always honour the gateway's Receive Maximum (it stopped once the
    # gateway itself published at QoS 1): the link has to stop reading on its own.
    settings = gateway_settings(
        tmp_path,
        broker,
        mqtt={
            "embedded_broker": False,
            "port": broker.port,
            "client_id": "bidao-test-burst",
            "receive_maximum": 20,
        },
        pipeline={"queue_max": 2000, "batch_max": 50},
    )
    identities = [fleet_identity(i) for i in range(10)]
    devices = [SimulatedDevice(device_id, "water_meter", key) for device_id, key in identities]
    frames = [(devices[n % 10].device_id, devices[n % 10].water_reading(n)) for n in range(5000)]
    async with GatewayService(settings) as gw:
        for device in devices:
            await gw.register_device(device.device_id, "water_meter", device.key)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        await asyncio.to_thread(publish_burst, "127.0.0.1", broker.port, frames)
        await wait_for(
            lambda: sample(gw, "bidao_acks_sent_total", code="ACCEPTED") == 5000,
            timeout=30,
            what="every frame acked",
        )
        assert await gw.store.devices.count_events() == 5000
        overload = sample(gw, "bidao_frames_rejected_total", transport="mqtt", reason="overload")
        assert overload == 0


async def retransmit_until_acked(
    senders: Sequence[MqttFleet | SerialConcentrator], timeout: float, every_s: float = 2.0
) -> int:
    """Resend every unacknowledged frame every `every_s`, as firmware does; returns rounds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    rounds = 0
    while any(sender.pending_total() for sender in senders):
        if loop.time() > deadline:
            pending = sum(sender.pending_total() for sender in senders)
            pytest.fail(f"{pending} frames still unacknowledged after {timeout} s")
        for sender in senders:
            try:
                await sender.wait_all_acked(every_s / len(senders))
            except TimeoutError:
                await sender.retransmit_pending()
                rounds += 1
    return rounds


async def test_overload_past_every_limit_drains_and_each_frame_is_stored_once(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    # 1,000 MQTT frames and 200 serial ones against a pipeline queue of 40, an MQTT receive
    # maximum (credit) of 20 and a serial credit of 10; devices resend what is not acked.
    settings = gateway_settings(
        tmp_path,
        broker,
        mqtt={
            "embedded_broker": False,
            "port": broker.port,
            "client_id": "bidao-test-overload",
            "receive_maximum": 20,
        },
        pipeline={"queue_max": 40, "batch_max": 5, "batch_linger_s": 0},
    )
    mqtt_devices = [fleet_device(i, "water_meter") for i in range(20)]
    serial_devices = [fleet_device(100 + i, "call_box") for i in range(2)]
    for device in (*mqtt_devices, *serial_devices):
        device.queue_max = None  # stress senders: every frame must be stored once
    async with SerialConcentrator(serial_devices) as line:
        serial = [{"name": "bus1", "url": line.url, "credit": 10}]
        settings = settings.model_copy(update={"serial": load_serial(serial)})
        async with (
            GatewayService(settings) as gw,
            MqttFleet("127.0.0.1", broker.port, mqtt_devices) as fleet,
        ):
            for device in mqtt_devices:
                await gw.register_device(device.device_id, "water_meter", device.key)
            for device in serial_devices:
                await gw.register_device(device.device_id, "call_box", device.key)
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            for n in range(50):
                for device in mqtt_devices:
                    fleet.publish(device.device_id, device.water_reading(n))
            for n in range(100):
                for device in serial_devices:
                    await line.send(device.device_id, device.heartbeat(uptime_s=n))
            await retransmit_until_acked([fleet, line], timeout=120)
            stored = await gw.store.devices.event_seqs()
            assert len(stored) == len(set(stored)) == 1200
            expected = {(d.device_id, position(1, q)) for d in mqtt_devices for q in range(1, 51)}
            expected |= {
                (d.device_id, position(1, q)) for d in serial_devices for q in range(1, 101)
            }
            assert set(stored) == expected
            assert all(d.acked == set(range(1, 51)) for d in mqtt_devices)
            assert all(d.acked == set(range(1, 101)) for d in serial_devices)
            assert sample(gw, "bidao_acks_sent_total", code="ACCEPTED") == 1200
            # Credit keeps the queue from overflowing: nothing had to be refused.
            for transport in ("mqtt", "serial"):
                labels = {"transport": transport, "reason": "overload"}
                assert sample(gw, "bidao_frames_nacked_total", **labels) == 0
            # Copies resent while their originals were being acked are settled too.
            mqtt = gw.mqtt
            await wait_for(lambda: mqtt.unsettled == 0, what="every copy received settled")


class RecordingLink:
    """A link at the edge of the test: keeps every downlink it is asked to send."""

    name = "recorder"
    transport: TransportName = "serial"

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send_downlink(self, device_id: str, frame: bytes) -> None:
        self.sent.append((device_id, frame))

    async def send_replies(self, frames: Sequence[tuple[str, bytes]]) -> None:
        self.sent.extend(frames)


async def test_a_frame_refused_by_a_full_queue_is_settled_and_told_to_retry(
    tmp_path: Path, no_leaked_tasks: None
) -> None:
    settings = gateway_settings(tmp_path, None, pipeline={"queue_max": 3})
    box = SimulatedDevice(BOX, "call_box", KEY)
    link = RecordingLink()
    settled: list[int] = []
    async with GatewayService(settings) as gw:
        await gw.register_device(BOX, "call_box", KEY)
        gw.downlinks.add_link(link)
        frames = [box.heartbeat(uptime_s=n) for n in range(4)]
        # No await between them: the worker cannot take any, so the fourth finds it full.
        queued = [
            gw.pipeline.submit_nowait(
                InboundFrame(f, link, gw.clock.now(), settle=partial(settled.append, n))
            )
            for n, f in enumerate(frames)
        ]
        assert queued == [True, True, True, False]
        assert settled == [3], "a refused frame is settled at once"
        await wait_for(lambda: len(link.sent) == 4, what="three acks and one nack")
        for _, frame in link.sent:
            box.handle_downlink(frame)
        assert box.nacked == {4: AckCode.NACK_RETRY_LATER}
        assert set(box.pending) == {4}
        assert sorted(settled) == [0, 1, 2, 3]
        labels = {"transport": "serial", "reason": "overload"}
        assert sample(gw, "bidao_frames_nacked_total", **labels) == 1
        # The device retries later, like firmware, and that copy is stored.
        gw.pipeline.submit_nowait(InboundFrame(box.retransmit_due()[0], link, gw.clock.now()))
        await wait_for(lambda: len(link.sent) == 5, what="the retry acked")
        box.handle_downlink(link.sent[-1][1])
        assert not box.pending
        assert await gw.store.devices.count_events(BOX) == 4


def test_link_credits_beyond_the_pipeline_queue_are_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"link credits add up to 1100 .*queue_max 1000"):
        load_settings(
            data_dir=tmp_path,
            mqtt={"receive_maximum": 1000},
            serial=[{"name": "bus1", "url": "socket://127.0.0.1:1", "credit": 100}],
            pipeline={"queue_max": 1000},
        )


async def test_a_poison_frame_does_not_block_the_others(
    tmp_path: Path, no_leaked_tasks: None
) -> None:
    good = SimulatedDevice(OTHER, "call_box", KEY)
    bad = SimulatedDevice(BOX, "call_box", KEY)
    async with SerialConcentrator([good, bad]) as line:
        settings = gateway_settings(tmp_path, None, serial=[{"name": "bus1", "url": line.url}])
        async with GatewayService(settings) as gw:
            await gw.register_device(OTHER, "call_box", KEY)
            await gw.register_device(BOX, "call_box", KEY)
            gw.add_ingest_handler(PoisonFor(BOX))
            for _ in range(5):
                await line.send(OTHER, good.heartbeat())
                await line.send(BOX, bad.heartbeat())
            await wait_for(lambda: not good.pending, what="good frames acked")

            def internal() -> float:
                return sample(
                    gw, "bidao_frames_rejected_total", transport="serial", reason="internal_error"
                )

            # The last bad frame was sent after the last good one: it may still be on its way.
            await wait_for(lambda: internal() == 5, what="every bad frame refused alone")
            assert await gw.store.devices.count_events(OTHER) == 5
            assert await gw.store.devices.count_events(BOX) == 0
            assert len(bad.pending) == 5


async def test_indication_reaches_the_box_on_the_link_it_last_used(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    mqtt_box = SimulatedDevice(BOX, "call_box", KEY)
    serial_box = SimulatedDevice(OTHER, "call_box", KEY)
    indication = Indication(IndicationKind.HELPER_ON_THE_WAY, 42, LedPattern.GREEN_BLINK, 7)
    async with SerialConcentrator([serial_box]) as line:
        settings = gateway_settings(tmp_path, broker, serial=[{"name": "bus1", "url": line.url}])
        async with (
            GatewayService(settings) as gw,
            MqttFleet("127.0.0.1", broker.port, [mqtt_box]) as fleet,
        ):
            for device_id in (BOX, OTHER):
                await gw.register_device(device_id, "call_box", KEY)
            await fleet.send(BOX, mqtt_box.heartbeat())
            await line.send(OTHER, serial_box.heartbeat())
            await wait_for(lambda: not mqtt_box.pending and not serial_box.pending)
            await gw.send_downlink(BOX, indication)
            await gw.send_downlink(OTHER, indication)
            await wait_for(lambda: bool(mqtt_box.indications) and bool(serial_box.indications))
            assert mqtt_box.indications == [indication]
            assert serial_box.indications == [indication]
            assert sample(gw, "bidao_downlinks_sent_total", link="mqtt", type="Indication") == 1
            assert sample(gw, "bidao_downlinks_sent_total", link="bus1", type="Indication") == 1


async def test_acks_take_no_slot_of_the_window_that_indications_wait_for(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    # Acks go at QoS 0 and paho reports each one once written; only an indication's PUBACK
    # may free a slot. A window of 3: were acks counted, it would drift and stall or overflow.
    box = SimulatedDevice(BOX, "call_box", KEY)
    indication = Indication(IndicationKind.HELPER_ON_THE_WAY, 42, LedPattern.GREEN_BLINK, 7)
    async with (
        GatewayService(gateway_settings(tmp_path, broker)) as gw,
        MqttFleet("127.0.0.1", broker.port, [box]) as fleet,
    ):
        await gw.register_device(BOX, "call_box", KEY)
        link = gw.mqtt
        assert link is not None
        await link.wait_connected(10)
        link._send_quota = 3

        def received(indications: int) -> Callable[[], bool]:
            return lambda: not box.pending and len(box.indications) == indications

        for round_ in range(4):
            for _ in range(20):
                await fleet.send(BOX, box.heartbeat())
            if round_ == 0:  # an indication goes on the link the box was last heard on
                await wait_for(lambda: not box.pending, what="first acks")
            for _ in range(5):
                await gw.send_downlink(BOX, indication)
            await wait_for(received(5 * (round_ + 1)), what="acks and indications received")
            await wait_for(lambda: link.in_flight == 0 and link.held == 0, what="window empty")
        assert sample(gw, "bidao_acks_sent_total", code="ACCEPTED") == 80


async def test_serial_link_reopens_after_the_line_drops(
    tmp_path: Path, no_leaked_tasks: None
) -> None:
    box = SimulatedDevice(BOX, "call_box", KEY)
    async with SerialConcentrator([box]) as line:
        settings = gateway_settings(
            tmp_path,
            None,
            serial=[
                {"name": "bus1", "url": line.url, "reopen_initial_s": 0.02, "reopen_max_s": 0.05}
            ],
        )
        async with GatewayService(settings) as gw:
            await gw.register_device(BOX, "call_box", KEY)
            await line.send(BOX, box.press(Key.GREEN_CALL))
            await wait_for(lambda: not box.pending, what="first frame acked")
            await line.disconnect()
            await line.send(BOX, box.heartbeat())  # queued while the line is down
            await line.wait_connected(10)
            await wait_for(lambda: not box.pending, what="frame after reopen acked")
            assert line.connections == 2
            assert await gw.store.devices.count_events(BOX) == 2
            assert sample(gw, "bidao_link_connects_total", link="bus1") == 2
