"""The narrow storage interface the domain sees; SQLite implements it, PostgreSQL can later."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from gateway.config import DeviceKind

DeviceStatus = Literal["unknown", "online", "offline"]
TransitionKind = Literal["online", "offline", "low_battery", "battery_ok"]


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
    firmware: str | None = None
    battery_pct: int | None = None
    battery_mv: int | None = None
    rssi_dbm: int | None = None
    uptime_s: int | None = None
    last_seen: float | None = None
    last_link: str | None = None
    last_seq: int | None = None
    downlink_seq: int = 0

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


@dataclass(frozen=True, slots=True)
class Deadline:
    """A due time for something to be checked; (kind, subject) is unique."""

    kind: str
    subject: str
    due_at: float


class UnitOfWork(Protocol):
    """Writes inside one transaction; all of them commit together or none does."""

    async def add_device(self, device: DeviceRecord) -> None:
        """Register a device; RegistryError if the id exists."""
        ...

    async def insert_events(self, rows: Sequence[EventRow]) -> None:
        """Store accepted uplinks."""
        ...

    async def stored_seqs(self, device_id: str, seqs: Sequence[int]) -> set[int]:
        """Which of `seqs` are already stored for the device."""
        ...

    async def mark_seen(self, rows: Sequence[DeviceSeen]) -> None:
        """Update last contact, link and sequence numbers."""
        ...

    async def set_downlink_seq(self, device_id: str, seq: int) -> None:
        """Persist the newest downlink sequence number used for the device."""
        ...

    async def update_telemetry(self, rows: Sequence[Telemetry]) -> None:
        """Update battery, signal, firmware, uptime and reporting interval."""
        ...

    async def apply_transitions(self, rows: Sequence[Transition]) -> None:
        """Record status changes and set the devices' current status flags."""
        ...

    async def set_deadlines(self, rows: Sequence[Deadline]) -> None:
        """Create or move deadlines."""
        ...

    async def clear_deadlines(self, keys: Sequence[tuple[str, str]]) -> None:
        """Remove deadlines by (kind, subject)."""
        ...

    async def due_deadlines(self, now: float, limit: int) -> list[Deadline]:
        """Deadlines due at or before `now`, earliest first."""
        ...


class Store(Protocol):
    """Opening, transactions and the reads the gateway needs."""

    async def open(self) -> None:
        """Connect and migrate."""
        ...

    async def close(self) -> None:
        """Close; safe to call twice."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """One serialised write transaction."""
        ...

    async def load_devices(self) -> list[DeviceRecord]:
        """Every registered device."""
        ...

    async def get_device(self, device_id: str) -> DeviceRecord | None:
        """One device, or None."""
        ...

    async def next_deadline_at(self) -> float | None:
        """The earliest due time, or None if nothing is pending."""
        ...
