"""The narrow storage interface the domain sees; SQLite implements it, PostgreSQL can later."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from alerts import Notification
from firmware_protocol import Indication
from gateway.config import DeviceKind, Role

# The ticket entity is the domain's; the storage port carries it and re-exports it.
from gateway.domain.tickets import Ticket as Ticket  # noqa: PLC0414 - explicit re-export
from gateway.domain.tickets import TicketEvent as TicketEvent  # noqa: PLC0414 - as above
from gateway.domain.tickets import TicketStatus

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


@dataclass(frozen=True, slots=True)
class DeadlineFailure:
    """A deadline whose handler raised: being retried, or quarantined for an operator."""

    kind: str
    subject: str
    due_at: float
    attempts: int
    reason: str
    failed_at: float
    status: Literal["retrying", "quarantined"]


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

    async def record_deadline_failure(self, deadline: Deadline, reason: str, at: float) -> int:
        """Count one more failed attempt at the deadline; returns its attempts so far."""
        ...

    async def quarantine_deadline(self, deadline: Deadline) -> None:
        """Mark the deadline's failure final and remove the deadline."""
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

    async def latest_unrated(self, household_code: str) -> Ticket | None:
        """The household's most recently resolved ticket that has not been rated."""
        ...

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        """One ticket; inside a transaction, as of that transaction (no one else changes it)."""
        ...

    async def insert_ticket(self, ticket: Ticket) -> int:
        """Open a ticket (its id is ignored), rules and cursor included; returns its id."""
        ...

    async def save_ticket(self, ticket: Ticket, was: TicketStatus) -> bool:
        """Store the ticket's new state; False if its stored status is no longer `was`."""
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

    async def enqueue_follow_up(
        self, origin_id: int, kind: FollowUpKind, notification: Notification, due_at: float
    ) -> bool:
        """Write the one fallback or retry of a notification; False if it exists already."""
        ...

    async def due_notifications(
        self, now: float, limit: int, in_doubt: bool, skip_recipients: Sequence[str] = ()
    ) -> list[OutboxRow]:
        """Pending notifications due at `now` (in doubt or not), urgent first, oldest first.

        Those to `skip_recipients` (numbers with a send in flight) are left out.
        """
        ...

    async def merged_members(self, leader_ids: Sequence[int]) -> dict[int, list[Notification]]:
        """The notifications merged into each leader, oldest first."""
        ...

    async def recent_sends(self, recipient: str, channel: str, since: float) -> list[float]:
        """When messages to `recipient` on `channel` were handed over since `since`."""
        ...

    async def mark_sending(self, ids: Sequence[int], at: float) -> None:
        """Claim notifications for sending: one more attempt each."""
        ...

    async def defer_notifications(self, ids: Sequence[int], until: float) -> None:
        """Hold pending notifications back until `until` (throttling); no attempt is used."""
        ...

    async def merge_notifications(self, leader_id: int, ids: Sequence[int], at: float) -> None:
        """Fold pending notifications into `leader_id`, which is sent for all of them."""
        ...

    async def notification_sent(
        self,
        notification_id: int,
        provider: str,
        provider_id: str,
        delivery: str,
        at: float,
        text: str | None,
    ) -> None:
        """The provider took it (or, for delivery "delivered", it has arrived)."""
        ...

    async def notification_retry(
        self, notification_id: int, next_attempt_at: float, error: str, at: float, in_doubt: bool
    ) -> None:
        """Sending failed for now; try again at `next_attempt_at` (after a lookup, if in doubt)."""
        ...

    async def notification_lookup_failed(
        self, notification_id: int, next_attempt_at: float, error: str, at: float
    ) -> None:
        """An in-doubt lookup failed: one more attempt used; look again at `next_attempt_at`."""
        ...

    async def notification_quarantined(
        self, notification_id: int, error: str, at: float, attempts: int
    ) -> None:
        """Give up on a notification after `attempts`: failed, with its reason and time."""
        ...

    async def notification_resolved_doubt(
        self, notification_id: int, next_attempt_at: float
    ) -> None:
        """An in-doubt notification was not taken by the provider: send it normally when due."""
        ...

    async def voice_twin_exists(self, notification_id: int) -> bool:
        """Whether the same message went to the same person by voice already (no fallback)."""
        ...

    async def known_provider_ids(self, provider_ids: Sequence[str]) -> set[str]:
        """Which of these provider ids belong to notifications already."""
        ...

    async def notification_keypress(self, notification_id: int, digit: str, at: float) -> bool:
        """Record the first key pressed on a call; False if there is no such notification."""
        ...

    async def notification_failed(
        self, notification_id: int, error: str, at: float, bad_number: bool
    ) -> None:
        """Sending failed for good; a bad number flags the contact for an administrator."""
        ...

    async def notification_delivery(
        self, notification_id: int, provider_id: str, delivery: str, at: float
    ) -> OutboxRecord | None:
        """Apply a provider status callback; never moves backwards; None if it changed nothing."""
        ...

    async def release_in_doubt(self, at: float) -> int:
        """Rows left "sending" by a crash become pending and in doubt, due at `at`."""
        ...

    async def set_contact_bad_number(self, contact_id: int) -> None:
        """Flag a contact's number for an administrator."""
        ...

    async def insert_grid(self, rows: Sequence[GridRow]) -> None:
        """Insert new grid rows, in order (a parent before what refers to it).

        StoreError if one conflicts with a stored row.
        """
        ...

    async def update_grid(self, rows: Sequence[GridRow]) -> None:
        """Set what an import may change of stored rows, found by code or id.

        A unit's name; a household's neighbourhood and address; a resident's fields (not its
        household or name); a contact's name, language and hours. StoreError for a device.
        """
        ...

    async def add_indications(self, rows: Sequence[tuple[str, Indication]], at: float) -> None:
        """Queue (device_id, indication) pairs; each supersedes its ticket's pending one."""
        ...

    async def due_indications(
        self, now: float, limit: int, heard: Sequence[str]
    ) -> list[PendingIndication]:
        """Pending indications due by `now`, or of a device in `heard`, oldest first."""
        ...

    async def indications_delivered(self, ids: Sequence[int], at: float) -> None:
        """Mark indications as handed to the box's link."""
        ...

    async def indications_retry(self, retries: Sequence[IndicationRetry], at: float) -> None:
        """Count a failed attempt on each and set when it is tried again."""
        ...


class GridReader(Protocol):
    """Committed grid rows by their natural keys, read beside the writer.

    These reads wait for no write transaction and hold none up; rows come oldest first.
    """

    async def units_by_code(self, codes: Sequence[str]) -> list[GridUnit]:
        """The grid units with these codes."""
        ...

    async def households_by_code(self, codes: Sequence[str]) -> list[HouseholdRow]:
        """The households with these codes."""
        ...

    async def residents_of(self, household_codes: Sequence[str]) -> list[ResidentRow]:
        """The residents of these households."""
        ...

    async def devices_by_id(self, device_ids: Sequence[str]) -> list[DeviceRecord]:
        """The devices with these ids."""
        ...

    async def devices_of(self, household_codes: Sequence[str]) -> list[DeviceRecord]:
        """The devices registered to these households."""
        ...

    async def contacts_of(
        self, unit_codes: Sequence[str], household_codes: Sequence[str]
    ) -> list[ContactRow]:
        """The contacts of these units and of these households."""
        ...


class Store(GridReader, Protocol):
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

    async def quarantined_deadlines(self) -> int:
        """How many deadlines were quarantined after their handler kept failing."""
        ...

    async def next_notification_at(self, skip_recipients: Sequence[str] = ()) -> float | None:
        """When the next pending notification (not to `skip_recipients`) is due, or None."""
        ...

    async def notification_with_members(
        self, notification_id: int
    ) -> tuple[Notification, list[Notification]] | None:
        """A notification as written, and those merged into it (oldest first)."""
        ...

    async def next_indication_at(self) -> float | None:
        """When the next pending indication is due, or None."""
        ...

    async def indications(self, device_id: str | None = None) -> list[IndicationRecord]:
        """Every indication (of one device), oldest first."""
        ...


FollowUpKind = Literal["fallback", "retry"]


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
    available_from: str = "00:00"
    available_to: str = "24:00"

    def available_at(self, minute_of_day: int) -> bool:
        """Whether `minute_of_day` (local time, 0..1439) is within the contact's hours.

        Hours may wrap midnight (22:00-06:00 for a night duty officer).
        """
        start, end = _minutes(self.available_from), _minutes(self.available_to)
        if start <= end:
            return start <= minute_of_day < end
        return minute_of_day >= start or minute_of_day < end


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A notification due for sending."""

    id: int
    notification: Notification
    attempts: int
    claimed_at: float | None = None
    """When it was last handed towards the provider (an in-doubt lookup searches from here)."""
    origin_kind: FollowUpKind | None = None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A notification with its whole delivery story (a read model for people and tests)."""

    id: int
    channel: str
    recipient: str
    template: str
    contact_id: int | None
    ticket_id: int | None
    priority: int
    status: str
    attempts: int
    delivery: str | None
    provider_id: str | None
    origin_id: int | None
    origin_kind: FollowUpKind | None
    keypress: str | None
    merged_into: int | None
    sent_text: str | None
    last_error: str | None = None
    quarantined_at: float | None = None
    """When it was given up on after its last attempt (None: not quarantined)."""


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A notification as it stands after a delivery update."""

    id: int
    notification: Notification
    status: str
    delivery: str | None
    keypress: str | None
    origin_kind: FollowUpKind | None
    merged: bool
    """Other notifications were merged into this one."""


@dataclass(frozen=True, slots=True)
class GridUnit:
    """One unit of the grid."""

    code: str
    level: str
    name: str
    parent_code: str | None


@dataclass(frozen=True, slots=True)
class HouseholdRow:
    """One household as stored."""

    code: str
    neighbourhood_code: str
    address: str = ""


@dataclass(frozen=True, slots=True)
class ResidentRow:
    """One resident of a household as stored; `id` is None until it is."""

    household_code: str
    name: str
    phone: str | None = None
    lives_alone: bool = False
    five_guarantee: bool = False
    needs_care: bool = False
    consent: bool = False
    key_safe_code: str | None = None
    health_notes: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact as the grid import writes it; `id` is None until it is stored."""

    name: str
    role: Role
    phone: str
    unit_code: str | None = None
    household_code: str | None = None
    language: str = "zh-CN"
    available_from: str = "00:00"
    available_to: str = "24:00"
    id: int | None = None


GridRow = GridUnit | HouseholdRow | ResidentRow | ContactRow | DeviceRecord


@dataclass(frozen=True, slots=True)
class HouseholdInfo:
    """A household with its place in the grid, nearest unit first, and its first resident."""

    code: str
    address: str
    unit_chain: tuple[str, ...]
    unit_names: dict[str, str]
    unit_levels: dict[str, str]
    resident_name: str
    resident_phone: str | None = None
    consent: bool = False
    """The resident agreed that responders may be given the key-safe code and health notes."""
    key_safe_code: str | None = None
    health_notes: str | None = None

    def __repr__(self) -> str:
        """Never show the key-safe code or health notes."""
        return f"HouseholdInfo(code={self.code!r}, resident={self.resident_name!r})"

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


IndicationStatus = Literal["pending", "delivered", "superseded"]


@dataclass(frozen=True, slots=True)
class PendingIndication:
    """An indication waiting to be handed to its box's link."""

    id: int
    device_id: str
    indication: Indication
    attempts: int


@dataclass(frozen=True, slots=True)
class IndicationRetry:
    """A failed delivery attempt: when to try again, and why it failed."""

    id: int
    next_attempt_at: float
    error: str


@dataclass(frozen=True, slots=True)
class IndicationRecord:
    """An indication as stored, whatever its state."""

    id: int
    device_id: str
    indication: Indication
    created_at: float
    status: IndicationStatus
    attempts: int
