"""Bad input never becomes an event or an ack; each kind is counted; good frames still pass."""

from __future__ import annotations

import random
from pathlib import Path

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.serial import SerialConcentrator
from firmware_protocol import (
    Envelope,
    Heartbeat,
    Key,
    KeyEvent,
    encode,
    encode_serial,
)
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from tests.gateway.support import gateway_settings, sample, wait_for

A, B, UNKNOWN = "00000000000000a1", "00000000000000b2", "00000000000000c3"
KEY_A, KEY_B, WRONG = bytes(16), bytes(range(16)), b"\xff" * 16


def rejected(gw: GatewayService, transport: str, reason: str) -> float:
    return sample(gw, "bidao_frames_rejected_total", transport=transport, reason=reason)


def total_rejected(gw: GatewayService, transport: str) -> float:
    return sum(
        s.value
        for m in gw.metrics.registry.collect()
        if m.name == "bidao_frames_rejected"
        for s in m.samples
        if s.name.endswith("_total") and s.labels["transport"] == transport
    )


def press(device_id: str, seq: int, key: bytes) -> bytes:
    return encode(Envelope(device_id, seq, 0, KeyEvent(Key.GREEN_CALL, 1, False)), key)


async def test_mqtt_bad_frames_are_rejected_and_counted(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    settings = gateway_settings(tmp_path, broker)
    a = SimulatedDevice(A, "call_box", KEY_A)
    async with GatewayService(settings) as gw, MqttFleet("127.0.0.1", broker.port, [a]) as fleet:
        await gw.register_device(A, "call_box", KEY_A)
        await gw.register_device(B, "call_box", KEY_B)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        first = a.press(Key.GREEN_CALL)
        await fleet.send(A, first)
        bad_counts = 0
        for i in range(20):
            await fleet.send(A, a.heartbeat())
            await fleet.send(A, press(A, 50_000 + i, WRONG))  # spoofed
            await fleet.send(UNKNOWN, press(UNKNOWN, i + 1, KEY_A))  # unknown device
            await fleet.send(A, press(B, 1000 + i, KEY_B))  # B's frame on A's topic
            await fleet.send(A, press(A, 60_000 + i, KEY_A)[:-3])  # truncated
            await fleet.send(A, press(A, 70_000 + i, KEY_A) + bytes(300))  # oversized
            await fleet.send(A, bytes(random.Random(i).randbytes(40)))  # garbage
            bad_counts += 6
        await fleet.wait_all_acked(20)
        # A replayed frame is a stored copy: DUPLICATE, nothing changes. Other content under
        # the newest numbers is NACK_SEQ_REUSED (the real box renumbers it), never DUPLICATE.
        await fleet.send(A, first)
        last = encode(
            Envelope(A, a.next_seq - 1, 0, Heartbeat(90, 3000, -60, (1, 0, 0), 10, 60), 1), KEY_A
        )
        await fleet.send(A, last)
        await wait_for(
            lambda: (
                sample(gw, "bidao_frames_nacked_total", transport="mqtt", reason="seq_reused") == 1
            ),
            what="reused numbers nacked",
        )
        await wait_for(
            lambda: sample(gw, "bidao_frames_duplicate_total", transport="mqtt") == 1,
            what="duplicate counted",
        )

        assert await gw.store.devices.count_events(A) == 21
        assert await gw.store.devices.count_events(B) == 0
        assert await gw.store.devices.count_events() == 21
        assert rejected(gw, "mqtt", "bad_mac") == 20
        assert rejected(gw, "mqtt", "unknown_device") == 20
        assert rejected(gw, "mqtt", "topic_mismatch") == 20
        assert rejected(gw, "mqtt", "truncated") + rejected(gw, "mqtt", "length_mismatch") >= 20
        assert rejected(gw, "mqtt", "too_long") == 20
        assert total_rejected(gw, "mqtt") == bad_counts
        # Only the valid frames were acked: 21 accepted, then 1 duplicate.
        assert sample(gw, "bidao_acks_sent_total", code="ACCEPTED") == 21
        assert sample(gw, "bidao_acks_sent_total", code="DUPLICATE") == 1
        assert not a.pending
        assert a.rejected_downlinks == 0


async def test_serial_garbage_between_frames(tmp_path: Path, no_leaked_tasks: None) -> None:
    a = SimulatedDevice(A, "call_box", KEY_A)
    rng = random.Random(7)
    async with SerialConcentrator([a]) as line:
        settings = gateway_settings(tmp_path, None, serial=[{"name": "bus1", "url": line.url}])
        async with GatewayService(settings) as gw:
            await gw.register_device(A, "call_box", KEY_A)
            for i in range(50):
                await line.send_raw(rng.randbytes(rng.randrange(1, 80)))
                await line.send(A, a.heartbeat())
                if i % 10 == 0:
                    # A well-framed, CRC-correct frame with a forged MAC.
                    await line.send_raw(encode_serial(press(A, 90_000 + i, WRONG)))
            await wait_for(lambda: not a.pending, timeout=60, what="all valid frames acked")
            # The box kept only its newest 32 frames waiting: the pipeline's own queue says
            # when the oldest are done (a call for help's batch may commit before them).
            assert await gw.pipeline.drain(60)
            assert await gw.store.devices.count_events(A) == 50
            assert rejected(gw, "serial", "bad_mac") == 5
            assert total_rejected(gw, "serial") > rejected(gw, "serial", "bad_mac")
