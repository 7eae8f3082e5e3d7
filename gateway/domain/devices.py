"""Devices as the gateway knows them: registration, link state, health, status changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DeviceKind = Literal["call_box", "water_meter"]
DeviceStatus = Literal["unknown", "online", "offline"]
TransitionKind = Literal[
    "online",
    "offline",
    "low_battery",
    "battery_ok",
    "tamper",
    "tamper_ok",
    "power_loss",
    "power_ok",
]
"""A change of a device's state: its status, or one of its health flags raised or cleared."""


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A registered device as stored."""

    device_id: str
    kind: DeviceKind
    key: bytes
    heartbeat_interval_s: int
    created_at: float
    key_version: int = 0
    household_code: str | None = None
    label: str | None = None
    enabled: bool = True
    status: DeviceStatus = "unknown"
    low_battery: bool = False
    tamper: bool = False
    """The device reports its case opened or moved (an alarm, or a meter's status bit)."""
    power_loss: bool = False
    """The device reports it lost its mains power (running on its battery)."""
    firmware: str | None = None
    battery_pct: int | None = None
    battery_mv: int | None = None
    rssi_dbm: int | None = None
    uptime_s: int | None = None
    last_seen: float | None = None
    last_link: str | None = None
    last_seq: int | None = None
    """Position (session << 32 | seq) of the newest frame accepted since the last counter reset."""
    downlink_seq: int = 0
    """session << 32 | the last downlink seq used in that session (stored ahead of use)."""
    next_key: bytes | None = None
    """A key being rotated to; accepted beside `key` until a frame MACed with it arrives."""
    next_key_id: int | None = None
    counters_reset_at: float | None = None
    high_seq: int | None = None
    """The highest position ever stored for the device (counter resets do not lower it)."""
    pending_heartbeat_s: int | None = None
    """A heartbeat interval `bidao device configure` asked for, until a heartbeat reports it."""
    pending_clock: bool = False
    """`bidao device configure --clock`: set the box's clock after its next frame."""

    def key_for(self, key_id: int) -> bytes | None:
        """The key a frame's key_id names: the current key or the one being rotated to."""
        if key_id == self.key_version:
            return self.key
        if self.next_key is not None and key_id == self.next_key_id:
            return self.next_key
        return None

    def __repr__(self) -> str:
        """Never show the key."""
        return f"DeviceRecord(device_id={self.device_id!r}, kind={self.kind!r}, key=<hidden>)"


@dataclass(frozen=True, slots=True)
class EventRow:
    """One accepted uplink, raw bytes and decoded fields, for audit and the domain."""

    device_id: str
    seq: int
    msg_type: str
    device_time: int
    received_at: float
    transport: str
    link: str
    raw: bytes
    fields: str


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    """What one ingest batch learnt about a device's link state."""

    device_id: str
    last_seen: float
    last_link: str
    last_seq: int
    downlink_seq: int


@dataclass(frozen=True, slots=True)
class Telemetry:
    """Health fields from a heartbeat."""

    device_id: str
    firmware: str
    battery_pct: int | None
    battery_mv: int
    rssi_dbm: int
    uptime_s: int
    heartbeat_interval_s: int


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of a device's status, recorded once."""

    device_id: str
    at: float
    kind: TransitionKind
    detail: str = ""

    @property
    def sets_status(self) -> bool:
        """Whether it changes the online/offline status (else the low-battery flag)."""
        return self.kind in ("online", "offline")


HistoryAction = Literal[
    "added",
    "attached",
    "moved",
    "replaced",
    "replaces",
    "removed",
    "key_rotation",
    "configured",
    "counters_reset",
]
"""What was done to a device: `replaced` is written on the old box, `replaces` on the new."""

AlarmKind = Literal[
    "unassigned_call",
    "unknown_household",
    "call_failed",
    "press_failed",
    "health_no_household",
    "health_no_installer",
    "link_down",
    "provider_refused",
]
"""Why an operator must look: a call from a box without a household, a box registered to a
household that does not exist, a call that could not become a ticket, another key press
that failed; a device health alarm (offline, low battery, tamper, power loss) of a device
with no household in the grid, or whose household's units have no installer on record; the
gateway's link to the MQTT broker or a serial line down (its subject, in place of a device
id, is `link:<name>`: `link:mqtt`, `link:bus1`; one alarm per link, not per device)."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change to a device's registration: who did what, when."""

    device_id: str
    at: float
    action: HistoryAction
    actor: str
    from_household: str | None = None
    to_household: str | None = None
    unit_code: str | None = None
    """The grid unit the box is installed in, when known without a household."""
    other_device: str | None = None
    """For `replaced`, the new box; for `replaces`, the old one."""
    note: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class OperatorAlarm:
    """Something an operator must put right; open until cleared."""

    id: int
    kind: AlarmKind
    device_id: str | None
    detail: str
    at: float
    last_at: float
    count: int
    notified_at: float | None = None
    cleared_at: float | None = None
    cleared_by: str | None = None


@dataclass(frozen=True, slots=True)
class OfflineNotice:
    """A box's people were told it has been silent; kept until it reports again."""

    device_id: str
    last_heard: float
    notified_at: float


HealthKind = Literal["offline", "low_battery", "tamper", "power_loss"]
"""What can be wrong with a device that its installer must put right."""

HEALTH_KINDS: tuple[HealthKind, ...] = ("offline", "low_battery", "tamper", "power_loss")

_RAISED: dict[TransitionKind, HealthKind] = {
    "offline": "offline",
    "low_battery": "low_battery",
    "tamper": "tamper",
    "power_loss": "power_loss",
}
_CLEARED: dict[TransitionKind, HealthKind] = {
    "online": "offline",
    "battery_ok": "low_battery",
    "tamper_ok": "tamper",
    "power_ok": "power_loss",
}


def health_change(kind: TransitionKind) -> tuple[HealthKind, bool]:
    """The health condition a transition is about, and whether it begins (True) or ends."""
    if kind in _RAISED:
        return _RAISED[kind], True
    return _CLEARED[kind], False


@dataclass(frozen=True, slots=True)
class HealthAlarm:
    """One spell of a device health condition, from when it began until its all-clear.

    A spell is `pending` while the condition lasts less than its hold-off (nobody told
    yet: a short blip is never told), `told` once its people were sent the alarm, and
    `clearing` from when the condition ended until it has stayed away for the all-clear's
    hold-off (if it comes back meanwhile, the spell goes on and nobody is told again).
    """

    device_id: str
    kind: HealthKind
    since: float
    """When the condition began (for offline: when the device was last heard)."""
    told_at: float | None = None
    told: tuple[int, ...] = ()
    """The contacts sent the alarm: the all-clear goes to them."""
    ok_since: float | None = None
    """When the condition ended, while the all-clear waits for its hold-off."""
    cleared_at: float | None = None
    id: int | None = None

    @property
    def state(self) -> Literal["pending", "told", "clearing", "cleared"]:
        """Where the spell is (see the class docstring)."""
        if self.cleared_at is not None:
            return "cleared"
        if self.ok_since is not None:
            return "clearing"
        return "pending" if self.told_at is None else "told"


@dataclass(frozen=True, slots=True)
class OfflineSpell:
    """A call box offline from `began` until `ended` (None: still offline)."""

    device_id: str
    household_code: str | None
    began: float
    ended: float | None


def retired(record: DeviceRecord) -> bool:
    """Whether the device was removed (it keeps its history; its frames are refused)."""
    return not record.enabled
