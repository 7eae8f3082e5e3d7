"""The zero-use rule against a simulated village: false alarms, detections, delays.

Run `python -m bench.water_watch [--people 150] [--months 6] [--seed 13]` from the
repository root; `--calibrate` first searches the population's one free knob (see below).

The population: elders living alone, each with their own habits drawn once (wake and
bed times, how often they get up at night, how long they go between uses when awake,
naps, outings, late-rising days, visitors, trips away, hospital stays, how reliably they
answer "are you OK?"). Each person's months are generated as water uses at minute
resolution; the meter reports the cumulative volume every 15 minutes. Every rule is the
real `gateway.domain.water.decide` with different `WaterRules`, fed the same readings and
its own deadlines in accelerated time (no broker, no store, no clock): readings whose
volume changed, the first unchanged one after a change (it ends a flow), and the reading
just before each due deadline (what the meter last said). Unchanged readings in between
change nothing in the rule but the time of the last reading, so they are not sent.

Incapacitations: each person falls once, at a random moment while at home (night
included), in the second half of the period. The rule's state at that moment is copied
(it is an immutable value) and run on without any more use, key press or answer, up to
72 hours: the first zero-use alarm after the fall is the detection. The person's normal
months continue unchanged, so every alarm on the normal timeline is a false one, each
labelled with its cause from the simulation's ground truth (night, late rising, daytime
quiet, away, hospital).

Calibration: Sakaki (Nagano) saw 1,124 no-use alarms from 40 elders over 19 months, about
1.5 per person-month, with a fixed 8-hour all-day rule, mostly from late rising, hospital
stays and nights away. Trips (0.4 per person-month), hospital stays (0.5 a year), night
uses (1.5 a night on average) and late-rising days (1-6 % of days) are fixed from common
figures; the one knob left free is the night: the average time from the last use before
sleep to the first after it (`World.sleep_h`). `--calibrate` searches it by bisection on a
separate population (seed + 1000) until the fixed 8-hour all-day rule gives 1.5 alarms per
person-month. The bisection on 60 people over 3 months is noisy (6.5 to 7 h all gave 1.4 to
1.6); the default `World.sleep_h` = 6.7 h gave 1.5 on 100 people over 4 months, and the
table prints what it gives on the run's own population.

Bidao's rule is the default `WaterRules` (learned routine, active hours, "are you OK?"
first). Whether residents and families use away mode is an assumption (`--mark-away`,
`--mark-hospital`), so the same rule is also shown without any away mode. The question goes
to the box, and (`water.ask_by_phone`, on by default) to the resident's own phone as a call
where pressing 1 answers: at home either may be answered (`answer_p`); out or away only the
phone, by the `phone_share` of residents with a phone on record, each answering it away from
home with their own likelihood (uniform 0.4-0.9, an assumption); in hospital never. An
answer away from home presses 2 ("not at home": the home is marked away for
`water.away_by_phone_s`, which water used at home ends) `press_away` of the time, else 1 (an
assumption). The row asking on the box alone shows what the phone adds. The last row adds
the morning check (`water.morning_check`, off by default): no water by the household's usual
first-use time plus `--morning-margin-h` asks at once, so a fall in the evening or the night
is found that morning. The delays by when the fall happened show where the time goes:
quiet counts only in active hours, so a fall in the evening waits for the next day.
"""

from __future__ import annotations

import argparse
import bisect
import math
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.config import WaterWatchSettings
from gateway.domain.water import (
    Answered,
    AwaySet,
    Context,
    Due,
    Event,
    Phase,
    Reading,
    Watchers,
    WaterRules,
    WaterWatch,
    active_seconds,
    decide,
    new_watch,
)

ZONE = ZoneInfo("Asia/Shanghai")
MIN = 60.0
HOUR = 3600.0
DAY = 86400.0
AWAY_BY_PHONE_S = WaterWatchSettings().away_by_phone_s
"""How long pressing 2 on the safety call marks the home away."""
SLOT = 900.0
"""The meter reports every 15 minutes."""
MONTH_DAYS = 30.44
T0 = datetime(2026, 1, 5, tzinfo=ZONE).timestamp()
"""Local midnight of the first simulated day (Asia/Shanghai keeps no summer time)."""
WATCHERS = Watchers(family=(1,), community_workers=(2,), installers=(3,))
CONTEXT = Context(zone=ZONE, watchers=WATCHERS)
BRANCH_LIMIT_S = 72 * HOUR
ACTIVE = WaterRules()


@dataclass(frozen=True, slots=True)
class World:
    """The population's assumptions."""

    sleep_h: float = 6.7
    """Hours from the last use at night to the first in the morning, on average (calibrated,
    see the docstring)."""
    nocturia: float = 1.5
    """Mean night uses per night of the median person (older adults: about 1.5)."""
    trips_pm: float = 0.4
    """Trips with nights away per person-month (the person's own rate varies around it)."""
    hospital_pm: float = 0.04
    mark_away: float = 0.6
    """Share of trips the resident or family marks away (Bidao's away mode)."""
    mark_hospital: float = 0.7
    """Share of hospital stays the family marks away, some hours after admission."""
    phone_share: float = 0.8
    """Share of residents with a phone of their own on record (rung with "are you OK?")."""
    press_away: float = 0.6
    """Share of phone answers given away from home that press 2 (away) rather than 1."""


@dataclass(frozen=True, slots=True)
class Person:
    """One resident's habits."""

    wake_min: float
    bed_min: float
    """Minutes after midnight of the day before the wake (so 21:00 is 1260)."""
    jitter_min: float
    nocturia: float
    late_p: float
    use_gap_h: float
    nap_p: float
    outing_p: float
    visitor_p: float
    trip_rate: float
    answer_p: float
    phone_p: float = 0.0
    """How likely they answer their own phone when away from home (0: no phone on record)."""
    press_away: float = 0.0
    """How likely an answer on the phone away from home is 2 (away) rather than 1."""


@dataclass(slots=True)
class Life:
    """A person's simulated months."""

    uses: list[float] = field(default_factory=list)
    litres: list[float] = field(default_factory=list)
    absences: list[tuple[float, float, str]] = field(default_factory=list)
    outings: list[tuple[float, float]] = field(default_factory=list)
    naps: list[tuple[float, float]] = field(default_factory=list)
    marks: list[tuple[float, float]] = field(default_factory=list)
    """Away mode: (set at, until)."""
    fall_at: float = 0.0
    end: float = 0.0


def draw_person(rng: random.Random, world: World) -> Person:
    """One resident's habits, drawn once."""
    wake = min(8 * 60, max(4 * 60 + 30, rng.gauss(6 * 60, 35)))
    sleep = min(11.0, max(6.0, rng.gauss(world.sleep_h, 0.6)))
    return Person(
        wake_min=wake,
        bed_min=wake + 24 * 60 - sleep * 60,
        jitter_min=rng.uniform(10, 30),
        nocturia=world.nocturia * rng.lognormvariate(0, 0.45),
        late_p=rng.uniform(0.01, 0.06),
        use_gap_h=rng.uniform(1.5, 3.0),
        nap_p=rng.uniform(0.2, 0.8),
        outing_p=rng.uniform(0.1, 0.4),
        visitor_p=rng.uniform(0.02, 0.08),
        trip_rate=world.trips_pm / MONTH_DAYS * rng.gammavariate(1.5, 1 / 1.5),
        answer_p=rng.uniform(0.75, 0.97),
    )


def _inside(
    t: float, spans: Sequence[tuple[float, float]] | Sequence[tuple[float, float, str]]
) -> bool:
    return any(s[0] <= t < s[1] for s in spans)


def _absences(life: Life, person: Person, days: int, rng: random.Random, world: World) -> None:
    """Trips with nights away and hospital stays, and which of them are marked away."""
    d = 0
    while d < days:
        md = T0 + d * DAY
        if rng.random() < world.hospital_pm / MONTH_DAYS:
            start = md + rng.uniform(7, 21) * HOUR
            stay = rng.randint(2, 10)
            end = md + stay * DAY + rng.uniform(9, 16) * HOUR
            life.absences.append((start, end, "hospital"))
            if rng.random() < world.mark_hospital:
                life.marks.append((start + rng.uniform(1, 8) * HOUR, end + rng.uniform(0, 1) * DAY))
            d += stay + 1
            continue
        if rng.random() < person.trip_rate:
            nights = rng.choices((1, 2, 3), (0.6, 0.25, 0.15))[0]
            start = md + rng.uniform(8, 17) * HOUR
            end = md + nights * DAY + rng.uniform(9, 17) * HOUR
            life.absences.append((start, end, "away"))
            if rng.random() < world.mark_away:
                planned = end - (rng.uniform(1, 24) * HOUR if rng.random() < 0.2 else 0.0)
                life.marks.append(
                    (start - rng.uniform(0, 0.5) * HOUR, planned + rng.uniform(0, 2) * HOUR)
                )
            d += nights + 1
            continue
        d += 1


def live(  # noqa: PLR0912 - one branch per part of a day
    person: Person, days: int, rng: random.Random, world: World
) -> Life:
    """A person's `days` of water use, absences and away marks, and the moment of the fall."""
    life = Life(end=T0 + days * DAY)
    _absences(life, person, days, rng, world)

    def use(t: float) -> None:
        life.uses.append(t)
        life.litres.append(rng.uniform(2, 12))

    for d in range(days):
        md = T0 + d * DAY
        wake = md + (person.wake_min + rng.gauss(0, person.jitter_min)) * MIN
        if rng.random() < person.late_p:
            wake += rng.uniform(1.5, 5) * HOUR
        bed = md + (person.bed_min + rng.gauss(0, person.jitter_min)) * MIN
        out: list[tuple[float, float]] = []
        if rng.random() < person.outing_p:
            start = md + rng.uniform(8, 15) * HOUR
            out.append((start, start + rng.uniform(1, 5) * HOUR))
        naps: list[tuple[float, float]] = []
        if rng.random() < person.nap_p:
            start = md + rng.uniform(12.5, 14) * HOUR
            naps.append((start, start + rng.uniform(0.5, 2) * HOUR))
        life.outings.extend(out)
        life.naps.extend(naps)
        gap = person.use_gap_h * (0.5 if rng.random() < person.visitor_p else 1.0)
        day_uses = [wake + rng.uniform(0, 10) * MIN, bed - rng.uniform(0, 15) * MIN]
        t = day_uses[0]
        while True:
            t += rng.gammavariate(2, gap / 2) * HOUR
            if t >= bed:
                break
            day_uses.append(t)
        for meal in (
            wake + rng.uniform(20, 60) * MIN,
            md + rng.uniform(11, 12.5) * HOUR,
            md + rng.uniform(17, 18.5) * HOUR,
        ):
            if wake < meal < bed:
                day_uses.extend(meal + rng.uniform(0, 30) * MIN for _ in range(rng.randint(2, 3)))
        for start, end in (*out, *naps):
            day_uses = [u for u in day_uses if not start <= u < end]
            if start < bed:
                day_uses.append(end + rng.uniform(0, 15) * MIN)
        next_wake = md + DAY + person.wake_min * MIN
        nights = _poisson(rng, person.nocturia)
        day_uses.extend(rng.uniform(bed, next_wake) for _ in range(nights))
        for u in day_uses:
            if T0 <= u < life.end and not _inside(u, life.absences):
                use(u)
    for start, end, _ in life.absences:
        use(start - rng.uniform(0, 20) * MIN)
        if end < life.end:
            use(end + rng.uniform(0, 20) * MIN)
    order = sorted(range(len(life.uses)), key=life.uses.__getitem__)
    life.uses = [life.uses[i] for i in order]
    life.litres = [life.litres[i] for i in order]
    # The fall: a random moment at home in the second half, after the routine is learned.
    while True:
        t = T0 + rng.uniform(max(days / 2, 35), days - 3) * DAY
        if not _inside(t, life.absences) and not _inside(t, life.outings):
            life.fall_at = t
            return life


def _poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# -- the meter ------------------------------------------------------------------------


@dataclass(slots=True)
class Meter:
    """The 15-minute readings of one life: changed slots and the first unchanged after."""

    slots: list[float]
    volumes: list[float]

    @classmethod
    def of(cls, life: Life, until: float | None = None, stop: float | None = None) -> Meter:
        """Readings up to `until`; uses after `stop` (the fall) never happen."""
        totals: dict[int, float] = {}
        for t, litres in zip(life.uses, life.litres, strict=True):
            if stop is not None and t > stop:
                break
            k = math.ceil((t - T0) / SLOT)
            totals[k] = totals.get(k, 0.0) + litres
        end = math.ceil(((until or life.end) - T0) / SLOT)
        slots, volumes, cum = [T0], [0.0], 0.0
        for k in sorted(totals):
            if k > end:
                break
            cum += totals[k]
            if slots[-1] != T0 + k * SLOT:
                slots.append(T0 + k * SLOT)
                volumes.append(cum)
            if k + 1 not in totals and k + 1 <= end:
                slots.append(T0 + (k + 1) * SLOT)  # the first unchanged one ends a flow
                volumes.append(cum)
        return cls(slots, volumes)

    def volume_at(self, t: float) -> float:
        """The cumulative volume the reading at or before `t` showed."""
        i = bisect.bisect_right(self.slots, t) - 1
        return self.volumes[max(i, 0)]


# -- running one rule -----------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What one rule did for one person."""

    false_alarms: list[str] = field(default_factory=list)
    asks: int = 0
    answered: int = 0
    reminders: int = 0
    detected_after_s: float | None = None
    detected_active_s: float | None = None
    fall_part: str = ""
    """When in the day the fall happened (`part_of_day`)."""


@dataclass(slots=True)
class Run:
    """One rule over one person's life: the state, the static events, the pending answer."""

    rules: WaterRules
    life: Life
    person: Person
    rng: random.Random
    watch: WaterWatch
    outcome: Outcome
    answers: bool = True
    by_phone: bool = False
    """"Are you OK?" also rings the resident's own phone."""
    answer_at: float | None = None
    answer_away: bool = False
    """The pending answer is 2 on the phone (away), not 1."""
    alarm_at: float | None = None

    def apply(self, event: Event) -> None:
        decision = decide(self.watch, event, self.rules, CONTEXT)
        self.watch = decision.watch
        for ask in decision.asks:
            self.outcome.asks += 1
            at = ask.answer_by - self.rules.answer_window_s
            p = self.answer_p(at) if self.answers else 0.0
            if p > 0 and self.rng.random() < p:
                self.answer_at = at + self.rng.uniform(0.5, 9) * MIN
                away = not self.at_home(at)
                self.answer_away = away and self.rng.random() < self.person.press_away
        for notice in decision.notices:
            if notice.kind == "zero_use_alarm":
                self.alarm_at = notice.facts.at
                if self.answers:
                    self.outcome.false_alarms.append(
                        self.cause(notice.facts.at, notice.facts.quiet_since)
                    )
            elif notice.kind == "away_reminder":
                self.outcome.reminders += 1
        if "answered" in decision.counts:
            self.outcome.answered += 1

    def at_home(self, t: float) -> bool:
        return not _inside(t, self.life.absences) and not _inside(t, self.life.outings)

    def answer_p(self, at: float) -> float:
        """How likely the resident answers "are you OK?" asked at `at`.

        At home: on the box or the phone alike (half as likely during a nap). Out or away:
        only on their own phone, if the rule rings it and they have one; in hospital, never.
        """
        if self.at_home(at):
            return self.person.answer_p * (0.5 if _inside(at, self.life.naps) else 1.0)
        if not self.by_phone or any(
            s <= at < e and kind == "hospital" for s, e, kind in self.life.absences
        ):
            return 0.0
        return self.person.phone_p

    def cause(self, at: float, quiet_since: float | None) -> str:
        for start, end, kind in self.life.absences:
            if start - HOUR <= at < end + HOUR:
                return kind
        if _inside(at, self.life.outings):
            return "out of the house"
        if not _is_active(at):
            return "night"
        if (
            quiet_since is not None
            and active_seconds(quiet_since, at, ACTIVE, ZONE) < at - quiet_since
        ):
            return "late rising"
        return "daytime quiet"

    def run(
        self, events: Sequence[tuple[float, Event]], meter: Meter, until: float
    ) -> float | None:
        """Feed the events and the rule's own deadlines in time order up to `until`; the
        time of the last zero-use alarm, if any."""
        i, n = 0, len(events)
        while True:
            static = events[i][0] if i < n else math.inf
            due = self.watch.due_at if self.watch.due_at is not None else math.inf
            answer = self.answer_at if self.answer_at is not None else math.inf
            t = min(static, due, answer)
            if t > until:
                return self.alarm_at
            if answer == t:
                self.answer_at = None
                if self.answer_away:
                    self.apply(AwaySet(t, t + AWAY_BY_PHONE_S))
                else:
                    self.apply(Answered(t))
            elif due == t:
                slot = T0 + math.floor((t - T0) / SLOT) * SLOT
                last = self.watch.last_reading_at
                if last is None or slot > last:
                    self.apply(Reading(slot, meter.volume_at(slot)))
                self.apply(Due(t))
            else:
                self.apply(events[i][1])
                i += 1


PARTS_OF_DAY = (
    ("morning 06-12", 6, 12),
    ("afternoon 12-17", 12, 17),
    ("evening 17-22", 17, 22),
    ("night 22-06", 22, 30),
)


def part_of_day(t: float) -> str:
    """The part of the local day `t` falls in (PARTS_OF_DAY)."""
    hour = datetime.fromtimestamp(t, ZONE).hour
    hour = hour + 24 if hour < PARTS_OF_DAY[0][1] else hour
    return next(name for name, start, end in PARTS_OF_DAY if start <= hour < end)


def _is_active(t: float) -> bool:
    local = datetime.fromtimestamp(t, ZONE)
    minute = local.hour * 60 + local.minute
    return ACTIVE.active_from_min <= minute < ACTIVE.active_until_min


def run_rule(
    rules: WaterRules,
    person: Person,
    life: Life,
    meter: Meter,
    seed: int,
    *,
    away_mode: bool,
    by_phone: bool = False,
) -> Outcome:
    """One rule over one person's months, and over the copy in which they fall."""
    rng = random.Random(seed)
    events: list[tuple[float, Event]] = [
        (t, Reading(t, v)) for t, v in zip(meter.slots, meter.volumes, strict=True)
    ]
    if away_mode:
        events.extend((at, AwaySet(at, until)) for at, until in life.marks)
        events.sort(key=lambda e: e[0])
    outcome = Outcome(fall_part=part_of_day(life.fall_at))
    main = Run(rules, life, person, rng, new_watch("h"), outcome, by_phone=by_phone)
    split = bisect.bisect_right([e[0] for e in events], life.fall_at)
    main.run(events[:split], meter, life.fall_at)
    # The fall: from here on, nothing but unchanged readings and the rule's own clocks.
    fallen = Meter.of(life, until=life.fall_at + BRANCH_LIMIT_S, stop=life.fall_at)
    tail: list[tuple[float, Event]] = [
        (t, Reading(t, v))
        for t, v in zip(fallen.slots, fallen.volumes, strict=True)
        if t > life.fall_at
    ]
    branch = replace(main, watch=main.watch, outcome=Outcome(), answers=False, answer_at=None)
    if main.watch.phase == Phase.ALARMED:
        outcome.detected_after_s = 0.0
        outcome.detected_active_s = 0.0
    else:
        branch.alarm_at = None
        alarm_at = branch.run(tail, fallen, life.fall_at + BRANCH_LIMIT_S)
        if alarm_at is not None:
            outcome.detected_after_s = alarm_at - life.fall_at
            outcome.detected_active_s = active_seconds(life.fall_at, alarm_at, ACTIVE, ZONE)
    main.run(events[split:], meter, life.end)
    return outcome


# -- the table ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """A row of the table."""

    name: str
    rules: WaterRules
    away_mode: bool = False
    by_phone: bool = False


def _fixed(hours: float, *, all_day: bool) -> WaterRules:
    return WaterRules(
        active_from_min=0 if all_day else ACTIVE.active_from_min,
        active_until_min=24 * 60 if all_day else ACTIVE.active_until_min,
        window_s=hours * HOUR,
        min_window_s=hours * HOUR,
        max_window_s=hours * HOUR,
        learn=False,
        ask_first=False,
    )


def rows(bidao: WaterRules) -> tuple[Rule, ...]:
    """The table's rules: the fixed ones of other programmes, and Bidao's."""
    return (
        Rule("fixed 6 h, all day", _fixed(6, all_day=True)),
        Rule("fixed 8 h, all day", _fixed(8, all_day=True)),
        Rule("fixed 12 h, all day", _fixed(12, all_day=True)),
        Rule("fixed 8 h, active hours", _fixed(8, all_day=False)),
        Rule("Bidao: ask on the box + away", bidao, away_mode=True),
        Rule("Bidao: box and phone + away", bidao, away_mode=True, by_phone=True),
        Rule("Bidao: box and phone, no away", bidao, by_phone=True),
        Rule(
            "Bidao + morning check",
            replace(bidao, morning_check=True),
            away_mode=True,
            by_phone=True,
        ),
    )


RULES = rows(WaterRules())


@dataclass(slots=True)
class Totals:
    """One rule over the population."""

    person_months: float = 0.0
    causes: Counter[str] = field(default_factory=Counter)
    asks: int = 0
    answered: int = 0
    reminders: int = 0
    falls: int = 0
    delays_h: list[float] = field(default_factory=list)
    active_delays_h: list[float] = field(default_factory=list)
    delays_by_part: dict[str, list[float]] = field(default_factory=dict)

    def add(self, outcome: Outcome, months: float) -> None:
        self.person_months += months
        self.causes.update(outcome.false_alarms)
        self.asks += outcome.asks
        self.answered += outcome.answered
        self.reminders += outcome.reminders
        self.falls += 1
        if outcome.detected_after_s is not None and outcome.detected_active_s is not None:
            self.delays_h.append(outcome.detected_after_s / HOUR)
            part = self.delays_by_part.setdefault(outcome.fall_part, [])
            part.append(outcome.detected_after_s / HOUR)
            self.active_delays_h.append(outcome.detected_active_s / HOUR)


def population(people: int, days: int, seed: int, world: World) -> list[tuple[Person, Life, Meter]]:
    """The same people and lives for every rule."""
    rng = random.Random(seed)
    # Phones are drawn from a stream of their own, so the habits and lives of the same seed
    # are those of the rows without the phone (their figures stay comparable across runs).
    phones = random.Random(seed * 31 + 7)
    out = []
    for _ in range(people):
        person = draw_person(rng, world)
        has_phone = phones.random() < world.phone_share
        person = replace(
            person,
            phone_p=phones.uniform(0.4, 0.9) if has_phone else 0.0,
            press_away=world.press_away,
        )
        life = live(person, days, rng, world)
        out.append((person, life, Meter.of(life)))
    return out


def evaluate(
    rows: Sequence[Rule], pop: Sequence[tuple[Person, Life, Meter]], days: int, seed: int
) -> list[Totals]:
    """Every rule over every person."""
    totals = [Totals() for _ in rows]
    for index, (person, life, meter) in enumerate(pop):
        for row, total in zip(rows, totals, strict=True):
            outcome = run_rule(
                row.rules,
                person,
                life,
                meter,
                seed * 100_003 + index,
                away_mode=row.away_mode,
                by_phone=row.by_phone,
            )
            total.add(outcome, days / MONTH_DAYS)
    return totals


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def table(rows: Sequence[Rule], totals: Sequence[Totals]) -> str:
    """The report, one line per rule."""
    head = (
        f"{'rule':<30} {'asks':>6} {'alarms':>7} {'false':>6} {'detected':>9} "
        f"{'median':>7} {'p90':>6} {'max':>6} {'max act':>8} {'<=12 act h':>10}"
    )
    lines = [
        head,
        f"{'':<30} {'/pm':>6} {'/pm':>7} {'/pm':>6} {'':>9} {'h':>7} {'h':>6} {'h':>6} {'h':>8}",
    ]
    for row, t in zip(rows, totals, strict=True):
        pm = t.person_months
        false = sum(t.causes.values())
        detected = len(t.delays_h)
        within = sum(1 for h in t.active_delays_h if h <= 12)
        delays = (
            f"{statistics.median(t.delays_h):>7.1f} {_quantile(t.delays_h, 0.9):>6.1f} "
            f"{max(t.delays_h):>6.1f} {max(t.active_delays_h):>8.1f}"
            if t.delays_h
            else f"{'-':>7} {'-':>6} {'-':>6} {'-':>8}"
        )
        lines.append(
            f"{row.name:<30} {t.asks / pm:>6.2f} {(false + detected) / pm:>7.2f} "
            f"{false / pm:>6.2f} "
            f"{detected:>4}/{t.falls:<4} {delays} {within:>5}/{t.falls:<4}"
        )
    lines.append("")
    lines.append("false alarms by cause, per person-month:")
    for row, t in zip(rows, totals, strict=True):
        causes = ", ".join(f"{k} {v / t.person_months:.2f}" for k, v in t.causes.most_common())
        lines.append(f"  {row.name:<30} {causes or 'none'}")
    lines.append("")
    lines.append("median delay (h) by when the fall happened, and how many falls:")
    lines.append(f"  {'':<30} " + " ".join(f"{name:>16}" for name, _, _ in PARTS_OF_DAY))
    for row, t in zip(rows, totals, strict=True):
        cells = []
        for part, _, _ in PARTS_OF_DAY:
            hours = t.delays_by_part.get(part, [])
            median = f"{statistics.median(hours):.1f}" if hours else "-"
            cells.append(f"{median + ' (' + str(len(hours)) + ')':>16}")
        lines.append(f"  {row.name:<30} " + " ".join(cells))
    bidao = [(row, t) for row, t in zip(rows, totals, strict=True) if row.rules.ask_first]
    for row, t in bidao:
        share = t.answered / t.asks if t.asks else 0.0
        lines.append(
            f"  {row.name}: {t.asks} asks, {share:.0%} answered; {t.reminders} away reminders"
        )
    return "\n".join(lines)


def calibrate(people: int, days: int, seed: int, world: World, target: float = 1.5) -> World:
    """Search the sleep knob so that the fixed 8-hour all-day rule gives `target` alarms."""
    row = [RULES[1]]
    lo, hi = 6.0, 10.0
    for _ in range(7):
        mid = (lo + hi) / 2
        trial = replace(world, sleep_h=mid)
        totals = evaluate(row, population(people, days, seed + 1000, trial), days, seed)
        rate = (sum(totals[0].causes.values()) + len(totals[0].delays_h)) / totals[0].person_months
        print(f"  sleep {mid:.3f} h: fixed 8 h all day {rate:.2f} alarms per person-month")
        if rate > target:
            hi = mid
        else:
            lo = mid
    return replace(world, sleep_h=(lo + hi) / 2)


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    """Run the bench and print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.water_watch", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--people", type=int, default=150)
    parser.add_argument("--months", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--mark-away", type=float, default=World().mark_away)
    parser.add_argument("--mark-hospital", type=float, default=World().mark_hospital)
    parser.add_argument("--sleep-h", type=float, default=World().sleep_h)
    parser.add_argument("--calibrate", action="store_true", help="search the sleep knob first")
    parser.add_argument("--learn-rank", type=int, default=WaterRules().learn_rank)
    parser.add_argument("--learn-margin-h", type=float, default=WaterRules().learn_margin_s / HOUR)
    parser.add_argument(
        "--morning-margin-h", type=float, default=WaterRules().morning_margin_s / HOUR
    )
    args = parser.parse_args(argv)
    days = round(args.months * MONTH_DAYS)
    if days < 45:
        parser.error("--months must be at least 1.5 (the routine needs weeks to learn)")
    world = World(sleep_h=args.sleep_h, mark_away=args.mark_away, mark_hospital=args.mark_hospital)
    started = time.monotonic()
    if args.calibrate:
        world = calibrate(max(50, args.people // 2), days, args.seed, world)
        out(f"calibrated: {world.sleep_h:.2f} h from the last use at night to the first")
    pop = population(args.people, days, args.seed, world)
    bidao = replace(
        WaterRules(),
        learn_rank=args.learn_rank,
        learn_margin_s=args.learn_margin_h * HOUR,
        morning_margin_s=args.morning_margin_h * HOUR,
    )
    table_rows = rows(bidao)
    totals = evaluate(table_rows, pop, days, args.seed)
    out(
        f"{args.people} elders living alone x {args.months:g} months = "
        f"{totals[0].person_months:.0f} person-months, seed {args.seed}, {world}"
    )
    out(
        f"Bidao's window: the {bidao.learn_rank}-th longest daily quiet stretch in active hours"
        f" of the last {bidao.learn_days} days + {args.learn_margin_h:g} h, within"
        f" {bidao.min_window_s / HOUR:g}-{bidao.max_window_s / HOUR:g} h; the morning check"
        f" (its own row) asks when no water is used by the {bidao.learn_rank}-th latest daily"
        f" first use + {args.morning_margin_h:g} h"
    )
    out(table(table_rows, totals))
    out(f"({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
