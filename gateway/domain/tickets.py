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

A new call is never swallowed (`opens_new_ticket` decides, before a press is applied):

- A green press on a household whose ticket is OPEN (nobody accepted yet) merges into it:
  the step being called is called again (at most once per `renotify_gap_s`), told how many
  presses there were and how long ago the first was, and that nobody has accepted yet.
- On an ACCEPTED ticket it merges too, and the owner is called again with the truth: the
  resident pressed again so many minutes after they took it and is still waiting. Nobody
  is ever told "you need not go" about a resident who has just pressed.
- On an ON_SITE ticket whose helper arrived less than `new_call_after_on_site_s` ago (the
  helper is likely still there) it merges and the owner is told the resident pressed again
  so many minutes after they arrived. Later than that, the press is a NEW call: a new
  ticket opens beside the old one, which keeps its day clock (the store allows one
  open-or-accepted ticket per household, and any number on site).
- A long press of green while the household's ticket is ACCEPTED is the helper's arrival
  proof (only someone at the door can press it): the ticket goes on site. Otherwise a long
  press is a call like any other.

Presses take effect in the box's own order (its frames' positions, session then seq), not in
the order they reach the gateway. Within one ingest batch they are applied sorted by
position. A red key that overtook the green press before it (stored first, say because the
green waited for a retry) is applied once the green is: when the green leaves the
household's ticket OPEN, the box's later key presses already stored are walked in its order
(a later green moves the reference press; a frame still to be applied in this batch, or the
first red, ends the walk), and a red that came within `red_cancel_window_s` of the
reference press is decided as `PressRed` right after it, so the call is cancelled and
everyone told exactly as if the red had arrived in order. "Within" is measured on the
frames' own timestamps (a red stamped before the green was pressed first and cancels
nothing), or on their arrival times when either box clock was not set.
The other way round, a red key that arrives after a later green press of its box was
pressed before that call: the ticket keeps its latest green press in the box's order
(`Ticket.latest_press`), and a red of the same box placed before it does nothing to the
ticket, whatever the times; one placed after it cancels when it came within the window.
Thumbs presses need no such care: they rate only a resolved ticket, which no green press
makes, so one that arrived early did what it would have done in order.
(`gateway.services.tickets.TicketService._in_device_order` applies this.)

Escalated people are offered only what is true: those called because nobody accepted may
accept (or pass it on); those called because the owner has not arrived may take the ticket
over (a reassignment to them); the owner called again is told to go, not offered to accept.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Literal, Protocol, get_args

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
ActionChannel = Literal["box_key", "voice_keypress", "dashboard", "api", "system", "cli", "link"]
Rating = Literal["up", "down"]
NotifyChannel = Literal["sms", "voice"]
FamilyEvent = Literal["called", "accepted", "arrived", "resolved"]
FAMILY_EVENTS: tuple[FamilyEvent, ...] = ("called", "accepted", "arrived", "resolved")
TicketKind = Literal["call", "no_water", "leak"]
"""A call is the green key; `no_water` and `leak` are the water watch's alarms."""
TICKET_KINDS: tuple[TicketKind, ...] = get_args(TicketKind)
ALARM_KINDS: tuple[TicketKind, ...] = ("no_water", "leak")
Outcome = Literal["real", "late_rising", "away", "hospital", "meter_fault", "other"]
"""What an alarm turned out to be: real, or false and why (issue 13, item 10)."""
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
FALSE_OUTCOMES: tuple[Outcome, ...] = tuple(o for o in OUTCOMES if o != "real")
"""The outcomes that say the alarm was false (and why)."""
OUTCOMES_OF: Mapping[TicketKind, tuple[Outcome, ...]] = {
    "call": (),
    "no_water": OUTCOMES,
    # Running water is never late rising, and a leak while away or in hospital is a real one.
    "leak": ("real", "meter_fault", "other"),
}
"""The outcomes an alarm of each kind may be labelled with (a call is never labelled)."""


def is_false_alarm(outcome: Outcome | None) -> bool:
    """Whether a label says the alarm was false."""
    return outcome is not None and outcome in FALSE_OUTCOMES


EventKind = Literal[
    "opened",
    "alarm_raised",
    "all_clear",
    "labelled",
    "no_household",
    "pressed_again",
    "owner_alerted",
    "red_key",
    "cancelled",
    "rated_up",
    "rated_down",
    "accept_too_late",
    "accepted",
    "declined",
    "on_site",
    "classified",
    "note",
    "resolved",
    "reassigned",
    "no_answer",
    "bridged",
    "bridge_ended",
    "escalated",
    "escalation_exhausted",
    "overdue",
]
EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
"""Every kind of audit row the rules write (each has words wherever a timeline is shown)."""
NOTE_MAX_CHARS = 500


class TicketError(GatewayError):
    """A ticket action that does not fit the ticket's state."""


class TicketConflictError(TicketError):
    """The ticket changed between reading and writing it; the action may be tried again."""


class NotAnAlarmError(TicketError):
    """An outcome label given for a call: only alarms are labelled real or false."""


class OutcomeError(TicketError):
    """An outcome that is no label, or none an alarm of this kind can have."""


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
        "ticket_still_waiting",
        "ticket_escalated_no_answer",
        "ticket_escalated_not_accepted",
        "ticket_escalated_declined",
        "ticket_escalated_unreachable",
        "ticket_not_arrived",
        "ticket_pressed_again_accepted",
        "ticket_pressed_again_on_site",
        "ticket_reassigned_to_you",
        "ticket_cancelled_by_resident",
        "ticket_cancelled_no_phone",
        "ticket_access",
    }
)

ALARM_TEMPLATES: Mapping[TicketKind, Mapping[str, str]] = {
    kind: {
        "alarm": f"{kind}_alarm",
        "escalated": f"{kind}_alarm_escalated",
        "all_clear": f"{kind}_all_clear",
        "ticket_accepted": "alarm_accepted",
        "ticket_reassigned_sms": "alarm_reassigned_sms",
        "ticket_taken_over": "alarm_taken_over",
        "ticket_not_arrived": "alarm_not_arrived",
        "family_accepted": "alarm_family_accepted",
        "family_resolved": "alarm_family_resolved",
    }
    for kind in ALARM_KINDS
}
"""The words of an alarm ticket where a call's would not be true (nobody pressed a key, and
the one who goes checks on the resident rather than answers a call). Templates not listed
(ticket_taken, family_arrived, ticket_access, ...) say nothing of a call and serve both."""
ALARM_URGENT_TEMPLATES = frozenset(
    {
        "no_water_alarm",
        "no_water_alarm_morning",
        "leak_alarm",
        "no_water_alarm_escalated",
        "leak_alarm_escalated",
        "alarm_not_arrived",
    }
)

ESCALATION_TEMPLATES: Mapping[str, str] = {
    "no answer": "ticket_escalated_no_answer",
    "not accepted": "ticket_escalated_not_accepted",
    "declined": "ticket_escalated_declined",
    "nobody to call": "ticket_escalated_unreachable",
}
"""Why a call went to the next step, and the words that say so."""


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
class BoxPress:
    """A key press's place in its box's own order, and the box's clock when it was pressed."""

    device_id: str
    position: int
    """session << 32 | seq: the box's order (docs/protocol.md section 6)."""
    device_time: int
    """The frame's own timestamp; 0: the box's clock was not set."""

    def later(self, other: BoxPress | None) -> BoxPress:
        """The reference press once this one is applied after `other`.

        Positions order presses of one box only; a press of another box is taken as it comes.
        """
        if other is None or other.device_id != self.device_id or self.position > other.position:
            return self
        return other


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
    owner_since: float | None = None
    """When the current owner took the ticket (accepted it or had it handed over)."""
    latest_press: BoxPress | None = None
    """The green press applied to the ticket that comes last in its box's own order (None:
    opened before presses were placed). A red key pressed before it cancels nothing."""
    kind: TicketKind = "call"
    """A call for help, or an alarm of the water watch (which nobody pressed for)."""
    outcome: Outcome | None = None
    """What it turned out to be, as labelled by the one who resolved it."""

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
    kind: TicketKind = "call",
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
        kind=kind,
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

    @property
    def notify(self) -> tuple[str, ...] | None:
        """The events the contact chose to be told of; None: the defaults of the role."""
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
        """Where, as people say it: the house address ("白沙村一组15号")."""
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
    family_events: frozenset[str] = frozenset(FAMILY_EVENTS)
    """What family members are told unless they chose otherwise (`Person.notify`)."""


# -- commands ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Open:
    """The green key opened this (new) ticket."""

    presses: int
    press: BoxPress | None = None


@dataclass(frozen=True, slots=True)
class PressGreen:
    """The green key again, on the household's live ticket."""

    presses: int
    press: BoxPress | None = None


@dataclass(frozen=True, slots=True)
class PressRed:
    """The red key, on the household's live ticket."""

    press: BoxPress | None = None


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
    """The helper is at the door (contact None: an operator recorded it)."""

    contact_id: int | None
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class Resolve:
    """The matter is settled, perhaps with its kind and a short note."""

    contact_id: int | None
    channel: ActionChannel
    category: Category | None = None
    note: str | None = None
    outcome: Outcome | None = None


@dataclass(frozen=True, slots=True)
class OpenAlarm:
    """The water watch raised this (new) alarm ticket; `params` are the facts for its words."""

    params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class AllClear:
    """The water watch saw life again: the alarm is over, and everyone told hears it."""

    params: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Label:
    """What a resolved alarm turned out to be (real, or false and why)."""

    outcome: Outcome
    contact_id: int | None
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class Classify:
    """The kind of matter, which starts its day clock."""

    category: Category
    contact_id: int | None
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class Note:
    """A short note on the ticket's record."""

    text: str
    contact_id: int | None
    channel: ActionChannel


@dataclass(frozen=True, slots=True)
class Reassign:
    """The ticket is handed to another person (by its owner, an operator, or one taking over)."""

    to_contact_id: int
    by_contact_id: int | None
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
    | Note
    | Reassign
    | CallUnanswered
    | StartBridge
    | EndBridge
    | Due
    | OpenAlarm
    | AllClear
    | Label
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
    role: str | None = None
    """Who is coming ("help is coming"): the role of the one who accepted."""


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
        case Open(presses, press):
            d.open(presses, press)
        case PressGreen(presses, press):
            d.pressed_again(presses, press)
        case PressRed(press):
            d.red(press)
        case Thumbs(rating):
            d.thumbs(rating)
        case Accept(contact_id, channel):
            d.accept(contact_id, channel)
        case Decline(contact_id, channel):
            d.decline(contact_id, channel)
        case Arrive(contact_id, channel):
            d.arrive(contact_id, channel)
        case Resolve(contact_id, channel, category, note, outcome):
            d.resolve(contact_id, channel, category, note, outcome)
        case Classify(category, contact_id, channel):
            d.classify(category, contact_id, channel)
        case Note(text, contact_id, channel):
            d.note(text, contact_id, channel)
        case Reassign(to_contact_id, by_contact_id, channel):
            d.reassign(to_contact_id, by_contact_id, channel)
        case CallUnanswered(contact_id):
            d.call_unanswered(contact_id)
        case StartBridge(contact_id, call_id):
            d.start_bridge(contact_id, call_id)
        case EndBridge(call_id):
            d.end_bridge(call_id)
        case Due(clock, _):
            d.due(clock)
        case OpenAlarm(params):
            d.open_alarm(params)
        case AllClear(params):
            d.all_clear(params)
        case Label(outcome, contact_id, channel):
            d.label(outcome, contact_id, channel)
    return d.decision()


def opens_new_ticket(live: Ticket, now: float, new_call_after_on_site_s: float) -> bool:
    """Whether a green press at `now` is a new call rather than more of the live ticket.

    Only a ticket whose helper arrived more than `new_call_after_on_site_s` ago gives way
    to a new one; an open or accepted ticket takes every press (see the module docstring).
    """
    return (
        live.status == TicketStatus.ON_SITE
        and live.on_site_at is not None
        and now - live.on_site_at > new_call_after_on_site_s
    )


def minutes(seconds: float) -> str:
    """Whole minutes, as said in messages (at least 1: "after 0 minutes" is never said)."""
    return str(max(1, int(seconds // 60)))


def clean_note(text: str) -> str:
    """A note as recorded; TicketError if it is empty, too long or has control characters."""
    note = text.strip()
    if not note:
        raise TicketError("the note is empty")
    if len(note) > NOTE_MAX_CHARS:
        raise TicketError(f"the note has {len(note)} characters; at most {NOTE_MAX_CHARS}")
    if any(ord(c) < 32 or ord(c) == 127 for c in note):
        raise TicketError("the note contains control characters")
    return note


def can_move(status: TicketStatus, to: TicketStatus) -> bool:
    """Whether the transition table allows `status` to become `to`."""
    return to in TRANSITIONS[status]


class _Decider:
    """Collects one decision's effects while the rules run."""

    def __init__(self, ticket: Ticket, context: Context, at: float) -> None:
        self.ticket = ticket
        self.rules = ticket.rules
        self.household = context.household
        self.directory = context.directory
        self.zone = context.zone
        self.family_events = context.family_events
        self.at = at
        self.events: list[TicketEvent] = []
        self.notifications: list[Notify] = []
        self.clocks: list[SetClock] = []
        self.cleared: list[ClockKind] = []
        self.indications: list[Indicate] = []
        self.hangups: list[HangUp] = []
        self.counts: list[str] = []
        self.accept_result: AcceptResult | None = None
        self.exhausted = False
        """The chain ran out in this decision: nobody more can be called."""

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

    def open(self, presses: int, press: BoxPress | None) -> None:
        if press is not None:
            self.ticket = replace(self.ticket, latest_press=press)
        self.event("opened", "box_key", detail=f"presses={presses}")
        self.counts.append("opened")
        household = self.household
        if household is None:
            # Nobody is called for a box without a household: the box says so (the caller
            # raises the operator alarm).
            self.event("no_household", "system", detail="box has no household")
            self.indicate(IndicationKind.NOBODY_REACHED)
            return
        if not self.call(household, self.rules.responder_chain[0], "ticket_call"):
            self.escalate(household, "nobody to call")
        if not self.exhausted:
            # Registered, and someone is being called; not "accepted": nobody has yet.
            self.indicate(IndicationKind.CALL_REGISTERED)
        for role in self.rules.informed_at_open:
            for person in self.directory.by_role.get(role, ()):
                if self.wants(person, "called"):
                    self.notify(household, person, "sms", "ticket_informed")
        self.tell_family(household, "called", "family_called")
        self.set_clock(ClockKind.ACCEPT, self.at + self.rules.accept_within_s)

    def pressed_again(self, presses: int, press: BoxPress | None) -> None:
        ticket = self.ticket
        count = ticket.press_count + presses
        latest = ticket.latest_press if press is None else press.later(ticket.latest_press)
        self.ticket = replace(ticket, press_count=count, last_press_at=self.at, latest_press=latest)
        self.event("pressed_again", "box_key", detail=f"presses={count}")
        household = self.household
        if household is None or self.at - ticket.last_notified_at < self.rules.renotify_gap_s:
            return
        self.ticket = replace(self.ticket, last_notified_at=self.at)
        since_first = minutes(self.at - ticket.opened_at)
        if ticket.status == TicketStatus.OPEN:
            chain = self.rules.responder_chain
            role = chain[min(ticket.cursor.step, len(chain) - 1)]
            if self.call(
                household,
                role,
                "ticket_call_repeat",
                presses=str(count),
                minutes=since_first,
            ):
                # Someone is being called again (after "nobody reached", too).
                self.indicate(IndicationKind.CALL_REGISTERED)
            return
        owner = self.owner()
        if owner is None:
            return
        if ticket.status == TicketStatus.ON_SITE and ticket.on_site_at is not None:
            template, since = "ticket_pressed_again_on_site", ticket.on_site_at
        else:
            template = "ticket_pressed_again_accepted"
            since = ticket.owner_since or ticket.accepted_at or ticket.opened_at
        for channel in ("voice", "sms"):
            self.notify(household, owner, channel, template, minutes=minutes(self.at - since))
        self.event("owner_alerted", "system", owner.id, detail=f"presses={count}")

    def red_within(self, press: BoxPress | None) -> bool:
        """Whether a red key came within the cancel window after the ticket's latest press.

        On the two frames' own timestamps when both are of one box whose clock was set;
        otherwise on arrival times.
        """
        latest = self.ticket.latest_press
        window = self.rules.red_cancel_window_s
        if (
            press is not None
            and latest is not None
            and press.device_id == latest.device_id
            and press.device_time
            and latest.device_time
        ):
            return 0 <= press.device_time - latest.device_time <= window
        return self.at - self.ticket.last_press_at <= window

    def red(self, press: BoxPress | None) -> None:
        """The red key cancels an OPEN ticket whose latest press came within the window.

        A red pressed before the ticket's latest green press on the same box (a lower
        position in the box's order, though it arrived later) does nothing to the ticket:
        the resident called after it. Otherwise it cancels an OPEN ticket when it came within
        `red_cancel_window_s` (`red_within`), and on any other ticket ends a call bridged to
        the resident.
        """
        ticket = self.ticket
        latest = ticket.latest_press
        if (
            press is not None
            and latest is not None
            and press.device_id == latest.device_id
            and press.position < latest.position
        ):
            self.event("red_key", "box_key", detail="pressed before the call")
            return
        if ticket.status != TicketStatus.OPEN or not self.red_within(press):
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
        template = (
            "ticket_cancelled_by_resident"
            if household.resident_phone
            else "ticket_cancelled_no_phone"
        )
        for person in self.people(self.directory.notified):
            self.notify(household, person, "sms", template)

    def thumbs(self, rating: Rating) -> None:
        ticket = self.ticket
        if (
            ticket.status != TicketStatus.RESOLVED
            or ticket.resolved_at is None
            or ticket.resolved_at < self.at - self.rules.rating_window_s
        ):
            # The box hears there is nothing to rate; nothing is stored against the ticket.
            self.indicate(IndicationKind.NOTHING_TO_RATE)
            self.counts.append("nothing_to_rate")
            return
        self.move_to(TicketStatus.RATED)
        self.ticket = replace(
            self.ticket, rating=rating, rated_at=self.at, review_flag=rating == "down"
        )
        self.event("rated_up" if rating == "up" else "rated_down", "box_key")
        self.counts.append("rated")
        if rating == "down" and self.household is not None:
            owner = self.owner()
            for person in self.directory.by_role.get(self.rules.review_role, ()):
                self.notify(
                    self.household,
                    person,
                    "sms",
                    "ticket_review",
                    owner=owner.name if owner else None,
                )

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
        self.ticket = replace(
            self.ticket, owner_contact_id=contact_id, accepted_at=self.at, owner_since=self.at
        )
        self.accept_result = AcceptResult(won=True, owner_contact_id=contact_id)
        self.event("accepted", channel, contact_id)
        self.cleared.append(ClockKind.ACCEPT)
        self.set_clock(ClockKind.ARRIVE, self.at + self.rules.arrive_within_s)
        owner = self.directory.people.get(contact_id)
        self.indicate(IndicationKind.HELPER_ON_THE_WAY, owner.role if owner else None)
        self.counts.append("accepted")
        household = self.household
        if household is None or owner is None:
            return
        family = {p.id for p in self.directory.by_role.get("family", ())}
        others = [c for c in self.directory.notified if c != contact_id and c not in family]
        for person in self.people(others):
            if person.role != "family" and self.wants(person, "accepted"):
                self.notify(
                    household,
                    person,
                    "sms",
                    "ticket_taken",
                    owner=owner.name,
                    owner_phone=owner.phone,
                )
        self.tell_owner(household, owner, "ticket_accepted")
        self.tell_family(
            household, "accepted", "family_accepted", owner=owner.name, owner_phone=owner.phone
        )

    def tell_owner(self, household: Household, owner: Person, template: str, **params: str) -> None:
        """How to report progress (the link is added where links are made), and the access."""
        self.notify(household, owner, "sms", template, **params)
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
            self.escalate(self.household, "declined", by=contact_id)

    def arrive(self, contact_id: int | None, channel: ActionChannel) -> None:
        self.move_to(TicketStatus.ON_SITE)
        self.ticket = replace(self.ticket, on_site_at=self.at)
        self.event("on_site", channel, contact_id)
        self.cleared.append(ClockKind.ARRIVE)
        self.indicate(IndicationKind.HELPER_ARRIVED)
        self.counts.append(TicketStatus.ON_SITE.value)
        helper = self.helper(contact_id)
        if self.household is not None and helper is not None:
            self.tell_family(self.household, "arrived", "family_arrived", owner=helper.name)

    def resolve(
        self,
        contact_id: int | None,
        channel: ActionChannel,
        category: Category | None,
        note: str | None,
        outcome: Outcome | None = None,
    ) -> None:
        if outcome is not None:
            self.check_label(outcome)  # a label that cannot be is refused before all else
        self.move_to(TicketStatus.RESOLVED)
        cleaned = clean_note(note) if note is not None else None
        if outcome is not None:
            self.label(outcome, contact_id, channel, resolving=True)
        ticket = self.ticket
        day_due_at = ticket.day_due_at
        if category is not None and day_due_at is None:
            # Classified only as it is resolved: its time limit ran from the call.
            day_due_at = ticket.opened_at + self.rules.day_clock_s[category]
        self.ticket = replace(
            ticket,
            resolved_at=self.at,
            category=category or ticket.category,
            day_due_at=day_due_at,
        )
        if category is not None:
            self.event("classified", channel, contact_id, detail=category)
        if cleaned is not None:
            self.event("note", channel, contact_id, detail=cleaned)
        self.event("resolved", channel, contact_id)
        self.cleared.extend((ClockKind.ARRIVE, ClockKind.DAY))
        # The resolved indication is the box's request for a rating (thumbs up or down).
        self.indicate(IndicationKind.RESOLVED)
        self.counts.append(TicketStatus.RESOLVED.value)
        helper = self.helper(contact_id)
        if self.household is not None:
            self.tell_family(
                self.household,
                "resolved",
                "family_resolved",
                owner=helper.name if helper else None,
            )

    # -- the water watch's alarms ----------------------------------------------------------

    def open_alarm(self, params: Mapping[str, str]) -> None:
        """An alarm nobody pressed for: the family and the chain's first step, by voice and SMS.

        The family is called with the first step (they know the resident best and may be
        nearest); either may take it ("I will check", keypress 1) or pass it on (2). When
        nobody takes it in time it escalates along the chain like a call.
        """
        kind = self.ticket.kind
        if kind == "call":
            raise TicketError(f"ticket {self.ticket.id} is a call, not an alarm")
        self.event("alarm_raised", "system", detail=kind)
        self.counts.append(f"{kind}_alarm")
        household = self.household
        if household is None:
            return
        template = ALARM_TEMPLATES[kind]["alarm"]
        if kind == "no_water" and params.get("reason") == "morning":
            template = f"{template}_morning"  # "usually uses water by 07:40; none by 09:10"
        for person in self.directory.by_role.get("family", ()):
            if not person.bad_number:
                for channel in ("voice", "sms"):
                    self.notify(household, person, channel, template, **params)
        first = self.rules.responder_chain[0]
        if not self.call(household, first, template, ("voice", "sms"), **params):
            self.escalate(household, "nobody to call")
        self.set_clock(ClockKind.ACCEPT, self.at + self.rules.accept_within_s)

    def all_clear(self, params: Mapping[str, str]) -> None:
        """The resident shows life again: the alarm is resolved by the system, all told."""
        ticket = self.ticket
        if ticket.kind == "call" or ticket.status not in LIVE_STATUSES:
            return
        self.ticket = replace(ticket, status=TicketStatus.RESOLVED, resolved_at=self.at)
        self.event("all_clear", "system", detail=params.get("cleared_by", ""))
        self.cleared.extend((ClockKind.ACCEPT, ClockKind.ARRIVE, ClockKind.DAY))
        self.counts.append("all_clear")
        household = self.household
        if household is None:
            return
        template = ALARM_TEMPLATES[ticket.kind]["all_clear"]
        # Said as it happened: water again, a key on the box, or the home marked away.
        how = params.get("cleared_by", "water")
        if ticket.kind == "no_water" and how in ("key", "away", "answer"):
            template = f"{template}_{how}"
        for person in self.people(self.directory.notified):
            self.notify(household, person, "sms", template, **params)

    def check_label(self, outcome: Outcome) -> None:
        """NotAnAlarmError for a call; OutcomeError for an outcome its kind cannot have."""
        ticket = self.ticket
        if ticket.kind == "call":
            raise NotAnAlarmError(
                f"ticket {ticket.id} is a call, not an alarm; only alarms are labelled"
            )
        if outcome not in OUTCOMES:
            raise OutcomeError(f"unknown outcome {outcome!r}; one of {', '.join(OUTCOMES)}")
        allowed = OUTCOMES_OF[ticket.kind]
        if outcome not in allowed:
            raise OutcomeError(
                f"a {ticket.kind} alarm cannot be {outcome}; one of {', '.join(allowed)}"
            )

    def label(
        self,
        outcome: Outcome,
        contact_id: int | None,
        channel: ActionChannel,
        *,
        resolving: bool = False,
    ) -> None:
        """Record what the ticket turned out to be (on a resolved one, or as it is resolved)."""
        ticket = self.ticket
        self.check_label(outcome)
        done = (TicketStatus.RESOLVED, TicketStatus.RATED, TicketStatus.CANCELLED)
        if not resolving and ticket.status not in done:
            raise TicketError(
                f"ticket {ticket.id} is {ticket.status}; label it when it is resolved"
            )
        # A second label corrects the first; both stay on the record.
        self.ticket = replace(ticket, outcome=outcome)
        self.event("labelled", channel, contact_id, detail=outcome)
        self.counts.append(f"labelled_{'false' if is_false_alarm(outcome) else 'real'}")

    def classify(self, category: Category, contact_id: int | None, channel: ActionChannel) -> None:
        ticket = self.ticket
        if ticket.status not in LIVE_STATUSES:
            raise TicketError(f"ticket {ticket.id} is {ticket.status}; it cannot be classified")
        due = self.at + self.rules.day_clock_s[category]
        self.ticket = replace(ticket, category=category, day_due_at=due)
        self.event("classified", channel, contact_id, detail=category)
        self.set_clock(ClockKind.DAY, due)

    def note(self, text: str, contact_id: int | None, channel: ActionChannel) -> None:
        self.event("note", channel, contact_id, detail=clean_note(text))

    def reassign(self, to: int, by: int | None, channel: ActionChannel) -> None:
        """Hand the ticket to `to`: they are called and told, the one who had it is told."""
        ticket = self.ticket
        if ticket.status not in (TicketStatus.ACCEPTED, TicketStatus.ON_SITE):
            raise TicketError(
                f"ticket {ticket.id} is {ticket.status}; only an accepted or on-site ticket "
                "can be handed over"
            )
        if ticket.owner_contact_id == to:
            raise TicketError(f"ticket {ticket.id} already belongs to contact {to}")
        new_owner = self.directory.people.get(to)
        if new_owner is None:
            raise TicketError(f"no contact {to}")
        if new_owner.role == "family":
            raise TicketError(f"contact {to} is a family member and cannot take a ticket")
        old = self.owner()
        self.ticket = replace(ticket, owner_contact_id=to, owner_since=self.at)
        self.event("reassigned", channel, by, detail=f"from {ticket.owner_contact_id} to {to}")
        self.counts.append("reassigned")
        if ticket.status == TicketStatus.ACCEPTED:
            # The new owner has the whole time to get there; the box hears who is coming now.
            self.set_clock(ClockKind.ARRIVE, self.at + self.rules.arrive_within_s)
            self.indicate(IndicationKind.HELPER_ON_THE_WAY, new_owner.role)
        household = self.household
        if household is None:
            return
        from_name = old.name if old is not None else None
        if by == to:
            # Taking over on the phone: they are on the line already; the SMS says how to report.
            self.tell_owner(household, new_owner, "ticket_taken_over", previous=from_name or "")
        else:
            self.notify(
                household, new_owner, "voice", "ticket_reassigned_to_you", previous=from_name
            )
            self.tell_owner(household, new_owner, "ticket_reassigned_sms", previous=from_name or "")
        if old is not None:
            self.notify(
                household,
                old,
                "sms",
                "ticket_reassigned_away",
                owner=new_owner.name,
                owner_phone=new_owner.phone,
            )
        if ticket.status == TicketStatus.ACCEPTED:
            self.tell_family(
                household,
                "accepted",
                "family_accepted",
                owner=new_owner.name,
                owner_phone=new_owner.phone,
            )

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
            self.escalate(
                household,
                "not accepted",
                detail=f"not accepted in {self.rules.accept_within_s / 60:.0f} min",
            )
        elif clock == ClockKind.ARRIVE and status == TicketStatus.ACCEPTED:
            self.not_arrived(household)
        elif clock == ClockKind.DAY and status in LIVE_STATUSES:
            self.day_overdue(household)

    def escalate(
        self, household: Household, why: str, by: int | None = None, detail: str | None = None
    ) -> None:
        """Call the next step of the chain that has someone reachable; the first once again.

        The words say why (nobody answered, nobody accepted, who declined, nobody could be
        called) and how many minutes ago the resident pressed.
        """
        ticket = self.ticket
        chain = self.rules.responder_chain
        step = ticket.cursor.step + 1
        alarm = ticket.kind != "call"
        template = ALARM_TEMPLATES[ticket.kind]["escalated"] if alarm else ESCALATION_TEMPLATES[why]
        decliner = self.directory.people.get(by) if by is not None else None
        since = minutes(self.at - ticket.opened_at)
        previous = decliner.name if decliner is not None else None
        while step < len(chain):
            if self.call(household, chain[step], template, minutes=since, previous=previous):
                break
            step += 1
        if step >= len(chain):
            self.event("escalation_exhausted", "system", detail=detail or why)
            self.counts.append("escalation_exhausted")
            # The resident is told the truth: nobody can come; call 110/120 or the family.
            self.exhausted = True
            self.indicate(IndicationKind.NOBODY_REACHED)
            return
        if ticket.cursor.step == 0 and why != "nobody to call" and not alarm:
            # The first one is called again, once, told only what is so: still nobody has it.
            self.call(
                household,
                chain[0],
                "ticket_still_waiting",
                channels=("voice",),
                minutes=minutes(self.at - ticket.opened_at),
            )
        self.ticket = replace(
            ticket, cursor=EscalationCursor(step), escalated=True, last_notified_at=self.at
        )
        self.event("escalated", "system", detail=f"{chain[step]}: {detail or why}")
        self.set_clock(ClockKind.ACCEPT, self.at + self.rules.accept_within_s)
        self.counts.append("escalated")

    def not_arrived(self, household: Household) -> None:
        ticket = self.ticket
        chain = self.rules.responder_chain
        owner = self.owner()
        above = chain.index(owner.role) + 1 if owner and owner.role in chain else 1
        since = ticket.owner_since or ticket.accepted_at or ticket.opened_at
        for role in chain[above:]:
            people = self.reachable(role)
            for person in people:
                for channel in ("voice", "sms"):
                    self.notify(
                        household,
                        person,
                        channel,
                        "ticket_not_arrived",
                        owner=owner.name if owner else None,
                        owner_phone=owner.phone if owner else None,
                        minutes=minutes(self.at - since),
                        called_minutes=minutes(self.at - ticket.opened_at),
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

    def owner(self) -> Person | None:
        owner_id = self.ticket.owner_contact_id
        return self.directory.people.get(owner_id) if owner_id is not None else None

    def helper(self, contact_id: int | None) -> Person | None:
        """The one acting, or (an operator acting) the ticket's owner."""
        if contact_id is not None and contact_id in self.directory.people:
            return self.directory.people[contact_id]
        return self.owner()

    def wants(self, person: Person, event: str) -> bool:
        """Whether `person` is to be told of `event` (their own choice, else their role's)."""
        if person.notify is not None:
            return event in person.notify
        return person.role != "family" or event in self.family_events

    def tell_family(
        self, household: Household, event: FamilyEvent, template: str, **params: str | None
    ) -> None:
        for person in self.directory.by_role.get("family", ()):
            if not person.bad_number and self.wants(person, event):
                self.notify(household, person, "sms", template, **params)

    def move_to(self, to: TicketStatus) -> None:
        ticket = self.ticket
        if not can_move(ticket.status, to):
            raise TicketError(f"ticket {ticket.id} is {ticket.status}; it cannot become {to}")
        self.ticket = replace(ticket, status=to)

    def event(
        self,
        kind: EventKind,
        channel: ActionChannel,
        contact_id: int | None = None,
        detail: str = "",
    ) -> None:
        self.events.append(TicketEvent(self.ticket.id, self.at, kind, channel, contact_id, detail))

    def indicate(self, kind: IndicationKind, role: str | None = None) -> None:
        if self.ticket.device_id is not None:
            self.indications.append(Indicate(self.ticket.device_id, self.ticket.id, kind, role))

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
        **params: str | None,
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
        if self.ticket.kind != "call":
            template = ALARM_TEMPLATES[self.ticket.kind].get(template, template)
        values: dict[str, str | None] = {
            "resident": household.resident_name,
            "place": household.place,
            "phone": household.resident_phone,
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
                urgent=template in URGENT_TEMPLATES or template in ALARM_URGENT_TEMPLATES,
            )
        )
