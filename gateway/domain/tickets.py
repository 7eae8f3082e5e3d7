"""The rules of "呼叫书记必到" tickets as a pure state machine.

    green ─► open ─accept─► accepted ─arrive─► on_site ─resolve─► resolved ─thumbs─► rated
              │ ▲ more presses merge into the live ticket
              │ └ nobody accepts in time, or nobody at a step answers: the next step is called
              └ red key soon after the press, nobody accepted yet ─► cancelled

`decide(ticket, command, context, now)` returns a `Decision`: the ticket's new state and the
effects to store with it (audit events, notifications, clocks to set or clear, box
indications, calls to end). The escalation chain and every clock are fixed on the ticket
when it opens (`TicketRules`); which step it has reached, and who at that step did not
answer, is its `EscalationCursor`. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Literal, Protocol

from firmware_protocol import IndicationKind
from gateway.errors import GatewayError

ResponderRole = Literal[
    "village_secretary",
    "deputy_secretary",
    "grid_worker",
    "neighbour_chief",
    "group_leader",
    "area_chief",
    "township_duty",
]
Category = Literal["urgent", "ordinary", "hard", "complex"]
ActionChannel = Literal["box_key", "voice_keypress", "dashboard", "api", "system"]
Rating = Literal["up", "down"]
NotifyChannel = Literal["sms", "voice"]


class TicketError(GatewayError):
    """A ticket action that does not fit the ticket's state."""


class TicketConflictError(TicketError):
    """The ticket changed between reading and writing it; the action may be tried again."""


class TicketStatus(enum.StrEnum):
    """Where a ticket stands."""

    OPEN = "open"
    ACCEPTED = "accepted"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    RATED = "rated"
    CANCELLED = "cancelled"


TRANSITIONS: Mapping[TicketStatus, frozenset[TicketStatus]] = {
    TicketStatus.OPEN: frozenset({TicketStatus.ACCEPTED, TicketStatus.CANCELLED}),
    TicketStatus.ACCEPTED: frozenset({TicketStatus.ON_SITE, TicketStatus.RESOLVED}),
    TicketStatus.ON_SITE: frozenset({TicketStatus.RESOLVED}),
    TicketStatus.RESOLVED: frozenset({TicketStatus.RATED}),
    TicketStatus.RATED: frozenset(),
    TicketStatus.CANCELLED: frozenset(),
}
"""The only status changes there are."""

LIVE_STATUSES: tuple[TicketStatus, ...] = (
    TicketStatus.OPEN,
    TicketStatus.ACCEPTED,
    TicketStatus.ON_SITE,
)
"""A household has at most one ticket in these; more presses merge into it."""


class ClockKind(enum.StrEnum):
    """The ticket clocks, as deadline kinds (one of each per ticket at most)."""

    ACCEPT = "ticket_accept"
    ARRIVE = "ticket_arrive"
    DAY = "ticket_day"


# Calls for action go out at once whatever the throttle says; the rest may be merged.
URGENT_TEMPLATES = frozenset(
    {
        "ticket_call",
        "ticket_call_repeat",
        "ticket_escalated",
        "ticket_not_arrived",
        "ticket_cancelled_by_resident",
        "ticket_access",
    }
)


@dataclass(frozen=True, slots=True)
class TicketRules:
    """Who is called in which order and how long each may take, fixed when a ticket opens."""

    responder_chain: tuple[ResponderRole, ...]
    informed_at_open: tuple[ResponderRole, ...]
    day_chain: tuple[ResponderRole, ...]
    review_role: ResponderRole
    access_roles: tuple[ResponderRole, ...]
    accept_within_s: float
    arrive_within_s: float
    renotify_gap_s: float
    red_cancel_window_s: float
    rating_window_s: float
    day_clock_s: Mapping[Category, float]

    @property
    def roles(self) -> frozenset[ResponderRole]:
        """Every role these rules may call or tell."""
        return frozenset(
            {
                *self.responder_chain,
                *self.informed_at_open,
                *self.day_chain,
                self.review_role,
            }
        )


@dataclass(frozen=True, slots=True)
class EscalationCursor:
    """The step of the responder chain being called, and who at it let the call ring out."""

    step: int = 0
    no_answer: frozenset[int] = frozenset()


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
    rating: Rating | None
    review_flag: bool
    rules: TicketRules
    cursor: EscalationCursor = EscalationCursor()
    bridged_call: str | None = None
    """The provider's id of a responder's call while it is connected to the resident."""

    @property
    def responder_step(self) -> int:
        """The step of the responder chain being called."""
        return self.cursor.step


def new_ticket(
    household_code: str | None,
    device_id: str | None,
    village_code: str | None,
    neighbourhood_code: str | None,
    presses: int,
    rules: TicketRules,
    now: float,
) -> Ticket:
    """A ticket about to be opened (id 0 until the store gives it one)."""
    return Ticket(
        id=0,
        household_code=household_code,
        device_id=device_id,
        village_code=village_code,
        neighbourhood_code=neighbourhood_code,
        status=TicketStatus.OPEN,
        category=None,
        press_count=presses,
        escalation_level=0,
        escalated=False,
        owner_contact_id=None,
        opened_at=now,
        last_press_at=now,
        last_notified_at=now,
        accepted_at=None,
        on_site_at=None,
        resolved_at=None,
        rated_at=None,
        cancelled_at=None,
        day_due_at=None,
        rating=None,
        review_flag=False,
        rules=rules,
    )


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """One audit row of a ticket."""

    ticket_id: int
    at: float
    kind: str
    channel: ActionChannel
    contact_id: int | None = None
    detail: str = ""


class Person(Protocol):
    """A contact as the rules see one."""

    @property
    def id(self) -> int:
        """The contact's id."""
        ...

    @property
    def name(self) -> str:
        """Shown to others ("李书记 has taken it")."""
        ...

    @property
    def role(self) -> str:
        """The contact's role in the grid."""
        ...

    @property
    def phone(self) -> str:
        """Where to send."""
        ...

    @property
    def language(self) -> str:
        """The language messages to the contact are written in."""
        ...

    @property
    def bad_number(self) -> bool:
        """The number is known not to work."""
        ...

    def available_at(self, minute_of_day: int) -> bool:
        """Whether the contact can be called at this local minute of the day."""
        ...


class Household(Protocol):
    """The household a ticket is about, as the rules see it."""

    @property
    def resident_name(self) -> str:
        """Who called."""
        ...

    @property
    def place(self) -> str:
        """Where, as people say it."""
        ...

    @property
    def resident_phone(self) -> str | None:
        """The resident's own phone, to which the one who goes may be connected."""
        ...

    @property
    def consent(self) -> bool:
        """The resident agreed that the one who goes may have the key-safe code and notes."""
        ...

    @property
    def key_safe_code(self) -> str | None:
        """The key-safe code, if recorded."""
        ...

    @property
    def health_notes(self) -> str | None:
        """Health notes, if recorded."""
        ...


@dataclass(frozen=True, slots=True)
class Directory:
    """The people a decision may need, looked up before it is made."""

    by_role: Mapping[str, Sequence[Person]] = field(default_factory=dict)
    """For each role, its contacts at the nearest grid unit of the household that has any."""
    people: Mapping[int, Person] = field(default_factory=dict)
    """Contacts by id: at least the ticket's owner, the one acting, and those notified."""
    notified: Sequence[int] = ()
    """Every contact sent something about the ticket so far, by id, ascending."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a decision needs besides the ticket and the command."""

    household: Household | None
    directory: Directory
    zone: tzinfo
    """Contacts' availability hours are in this zone."""


# -- commands ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Open:
    """The green key opened this (new) ticket."""

    presses: int


@dataclass(frozen=True, slots=True)
class PressGreen:
    """The green key again, on the household's live ticket."""

    presses: int


@dataclass(frozen=True, slots=True)
class PressRed:
    """The red key, on the household's live ticket."""


@dataclass(frozen=True, slots=True)
class Thumbs:
    """Thumbs up or down, on the household's latest resolved, unrated ticket."""

    rating: Rating


@dataclass(frozen=True, slots=True)
class Accept:
    """A contact takes the ticket."""

    contact_id: int
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class Decline:
    """A contact cannot go: pass it on."""

    contact_id: int
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class Arrive:
    """The helper is at the door."""

    contact_id: int
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class Resolve:
    """The matter is settled."""

    contact_id: int
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class Classify:
    """The kind of matter, which starts its day clock."""

    category: Category
    contact_id: int
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class CallUnanswered:
    """A responder's call rang out, its retry included."""

    contact_id: int


@dataclass(frozen=True, slots=True)
class StartBridge:
    """The owner's call is being connected to the resident."""

    contact_id: int
    call_id: str


@dataclass(frozen=True, slots=True)
class EndBridge:
    """A bridged call ended."""

    call_id: str


@dataclass(frozen=True, slots=True)
class Due:
    """A ticket clock ran out at `due_at` (perhaps while the gateway was down)."""

    clock: ClockKind
    due_at: float


Command = (
    Open
    | PressGreen
    | PressRed
    | Thumbs
    | Accept
    | Decline
    | Arrive
    | Resolve
    | Classify
    | CallUnanswered
    | StartBridge
    | EndBridge
    | Due
)


# -- effects ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notify:
    """A message to write into the outbox.

    A parameter of None is a detail that was not recorded; it is shown as such in the
    recipient's language.
    """

    ticket_id: int
    contact_id: int
    recipient: str
    language: str
    channel: NotifyChannel
    template: str
    params: Mapping[str, str | None]
    urgent: bool


@dataclass(frozen=True, slots=True)
class SetClock:
    """Start or move one of the ticket's clocks."""

    clock: ClockKind
    due_at: float


@dataclass(frozen=True, slots=True)
class Indicate:
    """Tell the resident at the box how the call stands."""

    device_id: str
    ticket_id: int
    kind: IndicationKind


@dataclass(frozen=True, slots=True)
class HangUp:
    """End a call connected to the resident."""

    ticket_id: int
    call_id: str


@dataclass(frozen=True, slots=True)
class AcceptResult:
    """Who owns the ticket after an accept: the caller, or whoever was first."""

    won: bool
    owner_contact_id: int


@dataclass(frozen=True, slots=True)
class Decision:
    """A ticket's new state and what else is to be stored and done with it."""

    ticket: Ticket
    events: tuple[TicketEvent, ...] = ()
    notifications: tuple[Notify, ...] = ()
    clocks: tuple[SetClock, ...] = ()
    cleared: tuple[ClockKind, ...] = ()
    indications: tuple[Indicate, ...] = ()
    hangups: tuple[HangUp, ...] = ()
    counts: tuple[str, ...] = ()
    """Outcomes to count ("opened", "escalated", ...)."""
    accept: AcceptResult | None = None


def decide(  # noqa: PLR0912 - one branch per command
    ticket: Ticket, command: Command, context: Context, now: float
) -> Decision:
    """Apply one command (or a clock that ran out) to a ticket; raises TicketError if refused."""
    at = command.due_at if isinstance(command, Due) else now
    d = _Decider(ticket, context, at)
    match command:
        case Open(presses):
            d.open(presses)
        case PressGreen(presses):
            d.pressed_again(presses)
        case PressRed():
            d.red()
        case Thumbs(rating):
            d.thumbs(rating)
        case Accept(contact_id, channel):
            d.accept(contact_id, channel)
        case Decline(contact_id, channel):
            d.decline(contact_id, channel)
        case Arrive(contact_id, channel):
            d.move(TicketStatus.ON_SITE, contact_id, channel)
        case Resolve(contact_id, channel):
            d.move(TicketStatus.RESOLVED, contact_id, channel)
        case Classify(category, contact_id, channel):
            d.classify(category, contact_id, channel)
        case CallUnanswered(contact_id):
            d.call_unanswered(contact_id)
        case StartBridge(contact_id, call_id):
            d.start_bridge(contact_id, call_id)
        case EndBridge(call_id):
            d.end_bridge(call_id)
        case Due(clock, _):
            d.due(clock)
    return d.decision()


def can_move(status: TicketStatus, to: TicketStatus) -> bool:
    """Whether the transition table allows `status` to become `to`."""
    return to in TRANSITIONS[status]


_ARRIVED_OR_RESOLVED: Mapping[TicketStatus, tuple[IndicationKind, tuple[ClockKind, ...]]] = {
    TicketStatus.ON_SITE: (IndicationKind.HELPER_ARRIVED, (ClockKind.ARRIVE,)),
    TicketStatus.RESOLVED: (IndicationKind.RESOLVED, (ClockKind.ARRIVE, ClockKind.DAY)),
}


class _Decider:
    """Collects one decision's effects while the rules run."""

    def __init__(self, ticket: Ticket, context: Context, at: float) -> None:
        self.ticket = ticket
        self.rules = ticket.rules
        self.household = context.household
        self.directory = context.directory
        self.zone = context.zone
        self.at = at
        self.events: list[TicketEvent] = []
        self.notifications: list[Notify] = []
        self.clocks: list[SetClock] = []
        self.cleared: list[ClockKind] = []
        self.indications: list[Indicate] = []
        self.hangups: list[HangUp] = []
        self.counts: list[str] = []
        self.accept_result: AcceptResult | None = None

    def decision(self) -> Decision:
        return Decision(
            ticket=self.ticket,
            events=tuple(self.events),
            notifications=tuple(self.notifications),
            clocks=tuple(self.clocks),
            cleared=tuple(self.cleared),
            indications=tuple(self.indications),
            hangups=tuple(self.hangups),
            counts=tuple(self.counts),
            accept=self.accept_result,
        )

    # -- the box --------------------------------------------------------------------------

    def open(self, presses: int) -> None:
        self.event("opened", "box_key", detail=f"presses={presses}")
        self.indicate(IndicationKind.TICKET_ACCEPTED)
        self.counts.append("opened")
        household = self.household
        if household is None:
            self.event("no_household", "system", detail="box has no household")
            return
        if not self.call(household, self.rules.responder_chain[0], "ticket_call"):
            self.escalate(household, "nobody to call")
        for role in self.rules.informed_at_open:
            for person in self.directory.by_role.get(role, ()):
                self.notify(household, person, "sms", "ticket_informed")
        self.set_clock(ClockKind.ACCEPT, self.at + self.rules.accept_within_s)

    def pressed_again(self, presses: int) -> None:
        ticket = self.ticket
        count = ticket.press_count + presses
        self.ticket = replace(ticket, press_count=count, last_press_at=self.at)
        self.event("pressed_again", "box_key", detail=f"presses={count}")
        household = self.household
        if household is None or self.at - ticket.last_notified_at < self.rules.renotify_gap_s:
            return
        self.ticket = replace(self.ticket, last_notified_at=self.at)
        if ticket.status == TicketStatus.OPEN:
            chain = self.rules.responder_chain
            role = chain[min(ticket.cursor.step, len(chain) - 1)]
            self.call(household, role, "ticket_call_repeat", presses=str(count))
        elif ticket.owner_contact_id is not None:
            owner = self.directory.people.get(ticket.owner_contact_id)
            if owner is not None:
                self.notify(household, owner, "voice", "ticket_call_repeat", presses=str(count))

    def red(self) -> None:
        ticket = self.ticket
        if (
            ticket.status != TicketStatus.OPEN
            or self.at - ticket.last_press_at > self.rules.red_cancel_window_s
        ):
            # Hangs up a call connected to the resident; the ticket stays as it is.
            if ticket.bridged_call is not None:
                self.hangups.append(HangUp(ticket.id, ticket.bridged_call))
                self.ticket = replace(ticket, bridged_call=None)
                self.event("red_key", "box_key", detail="call ended")
            else:
                self.event("red_key", "box_key")
            return
        self.move_to(TicketStatus.CANCELLED)
        self.ticket = replace(self.ticket, cancelled_at=self.at)
        self.event("cancelled", "box_key", detail="red key within the cancel window")
        self.cleared.append(ClockKind.ACCEPT)
        self.indicate(IndicationKind.CANCELLED)
        self.counts.append("cancelled")
        household = self.household
        if household is None:
            return
        # Everyone who was told about the call is told it was cancelled, never left silent.
        for person in self.people(self.directory.notified):
            self.notify(household, person, "sms", "ticket_cancelled_by_resident")

    def thumbs(self, rating: Rating) -> None:
        ticket = self.ticket
        if (
            ticket.status != TicketStatus.RESOLVED
            or ticket.resolved_at is None
            or ticket.resolved_at < self.at - self.rules.rating_window_s
        ):
            return
        self.move_to(TicketStatus.RATED)
        self.ticket = replace(
            self.ticket, rating=rating, rated_at=self.at, review_flag=rating == "down"
        )
        self.event(f"rated_{rating}", "box_key")
        self.counts.append("rated")
        if rating == "down" and self.household is not None:
            for person in self.directory.by_role.get(self.rules.review_role, ()):
                self.notify(self.household, person, "sms", "ticket_review")

    # -- people ---------------------------------------------------------------------------

    def accept(self, contact_id: int, channel: ActionChannel) -> None:
        ticket = self.ticket
        if ticket.status != TicketStatus.OPEN:
            if ticket.owner_contact_id is None:
                raise TicketError(f"ticket {ticket.id} is {ticket.status}, not open")
            self.event("accept_too_late", channel, contact_id)
            self.accept_result = AcceptResult(won=False, owner_contact_id=ticket.owner_contact_id)
            return
        self.move_to(TicketStatus.ACCEPTED)
        self.ticket = replace(self.ticket, owner_contact_id=contact_id, accepted_at=self.at)
        self.accept_result = AcceptResult(won=True, owner_contact_id=contact_id)
        self.event("accepted", channel, contact_id)
        self.cleared.append(ClockKind.ACCEPT)
        self.set_clock(ClockKind.ARRIVE, self.at + self.rules.arrive_within_s)
        self.indicate(IndicationKind.HELPER_ON_THE_WAY)
        self.counts.append("accepted")
        household = self.household
        owner = self.directory.people.get(contact_id)
        if household is None or owner is None:
            return
        others = [c for c in self.directory.notified if c != contact_id]
        for person in self.people(others):
            self.notify(household, person, "sms", "ticket_taken", owner=owner.name)
        self.send_access(household, owner)

    def send_access(self, household: Household, owner: Person) -> None:
        """The key-safe code and health notes, to the one who is going, if the resident agreed."""
        if not household.consent or owner.role not in self.rules.access_roles:
            return
        if household.key_safe_code is None and household.health_notes is None:
            return
        self.notify(
            household,
            owner,
            "sms",
            "ticket_access",
            key_safe=household.key_safe_code,
            health=household.health_notes,
        )

    def decline(self, contact_id: int, channel: ActionChannel) -> None:
        self.event("declined", channel, contact_id)
        if self.ticket.status == TicketStatus.OPEN and self.household is not None:
            self.escalate(self.household, "declined")

    def move(self, to: TicketStatus, contact_id: int, channel: ActionChannel) -> None:
        self.move_to(to)
        if to == TicketStatus.ON_SITE:
            self.ticket = replace(self.ticket, on_site_at=self.at)
        else:
            self.ticket = replace(self.ticket, resolved_at=self.at)
        indication, clear = _ARRIVED_OR_RESOLVED[to]
        self.event(to.value, channel, contact_id)
        self.cleared.extend(clear)
        self.indicate(indication)
        self.counts.append(to.value)

    def classify(self, category: Category, contact_id: int, channel: ActionChannel) -> None:
        ticket = self.ticket
        if ticket.status not in LIVE_STATUSES:
            raise TicketError(f"ticket {ticket.id} is {ticket.status}; it cannot be classified")
        due = self.at + self.rules.day_clock_s[category]
        self.ticket = replace(ticket, category=category, day_due_at=due)
        self.event("classified", channel, contact_id, detail=category)
        self.set_clock(ClockKind.DAY, due)

    def call_unanswered(self, contact_id: int) -> None:
        """When nobody at the current step has answered, the next step is called at once."""
        ticket = self.ticket
        household = self.household
        if ticket.status != TicketStatus.OPEN or household is None:
            return
        cursor = ticket.cursor
        chain = self.rules.responder_chain
        self.event("no_answer", "system", contact_id, detail=f"step {cursor.step}")
        unanswered = cursor.no_answer | {contact_id}
        self.ticket = replace(ticket, cursor=replace(cursor, no_answer=unanswered))
        at_step = {p.id for p in self.reachable(chain[min(cursor.step, len(chain) - 1)])}
        if contact_id in at_step and at_step <= unanswered:
            self.escalate(household, "no answer")

    def start_bridge(self, contact_id: int, call_id: str) -> None:
        ticket = self.ticket
        if ticket.owner_contact_id != contact_id or ticket.status not in (
            TicketStatus.ACCEPTED,
            TicketStatus.ON_SITE,
        ):
            return
        if self.household is None or not self.household.resident_phone:
            return
        self.ticket = replace(ticket, bridged_call=call_id)
        self.event("bridged", "voice_keypress", contact_id)

    def end_bridge(self, call_id: str) -> None:
        if self.ticket.bridged_call != call_id:
            return
        self.ticket = replace(self.ticket, bridged_call=None)
        self.event("bridge_ended", "system")

    # -- clocks ---------------------------------------------------------------------------

    def due(self, clock: ClockKind) -> None:
        household = self.household
        status = self.ticket.status
        if household is None:
            return
        if clock == ClockKind.ACCEPT and status == TicketStatus.OPEN:
            self.escalate(household, f"not accepted in {self.rules.accept_within_s / 60:.0f} min")
        elif clock == ClockKind.ARRIVE and status == TicketStatus.ACCEPTED:
            self.not_arrived(household)
        elif clock == ClockKind.DAY and status in LIVE_STATUSES:
            self.day_overdue(household)

    def escalate(self, household: Household, why: str) -> None:
        """Call the next step of the chain that has someone reachable; the first once again."""
        ticket = self.ticket
        chain = self.rules.responder_chain
        step = ticket.cursor.step + 1
        minutes = f"{self.rules.accept_within_s / 60:.0f}"
        while step < len(chain):
            if self.call(household, chain[step], "ticket_escalated", minutes=minutes):
                break
            step += 1
        if step >= len(chain):
            self.event("escalation_exhausted", "system", detail=why)
            self.counts.append("escalation_exhausted")
            return
        if ticket.cursor.step == 0:
            # The first one is called again, once.
            self.call(
                household,
                chain[0],
                "ticket_call_repeat",
                channels=("voice",),
                presses=str(ticket.press_count),
            )
        self.ticket = replace(
            ticket, cursor=EscalationCursor(step), escalated=True, last_notified_at=self.at
        )
        self.event("escalated", "system", detail=f"{chain[step]}: {why}")
        self.set_clock(ClockKind.ACCEPT, self.at + self.rules.accept_within_s)
        self.counts.append("escalated")

    def not_arrived(self, household: Household) -> None:
        ticket = self.ticket
        chain = self.rules.responder_chain
        owner = (
            self.directory.people.get(ticket.owner_contact_id)
            if ticket.owner_contact_id is not None
            else None
        )
        above = chain.index(owner.role) + 1 if owner and owner.role in chain else 1
        minutes = f"{self.rules.arrive_within_s / 60:.0f}"
        for role in chain[above:]:
            people = self.reachable(role)
            for person in people:
                for channel in ("voice", "sms"):
                    self.notify(
                        household,
                        person,
                        channel,
                        "ticket_not_arrived",
                        owner=owner.name if owner else "-",
                        minutes=minutes,
                    )
            if people:
                self.event("escalated", "system", detail=f"{role}: not arrived")
                break
        self.ticket = replace(self.ticket, escalated=True)
        self.counts.append("escalated")

    def day_overdue(self, household: Household) -> None:
        ticket = self.ticket
        if ticket.category is None:
            return  # only classifying a ticket starts its day clock
        day_chain = self.rules.day_chain
        level = min(ticket.escalation_level + 1, len(day_chain) - 1)
        role = day_chain[level]
        for person in self.directory.by_role.get(role, ()):
            self.notify(household, person, "sms", "ticket_overdue")
        due = self.at + self.rules.day_clock_s[ticket.category]
        self.ticket = replace(ticket, escalation_level=level, escalated=True, day_due_at=due)
        self.event("overdue", "system", detail=f"{ticket.category}: told {role}")
        self.set_clock(ClockKind.DAY, due)
        self.counts.append("overdue")

    # -- helpers --------------------------------------------------------------------------

    def move_to(self, to: TicketStatus) -> None:
        ticket = self.ticket
        if not can_move(ticket.status, to):
            raise TicketError(f"ticket {ticket.id} is {ticket.status}; it cannot become {to}")
        self.ticket = replace(ticket, status=to)

    def event(
        self,
        kind: str,
        channel: ActionChannel,
        contact_id: int | None = None,
        detail: str = "",
    ) -> None:
        self.events.append(TicketEvent(self.ticket.id, self.at, kind, channel, contact_id, detail))

    def indicate(self, kind: IndicationKind) -> None:
        if self.ticket.device_id is not None:
            self.indications.append(Indicate(self.ticket.device_id, self.ticket.id, kind))

    def set_clock(self, clock: ClockKind, due_at: float) -> None:
        self.clocks.append(SetClock(clock, due_at))

    def people(self, ids: Sequence[int]) -> list[Person]:
        """The known contacts among `ids`, by id."""
        return [self.directory.people[i] for i in sorted(set(ids)) if i in self.directory.people]

    def reachable(self, role: ResponderRole) -> list[Person]:
        """Contacts in `role` for the household with a good number, within their hours now."""
        local = datetime.fromtimestamp(self.at, self.zone)
        minute = local.hour * 60 + local.minute
        return [
            p
            for p in self.directory.by_role.get(role, ())
            if not p.bad_number and p.available_at(minute)
        ]

    def call(
        self,
        household: Household,
        role: ResponderRole,
        template: str,
        channels: tuple[NotifyChannel, ...] = ("voice", "sms"),
        **params: str,
    ) -> bool:
        """Notify everyone reachable in `role`; False if there is nobody."""
        people = self.reachable(role)
        for person in people:
            for channel in channels:
                self.notify(household, person, channel, template, **params)
        return bool(people)

    def notify(
        self,
        household: Household,
        person: Person,
        channel: NotifyChannel,
        template: str,
        **params: str | None,
    ) -> None:
        values: dict[str, str | None] = {
            "resident": household.resident_name,
            "place": household.place,
            "ticket": str(self.ticket.id),
        }
        values.update(params)
        self.notifications.append(
            Notify(
                ticket_id=self.ticket.id,
                contact_id=person.id,
                recipient=person.phone,
                language=person.language,
                channel=channel,
                template=template,
                params=values,
                urgent=template in URGENT_TEMPLATES,
            )
        )
