"""The storage ports, one per aggregate; SQLite implements them, PostgreSQL can later.

A write transaction (`Store.transaction()`) yields a `UnitOfWork` whose ports all write in
that one transaction: `uow.devices`, `uow.deadlines`, `uow.grid`, `uow.tickets`,
`uow.outbox`, `uow.indications`. Committed reads beside the writer go through the
`Store`'s read ports: `store.devices`, `store.deadlines`, `store.grid`, `store.tickets`,
`store.outbox`, `store.indications`.

Every implementation raises only gateway.errors.StoreError and its subclasses: driver
errors are translated at its boundary.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Literal, Protocol

from alerts import Notification
from firmware_protocol import Indication, Key
from gateway.domain.access import ApiToken, AuditEntry, SessionRecord, User
from gateway.domain.devices import (
    AlarmKind,
    DeviceRecord,
    DeviceSeen,
    DeviceStatus,
    EventRow,
    HealthAlarm,
    HealthKind,
    HistoryEntry,
    OfflineNotice,
    OfflineSpell,
    OperatorAlarm,
    Telemetry,
    Transition,
)
from gateway.domain.grid import (
    Contact,
    ContactRow,
    GridRow,
    GridUnit,
    HouseholdInfo,
    HouseholdRow,
    ResidentRow,
    Role,
)
from gateway.domain.installs import CheckReason, CheckState, CheckStep, InstallCheck
from gateway.domain.notify import FollowUpKind
from gateway.domain.tickets import Ticket, TicketEvent, TicketKind, TicketStatus
from gateway.domain.water import WaterWatch

# Records of the storage's own tables (deadlines, outbox, indications).


@dataclass(frozen=True, slots=True)
class Deadline:
    """A due time for something to be checked; (kind, subject) is unique."""

    kind: str
    subject: str
    due_at: float


@dataclass(frozen=True, slots=True)
class WatchedDevice:
    """A device silence supervision watches: it is online or not heard from yet."""

    device_id: str
    status: DeviceStatus
    heartbeat_interval_s: int
    created_at: float
    last_link: str | None = None
    """The link it was last heard on, as last written (None: never heard)."""


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


@dataclass(frozen=True, slots=True)
class Feedback:
    """One thumbs press."""

    household_code: str | None
    device_id: str
    at: float
    rating: str
    ticket_id: int | None


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
    next_attempt_at: float = 0.0
    """While pending: when it is (or was) due to be sent or looked up."""


@dataclass(frozen=True, slots=True)
class TicketMessage:
    """A notification about one ticket with its delivery story (the ticket's timeline)."""

    id: int
    created_at: float
    channel: str
    contact_id: int | None
    recipient: str
    template: str
    status: str
    delivery: str | None
    keypress: str | None
    sent_at: float | None
    origin_id: int | None
    origin_kind: FollowUpKind | None
    merged_into: int | None
    last_error: str | None
    quarantined_at: float | None


@dataclass(frozen=True, slots=True)
class TicketQuery:
    """Which tickets to list: every condition given must hold; newest first."""

    statuses: tuple[TicketStatus, ...] = ()
    """Only tickets in these statuses (all statuses if empty)."""
    village_codes: tuple[str, ...] = ()
    """Only tickets of these villages (any village if empty)."""
    household_code: str | None = None
    opened_since: float | None = None
    """Only tickets opened at or after this time, or still live (open, accepted, on site)."""
    limit: int | None = None


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
class SentNotification:
    """What a provider answered when it took a notification."""

    provider: str
    provider_id: str
    delivery: str
    text: str | None


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


@dataclass(frozen=True, slots=True)
class StoredKeyPress:
    """A key event stored for a device: its place in the device's order, and its times."""

    position: int
    """session << 32 | seq."""
    key: Key
    device_time: int
    """The frame's own timestamp (0: the box's clock was not set)."""
    received_at: float


# Write ports: each works inside the transaction that yielded it.


class DeviceWrites(Protocol):
    """Devices, their accepted uplinks, telemetry, status changes and downlink numbers."""

    async def add(self, device: DeviceRecord) -> None:
        """Register a device; RegistryError if the id exists."""
        ...

    async def insert_events(self, rows: Sequence[EventRow]) -> None:
        """Store accepted uplinks."""
        ...

    async def stored_seqs(self, device_id: str, seqs: Sequence[int]) -> set[int]:
        """Which of `seqs` are already stored for the device."""
        ...

    async def stored_macs(self, device_id: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """The 8-byte MAC of the frame stored at each of `seqs` (positions) that is stored."""
        ...

    async def key_events_after(
        self, device_id: str, position: int, limit: int
    ) -> list[StoredKeyPress]:
        """The device's stored key events after `position` in its order, the first `limit`.

        Position ascending; frames received before the device's last counter reset are not
        in its current order and are left out. Events written earlier in this transaction
        are included.
        """
        ...

    async def set_next_key(self, device_id: str, key: bytes, key_id: int) -> None:
        """Start (or restart) a key rotation to `key`, named `key_id` in frame headers."""
        ...

    async def promote_key(self, device_id: str, key_id: int) -> None:
        """The device used its next key: it becomes the key and the old one is forgotten."""
        ...

    async def reset_counters(self, device_id: str, at: float) -> None:
        """Forget the device's order (its newest position); its next frame sets it again."""
        ...

    async def set_pending_config(
        self, device_id: str, heartbeat_s: int | None, clock: bool
    ) -> None:
        """Record the CONFIG an operator asked for, to be sent after the device's frames."""
        ...

    async def config_done(self, device_id: str, *, heartbeat: bool, clock: bool) -> None:
        """Clear the pending interval (heartbeat) and/or clock: the box confirmed them."""
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

    async def get(self, device_id: str) -> DeviceRecord | None:
        """One device as of this transaction, or None."""
        ...

    async def set_household(self, device_id: str, household_code: str | None) -> None:
        """Attach the device to a household, or to none."""
        ...

    async def set_enabled(self, device_id: str, enabled: bool) -> None:
        """Enable the device, or retire it (its frames are refused; its history stays)."""
        ...

    async def add_history(self, entry: HistoryEntry) -> int:
        """Append one change to a device's registration; returns its id."""
        ...

    async def installed_unit(self, device_id: str) -> str | None:
        """The grid unit the device was last known to be in, from its history, or None.

        The newest history row naming a unit, or else the neighbourhood of the newest
        household it was attached to (that still exists).
        """
        ...

    async def last_heard(self, device_id: str) -> float | None:
        """When the device's newest frame was received (exact, from its events), or None."""
        ...

    async def raise_alarm(
        self, kind: AlarmKind, device_id: str | None, detail: str, at: float
    ) -> OperatorAlarm:
        """Open an alarm, or count a repeat on the open one of the same kind and device."""
        ...

    async def alarm_notified(self, alarm_id: int, at: float) -> None:
        """Note that people were sent a message about the alarm at `at`."""
        ...

    async def clear_alarm(self, alarm_id: int, at: float, by: str) -> OperatorAlarm | None:
        """Clear an open alarm; the alarm as cleared, or None if there is no open one."""
        ...

    async def offline_notice_sent(self, notice: OfflineNotice) -> None:
        """Remember that the device's people were told it is offline."""
        ...

    async def take_offline_notice(self, device_id: str) -> OfflineNotice | None:
        """The notice of the device's offline spell, removed; None if none was sent."""
        ...

    async def health_alarm(self, device_id: str, kind: HealthKind) -> HealthAlarm | None:
        """The device's open spell of the condition (not cleared), or None."""
        ...

    async def open_health_alarms(
        self, device_ids: Collection[str]
    ) -> dict[tuple[str, HealthKind], HealthAlarm]:
        """The open spells of these devices, by (device, condition), in one read."""
        ...

    async def save_health_alarm(self, alarm: HealthAlarm) -> HealthAlarm:
        """Insert a new spell (`id` None) or update one; the spell as stored, with its id."""
        ...


class DeadlineWrites(Protocol):
    """Due times, and the failures of their handlers."""

    async def set(self, rows: Sequence[Deadline]) -> None:
        """Create or move deadlines."""
        ...

    async def clear_kind(self, kind: str, limit: int) -> int:
        """Remove up to `limit` deadlines of `kind`; returns how many were removed."""
        ...

    async def clear(self, keys: Sequence[tuple[str, str]]) -> None:
        """Remove deadlines by (kind, subject)."""
        ...

    async def due(self, now: float, limit: int) -> list[Deadline]:
        """Deadlines due at or before `now`, earliest first."""
        ...

    async def record_failure(self, deadline: Deadline, reason: str, at: float) -> int:
        """Count one more failed attempt at the deadline; returns its attempts so far."""
        ...

    async def quarantine(self, deadline: Deadline) -> None:
        """Mark the deadline's failure final and remove the deadline."""
        ...


class GridWrites(Protocol):
    """Grid rows, and the households and contacts a ticket needs, as of the transaction."""

    async def insert(self, rows: Sequence[GridRow]) -> None:
        """Insert new grid rows, in order (a parent before what refers to it).

        ConflictError if one conflicts with a stored row.
        """
        ...

    async def update(self, rows: Sequence[GridRow]) -> None:
        """Set what an import may change of stored rows, found by code or id.

        A unit's name; a household's neighbourhood and address; a resident's fields (not its
        household or name); a contact's name, language and hours. StoreError for a device.
        """
        ...

    async def household_info(self, household_code: str) -> HouseholdInfo | None:
        """The household, its grid units up to the county, and its first resident."""
        ...

    async def unit_contacts(self, unit_chain: Sequence[str], role: Role) -> list[Contact]:
        """Contacts with `role` at the nearest unit of the chain that has any."""
        ...

    async def unit_contacts_by_role(
        self, unit_chain: Sequence[str], roles: Collection[Role]
    ) -> dict[Role, list[Contact]]:
        """For each of `roles` (every one a key), `unit_contacts` of it, in one read."""
        ...

    async def household_contacts(self, household_code: str) -> list[Contact]:
        """The contacts who belong to the household (its family), by id."""
        ...

    async def contacts_by_id(self, ids: Sequence[int]) -> list[Contact]:
        """The contacts with these ids."""
        ...

    async def set_bad_number(self, contact_id: int) -> None:
        """Flag a contact's number for an administrator."""
        ...

    async def lives_alone(self, household_code: str) -> bool:
        """Whether a resident of the household is flagged as living alone."""
        ...


class TicketWrites(Protocol):
    """Tickets with their rules and cursor, their audit trail, and residents' ratings."""

    async def set_work_group_cursor(self, event_id: int) -> None:
        """The work groups' poster has handled every audit row up to `event_id`."""
        ...

    async def live(self, household_code: str) -> Ticket | None:
        """The household's newest open, accepted or on-site ticket."""
        ...

    async def live_of_kind(self, household_code: str, kind: TicketKind) -> Ticket | None:
        """The household's open, accepted or on-site ticket of `kind` (`live`: a call)."""
        ...

    async def latest_unrated(self, household_code: str) -> Ticket | None:
        """The household's most recently resolved ticket that has not been rated."""
        ...

    async def get(self, ticket_id: int) -> Ticket | None:
        """One ticket; as of this transaction (no one else changes it)."""
        ...

    async def insert(self, ticket: Ticket) -> int:
        """Open a ticket (its id is ignored), rules and cursor included; returns its id."""
        ...

    async def save(self, ticket: Ticket, was: TicketStatus) -> bool:
        """Store the ticket's new state; False if its stored status is no longer `was`."""
        ...

    async def add_events(self, rows: Sequence[TicketEvent]) -> None:
        """Append audit rows."""
        ...

    async def add_feedback(self, feedback: Feedback) -> None:
        """Record a thumbs press."""
        ...


class OutboxWrites(Protocol):
    """The durable outbox: notifications from written to delivered, failed or merged."""

    async def enqueue(self, notifications: Sequence[Notification], at: float) -> None:
        """Write notifications into the outbox."""
        ...

    async def enqueue_follow_up(
        self, origin_id: int, kind: FollowUpKind, notification: Notification, due_at: float
    ) -> bool:
        """Write the one fallback or retry of a notification; False if it exists already."""
        ...

    async def due(
        self,
        now: float,
        limit: int,
        in_doubt: bool,
        skip_recipients: Sequence[str] = (),
        urgent: bool | None = None,
    ) -> list[OutboxRow]:
        """Pending notifications due at `now` (in doubt or not), urgent first, oldest first.

        Those to `skip_recipients` (numbers with a send in flight) are left out; `urgent`
        True keeps only urgent ones (priority URGENT and above), False only the others.
        """
        ...

    async def merged_members(self, leader_ids: Sequence[int]) -> dict[int, list[Notification]]:
        """The notifications merged into each leader, oldest first."""
        ...

    async def recent_sends(self, recipient: str, channel: str, since: float) -> list[float]:
        """When messages to `recipient` on `channel` were handed over since `since`."""
        ...

    async def recent_texts(
        self, recipient: str, channel: str, since: float
    ) -> list[tuple[float, str]]:
        """(when, text) of messages to `recipient` on `channel` handed over since `since`."""
        ...

    async def notified_contacts(self, ticket_id: int) -> list[int]:
        """Every contact that has been sent something about the ticket."""
        ...

    async def mark_sending(self, ids: Sequence[int], at: float) -> None:
        """Claim notifications for sending: one more attempt each."""
        ...

    async def defer(self, ids: Sequence[int], until: float) -> None:
        """Hold pending notifications back until `until` (throttling); no attempt is used."""
        ...

    async def merge(self, leader_id: int, ids: Sequence[int], at: float) -> None:
        """Fold pending notifications into `leader_id`, which is sent for all of them."""
        ...

    async def sent(self, notification_id: int, sent: SentNotification, at: float) -> None:
        """The provider took it (or, for delivery "delivered", it has arrived)."""
        ...

    async def retry(
        self, notification_id: int, next_attempt_at: float, error: str, at: float, in_doubt: bool
    ) -> None:
        """Sending failed for now; try again at `next_attempt_at` (after a lookup, if in doubt)."""
        ...

    async def lookup_failed(
        self, notification_id: int, next_attempt_at: float, error: str, at: float
    ) -> None:
        """An in-doubt lookup failed: one more attempt used; look again at `next_attempt_at`."""
        ...

    async def quarantine(self, notification_id: int, error: str, at: float, attempts: int) -> None:
        """Give up on a notification after `attempts`: failed, with its reason and time."""
        ...

    async def resolved_doubt(self, notification_id: int, next_attempt_at: float) -> None:
        """An in-doubt notification was not taken by the provider: send it normally when due."""
        ...

    async def voice_twin_exists(self, notification_id: int) -> bool:
        """Whether the same message went to the same person by voice already (no fallback)."""
        ...

    async def known_provider_ids(self, provider_ids: Sequence[str]) -> set[str]:
        """Which of these provider ids belong to notifications already."""
        ...

    async def keypress(self, notification_id: int, digit: str, at: float) -> bool:
        """Record the first key pressed on a call; False if there is no such notification."""
        ...

    async def failed(self, notification_id: int, error: str, at: float, bad_number: bool) -> None:
        """Sending failed for good; a bad number flags the contact for an administrator."""
        ...

    async def withdraw(self, notification_ids: Sequence[int], reason: str, at: float) -> None:
        """Messages due but no longer needed (a call again for a ticket someone took).

        Never sent: failed, with delivery "canceled" and the reason.
        """
        ...

    async def delivery(
        self, notification_id: int, provider_id: str, delivery: str, at: float
    ) -> OutboxRecord | None:
        """Apply a provider status callback; never moves backwards; None if it changed nothing."""
        ...

    async def release_in_doubt(self, at: float) -> int:
        """Rows left "sending" by a crash become pending and in doubt, due at `at`."""
        ...


class IndicationWrites(Protocol):
    """Durable box indications: written with their cause, delivered after the commit."""

    async def add(self, rows: Sequence[tuple[str, Indication]], at: float) -> None:
        """Queue (device_id, indication) pairs; each supersedes its ticket's pending one."""
        ...

    async def due(self, now: float, limit: int, heard: Sequence[str]) -> list[PendingIndication]:
        """Pending indications due by `now`, or of a device in `heard`, oldest first."""
        ...

    async def delivered(self, ids: Sequence[int], at: float) -> None:
        """Mark indications as handed to the box's link (also one superseded meanwhile)."""
        ...

    async def retry(self, retries: Sequence[IndicationRetry], at: float) -> None:
        """Count a failed attempt on each and set when it is tried again."""
        ...

    async def resend(self, ids: Sequence[int], at: float) -> int:
        """Delivered indications the box refused (stale) become pending again, due at `at`.

        One that a later indication for the same box and ticket replaced stays as it is;
        returns how many were queued again.
        """
        ...


@dataclass(frozen=True, slots=True)
class WaterLogLine:
    """One line of a household's water-watch record (gateway.domain.water.Log)."""

    household_code: str
    at: float
    kind: str
    detail: str = ""


WaterRequestAction = Literal["away", "clear", "recheck"]


@dataclass(frozen=True, slots=True)
class WaterRequest:
    """A change to the water watch asked for outside the running gateway, applied by it.

    `away` until `until`, `clear` (end away mode), or `recheck` (look again whether the
    household is watched: its meter or its residents changed; household None: every one).
    """

    household_code: str | None
    action: WaterRequestAction
    requested_at: float
    until: float | None = None
    by_contact: int | None = None
    channel: str = "cli"
    id: int | None = None
    done_at: float | None = None
    outcome: str | None = None


class WaterWrites(Protocol):
    """The water watch's state per household and its record."""

    async def watch(self, household_code: str) -> WaterWatch | None:
        """The household's stored watch, or None (never watched)."""
        ...

    async def watches(self, household_codes: Collection[str]) -> dict[str, WaterWatch]:
        """The stored watches of these households (left out: never watched), in one read."""
        ...

    async def save(self, watch: WaterWatch, at: float) -> None:
        """Store the household's watch (insert or replace)."""
        ...

    async def save_many(self, watches: Sequence[WaterWatch], at: float) -> None:
        """Store these households' watches (insert or replace), in one statement."""
        ...

    async def add_log(self, lines: Sequence[WaterLogLine]) -> None:
        """Append lines to the households' records."""
        ...

    async def add_request(self, request: WaterRequest) -> int:
        """Queue a request for the running gateway; returns its id."""
        ...

    async def pending_requests(self, limit: int) -> list[WaterRequest]:
        """Requests not yet applied, oldest first."""
        ...

    async def request_done(self, request_id: int, at: float, outcome: str) -> None:
        """Record that a request was applied (or refused: `outcome` says which)."""
        ...


# People who sign in, their sessions and tokens, and the audit log.


class AccessWrites(Protocol):
    """Users, sessions, API tokens and the audit log inside one transaction."""

    async def add_user(self, user: User, password_hash: str | None) -> int:
        """Store a new user (its id is ignored) with its units; returns its id.

        ConflictError if the login is taken, or a unit or contact does not exist.
        """
        ...

    async def set_password(self, user_id: int, password_hash: str, at: float) -> None:
        """Replace the user's password digest."""
        ...

    async def set_disabled(self, user_id: int, at: float | None) -> None:
        """Disable the user at `at` (None: enable again)."""
        ...

    async def add_session(self, token_sha256: str, session: SessionRecord) -> None:
        """Store a new session under the digest of its secret."""
        ...

    async def end_session(self, token_sha256: str, at: float) -> None:
        """End one session (sign-out)."""
        ...

    async def end_sessions_of(self, user_id: int, at: float) -> int:
        """End every live session of the user; returns how many."""
        ...

    async def add_token(
        self, user_id: int, name: str, token_sha256: str, at: float, expires_at: float | None
    ) -> int:
        """Store a new API token under the digest of its secret; returns its id."""
        ...

    async def revoke_tokens_of(self, user_id: int, at: float) -> int:
        """Revoke every token of the user; returns how many."""
        ...

    async def audit(self, entry: AuditEntry) -> int:
        """Append one line to the audit log; returns its id."""
        ...


class InstallWrites(Protocol):
    """Install checks inside one transaction."""

    async def start(self, check: InstallCheck) -> int:
        """Store a new running check (its id is ignored); returns its id.

        ConflictError if the device has a running check already.
        """
        ...

    async def get(self, check_id: int) -> InstallCheck | None:
        """One check with its steps, or None."""
        ...

    async def running(self, device_id: str) -> InstallCheck | None:
        """The device's running check, or None."""
        ...

    async def all_running(self) -> list[InstallCheck]:
        """Every running check, with its steps."""
        ...

    async def add_steps(self, check_id: int, steps: Sequence[CheckStep]) -> None:
        """Record keys or readings that arrived for a check."""
        ...

    async def finish(
        self, check_id: int, state: CheckState, at: float, reason: CheckReason | None
    ) -> None:
        """End a running check as passed, failed or cancelled."""
        ...


class UnitOfWork(Protocol):
    """The write ports of one transaction; all their writes commit together or none does."""

    @property
    def devices(self) -> DeviceWrites:
        """Devices and their events."""
        ...

    @property
    def deadlines(self) -> DeadlineWrites:
        """Deadlines and their failures."""
        ...

    @property
    def grid(self) -> GridWrites:
        """Grid rows and contacts."""
        ...

    @property
    def tickets(self) -> TicketWrites:
        """Tickets, their audit trail and feedback."""
        ...

    @property
    def outbox(self) -> OutboxWrites:
        """Notifications."""
        ...

    @property
    def indications(self) -> IndicationWrites:
        """Box indications."""
        ...

    @property
    def water(self) -> WaterWrites:
        """The water watch."""
        ...

    @property
    def access(self) -> AccessWrites:
        """Users, sessions, tokens and the audit log."""
        ...

    @property
    def installs(self) -> InstallWrites:
        """Install checks."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """A nested scope: if its body raises, only its writes are undone, then it re-raises.

        A driver error inside it leaves it as a StoreError (ConflictError for a constraint).
        """
        ...


# Read ports: committed rows, read beside the writer.


class DeviceReads(Protocol):
    """Committed devices, events and status changes."""

    async def all(self) -> list[DeviceRecord]:
        """Every registered device."""
        ...

    async def get(self, device_id: str) -> DeviceRecord | None:
        """One device, or None."""
        ...

    async def count_events(self, device_id: str | None = None) -> int:
        """Stored events, for one device or all."""
        ...

    async def event_seqs(self) -> list[tuple[str, int]]:
        """(device_id, seq) of every stored event, in storage order."""
        ...

    async def transitions(self, device_id: str | None = None) -> list[Transition]:
        """Recorded status changes, oldest first."""
        ...

    async def silent_boxes(self, since: float) -> list[str]:
        """Call boxes registered before `since` with no key press since then."""
        ...

    async def current(self, device_id: str) -> DeviceRecord | None:
        """One device, its newest seq, link and contact taken from its newest event, or None."""
        ...

    async def current_many(self, device_ids: Sequence[str]) -> list[DeviceRecord]:
        """`current` for several devices in one read; unknown ids are left out."""
        ...

    async def count(self) -> int:
        """How many devices are registered."""
        ...

    async def status_counts(self) -> dict[DeviceStatus, int]:
        """How many devices are in each status (statuses with none are left out)."""
        ...

    async def watched(self, after: str = "", limit: int = -1) -> list[WatchedDevice]:
        """Devices not offline with an id above `after`, up to `limit` (-1: all), by id.

        What silence supervision needs of them, read in pages at start.
        """
        ...

    async def history(self, device_id: str) -> list[HistoryEntry]:
        """The changes to one device's registration, oldest first."""
        ...

    async def history_after(self, after_id: int, limit: int) -> list[HistoryEntry]:
        """Up to `limit` changes to any device with an id above `after_id`, oldest first."""
        ...

    async def history_head(self) -> int:
        """The id of the newest change to any device (0 if none)."""
        ...

    async def alarms(self, *, cleared: bool = False) -> list[OperatorAlarm]:
        """Open alarms (with `cleared`, every alarm), oldest first."""
        ...

    async def offline_notices(self) -> list[OfflineNotice]:
        """Offline spells whose notice was sent, by device."""
        ...

    async def health_alarms(self, *, cleared: bool = False) -> list[HealthAlarm]:
        """Open health spells (with `cleared`, every spell), oldest first."""
        ...

    async def offline_spells(self, start: float, end: float) -> list[OfflineSpell]:
        """Offline spells of call boxes that overlap [start, end), by device and start.

        Each runs from an offline transition to the next online one (None: still offline);
        the household is the box's current one.
        """
        ...


class DeadlineReads(Protocol):
    """Committed deadlines and their failures."""

    async def next_at(self) -> float | None:
        """The earliest due time, or None if nothing is pending."""
        ...

    async def quarantined_count(self) -> int:
        """How many deadlines were quarantined after their handler kept failing."""
        ...

    async def failures(self) -> list[DeadlineFailure]:
        """Every deadline failure being retried or quarantined, oldest first."""
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


class GridReads(GridReader, Protocol):
    """Committed grid: rows by natural key, every unit, every contact."""

    async def units(self) -> dict[str, GridUnit]:
        """Every grid unit by code."""
        ...

    async def contacts(self) -> list[Contact]:
        """Every contact."""
        ...

    async def contacts_by_id(self, ids: Sequence[int]) -> list[Contact]:
        """The contacts with these ids, by id; unknown ids are left out."""
        ...


class TicketReads(Protocol):
    """Committed tickets, their audit trails and feedback."""

    async def get(self, ticket_id: int) -> Ticket | None:
        """One ticket, as committed."""
        ...

    async def all(self) -> list[Ticket]:
        """Every ticket, oldest first."""
        ...

    async def live(self) -> list[Ticket]:
        """Every open, accepted or on-site ticket."""
        ...

    async def opened(self, start: float, end: float) -> list[Ticket]:
        """Tickets opened in [start, end), oldest first."""
        ...

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        """A ticket's audit trail, oldest first."""
        ...

    async def feedback(self) -> list[Feedback]:
        """Every thumbs press, oldest first."""
        ...

    async def find(self, query: TicketQuery) -> list[Ticket]:
        """The tickets that match `query`, newest first."""
        ...

    async def change_mark(self) -> tuple[int, int]:
        """The newest ticket event's id and the newest operator alarm's (id, count) sum.

        Any ticket opened or changed, or any alarm raised or repeated, moves it: a cheap
        marker a live page compares instead of reading the tickets themselves.
        """
        ...

    async def feedback_of(self, ticket_id: int) -> list[Feedback]:
        """The thumbs presses that rated this ticket, oldest first."""
        ...

    async def events_after(self, after_id: int, limit: int) -> list[tuple[int, TicketEvent]]:
        """Up to `limit` audit rows of any ticket with an id above `after_id`, with their ids."""
        ...

    async def work_group_cursor(self) -> int | None:
        """The last audit row the work groups' poster has handled; None before its first run."""
        ...


class OutboxReads(Protocol):
    """Committed notifications and their delivery stories."""

    async def notifications(self) -> list[Notification]:
        """Every notification written, oldest first."""
        ...

    async def get(self, notification_id: int) -> Notification | None:
        """One notification as written."""
        ...

    async def with_members(
        self, notification_id: int
    ) -> tuple[Notification, list[Notification]] | None:
        """A notification as written, and those merged into it (oldest first)."""
        ...

    async def entries(self) -> list[OutboxEntry]:
        """Every notification with its delivery story, oldest first."""
        ...

    async def of_ticket(self, ticket_id: int) -> list[TicketMessage]:
        """Every notification about one ticket with its delivery story, oldest first."""
        ...

    async def quarantined(self, since: float = 0.0) -> list[OutboxEntry]:
        """Notifications given up on since `since` after their last attempt, newest first."""
        ...

    async def next_at(
        self, skip_recipients: Sequence[str] = (), urgent: bool | None = None
    ) -> float | None:
        """When the next pending notification (not to `skip_recipients`) is due, or None.

        `urgent` True looks at urgent ones only, False at the others, None at all.
        """
        ...


class IndicationReads(Protocol):
    """Committed box indications."""

    async def next_at(self) -> float | None:
        """When the next pending indication is due, or None."""
        ...

    async def all(self, device_id: str | None = None) -> list[IndicationRecord]:
        """Every indication (of one device), oldest first."""
        ...


class WaterReads(Protocol):
    """Committed water watches and their records."""

    async def watch(self, household_code: str) -> WaterWatch | None:
        """The household's stored watch, or None."""
        ...

    async def log(self, household_code: str, limit: int = 200) -> list[WaterLogLine]:
        """The household's newest record lines, oldest first."""
        ...

    async def households(self, after: str, limit: int) -> list[str]:
        """Codes of watched households after `after`, in code order (for work in chunks)."""
        ...

    async def requests(self, household_code: str, limit: int = 20) -> list[WaterRequest]:
        """The household's newest requests, oldest first (pending ones included)."""
        ...


class AccessReads(Protocol):
    """Committed users, sessions, tokens and audit lines."""

    async def user_by_login(self, login: str) -> tuple[User, str | None] | None:
        """The user with this login (any case) and their password digest, or None."""
        ...

    async def user(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        ...

    async def users(self) -> list[User]:
        """Every user, by id."""
        ...

    async def session(self, token_sha256: str) -> SessionRecord | None:
        """The session stored under this digest, or None."""
        ...

    async def token(self, token_sha256: str) -> ApiToken | None:
        """The API token stored under this digest, or None."""
        ...

    async def tokens_of(self, user_id: int) -> list[ApiToken]:
        """The user's tokens, by id."""
        ...

    async def audit_log(self, limit: int, user_id: int | None = None) -> list[AuditEntry]:
        """The newest audit lines (of one user if given), newest first."""
        ...

    async def family_households(self, contact_id: int) -> list[str]:
        """Households whose family contacts share this contact's phone number, by code."""
        ...


@dataclass(frozen=True, slots=True)
class HouseholdQuery:
    """Which households to page through; every condition given must hold; by code."""

    roots: tuple[str, ...] | None = None
    """Only households under these units (None: any)."""
    households: tuple[str, ...] | None = None
    """Only these households (None: any)."""
    unit: str | None = None
    """Only households under this unit."""
    text: str | None = None
    """Only households whose code, address or a resident's name contains this."""
    lives_alone: bool | None = None
    after: str | None = None
    """Only households whose code sorts after this (the previous page's last)."""
    limit: int = 50


@dataclass(frozen=True, slots=True)
class HouseholdEntry:
    """A household with its residents."""

    household: HouseholdRow
    residents: tuple[ResidentRow, ...]


class DirectoryReads(Protocol):
    """Pages of the grid for people who look through it (the API)."""

    async def households(self, query: HouseholdQuery) -> list[HouseholdEntry]:
        """One page of households with their residents, by code."""
        ...

    async def count_households(self, query: HouseholdQuery) -> int:
        """How many households match, ignoring `after` and `limit`."""
        ...


class InstallReads(Protocol):
    """Committed install checks."""

    async def get(self, check_id: int) -> InstallCheck | None:
        """One check with its steps, or None."""
        ...

    async def running(self) -> list[InstallCheck]:
        """Every running check, newest first."""
        ...

    async def of_device(self, device_id: str, limit: int = 20) -> list[InstallCheck]:
        """The device's newest checks, newest first."""
        ...

    async def latest(self, device_ids: Sequence[str]) -> dict[str, InstallCheck]:
        """The latest check of each device that had one."""
        ...


class Store(Protocol):
    """Opening, one write transaction at a time, and the read ports."""

    async def open(self) -> None:
        """Connect and migrate; StoreError naming the file if it cannot be used."""
        ...

    async def close(self) -> None:
        """Close; safe to call twice."""
        ...

    def transaction(self, *, urgent: bool = False) -> AbstractAsyncContextManager[UnitOfWork]:
        """One serialised write transaction; an `urgent` one is next in line."""
        ...

    @property
    def devices(self) -> DeviceReads:
        """Devices and their events."""
        ...

    @property
    def deadlines(self) -> DeadlineReads:
        """Deadlines and their failures."""
        ...

    @property
    def grid(self) -> GridReads:
        """The grid and its contacts."""
        ...

    @property
    def tickets(self) -> TicketReads:
        """Tickets, their audit trails and feedback."""
        ...

    @property
    def outbox(self) -> OutboxReads:
        """Notifications."""
        ...

    @property
    def indications(self) -> IndicationReads:
        """Box indications."""
        ...

    @property
    def water(self) -> WaterReads:
        """The water watch."""
        ...

    @property
    def access(self) -> AccessReads:
        """Users, sessions, tokens and the audit log."""
        ...

    @property
    def directory(self) -> DirectoryReads:
        """Pages of the grid."""
        ...

    @property
    def installs(self) -> InstallReads:
        """Install checks."""
        ...
