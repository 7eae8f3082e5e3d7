"""The narrow storage interface the domain sees; SQLite implements it, PostgreSQL can later."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from alerts import Notification
from gateway.config import Category, DeviceKind, Role

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

    async def household_info(self, household_code: str) -> HouseholdInfo | None:
        """The household, its grid units up to the county, and its first resident."""
        ...

    async def contacts_for_role(self, unit_chain: Sequence[str], role: Role) -> list[Contact]:
        """Contacts with `role` at the nearest unit of the chain that has any."""
        ...

    async def contacts_by_id(self, ids: Sequence[int]) -> list[Contact]:
        """The contacts with these ids."""
        ...

    async def live_ticket(self, household_code: str) -> Ticket | None:
        """The household's open, accepted or on-site ticket."""
        ...

    async def latest_unrated(self, household_code: str, since: float) -> Ticket | None:
        """The household's most recent resolved, unrated ticket resolved at or after `since`."""
        ...

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        """One ticket."""
        ...

    async def insert_ticket(
        self,
        household_code: str | None,
        device_id: str | None,
        village_code: str | None,
        neighbourhood_code: str | None,
        press_count: int,
        at: float,
    ) -> int:
        """Open a ticket; returns its id."""
        ...

    async def update_ticket(self, ticket_id: int, **values: object) -> None:
        """Set ticket columns."""
        ...

    async def claim_ticket(self, ticket_id: int, contact_id: int, at: float) -> bool:
        """Make the contact the owner if the ticket is still open; False if someone was first."""
        ...

    async def add_ticket_events(self, rows: Sequence[TicketEvent]) -> None:
        """Append audit rows."""
        ...

    async def notified_contacts(self, ticket_id: int) -> list[int]:
        """Every contact that has been sent something about the ticket."""
        ...

    async def add_feedback(
        self,
        household_code: str | None,
        device_id: str,
        at: float,
        rating: str,
        ticket_id: int | None,
    ) -> None:
        """Record a thumbs press."""
        ...

    async def enqueue(self, notifications: Sequence[Notification], at: float) -> None:
        """Write notifications into the outbox."""
        ...

    async def claim_notifications(self, now: float, limit: int) -> list[OutboxRow]:
        """Due pending notifications, urgent first, marked as being sent."""
        ...

    async def notification_sent(
        self, notification_id: int, provider: str, provider_id: str, delivery: str, at: float
    ) -> None:
        """The provider took it (or, for delivery "delivered", it has arrived)."""
        ...

    async def notification_retry(
        self, notification_id: int, next_attempt_at: float, error: str, at: float
    ) -> None:
        """Sending failed for now; try again at `next_attempt_at`."""
        ...

    async def notification_failed(
        self, notification_id: int, error: str, at: float, bad_number: bool
    ) -> None:
        """Sending failed for good; a bad number flags the contact for an administrator."""
        ...

    async def notification_delivery(
        self, notification_id: int, provider_id: str, delivery: str, at: float
    ) -> bool:
        """Apply a provider status callback; never moves backwards; False if it changed nothing."""
        ...

    async def release_in_doubt(self, resend_at: float) -> int:
        """Rows left "sending" by a crash go back to pending, due at `resend_at`."""
        ...

    async def existing_keys(self, table: GridTable, keys: Sequence[str]) -> dict[str, str]:
        """Which of `keys` exist in a grid table: key -> level (units) or "" (others)."""
        ...

    async def insert_grid_rows(
        self, table: GridTable, rows: Sequence[Mapping[str, object]]
    ) -> None:
        """Insert validated rows into a grid table."""
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

    async def next_notification_at(self) -> float | None:
        """When the next pending notification is due, or None."""
        ...


TicketStatus = Literal["open", "accepted", "on_site", "resolved", "rated", "cancelled"]
ActionChannel = Literal["box_key", "voice_keypress", "dashboard", "api", "system"]
LIVE_STATUSES: tuple[TicketStatus, ...] = ("open", "accepted", "on_site")
GridTable = Literal["grid_units", "households", "residents", "contacts", "devices"]


@dataclass(frozen=True, slots=True)
class Contact:
    """A person who can be notified."""

    id: int
    name: str
    role: Role
    phone: str
    language: str = "zh-CN"
    unit_code: str | None = None
    household_code: str | None = None
    bad_number: bool = False


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A notification claimed for sending."""

    id: int
    notification: Notification
    attempts: int


@dataclass(frozen=True, slots=True)
class GridUnit:
    """One unit of the grid."""

    code: str
    level: str
    name: str
    parent_code: str | None


@dataclass(frozen=True, slots=True)
class HouseholdInfo:
    """A household with its place in the grid, nearest unit first, and its first resident."""

    code: str
    address: str
    unit_chain: tuple[str, ...]
    unit_names: dict[str, str]
    unit_levels: dict[str, str]
    resident_name: str

    def unit_at(self, level: str) -> str | None:
        """The code of the household's unit at `level`, if the grid has one."""
        return next((c for c in self.unit_chain if self.unit_levels[c] == level), None)

    @property
    def place(self) -> str:
        """Village and group names, as people say it ("桥元村三组")."""
        names = [
            self.unit_names[c]
            for c in reversed(self.unit_chain)
            if self.unit_levels[c] in ("village", "group")
        ]
        return "".join(names) or self.address


@dataclass(frozen=True, slots=True)
class Ticket:
    """A "呼叫书记必到" service ticket."""

    id: int
    household_code: str | None
    device_id: str | None
    village_code: str | None
    neighbourhood_code: str | None
    status: TicketStatus
    category: Category | None
    press_count: int
    responder_step: int
    escalation_level: int
    escalated: bool
    owner_contact_id: int | None
    opened_at: float
    last_press_at: float
    last_notified_at: float
    accepted_at: float | None
    on_site_at: float | None
    resolved_at: float | None
    rated_at: float | None
    cancelled_at: float | None
    day_due_at: float | None
    rating: Literal["up", "down"] | None
    review_flag: bool


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """One audit row of a ticket."""

    ticket_id: int
    at: float
    kind: str
    channel: ActionChannel
    contact_id: int | None = None
    detail: str = ""
