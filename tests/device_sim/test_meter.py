"""The simulated meter's day and its switches, on a clock the test moves."""

from __future__ import annotations

import pytest

import firmware_protocol as fp
from device_sim.device import MeterModel, SimulatedDevice
from device_sim.meter import LEAK_LPH, SimulatedMeter

METER_ID = "b1da5c00000000f1"
START = 1_780_000_000.0  # 2026-05-28 04:26:40 in China: the household is asleep


class Hands:
    """A clock moved by hand."""

    def __init__(self) -> None:
        self.t = START

    def __call__(self) -> float:
        return self.t


def readings(meter: SimulatedMeter) -> list[fp.WaterReading | fp.Heartbeat]:
    return [
        fp.decode_message(fp.parse_frame(frame))  # type: ignore[misc]
        for frame in meter.report()
    ]


@pytest.fixture
def meter() -> tuple[SimulatedMeter, Hands]:
    clock = Hands()
    device = SimulatedDevice(METER_ID, "water_meter", bytes(16), clock=clock)
    hourly = tuple([10] * 24)
    return SimulatedMeter(device, clock, model=MeterModel(hourly), start_litres=100), clock


def test_the_counter_follows_the_profile_and_the_switches(
    meter: tuple[SimulatedMeter, Hands],
) -> None:
    m, clock = meter
    clock.t += 3600
    reading, heartbeat = readings(m)
    assert reading == fp.WaterReading(110, 10, fp.MeterStatus(0))
    assert isinstance(heartbeat, fp.Heartbeat)
    assert heartbeat.battery_pct == 90

    m.switch("no_use")
    clock.t += 3600
    assert readings(m)[0] == fp.WaterReading(110, 0, fp.MeterStatus(0))

    m.switch("leak")
    clock.t += 3600
    assert readings(m)[0] == fp.WaterReading(110 + LEAK_LPH, LEAK_LPH, fp.MeterStatus(0))

    m.switch("normal")
    m.switch("low_battery")
    clock.t += 3600
    reading, heartbeat = readings(m)
    assert reading == fp.WaterReading(180, 10, fp.MeterStatus.LOW_BATTERY)
    assert isinstance(heartbeat, fp.Heartbeat)
    assert heartbeat.battery_pct == 5

    m.switch("offline")
    clock.t += 3600
    assert m.report() == []
    m.switch("offline", on=False)
    m.switch("low_battery", on=False)
    m.switch("replaced")
    clock.t += 360
    assert readings(m)[0] == fp.WaterReading(1, 10, fp.MeterStatus(0))


def test_an_unknown_switch_is_refused(meter: tuple[SimulatedMeter, Hands]) -> None:
    with pytest.raises(ValueError, match="switch must be one of normal, no_use"):
        meter[0].switch("flood")  # type: ignore[arg-type]
