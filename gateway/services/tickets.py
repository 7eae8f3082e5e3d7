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
from alerts.templates import LINK_VARIANTS
from firmware_protocol import Indication, IndicationKind, Key, KeyEvent
from firmware_protocol.indications import ARE_YOU_OK_ANSWER_S, answers_are_you_ok, indication
from gateway.clock import Clock
from gateway.config import TicketSettings
from gateway.domain.devices import DeviceRecord
from gateway.domain.grid import Contact, HouseholdInfo, found_by_unit
from gateway.domain.tickets import (
    Accept,
    AcceptResult,
    ActionChannel,
    AllClear,
    Arrive,
    BoxPress,
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
    Label,
    Note,
    Notify,
    Open,
    OpenAlarm,
    Outcome,
    PressGreen,
    PressRed,
    Rating,
    Reassign,
    Resolve,
    ResponderRole,
    StartBridge,
    Thumbs,
    Ticket,
    TicketConflictError,
    TicketError,
    TicketEvent,
    TicketKind,
    TicketStatus,
    decide,
    new_ticket,
    opens_new_ticket,
)
from gateway.errors import StoreCorruptError, StoreUnavailableError
from gateway.ingest.pipeline import AcceptedFrame, OnCommit
from gateway.metrics import GatewayMetrics
from gateway.scheduler import DeadlineScheduler
from gateway.services.links import ResponderLinks
from gateway.store.ports import Deadline, Feedback, Store, StoredKeyPress, UnitOfWork

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

KEYS_IN_DEVICE_ORDER = 32
"""A green press looks at most this many of its device's later key events: a box queues at
most 32 frames (docs/protocol.md section 6), so no more can have overtaken it."""

ACCEPT_DEADLINE = ClockKind.ACCEPT.value
ARRIVE_DEADLINE = ClockKind.ARRIVE.value
DAY_DEADLINE = ClockKind.DAY.value
DEADLINE_KINDS = tuple(kind.value for kind in ClockKind)
HANGUP_TIMEOUT_S = 10.0

NOTHING_TO_RATE_REF = 0
"""The ticket reference of a nothing-to-rate indication (no ticket)."""
NO_TICKET_REF = 0
"""The ticket reference of an indication about no ticket (a press that became none, an answer)."""


def box_indication(item: Indicate) -> Indication:
    """The frame that tells the box: the kind with its LED pattern and voice prompt.

    Both come from the one table of what boxes say (`firmware_protocol.indications`).
    """
    return indication(item.kind, item.ticket_id, item.role)


class CallAlarms(Protocol):
    """Told of a press that reached nobody; writes the alarm in the same transaction."""

    async def call_not_ticketed(
        self,
        uow: UnitOfWork,
        device: DeviceRecord,
        household: HouseholdInfo | None,
        at: float,
        error: BaseException | None = None,
        *,
        green: bool = True,
    ) -> OnCommit:
        """Record the alarm and tell whom it may; returns what to do once committed."""
        ...


class ThumbsClaims(Protocol):
    """The water watch, asked whether a thumbs-up press is its own before it is a rating."""

    async def claims_thumbs_up(
        self, uow: UnitOfWork, household: str, at: float, *, long_press: bool = False
    ) -> IndicationKind | None:
        """What the box is told if the press is the watch's; else None.

        A thumbs-up answers "are you OK?"; a long one marks the home away, or back.
        """
        ...

    @property
    def answer_window_s(self) -> float:
        """How long after "are you OK?" a thumbs-up is its answer (one figure everywhere)."""
        ...


class CallControl(Protocol):
    """Ends a call in progress (the provider's side of the red key)."""

    async def end_call(self, provider_id: str) -> None:
        """Hang up the call."""
        ...


class _Tx:
    """What one transaction does to tickets, and what to do once it has committed."""

    def __init__(self, uow: UnitOfWork, now: float, links: ResponderLinks | None = None) -> None:
        self.uow = uow
        self.now = now
        self.links = links
        self.events: list[TicketEvent] = []
        self.notifications: list[Notification] = []
        self.deadlines: list[Deadline] = []
        self.cleared: list[tuple[str, str]] = []
        self.indications: list[Indicate] = []
        self.hangups: list[HangUp] = []
        self.counts: list[str] = []
        self.after: list[Callable[[], None]] = []

    def add(self, decision: Decision) -> None:
        """Take a decision's effects (its ticket is saved already)."""
        subject = str(decision.ticket.id)
        self.events.extend(decision.events)
        self.notifications.extend(
            _notification(n, self.links, self.now) for n in decision.notifications
        )
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


def _notification(n: Notify, links: ResponderLinks | None, now: float) -> Notification:
    """The outbox row for a Notify effect; details not recorded say so in its language.

    A message to the one who has a ticket carries their signed link where links are made
    (its `_link` variant); otherwise the variant without one.
    """
    missing = render("not_recorded", n.language, {})
    params = {k: missing if v is None else v for k, v in n.params.items()}
    template = n.template
    if links is not None and template in LINK_VARIANTS:
        template = LINK_VARIANTS[template]
        params["link"] = links.url(n.ticket_id, n.contact_id, now)
    return Notification(
        channel=n.channel,
        recipient=n.recipient,
        template=template,
        params=params,
        language=n.language,
        contact_id=n.contact_id,
        ticket_id=n.ticket_id,
        priority=URGENT if n.urgent else NORMAL,
    )


def _red_within(pressed: tuple[int, float], red: StoredKeyPress, window_s: float) -> bool:
    """Whether a red key came within `window_s` after the green press (device time, arrival).

    By the frames' own timestamps when both box clocks were set; a red stamped before the
    press (it was renumbered after a nack) came before it and cancels nothing. Otherwise by
    their arrival times, either way round.
    """
    device_time, received_at = pressed
    if device_time and red.device_time:
        return 0 <= red.device_time - device_time <= window_s
    return abs(red.received_at - received_at) <= window_s


def _known(contact_id: int | None) -> tuple[int, ...]:
    return () if contact_id is None else (contact_id,)


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
        *,
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
        self._alarms: CallAlarms | None = None
        self._thumbs_claims: ThumbsClaims | None = None

    def set_thumbs_claims(self, claims: ThumbsClaims) -> None:
        """Let the water watch take a thumbs-up that answers it before it rates a ticket."""
        self._thumbs_claims = claims

    def set_call_alarms(self, alarms: CallAlarms) -> None:
        """Raise an operator alarm for every call that reached nobody or could not be stored."""
        self._alarms = alarms

    # -- the box ----------------------------------------------------------------------

    async def stage(self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]) -> OnCommit | None:
        """Turn the batch's key presses into ticket changes inside the ingest transaction.

        Each press is written in a savepoint of its own: one that cannot be turned into a
        ticket (a store constraint, a rule that raises) is undone alone and handed to the
        call alarms, so its frame and the rest of the batch are still committed and acked.
        A failing store is not such a press: it fails the batch, which the pipeline retries.
        """
        # Keys are a call box's: a key event from any other kind never becomes a ticket (the
        # pipeline refuses it already, gateway.ingest.kinds; this holds whatever the caller).
        presses = [
            f
            for f in frames
            if isinstance(f.envelope.message, KeyEvent) and f.state.record.kind == "call_box"
        ]
        if not presses:
            return None
        done: list[_Tx] = []
        for frame in sorted(presses, key=lambda f: (f.state.device_id, f.envelope.position)):
            tx = _Tx(uow, frame.inbound.received_at, self._links)
            try:
                async with uow.savepoint():
                    await self._press(tx, frame)
                    await tx.flush()
                    done.extend(await self._in_device_order(uow, frame, presses))
            except (StoreUnavailableError, StoreCorruptError, OSError):
                raise
            except Exception as exc:
                if self._alarms is None:
                    raise
                tx = _Tx(uow, frame.inbound.received_at, self._links)
                message = frame.envelope.message
                assert isinstance(message, KeyEvent)
                household = frame.state.record.household_code
                info = await uow.grid.household_info(household) if household else None
                green = message.key == Key.GREEN_CALL
                tx.after.append(
                    await self._alarms.call_not_ticketed(
                        uow, frame.state.record, info, tx.now, exc, green=green
                    )
                )
                if green:
                    await self._tell_nobody_reached(tx, frame.state.device_id)
            done.append(tx)
        hooks = [self._on_commit(tx) for tx in done]

        def after() -> None:
            for hook in hooks:
                hook()

        return after

    async def _tell_nobody_reached(self, tx: _Tx, device_id: str) -> None:
        """A green press that became no ticket: the box hears that nobody could be reached."""
        tx.indications.append(Indicate(device_id, NO_TICKET_REF, IndicationKind.NOBODY_REACHED))
        try:
            async with tx.uow.savepoint():
                await tx.flush()
        except (StoreUnavailableError, StoreCorruptError, OSError):
            raise
        except Exception:
            # The alarm is written; the box only misses its words (and is acked all the same).
            tx.indications.clear()
            log.exception("could not tell the box that nobody was reached")

    async def _press(self, tx: _Tx, frame: AcceptedFrame) -> None:
        """One key press: a call, a hang-up or a rating."""
        message = frame.envelope.message
        assert isinstance(message, KeyEvent)
        uow = tx.uow
        device_id = frame.state.device_id
        # Read in the transaction: a move made by another process counts from this press.
        current = await uow.devices.get(device_id)
        record = current if current is not None else frame.state.record
        household = record.household_code
        info = await uow.grid.household_info(household) if household else None
        press = BoxPress(device_id, frame.envelope.position, frame.envelope.timestamp)
        if message.key == Key.GREEN_CALL:
            if message.long_press and await self._arrival_proof(tx, household, info):
                return
            await self._green(tx, device_id, household, info, message.press_count, press)
            if info is None and self._alarms is not None:
                tx.after.append(await self._alarms.call_not_ticketed(uow, record, None, tx.now))
        elif message.key == Key.RED_HANGUP:
            live = await uow.tickets.live(household) if household else None
            if live is not None:
                await self._decide(tx, live, PressRed(press), info)
        else:
            rating: Rating = "up" if message.key == Key.THUMBS_UP else "down"
            if rating == "up" and household and self._thumbs_claims is not None:
                said = await self._thumbs_claims.claims_thumbs_up(
                    uow, household, tx.now, long_press=message.long_press
                )
                if said is not None:
                    # One press, one meaning: the watch's answer is not also a rating.
                    tx.indications.append(Indicate(device_id, NO_TICKET_REF, said))
                    tx.counts.append("water_watch_thumbs_up")
                    return
            await self._thumbs(tx, device_id, household, info, rating)

    async def _in_device_order(
        self, uow: UnitOfWork, frame: AcceptedFrame, batch: Sequence[AcceptedFrame]
    ) -> list[_Tx]:
        """A red key that overtook this green press takes effect after it, as the box sent them.

        Called once the press's effects are written. If it was a green press and left its
        household's ticket OPEN, the device's key events stored after it in the device's
        order (committed by an earlier batch: they arrived first) are walked in that order:
        a later green press moves the reference time; the first red key ends the walk and,
        when it came within the ticket's `red_cancel_window_s` of the reference press, is
        applied now (PressRed): the ticket is cancelled exactly as if the red had arrived
        in order. The window is measured on the frames' own timestamps, or on their arrival
        times when either box clock was not set (timestamp 0). A frame of this batch ends
        the walk (it takes effect next, in order). Thumbs presses are passed over: they
        rate only a resolved ticket, which no green press makes, so one that arrived early
        did what it would have done in order. Returns the transaction of the late red, if
        any; a red that cannot be applied is logged and leaves the ticket open.
        """
        message = frame.envelope.message
        assert isinstance(message, KeyEvent)
        if message.key != Key.GREEN_CALL:
            return []
        device_id = frame.state.device_id
        current = await uow.devices.get(device_id)
        household = (current if current is not None else frame.state.record).household_code
        live = await uow.tickets.live(household) if household else None
        if live is None or live.status != TicketStatus.OPEN:
            return []
        this_batch = {f.envelope.position for f in batch if f.state.device_id == device_id}
        pressed = (frame.envelope.timestamp, frame.inbound.received_at)
        later = await uow.devices.key_events_after(
            device_id, frame.envelope.position, KEYS_IN_DEVICE_ORDER
        )
        red = None
        for press in later:
            if press.position in this_batch:
                return []
            if press.key == Key.GREEN_CALL:
                pressed = (press.device_time, press.received_at)
            elif press.key == Key.RED_HANGUP:
                red = press
                break
        if red is None or not _red_within(pressed, red, live.rules.red_cancel_window_s):
            return []
        tx = _Tx(uow, frame.inbound.received_at, self._links)
        try:
            async with uow.savepoint():
                info = await uow.grid.household_info(household) if household else None
                # Placed and timed by the walk above: taken as if it arrived with this press.
                await self._decide(tx, live, PressRed(), info)
                await tx.flush()
        except (StoreUnavailableError, StoreCorruptError, OSError):
            raise
        except Exception:
            log.exception(
                "a red key that overtook its green press could not be applied",
                extra={"device": device_id, "ticket": live.id},
            )
            self._metrics.tickets.labels("red_key_out_of_order_failed").inc()
            return []
        log.info(
            "a red key that overtook its green press took effect after it",
            extra={"device": device_id, "ticket": live.id, "position": red.position},
        )
        tx.counts.append("red_key_out_of_order")
        return [tx]

    async def _arrival_proof(
        self, tx: _Tx, household: str | None, info: HouseholdInfo | None
    ) -> bool:
        """A long green press while the household's ticket is accepted: the helper is here.

        False (the press is a call like any other) when no ticket of the household is
        accepted.
        """
        live = await tx.uow.tickets.live(household) if household else None
        if live is None or live.status != TicketStatus.ACCEPTED:
            return False
        await self._decide(tx, live, Arrive(live.owner_contact_id, "box_key"), info)
        return True

    async def _thumbs(
        self,
        tx: _Tx,
        device_id: str,
        household: str | None,
        info: HouseholdInfo | None,
        rating: Rating,
    ) -> None:
        """Answer "are you OK?", or rate the household's resolved ticket, or hear there is none.

        A thumbs-up answers "are you OK?" when that is the last question the box was asked
        (its last delivered indication among "are you OK?", "resolved, please rate" and
        "answer noted") and it comes within the answer window of the question (the water
        watch's `answer_window_s`, else ARE_YOU_OK_ANSWER_S). The answer
        is stored as the ANSWER_NOTED indication row (the press itself is the device event)
        and counted as tickets outcome "are_you_ok_answered".
        """
        if rating == "up" and await self._answers_are_you_ok(device_id, tx.now):
            tx.indications.append(Indicate(device_id, NO_TICKET_REF, IndicationKind.ANSWER_NOTED))
            tx.counts.append("are_you_ok_answered")
            return
        unrated = await tx.uow.tickets.latest_unrated(household) if household else None
        if unrated is None:
            tx.indications.append(
                Indicate(device_id, NOTHING_TO_RATE_REF, IndicationKind.NOTHING_TO_RATE)
            )
            tx.counts.append("nothing_to_rate")
            return
        decision = await self._decide(tx, unrated, Thumbs(rating), info)
        if decision.ticket.status == TicketStatus.RATED:
            await tx.uow.tickets.add_feedback(
                Feedback(household, device_id, tx.now, rating, unrated.id)
            )

    async def _answers_are_you_ok(self, device_id: str, at: float) -> bool:
        questions = (
            IndicationKind.ARE_YOU_OK,
            IndicationKind.RESOLVED,
            IndicationKind.ANSWER_NOTED,
        )
        for record in reversed(await self._store.indications.all(device_id)):
            if record.status == "delivered" and record.indication.kind in questions:
                window = (
                    self._thumbs_claims.answer_window_s
                    if self._thumbs_claims is not None
                    else ARE_YOU_OK_ANSWER_S
                )
                return record.indication.kind == IndicationKind.ARE_YOU_OK and answers_are_you_ok(
                    record.created_at, at, window
                )
        return False

    async def _green(
        self,
        tx: _Tx,
        device_id: str,
        household: str | None,
        info: HouseholdInfo | None,
        presses: int,
        press: BoxPress,
    ) -> None:
        live = await tx.uow.tickets.live(household) if household else None
        village = info.unit_at("village") if info else None
        policy = self._settings.policy_for(village)
        if live is not None and not opens_new_ticket(live, tx.now, policy.new_call_after_on_site_s):
            await self._decide(tx, live, PressGreen(presses, press), info)
            return
        neighbourhood = info.unit_at("neighbourhood") if info else None
        rules = policy.rules()
        # A household that does not exist is no household: the call is recorded on its box
        # (and raised as an alarm by the caller), never failed on the foreign key.
        known = household if info is not None else None
        draft = new_ticket(known, device_id, village, neighbourhood, presses, rules, tx.now)
        ticket = replace(draft, id=await tx.uow.tickets.insert(draft))
        await self._decide(tx, ticket, Open(presses, press), info)

    # -- people -------------------------------------------------------------------------

    async def accept(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> AcceptResult:
        """The first person to accept owns the ticket; the others are told who did."""
        decision = await self._act(ticket_id, Accept(contact_id, channel), contact_id)
        assert decision.accept is not None
        return decision.accept

    async def decline(self, ticket_id: int, contact_id: int, channel: ActionChannel) -> None:
        """The contact cannot go ("pass it on"): the next in the chain is called at once."""
        await self._act(ticket_id, Decline(contact_id, channel), contact_id)

    async def arrive(self, ticket_id: int, contact_id: int | None, channel: ActionChannel) -> None:
        """The helper is at the resident's door (contact None: an operator recorded it)."""
        await self._act(ticket_id, Arrive(contact_id, channel), *_known(contact_id))

    async def resolve(
        self,
        ticket_id: int,
        contact_id: int | None,
        channel: ActionChannel,
        category: Category | None = None,
        note: str | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        """The matter is settled (perhaps with its kind, a note and what it turned out to be)."""
        command = Resolve(contact_id, channel, category, note, outcome)
        await self._act(ticket_id, command, *_known(contact_id))

    async def label(
        self, ticket_id: int, outcome: Outcome, contact_id: int | None, channel: ActionChannel
    ) -> None:
        """Record what a resolved ticket turned out to be (real, or a false alarm and why)."""
        await self._act(ticket_id, Label(outcome, contact_id, channel), *_known(contact_id))

    # -- the water watch's alarms -------------------------------------------------------

    async def open_alarm(
        self,
        uow: UnitOfWork,
        household: str,
        kind: TicketKind,
        params: dict[str, str],
        at: float,
    ) -> OnCommit | None:
        """Open an alarm ticket of `kind` for the household inside the caller's transaction.

        Its chain starts with the community worker (grid_worker) and goes on along the
        village's own chain; the family is called with the first step. None when the
        household has such an alarm live already (it is not raised twice).
        """
        if await uow.tickets.live_of_kind(household, kind) is not None:
            return None
        info = await uow.grid.household_info(household)
        if info is None:
            return None
        village = info.unit_at("village")
        base = self._settings.policy_for(village).rules()
        first: ResponderRole = "grid_worker"
        chain = (first, *(r for r in base.responder_chain if r != first))
        rules = replace(base, responder_chain=chain, informed_at_open=())
        neighbourhood = info.unit_at("neighbourhood")
        draft = new_ticket(household, None, village, neighbourhood, 0, rules, at, kind)
        ticket = replace(draft, id=await uow.tickets.insert(draft))
        tx = _Tx(uow, at, self._links)
        await self._decide(tx, ticket, OpenAlarm(params), info)
        await tx.flush()
        return self._on_commit(tx)

    async def all_clear(
        self,
        uow: UnitOfWork,
        household: str,
        kind: TicketKind,
        params: dict[str, str],
        at: float,
    ) -> OnCommit | None:
        """Resolve the household's live alarm of `kind` as the system; everyone told hears.

        None when there is no live alarm of that kind (someone resolved it already).
        """
        live = await uow.tickets.live_of_kind(household, kind)
        if live is None:
            return None
        tx = _Tx(uow, at, self._links)
        info = await uow.grid.household_info(household)
        await self._decide(tx, live, AllClear(params), info)
        await tx.flush()
        return self._on_commit(tx)

    async def classify(
        self, ticket_id: int, category: Category, contact_id: int | None, channel: ActionChannel
    ) -> None:
        """Set the kind of matter, which starts its day clock."""
        await self._act(ticket_id, Classify(category, contact_id, channel), *_known(contact_id))

    async def note(
        self, ticket_id: int, contact_id: int | None, channel: ActionChannel, text: str
    ) -> None:
        """Add a short note to the ticket's record."""
        await self._act(ticket_id, Note(text, contact_id, channel), *_known(contact_id))

    async def reassign(
        self,
        ticket_id: int,
        to_contact_id: int,
        by_contact_id: int | None,
        channel: ActionChannel,
    ) -> None:
        """Hand the ticket to another person, who is called and told; the old owner is told."""
        command = Reassign(to_contact_id, by_contact_id, channel)
        await self._act(ticket_id, command, to_contact_id, *_known(by_contact_id))

    async def start_bridge(self, ticket_id: int, contact_id: int, call_id: str) -> str | None:
        """Connect the owner's call to the resident; the resident's number, or None if none."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now(), self._links)
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
        tx = _Tx(uow, now, self._links)
        info = await self._household(uow, ticket)
        await self._decide(tx, ticket, CallUnanswered(contact_id), info, (contact_id,))
        await tx.flush()
        return self._on_commit(tx)

    async def _act(self, ticket_id: int, command: Command, *actors: int) -> Decision:
        """One person's action on one ticket, in its own transaction."""
        async with self._store.transaction() as uow:
            tx = _Tx(uow, self._clock.now(), self._links)
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
        tx = _Tx(uow, now, self._links)
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
            roles = sorted(ticket.rules.roles)
            by_unit = await uow.grid.unit_contacts_by_role(
                household.unit_chain, [role for role in roles if found_by_unit(role)]
            )
            by_role = {role: by_unit.get(role, []) for role in roles}
            by_role["family"] = [
                c for c in await uow.grid.household_contacts(household.code) if c.role == "family"
            ]
        notified = await uow.outbox.notified_contacts(ticket.id)
        ids = {*notified, *actors}
        if ticket.owner_contact_id is not None:
            ids.add(ticket.owner_contact_id)
        people = {c.id: c for c in await uow.grid.contacts_by_id(sorted(ids))}
        family_events = frozenset(self._settings.policy_for(ticket.village_code).family_events)
        return Context(household, Directory(by_role, people, notified), self._zone, family_events)

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
            for hook in tx.after:
                hook()

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
