"""Supervision: silent devices go offline after N missed intervals, back online on contact."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from device_sim.serial import SerialConcentrator
from firmware_protocol import AlarmKind, Key
from gateway.clock import ManualClock
from gateway.ingest import supervision
from gateway.ingest.supervision import SilenceWatch
from gateway.runtime.service import GatewayService
from tests.gateway.support import gateway_settings, wait_for

BOX = "00000000000000b1"
KEY = bytes(range(16))


async def test_silent_box_goes_offline_once_and_back_online_once(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None
) -> None:
    box = SimulatedDevice(BOX, "call_box", KEY, clock=clock.now)
    async with SerialConcentrator([box]) as line:
        settings = gateway_settings(
            tmp_path, None, serial=[{"name": "bus1", "url": line.url, "reopen_initial_s": 0.05}]
        )
        async with GatewayService(settings, clock) as gw:
            await gw.register_device(BOX, "call_box", KEY)
            await line.send(BOX, box.heartbeat(interval_s=60))
            await wait_for(lambda: not box.pending, what="heartbeat acked")
            await wait_for(lambda: status(gw, BOX) == "online")

            # Two missed intervals and a bit: still online.
            await clock.advance(179)
            await gw.scheduler.fire_due(clock.now())
            assert status(gw, BOX) == "online"

            # The third interval passes: offline, recorded once.
            await clock.advance(2)
            await wait_for(lambda: status(gw, BOX) == "offline", what="offline")
            await clock.advance(3600)
            await gw.scheduler.fire_due(clock.now())
            kinds = [t.kind for t in await gw.store.devices.transitions(BOX)]
            assert kinds == ["online", "offline"]
            offline = (await gw.store.devices.transitions(BOX))[1]
            assert offline.at == clock.now() - 3600 - 1  # due at last contact + 3 x 60 s
            assert sample_online(gw) == 0

            # The next frame brings it back, once.
            await line.send(BOX, box.press(Key.GREEN_CALL))
            await wait_for(lambda: not box.pending, what="press acked")
            await line.send(BOX, box.heartbeat(interval_s=60))
            await wait_for(lambda: not box.pending, what="second frame acked")
            kinds = [t.kind for t in await gw.store.devices.transitions(BOX)]
            assert kinds == ["online", "offline", "online"]
            assert sample_online(gw) == 1


def status(gw: GatewayService, device_id: str) -> str:
    state = gw.registry.cached(device_id)
    assert state is not None
    return state.status


def sample_online(gw: GatewayService) -> float:
    value = gw.metrics.registry.get_sample_value("bidao_devices_online")
    return 0.0 if value is None else value


async def test_registered_but_never_heard_box_goes_offline(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None
) -> None:
    settings = gateway_settings(tmp_path, None)
    async with GatewayService(settings, clock) as gw:
        await gw.register_device(BOX, "call_box", KEY)
        await clock.advance(3 * 60 + 1)
        await wait_for(lambda: status(gw, BOX) == "offline", what="offline")
        assert [t.kind for t in await gw.store.devices.transitions(BOX)] == ["offline"]


async def test_heartbeat_interval_and_battery_from_the_device(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None
) -> None:
    meter_id = "00000000000000c1"
    meter = SimulatedDevice(meter_id, "water_meter", KEY, clock=clock.now)
    async with SerialConcentrator([meter]) as line:
        settings = gateway_settings(tmp_path, None, serial=[{"name": "bus1", "url": line.url}])
        async with GatewayService(settings, clock) as gw:
            await gw.register_device(meter_id, "water_meter", KEY)
            await line.send(meter_id, meter.heartbeat(interval_s=600, battery_pct=15))
            await wait_for(lambda: not meter.pending, what="acked")
            stored = await gw.store.devices.get(meter_id)
            assert stored is not None
            assert (stored.heartbeat_interval_s, stored.battery_pct, stored.low_battery) == (
                600,
                15,
                True,
            )
            await line.send(meter_id, meter.alarm(AlarmKind.LOW_BATTERY, active=False))
            await wait_for(lambda: not meter.pending, what="acked")
            kinds = [t.kind for t in await gw.store.devices.transitions(meter_id)]
            assert kinds == ["online", "low_battery", "battery_ok"]
            # The stated 600 s interval governs supervision: 3 x 600 s.
            await clock.advance(1799)
            await gw.scheduler.fire_due(clock.now())
            assert status(gw, meter_id) == "online"
            await clock.advance(2)
            await wait_for(lambda: status(gw, meter_id) == "offline")


def test_due_silence_entries_are_looked_at_a_chunk_at_a_time() -> None:
    watch = SilenceWatch()
    for i in range(10):
        watch.arm(f"box{i}", 180.0, 60, "online")
    for i in range(0, 10, 2):  # every other box heard since: it falls silent later
        watch.heard(f"box{i}", 300.0, 60)
    silent: list[str] = []
    rounds = 0
    while (due := watch.next_at()) is not None and due <= 181.0:
        silent += [device_id for device_id, _ in watch.pop_silent(181.0, limit=3)]
        rounds += 1
    assert rounds == 4  # ten due entries, three at a time
    assert sorted(silent) == [f"box{i}" for i in range(1, 10, 2)]
    assert watch.next_at() == 300.0  # the heard ones, re-armed for when they fall silent
    assert len(watch) == 5


async def test_boxes_due_at_once_are_sorted_out_over_several_turns(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a start every box is armed for the same moment; the loop looks at them a few at
    a time, and each heard one stays online while each silent one goes offline."""
    monkeypatch.setattr(supervision, "_DUE_CHUNK", 2)
    boxes = [
        SimulatedDevice(f"00000000000000c{i}", "call_box", KEY, clock=clock.now) for i in range(6)
    ]
    async with SerialConcentrator(boxes) as line:
        settings = gateway_settings(
            tmp_path, None, serial=[{"name": "bus1", "url": line.url, "reopen_initial_s": 0.05}]
        )
        async with GatewayService(settings, clock) as gw:
            for box in boxes:
                await gw.register_device(box.device_id, "call_box", KEY)
            await clock.advance(100)
            heard = boxes[::2]
            for box in heard:
                await line.send(box.device_id, box.heartbeat(interval_s=60))
            await wait_for(lambda: not any(box.pending for box in heard), what="heartbeats acked")
            silent = boxes[1::2]
            await clock.advance(81)  # the start plus three intervals: all six due at once
            await wait_for(lambda: all_offline(gw, silent), what="the silent ones offline")
            assert all(status(gw, box.device_id) == "online" for box in heard)
            await clock.advance(100)  # three intervals after their heartbeat
            await wait_for(lambda: all_offline(gw, heard), what="the others offline")


def all_offline(gw: GatewayService, boxes: list[SimulatedDevice]) -> bool:
    return all(status(gw, box.device_id) == "offline" for box in boxes)
