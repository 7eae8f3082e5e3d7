"""Tickets "呼叫书记必到", the application side: load, decide, store the effects, act after commit.

The rules live in gateway.domain.tickets. Here each key press, person's action or clock is
turned into a command; the ticket and the people it needs are loaded inside the transaction;
the decision's ticket, audit rows, notifications and clocks are written in that same
transaction, box indications included (IndicationSender delivers them); calls to end are handed
over once it has committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol
from zoneinfo import ZoneInfo

from alerts import Notification, render
from alerts.notification import NORMAL, URGENT
from alerts.providers.base import ProviderError
from firmware_protocol import Indication, IndicationKind, Key, KeyEvent, LedPattern
from gateway.clock import Clock
from gateway.config import TicketSettings
from gateway.domain.grid import Contact, HouseholdInfo, found_by_unit
from gateway.domain.tickets import (
    Accept,
    AcceptResult,
    ActionChannel,
    Arrive,
    CallUnanswered,
    Category,
    Classify,
    ClockKind,
    Command,
    Context,
    Decision,
    Decline,
    Directory,
    Due,
    EndBridge,
    HangUp,
    Indicate,
    Notify,
    Open,
    PressGreen,
    PressRed,
    Rating,
    Resolve,
    StartBridge,
    Thumbs,
    Ticket,
    TicketConflictError,
    TicketError,
    TicketEvent,
    TicketStatus,
    decide,
    new_ticket,
)
from gateway.ingest.pipeline import AcceptedFrame, OnCommit
from gateway.metrics import GatewayMetrics
from gateway.scheduler import DeadlineScheduler
from gateway.services.links import ResponderLinks
from gateway.store.ports import Deadline, Feedback, Store, UnitOfWork

__all__ = [
    "ACCEPT_DEADLINE",
    "ARRIVE_DEADLINE",
    "DAY_DEADLINE",
    "DEADLINE_KINDS",
    "AcceptResult",
    "CallControl",
    "TicketError",
    "TicketService",
]

log = logging.getLogger(__name__)

ACCEPT_DEADLINE = ClockKind.ACCEPT.value
ARRIVE_DEADLINE = ClockKind.ARRIVE.value
DAY_DEADLINE = ClockKind.DAY.value
DEADLINE_KINDS = tuple(kind.value for kind in ClockKind)
HANGUP_TIMEOUT_S = 10.0

_INDICATIONS: dict[IndicationKind, tuple[LedPattern, int]] = {
    # LED pattern and the id of the voice prompt stored on the box.
    IndicationKind.TICKET_ACCEPTED: (LedPattern.GREEN_SOLID, 1),
    IndicationKind.HELPER_ON_THE_WAY: (LedPattern.GREEN_BLINK, 2),
    IndicationKind.HELPER_ARRIVED: (LedPattern.GREEN_SOLID, 3),
    IndicationKind.RESOLVED: (LedPattern.GREEN_SOLID, 4),
    IndicationKind.CANCELLED: (LedPattern.RED_SOLID, 6),
}


def box_indication(item: Indicate) -> Indication:
    """The frame that tells the box: the kind with its LED pattern and voice prompt."""
    led, prompt = _INDICATIONS[item.kind]
    return Indication(item.kind, item.ticket_id, led, prompt)


class CallControl(Protocol):
    """Ends a call in progress (the provider's side of the red key)."""

    async def end_call(self, provider_id: str) -> None:
        """Hang up the call."""
        ...


class _Tx:
    """What one transaction does to tickets, and what to do once it has committed."""

    def __init__(self, uow: UnitOfWork, now: float) -> None:
        self.uow = uow
        self.now = now
        self.events: list[TicketEvent] = []
        self.notifications: list[Notification] = []
        self.deadlines: list[Deadline] = []
        self.cleared: list[tuple[str, str]] = []
        self.indications: list[Indicate] = []
        self.hangups: list[HangUp] = []
        self.counts: list[str] = []

    def add(self, decision: Decision) -> None:
        """Take a decision's effects (its ticket is saved already)."""
        subject = str(decision.ticket.id)
        self.events.extend(decision.events)
        self.notifications.extend(_notification(n) for n in decision.notifications)
        self.cleared.extend((clock.value, subject) for clock in decision.cleared)
        self.deadlines.extend(Deadline(c.clock.value, subject, c.due_at) for c in decision.clocks)
        self.indications.extend(decision.indications)
        self.hangups.extend(decision.hangups)
        self.counts.extend(decision.counts)

    async def flush(self) -> None:
        await self.uow.tickets.add_events(self.events)
        await self.uow.outbox.enqueue(self.notifications, self.now)
        await self.uow.deadlines.clear(self.cleared)
        await self.uow.deadlines.set(self.deadlines)
        # Box indications are durable rows; IndicationSender delivers them after the commit.
        await self.uow.indications.add(
            [(item.device_id, box_indication(item)) for item in self.indications], self.now
        )


def _notification(n: Notify) -> Notification:
    """The outbox row for a Notify effect; details not recorded say so in its language."""
    missing = render("not_recorded", n.language, {})
    return Notification(
        channel=n.channel,
        recipient=n.recipient,
        template=n.template,
        params={k: missing if v is None else v for k, v in n.params.items()},
        language=n.language,
        contact_id=n.contact_id,
        ticket_id=n.ticket_id,
        priority=URGENT if n.urgent else NORMAL,
    )


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
        notifications_committed: Callable[[bool], None] | None = None,
        calls: CallControl | None = None,
        links: ResponderLinks | None = None,
    ) -> None:
        self._store = store
        self._links = links
        self._notifications_committed = notifications_committed
        self._clock = clock
        self._settings = settings
        self._zone = ZoneInfo(settings.timezone)
        self._scheduler = scheduler
        self._indications_committed = indications_committed
        self._metrics = metrics
        self._calls = calls
        self._hangups: asyncio.Queue[HangUp] = asyncio.Queue()

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
            device_id = frame.state.device_id
            household = frame.state.record.household_code
            info = await uow.grid.household_info(household) if household else None
            if message.key == Key.GREEN_CALL:
                await self._green(tx, device_id, household, info, message.press_count)
            elif message.key == Key.RED_HANGUP:
                live = await uow.tickets.live(household) if household else None
                if live is not None:
                    await self._decide(tx, live, PressRed(), info)
            else:
                rating: Rating = "up" if message.key == Key.THUMBS_UP else "down"
                unrated = await uow.tickets.latest_unrated(household) if household else None
                linked = None
                if unrated is not None:
                    decision = await self._decide(tx, unrated, Thumbs(rating), info)
                    if decision.ticket.status == TicketStatus.RATED:
                        linked = unrated.id
                await uow.tickets.add_feedback(
                    Feedback(household, device_id, tx.now, rating, linked)
                )
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
        live = await tx.uow.tickets.live(household) if household else None
        if live is not None:
            await self._decide(tx, live, PressGreen(presses), info)
            return
        village = info.unit_at("village") if info else None
        neighbourhood = info.unit_at("neighbourhood") if info else None
        rules = self._settings.rules_for(village)
        draft = new_ticket(household, device_id, village, neighbourhood, presses, rules, tx.now)
        ticket = replace(draft, id=await tx.uow.tickets.insert(draft))
        await self._decide(tx, ticket, Open(presses), info)
        if info is None:
            log.error("call from a box without a household", extra={"device_id": device_id})

    # -- people -------------------------------------------------------------------------

    async def accept(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> AcceptResult:
        """The first person to accept owns the ticket; the others are told who did."""
        decision = await self._act(ticket_id, Accept(contact_id, channel), contact_id)
        assert decision.accept is not None
        return decision.accept

    async def decline(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> None:
        """The contact cannot go ("pass it on"): the next in the chain is called at once."""
        await self._act(ticket_id, Decline(contact_id, channel), contact_id)

    async def arrive(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> None:
        """The helper is at the resident's door."""
        await self._act(ticket_id, Arrive(contact_id, channel), contact_id)

    async def resolve(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> None:
        """The matter is settled; the resident may now rate it."""
        await self._act(ticket_id, Resolve(contact_id, channel), contact_id)

    async def classify(
        self, ticket_id: int, category: Category, contact_id: int, channel: ActionChannel
    ) -> None:
        """Set the kind of matter, which starts its day clock."""
        await self._act(ticket_id, Classify(category, contact_id, channel), contact_id)

    async def reassign(
        self, ticket_id: int, to_contact_id: int, by_contact_id: int | None, channel: ActionChannel
    ) -> None:
        """Hand an accepted or on-site ticket to another responder, who owns it from now on."""
        async with self._store.transaction() as uow:
            now = self._clock.now()
            ticket = await self._ticket(uow, ticket_id)
            if ticket.status not in (TicketStatus.ACCEPTED, TicketStatus.ON_SITE):
                raise TicketError(
                    f"ticket {ticket_id} is {ticket.status}; it cannot be handed over"
                )
            found = await uow.grid.contacts_by_id([to_contact_id])
            if not found or found[0].role == "family" or to_contact_id == ticket.owner_contact_id:
                raise TicketError(f"contact {to_contact_id} cannot take ticket {ticket_id}")
            moved = replace(ticket, owner_contact_id=to_contact_id)
            if not await uow.tickets.save(moved, ticket.status):
                raise TicketConflictError(f"ticket {ticket_id} changed meanwhile; try again")
            detail = f"from {ticket.owner_contact_id} to {to_contact_id}"
            await uow.tickets.add_events(
                [TicketEvent(ticket_id, now, "reassigned", channel, by_contact_id, detail)]
            )

    async def start_bridge(self, ticket_id: int, contact_id: int, call_id: str) -> str | None:
        """Connect the owner's call to the resident; the resident's number, or None if none."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now())
            ticket = await self._ticket(uow, ticket_id)
            info = await self._household(uow, ticket)
            decision = await self._decide(tx, ticket, StartBridge(contact_id, call_id), info)
            await tx.flush()
        return info.resident_phone if info is not None and decision.events else None

    async def end_bridge(self, ticket_id: int, call_id: str) -> None:
        """The call between the responder and the resident has ended."""
        await self._act(ticket_id, EndBridge(call_id))

    async def call_unanswered(
        self, uow: UnitOfWork, ticket_id: int, contact_id: int, now: float
    ) -> OnCommit | None:
        """A responder's call went unanswered, its retry included.

        When nobody at the ticket's current step has answered, the next in the chain is
        called at once instead of waiting for the accept clock.
        """
        ticket = await uow.tickets.get(ticket_id)
        if ticket is None:
            return None
        tx = _Tx(uow, now)
        info = await self._household(uow, ticket)
        await self._decide(tx, ticket, CallUnanswered(contact_id), info, (contact_id,))
        await tx.flush()
        return self._on_commit(tx)

    async def _act(self, ticket_id: int, command: Command, *actors: int) -> Decision:
        """One person's action on one ticket, in its own transaction."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now())
            ticket = await self._ticket(uow, ticket_id)
            info = await self._household(uow, ticket)
            decision = await self._decide(tx, ticket, command, info, actors)
            await tx.flush()
        self._on_commit(tx)()
        return decision

    # -- clocks -------------------------------------------------------------------------

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        """Escalate tickets whose accept, arrive or day clock ran out (at its due time)."""
        tx = _Tx(uow, now)
        for deadline in deadlines:
            ticket = await uow.tickets.get(int(deadline.subject))
            if ticket is None:
                continue
            tx.now = deadline.due_at
            info = await self._household(uow, ticket)
            due = Due(ClockKind(deadline.kind), deadline.due_at)
            await self._decide(tx, ticket, due, info)
        await tx.flush()
        return self._on_commit(tx)

    # -- helpers ------------------------------------------------------------------------

    async def _decide(
        self,
        tx: _Tx,
        ticket: Ticket,
        command: Command,
        household: HouseholdInfo | None,
        actors: Sequence[int] = (),
    ) -> Decision:
        """Load the people the rules need, decide, save the ticket, collect the effects."""
        context = await self._context(tx.uow, ticket, household, actors)
        decision = decide(ticket, command, context, tx.now)
        if decision.ticket != ticket and not await tx.uow.tickets.save(
            decision.ticket, ticket.status
        ):
            raise TicketConflictError(f"ticket {ticket.id} changed meanwhile; try again")
        tx.add(decision)
        return decision

    async def _household(self, uow: UnitOfWork, ticket: Ticket) -> HouseholdInfo | None:
        return (
            await uow.grid.household_info(ticket.household_code) if ticket.household_code else None
        )

    async def _context(
        self,
        uow: UnitOfWork,
        ticket: Ticket,
        household: HouseholdInfo | None,
        actors: Sequence[int],
    ) -> Context:
        """The household and the people the ticket may reach: by role, and by id."""
        by_role: dict[str, list[Contact]] = {}
        if household is not None:
            for role in sorted(ticket.rules.roles):
                by_role[role] = (
                    await uow.grid.unit_contacts(household.unit_chain, role)
                    if found_by_unit(role)
                    else []
                )
        notified = await uow.outbox.notified_contacts(ticket.id)
        ids = {*notified, *actors}
        if ticket.owner_contact_id is not None:
            ids.add(ticket.owner_contact_id)
        people = {c.id: c for c in await uow.grid.contacts_by_id(sorted(ids))}
        return Context(household, Directory(by_role, people, notified), self._zone)

    async def _ticket(self, uow: UnitOfWork, ticket_id: int) -> Ticket:
        ticket = await uow.tickets.get(ticket_id)
        if ticket is None:
            raise TicketError(f"no ticket {ticket_id}")
        return ticket

    def _on_commit(self, tx: _Tx) -> Callable[[], None]:
        def after() -> None:
            # The outbox first: an urgent notification is claimed as soon as it commits.
            if tx.notifications and self._notifications_committed is not None:
                self._notifications_committed(any(n.priority >= URGENT for n in tx.notifications))
            if tx.indications and self._indications_committed is not None:
                self._indications_committed()
            for hangup in tx.hangups:
                self._hangups.put_nowait(hangup)
            if tx.deadlines:
                self._scheduler.notify(min(d.due_at for d in tx.deadlines))
            for outcome in tx.counts:
                self._metrics.tickets.labels(outcome).inc()

        return after

    async def run(self) -> None:
        """End bridged calls as tickets change, until cancelled."""
        while True:
            await self._hang_up(await self._hangups.get())

    async def _hang_up(self, hangup: HangUp) -> None:
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
