"""The API's request and response bodies, and their making from the facade's values.

Times are Unix seconds (float); the villages' time zone is in GET /api/v1/settings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.application import (
    NOTE_MAX_CHARS,
    Contact,
    GridUnit,
    HouseholdEntry,
    OperatorAlarm,
    PersonRef,
    ScopedDevice,
    TicketMessage,
    TicketView,
    TimelineItem,
)

CategoryName = Literal["urgent", "ordinary", "hard", "complex"]
OutcomeName = Literal["real", "late_rising", "away", "hospital", "meter_fault", "other"]
StatusName = Literal["open", "accepted", "on_site", "resolved", "rated", "cancelled"]
KindName = Literal["call", "no_water", "leak"]


class Unit(BaseModel):
    """One unit of the grid (county, township, village, area, group, neighbourhood)."""

    code: str
    level: str
    name: str
    parent_code: str | None


class Resident(BaseModel):
    """A resident; key_safe_code and health_notes are null unless the reader may see them."""

    id: int | None
    name: str
    phone: str | None
    lives_alone: bool
    five_guarantee: bool
    needs_care: bool
    consent: bool
    key_safe_code: str | None
    health_notes: str | None


class Household(BaseModel):
    """A household with its residents."""

    code: str
    neighbourhood_code: str
    address: str
    residents: list[Resident]


class HouseholdPage(BaseModel):
    """A page of households by code; pass `next_after` as `after` for the next page."""

    items: list[Household]
    total: int
    next_after: str | None


class ContactOut(BaseModel):
    """A person who is notified: a responder, an installer or family."""

    id: int
    name: str
    role: str
    phone: str
    language: str
    unit_code: str | None
    household_code: str | None
    available_from: str
    available_to: str
    bad_number: bool


class Device(BaseModel):
    """A box or meter (never its key)."""

    device_id: str
    kind: str
    household_code: str | None
    unit_code: str | None
    label: str | None
    enabled: bool
    status: str
    low_battery: bool
    battery_pct: int | None
    rssi_dbm: int | None
    firmware: str | None
    last_seen: float | None
    last_link: str | None


class DevicePage(BaseModel):
    """A page of devices by id."""

    items: list[Device]
    total: int
    offset: int
    limit: int


class ContactPage(BaseModel):
    """A page of contacts by id."""

    items: list[ContactOut]
    total: int
    offset: int
    limit: int


class AttachBody(BaseModel):
    """The household to attach a box to."""

    household_code: str = Field(min_length=1, max_length=40)


class Person(BaseModel):
    """A contact as a ticket names one."""

    id: int
    name: str
    role: str
    phone: str


class Ticket(BaseModel):
    """A call for help or an alarm of the water watch."""

    id: int
    status: StatusName
    kind: KindName
    household_code: str | None
    resident: str | None
    resident_phone: str | None
    address: str | None
    village: str | None
    device_id: str | None
    opened_at: float
    accepted_at: float | None
    closed_at: float | None
    owner: Person | None
    """Who is handling it."""
    category: CategoryName | None
    rating: Literal["up", "down"] | None
    presses: int
    escalated: bool
    outcome: OutcomeName | None


class TicketPage(BaseModel):
    """A page of tickets, newest first."""

    items: list[Ticket]
    total: int
    offset: int
    limit: int


class Message(BaseModel):
    """A notification about a ticket, with its delivery."""

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
    last_error: str | None


class TimelineEntry(BaseModel):
    """One thing that happened to a ticket."""

    at: float
    kind: str
    channel: str | None
    person: Person | None
    detail: str
    message: Message | None
    rating: str | None
    handed_from: Person | None
    handed_to: Person | None


class TicketDetail(BaseModel):
    """A ticket, its place in the grid (county first) and its timeline, oldest first."""

    ticket: Ticket
    places: list[str]
    timeline: list[TimelineEntry]


class AcceptOut(BaseModel):
    """Who owns the ticket after an accept: `won` is whether it is the caller."""

    won: bool
    owner_contact_id: int


class ClassifyBody(BaseModel):
    """The kind of matter (starts its day clock)."""

    category: CategoryName


class NoteBody(BaseModel):
    """A short note for the ticket's record."""

    text: str = Field(min_length=1, max_length=NOTE_MAX_CHARS)


class ResolveBody(BaseModel):
    """The matter is dealt with; an alarm says what it turned out to be."""

    category: CategoryName | None = None
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    outcome: OutcomeName | None = None


class ReassignBody(BaseModel):
    """The responder to hand the ticket to."""

    to_contact_id: int = Field(ge=1, le=2**62)


class LabelBody(BaseModel):
    """What a resolved alarm turned out to be."""

    outcome: OutcomeName


class Done(BaseModel):
    """The action was carried out."""

    ok: bool = True
    ticket_id: int


class Alarm(BaseModel):
    """An operator alarm (a device or the gateway needs a person)."""

    id: int
    kind: str
    device_id: str | None
    detail: str
    at: float
    last_at: float
    count: int
    cleared_at: float | None


class Alarms(BaseModel):
    """Operator alarms and the water watch's alarm tickets in scope."""

    operator: list[Alarm]
    water: list[Ticket]


class Statistics(BaseModel):
    """The report for a period: colours, statistics, cards, water alarms, per unit code."""

    start: float
    end: float
    days: float
    timezone: str
    colours: dict[str, dict[str, Any]]
    statistics: dict[str, dict[str, Any]]
    cards: list[dict[str, Any]]
    alarms: dict[str, dict[str, dict[str, Any]]]
    broken_promises: dict[str, dict[str, Any]]
    unused_boxes: list[str]


class SettingsOut(BaseModel):
    """The rules in force: the ticket chains and clocks, and the water watch's windows."""

    timezone: str
    tickets: dict[str, Any]
    water: dict[str, Any]


class WaterWatch(BaseModel):
    """A household's water watch, as a secretary or the family reads it."""

    household_code: str
    watched: bool
    reason: str
    """Why it is watched (lives_alone, opted_in) or not (not_alone, no_meter, off)."""
    resident: str | None
    meter: str | None
    phase: str | None
    """new, watching, asking, alarmed or away (null: no reading yet)."""
    last_reading_at: float | None
    today_first_use: str | None
    """Local time (HH:MM) of the day's first water use, if there was one."""
    away_until: float | None
    window_s: float
    open_alarms: list[Ticket]
    """Open water alarms of the household and who is handling them."""
    log: list[dict[str, Any]] | None
    """The watch's record (null for family)."""


class AwayBody(BaseModel):
    """Until when the home is away (Unix seconds)."""

    until: float = Field(gt=0, lt=1e11)


class WaterRequestOut(BaseModel):
    """An away request queued for the running gateway."""

    household_code: str
    action: str
    until: float | None
    requested_at: float


def unit_out(u: GridUnit) -> Unit:
    """A grid unit as the API shows it."""
    return Unit(code=u.code, level=u.level, name=u.name, parent_code=u.parent_code)


def household_out(entry: HouseholdEntry) -> Household:
    """A household (already redacted for its reader) as the API shows it."""
    h = entry.household
    return Household(
        code=h.code,
        neighbourhood_code=h.neighbourhood_code,
        address=h.address,
        residents=[
            Resident(
                id=r.id,
                name=r.name,
                phone=r.phone,
                lives_alone=r.lives_alone,
                five_guarantee=r.five_guarantee,
                needs_care=r.needs_care,
                consent=r.consent,
                key_safe_code=r.key_safe_code,
                health_notes=r.health_notes,
            )
            for r in entry.residents
        ],
    )


def contact_out(c: Contact) -> ContactOut:
    """A contact as the API shows it."""
    return ContactOut(
        id=c.id,
        name=c.name,
        role=c.role,
        phone=c.phone,
        language=c.language,
        unit_code=c.unit_code,
        household_code=c.household_code,
        available_from=c.available_from,
        available_to=c.available_to,
        bad_number=c.bad_number,
    )


def device_out(scoped: ScopedDevice) -> Device:
    """A device as the API shows it (no key)."""
    d = scoped.device
    return Device(
        device_id=d.device_id,
        kind=d.kind,
        household_code=d.household_code,
        unit_code=scoped.unit_code,
        label=d.label,
        enabled=d.enabled,
        status=d.status,
        low_battery=d.low_battery,
        battery_pct=d.battery_pct,
        rssi_dbm=d.rssi_dbm,
        firmware=d.firmware,
        last_seen=d.last_seen,
        last_link=d.last_link,
    )


def person_out(p: PersonRef | None) -> Person | None:
    """A person a ticket names."""
    return None if p is None else Person(id=p.id, name=p.name, role=p.role, phone=p.phone)


def ticket_out(t: TicketView) -> Ticket:
    """A ticket as the API shows it."""
    return Ticket(
        id=t.id,
        status=t.status.value,
        kind=t.kind,
        household_code=t.household_code,
        resident=t.resident,
        resident_phone=t.resident_phone,
        address=t.address,
        village=t.village,
        device_id=t.device_id,
        opened_at=t.opened_at,
        accepted_at=t.accepted_at,
        closed_at=t.closed_at,
        owner=person_out(t.owner),
        category=t.category,
        rating=t.rating,
        presses=t.presses,
        escalated=t.escalated,
        outcome=t.outcome,
    )


def message_out(m: TicketMessage) -> Message:
    """A notification as the API shows it."""
    return Message(
        id=m.id,
        created_at=m.created_at,
        channel=m.channel,
        contact_id=m.contact_id,
        recipient=m.recipient,
        template=m.template,
        status=m.status,
        delivery=m.delivery,
        keypress=m.keypress,
        sent_at=m.sent_at,
        last_error=m.last_error,
    )


def timeline_out(item: TimelineItem) -> TimelineEntry:
    """One timeline entry as the API shows it."""
    return TimelineEntry(
        at=item.at,
        kind=item.kind,
        channel=item.channel,
        person=person_out(item.person),
        detail=item.detail,
        message=None if item.message is None else message_out(item.message),
        rating=item.rating,
        handed_from=person_out(item.handed_from),
        handed_to=person_out(item.handed_to),
    )


def alarm_out(a: OperatorAlarm) -> Alarm:
    """An operator alarm as the API shows it."""
    return Alarm(
        id=a.id,
        kind=a.kind,
        device_id=a.device_id,
        detail=a.detail,
        at=a.at,
        last_at=a.last_at,
        count=a.count,
        cleared_at=a.cleared_at,
    )
