"""The water watch for elders living alone: the zero-use rule as a pure state machine.

One `WaterWatch` per watched household (living alone, or opted in). `decide(watch, event,
rules, context)` applies one event and returns a `WaterDecision`: the watch's new state,
the "are you OK?" question for the box, notices (alarms, all-clears, reminders), log lines,
and the household's one deadline when it changes. Nothing here does I/O or reads a clock:
every event carries its own time, and a deadline that came due arrives as `Due`.

    reading rises ─► life ─► WATCHING ──window of quiet in active hours──► ASKING
                                ▲                                           │ no answer in
                                │ water, a key, thumbs-up                   ▼ answer_window_s
                                └──────────── all-clear to all alerted ◄── ALARMED
    AWAY until a return time (no zero-use alarm), then WATCHING, with a reminder to the
    family if no water comes within `away_reminder_after_s` of the return.

The rules (issue 13, items 1-7):

- Quiet is counted only in active hours (default 06:00-22:00 local): a night's sleep adds
  nothing, so a night never raises an alarm. The window is at least `min_window_s`.
- Use is the cumulative volume rising by at least `use_threshold_l` from one reading to
  the next. A counter that goes down (meter replaced, wrapped at 2^32) or jumps further than
  `max_flow_l_per_s` allows is re-baselined and logged: it is neither use nor silence (the
  interval it covers is unknown, so the quiet clock restarts from that reading, like after
  an outage, and nothing open is cleared). A drop within `backflow_tolerance_l` is backflow:
  the reference stays at the highest volume seen, so water flowing back in is not use.
- A key press, a thumbs-up and any other sign of life count like water.
- When the window closes, the box is asked "are you OK?" (`ask_first`); thumbs-up within
  `answer_window_s` cancels. Otherwise the family and the community worker are alarmed.
- Water or a key press after the alarm clears it; the all-clear lists everyone alerted.
- Away mode: no zero-use alarm until the return time; water ends it early (unless it comes
  within `away_settle_s` of setting it: the resident flushing before leaving).
- Blind is not zero: a meter offline (device supervision's `MeterOffline`, then
  `MeterOnline` or a reading) stops the quiet clock at once, and tells the community worker
  that the watch is blind only once it has lasted `blind_notice_after_s` (a short blip tells
  nobody; the restored notice goes only to those told). An outage of the gateway, broker or
  a serial line (`OutageEnded`) restarts the quiet clock from the data actually received.
  A deadline that comes due when the last reading is older than `max_reading_gap_s` raises
  nothing; the quiet clock restarts at the next reading. (Between readings the counter is
  cumulative: an unchanged volume after a gap that no deadline fell into is zero use, truly
  seen.)
- Continuous flow (every reading rising, or the meter's own flag) for `continuous_flow_s`
  is a leak alarm; the first reading without a rise clears it.
- Good news: the day's first water use within active hours (a night's use is not the
  morning's) is told to the family who chose it (`Watchers.good_news`), once per local
  day, as it is seen, and never on a day a zero-use alarm was open at any moment (the
  all-clear says it then). Told as it is seen rather than at a fixed hour: it costs no
  deadline, and a fixed-hour summary of a day without water yet would be an alarm in
  disguise, which the rule above already handles.

The learned routine (item 2): each local day keeps the longest quiet stretch in active
hours that ended that day and the time of the day's first water use. With at least
`learn_min_days` such days among the last `learn_days`, the window is the
`learn_rank`-th longest of those daily stretches plus `learn_margin_s`, kept between
`min_window_s` and `max_window_s`. With the default rank 2 of 28 days this is "on all but
one of the last 28 days, the longest quiet stretch in active hours was at most X": a high
quantile (about the 93rd percentile) that one odd day (a trip, an illness) cannot move,
and a sentence a secretary can check against the household's own days. The same rank of
the first-use times gives "usually first uses water by 07:40" (`Routine`).

The morning check (`morning_check`, off by default): with a routine, a quiet stretch that
began before the day's active hours also asks once the usual first-use time plus
`morning_margin_s` has passed without water ("usually first uses water by 07:40; today none
by 09:10"), so a fall in the evening or the night is found that morning. The question and
the alarm carry their `reason`, and their words say it.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any, Literal, cast, overload

from gateway.errors import GatewayError

DEADLINE_KIND = "water_watch"
"""The deadline kind of a household's one water-watch clock."""

MINUTES_PER_DAY = 24 * 60
HOUR = 3600.0

LifeSource = Literal["water", "key", "answer", "other"]
AskReason = Literal["window", "morning"]
"""Why the resident was asked: the quiet window closed, or the morning check."""
NoticeKind = Literal[
    "zero_use_alarm",
    "zero_use_all_clear",
    "leak_alarm",
    "leak_all_clear",
    "away_reminder",
    "meter_offline",
    "watch_blind",
    "watch_restored",
    "first_use_today",
]
LogKind = Literal[
    "asked",
    "answered",
    "ask_cancelled",
    "alarm",
    "all_clear",
    "away_set",
    "away_cleared",
    "away_ended",
    "away_ended_by_use",
    "away_reminder",
    "backflow",
    "counter_reset",
    "counter_jump",
    "reading_out_of_order",
    "stale_data",
    "meter_offline",
    "meter_online",
    "watch_blind",
    "outage_restart",
    "leak_alarm",
    "leak_cleared",
    "first_use_today",
]


class WaterRuleError(GatewayError):
    """Water-watch rules that cannot work together."""


@dataclass(frozen=True, slots=True)
class WaterRules:
    """How a household is watched (settings: `gateway.config.WaterWatchSettings`)."""

    active_from_min: int = 6 * 60
    """Quiet counts only from this local minute of the day..."""
    active_until_min: int = 22 * 60
    """...until this one (0 and 1440: all day)."""
    window_s: float = 8 * HOUR
    """Quiet active seconds before the resident is asked (new households, or not learning)."""
    min_window_s: float = 6 * HOUR
    max_window_s: float = 11 * HOUR
    learn: bool = True
    learn_days: int = 28
    learn_min_days: int = 14
    learn_rank: int = 2
    learn_margin_s: float = 2 * HOUR
    morning_check: bool = False
    """With a learned routine, also ask when no water has been used by the household's usual
    first-use time plus `morning_margin_s` (see `morning_due`)."""
    morning_margin_s: float = 1.5 * HOUR
    ask_first: bool = True
    answer_window_s: float = 600.0
    use_threshold_l: float = 1.0
    backflow_tolerance_l: float = 5.0
    max_flow_l_per_s: float = 1.0
    """A DN15 household meter passes at most about 0.9 l/s; more is a counter jump."""
    jump_slack_l: float = 50.0
    max_reading_gap_s: float = 2700.0
    """A deadline finding the last reading older than this raises nothing (blind); also,
    rising readings further apart than this do not make one continuous flow."""
    continuous_flow_s: float = 2 * HOUR
    away_reminder_after_s: float = 2 * HOUR
    away_settle_s: float = 1 * HOUR
    """Water this soon after away mode is set is the leaving, not the return."""
    blind_notice_after_s: float = 1 * HOUR
    """A meter offline this long (from its offline transition) tells the community worker
    that the watch is blind; a shorter spell tells nobody."""

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.active_from_min < self.active_until_min <= MINUTES_PER_DAY:
            problems.append("active hours must satisfy 0 <= from < until <= 1440 minutes")
        if not 0 < self.min_window_s <= self.window_s <= self.max_window_s:
            problems.append("windows must satisfy 0 < min_window_s <= window_s <= max_window_s")
        if not 1 <= self.learn_rank <= self.learn_min_days <= self.learn_days:
            problems.append("learning needs 1 <= learn_rank <= learn_min_days <= learn_days")
        if self.use_threshold_l <= 0 or self.answer_window_s <= 0:
            problems.append("use_threshold_l and answer_window_s must be positive")
        if problems:
            raise WaterRuleError("; ".join(problems))

    @property
    def all_day(self) -> bool:
        """Whether every hour counts (the fixed all-day rules of other programmes)."""
        return self.active_from_min == 0 and self.active_until_min == MINUTES_PER_DAY


class Phase(enum.StrEnum):
    """Where the zero-use side of a household's watch stands."""

    NEW = "new"
    """No reading yet: nothing to compare with, nothing is counted."""
    WATCHING = "watching"
    ASKING = "asking"
    ALARMED = "alarmed"
    AWAY = "away"


@dataclass(frozen=True, slots=True)
class DayRecord:
    """What one local day showed of the household's routine."""

    day: int
    """The local date's ordinal."""
    first_use_min: int | None
    """Local minute of the first water use at or after the start of active hours."""
    longest_quiet_s: float = 0.0
    """The longest quiet stretch (active seconds) that a sign of life ended this day."""
    lived: bool = False
    """A sign of life was seen this day (days without one, away or blind, teach nothing)."""
    alarmed: bool = False
    """A zero-use alarm was open at some moment of this day: no good news for it."""


_DAY = struct.Struct("<ihdB")
"""A `DayRecord` packed: day ordinal, first-use minute (-1: none), longest quiet, flags
(1: lived, 2: alarmed). The longest quiet stays a double, so it reads back exactly. The store
keeps histories in this form (`water_watches.history`): changing it needs a migration."""
_LIVED, _ALARMED = 1, 2


class DayHistory(Sequence[DayRecord]):
    """A household's past days, packed: 15 bytes a day instead of about 190.

    Every watched household keeps up to `learn_days` days in memory; as `DayRecord` objects
    four weeks took about 5.4 KB a household (500 MB for a county's 100,000 meters). The
    days read back as `DayRecord`s; a history equals another of the same days, packed or a
    tuple.
    """

    __slots__ = ("_packed",)

    def __init__(self, days: Iterable[DayRecord] = ()) -> None:
        self._packed = b"".join(_DAY.pack(*_packable(d)) for d in days)

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any] | dict[str, Any]]) -> DayHistory:
        """The days of `rows` (as `rows()` gives them, or dicts of a day's fields).

        The store wrote a dict per day before it wrote rows; both read back the same.
        """
        return cls._of(
            b"".join(
                _DAY.pack(*(_packable(DayRecord(**r)) if isinstance(r, dict) else _flat(*r)))
                for r in rows
            )
        )

    @classmethod
    def from_packed(cls, packed: bytes) -> DayHistory:
        """The days `packed()` gave (what the store keeps); ValueError if it cannot be."""
        if len(packed) % _DAY.size:
            raise ValueError(
                f"a packed day history is {_DAY.size} bytes a day, not {len(packed)} bytes"
            )
        return cls._of(bytes(packed))

    @classmethod
    def _of(cls, packed: bytes) -> DayHistory:
        history = cls()
        history._packed = packed
        return history

    def packed(self) -> bytes:
        """The days as stored: `_DAY` (little-endian, 15 bytes) per day, oldest first.

        The store keeps a watch's history in this form beside the watch's JSON: as JSON rows
        it was half of every watch's text, encoded again on every reading with water use and
        parsed on every first reading after a start.
        """
        return self._packed

    def rows(self) -> list[list[Any]]:
        """Each day as a row of `DayRecord`'s fields in order (`watch_to_record`'s form).

        [day ordinal, first-use minute or None, longest quiet s, lived, alarmed]. The store
        wrote these inside the watch's JSON until migration 0025; it now keeps `packed()`.
        """
        return [
            [
                day,
                None if first < 0 else first,
                longest,
                bool(flags & _LIVED),
                bool(flags & _ALARMED),
            ]
            for day, first, longest, flags in _DAY.iter_unpack(self._packed)
        ]

    def __len__(self) -> int:
        return len(self._packed) // _DAY.size

    def __iter__(self) -> Iterator[DayRecord]:
        for day, first, longest, flags in _DAY.iter_unpack(self._packed):
            yield _unpacked(day, first, longest, flags)

    @overload
    def __getitem__(self, index: int) -> DayRecord: ...

    @overload
    def __getitem__(self, index: slice) -> DayHistory: ...

    def __getitem__(self, index: int | slice) -> DayRecord | DayHistory:
        size = _DAY.size
        if isinstance(index, slice):
            return DayHistory._of(
                b"".join(self._packed[i * size : (i + 1) * size] for i in range(len(self))[index])
            )
        count = len(self)
        if not -count <= index < count:
            raise IndexError("no such day in the history")
        return _unpacked(*_DAY.unpack_from(self._packed, (index % count) * size))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DayHistory):
            return self._packed == other._packed
        if isinstance(other, tuple):
            return tuple(self) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._packed)

    def __repr__(self) -> str:
        return f"DayHistory({list(self)!r})"


def _packable(d: DayRecord) -> tuple[int, int, float, int]:
    return _flat(d.day, d.first_use_min, d.longest_quiet_s, d.lived, d.alarmed)


def _flat(
    day: int, first: int | None, longest: float, lived: bool, alarmed: bool
) -> tuple[int, int, float, int]:
    flags = (_LIVED if lived else 0) | (_ALARMED if alarmed else 0)
    return day, -1 if first is None else first, longest, flags


def _unpacked(day: int, first: int, longest: float, flags: int) -> DayRecord:
    return DayRecord(
        day,
        None if first < 0 else first,
        longest,
        lived=bool(flags & _LIVED),
        alarmed=bool(flags & _ALARMED),
    )


NO_DAYS = DayHistory()


@dataclass(frozen=True, slots=True)
class Routine:
    """The household's learned routine: the facts behind its window, for a sentence."""

    days: int
    """Days of history it was learned from."""
    of_days: int
    """Out of the last this many days."""
    rank: int
    usual_longest_quiet_s: float
    """The rank-th longest daily quiet stretch: on all but rank-1 days it was at most this."""
    usual_first_use_by_min: int | None
    """The rank-th latest first use: on all but rank-1 days water was used by then."""
    window_s: float
    statistic: str = "rank-th longest daily quiet stretch in active hours, plus margin"


@dataclass(frozen=True, slots=True)
class WaterWatch:
    """One household's watch, as stored between events."""

    household: str
    phase: Phase = Phase.NEW
    last_reading_at: float | None = None
    volume_l: float | None = None
    """The reference volume: the last reading's, or the highest seen during backflow."""
    backflow: bool = False
    quiet_since: float | None = None
    """The quiet clock runs from here: the last sign of life or the last restart."""
    last_life_at: float | None = None
    asked_at: float | None = None
    alarm_at: float | None = None
    reason: AskReason | None = None
    """Why the open question or alarm was raised."""
    alerted: tuple[int, ...] = ()
    away_until: float | None = None
    away_since: float | None = None
    reminder_due: float | None = None
    offline_since: float | None = None
    """The meter's readings stopped then (it was last heard): the watch is blind."""
    blind_at: float | None = None
    """When the blind notice is due, if the meter is still offline; None once told."""
    blind_told: tuple[int, ...] = ()
    stale: bool = False
    """A deadline found the data stale: the quiet clock waits for the next reading."""
    flow_since: float | None = None
    leak_at: float | None = None
    leak_alerted: tuple[int, ...] = ()
    today: DayRecord | None = None
    history: Sequence[DayRecord] = NO_DAYS
    """The days before today within `learn_days` (packed: a county keeps them all in memory)."""
    routine: Routine | None = None
    due_at: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.history, DayHistory):  # built from a plain sequence of days
            object.__setattr__(self, "history", DayHistory(self.history))


def new_watch(household: str) -> WaterWatch:
    """A household's watch before its meter's first reading."""
    return WaterWatch(household=household)


# -- events -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reading:
    """The meter's cumulative volume at `at` (the meter's own time of the reading)."""

    at: float
    volume_l: float


@dataclass(frozen=True, slots=True)
class SignOfLife:
    """A key press on the household's box, or any other sign of life the gateway sees."""

    at: float
    source: LifeSource = "key"


@dataclass(frozen=True, slots=True)
class Answered:
    """Thumbs-up on the box after "are you OK?"."""

    at: float


@dataclass(frozen=True, slots=True)
class AwaySet:
    """Family, secretary or resident marked the home away until `until`."""

    at: float
    until: float
    by: int | None = None


@dataclass(frozen=True, slots=True)
class AwayCleared:
    """Away mode was ended by hand."""

    at: float


@dataclass(frozen=True, slots=True)
class MeterOffline:
    """Device supervision declared the meter offline at `at`; it was last heard at `since`."""

    at: float
    since: float | None = None


@dataclass(frozen=True, slots=True)
class MeterOnline:
    """Device supervision: the meter reports again."""

    at: float


@dataclass(frozen=True, slots=True)
class OutageEnded:
    """The gateway, broker or a serial line was down; quiet before `at` was not seen."""

    at: float
    began_at: float


@dataclass(frozen=True, slots=True)
class FlowObserved:
    """The meter's own flag: water has flowed without a stop since `since`."""

    at: float
    since: float


@dataclass(frozen=True, slots=True)
class Due:
    """The household's deadline came due at `at` (perhaps while the gateway was down)."""

    at: float


Event = (
    Reading
    | SignOfLife
    | Answered
    | AwaySet
    | AwayCleared
    | MeterOffline
    | MeterOnline
    | OutageEnded
    | FlowObserved
    | Due
)


# -- context and effects ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Watchers:
    """Who is told what about a household, by contact id, looked up before deciding."""

    family: tuple[int, ...] = ()
    community_workers: tuple[int, ...] = ()
    installers: tuple[int, ...] = ()
    good_news: tuple[int, ...] = ()
    """Family who chose to hear of the day's first water use (`notify` includes
    `first_use`)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a decision needs besides the watch, the event and the rules."""

    zone: tzinfo
    watchers: Watchers = Watchers()


@dataclass(frozen=True, slots=True)
class Facts:
    """What happened, as data for the words (templates `water_*`)."""

    at: float
    quiet_since: float | None = None
    quiet_active_s: float | None = None
    window_s: float | None = None
    routine: Routine | None = None
    reason: AskReason | None = None
    """Why the question or alarm was raised (the words differ for the morning check)."""
    first_use_today_min: int | None = None
    """Local minute of today's first water use; None: none yet today."""
    alarm_at: float | None = None
    cleared_by: LifeSource | None = None
    away_until: float | None = None
    offline_since: float | None = None
    flow_since: float | None = None


@dataclass(frozen=True, slots=True)
class Ask:
    """Show "are you OK?" on the household's box; thumbs-up by `answer_by` cancels."""

    household: str
    answer_by: float
    facts: Facts


@dataclass(frozen=True, slots=True)
class Notice:
    """A message about the household to `recipients` (contact ids)."""

    household: str
    kind: NoticeKind
    recipients: tuple[int, ...]
    urgent: bool
    facts: Facts


@dataclass(frozen=True, slots=True)
class Log:
    """One line of the household's water-watch record."""

    at: float
    kind: LogKind
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SetDeadline:
    """Start or move the household's deadline."""

    due_at: float


@dataclass(frozen=True, slots=True)
class ClearDeadline:
    """The household needs no looking at until its next event."""


@dataclass(frozen=True, slots=True)
class WaterDecision:
    """A watch's new state and what is to be stored and done with it."""

    watch: WaterWatch
    asks: tuple[Ask, ...] = ()
    notices: tuple[Notice, ...] = ()
    logs: tuple[Log, ...] = ()
    deadline: SetDeadline | ClearDeadline | None = None
    """None: the household's deadline stays as it was."""
    counts: tuple[str, ...] = ()


# -- active hours -----------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _active_bounds(
    ordinal: int, zone: tzinfo, from_min: int, until_min: int
) -> tuple[float, float]:
    """The timestamps where the local day `ordinal`'s active hours begin and end."""
    day = date.fromordinal(ordinal)

    def at(minute: int) -> float:
        extra, minute = divmod(minute, MINUTES_PER_DAY)
        d = day + timedelta(days=extra)
        local = datetime(d.year, d.month, d.day, minute // 60, minute % 60, tzinfo=zone)
        return local.timestamp()

    return at(from_min), at(until_min)


def local_day(t: float, zone: tzinfo) -> int:
    """The ordinal of the local date at `t`."""
    return datetime.fromtimestamp(t, zone).toordinal()


def local_minute(t: float, zone: tzinfo) -> int:
    """The local minute of the day at `t`."""
    local = datetime.fromtimestamp(t, zone)
    return local.hour * 60 + local.minute


def active_seconds(a: float, b: float, rules: WaterRules, zone: tzinfo) -> float:
    """Seconds of active hours between `a` and `b`."""
    if b <= a:
        return 0.0
    if rules.all_day:
        return b - a
    total = 0.0
    day = local_day(a, zone)
    while True:
        start, end = _active_bounds(day, zone, rules.active_from_min, rules.active_until_min)
        if start >= b:
            return total
        total += max(0.0, min(end, b) - max(start, a))
        day += 1


def after_active(a: float, seconds: float, rules: WaterRules, zone: tzinfo) -> float:
    """The moment `seconds` of active hours have passed since `a`."""
    if rules.all_day:
        return a + seconds
    remaining = seconds
    day = local_day(a, zone)
    while True:
        start, end = _active_bounds(day, zone, rules.active_from_min, rules.active_until_min)
        lo = max(start, a)
        if lo < end:
            if remaining <= end - lo:
                return lo + remaining
            remaining -= end - lo
        day += 1


def is_active(t: float, rules: WaterRules, zone: tzinfo) -> bool:
    """Whether `t` falls within active hours (their end included)."""
    if rules.all_day:
        return True
    start, end = _active_bounds(
        local_day(t, zone), zone, rules.active_from_min, rules.active_until_min
    )
    return start <= t <= end


# -- the learned routine ----------------------------------------------------------------


def learn(history: Sequence[DayRecord], today: int, rules: WaterRules) -> Routine | None:
    """The routine from the days before `today` within `learn_days`; None: too few days."""
    if not rules.learn:
        return None
    days = [r for r in history if r.lived and today - rules.learn_days <= r.day < today]
    if len(days) < rules.learn_min_days:
        return None
    rank = rules.learn_rank
    longest = sorted((r.longest_quiet_s for r in days), reverse=True)[rank - 1]
    firsts = sorted((r.first_use_min for r in days if r.first_use_min is not None), reverse=True)
    first_by = firsts[rank - 1] if len(firsts) >= rank else None
    window = min(rules.max_window_s, max(rules.min_window_s, longest + rules.learn_margin_s))
    return Routine(
        days=len(days),
        of_days=rules.learn_days,
        rank=rank,
        usual_longest_quiet_s=longest,
        usual_first_use_by_min=first_by,
        window_s=window,
    )


def window_of(watch: WaterWatch, rules: WaterRules) -> float:
    """The household's window today: learned when it has the history, else the fixed one."""
    return watch.routine.window_s if watch.routine is not None else rules.window_s


def _local_minute_at(ordinal: int, minute: int, zone: tzinfo) -> float:
    """The timestamp of local minute `minute` of the local day `ordinal`."""
    return _active_bounds(ordinal, zone, minute, MINUTES_PER_DAY)[0]


def morning_due(watch: WaterWatch, rules: WaterRules, zone: tzinfo) -> float | None:
    """When the morning check asks, if it applies to the household's quiet stretch.

    It applies to a stretch that began before a day's active hours (the night, or the
    evening before): no water by the routine's usual first-use time plus `morning_margin_s`
    is reason to ask, before the window closes ("usually first uses water by 07:40; today
    none by 09:10"). A fall in the evening or the night is found in the morning, not only
    once the window's active hours have passed.
    """
    routine = watch.routine
    quiet = watch.quiet_since
    if (
        not rules.morning_check
        or rules.all_day
        or routine is None
        or routine.usual_first_use_by_min is None
        or quiet is None
    ):
        return None
    day = local_day(quiet, zone)
    if quiet >= _active_bounds(day, zone, rules.active_from_min, rules.active_until_min)[0]:
        day += 1  # the stretch began after today's active hours began: tomorrow's morning
    return _local_minute_at(day, routine.usual_first_use_by_min, zone) + rules.morning_margin_s


def next_due(watch: WaterWatch, rules: WaterRules, zone: tzinfo) -> float | None:
    """When the household next needs looking at, from its state alone."""
    due: list[float] = []
    if watch.reminder_due is not None:
        due.append(watch.reminder_due)
    if watch.offline_since is not None and watch.blind_at is not None:
        due.append(watch.blind_at)
    phase = watch.phase
    if phase == Phase.AWAY and watch.away_until is not None:
        due.append(watch.away_until)
    elif phase == Phase.ASKING and watch.asked_at is not None:
        due.append(watch.asked_at + rules.answer_window_s)
    elif (
        phase == Phase.WATCHING
        and watch.quiet_since is not None
        and watch.offline_since is None
        and not watch.stale
    ):
        due.append(after_active(watch.quiet_since, window_of(watch, rules), rules, zone))
        morning = morning_due(watch, rules, zone)
        if morning is not None:
            due.append(morning)
    return min(due) if due else None


# -- deciding ---------------------------------------------------------------------------


def decide(watch: WaterWatch, event: Event, rules: WaterRules, context: Context) -> WaterDecision:
    """Apply one event (or the household's deadline coming due) to its watch."""
    d = _Decider(watch, rules, context, event.at)
    match event:
        case Reading(at, volume):
            d.reading(at, volume)
        case SignOfLife(at, source):
            d.life(at, source)
        case Answered(at):
            d.life(at, "answer")
        case AwaySet(at, until, by):
            d.away(at, until, by)
        case AwayCleared(at):
            d.away_cleared(at)
        case MeterOffline(at, since):
            d.offline(at, since)
        case MeterOnline(at):
            d.online(at)
        case OutageEnded(at, began_at):
            d.restart(at, "outage_restart", f"outage from {began_at:.0f}")
        case FlowObserved(at, since):
            d.flow(at, since)
        case Due(at):
            d.due(at)
    return d.decision()


class _Decider:
    """Collects one decision's effects while the rules run."""

    def __init__(self, watch: WaterWatch, rules: WaterRules, context: Context, at: float) -> None:
        self.w = watch
        self.rules = rules
        self.zone = context.zone
        self.watchers = context.watchers
        self.asks: list[Ask] = []
        self.notices: list[Notice] = []
        self.logs: list[Log] = []
        self.counts: list[str] = []
        self.roll_over(at)

    def decision(self) -> WaterDecision:
        due = next_due(self.w, self.rules, self.zone)
        deadline: SetDeadline | ClearDeadline | None = None
        if due != self.w.due_at:
            deadline = SetDeadline(due) if due is not None else ClearDeadline()
            self.w = replace(self.w, due_at=due)
        return WaterDecision(
            watch=self.w,
            asks=tuple(self.asks),
            notices=tuple(self.notices),
            logs=tuple(self.logs),
            deadline=deadline,
            counts=tuple(self.counts),
        )

    # -- the meter ------------------------------------------------------------------------

    def reading(self, at: float, volume: float) -> None:
        w, rules = self.w, self.rules
        if w.last_reading_at is not None and at <= w.last_reading_at:
            self.log(at, "reading_out_of_order", f"after {w.last_reading_at:.0f}")
            return
        first = w.volume_l is None or w.last_reading_at is None
        if w.offline_since is not None:
            self.online(at)
            w = self.w
        if first:
            self.w = replace(w, last_reading_at=at, volume_l=volume)
            self.restart(at, "meter_online", f"first reading {volume:g} l")
            return
        gap = at - (w.last_reading_at or at)
        delta = volume - (w.volume_l or 0.0)
        if delta == 0 and w.flow_since is None and not w.backflow and not w.stale:
            self.w = replace(w, last_reading_at=at)  # the usual quiet reading
            return
        if delta < -rules.backflow_tolerance_l:
            self.w = replace(w, last_reading_at=at, volume_l=volume, backflow=False)
            self.end_flow(at)
            self.restart(at, "counter_reset", f"{w.volume_l:g} l -> {volume:g} l")
            return
        if delta > rules.max_flow_l_per_s * gap + rules.jump_slack_l:
            self.w = replace(w, last_reading_at=at, volume_l=volume, backflow=False)
            self.end_flow(at)
            self.restart(at, "counter_jump", f"{w.volume_l:g} l -> {volume:g} l in {gap:.0f} s")
            return
        if delta < 0:
            if not w.backflow:
                self.log(at, "backflow", f"{w.volume_l:g} l -> {volume:g} l")
                self.counts.append("backflow")
            # The reference stays at the highest volume: water coming back is not use.
            self.w = replace(w, last_reading_at=at, backflow=True)
            self.end_flow(at)
            return
        if delta > 0:
            broken = gap > rules.max_reading_gap_s and w.leak_at is None
            since = w.flow_since if w.flow_since is not None and not broken else at
            self.w = replace(
                w, last_reading_at=at, volume_l=volume, backflow=False, flow_since=since
            )
            self.check_leak(at)
        else:
            self.w = replace(w, last_reading_at=at, volume_l=volume, backflow=False)
            self.end_flow(at)
        if delta >= rules.use_threshold_l:
            self.life(at, "water")
        elif self.w.stale:
            self.restart(at, "stale_data", "readings again after stale data")

    def flow(self, at: float, since: float) -> None:
        current = self.w.flow_since
        self.w = replace(self.w, flow_since=since if current is None else min(current, since))
        self.check_leak(at)

    def check_leak(self, at: float) -> None:
        w = self.w
        if w.flow_since is None or w.leak_at is not None:
            return
        if at - w.flow_since < self.rules.continuous_flow_s:
            return
        to = self.watchers.family + self.watchers.community_workers
        self.w = replace(w, leak_at=at, leak_alerted=to)
        self.notice("leak_alarm", to, urgent=True, facts=Facts(at=at, flow_since=w.flow_since))
        self.log(at, "leak_alarm", f"flowing since {w.flow_since:.0f}")
        self.counts.append("leak_alarm")

    def end_flow(self, at: float) -> None:
        w = self.w
        if w.leak_at is not None:
            facts = Facts(at=at, alarm_at=w.leak_at, flow_since=w.flow_since)
            self.notice("leak_all_clear", w.leak_alerted, urgent=False, facts=facts)
            self.log(at, "leak_cleared")
            self.counts.append("leak_all_clear")
        if w.flow_since is not None or w.leak_at is not None:
            self.w = replace(w, flow_since=None, leak_at=None, leak_alerted=())

    # -- life -----------------------------------------------------------------------------

    def life(self, at: float, source: LifeSource) -> None:
        w = self.w
        if w.phase == Phase.NEW:
            return  # nothing is watched before the meter's first reading
        today = self.stretch_ended(at, source)
        phase = w.phase
        if phase == Phase.ASKING:
            self.log(at, "answered" if source == "answer" else "ask_cancelled", source)
            self.counts.append("answered" if source == "answer" else "ask_cancelled")
            phase = Phase.WATCHING
        elif phase == Phase.ALARMED:
            facts = self.facts(at, alarm_at=w.alarm_at, cleared_by=source)
            self.notice("zero_use_all_clear", w.alerted, urgent=False, facts=facts)
            self.log(at, "all_clear", source)
            self.counts.append("zero_use_all_clear")
            phase = Phase.WATCHING
        elif (
            phase == Phase.AWAY
            and source == "water"
            and at - (w.away_since or at) >= self.rules.away_settle_s
        ):
            self.log(at, "away_ended_by_use")
            phase = Phase.WATCHING
        if (
            phase == Phase.WATCHING
            and not today.alarmed
            and today.first_use_min is not None
            and (w.today is None or w.today.first_use_min is None)
            and today.first_use_min < self.rules.active_until_min
        ):
            self.good_news(at)
        self.w = replace(
            w,
            today=today,
            phase=phase,
            quiet_since=at,
            last_life_at=at,
            asked_at=None,
            alarm_at=None,
            reason=None,
            alerted=(),
            away_until=w.away_until if phase == Phase.AWAY else None,
            reminder_due=None,
            stale=False,
        )

    def stretch_ended(self, at: float, source: LifeSource) -> DayRecord:
        """Today's record, having learnt the quiet stretch this sign of life ends."""
        w = self.w
        today = w.today or DayRecord(local_day(at, self.zone), None)
        longest = today.longest_quiet_s
        if w.quiet_since is not None and w.phase != Phase.AWAY:
            stretch = active_seconds(w.quiet_since, at, self.rules, self.zone)
            longest = max(longest, min(stretch, self.rules.max_window_s))
        first = today.first_use_min
        if source == "water" and first is None:
            minute = local_minute(at, self.zone)
            if minute >= self.rules.active_from_min:
                first = minute
        return DayRecord(today.day, first, longest, lived=True, alarmed=today.alarmed)

    def roll_over(self, at: float) -> None:
        """A new local day: yesterday joins the history and the routine is learned again."""
        w = self.w
        day = local_day(at, self.zone)
        if w.today is not None and w.today.day >= day:
            return
        days: Iterable[DayRecord] = w.history
        if w.today is not None and w.today.lived:
            days = (*days, w.today)
        history = DayHistory(r for r in days if r.day >= day - self.rules.learn_days)
        routine = learn(history, day, self.rules)
        # An alarm still open at midnight was open on the new day too.
        alarmed = w.phase == Phase.ALARMED
        self.w = replace(
            w, today=DayRecord(day, None, alarmed=alarmed), history=history, routine=routine
        )

    # -- away -----------------------------------------------------------------------------

    def away(self, at: float, until: float, by: int | None) -> None:
        w = self.w
        if until <= at:
            return
        if w.phase == Phase.ALARMED:
            # Whoever marks the home away knows where the resident is: the alarm is over.
            facts = self.facts(at, alarm_at=w.alarm_at, away_until=until)
            self.notice("zero_use_all_clear", w.alerted, urgent=False, facts=facts)
            self.counts.append("zero_use_all_clear")
        self.log(at, "away_set", f"until {until:.0f} by {by}")
        self.counts.append("away_set")
        self.w = replace(
            w,
            phase=Phase.AWAY if w.phase != Phase.NEW else Phase.NEW,
            away_until=until,
            away_since=at,
            asked_at=None,
            alarm_at=None,
            alerted=(),
            reminder_due=None,
        )

    def away_cleared(self, at: float) -> None:
        if self.w.phase != Phase.AWAY:
            self.w = replace(self.w, away_until=None)
            return
        self.log(at, "away_cleared")
        self.w = replace(self.w, phase=Phase.WATCHING, away_until=None)
        self.restart(at, None, "")

    # -- blindness ------------------------------------------------------------------------

    def offline(self, at: float, since: float | None) -> None:
        """The quiet clock stops now; the community worker is told after the hold-off."""
        w = self.w
        if w.offline_since is not None:
            return
        heard = min(at, since) if since is not None else at
        self.log(at, "meter_offline", f"last heard {heard:.0f}")
        self.counts.append("meter_offline")
        facts = Facts(at=at, offline_since=heard)
        self.notice("meter_offline", self.watchers.installers, urgent=False, facts=facts)
        blind_at = at + self.rules.blind_notice_after_s
        self.w = replace(w, offline_since=heard, blind_at=blind_at, blind_told=())
        if self.rules.blind_notice_after_s <= 0:
            self.blind(at)

    def blind(self, at: float) -> None:
        """The meter has stayed offline through the hold-off: the watch is blind, say so."""
        w = self.w
        to = self.watchers.community_workers
        facts = Facts(at=at, offline_since=w.offline_since)
        self.notice("watch_blind", to, urgent=False, facts=facts)
        self.log(at, "watch_blind", f"to {len(to)}")
        self.counts.append("watch_blind")
        self.w = replace(w, blind_at=None, blind_told=to)

    def online(self, at: float) -> None:
        w = self.w
        if w.offline_since is None:
            return
        self.log(at, "meter_online", f"offline since {w.offline_since:.0f}")
        if w.blind_told:
            facts = Facts(at=at, offline_since=w.offline_since)
            self.notice("watch_restored", w.blind_told, urgent=False, facts=facts)
            self.counts.append("watch_restored")
        self.w = replace(w, offline_since=None, blind_at=None, blind_told=())
        self.restart(at, None, "")

    def restart(self, at: float, kind: LogKind | None, detail: str) -> None:
        """The quiet clock starts again at `at`: what came before was not seen."""
        if kind is not None:
            self.log(at, kind, detail)
            self.counts.append(kind)
        w = self.w
        phase = w.phase
        if phase == Phase.NEW and w.volume_l is not None:
            away = w.away_until is not None and w.away_until > at
            phase = Phase.AWAY if away else Phase.WATCHING
        since = at if w.quiet_since is None else max(w.quiet_since, at)
        self.w = replace(w, phase=phase, quiet_since=since, stale=False)

    # -- clocks ---------------------------------------------------------------------------

    def due(self, at: float) -> None:
        w, rules = self.w, self.rules
        if w.due_at is None or at < w.due_at:
            return  # a deadline the watch has moved on from
        if w.offline_since is not None and w.blind_at is not None and at >= w.blind_at:
            self.blind(at)
            w = self.w
        if w.phase == Phase.AWAY and w.away_until is not None and at >= w.away_until:
            self.log(at, "away_ended")
            self.w = replace(
                w,
                phase=Phase.WATCHING,
                reminder_due=w.away_until + rules.away_reminder_after_s,
                away_until=None,
            )
            self.restart(w.away_until, None, "")
            w = self.w
        if w.reminder_due is not None and at >= w.reminder_due:
            facts = self.facts(at, away_until=w.reminder_due - rules.away_reminder_after_s)
            self.notice("away_reminder", self.watchers.family, urgent=False, facts=facts)
            self.log(at, "away_reminder")
            self.counts.append("away_reminder")
            self.w = w = replace(w, reminder_due=None)
        if w.phase == Phase.ASKING and w.asked_at is not None:
            if at >= w.asked_at + rules.answer_window_s:
                self.alarm(at)
            return
        if w.phase != Phase.WATCHING or w.quiet_since is None or w.offline_since is not None:
            return
        morning = morning_due(w, rules, self.zone)
        window = after_active(w.quiet_since, window_of(w, rules), rules, self.zone)
        if at < window and (morning is None or at < morning):
            return
        why: AskReason = "morning" if at < window else "window"
        if w.last_reading_at is None or at - w.last_reading_at > rules.max_reading_gap_s:
            # Blind is not zero: no reading covers the end of the quiet, so nothing is raised.
            self.log(at, "stale_data", "no recent reading at the end of the window")
            self.counts.append("stale_data")
            self.w = replace(w, stale=True)
            return
        self.w = w = replace(w, reason=why)
        if rules.ask_first:
            self.w = replace(w, phase=Phase.ASKING, asked_at=at)
            answer_by = at + rules.answer_window_s
            self.asks.append(Ask(w.household, answer_by, self.facts(at)))
            self.log(at, "asked", why)
            self.counts.append("asked")
        else:
            self.alarm(at)

    def alarm(self, at: float) -> None:
        to = self.watchers.family + self.watchers.community_workers
        self.notice("zero_use_alarm", to, urgent=True, facts=self.facts(at))
        self.log(at, "alarm", f"to {len(to)}")
        self.counts.append("zero_use_alarm")
        today = self.w.today or DayRecord(local_day(at, self.zone), None)
        self.w = replace(
            self.w,
            phase=Phase.ALARMED,
            alarm_at=at,
            alerted=to,
            asked_at=None,
            today=replace(today, alarmed=True),
        )

    def good_news(self, at: float) -> None:
        """The day's first water use in active hours, for the family who chose to hear it."""
        minute = local_minute(at, self.zone)
        facts = replace(self.facts(at), first_use_today_min=minute)
        if self.watchers.good_news:
            self.notice("first_use_today", self.watchers.good_news, urgent=False, facts=facts)
        self.log(at, "first_use_today", f"{minute // 60:02d}:{minute % 60:02d}")
        self.counts.append("first_use_today")

    # -- helpers --------------------------------------------------------------------------

    def facts(
        self,
        at: float,
        *,
        alarm_at: float | None = None,
        cleared_by: LifeSource | None = None,
        away_until: float | None = None,
    ) -> Facts:
        w = self.w
        quiet = w.quiet_since
        today = w.today
        return Facts(
            at=at,
            quiet_since=quiet,
            quiet_active_s=(
                active_seconds(quiet, at, self.rules, self.zone) if quiet is not None else None
            ),
            window_s=window_of(w, self.rules),
            routine=w.routine,
            reason=w.reason,
            first_use_today_min=today.first_use_min if today is not None else None,
            alarm_at=alarm_at,
            cleared_by=cleared_by,
            away_until=away_until,
            offline_since=w.offline_since,
            flow_since=w.flow_since,
        )

    def notice(self, kind: NoticeKind, to: tuple[int, ...], *, urgent: bool, facts: Facts) -> None:
        self.notices.append(Notice(self.w.household, kind, to, urgent, facts))

    def log(self, at: float, kind: LogKind, detail: str = "") -> None:
        self.logs.append(Log(at, kind, detail))


# -- storage form -----------------------------------------------------------------------


def _plain_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


_WATCH_FIELDS = _plain_fields(WaterWatch)
_DAY_FIELDS = _plain_fields(DayRecord)
_ROUTINE_FIELDS = _plain_fields(Routine)


def _day_record(day: DayRecord) -> dict[str, object]:
    return {name: getattr(day, name) for name in _DAY_FIELDS}


def watch_to_record(watch: WaterWatch, *, history: bool = True) -> dict[str, object]:
    """The watch as plain values (JSON-ready), for the store.

    What `dataclasses.asdict` gives, built field by field (asdict deep-copies every value, and
    this runs for every reading), except the history: a row per day (`DayHistory.rows`), or
    left out (`history=False`) when it is stored packed (`DayHistory.packed`).
    """
    record: dict[str, object] = {name: getattr(watch, name) for name in _WATCH_FIELDS}
    record["today"] = None if watch.today is None else _day_record(watch.today)
    if history:
        record["history"] = cast("DayHistory", watch.history).rows()  # packed by __post_init__
    else:
        del record["history"]
    routine = watch.routine
    record["routine"] = (
        None if routine is None else {name: getattr(routine, name) for name in _ROUTINE_FIELDS}
    )
    return record


def watch_from_record(record: dict[str, Any], packed_history: bytes | None = None) -> WaterWatch:
    """The watch from `watch_to_record`'s values, with its history packed if given apart.

    Raises ValueError if `packed_history` cannot be a history.
    """

    def day(r: dict[str, Any] | None) -> DayRecord | None:
        return None if r is None else DayRecord(**r)

    values = dict(record)
    values["phase"] = Phase(values["phase"])
    for name in ("alerted", "blind_told", "leak_alerted"):
        values[name] = tuple(values.get(name) or ())
    values["today"] = day(values.get("today"))
    values["history"] = (
        DayHistory.from_rows(values.get("history") or ())
        if packed_history is None
        else DayHistory.from_packed(packed_history)
    )
    routine = values.get("routine")
    values["routine"] = None if routine is None else Routine(**routine)
    return WaterWatch(**values)
