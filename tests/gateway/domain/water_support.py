"""A simulated meter and box feeding the water-watch rules, with explicit times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.domain.water import (
    Ask,
    Context,
    Due,
    Event,
    Log,
    Notice,
    Phase,
    Reading,
    Watchers,
    WaterDecision,
    WaterRules,
    WaterWatch,
    decide,
    new_watch,
)

ZONE = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0
SLOT = 900.0
FAMILY, WORKER, INSTALLER = 11, 22, 33
WATCHERS = Watchers(family=(FAMILY,), community_workers=(WORKER,), installers=(INSTALLER,))


def at(day: int, hour: int, minute: int = 0) -> float:
    """Local time on day `day` of March 2026 (day 1 is a Sunday)."""
    return datetime(2026, 3, day, hour, minute, tzinfo=ZONE).timestamp()


@dataclass
class Home:
    """One household: its meter (a reading every 15 minutes while alive) and its clock."""

    rules: WaterRules = field(default_factory=WaterRules)
    watch: WaterWatch = field(default_factory=lambda: new_watch("370883-001"))
    volume: float = 1000.0
    asks: list[Ask] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    meter_alive: bool = True
    watchers: Watchers = WATCHERS

    def apply(self, event: Event) -> WaterDecision:
        decision = decide(self.watch, event, self.rules, Context(ZONE, self.watchers))
        self.watch = decision.watch
        self.asks.extend(decision.asks)
        self.notices.extend(decision.notices)
        self.logs.extend(decision.logs)
        return decision

    def until(self, t: float) -> None:
        """Time passes to `t`: unchanged readings every 15 minutes, deadlines as they come."""
        while True:
            last = self.watch.last_reading_at
            reading = last + SLOT if self.meter_alive and last is not None else float("inf")
            due = self.watch.due_at if self.watch.due_at is not None else float("inf")
            nxt = min(reading, due)
            if nxt > t:
                return
            if due <= reading:
                self.apply(Due(due))
            else:
                self.apply(Reading(reading, self.volume))

    def use(self, t: float, litres: float = 6.0) -> WaterDecision:
        """Water is used at `t` and the meter reports it then."""
        self.until(t - 0.001)
        self.volume += litres
        return self.apply(Reading(t, self.volume))

    def read(self, t: float, volume: float) -> WaterDecision:
        """The meter reports `volume` at `t` (whatever the counter says)."""
        self.until(t - 0.001)
        self.volume = volume
        return self.apply(Reading(t, volume))

    def phase(self) -> Phase:
        """Where the watch stands now."""
        return self.watch.phase

    def due(self) -> float | None:
        """When the household's deadline is now."""
        return self.watch.due_at

    def kinds(self) -> list[str]:
        """The kinds of notices so far, in order, but for the day's good news."""
        return [n.kind for n in self.notices if n.kind != "first_use_today"]

    def good_news(self) -> list[int | None]:
        """The local minute of each day's first use told so far, in order."""
        return [n.facts.first_use_today_min for n in self.notices if n.kind == "first_use_today"]
