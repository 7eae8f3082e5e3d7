"""Install checks: whether a device just installed really works, key by key.

An installer starts a check for a device. For a call box, each of its four keys must arrive
(green, red, thumbs-up, thumbs-down) before the check's time runs out; for a water meter, a
reading whose total is higher than the first reading of the check (the installer runs the
tap). A device whose latest check passed is *active*; any other is *pending*, with the reason
its latest check gave (or `never_checked`).

Pending is a label for installers, not a gate: a pending box's green press still reaches a
person. Only while a check is running (and within its time) are the box's presses the
installer's, kept from the ticket service and the water watch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from firmware_protocol import Key

CheckState = Literal["running", "passed", "failed", "cancelled"]
StepName = Literal["green", "red", "thumbs_up", "thumbs_down", "reading"]
InstallState = Literal["active", "pending", "checking"]
CheckReason = Literal[
    "missing_keys", "no_reading", "volume_not_rising", "cancelled", "restarted", "removed"
]

KEY_NAMES: dict[Key, StepName] = {
    Key.GREEN_CALL: "green",
    Key.RED_HANGUP: "red",
    Key.THUMBS_UP: "thumbs_up",
    Key.THUMBS_DOWN: "thumbs_down",
}
"""Each key of the call box by the name a check gives it."""
CHECK_KEYS: tuple[StepName, ...] = ("green", "red", "thumbs_up", "thumbs_down")
"""The keys a call box's check waits for, in the order an installer presses them."""


@dataclass(frozen=True, slots=True)
class CheckStep:
    """A key press or a meter reading that arrived during a check."""

    at: float
    what: StepName
    litres: int | None = None
    flow_lph: int | None = None


@dataclass(frozen=True, slots=True)
class InstallCheck:
    """One install check of one device, with what arrived so far."""

    id: int
    device_id: str
    kind: Literal["call_box", "water_meter"]
    started_at: float
    ends_at: float
    started_by: str
    state: CheckState = "running"
    ended_at: float | None = None
    reason: CheckReason | None = None
    steps: tuple[CheckStep, ...] = ()

    @property
    def keys_seen(self) -> tuple[StepName, ...]:
        """The keys that arrived, each once, in the order of CHECK_KEYS."""
        seen = {s.what for s in self.steps}
        return tuple(k for k in CHECK_KEYS if k in seen)

    @property
    def keys_missing(self) -> tuple[StepName, ...]:
        """The keys of a call box that have not arrived (none for a meter)."""
        if self.kind != "call_box":
            return ()
        seen = {s.what for s in self.steps}
        return tuple(k for k in CHECK_KEYS if k not in seen)

    @property
    def readings(self) -> tuple[CheckStep, ...]:
        """The meter readings that arrived, oldest first."""
        return tuple(s for s in self.steps if s.what == "reading")

    def verdict(self) -> CheckReason | None:
        """None if the device has shown everything the check asks for; else what is missing."""
        if self.kind == "call_box":
            return "missing_keys" if self.keys_missing else None
        readings = self.readings
        if not readings:
            return "no_reading"
        first = readings[0].litres or 0
        if any((r.litres or 0) > first for r in readings[1:]):
            return None
        return "volume_not_rising"

    def running_at(self, at: float) -> bool:
        """Whether the check is running and its time has not run out at `at`."""
        return self.state == "running" and at < self.ends_at


def install_state(latest: InstallCheck | None) -> tuple[InstallState, str | None]:
    """A device's installation state from its latest check, and the reason if not active."""
    if latest is None:
        return "pending", "never_checked"
    if latest.state == "running":
        return "checking", None
    if latest.state == "passed":
        return "active", None
    return "pending", latest.reason
