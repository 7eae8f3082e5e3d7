"""Cheap telemetry at scale: an unchanged heartbeat writes only its event; silence counts
from the start; devices are read on their first frame."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from device_sim.device import SimulatedDevice
from device_sim.serial import SerialConcentrator
from gateway.clock import ManualClock
from gateway.ingest.registry import SILENT_DEADLINE
from gateway.runtime.service import GatewayService
from gateway.store.ports import Deadline
from gateway.store.sqlite import SqliteDeviceWrites
from tests.gateway.support import gateway_settings, sample, wait_for

BOX = "00000000000000b1"
KEY = bytes(range(16))


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute(sql))


async def test_a_heartbeat_that_changes_nothing_writes_only_its_event(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None
) -> None:
    box = SimulatedDevice(BOX, "call_box", KEY, clock=clock.now)
    async with SerialConcentrator([box]) as line:
        settings = gateway_settings(tmp_path, None, serial=[{"name": "bus1", "url": line.url}])
        async with GatewayService(settings, clock) as gw:
            await gw.register_device(BOX, "call_box", KEY)
            await line.send(BOX, box.heartbeat(interval_s=60, battery_pct=81, rssi_dbm=-65))
            await wait_for(lambda: not box.pending, what="first heartbeat acked")
            stored = await gw.store.devices.get(BOX)
            assert stored is not None
            assert (stored.status, stored.battery_pct, stored.rssi_dbm) == ("online", 81, -65)

            for battery, rssi in ((85, -61), (88, -69)):  # same bands: 80-89 %, -70..-61 dBm
                await clock.advance(60)
                before = gw.store.rows_changed()
                await line.send(BOX, box.heartbeat(battery_pct=battery, rssi_dbm=rssi))
                await wait_for(lambda: not box.pending, what="unchanged heartbeat acked")
                assert gw.store.rows_changed() - before == 1  # its event row, nothing else
            assert await gw.store.devices.get(BOX) == stored
            assert _rows(settings.database_path, "SELECT * FROM deadlines") == []
            assert await gw.store.devices.count_events(BOX) == 3

            # Another battery band is what a person sees: the row follows.
            await clock.advance(60)
            await line.send(BOX, box.heartbeat(battery_pct=79, rssi_dbm=-65))
            await wait_for(lambda: not box.pending, what="changed heartbeat acked")
            changed = await gw.store.devices.get(BOX)
            assert changed is not None
            assert changed.battery_pct == 79

            # And silence is still noticed: three intervals after the last frame.
            await clock.advance(179)
            assert [t.kind for t in await gw.store.devices.transitions(BOX)] == ["online"]
            await clock.advance(2)

            async def offline() -> bool:
                kinds = [t.kind for t in await gw.store.devices.transitions(BOX)]
                return kinds == ["online", "offline"]

            await wait_for(offline, what="offline")


async def test_a_restart_after_downtime_counts_silence_from_the_start(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None
) -> None:
    heard = SimulatedDevice(BOX, "call_box", KEY, clock=clock.now)
    others = [f"00000000000001{i:02x}" for i in range(40)]
    async with SerialConcentrator([heard]) as line:
        settings = gateway_settings(tmp_path, None, serial=[{"name": "bus1", "url": line.url}])
        async with GatewayService(settings, clock) as gw:
            await gw.register_device(BOX, "call_box", KEY)
            for device_id in others:
                await gw.register_device(device_id, "call_box", KEY)
            last = heard.heartbeat(interval_s=60)
            await line.send(BOX, last)
            await wait_for(lambda: not heard.pending, what="heartbeat acked")
            # Rows an older gateway or an import left: overdue after the downtime.
            async with gw.store.transaction() as uow:
                await uow.deadlines.set(
                    [Deadline(SILENT_DEADLINE, d, clock.now() + 180) for d in [BOX, *others]]
                )

        await clock.advance(10 * 3600)  # the gateway is down for ten hours
        started = clock.now()
        async with GatewayService(settings, clock) as gw:
            # Nothing loaded before the first ack; the devices to watch in one bulk read.
            assert gw.registry.all() == []
            await wait_for(lambda: len(gw.supervisor.watch) == 41, what="bulk armed")
            await gw.scheduler.fire_due(clock.now())
            assert await gw.store.devices.transitions() == [
                t for t in await gw.store.devices.transitions() if t.kind == "online"
            ]
            assert _rows(settings.database_path, "SELECT * FROM deadlines") == []

            # The newest seq comes back from the events: a resent frame is a duplicate.
            await line.send(BOX, last)
            await wait_for(
                lambda: sample(gw, "bidao_frames_duplicate_total", transport="serial") == 1,
                what="duplicate acked",
            )
            assert await gw.store.devices.count_events(BOX) == 1
            assert gw.registry.cached(BOX) is not None
            assert gw.registry.cached(others[0]) is None

            await clock.advance(179)
            assert not [t for t in await gw.store.devices.transitions() if t.kind == "offline"]
            await clock.advance(2)

            async def all_offline() -> bool:
                gone = [t for t in await gw.store.devices.transitions() if t.kind == "offline"]
                return len(gone) == 41

            await wait_for(all_offline, what="every silent device offline")
            offline = [t for t in await gw.store.devices.transitions() if t.kind == "offline"]
            assert {t.at for t in offline} == {started + 180}
            assert sample(gw, "bidao_devices_offline") == 41


async def test_a_first_frame_looks_for_a_stored_copy_only_where_one_can_be(
    tmp_path: Path,
    clock: ManualClock,
    no_leaked_tasks: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fleet being installed: a box never heard has nothing stored, so its first frame
    costs no read of stored MACs; after a restart, a copy of a stored frame is still found."""
    looked: list[str] = []
    stored_macs = SqliteDeviceWrites.stored_macs

    async def counted(self: SqliteDeviceWrites, device_id: str, seqs: Sequence[int]) -> Any:
        looked.append(device_id)
        return await stored_macs(self, device_id, seqs)

    monkeypatch.setattr(SqliteDeviceWrites, "stored_macs", counted)
    box = SimulatedDevice(BOX, "call_box", KEY, clock=clock.now)
    async with SerialConcentrator([box]) as line:
        settings = gateway_settings(tmp_path, None, serial=[{"name": "bus1", "url": line.url}])
        async with GatewayService(settings, clock) as gw:
            await gw.register_device(BOX, "call_box", KEY)
        async with GatewayService(settings, clock) as gw:  # read from the store, never heard
            first = box.heartbeat(interval_s=60)
            await line.send(BOX, first)
            await wait_for(lambda: not box.pending, what="first heartbeat acked")
            assert looked == []
            await line.send(BOX, first)  # a copy: not after the newest, so it is looked for
            await wait_for(
                lambda: sample(gw, "bidao_frames_duplicate_total", transport="serial") == 1,
                what="duplicate acked",
            )
            assert looked == [BOX]
        async with GatewayService(settings, clock) as gw:  # the copy after a restart
            await line.send(BOX, first)
            await wait_for(
                lambda: sample(gw, "bidao_frames_duplicate_total", transport="serial") == 1,
                what="duplicate after restart acked",
            )
            assert looked == [BOX, BOX]
            assert await gw.store.devices.count_events(BOX) == 1
