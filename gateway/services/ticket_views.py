"""Tickets as people look at them: a list with names and places, and one ticket's timeline.

A read model over the store's read ports. It reads each table once per request (tickets,
their audit rows, their messages with delivery and keypress, their ratings, the contacts
they name, the households and grid units they are in), never once per row, and returns
plain values; wording and local time are the reader's (the command line's) business.

TicketViewError (a GatewayError)
 ├── NoSuchTicketError    no ticket has that number
 ├── NoSuchVillageError   no village has that code or name
 └── NoSuchContactError   no contact, or more than one, answers to what was given
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from gateway.domain.grid import Contact, GridUnit
from gateway.domain.tickets import (
    Category,
    Outcome,
    Rating,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
)
from gateway.errors import GatewayError
from gateway.store.ports import Feedback, Store, TicketMessage, TicketQuery

__all__ = [
    "CLOSED_STATUSES",
    "NoSuchContactError",
    "NoSuchTicketError",
    "NoSuchVillageError",
    "PersonRef",
    "TicketView",
    "TicketViewError",
    "TicketViews",
    "Timeline",
    "TimelineItem",
    "match_contacts",
]

CLOSED_STATUSES = (TicketStatus.RESOLVED, TicketStatus.RATED, TicketStatus.CANCELLED)
_ID_DIGITS = 6
"""A contact given as fewer digits than this is an id; more, a phone number."""


class TicketViewError(GatewayError):
    """What was asked for cannot be shown as asked."""


class NoSuchTicketError(TicketViewError):
    """No ticket has this number."""

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"no ticket {ticket_id}")
        self.ticket_id = ticket_id


class NoSuchVillageError(TicketViewError):
    """No village, or more than one, has this code or name."""

    def __init__(self, text: str, candidates: Sequence[GridUnit]) -> None:
        super().__init__(f"village {text!r}: {len(candidates)} match")
        self.text = text
        self.candidates = tuple(candidates)


class NoSuchContactError(TicketViewError):
    """No contact, or more than one, answers to this id, name or phone number."""

    def __init__(self, text: str, candidates: Sequence[Contact]) -> None:
        super().__init__(f"contact {text!r}: {len(candidates)} match")
        self.text = text
        self.candidates = tuple(candidates)


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A contact as a ticket's reader needs to see one."""

    id: int
    name: str
    role: str
    phone: str


@dataclass(frozen=True, slots=True)
class TicketView:
    """One ticket with the names and places it refers to."""

    id: int
    status: TicketStatus
    household_code: str | None
    resident: str | None
    resident_phone: str | None
    address: str | None
    village: str | None
    """The village's name (its code if the grid has no such unit)."""
    device_id: str | None
    opened_at: float
    accepted_at: float | None
    closed_at: float | None
    """When it was resolved or cancelled (None while it is live)."""
    owner: PersonRef | None
    category: Category | None
    rating: Rating | None
    presses: int
    escalated: bool
    kind: TicketKind = "call"
    """A call for help, or an alarm of the water watch."""
    outcome: Outcome | None = None
    """What an alarm turned out to be, once labelled."""


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One thing that happened to a ticket.

    `kind` is an audit row's kind ("opened", "accepted", "escalated", ...), "message" for a
    notification (then `message` is set) or "rating" for a thumbs press (then `rating` is).
    """

    at: float
    kind: str
    channel: str | None = None
    person: PersonRef | None = None
    detail: str = ""
    message: TicketMessage | None = None
    rating: str | None = None
    handed_from: PersonRef | None = None
    """For "reassigned": who had the ticket (`person` is who handed it over)."""
    handed_to: PersonRef | None = None
    """For "reassigned": who has it now."""


@dataclass(frozen=True, slots=True)
class Timeline:
    """A ticket and everything that happened to it, oldest first."""

    ticket: TicketView
    places: tuple[str, ...]
    """The household's grid units by name, county first."""
    items: tuple[TimelineItem, ...]


_HANDED = re.compile(r"from (\d+|None)(?: to (\d+))?")


def _handed(event: TicketEvent) -> tuple[int | None, int | None]:
    """Who had a reassigned ticket and who got it.

    The detail is "from A to B" (the event's contact is who handed it over); rows written
    before that say "from A", with the new owner as the event's contact.
    """
    m = _HANDED.fullmatch(event.detail)
    if m is None:
        return None, None
    old = int(m[1]) if m[1] != "None" else None
    new = int(m[2]) if m[2] is not None else event.contact_id
    return old, new


def _person(contact: Contact) -> PersonRef:
    return PersonRef(contact.id, contact.name, contact.role, contact.phone)


def _digits(text: str) -> str:
    digits = re.sub(r"[\s\-()]", "", text)
    return digits.removeprefix("+86")


def match_contacts(contacts: Iterable[Contact], text: str) -> list[Contact]:
    """The contacts `text` names: by id (a few digits), by phone number, or by exact name."""
    wanted = text.strip()
    everyone = list(contacts)
    if wanted.isdigit() and len(wanted) < _ID_DIGITS:
        return [c for c in everyone if c.id == int(wanted)]
    phone = _digits(wanted)
    if phone.isdigit():
        return [c for c in everyone if _digits(c.phone) == phone]
    return [c for c in everyone if c.name == wanted]


class TicketViews:
    """Reads tickets for people: lists with filters, timelines, contacts by what people type."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def villages(self, text: str) -> tuple[str, ...]:
        """The code of the village with this code or name; NoSuchVillageError if not one."""
        units = await self._store.grid.units()
        villages = [u for u in units.values() if u.level == "village"]
        by_code = [u for u in villages if u.code == text]
        found = by_code or [u for u in villages if u.name == text]
        if len(found) != 1:
            raise NoSuchVillageError(text, found)
        return (found[0].code,)

    async def contact(self, text: str) -> Contact:
        """The one contact `text` names; NoSuchContactError (with candidates) if not one."""
        found = match_contacts(await self._store.grid.contacts(), text)
        if len(found) != 1:
            raise NoSuchContactError(text, found)
        return found[0]

    async def find(
        self,
        statuses: Sequence[TicketStatus] = (),
        village: str | None = None,
        household: str | None = None,
        opened_since: float | None = None,
    ) -> list[TicketView]:
        """Tickets matching every filter given (live ones whatever their age), newest first."""
        codes = await self.villages(village) if village is not None else ()
        tickets = await self._store.tickets.find(
            TicketQuery(tuple(statuses), codes, household, opened_since)
        )
        return await self._views(tickets)

    async def timeline(self, ticket_id: int) -> Timeline:
        """One ticket's whole story; NoSuchTicketError if there is no such ticket."""
        store = self._store
        ticket = await store.tickets.get(ticket_id)
        if ticket is None:
            raise NoSuchTicketError(ticket_id)
        events = await store.tickets.events(ticket_id)
        messages = await store.outbox.of_ticket(ticket_id)
        ratings = await store.tickets.feedback_of(ticket_id)
        ids = {e.contact_id for e in events} | {m.contact_id for m in messages}
        ids.add(ticket.owner_contact_id)
        handed = {n: _handed(e) for n, e in enumerate(events) if e.kind == "reassigned"}
        ids.update(i for pair in handed.values() for i in pair)
        people = await self._people(i for i in ids if i is not None)
        view, places = (await self._described([ticket], people, chains=True))[0]
        rated_at = {f.at for f in ratings}
        items: list[tuple[float, int, int, TimelineItem]] = []
        for n, e in enumerate(events):
            if e.kind.startswith("rated_") and e.at in rated_at:
                continue  # the thumbs press below says it, with the box that was pressed
            person = people.get(e.contact_id) if e.contact_id is not None else None
            item = TimelineItem(e.at, e.kind, e.channel, person, e.detail)
            if n in handed:
                old, new = handed[n]
                item = replace(
                    item,
                    handed_from=people.get(old) if old is not None else None,
                    handed_to=people.get(new) if new is not None else None,
                )
            items.append((e.at, 0, n, item))
        for n, m in enumerate(messages):
            person = people.get(m.contact_id) if m.contact_id is not None else None
            items.append(
                (
                    m.created_at,
                    1,
                    n,
                    TimelineItem(m.created_at, "message", m.channel, person, message=m),
                )
            )
        for n, f in enumerate(ratings):
            items.append((f.at, 0, len(events) + n, _rating_item(f)))
        items.sort(key=lambda item: item[:3])
        return Timeline(view, places, tuple(item[3] for item in items))

    async def views(self, tickets: Sequence[Ticket]) -> list[TicketView]:
        """Views of tickets already found (in their order), with names and places."""
        return await self._views(tickets)

    async def _people(self, ids: Iterable[int]) -> dict[int, PersonRef]:
        contacts = await self._store.grid.contacts_by_id(sorted(set(ids)))
        return {c.id: _person(c) for c in contacts}

    async def _views(self, tickets: Sequence[Ticket]) -> list[TicketView]:
        owners = await self._people(
            t.owner_contact_id for t in tickets if t.owner_contact_id is not None
        )
        return [view for view, _ in await self._described(tickets, owners, chains=False)]

    async def _described(
        self, tickets: Sequence[Ticket], people: dict[int, PersonRef], *, chains: bool
    ) -> list[tuple[TicketView, tuple[str, ...]]]:
        """Views of tickets, with their households' grid places (county first) if `chains`."""
        grid = self._store.grid
        codes = sorted({t.household_code for t in tickets if t.household_code is not None})
        households = {h.code: h for h in await grid.households_by_code(codes)}
        residents: dict[str, tuple[str, str | None]] = {}
        for r in await grid.residents_of(codes):
            residents.setdefault(r.household_code, (r.name, r.phone))
        units = await grid.units()
        out = []
        for t in tickets:
            household = households.get(t.household_code) if t.household_code else None
            resident = residents.get(t.household_code) if t.household_code else None
            village = units.get(t.village_code) if t.village_code else None
            owner = people.get(t.owner_contact_id) if t.owner_contact_id is not None else None
            places: list[str] = []
            if chains and household is not None:
                unit = units.get(household.neighbourhood_code)
                while unit is not None:
                    places.append(unit.name)
                    unit = units.get(unit.parent_code) if unit.parent_code else None
            closed = t.resolved_at if t.resolved_at is not None else t.cancelled_at
            view = TicketView(
                id=t.id,
                status=t.status,
                household_code=t.household_code,
                resident=resident[0] if resident else None,
                resident_phone=resident[1] if resident else None,
                address=household.address if household is not None else None,
                village=village.name if village is not None else t.village_code,
                device_id=t.device_id,
                opened_at=t.opened_at,
                accepted_at=t.accepted_at,
                closed_at=closed,
                owner=owner,
                category=t.category,
                rating=t.rating,
                presses=t.press_count,
                escalated=t.escalated,
                kind=t.kind,
                outcome=t.outcome,
            )
            out.append((view, tuple(reversed(places))))
        return out


def _rating_item(feedback: Feedback) -> TimelineItem:
    return TimelineItem(
        feedback.at, "rating", "box_key", detail=feedback.device_id, rating=feedback.rating
    )
