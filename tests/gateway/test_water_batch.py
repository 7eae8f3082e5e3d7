"""The water watch meets many households at once (a fleet's first readings): it reads
them together, and each home is watched or not exactly as it would be one at a time."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from device_sim.device import SimulatedDevice
from device_sim.serial import SerialConcentrator
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.service import GatewayService
from tests.gateway.grid import HOUSEHOLDS_HEADER, NEIGHBOURHOOD, UNITS_CSV
from tests.gateway.support import gateway_settings, wait_for

ALONE = [f"W{i:05d}" for i in range(6)]
NOT_ALONE = [f"F{i:05d}" for i in range(4)]


def _households() -> str:
    rows = [HOUSEHOLDS_HEADER]
    for code in [*ALONE, *NOT_ALONE]:
        alone = 1 if code in ALONE else 0
        rows.append(f"{code},{NEIGHBOURHOOD},桥元村{code}号,居民{code},,{alone},0,0,1,,,,")
    return "\n".join(rows) + "\n"


def _meter(i: int) -> tuple[str, bytes]:
    return f"{0xC0DE000000000000 + i:016x}", (100 + i).to_bytes(16, "big")


async def test_first_readings_of_many_homes_in_one_go(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None
) -> None:
    homes = [*ALONE, *NOT_ALONE]
    meters = [
        SimulatedDevice(_meter(i)[0], "water_meter", _meter(i)[1], clock=clock.now)
        for i in range(len(homes))
    ]
    async with SerialConcentrator(meters) as line:
        settings = gateway_settings(tmp_path, None, serial=[{"name": "bus1", "url": line.url}])
        async with GatewayService(settings, clock) as gw:
            application = for_service(gw)
            assert (await application.import_grid("units", UNITS_CSV)).rejected == 0
            assert (await application.import_grid("households", _households())).rejected == 0
            for i, home in enumerate(homes):
                await gw.register_device(_meter(i)[0], "water_meter", _meter(i)[1], home)
            # Every meter's first reading at once, however the pipeline batches them.
            for meter in meters:
                await line.send(meter.device_id, meter.water_reading(1000, 0))
            await wait_for(lambda: not any(m.pending for m in meters), what="all acked")
            await clock.advance(600)
            for meter in meters:  # and water used: every watched home notes it
                await line.send(meter.device_id, meter.water_reading(1012, 0))
            await wait_for(lambda: not any(m.pending for m in meters), what="all acked")
    with sqlite3.connect(settings.database_path) as db:
        watched = dict(db.execute("SELECT household_code, state FROM water_watches"))
    assert sorted(watched) == ALONE
    for state in map(json.loads, watched.values()):
        assert state["volume_l"] == 1012
        assert state["last_life_at"] == clock.now()  # the litres used are a sign of life
