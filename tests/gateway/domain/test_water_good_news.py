"""The day's first water use, for the family who chose it: once a day, mornings, no alarm."""

from __future__ import annotations

from dataclasses import replace

from gateway.domain.water import SignOfLife, WaterRules
from tests.gateway.domain.water_support import FAMILY, HOUR, WATCHERS, Home, at

TOLD = replace(WATCHERS, good_news=(FAMILY,))
"""The family member chose to hear of the day's first use."""


def test_once_a_day_at_the_first_use_in_active_hours() -> None:
    home = Home(watchers=TOLD, rules=WaterRules(learn=False))
    home.read(at(1, 20), home.volume)
    home.use(at(1, 22, 30))  # after active hours: not a morning's first use
    home.use(at(2, 3, 10))  # in the night: not the morning's first use either
    assert home.good_news() == []
    home.use(at(2, 7, 12))
    home.use(at(2, 9, 0))
    home.use(at(2, 13, 0))
    assert home.good_news() == [7 * 60 + 12]
    told = [n for n in home.notices if n.kind == "first_use_today"]
    assert [(n.recipients, n.urgent) for n in told] == [((FAMILY,), False)]
    home.use(at(2, 19, 0))
    assert home.kinds() == []
    home.use(at(3, 6, 40))
    assert home.good_news() == [7 * 60 + 12, 6 * 60 + 40]


def test_nobody_chose_it_nobody_is_told() -> None:
    home = Home(rules=WaterRules(learn=False))
    home.read(at(1, 20), home.volume)
    home.use(at(2, 7, 12))
    assert home.notices == []
    assert [line.kind for line in home.logs].count("first_use_today") == 1


def test_never_on_a_day_an_alarm_was_open() -> None:
    home = Home(watchers=TOLD, rules=WaterRules(learn=False, ask_first=False))
    home.read(at(1, 20), home.volume)
    home.use(at(1, 21))  # the first day's first use: told
    # Nothing from 21:00: eight active hours at 13:00 the next day, the alarm; water at 15:07
    # is the day's first use, and the all-clear says it, not the good news.
    home.use(at(2, 15, 7))
    assert home.kinds() == ["zero_use_alarm", "zero_use_all_clear"]
    assert home.good_news() == [21 * 60]


def test_not_for_an_alarm_left_open_through_midnight() -> None:
    home = Home(
        watchers=TOLD, rules=WaterRules(learn=False, ask_first=False, active_until_min=23 * 60)
    )
    home.read(at(1, 7), home.volume)
    home.use(at(1, 8))
    home.until(at(1, 16, 30))
    assert home.kinds() == ["zero_use_alarm"]
    # A key press at 06:30 ends it; the first water at 07:00 is on a day that had it open.
    home.until(at(2, 6, 30))
    home.apply(SignOfLife(at(2, 6, 30), "key"))
    home.use(at(2, 7))
    assert home.good_news() == [8 * 60]  # the first day's, before its alarm
    for hour in (12, 18, 22):
        home.use(at(2, hour))
    home.use(at(3, 7) + HOUR)
    assert home.good_news() == [8 * 60, 8 * 60]
