"""Read models for administrators: warning colours on the map, statistics, performance cards."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gateway.config import CardThresholds, WarningThresholds
from gateway.domain.grid import Contact, GridUnit
from gateway.domain.tickets import (
    ALARM_KINDS,
    FALSE_OUTCOMES,
    Outcome,
    Ticket,
    TicketKind,
    is_false_alarm,
)
from gateway.store.ports import DeviceReads, GridReads, TicketReads

WarningLevel = Literal["green", "yellow", "orange", "red"]
CardColour = Literal["blue", "yellow", "red"]
CLOSED = ("resolved", "rated")
LIVE = ("open", "accepted", "on_site")
UNPLACED = "unplaced"
"""The statistics key of calls from a box that belongs to no household in the grid."""


class ReportSource(Protocol):
    """The read ports reports need."""

    @property
    def tickets(self) -> TicketReads:
        """Tickets opened in a period, and live ones."""
        ...

    @property
    def grid(self) -> GridReads:
        """Grid units and contacts."""
        ...

    @property
    def devices(self) -> DeviceReads:
        """Call boxes with no key press since a time."""
        ...


@dataclass(frozen=True, slots=True)
class UnitWarning:
    """A unit's colour and why."""

    code: str
    level: str
    name: str
    colour: WarningLevel
    live: int
    overdue: int
    oldest_age_s: float


@dataclass(slots=True)
class TicketStats:
    """Figures for one village, township or person over a period."""

    requests: int = 0
    closed: int = 0
    cancelled: int = 0
    escalated: int = 0
    rated: int = 0
    satisfied: int = 0
    reviews: int = 0
    """Thumbs-down ratings: each opens a review for the township."""
    accept_on_time: int = 0
    accepted: int = 0
    arrive_on_time: int = 0
    arrived: int = 0
    day_on_time: int = 0
    day_clocked: int = 0
    """Classified matters whose outcome against their time limit is known: resolved, or
    past the limit."""
    accept_s: list[float] = field(default_factory=list)
    arrive_s: list[float] = field(default_factory=list)

    @property
    def closure_rate(self) -> float | None:
        """Closed share of the requests that were not cancelled."""
        return _ratio(self.closed, self.requests - self.cancelled)

    @property
    def satisfaction(self) -> float | None:
        """Thumbs-up share of the rated tickets."""
        return _ratio(self.satisfied, self.rated)

    @property
    def unrated_share(self) -> float | None:
        """Share of closed tickets the resident never rated."""
        return _ratio(self.closed - self.rated, self.closed)

    @property
    def accept_on_time_rate(self) -> float | None:
        """Accepted within the accept clock."""
        return _ratio(self.accept_on_time, self.accepted)

    @property
    def arrive_on_time_rate(self) -> float | None:
        """Arrived within the arrive clock."""
        return _ratio(self.arrive_on_time, self.arrived)

    @property
    def day_on_time_rate(self) -> float | None:
        """Classified matters resolved without missing their day clock."""
        return _ratio(self.day_on_time, self.day_clocked)

    def accepted_within(self, share: float) -> float | None:
        """The shortest time within which at least `share` of the calls were accepted.

        The calls are all but those the resident cancelled (never accepted); one not accepted
        (yet) counts as never, so the answer is infinite when fewer than `share` were
        accepted, and None when there were no such calls.
        """
        waiting = max(0, self.requests - self.cancelled - self.accepted)
        return within([*self.accept_s, *[math.inf] * waiting], share)

    def arrived_within(self, share: float) -> float | None:
        """The shortest time after accepting within which at least `share` of arrivals came."""
        return within(self.arrive_s, share)

    def accept_percentiles(self) -> tuple[float | None, float | None]:
        """Median and 90th percentile seconds to accept."""
        return _percentiles(self.accept_s)

    def arrive_percentiles(self) -> tuple[float | None, float | None]:
        """Median and 90th percentile seconds from accepting to arriving."""
        return _percentiles(self.arrive_s)


@dataclass(slots=True)
class AlarmStats:
    """One rule's alarms (no_water or leak) in one unit over a period, and their labels.

    Each alarm is labelled by the one who resolved it (or afterwards): real, or false and
    why. The false-alarm rate is of the labelled ones only: an alarm nobody labelled is
    counted as unlabelled, never as real or false.
    """

    alarms: int = 0
    real: int = 0
    false: int = 0
    causes: dict[Outcome, int] = field(default_factory=dict)
    """The false ones by why they were false (late rising, away, ...)."""

    @property
    def unlabelled(self) -> int:
        """Alarms nobody has said real or false of (yet)."""
        return self.alarms - self.real - self.false

    @property
    def labelled(self) -> int:
        """Alarms labelled real or false."""
        return self.real + self.false

    @property
    def false_rate(self) -> float | None:
        """False share of the labelled alarms; None when none is labelled."""
        return _ratio(self.false, self.labelled)

    def count(self, outcome: Outcome | None) -> None:
        """Count one alarm with its label (None: not labelled)."""
        self.alarms += 1
        if is_false_alarm(outcome):
            assert outcome is not None
            self.false += 1
            self.causes[outcome] = self.causes.get(outcome, 0) + 1
        elif outcome is not None:
            self.real += 1

    def cause_counts(self) -> list[tuple[Outcome, int]]:
        """The false alarms' causes with their counts, in the labels' own order."""
        return [(o, self.causes[o]) for o in FALSE_OUTCOMES if self.causes.get(o)]


@dataclass(frozen=True, slots=True)
class Card:
    """A neighbour chief's performance card."""

    contact_id: int
    name: str
    colour: CardColour
    on_time: float | None
    tickets: int


def _ratio(part: int, whole: int) -> float | None:
    return None if whole <= 0 else part / whole


def within(values: Sequence[float], share: float) -> float | None:
    """The smallest observed value that at least `share` of `values` do not exceed.

    Nearest rank, not interpolation: "half were accepted within 1.6 minutes" is then true
    of the calls themselves, and the figure is a time one of them actually took.
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def _percentiles(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return statistics.median(values), deciles[8]


def _ancestors(code: str | None, grid: dict[str, GridUnit]) -> list[GridUnit]:
    chain: list[GridUnit] = []
    while code is not None and code in grid and len(chain) < 10:
        chain.append(grid[code])
        code = grid[code].parent_code
    return chain


class Reports:
    """Computes colours, statistics and cards from the store; always current."""

    def __init__(
        self,
        source: ReportSource,
        warnings: WarningThresholds | None = None,
        cards: CardThresholds | None = None,
    ) -> None:
        self._source = source
        self._warnings = warnings or WarningThresholds()
        self._cards = cards or CardThresholds()

    def _overdue(self, ticket: Ticket, now: float) -> bool:
        policy = ticket.rules  # the clocks the ticket opened under
        if ticket.escalated or (ticket.day_due_at is not None and ticket.day_due_at <= now):
            return True
        if ticket.status == "open":
            return now - ticket.opened_at > policy.accept_within_s
        if ticket.status == "accepted" and ticket.accepted_at is not None:
            return now - ticket.accepted_at > policy.arrive_within_s
        return False

    async def warning_colours(self, now: float) -> dict[str, UnitWarning]:
        """The colour of every unit from neighbourhood up to county."""
        grid = await self._source.grid.units()
        live: dict[str, int] = defaultdict(int)
        overdue: dict[str, int] = defaultdict(int)
        oldest: dict[str, float] = defaultdict(float)
        for ticket in await self._source.tickets.live():
            late = self._overdue(ticket, now)
            for unit in _ancestors(ticket.neighbourhood_code, grid):
                live[unit.code] += 1
                overdue[unit.code] += int(late)
                oldest[unit.code] = max(oldest[unit.code], now - ticket.opened_at)
        out = {}
        for unit in grid.values():
            colour = self._colour(live[unit.code], overdue[unit.code], oldest[unit.code])
            out[unit.code] = UnitWarning(
                unit.code,
                unit.level,
                unit.name,
                colour,
                live[unit.code],
                overdue[unit.code],
                oldest[unit.code],
            )
        return out

    def _colour(self, live: int, overdue: int, oldest: float) -> WarningLevel:
        t = self._warnings
        if overdue >= t.red_overdue or (live and oldest >= t.red_oldest_s):
            return "red"
        if overdue >= t.orange_overdue:
            return "orange"
        if overdue >= t.yellow_overdue or live >= t.yellow_open:
            return "yellow"
        return "green"

    async def statistics(self, start: float, end: float) -> dict[str, TicketStats]:
        """Figures for the calls opened in [start, end), as of `end` (alarms are not calls).

        Keyed per unit (every level, county to neighbourhood), per person who accepted
        (`contact:<id>`), and UNPLACED for calls from boxes that belong to no household.
        """
        grid = await self._source.grid.units()
        out: dict[str, TicketStats] = defaultdict(TicketStats)
        for ticket in await self._source.tickets.opened(start, end):
            if ticket.kind != "call":
                continue  # an alarm is nobody's call: counted by `alarm_statistics`
            place = ticket.neighbourhood_code or ticket.village_code
            keys = [u.code for u in _ancestors(place, grid)] or [UNPLACED]
            if ticket.owner_contact_id is not None:
                keys.append(f"contact:{ticket.owner_contact_id}")
            for key in keys:
                self._count(out[key], ticket, end)
        return dict(out)

    def _count(self, stats: TicketStats, ticket: Ticket, now: float) -> None:
        policy = ticket.rules  # the clocks the ticket opened under
        stats.requests += 1
        stats.closed += ticket.status in CLOSED
        stats.cancelled += ticket.status == "cancelled"
        stats.escalated += ticket.escalated
        if ticket.status == "rated":
            stats.rated += 1
            stats.satisfied += ticket.rating == "up"
            stats.reviews += ticket.rating == "down"
        if ticket.accepted_at is not None:
            took = ticket.accepted_at - ticket.opened_at
            stats.accepted += 1
            stats.accept_s.append(took)
            stats.accept_on_time += took <= policy.accept_within_s
            if ticket.on_site_at is not None:
                went = ticket.on_site_at - ticket.accepted_at
                stats.arrived += 1
                stats.arrive_s.append(went)
                stats.arrive_on_time += went <= policy.arrive_within_s
        on_time = _day_clock_kept(ticket, now)
        if on_time is not None:
            stats.day_clocked += 1
            stats.day_on_time += on_time

    async def alarm_statistics(
        self, start: float, end: float
    ) -> dict[str, dict[TicketKind, AlarmStats]]:
        """The water watch's alarms raised in [start, end) and their labels, per rule.

        Keyed per unit (every level, county to neighbourhood, so a village's figures hold
        its neighbourhoods' and the county's the whole area's), then per alarm kind.
        """
        grid = await self._source.grid.units()
        out: dict[str, dict[TicketKind, AlarmStats]] = {}
        for ticket in await self._source.tickets.opened(start, end):
            if ticket.kind not in ALARM_KINDS:
                continue
            place = ticket.neighbourhood_code or ticket.village_code
            for unit in _ancestors(place, grid):
                per_kind = out.setdefault(unit.code, {k: AlarmStats() for k in ALARM_KINDS})
                per_kind[ticket.kind].count(ticket.outcome)
        return out

    async def chief_cards(self, start: float, end: float) -> list[Card]:
        """Blue, yellow or red cards for neighbour chiefs from their on-time share."""
        per_person = await self.statistics(start, end)
        chiefs = [c for c in await self._source.grid.contacts() if c.role == "neighbour_chief"]
        return [self._card(c, per_person.get(f"contact:{c.id}")) for c in chiefs]

    def _card(self, chief: Contact, stats: TicketStats | None) -> Card:
        if stats is None or stats.accepted == 0:
            return Card(chief.id, chief.name, "blue", None, 0)
        on_time = _ratio(
            stats.accept_on_time + stats.arrive_on_time, stats.accepted + stats.arrived
        )
        assert on_time is not None
        colour: CardColour = "red"
        if on_time >= self._cards.blue_on_time:
            colour = "blue"
        elif on_time >= self._cards.yellow_on_time:
            colour = "yellow"
        return Card(chief.id, chief.name, colour, on_time, stats.requests)

    async def grid(self) -> tuple[dict[str, GridUnit], dict[int, Contact]]:
        """Every grid unit by code and every contact by id, to name what the figures are about."""
        units = await self._source.grid.units()
        contacts = {c.id: c for c in await self._source.grid.contacts()}
        return units, contacts

    async def broken_promises(self, start: float, end: float) -> dict[str, BrokenPromise]:
        """Per village: call boxes offline for more than a day in [start, end), and hours."""
        return await broken_promises(self._source, start, end)

    async def unused_boxes(self, now: float, days: float = 90) -> list[str]:
        """Call boxes nobody has pressed for `days` (a box nobody uses is a problem too)."""
        return await self._source.devices.silent_boxes(now - days * 86400)


@dataclass(slots=True)
class BrokenPromise:
    """A village's call boxes that could not call for help for more than a day.

    A box offline is a promise broken: its resident's key press reaches nobody. Counted are
    the offline spells (from the offline transition to the box's next frame) that lasted more
    than `promise_s` and overlap the period; `hours` is their time within the period.
    """

    boxes: set[str] = field(default_factory=set)
    hours: float = 0.0


async def broken_promises(
    source: ReportSource, start: float, end: float, promise_s: float = 86_400.0
) -> dict[str, BrokenPromise]:
    """Per village code (UNPLACED for boxes outside the grid): boxes offline over a day."""
    spells = [
        s
        for s in await source.devices.offline_spells(start, end)
        if (s.ended if s.ended is not None else end) - s.began > promise_s
    ]
    if not spells:
        return {}
    grid = await source.grid.units()
    codes = sorted({s.household_code for s in spells if s.household_code is not None})
    neighbourhood = {
        h.code: h.neighbourhood_code for h in await source.grid.households_by_code(codes)
    }
    out: dict[str, BrokenPromise] = defaultdict(BrokenPromise)
    for spell in spells:
        place = neighbourhood.get(spell.household_code or "")
        village = next((u.code for u in _ancestors(place, grid) if u.level == "village"), UNPLACED)
        within = min(spell.ended if spell.ended is not None else end, end) - max(spell.began, start)
        out[village].boxes.add(spell.device_id)
        out[village].hours += max(0.0, within) / 3600
    return dict(out)


def _day_clock_kept(ticket: Ticket, now: float) -> bool | None:
    """Whether a classified matter was resolved within its category's time limit.

    None while that is not known: not classified, cancelled, or still open within the limit.

    Each missed limit moves `day_due_at` on and raises `escalation_level`, so a matter with
    level 0 still carries its first limit.
    """
    if ticket.category is None or ticket.day_due_at is None or ticket.status == "cancelled":
        return None
    if ticket.escalation_level > 0:
        return False
    if ticket.status in CLOSED and ticket.resolved_at is not None:
        return ticket.resolved_at <= ticket.day_due_at
    if ticket.status in LIVE and ticket.day_due_at <= now:
        return False
    return None


def by_level(warnings: Iterable[UnitWarning], level: str) -> list[UnitWarning]:
    """The warnings of one grid level, by code."""
    return sorted((w for w in warnings if w.level == level), key=lambda w: w.code)
