"""The ticket rules, one decision at a time: no broker, no database, no clock, no sleeps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.config import TicketPolicy, TicketSettings
from gateway.domain.grid import Contact, HouseholdInfo
from gateway.domain.tickets import (
    LIVE_STATUSES,
    TRANSITIONS,
    Accept,
    AcceptResult,
    Arrive,
    BoxPress,
    CallUnanswered,
    Classify,
    ClockKind,
    Command,
    Context,
    Decision,
    Decline,
    Directory,
    Due,
    EndBridge,
    EscalationCursor,
    Open,
    PressGreen,
    PressRed,
    Resolve,
    StartBridge,
    Thumbs,
    Ticket,
    TicketError,
    TicketRules,
    TicketStatus,
    decide,
    new_ticket,
)

ZONE = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZONE).timestamp()
"""Every ticket here opens at 10:00 local time."""
NIGHT = 16 * 3600.0
"""Seconds from T0 to 02:00 the next night."""
HOUR = 3600.0
BOX = "b1da000000000001"
SECRETARY, DEPUTY, GRID_WORKER, CHIEF, GROUP_LEADER, AREA_CHIEF, TOWNSHIP = range(1, 8)
DEPUTY_2 = 9
RULES = TicketSettings().rules_for("341504-101-001")

VILLAGE = "341504-101-001"
HOUSEHOLD = HouseholdInfo(
    code="341504-101-001-0001",
    address="桥元村三组12号",
    unit_chain=("341504-101-001-1-3-1", "341504-101-001-1-3", "341504-101-001-1", VILLAGE),
    unit_names={
        "341504-101-001-1-3-1": "一邻",
        "341504-101-001-1-3": "三组",
        "341504-101-001-1": "一片",
        VILLAGE: "桥元村",
    },
    unit_levels={
        "341504-101-001-1-3-1": "neighbourhood",
        "341504-101-001-1-3": "group",
        "341504-101-001-1": "area",
        VILLAGE: "village",
    },
    resident_name="张桂兰",
    resident_phone="13912345678",
    consent=True,
    key_safe_code="4321",
    health_notes="高血压",
)


def _contact(
    id_: int, name: str, role: Any, hours: tuple[str, str] = ("00:00", "24:00"), bad: bool = False
) -> Contact:
    return Contact(
        id=id_,
        name=name,
        role=role,
        phone=f"138000000{id_:02d}",
        unit_code=VILLAGE,
        bad_number=bad,
        available_from=hours[0],
        available_to=hours[1],
    )


PEOPLE = [
    _contact(SECRETARY, "李书记", "village_secretary"),
    _contact(DEPUTY, "王副书记", "deputy_secretary"),
    _contact(GRID_WORKER, "赵网格员", "grid_worker", hours=("07:00", "21:00")),
    _contact(CHIEF, "钱邻长", "neighbour_chief"),
    _contact(GROUP_LEADER, "孙组长", "group_leader"),
    _contact(AREA_CHIEF, "周片长", "area_chief"),
    _contact(TOWNSHIP, "吴值班", "township_duty"),
]


def directory(
    people: list[Contact] = PEOPLE, notified: tuple[int, ...] = (SECRETARY, CHIEF)
) -> Directory:
    by_role: dict[str, list[Contact]] = {}
    for person in people:
        by_role.setdefault(person.role, []).append(person)
    return Directory(by_role, {p.id: p for p in people}, notified)


CTX = Context(HOUSEHOLD, directory(), ZONE)
FRESH = Context(HOUSEHOLD, directory(notified=()), ZONE)
NO_HOUSEHOLD = Context(None, directory(notified=()), ZONE)
BAD_SECRETARY = Context(
    HOUSEHOLD,
    directory(
        [_contact(SECRETARY, "李书记", "village_secretary", bad=True), *PEOPLE[1:]], notified=()
    ),
    ZONE,
)
TWO_DEPUTIES = Context(
    HOUSEHOLD, directory([*PEOPLE, _contact(DEPUTY_2, "陈副书记", "deputy_secretary")]), ZONE
)
NO_KEY_SAFE = Context(replace(HOUSEHOLD, key_safe_code=None), directory(), ZONE)


def ticket(
    status: TicketStatus = TicketStatus.OPEN,
    *,
    step: int = 0,
    no_answer: frozenset[int] = frozenset(),
    owner: int | None = None,
    presses: int = 1,
    last_press: float = 0.0,
    last_notified: float = 0.0,
    resolved: float | None = None,
    category: Any = None,
    level: int = 0,
    bridged: str | None = None,
    rules: TicketRules = RULES,
) -> Ticket:
    """Ticket 7 of the test household, opened at T0; times relative to T0."""
    opened = new_ticket(HOUSEHOLD.code, BOX, VILLAGE, HOUSEHOLD.unit_chain[0], 1, rules, T0)
    return replace(
        opened,
        id=7,
        status=status,
        cursor=EscalationCursor(step, no_answer),
        owner_contact_id=owner,
        accepted_at=None if owner is None else T0 + 60,
        press_count=presses,
        last_press_at=T0 + last_press,
        last_notified_at=T0 + last_notified,
        resolved_at=None if resolved is None else T0 + resolved,
        category=category,
        day_due_at=None if category is None else T0 + HOUR,
        escalation_level=level,
        bridged_call=bridged,
    )


ACCEPTED = ticket(TicketStatus.ACCEPTED, owner=SECRETARY)
OTHER_BOX = "b1da000000000002"
POS = 3 << 32 | 10
"""The position (session 3, seq 10) of the ticket's latest press on BOX."""
BOX_T0 = 1_772_416_800
"""BOX's clock (its frames' timestamp) at the ticket's latest press."""
LATEST = BoxPress(BOX, POS, BOX_T0)
PLACED = replace(ticket(), latest_press=LATEST)
"""An open ticket whose latest press (at T0) is placed in BOX's order."""
CALL_SECRETARY = [(SECRETARY, "voice", "ticket_call"), (SECRETARY, "sms", "ticket_call")]


def escalated(contact: int, why: str) -> list[tuple[int, str, str]]:
    """The call and SMS to the next step, in the words of why it came to them."""
    return [
        (contact, "voice", f"ticket_escalated_{why}"),
        (contact, "sms", f"ticket_escalated_{why}"),
    ]


# The first one is called again once, told only that nobody has the call yet.
SECRETARY_AGAIN = [(SECRETARY, "voice", "ticket_still_waiting")]


def cancelled(name: str, before: Ticket, command: Command, at: float) -> Case:
    """A red key that cancels the open ticket: everyone told, the box hears, the clock stops."""
    return Case(
        name,
        before,
        command,
        at,
        status=TicketStatus.CANCELLED,
        events=[("cancelled", "red key within the cancel window")],
        notify=[
            (SECRETARY, "sms", "ticket_cancelled_by_resident"),
            (CHIEF, "sms", "ticket_cancelled_by_resident"),
        ],
        cleared=["ticket_accept"],
        box=["CANCELLED"],
        counts=["cancelled"],
        changes={"cancelled_at": T0 + at},
    )


@dataclass(frozen=True)
class Case:
    """A ticket, a command at a time, and every effect expected (none unless listed)."""

    name: str
    before: Ticket
    command: Command
    at: float
    """Seconds after T0."""
    context: Context = CTX
    status: TicketStatus | None = None
    """Expected status (unchanged if None)."""
    step: int | None = None
    no_answer: tuple[int, ...] = ()
    events: list[tuple[str, str]] = field(default_factory=list)
    notify: list[tuple[int, str, str]] = field(default_factory=list)
    clocks: list[tuple[str, float]] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    box: list[str] = field(default_factory=list)
    hangups: list[str] = field(default_factory=list)
    counts: list[str] = field(default_factory=list)
    changes: Mapping[str, object] = field(default_factory=dict)
    """Other ticket fields expected after the decision."""


def summary(d: Decision) -> dict[str, object]:
    return {
        "status": d.ticket.status,
        "step": d.ticket.cursor.step,
        "no_answer": tuple(sorted(d.ticket.cursor.no_answer)),
        "events": [(e.kind, e.detail) for e in d.events],
        "notify": [(n.contact_id, n.channel, n.template) for n in d.notifications],
        "clocks": [(c.clock.value, c.due_at - T0) for c in d.clocks],
        "cleared": [c.value for c in d.cleared],
        "box": [i.kind.name for i in d.indications],
        "hangups": [h.call_id for h in d.hangups],
        "counts": list(d.counts),
    }


def expected(case: Case) -> dict[str, object]:
    return {
        "status": case.status or case.before.status,
        "step": case.before.cursor.step if case.step is None else case.step,
        "no_answer": case.no_answer,
        "events": case.events,
        "notify": case.notify,
        "clocks": case.clocks,
        "cleared": case.cleared,
        "box": case.box,
        "hangups": case.hangups,
        "counts": case.counts,
    }


CASES = [
    # -- the green key ---------------------------------------------------------------------
    Case(
        "open: the secretary is called, the neighbour chief told, the accept clock starts",
        ticket(),
        Open(1),
        0,
        FRESH,
        events=[("opened", "presses=1")],
        notify=[*CALL_SECRETARY, (CHIEF, "sms", "ticket_informed")],
        clocks=[("ticket_accept", 300)],
        box=["CALL_REGISTERED"],
        counts=["opened"],
    ),
    Case(
        "open from a box without a household: recorded, nobody to call, the box hears so",
        ticket(),
        Open(1),
        0,
        NO_HOUSEHOLD,
        events=[("opened", "presses=1"), ("no_household", "box has no household")],
        box=["NOBODY_REACHED"],
        counts=["opened"],
    ),
    Case(
        "open when the secretary's number is bad: the deputy is called at once",
        ticket(),
        Open(1),
        0,
        BAD_SECRETARY,
        step=1,
        events=[("opened", "presses=1"), ("escalated", "deputy_secretary: nobody to call")],
        notify=[*escalated(DEPUTY, "unreachable"), (CHIEF, "sms", "ticket_informed")],
        clocks=[("ticket_accept", 300), ("ticket_accept", 300)],
        box=["CALL_REGISTERED"],
        counts=["opened", "escalated"],
        changes={"escalated": True},
    ),
    Case(
        "open remembers the press's place in its box's order",
        ticket(),
        Open(1, LATEST),
        0,
        FRESH,
        events=[("opened", "presses=1")],
        notify=[*CALL_SECRETARY, (CHIEF, "sms", "ticket_informed")],
        clocks=[("ticket_accept", 300)],
        box=["CALL_REGISTERED"],
        counts=["opened"],
        changes={"latest_press": LATEST},
    ),
    Case(
        "a press later in the box's order becomes the latest press",
        PLACED,
        PressGreen(1, BoxPress(BOX, POS + 1, BOX_T0 + 20)),
        20,
        events=[("pressed_again", "presses=2")],
        changes={"latest_press": BoxPress(BOX, POS + 1, BOX_T0 + 20)},
    ),
    Case(
        "a press earlier in the box's order (it arrived late) leaves the latest press",
        PLACED,
        PressGreen(1, BoxPress(BOX, POS - 1, BOX_T0 - 5)),
        20,
        events=[("pressed_again", "presses=2")],
        changes={"latest_press": LATEST, "last_press_at": T0 + 20},
    ),
    Case(
        "a press of another box of the household is taken as it comes",
        PLACED,
        PressGreen(1, BoxPress(OTHER_BOX, 1 << 32 | 1, 0)),
        20,
        events=[("pressed_again", "presses=2")],
        changes={"latest_press": BoxPress(OTHER_BOX, 1 << 32 | 1, 0)},
    ),
    Case(
        "presses within the renotify gap merge silently",
        ticket(),
        PressGreen(2),
        60,
        events=[("pressed_again", "presses=3")],
        changes={"press_count": 3, "last_press_at": T0 + 60, "last_notified_at": T0},
    ),
    Case(
        "a press after the gap calls the current step again",
        ticket(step=1, presses=3),
        PressGreen(1),
        120,
        events=[("pressed_again", "presses=4")],
        notify=[(DEPUTY, "voice", "ticket_call_repeat"), (DEPUTY, "sms", "ticket_call_repeat")],
        box=["CALL_REGISTERED"],
        changes={"press_count": 4, "last_notified_at": T0 + 120},
    ),
    Case(
        "a press after the gap on an accepted ticket calls its owner with the truth",
        ACCEPTED,
        PressGreen(1),
        600,
        events=[("pressed_again", "presses=2"), ("owner_alerted", "presses=2")],
        notify=[
            (SECRETARY, "voice", "ticket_pressed_again_accepted"),
            (SECRETARY, "sms", "ticket_pressed_again_accepted"),
        ],
    ),
    # -- the red key -----------------------------------------------------------------------
    Case(
        "red within the cancel window: cancelled, everyone told, the clock stops",
        ticket(),
        PressRed(),
        30,
        status=TicketStatus.CANCELLED,
        events=[("cancelled", "red key within the cancel window")],
        notify=[
            (SECRETARY, "sms", "ticket_cancelled_by_resident"),
            (CHIEF, "sms", "ticket_cancelled_by_resident"),
        ],
        cleared=["ticket_accept"],
        box=["CANCELLED"],
        counts=["cancelled"],
        changes={"cancelled_at": T0 + 30},
    ),
    Case(
        "red after the cancel window: recorded only",
        ticket(),
        PressRed(),
        61,
        events=[("red_key", "")],
    ),
    Case(
        "the window runs from the latest press",
        ticket(last_press=100),
        PressRed(),
        150,
        status=TicketStatus.CANCELLED,
        events=[("cancelled", "red key within the cancel window")],
        notify=[
            (SECRETARY, "sms", "ticket_cancelled_by_resident"),
            (CHIEF, "sms", "ticket_cancelled_by_resident"),
        ],
        cleared=["ticket_accept"],
        box=["CANCELLED"],
        counts=["cancelled"],
    ),
    Case(
        "red after acceptance, inside the window: the ticket stands",
        replace(ACCEPTED, last_press_at=T0 + 50),
        PressRed(),
        60,
        events=[("red_key", "")],
    ),
    Case(
        "red after acceptance with a call bridged to the resident: the call is ended",
        ticket(TicketStatus.ACCEPTED, owner=SECRETARY, bridged="CA1"),
        PressRed(),
        600,
        events=[("red_key", "call ended")],
        hangups=["CA1"],
        changes={"bridged_call": None},
    ),
    Case(
        "red pressed before the latest green though it arrived after it: nothing cancelled",
        PLACED,
        PressRed(BoxPress(BOX, POS - 1, BOX_T0 - 1)),
        5,
        events=[("red_key", "pressed before the call")],
    ),
    Case(
        "red pressed before the latest green, no box clock: nothing cancelled",
        replace(ticket(), latest_press=BoxPress(BOX, POS, 0)),
        PressRed(BoxPress(BOX, POS - 1, 0)),
        5,
        events=[("red_key", "pressed before the call")],
    ),
    Case(
        "red pressed before the latest green ends no bridged call",
        replace(ACCEPTED, latest_press=LATEST, bridged_call="CA1"),
        PressRed(BoxPress(BOX, POS - 1, BOX_T0 - 1)),
        600,
        events=[("red_key", "pressed before the call")],
    ),
    cancelled(
        "red after the latest green, within the window by the box's clock, arriving late",
        PLACED,
        PressRed(BoxPress(BOX, POS + 1, BOX_T0 + 59)),
        300,
    ),
    Case(
        "red after the latest green, outside the window by the box's clock, arriving at once",
        PLACED,
        PressRed(BoxPress(BOX, POS + 1, BOX_T0 + 61)),
        5,
        events=[("red_key", "")],
    ),
    cancelled(
        "red with its box's clock unset: the window is on arrival times",
        PLACED,
        PressRed(BoxPress(BOX, POS + 1, 0)),
        59,
    ),
    Case(
        "red of another box of the household: the window is on arrival times",
        PLACED,
        PressRed(BoxPress(OTHER_BOX, 1, BOX_T0 + 500)),
        61,
        events=[("red_key", "")],
    ),
    # -- thumbs ----------------------------------------------------------------------------
    Case(
        "thumbs up within the rating window rates the ticket",
        ticket(TicketStatus.RESOLVED, owner=SECRETARY, resolved=HOUR),
        Thumbs("up"),
        HOUR + 71 * HOUR,
        status=TicketStatus.RATED,
        events=[("rated_up", "")],
        counts=["rated"],
        changes={"rating": "up", "review_flag": False},
    ),
    Case(
        "thumbs down within the window flags a review for the township",
        ticket(TicketStatus.RESOLVED, owner=SECRETARY, resolved=HOUR),
        Thumbs("down"),
        2 * HOUR,
        status=TicketStatus.RATED,
        events=[("rated_down", "")],
        notify=[(TOWNSHIP, "sms", "ticket_review")],
        counts=["rated"],
        changes={"rating": "down", "review_flag": True},
    ),
    Case(
        "thumbs after the rating window leave the ticket alone; the box hears nothing to rate",
        ticket(TicketStatus.RESOLVED, owner=SECRETARY, resolved=HOUR),
        Thumbs("up"),
        HOUR + 73 * HOUR,
        box=["NOTHING_TO_RATE"],
        counts=["nothing_to_rate"],
    ),
    # -- people ----------------------------------------------------------------------------
    Case(
        "accept: the owner goes, the others are told, the one going gets the key-safe code",
        ticket(),
        Accept(SECRETARY, "voice_keypress"),
        120,
        status=TicketStatus.ACCEPTED,
        events=[("accepted", "")],
        notify=[
            (CHIEF, "sms", "ticket_taken"),
            (SECRETARY, "sms", "ticket_accepted"),
            (SECRETARY, "sms", "ticket_access"),
        ],
        clocks=[("ticket_arrive", 120 + 1800)],
        cleared=["ticket_accept"],
        box=["HELPER_ON_THE_WAY"],
        counts=["accepted"],
        changes={
            "owner_contact_id": SECRETARY,
            "accepted_at": T0 + 120,
            "owner_since": T0 + 120,
        },
    ),
    Case(
        "accept by a neighbour chief: no key-safe code",
        ticket(),
        Accept(CHIEF, "dashboard"),
        120,
        status=TicketStatus.ACCEPTED,
        events=[("accepted", "")],
        notify=[(SECRETARY, "sms", "ticket_taken"), (CHIEF, "sms", "ticket_accepted")],
        clocks=[("ticket_arrive", 120 + 1800)],
        cleared=["ticket_accept"],
        box=["HELPER_ON_THE_WAY"],
        counts=["accepted"],
    ),
    Case(
        "the second of two accepting at once is too late and learns the owner",
        ACCEPTED,
        Accept(DEPUTY, "voice_keypress"),
        61,
        events=[("accept_too_late", "")],
    ),
    Case(
        "press 2: declined, the next step is called at once",
        ticket(),
        Decline(SECRETARY, "voice_keypress"),
        90,
        step=1,
        events=[("declined", ""), ("escalated", "deputy_secretary: declined")],
        notify=[*escalated(DEPUTY, "declined"), *SECRETARY_AGAIN],
        clocks=[("ticket_accept", 90 + 300)],
        counts=["escalated"],
        changes={"escalated": True, "last_notified_at": T0 + 90},
    ),
    Case(
        "press 2 on a ticket someone has taken: recorded only",
        ACCEPTED,
        Decline(DEPUTY, "voice_keypress"),
        90,
        events=[("declined", "")],
    ),
    Case(
        "arrive: on site, the box hears, the arrive clock stops",
        ACCEPTED,
        Arrive(SECRETARY, "dashboard"),
        900,
        status=TicketStatus.ON_SITE,
        events=[("on_site", "")],
        cleared=["ticket_arrive"],
        box=["HELPER_ARRIVED"],
        counts=["on_site"],
        changes={"on_site_at": T0 + 900},
    ),
    Case(
        "resolve: both clocks stop",
        replace(ACCEPTED, status=TicketStatus.ON_SITE),
        Resolve(SECRETARY, "dashboard"),
        1800,
        status=TicketStatus.RESOLVED,
        events=[("resolved", "")],
        cleared=["ticket_arrive", "ticket_day"],
        box=["RESOLVED"],
        counts=["resolved"],
        changes={"resolved_at": T0 + 1800},
    ),
    Case(
        "classify starts the day clock of the category",
        ACCEPTED,
        Classify("ordinary", SECRETARY, "dashboard"),
        600,
        events=[("classified", "ordinary")],
        clocks=[("ticket_day", 600 + 2 * 86400)],
        changes={"category": "ordinary", "day_due_at": T0 + 600 + 2 * 86400},
    ),
    Case(
        "a call bridged by the owner is recorded",
        ACCEPTED,
        StartBridge(SECRETARY, "CA9"),
        300,
        events=[("bridged", "")],
        changes={"bridged_call": "CA9"},
    ),
    Case(
        "only the owner's call is bridged",
        ACCEPTED,
        StartBridge(DEPUTY, "CA9"),
        300,
    ),
    Case(
        "the bridged call ends",
        replace(ACCEPTED, bridged_call="CA9"),
        EndBridge("CA9"),
        400,
        events=[("bridge_ended", "")],
        changes={"bridged_call": None},
    ),
    # -- unanswered calls ------------------------------------------------------------------
    Case(
        "nobody at the step answers: the next step is called without waiting",
        ticket(),
        CallUnanswered(SECRETARY),
        150,
        step=1,
        events=[("no_answer", "step 0"), ("escalated", "deputy_secretary: no answer")],
        notify=[*escalated(DEPUTY, "no_answer"), *SECRETARY_AGAIN],
        clocks=[("ticket_accept", 150 + 300)],
        counts=["escalated"],
    ),
    Case(
        "one of two at the step did not answer: wait for the other",
        ticket(step=1),
        CallUnanswered(DEPUTY),
        400,
        TWO_DEPUTIES,
        no_answer=(DEPUTY,),
        events=[("no_answer", "step 1")],
    ),
    Case(
        "the second of two did not answer either: the next step",
        ticket(step=1, no_answer=frozenset({DEPUTY})),
        CallUnanswered(DEPUTY_2),
        420,
        TWO_DEPUTIES,
        step=2,
        events=[("no_answer", "step 1"), ("escalated", "grid_worker: no answer")],
        notify=[
            (GRID_WORKER, "voice", "ticket_escalated_no_answer"),
            (GRID_WORKER, "sms", "ticket_escalated_no_answer"),
        ],
        clocks=[("ticket_accept", 420 + 300)],
        counts=["escalated"],
    ),
    Case(
        "no answer from someone not at the step: recorded on the cursor, no escalation",
        ticket(step=1),
        CallUnanswered(SECRETARY),
        400,
        no_answer=(SECRETARY,),
        events=[("no_answer", "step 1")],
    ),
    Case(
        "no answer on a ticket someone has taken: nothing",
        ACCEPTED,
        CallUnanswered(DEPUTY),
        400,
    ),
    # -- clocks ----------------------------------------------------------------------------
    Case(
        "not accepted in time: the deputy is called and the secretary once more",
        ticket(),
        Due(ClockKind.ACCEPT, T0 + 300),
        300,
        step=1,
        events=[("escalated", "deputy_secretary: not accepted in 5 min")],
        notify=[*escalated(DEPUTY, "not_accepted"), *SECRETARY_AGAIN],
        clocks=[("ticket_accept", 600)],
        counts=["escalated"],
        changes={"escalated": True, "last_notified_at": T0 + 300},
    ),
    Case(
        "the next time-out climbs on, without calling the secretary again",
        ticket(step=1),
        Due(ClockKind.ACCEPT, T0 + 600),
        600,
        step=2,
        events=[("escalated", "grid_worker: not accepted in 5 min")],
        notify=[
            (GRID_WORKER, "voice", "ticket_escalated_not_accepted"),
            (GRID_WORKER, "sms", "ticket_escalated_not_accepted"),
        ],
        clocks=[("ticket_accept", 900)],
        counts=["escalated"],
    ),
    Case(
        "at night the grid worker (07:00-21:00) is passed over for the township",
        ticket(step=1),
        Due(ClockKind.ACCEPT, T0 + NIGHT),
        NIGHT,
        step=3,
        events=[("escalated", "township_duty: not accepted in 5 min")],
        notify=escalated(TOWNSHIP, "not_accepted"),
        clocks=[("ticket_accept", NIGHT + 300)],
        counts=["escalated"],
    ),
    Case(
        "the chain runs out: recorded, no clock, the box hears nobody could be reached",
        ticket(step=3),
        Due(ClockKind.ACCEPT, T0 + 1200),
        1200,
        events=[("escalation_exhausted", "not accepted in 5 min")],
        box=["NOBODY_REACHED"],
        counts=["escalation_exhausted"],
    ),
    Case(
        "a deadline missed while the gateway was down fires once, at its due time",
        ticket(),
        Due(ClockKind.ACCEPT, T0 + 300),
        3600,
        step=1,
        events=[("escalated", "deputy_secretary: not accepted in 5 min")],
        notify=[*escalated(DEPUTY, "not_accepted"), *SECRETARY_AGAIN],
        clocks=[("ticket_accept", 600)],
        counts=["escalated"],
        changes={"last_notified_at": T0 + 300},
    ),
    Case(
        "an accept clock on a ticket already taken does nothing",
        ACCEPTED,
        Due(ClockKind.ACCEPT, T0 + 300),
        300,
    ),
    Case(
        "accepted but not there in time: the step above the owner is called",
        ACCEPTED,
        Due(ClockKind.ARRIVE, T0 + 1860),
        1860,
        events=[("escalated", "deputy_secretary: not arrived")],
        notify=[(DEPUTY, "voice", "ticket_not_arrived"), (DEPUTY, "sms", "ticket_not_arrived")],
        counts=["escalated"],
        changes={"escalated": True},
    ),
    Case(
        "a classified matter past its day clock climbs the day chain",
        ticket(TicketStatus.ON_SITE, owner=CHIEF, category="urgent"),
        Due(ClockKind.DAY, T0 + HOUR),
        HOUR,
        events=[("overdue", "urgent: told group_leader")],
        notify=[(GROUP_LEADER, "sms", "ticket_overdue")],
        clocks=[("ticket_day", 3 * HOUR)],
        counts=["overdue"],
        changes={"escalation_level": 1, "day_due_at": T0 + 3 * HOUR},
    ),
    Case(
        "the day chain stops at its top",
        ticket(TicketStatus.ON_SITE, owner=CHIEF, category="urgent", level=3),
        Due(ClockKind.DAY, T0 + HOUR),
        HOUR,
        events=[("overdue", "urgent: told township_duty")],
        notify=[(TOWNSHIP, "sms", "ticket_overdue")],
        clocks=[("ticket_day", 3 * HOUR)],
        counts=["overdue"],
        changes={"escalation_level": 3},
    ),
    # -- the ticket keeps the rules it opened under ----------------------------------------
    Case(
        "a ticket opened under other rules follows its own chain and clocks",
        ticket(
            rules=replace(
                RULES,
                responder_chain=("village_secretary", "township_duty"),
                accept_within_s=600,
            )
        ),
        Due(ClockKind.ACCEPT, T0 + 600),
        600,
        step=1,
        events=[("escalated", "township_duty: not accepted in 10 min")],
        notify=[*escalated(TOWNSHIP, "not_accepted"), *SECRETARY_AGAIN],
        clocks=[("ticket_accept", 1200)],
        counts=["escalated"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule(case: Case) -> None:
    decision = decide(case.before, case.command, case.context, T0 + case.at)
    assert summary(decision) == expected(case)
    for name, value in case.changes.items():
        assert getattr(decision.ticket, name) == value, name
    assert all(e.at == (getattr(case.command, "due_at", T0 + case.at)) for e in decision.events)


REFUSED = [
    (ticket(), Arrive(SECRETARY, "api"), "ticket 7 is open; it cannot become on_site"),
    (ticket(), Resolve(SECRETARY, "api"), "ticket 7 is open; it cannot become resolved"),
    (
        replace(ticket(), status=TicketStatus.CANCELLED),
        Accept(SECRETARY, "api"),
        "ticket 7 is cancelled, not open",
    ),
    (
        ticket(TicketStatus.RESOLVED, owner=SECRETARY, resolved=HOUR),
        Classify("hard", SECRETARY, "api"),
        "ticket 7 is resolved; it cannot be classified",
    ),
    (
        ticket(TicketStatus.RATED, owner=SECRETARY, resolved=HOUR),
        Resolve(SECRETARY, "api"),
        "ticket 7 is rated; it cannot become resolved",
    ),
]


@pytest.mark.parametrize(("before", "command", "message"), REFUSED, ids=[m for *_, m in REFUSED])
def test_actions_that_do_not_fit_the_state_are_refused(
    before: Ticket, command: Command, message: str
) -> None:
    with pytest.raises(TicketError, match=message):
        decide(before, command, CTX, T0 + 600)


def test_accept_results_name_the_owner() -> None:
    won = decide(ticket(), Accept(DEPUTY, "voice_keypress"), CTX, T0 + 60)
    late = decide(won.ticket, Accept(SECRETARY, "voice_keypress"), CTX, T0 + 60)
    assert won.accept == AcceptResult(won=True, owner_contact_id=DEPUTY)
    assert late.accept == AcceptResult(won=False, owner_contact_id=DEPUTY)
    assert late.ticket == won.ticket


def test_the_key_safe_code_not_recorded_is_left_for_the_outbox_to_say() -> None:
    decision = decide(ticket(), Accept(SECRETARY, "voice_keypress"), NO_KEY_SAFE, T0 + 60)
    access = [n for n in decision.notifications if n.template == "ticket_access"]
    assert [(n.params["key_safe"], n.params["health"]) for n in access] == [(None, "高血压")]
    calls = decide(ticket(), Open(1), FRESH, T0).notifications
    assert all("4321" not in str(n.params) and "高血压" not in str(n.params) for n in calls)
    assert [n.urgent for n in calls] == [True, True, False]


def test_settings_changed_after_opening_do_not_touch_the_ticket() -> None:
    settings = TicketSettings()
    opened = ticket(rules=settings.rules_for(VILLAGE))
    settings.villages[VILLAGE] = TicketPolicy(responder_chain=["township_duty"], accept_within_s=60)
    assert settings.rules_for(VILLAGE) != opened.rules
    decision = decide(opened, Due(ClockKind.ACCEPT, T0 + 300), CTX, T0 + 300)
    assert [e.detail for e in decision.events] == ["deputy_secretary: not accepted in 5 min"]
    assert [(c.clock, c.due_at) for c in decision.clocks] == [(ClockKind.ACCEPT, T0 + 600)]


def test_the_transition_table_is_the_whole_story() -> None:
    assert set(TRANSITIONS) == set(TicketStatus)
    live = {s for s in TicketStatus if TRANSITIONS[s]} - {TicketStatus.RESOLVED}
    assert live == set(LIVE_STATUSES)
    assert not TRANSITIONS[TicketStatus.RATED]
    assert not TRANSITIONS[TicketStatus.CANCELLED]
