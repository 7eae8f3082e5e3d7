"""Tickets "呼叫书记必到": the four keys, the people's actions, the two clocks, escalation.

    green ─► open ─accept─► accepted ─arrive─► on_site ─resolve─► resolved ─thumbs─► rated
              │ ▲ more presses merge into the live ticket
              │ └ nobody accepts in time: the next in the responder chain is called
              └ red key soon after the press, nobody accepted yet ─► cancelled

Minute clocks run for accepting and arriving; a day clock runs once the matter is classified.

Every change is an audit row (who, when, which channel) and its notifications go into the
outbox in the same transaction; the box hears back through indications after the commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from alerts import Notification, render
from alerts.notification import NORMAL, URGENT
from alerts.providers.base import ProviderError
from firmware_protocol import Indication, IndicationKind, Key, KeyEvent, LedPattern
from gateway.clock import Clock
from gateway.config import Category, ResponderRole, TicketPolicy, TicketSettings
from gateway.errors import GatewayError
from gateway.metrics import GatewayMetrics
from gateway.pipeline import AcceptedFrame, OnCommit
from gateway.scheduler import DeadlineScheduler
from gateway.store import (
    ActionChannel,
    Contact,
    Deadline,
    HouseholdInfo,
    Store,
    Ticket,
    TicketEvent,
    UnitOfWork,
)

log = logging.getLogger(__name__)

ACCEPT_DEADLINE = "ticket_accept"
ARRIVE_DEADLINE = "ticket_arrive"
DAY_DEADLINE = "ticket_day"
DEADLINE_KINDS = (ACCEPT_DEADLINE, ARRIVE_DEADLINE, DAY_DEADLINE)
HANGUP_TIMEOUT_S = 10.0

_INDICATIONS: dict[IndicationKind, tuple[LedPattern, int]] = {
    # LED pattern and the id of the voice prompt stored on the box.
    IndicationKind.TICKET_ACCEPTED: (LedPattern.GREEN_SOLID, 1),
    IndicationKind.HELPER_ON_THE_WAY: (LedPattern.GREEN_BLINK, 2),
    IndicationKind.HELPER_ARRIVED: (LedPattern.GREEN_SOLID, 3),
    IndicationKind.RESOLVED: (LedPattern.GREEN_SOLID, 4),
    IndicationKind.CANCELLED: (LedPattern.RED_SOLID, 6),
}


# Calls for action go out at once whatever the throttle says; the rest may be merged.
_URGENT_TEMPLATES = frozenset(
    {
        "ticket_call",
        "ticket_call_repeat",
        "ticket_escalated",
        "ticket_not_arrived",
        "ticket_cancelled_by_resident",
        "ticket_access",
    }
)


class TicketError(GatewayError):
    """A ticket action that does not fit the ticket's state."""


class CallControl(Protocol):
    """Ends a call in progress (the provider's side of the red key)."""

    async def end_call(self, provider_id: str) -> None:
        """Hang up the call."""
        ...


@dataclass(frozen=True, slots=True)
class _Hangup:
    """A bridged call to end after the commit."""

    ticket_id: int
    call_id: str


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """Who owns the ticket after an accept: the caller, or whoever was first."""

    won: bool
    owner_contact_id: int


class _Tx:
    """What one transaction does to tickets, and what to do once it has committed."""

    def __init__(self, uow: UnitOfWork, now: float) -> None:
        self.uow = uow
        self.now = now
        self.events: list[TicketEvent] = []
        self.notifications: list[Notification] = []
        self.deadlines: list[Deadline] = []
        self.cleared: list[tuple[str, str]] = []
        self.indications: list[tuple[str, Indication]] = []
        self.hangups: list[_Hangup] = []

    def event(
        self,
        ticket_id: int,
        kind: str,
        channel: ActionChannel,
        contact_id: int | None = None,
        detail: str = "",
    ) -> None:
        self.events.append(TicketEvent(ticket_id, self.now, kind, channel, contact_id, detail))

    def indicate(self, ticket: Ticket, kind: IndicationKind) -> None:
        if ticket.device_id is not None:
            led, prompt = _INDICATIONS[kind]
            self.indications.append((ticket.device_id, Indication(kind, ticket.id, led, prompt)))

    async def flush(self) -> None:
        await self.uow.add_ticket_events(self.events)
        await self.uow.enqueue(self.notifications, self.now)
        await self.uow.clear_deadlines(self.cleared)
        await self.uow.set_deadlines(self.deadlines)
        # Box indications are durable rows; IndicationSender delivers them after the commit.
        await self.uow.add_indications(self.indications, self.now)


class TicketService:
    """Raises tickets from key presses and drives them to arrival, resolution and rating."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: TicketSettings,
        scheduler: DeadlineScheduler,
        indications_committed: Callable[[], None] | None,
        metrics: GatewayMetrics,
        notifications_committed: Callable[[], None] | None = None,
        calls: CallControl | None = None,
    ) -> None:
        self._store = store
        self._notifications_committed = notifications_committed
        self._clock = clock
        self._settings = settings
        self._zone = ZoneInfo(settings.timezone)
        self._scheduler = scheduler
        self._indications_committed = indications_committed
        self._metrics = metrics
        self._calls = calls
        self._outgoing: asyncio.Queue[_Hangup] = asyncio.Queue()

    # -- the box ----------------------------------------------------------------------

    async def stage(self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]) -> OnCommit | None:
        """Turn the batch's key presses into ticket changes inside the ingest transaction."""
        presses = [f for f in frames if isinstance(f.envelope.message, KeyEvent)]
        if not presses:
            return None
        tx = _Tx(uow, self._clock.now())
        for frame in sorted(presses, key=lambda f: (f.state.device_id, f.envelope.seq)):
            message = frame.envelope.message
            assert isinstance(message, KeyEvent)
            tx.now = frame.inbound.received_at
            household = frame.state.record.household_code
            info = await uow.household_info(household) if household else None
            if message.key == Key.GREEN_CALL:
                await self._green(tx, frame.state.device_id, household, info, message.press_count)
            elif message.key == Key.RED_HANGUP:
                await self._red(tx, household, info)
            else:
                rating = "up" if message.key == Key.THUMBS_UP else "down"
                await self._thumbs(tx, frame.state.device_id, household, info, rating)
        await tx.flush()
        return self._on_commit(tx)

    async def _green(
        self,
        tx: _Tx,
        device_id: str,
        household: str | None,
        info: HouseholdInfo | None,
        presses: int,
    ) -> None:
        live = await tx.uow.live_ticket(household) if household else None
        if live is not None:
            await self._pressed_again(tx, live, info, presses)
            return
        village = info.unit_at("village") if info else None
        neighbourhood = info.unit_at("neighbourhood") if info else None
        ticket_id = await tx.uow.insert_ticket(
            household, device_id, village, neighbourhood, presses, tx.now
        )
        ticket = await self._ticket(tx.uow, ticket_id)
        policy = self._settings.policy_for(village)
        tx.event(ticket_id, "opened", "box_key", detail=f"presses={presses}")
        tx.indicate(ticket, IndicationKind.TICKET_ACCEPTED)
        self._metrics.tickets.labels("opened").inc()
        if info is None:
            tx.event(ticket_id, "no_household", "system", detail="box has no household")
            log.error("call from a box without a household", extra={"device_id": device_id})
            return
        called = await self._call(tx, ticket, info, policy.responder_chain[0], "ticket_call")
        if not called:
            await self._escalate(tx, ticket, info, policy, "nobody to call")
        for role in policy.informed_at_open:
            for contact in await tx.uow.contacts_for_role(info.unit_chain, role):
                self._notify(tx, ticket, contact, "sms", "ticket_informed", info)
        tx.deadlines.append(
            Deadline(ACCEPT_DEADLINE, str(ticket_id), tx.now + policy.accept_within_s)
        )

    async def _pressed_again(
        self, tx: _Tx, ticket: Ticket, info: HouseholdInfo | None, presses: int
    ) -> None:
        policy = self._settings.policy_for(ticket.village_code)
        count = ticket.press_count + presses
        values: dict[str, object] = {"press_count": count, "last_press_at": tx.now}
        tx.event(ticket.id, "pressed_again", "box_key", detail=f"presses={count}")
        if info is not None and tx.now - ticket.last_notified_at >= policy.renotify_gap_s:
            values["last_notified_at"] = tx.now
            if ticket.status == "open":
                role = policy.responder_chain[
                    min(ticket.responder_step, len(policy.responder_chain) - 1)
                ]
                await self._call(tx, ticket, info, role, "ticket_call_repeat", presses=count)
            elif ticket.owner_contact_id is not None:
                for owner in await tx.uow.contacts_by_id([ticket.owner_contact_id]):
                    self._notify(
                        tx, ticket, owner, "voice", "ticket_call_repeat", info, presses=count
                    )
        await tx.uow.update_ticket(ticket.id, **values)

    async def _red(self, tx: _Tx, household: str | None, info: HouseholdInfo | None) -> None:
        live = await tx.uow.live_ticket(household) if household else None
        if live is None:
            return
        policy = self._settings.policy_for(live.village_code)
        if live.status != "open" or tx.now - live.last_press_at > policy.red_cancel_window_s:
            # Hangs up a call connected to the resident; the ticket stays as it is.
            if live.bridged_call is not None:
                tx.hangups.append(_Hangup(live.id, live.bridged_call))
                await tx.uow.update_ticket(live.id, bridged_call=None)
                tx.event(live.id, "red_key", "box_key", detail="call ended")
            else:
                tx.event(live.id, "red_key", "box_key")
            return
        await tx.uow.update_ticket(live.id, status="cancelled", cancelled_at=tx.now)
        tx.event(live.id, "cancelled", "box_key", detail="red key within the cancel window")
        tx.cleared.append((ACCEPT_DEADLINE, str(live.id)))
        tx.indicate(live, IndicationKind.CANCELLED)
        self._metrics.tickets.labels("cancelled").inc()
        if info is None:
            return
        # Everyone who was told about the call is told it was cancelled, never left silent.
        notified = await tx.uow.contacts_by_id(await tx.uow.notified_contacts(live.id))
        for contact in notified:
            self._notify(tx, live, contact, "sms", "ticket_cancelled_by_resident", info)

    async def _thumbs(
        self,
        tx: _Tx,
        device_id: str,
        household: str | None,
        info: HouseholdInfo | None,
        rating: str,
    ) -> None:
        ticket = None
        if household is not None:
            window = self._settings.policy_for(info.unit_at("village") if info else None)
            ticket = await tx.uow.latest_unrated(household, tx.now - window.rating_window_s)
        await tx.uow.add_feedback(
            household, device_id, tx.now, rating, ticket.id if ticket else None
        )
        if ticket is None:
            return
        await tx.uow.update_ticket(
            ticket.id,
            status="rated",
            rating=rating,
            rated_at=tx.now,
            review_flag=int(rating == "down"),
        )
        tx.event(ticket.id, f"rated_{rating}", "box_key")
        self._metrics.tickets.labels("rated").inc()
        if rating == "down" and info is not None:
            policy = self._settings.policy_for(ticket.village_code)
            for contact in await tx.uow.contacts_for_role(info.unit_chain, policy.review_role):
                self._notify(tx, ticket, contact, "sms", "ticket_review", info)

    # -- people -------------------------------------------------------------------------

    async def accept(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> AcceptResult:
        """The first person to accept owns the ticket; the others are told who did."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now())
            ticket = await self._ticket(uow, ticket_id)
            if not await uow.claim_ticket(ticket_id, contact_id, tx.now):
                if ticket.owner_contact_id is None:
                    raise TicketError(f"ticket {ticket_id} is {ticket.status}, not open")
                tx.event(ticket_id, "accept_too_late", channel, contact_id)
                await tx.flush()
                return AcceptResult(won=False, owner_contact_id=ticket.owner_contact_id)
            policy = self._settings.policy_for(ticket.village_code)
            tx.event(ticket_id, "accepted", channel, contact_id)
            tx.cleared.append((ACCEPT_DEADLINE, str(ticket_id)))
            tx.deadlines.append(
                Deadline(ARRIVE_DEADLINE, str(ticket_id), tx.now + policy.arrive_within_s)
            )
            tx.indicate(ticket, IndicationKind.HELPER_ON_THE_WAY)
            info = await uow.household_info(ticket.household_code or "")
            owner = _first(await uow.contacts_by_id([contact_id]))
            if info is not None and owner is not None:
                others = [c for c in await uow.notified_contacts(ticket_id) if c != contact_id]
                for contact in await uow.contacts_by_id(others):
                    self._notify(tx, ticket, contact, "sms", "ticket_taken", info, owner=owner.name)
                self._send_access(tx, ticket, info, owner, policy)
            await tx.flush()
        self._on_commit(tx)()
        self._metrics.tickets.labels("accepted").inc()
        return AcceptResult(won=True, owner_contact_id=contact_id)

    def _send_access(
        self, tx: _Tx, ticket: Ticket, info: HouseholdInfo, owner: Contact, policy: TicketPolicy
    ) -> None:
        """The key-safe code and health notes, to the one who is going, if the resident agreed."""
        if not info.consent or owner.role not in policy.access_roles:
            return
        if info.key_safe_code is None and info.health_notes is None:
            return
        missing = render("not_recorded", owner.language, {})
        self._notify(
            tx,
            ticket,
            owner,
            "sms",
            "ticket_access",
            info,
            key_safe=info.key_safe_code or missing,
            health=info.health_notes or missing,
        )

    async def start_bridge(self, ticket_id: int, contact_id: int, call_id: str) -> str | None:
        """Connect the owner's call to the resident; the resident's number, or None if none."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now())
            ticket = await self._ticket(uow, ticket_id)
            if ticket.owner_contact_id != contact_id or ticket.status not in (
                "accepted",
                "on_site",
            ):
                return None
            info = await uow.household_info(ticket.household_code or "")
            if info is None or not info.resident_phone:
                return None
            await uow.update_ticket(ticket_id, bridged_call=call_id)
            tx.event(ticket_id, "bridged", "voice_keypress", contact_id)
            await tx.flush()
        return info.resident_phone

    async def end_bridge(self, ticket_id: int, call_id: str) -> None:
        """The call between the responder and the resident has ended."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now())
            ticket = await self._ticket(uow, ticket_id)
            if ticket.bridged_call != call_id:
                return
            await uow.update_ticket(ticket_id, bridged_call=None)
            tx.event(ticket_id, "bridge_ended", "system")
            await tx.flush()

    async def call_unanswered(
        self, uow: UnitOfWork, ticket_id: int, contact_id: int, now: float
    ) -> OnCommit | None:
        """A responder's call went unanswered, its retry included.

        When nobody at the ticket's current step has answered, the next in the chain is
        called at once instead of waiting for the accept clock.
        """
        ticket = await uow.get_ticket(ticket_id)
        if ticket is None or ticket.status != "open":
            return None
        info = await uow.household_info(ticket.household_code or "")
        if info is None:
            return None
        tx = _Tx(uow, now)
        policy = self._settings.policy_for(ticket.village_code)
        step = min(ticket.responder_step, len(policy.responder_chain) - 1)
        marker = f"step {ticket.responder_step}"
        tx.event(ticket_id, "no_answer", "system", contact_id, detail=marker)
        at_step = {c.id for c in await self._reachable(tx, info, policy.responder_chain[step])}
        if contact_id in at_step:
            unanswered = {
                e.contact_id
                for e in await uow.ticket_events_of(ticket_id, "no_answer")
                if e.detail == marker
            }
            if at_step <= unanswered | {contact_id}:
                await self._escalate(tx, ticket, info, policy, "no answer")
        await tx.flush()
        return self._on_commit(tx)

    async def decline(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> None:
        """The contact cannot go ("pass it on"): the next in the chain is called at once."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now())
            ticket = await self._ticket(uow, ticket_id)
            tx.event(ticket_id, "declined", channel, contact_id)
            if ticket.status == "open":
                info = await uow.household_info(ticket.household_code or "")
                if info is not None:
                    policy = self._settings.policy_for(ticket.village_code)
                    await self._escalate(tx, ticket, info, policy, "declined")
            await tx.flush()
        self._on_commit(tx)()

    async def arrive(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> None:
        """The helper is at the resident's door."""
        await self._move(
            ticket_id,
            contact_id,
            channel,
            ("accepted",),
            "on_site",
            "on_site_at",
            IndicationKind.HELPER_ARRIVED,
            (ARRIVE_DEADLINE,),
        )

    async def resolve(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> None:
        """The matter is settled; the resident may now rate it."""
        await self._move(
            ticket_id,
            contact_id,
            channel,
            ("accepted", "on_site"),
            "resolved",
            "resolved_at",
            IndicationKind.RESOLVED,
            (ARRIVE_DEADLINE, DAY_DEADLINE),
        )

    async def classify(
        self, ticket_id: int, category: Category, contact_id: int, channel: ActionChannel
    ) -> None:
        """Set the kind of matter, which starts its day clock."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now())
            ticket = await self._ticket(uow, ticket_id)
            if ticket.status not in ("open", "accepted", "on_site"):
                raise TicketError(f"ticket {ticket_id} is {ticket.status}; it cannot be classified")
            policy = self._settings.policy_for(ticket.village_code)
            due = tx.now + policy.day_clock_s[category]
            await uow.update_ticket(ticket_id, category=category, day_due_at=due)
            tx.event(ticket_id, "classified", channel, contact_id, detail=category)
            tx.deadlines.append(Deadline(DAY_DEADLINE, str(ticket_id), due))
            await tx.flush()
        self._on_commit(tx)()

    async def _move(
        self,
        ticket_id: int,
        contact_id: int,
        channel: ActionChannel,
        allowed: tuple[str, ...],
        status: str,
        stamp: str,
        indication: IndicationKind,
        clear: tuple[str, ...],
    ) -> None:
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now())
            ticket = await self._ticket(uow, ticket_id)
            if ticket.status not in allowed:
                raise TicketError(
                    f"ticket {ticket_id} is {ticket.status}; it cannot become {status}"
                )
            await uow.update_ticket(ticket_id, status=status, **{stamp: tx.now})
            tx.event(ticket_id, status, channel, contact_id)
            tx.cleared.extend((kind, str(ticket_id)) for kind in clear)
            tx.indicate(ticket, indication)
            await tx.flush()
        self._on_commit(tx)()
        self._metrics.tickets.labels(status).inc()

    # -- clocks -------------------------------------------------------------------------

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        """Escalate tickets whose accept, arrive or day clock ran out."""
        tx = _Tx(uow, now)
        for deadline in deadlines:
            ticket = await uow.get_ticket(int(deadline.subject))
            if ticket is None:
                continue
            tx.now = deadline.due_at
            info = await uow.household_info(ticket.household_code or "")
            if info is None:
                continue
            policy = self._settings.policy_for(ticket.village_code)
            if deadline.kind == ACCEPT_DEADLINE and ticket.status == "open":
                minutes = f"{policy.accept_within_s / 60:.0f}"
                await self._escalate(tx, ticket, info, policy, f"not accepted in {minutes} min")
            elif deadline.kind == ARRIVE_DEADLINE and ticket.status == "accepted":
                await self._not_arrived(tx, ticket, info, policy)
            elif deadline.kind == DAY_DEADLINE and ticket.status in ("open", "accepted", "on_site"):
                await self._day_overdue(tx, ticket, info, policy)
        await tx.flush()
        return self._on_commit(tx)

    async def _escalate(
        self, tx: _Tx, ticket: Ticket, info: HouseholdInfo, policy: TicketPolicy, why: str
    ) -> None:
        chain = policy.responder_chain
        step = ticket.responder_step + 1
        minutes = f"{policy.accept_within_s / 60:.0f}"
        while step < len(chain):
            if await self._call(tx, ticket, info, chain[step], "ticket_escalated", minutes=minutes):
                break
            step += 1
        if step >= len(chain):
            tx.event(ticket.id, "escalation_exhausted", "system", detail=why)
            self._metrics.tickets.labels("escalation_exhausted").inc()
            return
        if ticket.responder_step == 0:
            # The first one is called again, once.
            await self._call(
                tx,
                ticket,
                info,
                chain[0],
                "ticket_call_repeat",
                channels=("voice",),
                presses=ticket.press_count,
            )
        await tx.uow.update_ticket(
            ticket.id, responder_step=step, escalated=1, last_notified_at=tx.now
        )
        tx.event(ticket.id, "escalated", "system", detail=f"{chain[step]}: {why}")
        tx.deadlines.append(
            Deadline(ACCEPT_DEADLINE, str(ticket.id), tx.now + policy.accept_within_s)
        )
        self._metrics.tickets.labels("escalated").inc()

    async def _not_arrived(
        self, tx: _Tx, ticket: Ticket, info: HouseholdInfo, policy: TicketPolicy
    ) -> None:
        chain = policy.responder_chain
        owner = _first(await tx.uow.contacts_by_id([ticket.owner_contact_id or -1]))
        above = chain.index(owner.role) + 1 if owner and owner.role in chain else 1
        minutes = f"{policy.arrive_within_s / 60:.0f}"
        for role in chain[above:]:
            contacts = await self._reachable(tx, info, role)
            for contact in contacts:
                self._notify(
                    tx,
                    ticket,
                    contact,
                    "voice",
                    "ticket_not_arrived",
                    info,
                    owner=owner.name if owner else "-",
                    minutes=minutes,
                )
                self._notify(
                    tx,
                    ticket,
                    contact,
                    "sms",
                    "ticket_not_arrived",
                    info,
                    owner=owner.name if owner else "-",
                    minutes=minutes,
                )
            if contacts:
                tx.event(ticket.id, "escalated", "system", detail=f"{role}: not arrived")
                break
        await tx.uow.update_ticket(ticket.id, escalated=1)
        self._metrics.tickets.labels("escalated").inc()

    async def _day_overdue(
        self, tx: _Tx, ticket: Ticket, info: HouseholdInfo, policy: TicketPolicy
    ) -> None:
        level = min(ticket.escalation_level + 1, len(policy.day_chain) - 1)
        role = policy.day_chain[level]
        for contact in await tx.uow.contacts_for_role(info.unit_chain, role):
            self._notify(tx, ticket, contact, "sms", "ticket_overdue", info)
        assert ticket.category is not None
        due = tx.now + policy.day_clock_s[ticket.category]
        await tx.uow.update_ticket(ticket.id, escalation_level=level, escalated=1, day_due_at=due)
        tx.event(ticket.id, "overdue", "system", detail=f"{ticket.category}: told {role}")
        tx.deadlines.append(Deadline(DAY_DEADLINE, str(ticket.id), due))
        self._metrics.tickets.labels("overdue").inc()

    # -- helpers ------------------------------------------------------------------------

    async def _call(
        self,
        tx: _Tx,
        ticket: Ticket,
        info: HouseholdInfo,
        role: ResponderRole,
        template: str,
        channels: tuple[str, ...] = ("voice", "sms"),
        **params: object,
    ) -> bool:
        """Notify everyone in `role` for the household; False if there is nobody reachable."""
        contacts = await self._reachable(tx, info, role)
        for contact in contacts:
            for channel in channels:
                self._notify(tx, ticket, contact, channel, template, info, **params)
        return bool(contacts)

    async def _reachable(self, tx: _Tx, info: HouseholdInfo, role: ResponderRole) -> list[Contact]:
        """Contacts in `role` for the household with a good number, within their hours now."""
        local = datetime.fromtimestamp(tx.now, self._zone)
        minute = local.hour * 60 + local.minute
        return [
            c
            for c in await tx.uow.contacts_for_role(info.unit_chain, role)
            if not c.bad_number and c.available_at(minute)
        ]

    def _notify(
        self,
        tx: _Tx,
        ticket: Ticket,
        contact: Contact,
        channel: str,
        template: str,
        info: HouseholdInfo,
        **params: object,
    ) -> None:
        values = {"resident": info.resident_name, "place": info.place, "ticket": str(ticket.id)}
        values.update({k: str(v) for k, v in params.items()})
        tx.notifications.append(
            Notification(
                channel="voice" if channel == "voice" else "sms",
                recipient=contact.phone,
                template=template,
                params=values,
                language=contact.language,
                contact_id=contact.id,
                ticket_id=ticket.id,
                priority=URGENT if template in _URGENT_TEMPLATES else NORMAL,
            )
        )

    async def _ticket(self, uow: UnitOfWork, ticket_id: int) -> Ticket:
        ticket = await uow.get_ticket(ticket_id)
        if ticket is None:
            raise TicketError(f"no ticket {ticket_id}")
        return ticket

    def _on_commit(self, tx: _Tx) -> Callable[[], None]:
        def after() -> None:
            if tx.indications and self._indications_committed is not None:
                self._indications_committed()
            for hangup in tx.hangups:
                self._outgoing.put_nowait(hangup)
            if tx.deadlines:
                self._scheduler.notify(min(d.due_at for d in tx.deadlines))
            if tx.notifications and self._notifications_committed is not None:
                self._notifications_committed()

        return after

    async def run(self) -> None:
        """End bridged calls as tickets change, until cancelled."""
        while True:
            await self._hang_up(await self._outgoing.get())

    async def _hang_up(self, hangup: _Hangup) -> None:
        if self._calls is None:
            return
        try:
            # Bounded: later hang-ups wait behind it in the same queue.
            async with asyncio.timeout(HANGUP_TIMEOUT_S):
                await self._calls.end_call(hangup.call_id)
        except (ProviderError, OSError, TimeoutError) as exc:
            # The responder can still hang up; the ticket is unchanged either way.
            log.warning(
                "could not end the call", extra={"ticket": hangup.ticket_id, "error": str(exc)}
            )
            self._metrics.tickets.labels("hangup_failed").inc()
        else:
            self._metrics.tickets.labels("call_ended_by_red_key").inc()


def _first(contacts: list[Contact]) -> Contact | None:
    return contacts[0] if contacts else None
