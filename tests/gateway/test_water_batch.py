"""The water watch meets households for the first time, many at once (a fleet's first
readings: it reads them together) or one at a time (a batch of one home, a command): each
home is watched or not by the same rule."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from device_sim.device import SimulatedDevice
from device_sim.serial import SerialConcentrator
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.service import GatewayService
from gateway.services.water import WaterWatchError
from tests.gateway.grid import HOUSEHOLDS_HEADER, NEIGHBOURHOOD, UNITS_CSV
from tests.gateway.support import gateway_settings, wait_for

ALONE = [f"W{i:05d}" for i in range(6)]
NOT_ALONE = [f"F{i:05d}" for i in range(4)]
ACKED_S = 60.0
"""Bound on waiting for the gateway's acks (a loaded 2-core machine is slow, not wrong)."""


def _households() -> str:
    rows = [HOUSEHOLDS_HEADER]
    for code in [*ALONE, *NOT_ALONE]:
        alone = 1 if code in ALONE else 0
        rows.append(f"{code},{NEIGHBOURHOOD},桥元村{code}号,居民{code},,{alone},0,0,1,,,,")
    return "\n".join(rows) + "\n"


def _meter(i: int) -> tuple[str, bytes]:
    return f"{0xC0DE000000000000 + i:016x}", (100 + i).to_bytes(16, "big")


def _acked(meters: list[SimulatedDevice]) -> Callable[[], bool]:
    return lambda: not any(m.pending for m in meters)


@dataclass
class _Village:
    gw: GatewayService
    line: SerialConcentrator
    meters: list[SimulatedDevice]
    database: Path

    async def read(
        self, litres: int, meters: int | None = None, *, one_at_a_time: bool = False
    ) -> None:
        """The first `meters` meters (all: None) send a reading of `litres`; returns once all
        are acknowledged.

        One at a time: each is acknowledged before the next is sent (a batch of one home).
        Otherwise all at once, however the pipeline batches them.
        """
        sending = self.meters[:meters]
        for meter in sending:
            await self.line.send(meter.device_id, meter.water_reading(litres, 0))
            if one_at_a_time:
                await wait_for(_acked([meter]), timeout=ACKED_S, what="acked")
        await wait_for(_acked(sending), timeout=ACKED_S, what="all acked")

    def watches(self) -> dict[str, dict[str, object]]:
        """The stored watches' states, by household."""
        with sqlite3.connect(self.database) as db:
            rows = db.execute("SELECT household_code, state FROM water_watches")
            return {code: json.loads(state) for code, state in rows}


@contextlib.asynccontextmanager
async def _village(
    tmp_path: Path, clock: ManualClock, homes: list[str], **overrides: Any
) -> AsyncIterator[_Village]:
    """A gateway on a serial line with a water meter in each of `homes`, the grid imported."""
    meters = [
        SimulatedDevice(_meter(i)[0], "water_meter", _meter(i)[1], clock=clock.now)
        for i in range(len(homes))
    ]
    async with SerialConcentrator(meters) as line:
        serial = [{"name": "bus1", "url": line.url}]
        settings = gateway_settings(tmp_path, None, serial=serial, **overrides)
        async with GatewayService(settings, clock) as gw:
            application = for_service(gw)
            assert (await application.import_grid("units", UNITS_CSV)).rejected == 0
            assert (await application.import_grid("households", _households())).rejected == 0
            for i, home in enumerate(homes):
                await gw.register_device(_meter(i)[0], "water_meter", _meter(i)[1], home)
            yield _Village(gw, line, meters, settings.database_path)


async def test_first_readings_of_many_homes_in_one_go(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None
) -> None:
    async with _village(tmp_path, clock, [*ALONE, *NOT_ALONE]) as v:
        await v.read(1000)  # every meter's first reading at once
        await clock.advance(600)
        await v.read(1012)  # and water used: every watched home notes it
    watched = v.watches()
    assert sorted(watched) == ALONE
    for state in watched.values():
        assert state["volume_l"] == 1012
        assert state["last_life_at"] == clock.now()  # the litres used are a sign of life


async def test_first_reading_of_one_home_at_a_time(
    tmp_path: Path, clock: ManualClock, no_leaked_tasks: None
) -> None:
    lone, other, listed, by_command = ALONE[0], NOT_ALONE[0], NOT_ALONE[1], ALONE[1]
    homes = [lone, other, listed, by_command]
    async with _village(tmp_path, clock, homes, water={"watch_households": [listed]}) as v:
        # Met first by a command, outside any batch: watched or refused by the same rule.
        water = v.gw.water
        assert water is not None
        away_until = clock.now() + 3600
        await water.away(by_command, away_until)
        with pytest.raises(WaterWatchError):
            await water.away(other, away_until)
        # Each first reading alone in its batch (the home met by a command sends nothing).
        await v.read(1000, 3, one_at_a_time=True)
        await clock.advance(600)
        await v.read(1012, 3, one_at_a_time=True)
    watched = v.watches()
    assert sorted(watched) == sorted([lone, listed, by_command])
    for home in (lone, listed):
        assert watched[home]["volume_l"] == 1012
        assert watched[home]["last_life_at"] == clock.now()
    assert watched[by_command]["away_until"] == away_until
