"""The application facade: the commands and queries that api/ and the command line call.

Two composition roots build it:

- `offline(settings)` opens the SQLite store and nothing else (no broker, no links, no HTTP
  server), for the commands a person runs beside or without a gateway: import, device add
  and list, report. The store is opened on first use, so `metrics` opens nothing.
- `for_service(service)` wraps a running gateway: the same queries, plus the live parts
  (ticket actions, provider callbacks, health, the metrics registry, the scheduler that
  must hear of new deadlines).

api/ and the command line import the gateway through this module (and gateway.config,
gateway.errors, gateway.logs) only; the names they need from inside are re-exported here.

ApplicationError (a GatewayError)
 ├── NotRunningError   the request needs the running gateway (ticket actions)
 └── NoMetricsError    no metrics snapshot has been written yet
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from alerts import Notification
from gateway.clock import Clock, SystemClock
from gateway.config import (
    CardThresholds,
    DeviceKind,
    Settings,
    TicketPolicy,
    WarningThresholds,
)
from gateway.domain.access import USER_ROLES as USER_ROLES  # noqa: PLC0414 - re-exported
from gateway.domain.access import ApiToken as ApiToken  # noqa: PLC0414 - re-exported
from gateway.domain.access import AuditEntry as AuditEntry  # noqa: PLC0414 - re-exported
from gateway.domain.access import Principal as Principal  # noqa: PLC0414 - re-exported
from gateway.domain.access import User as User  # noqa: PLC0414 - re-exported
from gateway.domain.access import UserRole as UserRole  # noqa: PLC0414 - re-exported
from gateway.domain.devices import DeviceRecord as DeviceRecord  # noqa: PLC0414 - re-exported
from gateway.domain.devices import HistoryEntry
from gateway.domain.devices import OperatorAlarm as OperatorAlarm  # noqa: PLC0414 - re-exported
from gateway.domain.grid import Contact as Contact  # noqa: PLC0414 - re-exported
from gateway.domain.grid import GridUnit as GridUnit  # noqa: PLC0414 - re-exported
from gateway.domain.installs import CHECK_KEYS as CHECK_KEYS  # noqa: PLC0414 - re-exported
from gateway.domain.installs import CheckStep as CheckStep  # noqa: PLC0414 - re-exported
from gateway.domain.installs import InstallCheck as InstallCheck  # noqa: PLC0414 - re-exported
from gateway.domain.installs import InstallState as InstallState  # noqa: PLC0414 - re-exported
from gateway.domain.installs import install_state
from gateway.domain.tickets import (
    ALARM_KINDS as ALARM_KINDS,  # noqa: PLC0414 - re-exported
)
from gateway.domain.tickets import NOTE_MAX_CHARS as NOTE_MAX_CHARS  # noqa: PLC0414 - re-exported
from gateway.domain.tickets import (
    OUTCOMES as OUTCOMES,  # noqa: PLC0414 - re-exported
)
from gateway.domain.tickets import (
    OUTCOMES_OF as OUTCOMES_OF,  # noqa: PLC0414 - re-exported
)
from gateway.domain.tickets import (
    TICKET_KINDS as TICKET_KINDS,  # noqa: PLC0414 - re-exported
)
from gateway.domain.tickets import ActionChannel as ActionChannel  # noqa: PLC0414 - re-exported
from gateway.domain.tickets import Category as Category  # noqa: PLC0414 - re-exported
from gateway.domain.tickets import (
    NotAnAlarmError as NotAnAlarmError,  # noqa: PLC0414 - re-exported
)
from gateway.domain.tickets import Outcome as Outcome  # noqa: PLC0414 - re-exported
from gateway.domain.tickets import (
    OutcomeError as OutcomeError,  # noqa: PLC0414 - re-exported
)
from gateway.domain.tickets import Ticket
from gateway.domain.tickets import TicketError as TicketError  # noqa: PLC0414 - re-exported
from gateway.domain.tickets import TicketKind as TicketKind  # noqa: PLC0414 - re-exported
from gateway.domain.tickets import TicketStatus as TicketStatus  # noqa: PLC0414 - re-exported
from gateway.errors import GatewayError
from gateway.ingest.registry import DeviceRegistry
from gateway.metrics import GatewayMetrics
from gateway.runtime.broker_auth import (
    BrokerCredentialWriter as BrokerCredentialWriter,  # noqa: PLC0414 - re-exported
)
from gateway.runtime.broker_auth import BrokerSync as BrokerSync  # noqa: PLC0414 - re-exported
from gateway.scheduler import DeadlineScheduler
from gateway.services.access import AccessError as AccessError  # noqa: PLC0414 - re-exported
from gateway.services.access import AccessService
from gateway.services.access import SignedIn as SignedIn  # noqa: PLC0414 - re-exported
from gateway.services.devices import Added, DeviceAdmin, canonical_id
from gateway.services.devices import (
    DeviceAdminError as DeviceAdminError,  # noqa: PLC0414 - re-exported
)
from gateway.services.directory import Directory, not_found, require
from gateway.services.directory import HouseholdPage as HouseholdPage  # noqa: PLC0414 - re-exported
from gateway.services.directory import ScopedDevice as ScopedDevice  # noqa: PLC0414 - re-exported
from gateway.services.grid_import import GridImporter, ImportResult
from gateway.services.grid_import import ImportKind as ImportKind  # noqa: PLC0414 - re-exported
from gateway.services.grid_import import (
    ImportRejectedError as ImportRejectedError,  # noqa: PLC0414 - re-exported
)
from gateway.services.installs import (
    BatchRefusedError as BatchRefusedError,  # noqa: PLC0414 - re-exported
)
from gateway.services.installs import CheckEvent as CheckEvent  # noqa: PLC0414 - re-exported
from gateway.services.installs import CheckListener, InstallChecks, Provisioning, parse_batch
from gateway.services.installs import RowProblem as RowProblem  # noqa: PLC0414 - re-exported
from gateway.services.links import LINK_PATH as LINK_PATH  # noqa: PLC0414 - re-exported
from gateway.services.links import LinkError as LinkError  # noqa: PLC0414 - re-exported
from gateway.services.links import LinkGrant as LinkGrant  # noqa: PLC0414 - re-exported
from gateway.services.links import ResponderLinks, responder_links
from gateway.services.reports import UNPLACED as UNPLACED  # noqa: PLC0414 - re-exported
from gateway.services.reports import AlarmStats as AlarmStats  # noqa: PLC0414 - re-exported
from gateway.services.reports import BrokenPromise as BrokenPromise  # noqa: PLC0414 - re-exported
from gateway.services.reports import Card, Reports, UnitWarning
from gateway.services.reports import TicketStats as TicketStats  # noqa: PLC0414 - re-exported
from gateway.services.reports import by_level as by_level  # noqa: PLC0414 - re-exported
from gateway.services.ticket_views import (
    CLOSED_STATUSES as CLOSED_STATUSES,  # noqa: PLC0414 - re-exported
)
from gateway.services.ticket_views import (
    NoSuchContactError as NoSuchContactError,  # noqa: PLC0414 - re-exported
)
from gateway.services.ticket_views import (
    NoSuchTicketError as NoSuchTicketError,  # noqa: PLC0414 - re-exported
)
from gateway.services.ticket_views import (
    NoSuchVillageError as NoSuchVillageError,  # noqa: PLC0414 - re-exported
)
from gateway.services.ticket_views import (
    PersonRef as PersonRef,  # noqa: PLC0414 - re-exported
)
from gateway.services.ticket_views import (
    TicketView as TicketView,  # noqa: PLC0414 - re-exported
)
from gateway.services.ticket_views import (
    TicketViews,
)
from gateway.services.ticket_views import (
    Timeline as Timeline,  # noqa: PLC0414 - re-exported
)
from gateway.services.ticket_views import (
    TimelineItem as TimelineItem,  # noqa: PLC0414 - re-exported
)
from gateway.services.tickets import TicketService
from gateway.services.water import WaterService
from gateway.services.water_views import WatchView as WatchView  # noqa: PLC0414 - re-exported
from gateway.services.water_views import (
    WaterRequestError as WaterRequestError,  # noqa: PLC0414 - re-exported
)
from gateway.services.water_views import WaterViews
from gateway.store.ports import HouseholdEntry as HouseholdEntry  # noqa: PLC0414 - re-exported
from gateway.store.ports import Store
from gateway.store.ports import TicketMessage as TicketMessage  # noqa: PLC0414 - re-exported
from gateway.store.ports import WaterRequest as WaterRequest  # noqa: PLC0414 - re-exported
from gateway.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from gateway.runtime.health import Health
    from gateway.runtime.service import GatewayService
    from gateway.services.outbox import OutboxSender
    from gateway.services.tickets import AcceptResult

T = TypeVar("T")
DAY_S = 86_400.0
_OWNER_ACTIONS = ("arrive", "resolve", "reassign", "label")
"""Ticket actions only the ticket's owner may take through the API (as on the page)."""
UNUSED_BOX_DAYS = 90.0
_UNIT_DEPTH = 12  # more grid levels than any chain has; a loop in parent codes stops here


class ApplicationError(GatewayError):
    """A request the application cannot carry out as asked."""


class NotRunningError(ApplicationError):
    """The request needs the running gateway, and this facade only has the store."""


class NoMetricsError(ApplicationError):
    """No metrics snapshot exists yet: the gateway has not run with this data folder."""


@dataclass(frozen=True, slots=True)
class LiveParts:
    """The parts only a running gateway has."""

    tickets: TicketService
    outbox: OutboxSender
    metrics: GatewayMetrics
    health: Callable[[], Awaitable[Health]]
    links: ResponderLinks | None = None
    water: WaterService | None = None
    installs: InstallChecks | None = None


@dataclass(frozen=True, slots=True)
class Responder:
    """A person a ticket can be handed over to."""

    contact_id: int
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class ResponderView:
    """One ticket as the responder's page shows it to one person; times in local time."""

    ticket_id: int
    viewer_id: int
    viewer_name: str | None
    status: TicketStatus
    owner_id: int | None
    owner_name: str | None
    resident_name: str | None
    address: str | None
    resident_phone: str | None
    has_box: bool
    category: Category | None
    day_clock_s: dict[Category, float]
    opened_at: datetime
    accepted_at: datetime | None
    on_site_at: datetime | None
    resolved_at: datetime | None
    rated_at: datetime | None
    cancelled_at: datetime | None
    day_due_at: datetime | None
    had_it: bool
    """The viewer accepted the ticket or was given it at some time."""
    handover: tuple[Responder, ...]
    """Other reachable responders of the ticket's village and the units below it on the way
    to the household, nearest unit first."""
    kind: TicketKind = "call"
    """A call, or an alarm of the water watch (whose resolve form asks what it was)."""
    outcome: Outcome | None = None
    """What an alarm turned out to be, once labelled."""

    @property
    def is_alarm(self) -> bool:
        """Whether the ticket is an alarm of the water watch rather than a call."""
        return self.kind != "call"

    @property
    def can_label(self) -> bool:
        """Whether the viewer may say what a closed alarm was (one the all-clear resolved)."""
        return (
            self.is_alarm
            and self.is_owner
            and self.status in (TicketStatus.RESOLVED, TicketStatus.RATED)
        )

    @property
    def is_owner(self) -> bool:
        """Whether the viewer is the one who has the ticket now."""
        return self.owner_id == self.viewer_id

    @property
    def can_act(self) -> bool:
        """Whether the viewer may report arrival or resolution, or hand the ticket over."""
        return self.is_owner and self.status in (TicketStatus.ACCEPTED, TicketStatus.ON_SITE)


@dataclass(frozen=True, slots=True)
class Report:
    """What administrators read for one period: colours, statistics, cards, unused boxes."""

    start: float
    end: float
    days: float
    colours: dict[str, UnitWarning]
    statistics: dict[str, TicketStats]
    cards: list[Card]
    unused_boxes: list[str]
    unused_days: float
    units: dict[str, GridUnit]
    """Every grid unit by code, county to neighbourhood, to name the figures' places."""
    contacts: dict[int, Contact]
    """Every contact by id, to name the figures' people."""
    warnings: WarningThresholds
    card_thresholds: CardThresholds
    policy: TicketPolicy
    """The clocks new tickets open under (each ticket is counted under its own)."""
    timezone: str
    """The villages' IANA time zone, for the times the report shows."""
    broken_promises: dict[str, BrokenPromise]
    """Per village code (UNPLACED: boxes outside the grid), the call boxes offline for more
    than a day in the period, and the hours they could not call for help."""
    alarms: dict[str, dict[TicketKind, AlarmStats]] = field(default_factory=dict)
    """Per unit code and alarm kind (no_water, leak), the water watch's alarms raised in the
    period: labelled real, labelled false (and why), unlabelled. Alarms are not calls: they
    are not in `statistics`."""


class Application:
    """Commands and queries over one store; ticket actions only with the live parts."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        store: Store,
        registry: DeviceRegistry,
        importer: GridImporter,
        reports: Reports,
        *,
        live: LiveParts | None = None,
        opened: bool = True,
        after_import: Callable[[], None] | None = None,
        tickets: TicketService | None = None,
        devices: DeviceAdmin | None = None,
        wake_water: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self._devices = devices or DeviceAdmin(store, clock, settings.supervision, registry)
        self._clock = clock
        self._store = store
        self._registry = registry
        self._importer = importer
        self._reports = reports
        self._live = live
        self._opened = opened
        self._after_import = after_import
        self._offline_tickets = tickets
        self._views = TicketViews(store)
        self._water_views = WaterViews(store, settings)
        self._wake_water: Callable[[], None] = wake_water or (lambda: None)
        self._access = AccessService(store, clock, settings.http, self._count_signin)
        self._directory = Directory(store, settings.http.page_max)
        self._provisioning = Provisioning(store, clock, settings.supervision)
        self._offline_installs = InstallChecks(store, clock, settings.provisioning)

    async def _ready(self) -> None:
        if not self._opened:
            await self._store.open()
            self._opened = True

    async def close(self) -> None:
        """Close the store if this facade opened it; safe to call twice."""
        if self._opened and self._live is None:
            await self._store.close()
            self._opened = False

    # Devices

    async def register_device(
        self,
        device_id: str,
        kind: DeviceKind,
        key: bytes | None = None,
        household_code: str | None = None,
        label: str | None = None,
        *,
        unit_code: str | None = None,
        actor: str = "api",
    ) -> DeviceRecord:
        """Provision a device (a random key if none is given).

        DeviceAdminError (a RegistryError), with nothing written, if the household or the
        unit does not exist or the device is registered already.
        """
        return (
            await self.add_device(device_id, kind, key, household_code, label, unit_code, actor)
        ).record

    async def add_device(
        self,
        device_id: str,
        kind: DeviceKind,
        key: bytes | None,
        household_code: str | None,
        label: str | None,
        unit_code: str | None,
        actor: str,
    ) -> Added:
        """Provision a device, saying whether its key was generated (to be shown once)."""
        await self._ready()
        return await self._devices.add(
            device_id, kind, key, household_code, label, unit_code, actor
        )

    # -- protocol administration (key rotation, configuration, counters) ----------------

    async def rotate_device_key(self, device_id: str, actor: str) -> DeviceRecord:
        """Start a key rotation; the gateway finishes it with the box (protocol section 9)."""
        await self._ready()
        return await self._registry.rotate_key(device_id, actor)

    async def configure_device(
        self, device_id: str, heartbeat_s: int | None, clock: bool, actor: str
    ) -> DeviceRecord:
        """Send the box a CONFIG (interval, clock) after its next frame, until it confirms."""
        await self._ready()
        return await self._registry.configure(device_id, heartbeat_s, clock, actor)

    async def reset_device_counters(self, device_id: str, actor: str) -> DeviceRecord:
        """Forget the box's order: its next frame sets it again (protocol section 6)."""
        await self._ready()
        return await self._registry.reset_counters(device_id, actor)

    async def attach_device(self, device_id: str, household_code: str, actor: str) -> DeviceRecord:
        """Attach a box that has no household to one.

        A running gateway sees it within `supervision.changes_poll_s`.
        """
        await self._ready()
        return await self._devices.attach(device_id, household_code, actor)

    async def move_device(self, device_id: str, household_code: str, actor: str) -> DeviceRecord:
        """Move a box from its household to another."""
        await self._ready()
        return await self._devices.move(device_id, household_code, actor)

    async def replace_device(
        self, old_id: str, new_id: str, key: bytes | None, actor: str
    ) -> tuple[DeviceRecord, Added]:
        """The new box takes over the old one's household; the old one is retired."""
        await self._ready()
        return await self._devices.replace(old_id, new_id, key, actor)

    async def remove_device(self, device_id: str, actor: str) -> DeviceRecord:
        """Retire a box: its history stays; its frames get the "device disabled" nack."""
        await self._ready()
        return await self._devices.remove(device_id, actor)

    async def device_history(self, device_id: str) -> list[HistoryEntry]:
        """Who attached, moved, replaced or removed the box, and when, oldest first.

        DeviceAdminError if there is no such device.
        """
        await self._ready()
        device_id = canonical_id(device_id)
        if await self._store.devices.get(device_id) is None:
            raise DeviceAdminError(
                "not_registered", f"device {device_id} is not registered", device=device_id
            )
        return await self._store.devices.history(device_id)

    async def list_devices(self) -> list[DeviceRecord]:
        """Every registered device, by id."""
        await self._ready()
        return sorted(await self._store.devices.all(), key=lambda d: d.device_id)

    async def broker_accounts(self) -> list[tuple[str, bytes]]:
        """(device id, current key) of every enabled device: the broker users it derives."""
        await self._ready()
        return sorted((d.device_id, d.key) for d in await self._store.devices.all() if d.enabled)

    async def sync_broker_credentials(self, writer: BrokerCredentialWriter) -> BrokerSync:
        """Rewrite the broker's password and ACL files if a device or key changed."""
        return writer.sync(await self.broker_accounts())

    # Operator alarms

    async def alarms(self, *, cleared: bool = False) -> list[OperatorAlarm]:
        """Open operator alarms (with `cleared`, all of them), oldest first."""
        await self._ready()
        return await self._store.devices.alarms(cleared=cleared)

    async def clear_alarm(self, alarm_id: int, actor: str) -> OperatorAlarm:
        """Clear an open alarm; DeviceAdminError if there is no open alarm with that id."""
        await self._ready()
        async with self._store.transaction() as uow:
            alarm = await uow.devices.clear_alarm(alarm_id, self._clock.now(), actor)
        if alarm is None:
            raise DeviceAdminError("no_alarm", f"no open alarm {alarm_id}", alarm=str(alarm_id))
        return alarm

    # Grid

    async def import_grid(
        self, kind: ImportKind, data: str | bytes, *, check: bool = False
    ) -> ImportResult:
        """Import units, households (with their boxes) or contacts; with `check`, write nothing.

        ImportRejectedError if the file itself is unusable; bad rows are in the result.
        """
        await self._ready()
        result = await self._importer.import_csv(kind, data, check=check)
        if not check and kind == "households" and result.written:
            # Who lives alone, and which meters, may have changed: a running gateway looks
            # again at which homes its water watch watches.
            await self._water_views.request_recheck(self._clock.now(), "import")
            self._wake_water()
        if not check and self._after_import is not None:
            self._after_import()
        return result

    # Tickets

    def _running(self) -> LiveParts:
        if self._live is None:
            raise NotRunningError("this needs the running gateway (bidao run)")
        return self._live

    def _tickets(self) -> TicketService:
        if self._live is None:
            raise NotRunningError("ticket actions need the running gateway (bidao run)")
        return self._live.tickets

    async def start_bridge(self, ticket_id: int, contact_id: int, call_id: str) -> str | None:
        """Put the ticket's owner through to the resident; the resident's number, or None."""
        return await self._tickets().start_bridge(ticket_id, contact_id, call_id)

    async def end_bridge(self, ticket_id: int, call_id: str) -> None:
        """The call between the responder and the resident has ended."""
        await self._tickets().end_bridge(ticket_id, call_id)

    async def contact_name(self, contact_id: int | None) -> str | None:
        """A contact's name, or None if there is no such contact."""
        await self._ready()
        contacts = await self._store.grid.contacts()
        return next((c.name for c in contacts if c.id == contact_id), None)

    # Notifications

    async def notification(self, notification_id: int) -> Notification | None:
        """One notification as written, or None."""
        await self._ready()
        return await self._store.outbox.get(notification_id)

    async def call_script(self, notification_id: int) -> tuple[Notification, str] | None:
        """A notification and what its recipient hears (a digest if merged), or None."""
        return await self._running().outbox.message_text(notification_id)

    async def record_keypress(self, notification_id: int, digit: str) -> bool:
        """A person answered a call with a key; False if there is no such notification."""
        return await self._running().outbox.record_keypress(notification_id, digit)

    async def record_delivery_status(
        self, notification_id: int, provider_id: str, state: str, *, bad_number: bool = False
    ) -> bool:
        """Apply and count a provider status callback; False if it was stale or unknown."""
        live = self._running()
        changed = await live.outbox.apply_status(
            notification_id, provider_id, state, bad_number=bad_number
        )
        live.metrics.status_callbacks.labels(state, str(changed).lower()).inc()
        return changed

    def reject_webhook(self, reason: str) -> None:
        """Count a provider webhook refused for `reason` (a bad signature, missing fields)."""
        self._running().metrics.webhooks_rejected.labels(reason).inc()

    async def health(self) -> Health:
        """Each part's real state; `serving` is False when boxes are not being acknowledged."""
        return await self._running().health()

    async def accept_ticket(
        self, ticket_id: int, contact_id: int, channel: ActionChannel
    ) -> AcceptResult:
        """A responder takes the ticket; the first to accept owns it."""
        return await (await self._ticket_actions()).accept(ticket_id, contact_id, channel)

    async def water_answered_by_phone(self, household: str) -> None:
        """The resident pressed 1 on the "are you OK?" call (the running gateway only)."""
        if self._live is None or self._live.water is None:
            raise NotRunningError("a safety call's answer needs the running gateway")
        await self._live.water.answered_by_phone(household)

    async def water_away_by_phone(self, household: str) -> None:
        """The resident pressed 2 on the "are you OK?" call: away from home."""
        if self._live is None or self._live.water is None:
            raise NotRunningError("a safety call's answer needs the running gateway")
        await self._live.water.away_by_phone(household)

    async def decline_ticket(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> None:
        """A responder passes the ticket on to the next in the chain."""
        await (await self._ticket_actions()).decline(ticket_id, contact_id, channel)

    async def _ticket_actions(self) -> TicketService:
        """The running gateway's ticket service, or (offline) one over the store alone.

        Offline, what an action commits (notifications, clocks, box indications) is found by
        the running gateway's outbox sender, scheduler and indication sender within their
        poll intervals (`notify.poll_s`, `runtime.deadline_poll_s`, `indications.poll_s`).
        """
        if self._live is not None:
            return self._live.tickets
        if self._offline_tickets is None:
            raise NotRunningError("ticket actions need the running gateway (bidao run)")
        await self._ready()
        return self._offline_tickets

    async def arrive_ticket(
        self, ticket_id: int, contact_id: int | None, channel: ActionChannel
    ) -> None:
        """The responder is at the resident's home (contact None: an operator, channel "cli")."""
        await (await self._ticket_actions()).arrive(ticket_id, contact_id, channel)

    async def resolve_ticket(
        self,
        ticket_id: int,
        contact_id: int | None,
        channel: ActionChannel,
        category: Category | None = None,
        note: str | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        """The matter is dealt with; the box asks the resident to rate it.

        For an alarm, `outcome` is what it turned out to be (NotAnAlarmError for a call,
        OutcomeError for one this kind of alarm cannot have).
        """
        await (await self._ticket_actions()).resolve(
            ticket_id, contact_id, channel, category, note, outcome
        )

    async def label_ticket(
        self, ticket_id: int, outcome: Outcome, contact_id: int | None, channel: ActionChannel
    ) -> None:
        """Label a resolved alarm real or false (and why), e.g. one the all-clear resolved.

        NotAnAlarmError for a call; OutcomeError for an outcome its kind cannot have;
        TicketError while the alarm is not resolved yet.
        """
        await (await self._ticket_actions()).label(ticket_id, outcome, contact_id, channel)

    # The responder's page

    def open_link(self, token: str) -> LinkGrant:
        """What a responder's link grants now; LinkError (with its reason) if nothing."""
        live = self._running()
        if live.links is None:
            raise NotRunningError("this gateway makes no responder links")
        return live.links.verify(token, self._clock.now())

    def refuse_link(self, reason: str) -> None:
        """Count a responder page request refused for `reason` (forged, expired, not_owner…)."""
        self._running().metrics.responder_links_refused.labels(reason).inc()

    async def responder_view(self, ticket_id: int, contact_id: int) -> ResponderView:
        """The ticket as `contact_id` sees it on the page; TicketError if there is none."""
        await self._ready()
        ticket = await self._store.tickets.get(ticket_id)
        if ticket is None:
            raise TicketError(f"no ticket {ticket_id}")
        grid = self._store.grid
        address = resident_name = resident_phone = None
        chain: list[str] = []
        if ticket.household_code is not None:
            households = await grid.households_by_code([ticket.household_code])
            if households:
                address = households[0].address or None
                chain = await self._unit_chain(households[0].neighbourhood_code)
            residents = sorted(
                await grid.residents_of([ticket.household_code]), key=lambda r: r.id or 0
            )
            if residents:
                resident_name, resident_phone = residents[0].name, residents[0].phone
        had_it = any(
            (e.kind == "accepted" and e.contact_id == contact_id)
            or (e.kind == "reassigned" and e.detail.rsplit(" ", 1)[-1] == str(contact_id))
            for e in await self._store.tickets.events(ticket_id)
        )
        contacts = await grid.contacts()
        names = {c.id: c.name for c in contacts}
        zone = ZoneInfo(self.settings.tickets.timezone)

        def local(at: float | None) -> datetime | None:
            return None if at is None else datetime.fromtimestamp(at, zone)

        return ResponderView(
            ticket_id=ticket.id,
            viewer_id=contact_id,
            viewer_name=names.get(contact_id),
            status=ticket.status,
            owner_id=ticket.owner_contact_id,
            owner_name=names.get(ticket.owner_contact_id or 0),
            resident_name=resident_name,
            address=address,
            resident_phone=resident_phone,
            has_box=ticket.device_id is not None,
            category=ticket.category,
            day_clock_s=dict(ticket.rules.day_clock_s),
            opened_at=datetime.fromtimestamp(ticket.opened_at, zone),
            accepted_at=local(ticket.accepted_at),
            on_site_at=local(ticket.on_site_at),
            resolved_at=local(ticket.resolved_at),
            rated_at=local(ticket.rated_at),
            cancelled_at=local(ticket.cancelled_at),
            day_due_at=local(ticket.day_due_at),
            had_it=had_it or ticket.owner_contact_id == contact_id,
            handover=_handover(contacts, chain, ticket.owner_contact_id),
            kind=ticket.kind,
            outcome=ticket.outcome,
        )

    async def _unit_chain(self, unit_code: str) -> list[str]:
        """The household's units from `unit_code` up to its village (or the top), nearest first."""
        chain: list[str] = []
        code: str | None = unit_code
        while code is not None and code not in chain and len(chain) < _UNIT_DEPTH:
            units = await self._store.grid.units_by_code([code])
            if not units:
                break
            chain.append(code)
            if units[0].level == "village":
                break
            code = units[0].parent_code
        return chain

    async def classify_ticket(
        self, ticket_id: int, category: Category, contact_id: int | None, channel: ActionChannel
    ) -> None:
        """Set the kind of matter, which starts its day clock."""
        await (await self._ticket_actions()).classify(ticket_id, category, contact_id, channel)

    async def note_ticket(
        self, ticket_id: int, contact_id: int | None, channel: ActionChannel, text: str
    ) -> None:
        """Add a short note to the ticket's record; TicketError if it is empty or too long."""
        await (await self._ticket_actions()).note(ticket_id, contact_id, channel, text)

    async def reassign_ticket(
        self,
        ticket_id: int,
        to_contact_id: int,
        by_contact_id: int | None,
        channel: ActionChannel,
    ) -> None:
        """Hand the ticket to another person: they are called and told, the old owner told."""
        await (await self._ticket_actions()).reassign(
            ticket_id, to_contact_id, by_contact_id, channel
        )

    async def list_tickets(self, *, days: float | None = None) -> list[Ticket]:
        """Live tickets, or (with `days`) every ticket opened in that many days, oldest first."""
        await self._ready()
        if days is None:
            return await self._store.tickets.live()
        now = self._clock.now()
        return await self._store.tickets.opened(now - days * DAY_S, now)

    async def list_ticket_views(
        self,
        *,
        statuses: tuple[TicketStatus, ...] = (),
        village: str | None = None,
        household: str | None = None,
        days: float | None = 7.0,
    ) -> list[TicketView]:
        """Live tickets and those opened in the last `days` days (all if None), newest first.

        `village` is a village's code or name (NoSuchVillageError if not exactly one).
        """
        if days is not None and days <= 0:
            raise ApplicationError(f"the period must be a positive number of days, got {days:g}")
        await self._ready()
        since = None if days is None else self._clock.now() - days * DAY_S
        return await self._views.find(statuses, village, household, since)

    async def ticket_timeline(self, ticket_id: int) -> Timeline:
        """One ticket's whole story with names; NoSuchTicketError if there is none."""
        await self._ready()
        return await self._views.timeline(ticket_id)

    async def find_contact(self, text: str) -> PersonRef:
        """The one contact with this id, phone number or name; NoSuchContactError if not one."""
        await self._ready()
        c = await self._views.contact(text)
        return PersonRef(c.id, c.name, c.role, c.phone)

    def now(self) -> float:
        """The facade's clock."""
        return self._clock.now()

    # Figures

    async def report(self, days: float) -> Report:
        """Warning colours now, and statistics and cards over the last `days` days."""
        if days <= 0:
            raise ApplicationError(f"the report period must be positive, got {days:g} days")
        await self._ready()
        now = self._clock.now()
        start = now - days * DAY_S
        units, contacts = await self._reports.grid()
        return Report(
            start=start,
            end=now,
            days=days,
            colours=await self._reports.warning_colours(now),
            statistics=await self._reports.statistics(start, now),
            cards=await self._reports.chief_cards(start, now),
            unused_boxes=await self._reports.unused_boxes(now, UNUSED_BOX_DAYS),
            unused_days=UNUSED_BOX_DAYS,
            units=units,
            contacts=contacts,
            warnings=self.settings.warnings,
            card_thresholds=self.settings.cards,
            policy=self.settings.tickets.default,
            timezone=self.settings.tickets.timezone,
            broken_promises=await self._reports.broken_promises(start, now),
            alarms=await self._reports.alarm_statistics(start, now),
        )

    # The water watch

    async def household_watch(self, household_code: str) -> WatchView:
        """Whether the household is watched and why, its phase, routine and record.

        WaterRequestError("unknown_household") if there is no such household.
        """
        await self._ready()
        return await self._water_views.view(household_code)

    async def mark_away(
        self, household_code: str, until: float, by_contact: int | None, channel: str
    ) -> WaterRequest:
        """Mark the home away until `until` (queued for the running gateway).

        No zero-use alarm until then, then a reminder to the family if no water comes. The
        running gateway applies it within `water.requests_poll_s`. WaterRequestError for an
        unknown household, one that is not watched, or a return time already past.
        """
        await self._ready()
        request = await self._water_views.request_away(
            household_code, until, self._clock.now(), by_contact, channel
        )
        self._wake_water()
        return request

    async def clear_away(self, household_code: str, channel: str) -> WaterRequest:
        """End away mode now (queued like `mark_away`); WaterRequestError if not away."""
        await self._ready()
        request = await self._water_views.request_clear(household_code, self._clock.now(), channel)
        self._wake_water()
        return request

    def metrics_text(self) -> bytes:
        """Prometheus text: live from a running gateway, else its last snapshot on disk."""
        if self._live is not None:
            return self._live.metrics.render()
        path = self.settings.metrics_path
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NoMetricsError(f"no metrics yet at {path}: is the gateway running?") from None
        except OSError as exc:
            raise ApplicationError(f"cannot read {path}: {exc.strerror or exc}") from exc

    # Users, sign-in and scope (the API and `bidao user`)

    def _count_signin(self, outcome: str) -> None:
        if self._live is not None:
            self._live.metrics.signin_attempts.labels(outcome).inc()

    def count_api_refusal(self, reason: str) -> None:
        """Count an API request refused for `reason` (not_signed_in, forbidden, ...)."""
        if self._live is not None:
            self._live.metrics.api_refused.labels(reason).inc()

    async def add_user(
        self,
        login: str,
        name: str,
        role: UserRole,
        password: str | None,
        units: Sequence[str],
        contact: str | None,
        actor: str,
    ) -> User:
        """Add a user; AccessError (nothing written) for a bad login, unit, contact or password.

        `contact` (id, phone or name) links the user to the contact they act as on tickets
        (a family user: their family contact, whose households they may read).
        """
        await self._ready()
        return await self._access.add_user(login, name, role, password, units, contact, actor)

    async def set_user_password(self, login: str, password: str, actor: str) -> User:
        """Set a user's password; their sessions end."""
        await self._ready()
        return await self._access.set_password(login, password, actor)

    async def issue_api_token(
        self, login: str, name: str, expires_s: float | None, actor: str
    ) -> tuple[ApiToken, str]:
        """A new API token for a user and its secret, to be shown once."""
        await self._ready()
        return await self._access.issue_token(login, name, expires_s, actor)

    async def list_users(self) -> list[User]:
        """Every user, by id."""
        await self._ready()
        return await self._access.users()

    async def user_tokens(self, login: str) -> list[ApiToken]:
        """A user's API tokens (never their secrets)."""
        await self._ready()
        return await self._access.tokens(login)

    async def set_user_disabled(self, login: str, disabled: bool, actor: str) -> User:
        """Disable a user (sessions end, tokens refused), or enable them again."""
        await self._ready()
        return await self._access.set_disabled(login, disabled, actor)

    async def sign_in(self, login: str, password: str, client: str) -> SignedIn:
        """A new session for a right password; AccessError (rate-limited, counted) if not."""
        await self._ready()
        return await self._access.sign_in(login, password, client)

    async def sign_out(self, secret: str, principal: Principal, client: str) -> None:
        """End the session with this secret."""
        await self._ready()
        await self._access.sign_out(secret, principal, client)

    async def principal_for_session(self, secret: str) -> Principal:
        """Who a session cookie belongs to; AccessError if nobody (or expired)."""
        await self._ready()
        return await self._access.from_session(secret)

    async def principal_for_token(self, secret: str) -> Principal:
        """Who an API token belongs to; AccessError if nobody."""
        await self._ready()
        return await self._access.from_token(secret)

    async def audit(
        self,
        principal: Principal,
        action: str,
        target: str = "",
        detail: str = "",
        client: str = "",
        outcome: str = "ok",
    ) -> None:
        """Record a write made by `principal` (or refused: `outcome` says why)."""
        await self._ready()
        await self._access.audit(principal, action, target, detail, client, outcome)

    async def audit_log(self, limit: int = 100, user_id: int | None = None) -> list[AuditEntry]:
        """The newest audit lines, newest first."""
        await self._ready()
        return await self._access.audit_log(limit, user_id)

    async def scoped_units(self, principal: Principal) -> list[GridUnit]:
        """The grid units `principal` may see, by code."""
        await self._ready()
        return await self._directory.units(principal)

    async def scoped_households(
        self,
        principal: Principal,
        *,
        unit: str | None = None,
        text: str | None = None,
        lives_alone: bool | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> HouseholdPage:
        """A page of the households `principal` may see, with residents, by code."""
        await self._ready()
        return await self._directory.households(
            principal, unit=unit, text=text, lives_alone=lives_alone, after=after, limit=limit
        )

    async def scoped_household(self, principal: Principal, code: str) -> HouseholdEntry:
        """One household `principal` may see; AccessError not_found otherwise."""
        await self._ready()
        return await self._directory.household(principal, code)

    async def scoped_contacts(self, principal: Principal, unit: str | None = None) -> list[Contact]:
        """The contacts `principal` may see, by id."""
        await self._ready()
        return await self._directory.contacts(principal, unit)

    async def scoped_devices(
        self, principal: Principal, *, kind: str | None = None, status: str | None = None
    ) -> list[ScopedDevice]:
        """The devices `principal` may see, by id."""
        await self._ready()
        return await self._directory.devices(principal, kind=kind, status=status)

    async def scoped_device(self, principal: Principal, device_id: str) -> ScopedDevice:
        """One device `principal` may see; AccessError not_found otherwise."""
        await self._ready()
        return await self._directory.device(principal, canonical_id(device_id))

    async def scoped_attach_device(
        self, principal: Principal, device_id: str, household_code: str, client: str
    ) -> DeviceRecord:
        """Attach a box of `principal`'s units to a household of their units (audited)."""
        await self._ready()
        require(principal, "bind_devices")
        scoped = await self._directory.device(principal, canonical_id(device_id))
        await self._directory.check_household(principal, household_code)
        record = await self.attach_device(
            scoped.device.device_id, household_code, f"user:{principal.login}"
        )
        await self.audit(principal, "device.attach", record.device_id, household_code, client)
        return record

    async def scoped_tickets(
        self,
        principal: Principal,
        *,
        statuses: tuple[TicketStatus, ...] = (),
        kinds: tuple[TicketKind, ...] = (),
        village: str | None = None,
        household: str | None = None,
        days: float | None = 7.0,
    ) -> list[TicketView]:
        """Tickets `principal` may see: live ones and those of the last `days` days."""
        if days is not None and days <= 0:
            raise AccessError("bad_input", "days must be positive", field="days")
        await self._ready()
        since = None if days is None else self._clock.now() - days * DAY_S
        tickets = await self._directory.tickets(
            principal,
            statuses=statuses,
            kinds=kinds,
            village=village,
            household=household,
            opened_since=since,
        )
        return await self._views.views(tickets)

    async def scoped_timeline(self, principal: Principal, ticket_id: int) -> Timeline:
        """One ticket's story if `principal` may see it; AccessError not_found otherwise."""
        await self._ready()
        await self._directory.ticket(principal, ticket_id)
        return await self._views.timeline(ticket_id)

    async def scoped_notifications(
        self, principal: Principal, ticket_id: int
    ) -> list[TicketMessage]:
        """The notifications sent about a ticket `principal` may see, oldest first."""
        await self._ready()
        await self._directory.ticket(principal, ticket_id)
        if principal.role == "family":
            raise AccessError("forbidden", "family members do not read the call log")
        return await self._store.outbox.of_ticket(ticket_id)

    async def scoped_alarms(
        self, principal: Principal, *, cleared: bool = False
    ) -> list[OperatorAlarm]:
        """Operator alarms about devices `principal` may see, oldest first."""
        await self._ready()
        return await self._directory.alarms(principal, cleared=cleared)

    async def scoped_report(self, principal: Principal, days: float) -> Report:
        """The report, its per-unit figures kept to the units `principal` may see."""
        await self._ready()
        require(principal, "read_statistics")
        report = await self.report(days)
        if principal.units is None:
            return report
        seen = principal.units
        return replace(
            report,
            colours={k: v for k, v in report.colours.items() if k in seen},
            statistics={k: v for k, v in report.statistics.items() if k in seen},
            cards=[
                c
                for c in report.cards
                if c.contact_id in report.contacts
                and report.contacts[c.contact_id].unit_code in seen
            ],
            unused_boxes=[],
            units={k: v for k, v in report.units.items() if k in seen},
            contacts={k: v for k, v in report.contacts.items() if v.unit_code in seen},
            broken_promises={k: v for k, v in report.broken_promises.items() if k in seen},
            alarms={k: v for k, v in report.alarms.items() if k in seen},
        )

    async def scoped_colours(
        self, principal: Principal
    ) -> tuple[dict[str, UnitWarning], dict[str, GridUnit]]:
        """The warning colours now of the units `principal` may see, and those units by code.

        The map part of `scoped_report` alone (no statistics over a period): cheap enough for
        a live page to ask on every change.
        """
        await self._ready()
        require(principal, "read_statistics")
        colours = await self._reports.warning_colours(self._clock.now())
        units, _ = await self._reports.grid()
        if principal.units is None:
            return colours, units
        seen = principal.units
        return (
            {k: v for k, v in colours.items() if k in seen},
            {k: v for k, v in units.items() if k in seen},
        )

    async def scoped_watch(self, principal: Principal, household_code: str) -> WatchView:
        """A household's water watch if `principal` may see it; AccessError not_found if not."""
        await self._ready()
        require(principal, "read_water")
        await self._directory.check_household(principal, household_code)
        return await self._water_views.view(household_code)

    async def scoped_mark_away(
        self, principal: Principal, household_code: str, until: float, client: str
    ) -> WaterRequest:
        """Mark a home away (as `mark_away`), if `principal` may manage its watch; audited."""
        await self._ready()
        require(principal, "manage_water")
        await self._directory.check_household(principal, household_code)
        request = await self.mark_away(household_code, until, principal.contact_id, "api")
        await self.audit(principal, "water.away", household_code, f"until={until:.0f}", client)
        return request

    async def scoped_clear_away(
        self, principal: Principal, household_code: str, client: str
    ) -> WaterRequest:
        """End away mode (as `clear_away`), if `principal` may manage its watch; audited."""
        await self._ready()
        require(principal, "manage_water")
        await self._directory.check_household(principal, household_code)
        request = await self.clear_away(household_code, "api")
        await self.audit(principal, "water.clear_away", household_code, client=client)
        return request

    async def change_mark(self) -> tuple[int, int]:
        """A marker that moves whenever a ticket or an operator alarm changes (reveals no data).

        Live pages compare it, from one server task, instead of re-reading what they show.
        """
        await self._ready()
        return await self._store.tickets.change_mark()

    async def _acting(self, principal: Principal, ticket_id: int, *, owner_only: bool) -> int:
        """The contact `principal` acts as on a ticket they may see and act on.

        With `owner_only` (arrival, resolution, handing over, labelling) the contact must
        own the ticket, as on the responder's page: TicketError otherwise.
        """
        await self._ready()
        require(principal, "act_tickets")
        ticket = await self._directory.ticket(principal, ticket_id)
        if principal.contact_id is None:
            raise AccessError(
                "no_contact",
                f"user {principal.login} is not linked to a responder contact",
                login=principal.login,
            )
        if owner_only and ticket.owner_contact_id != principal.contact_id:
            raise TicketError(f"ticket {ticket_id} is not yours: its owner reports this")
        return principal.contact_id

    @staticmethod
    def _channel(principal: Principal) -> ActionChannel:
        return "api" if principal.via == "token" else "dashboard"

    async def _audited(
        self,
        principal: Principal,
        action: str,
        ticket_id: int,
        detail: str,
        client: str,
        work: Callable[[int, ActionChannel], Awaitable[T]],
    ) -> T:
        try:
            contact = await self._acting(principal, ticket_id, owner_only=action in _OWNER_ACTIONS)
            result = await work(contact, self._channel(principal))
        except AccessError as exc:
            if exc.code != "not_found":  # a probe of another village's numbers is not audited
                await self.audit(
                    principal, f"ticket.{action}", str(ticket_id), exc.code, client, "refused"
                )
            raise
        except GatewayError as exc:
            await self.audit(
                principal,
                f"ticket.{action}",
                str(ticket_id),
                f"{detail} {exc}".strip(),
                client,
                "refused",
            )
            raise
        await self.audit(principal, f"ticket.{action}", str(ticket_id), detail, client)
        return result

    async def user_accept(self, principal: Principal, ticket_id: int, client: str) -> AcceptResult:
        """`principal` takes the ticket; the first to accept (keypress or API) owns it."""
        return await self._audited(
            principal,
            "accept",
            ticket_id,
            "",
            client,
            lambda c, ch: self.accept_ticket(ticket_id, c, ch),
        )

    async def user_arrive(self, principal: Principal, ticket_id: int, client: str) -> None:
        """`principal` is at the resident's home."""
        await self._audited(
            principal,
            "arrive",
            ticket_id,
            "",
            client,
            lambda c, ch: self.arrive_ticket(ticket_id, c, ch),
        )

    async def user_classify(
        self, principal: Principal, ticket_id: int, category: Category, client: str
    ) -> None:
        """`principal` sets the kind of matter."""
        await self._audited(
            principal,
            "classify",
            ticket_id,
            category,
            client,
            lambda c, ch: self.classify_ticket(ticket_id, category, c, ch),
        )

    async def user_note(self, principal: Principal, ticket_id: int, text: str, client: str) -> None:
        """`principal` adds a note to the ticket."""
        await self._audited(
            principal,
            "note",
            ticket_id,
            "",
            client,
            lambda c, ch: self.note_ticket(ticket_id, c, ch, text),
        )

    async def user_resolve(
        self,
        principal: Principal,
        ticket_id: int,
        client: str,
        category: Category | None = None,
        note: str | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        """`principal` resolves the ticket (an alarm with what it turned out to be)."""
        await self._audited(
            principal,
            "resolve",
            ticket_id,
            outcome or "",
            client,
            lambda c, ch: self.resolve_ticket(ticket_id, c, ch, category, note, outcome),
        )

    async def user_reassign(
        self, principal: Principal, ticket_id: int, to_contact_id: int, client: str
    ) -> None:
        """`principal` hands the ticket to another responder of their scope."""
        contacts = await self._store.grid.contacts_by_id([to_contact_id])
        if (
            not contacts
            or contacts[0].role in ("family", "installer")
            or not (principal.sees_unit(contacts[0].unit_code))
        ):
            raise AccessError(
                "not_found",
                f"no responder {to_contact_id}",
                what="contact",
                key=str(to_contact_id),
            )
        await self._audited(
            principal,
            "reassign",
            ticket_id,
            f"to={to_contact_id}",
            client,
            lambda c, ch: self.reassign_ticket(ticket_id, to_contact_id, c, ch),
        )

    async def user_label(
        self, principal: Principal, ticket_id: int, outcome: Outcome, client: str
    ) -> None:
        """`principal` labels a resolved alarm real or false (and why)."""
        await self._audited(
            principal,
            "label",
            ticket_id,
            outcome,
            client,
            lambda c, ch: self.label_ticket(ticket_id, outcome, c, ch),
        )

    # Provisioning for installers: registration, install checks, replacement, labels

    def _installing_in(self, principal: Principal, unit_code: str | None) -> None:
        """AccessError unless `principal` may put devices in `unit_code` (None: admins)."""
        require(principal, "bind_devices")
        if unit_code is None:
            if not principal.sees_everything:
                raise AccessError(
                    "bad_input", "give the unit the devices are installed in", field="unit_code"
                )
            return
        if not principal.sees_unit(unit_code):
            raise not_found("unit", unit_code)

    async def scoped_register_device(
        self,
        principal: Principal,
        device_id: str,
        kind: DeviceKind,
        key: bytes,
        unit_code: str | None,
        label: str | None,
        client: str,
    ) -> ScopedDevice:
        """Register one device by its serial and key in a unit of `principal`'s (audited)."""
        await self._ready()
        self._installing_in(principal, unit_code)
        added = await self._devices.add(
            device_id, kind, key, None, label, unit_code, f"user:{principal.login}"
        )
        await self.audit(
            principal, "device.register", added.record.device_id, unit_code or "", client
        )
        return await self._directory.device(principal, added.record.device_id)

    async def scoped_register_batch(
        self,
        principal: Principal,
        csv_text: str,
        unit_code: str | None,
        kind: DeviceKind,
        client: str,
    ) -> list[DeviceRecord]:
        """Register a manufacturer's CSV of serials and keys, all or nothing (audited).

        BatchRefusedError naming every bad row; nothing is written then.
        """
        await self._ready()
        self._installing_in(principal, unit_code)
        try:
            rows = parse_batch(csv_text, kind, self.settings.provisioning.batch_max_rows)
            records = await self._provisioning.register_batch(
                rows, unit_code, f"user:{principal.login}"
            )
        except BatchRefusedError as exc:
            await self.audit(
                principal, "device.batch", unit_code or "", str(exc), client, "refused"
            )
            raise
        await self.audit(
            principal, "device.batch", unit_code or "", f"{len(records)} devices", client
        )
        return records

    def _installs(self) -> InstallChecks:
        """The running gateway's install checks, or (offline) ones over the store alone.

        Offline, a check is still seen by a running gateway at the box's next press (the
        gateway reads running checks from the store) and its deadline within
        `runtime.deadline_poll_s`; only the live events stay in the process that made them.
        """
        if self._live is not None and self._live.installs is not None:
            return self._live.installs
        return self._offline_installs

    async def start_install_check(self, device_id: str, actor: str) -> InstallCheck:
        """Start the install check of a device (the command line; no scope)."""
        await self._ready()
        return await self._installs().start(canonical_id(device_id), actor)

    async def install_check(self, check_id: int) -> InstallCheck:
        """One install check as stored; DeviceAdminError if there is none."""
        await self._ready()
        check = await self._store.installs.get(check_id)
        if check is None:
            raise DeviceAdminError("no_check", f"no install check {check_id}", check=str(check_id))
        return check

    async def cancel_install_check(self, check_id: int) -> InstallCheck:
        """End a running install check (the command line)."""
        await self._ready()
        return await self._installs().cancel(check_id)

    async def scoped_start_check(
        self, principal: Principal, device_id: str, client: str
    ) -> InstallCheck:
        """Start the install check of a device of `principal`'s units (audited)."""
        await self._ready()
        require(principal, "bind_devices")
        scoped = await self._directory.device(principal, canonical_id(device_id))
        check = await self._installs().start(scoped.device.device_id, f"user:{principal.login}")
        await self.audit(principal, "device.check", check.device_id, f"check={check.id}", client)
        return check

    async def scoped_install_check(self, principal: Principal, check_id: int) -> InstallCheck:
        """One install check of a device `principal` may see; AccessError not_found if not."""
        await self._ready()
        require(principal, "read_devices")
        check = await self._store.installs.get(check_id)
        if check is None:
            raise not_found("install_check", str(check_id))
        try:
            await self._directory.device(principal, check.device_id)
        except AccessError:
            raise not_found("install_check", str(check_id)) from None
        return check

    async def scoped_cancel_check(
        self, principal: Principal, check_id: int, client: str
    ) -> InstallCheck:
        """End a running install check of `principal`'s units (audited)."""
        require(principal, "bind_devices")
        await self.scoped_install_check(principal, check_id)
        check = await self._installs().cancel(check_id)
        await self.audit(principal, "device.check_cancel", check.device_id, str(check_id), client)
        return check

    async def scoped_install_state(
        self, principal: Principal, device_id: str
    ) -> tuple[InstallState, str | None, list[InstallCheck]]:
        """A device's installation state, the reason if pending, and its newest checks."""
        await self._ready()
        scoped = await self._directory.device(principal, canonical_id(device_id))
        checks = await self._store.installs.of_device(scoped.device.device_id)
        state, reason = install_state(checks[0] if checks else None)
        return state, reason, checks

    def subscribe_install_checks(self, listener: CheckListener) -> Callable[[], None]:
        """Hear every change of every install check (the live page); returns the unsubscribe.

        The listener runs on the event loop right after the change is committed; it must not
        block. Filter by what the page's principal may see (`scoped_install_check`).
        """
        if self._live is None or self._live.installs is None:
            raise NotRunningError("live install check events need the running gateway")
        return self._live.installs.subscribe(listener)

    async def scoped_replace_device(
        self, principal: Principal, old_id: str, new_id: str, client: str
    ) -> tuple[DeviceRecord, DeviceRecord]:
        """A registered box of `principal`'s units takes over another's household (audited).

        The old box is retired and keeps its history; the household keeps its tickets.
        """
        await self._ready()
        require(principal, "bind_devices")
        old = await self._directory.device(principal, canonical_id(old_id))
        new = await self._directory.device(principal, canonical_id(new_id))
        retired, added = await self._devices.replace(
            old.device.device_id, new.device.device_id, None, f"user:{principal.login}"
        )
        await self.audit(
            principal, "device.replace", retired.device_id, f"by={added.record.device_id}", client
        )
        return retired, added.record

    async def scoped_rotate_key(
        self, principal: Principal, device_id: str, client: str
    ) -> DeviceRecord:
        """Start a key rotation of a device of `principal`'s units (audited; no key shown)."""
        await self._ready()
        require(principal, "bind_devices")
        scoped = await self._directory.device(principal, canonical_id(device_id))
        record = await self._registry.rotate_key(scoped.device.device_id, f"user:{principal.login}")
        await self.audit(principal, "device.rotate_key", record.device_id, client=client)
        return record

    async def scoped_remove_device(
        self, principal: Principal, device_id: str, client: str
    ) -> DeviceRecord:
        """Decommission a device of `principal`'s units: it keeps its history (audited)."""
        await self._ready()
        require(principal, "bind_devices")
        scoped = await self._directory.device(principal, canonical_id(device_id))
        record = await self._devices.remove(scoped.device.device_id, f"user:{principal.login}")
        await self.audit(principal, "device.remove", record.device_id, client=client)
        return record


def _actor(contact_id: int | None) -> int:
    if contact_id is None:
        raise TicketError("this action needs to know who is acting")
    return contact_id


def _handover(
    contacts: list[Contact], chain: list[str], owner: int | None
) -> tuple[Responder, ...]:
    """Reachable responders (not family, not the owner) of the units in `chain`, nearest first."""
    rank = {code: i for i, code in enumerate(chain)}
    found = [
        c
        for c in contacts
        if c.unit_code in rank
        and c.role not in ("family", "installer")
        and c.id != owner
        and not c.bad_number
    ]
    found.sort(key=lambda c: (rank[c.unit_code or ""], c.id))
    return tuple(Responder(c.id, c.name, c.role) for c in found)


@asynccontextmanager
async def offline(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Application]:
    """The facade over the SQLite store alone; the store opens on first use, closes at exit.

    The store's errors (a file that is not a database, a damaged one) are StoreErrors naming
    the file.
    """
    clock = clock or SystemClock()
    store = SqliteStore(settings.database_path)
    metrics = GatewayMetrics()
    # Ticket actions offline: the deadlines they set are served by the running gateway's
    # scheduler, which this one (never run) only stands in for.
    tickets = TicketService(
        store,
        clock,
        settings.tickets,
        DeadlineScheduler(store, clock, settings.supervision.scheduler_batch),
        None,
        metrics,
        # The SMS to one who takes a ticket from the command line carries the same link as
        # one who takes it by keypress: the running gateway serves the page.
        links=responder_links(settings) if settings.http.enabled else None,
    )
    application = Application(
        settings,
        clock,
        store,
        DeviceRegistry(
            store,
            clock,
            settings.supervision,
            metrics,
            settings.pipeline.unknown_device_cache_s,
        ),
        GridImporter(store, clock, settings.supervision, settings.grid_import, metrics),
        Reports(store, settings.warnings, settings.cards),
        opened=False,
        tickets=tickets,
    )
    try:
        yield application
    finally:
        await application.close()


def for_service(service: GatewayService) -> Application:
    """The facade over a running gateway's store, registry, tickets and metrics."""
    return Application(
        service.settings,
        service.clock,
        service.store,
        service.registry,
        service.importer,
        service.reports,
        live=LiveParts(
            service.tickets,
            service.outbox,
            service.metrics,
            service.health,
            service.links,
            service.water,
            installs=service.install_checks,
        ),
        after_import=lambda: service.scheduler.notify(0.0),
        devices=service.devices,
        wake_water=service.water.wake_requests,
    )
