"""A simulated water meter's day: a consumption profile, and switches a scenario flips.

`SimulatedMeter` keeps the counter a real meter would show, advanced by a `MeterModel`
(litres per local hour) as its clock moves, and builds the frames it would send at each
report: a reading, and a heartbeat (battery). The switches are the stories a tester plays:
the resident stops using water, a pipe leaks, the meter goes offline, its battery runs low,
or it is replaced by a new one counting from zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from device_sim.device import MeterModel, SimulatedDevice
from firmware_protocol import MeterStatus

Switch = Literal["normal", "no_use", "leak", "offline", "low_battery", "replaced"]
SWITCHES: tuple[Switch, ...] = get_args(Switch)
LEAK_LPH = 60
"""A dripping pipe: this many litres an hour, day and night."""
LOW_BATTERY_PCT = 5
LOW_BATTERY_MV = 2300


@dataclass
class MeterState:
    """What the meter shows now."""

    total_litres: float
    flow_lph: int
    battery_pct: int = 90
    battery_mv: int = 3000


class SimulatedMeter:
    """One water meter: a device, its counter on a clock, and the scenario's switches."""

    def __init__(
        self,
        device: SimulatedDevice,
        clock: Callable[[], float],
        *,
        model: MeterModel | None = None,
        start_litres: float = 1000.0,
    ) -> None:
        if device.kind != "water_meter":
            raise ValueError("a simulated meter needs a water_meter device")
        self.device = device
        self.model = model or MeterModel()
        self._clock = clock
        self._at = clock()
        self.state = MeterState(start_litres, 0)
        self.switches: set[Switch] = set()

    def switch(self, name: Switch, *, on: bool = True) -> None:
        """Flip one switch; `replaced` takes effect at once (a new meter counts from zero)."""
        if name not in SWITCHES:
            raise ValueError(f"switch must be one of {', '.join(SWITCHES)}, got {name!r}")
        self._advance()
        if name == "normal":
            self.switches.clear()
            return
        if name == "replaced":
            self.state.total_litres = 0.0
            return
        if on:
            self.switches.add(name)
        else:
            self.switches.discard(name)

    def use(self, litres: float) -> None:
        """The resident runs the tap once."""
        self._advance()
        self.state.total_litres += litres

    def _advance(self) -> None:
        now = self._clock()
        if now <= self._at:
            return
        if "leak" in self.switches:
            self.state.total_litres += LEAK_LPH * (now - self._at) / 3600
            self.state.flow_lph = LEAK_LPH
        elif "no_use" in self.switches:
            self.state.flow_lph = 0
        else:
            start = int(self.state.total_litres)
            self.state.total_litres += self.model.total_at(start, self._at, now) - start
            self.state.flow_lph = self.model.flow_at(now)
        self._at = now

    def report(self) -> list[bytes]:
        """The frames a scheduled report sends now (none while offline)."""
        self._advance()
        if "offline" in self.switches:
            return []
        low = "low_battery" in self.switches
        self.state.battery_pct = LOW_BATTERY_PCT if low else 90
        self.state.battery_mv = LOW_BATTERY_MV if low else 3000
        status = MeterStatus.LOW_BATTERY if low else MeterStatus(0)
        return [
            self.device.water_reading(int(self.state.total_litres), self.state.flow_lph, status),
            self.device.heartbeat(
                battery_pct=self.state.battery_pct, battery_mv=self.state.battery_mv
            ),
        ]
