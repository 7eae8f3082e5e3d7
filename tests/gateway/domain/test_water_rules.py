"""The water watch's rules (issue 13, items 1-7), one decision at a time, explicit times."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.config import WaterWatchSettings, load_settings
from gateway.domain.water import (
    Answered,
    AwaySet,
    DayRecord,
    FlowObserved,
    MeterOffline,
    MeterOnline,
    OutageEnded,
    Phase,
    Reading,
    SignOfLife,
    WaterRules,
    active_seconds,
    after_active,
    learn,
    local_day,
)
from gateway.errors import ConfigError
from tests.gateway.domain.water_support import (
    FAMILY,
    HOUR,
    INSTALLER,
    WORKER,
    ZONE,
    Home,
    at,
)

RULES = WaterRules()
FIXED = WaterRules(learn=False)


def started(rules: WaterRules = FIXED, *, first: float | None = None) -> Home:
    """A household whose meter has reported and whose resident used water at `first`."""
    home = Home(rules=rules)
    first = first if first is not None else at(2, 7)
    home.apply(Reading(first - HOUR, home.volume))
    home.use(first)
    return home


def test_eight_quiet_active_hours_ask_the_resident_first() -> None:
    home = started()
    home.until(at(2, 14, 59))
    assert home.asks == []
    home.until(at(2, 15, 0))
    assert [a.answer_by for a in home.asks] == [at(2, 15, 10)]
    assert home.phase() == Phase.ASKING
    assert home.notices == []
    facts = home.asks[0].facts
    assert facts.quiet_since == at(2, 7)
    assert facts.quiet_active_s == 8 * HOUR


def test_no_answer_alarms_family_and_community_worker() -> None:
    home = started()
    home.until(at(2, 15, 9))
    assert home.kinds() == []
    home.until(at(2, 15, 10))
    assert home.kinds() == ["zero_use_alarm"]
    alarm = home.notices[0]
    assert alarm.recipients == (FAMILY, WORKER)
    assert alarm.urgent
    assert alarm.facts.at == at(2, 15, 10)
    assert home.phase() == Phase.ALARMED
    assert home.due() is None  # an open alarm waits for life, not for a clock


def test_thumbs_up_cancels_and_counts_as_life() -> None:
    home = started()
    home.until(at(2, 15, 4))
    decision = home.apply(Answered(at(2, 15, 4)))
    assert "answered" in decision.counts
    home.until(at(2, 22, 0))
    assert home.kinds() == []
    assert home.phase() == Phase.WATCHING
    assert home.watch.quiet_since == at(2, 15, 4)
    # The next window runs from the answer, in active hours only: 6 h 56 min today, the rest
    # from 06:00 tomorrow.
    assert home.due() == at(3, 7, 4)


def test_water_after_the_alarm_tells_everyone_alerted() -> None:
    home = started()
    home.until(at(2, 16))
    assert home.kinds() == ["zero_use_alarm"]
    home.use(at(2, 16, 30))
    assert home.kinds() == ["zero_use_alarm", "zero_use_all_clear"]
    clear = home.notices[1]
    assert clear.recipients == home.notices[0].recipients == (FAMILY, WORKER)
    assert clear.facts.alarm_at == at(2, 15, 10)
    assert clear.facts.cleared_by == "water"
    assert home.phase() == Phase.WATCHING
    assert home.watch.alerted == ()


def test_a_key_press_counts_as_life_and_clears_an_alarm() -> None:
    home = started()
    home.until(at(2, 14))
    home.apply(SignOfLife(at(2, 14), "key"))
    home.until(at(2, 21, 59))
    assert home.kinds() == []
    home.until(at(3, 12))
    assert home.kinds() == ["zero_use_alarm"]
    home.apply(SignOfLife(at(3, 12, 5), "key"))
    assert home.kinds() == ["zero_use_alarm", "zero_use_all_clear"]
    assert home.notices[1].facts.cleared_by == "key"


def test_a_whole_night_of_zero_use_raises_nothing() -> None:
    home = started(first=at(2, 21, 30))
    home.until(at(3, 6, 29))  # nine hours without water, all but half an hour of them at night
    assert home.asks == []
    assert home.kinds() == []
    home.use(at(3, 6, 30))
    assert home.due() == at(3, 14, 30)


def test_the_night_does_not_count_towards_the_window() -> None:
    home = started(first=at(2, 20))
    home.until(at(3, 11, 59))
    assert home.asks == []
    home.until(at(3, 12))  # 2 h before 22:00 and 6 h after 06:00
    assert len(home.asks) == 1


def _late_riser_days(home: Home, days: range) -> None:
    """Up at 13:00, water until 20:00: nine quiet active hours every night."""
    for day in days:
        for hour in (13, 15, 17, 20):
            home.use(at(day, hour))


def test_a_late_riser_with_a_learned_routine_is_not_an_emergency() -> None:
    fixed, learned = started(FIXED, first=at(1, 20)), started(RULES, first=at(1, 20))
    _late_riser_days(fixed, range(2, 23))
    _late_riser_days(learned, range(2, 23))
    assert len(fixed.asks) == 21  # every morning at 11:00
    # Learning: the fixed window asks until 14 days are known (days 1-14), then never.
    assert len(learned.asks) == 13
    assert all(ask.facts.at < at(15, 0) for ask in learned.asks)
    routine = learned.watch.routine
    assert routine is not None
    assert routine.days == 21  # days 1-21; day 22 is today
    assert routine.usual_longest_quiet_s == 9 * HOUR
    assert routine.window_s == RULES.max_window_s  # 9 h + 2 h
    assert routine.usual_first_use_by_min == 13 * 60
    # A day with no water at all is still noticed: 20:00 + 2 h + 9 h after 06:00.
    learned.until(at(24, 15))
    assert len(learned.asks) == 14
    facts = learned.asks[-1].facts
    assert facts.at == at(23, 15)
    assert facts.routine is not None
    assert facts.routine.window_s == routine.window_s
    assert facts.routine.usual_first_use_by_min == 13 * 60
    assert facts.first_use_today_min is None
    assert facts.window_s == 11 * HOUR


def test_a_new_household_uses_the_fixed_window_until_it_has_history() -> None:
    home = started(RULES)
    assert home.watch.routine is None
    assert home.due() == after_active(at(2, 7), RULES.window_s, RULES, ZONE)


def test_the_learned_statistic_is_the_second_longest_day_plus_margin() -> None:
    today = local_day(at(30, 12), ZONE)
    longest = [4.0] * 20 + [5.0, 6.5, 14.0]
    history = [
        DayRecord(today - 1 - i, 7 * 60 + i, hours * HOUR, lived=True)
        for i, hours in enumerate(longest)
    ]
    routine = learn(history, today, RULES)
    assert routine is not None
    assert routine.days == 23
    assert routine.usual_longest_quiet_s == 6.5 * HOUR  # one odd day (14 h) does not count
    assert routine.window_s == 8.5 * HOUR
    assert routine.usual_first_use_by_min == 7 * 60 + 21
    short = learn(history[:13], today, RULES)
    assert short is None  # fewer than 14 days: the fixed window
    quiet = [DayRecord(r.day, r.first_use_min, HOUR, lived=True) for r in history]
    learned = learn(quiet, today, RULES)
    assert learned is not None
    assert learned.window_s == RULES.min_window_s  # never under the minimum
    old = [replace(r, day=r.day - 40) for r in history]
    assert learn(old, today, RULES) is None  # only the last 28 days


def test_away_mode_holds_every_alarm_until_the_return_then_reminds() -> None:
    home = started()
    home.until(at(2, 9))
    home.apply(AwaySet(at(2, 9), until=at(4, 12), by=FAMILY))
    home.until(at(4, 13, 59))
    assert home.asks == []
    assert home.kinds() == []
    home.until(at(4, 14))
    assert home.kinds() == ["away_reminder"]
    reminder = home.notices[0]
    assert reminder.recipients == (FAMILY,)
    assert reminder.facts.away_until == at(4, 12)
    home.until(at(4, 19, 59))
    assert home.asks == [], "the window restarted at the return time"
    home.until(at(4, 20))
    assert len(home.asks) == 1


def test_water_on_leaving_does_not_end_away_mode_but_water_later_does() -> None:
    home = started()
    home.apply(AwaySet(at(2, 8), until=at(5, 12)))
    home.use(at(2, 8, 20))  # a flush before leaving
    assert home.phase() == Phase.AWAY
    home.use(at(3, 18))  # back early
    assert home.phase() == Phase.WATCHING
    assert home.watch.away_until is None


def test_setting_away_mode_closes_an_open_alarm() -> None:
    home = started()
    home.until(at(2, 16))
    home.apply(AwaySet(at(2, 16), until=at(3, 18), by=FAMILY))
    assert home.kinds() == ["zero_use_alarm", "zero_use_all_clear"]
    assert home.notices[1].recipients == (FAMILY, WORKER)


def test_a_meter_offline_is_blind_not_zero() -> None:
    home = started()
    home.until(at(2, 10))
    home.meter_alive = False
    home.apply(MeterOffline(at(2, 10, 45)))
    home.until(at(3, 18))
    assert home.asks == []
    assert home.kinds() == ["meter_offline", "watch_blind"]
    offline, blind = home.notices
    assert offline.recipients == (INSTALLER,)
    assert blind.recipients == (WORKER,)
    assert not offline.urgent
    assert not blind.urgent
    home.meter_alive = True
    home.apply(MeterOnline(at(3, 18)))
    home.apply(Reading(at(3, 18), home.volume))
    assert home.kinds()[-1] == "watch_restored"
    assert home.notices[-1].recipients == (WORKER,)
    # The clock restarted from the data received again: 4 h today, 4 h tomorrow.
    assert home.due() == at(4, 10)


def test_an_outage_restarts_the_clocks_and_fires_no_burst() -> None:
    home = started()
    home.until(at(2, 9))
    home.meter_alive = False  # the broker is down: nothing arrives
    home.until(at(2, 16))  # the deadline at 15:00 finds the last reading six hours old
    assert home.asks == []
    assert [log.kind for log in home.logs][-1] == "stale_data"
    assert home.due() is None
    home.apply(OutageEnded(at(2, 16), began_at=at(2, 9)))
    home.meter_alive = True
    home.apply(Reading(at(2, 16), home.volume))
    assert home.asks == []
    assert home.due() == at(3, 8)
    home.until(at(3, 7, 59))
    assert home.asks == []
    home.until(at(3, 8))
    assert len(home.asks) == 1


def test_continuous_flow_is_a_leak_alarm_until_the_flow_stops() -> None:
    home = started()
    for quarter in range(1, 9):
        home.use(at(2, 9) + quarter * 900, litres=3)
    assert home.kinds() == []  # rising since 09:15, two hours reached at 11:15
    home.use(at(2, 11, 15), litres=3)
    assert home.kinds() == ["leak_alarm"]
    leak = home.notices[0]
    assert leak.recipients == (FAMILY, WORKER)
    assert leak.facts.flow_since == at(2, 9, 15)
    home.read(at(2, 11, 30), home.volume)
    assert home.kinds() == ["leak_alarm", "leak_all_clear"]


def test_the_meters_own_flow_flag_is_a_leak_too() -> None:
    home = started()
    home.apply(FlowObserved(at(2, 12), since=at(2, 9, 30)))
    assert home.kinds() == ["leak_alarm"]


def test_a_meter_replaced_is_neither_use_nor_alarm() -> None:
    home = started()
    home.until(at(2, 15, 5))
    assert home.phase() == Phase.ASKING
    decision = home.read(at(2, 15, 6), 0.0)  # the new meter starts at zero
    assert [log.kind for log in decision.logs] == ["counter_reset"]
    assert home.phase() == Phase.ASKING, "a reset is not life: the question stands"
    assert home.watch.last_life_at == at(2, 7)
    home.until(at(2, 15, 10))
    assert home.kinds() == ["zero_use_alarm"]
    # After the reset, use is counted from the new counter.
    home.use(at(2, 16))
    assert home.kinds() == ["zero_use_alarm", "zero_use_all_clear"]


def test_a_reset_while_watching_restarts_the_clock_without_counting_use() -> None:
    home = started()
    home.read(at(2, 12), 3.0)
    assert home.watch.last_life_at == at(2, 7)
    assert home.watch.quiet_since == at(2, 12)
    assert home.watch.today is not None
    assert home.watch.today.first_use_min == 7 * 60


def test_an_implausible_jump_and_a_wrap_are_not_use() -> None:
    home = started()
    home.read(at(2, 9), home.volume + 5000)  # 5 m3 in 15 minutes
    assert home.watch.last_life_at == at(2, 7)
    assert [log.kind for log in home.logs][-1] == "counter_jump"
    home.read(at(2, 10), 2.0**32 - 10)
    home.read(at(2, 10, 15), 3.0)  # the counter wrapped
    assert home.watch.last_life_at == at(2, 7)
    assert [log.kind for log in home.logs][-2:] == ["counter_jump", "counter_reset"]


def test_backflow_is_not_use_when_the_water_comes_back() -> None:
    home = started()
    high = home.volume
    logs = len(home.logs)
    home.read(at(2, 9), high - 2)
    home.read(at(2, 9, 15), high)
    assert home.watch.last_life_at == at(2, 7)
    assert [log.kind for log in home.logs[logs:]] == ["backflow"]
    home.read(at(2, 9, 30), high + 4)
    assert home.watch.last_life_at == at(2, 9, 30)


def test_active_hours_arithmetic() -> None:
    assert active_seconds(at(2, 21), at(3, 7), RULES, ZONE) == 2 * HOUR
    assert after_active(at(2, 23), 1 * HOUR, RULES, ZONE) == at(3, 7)
    assert after_active(at(2, 21), 2 * HOUR, RULES, ZONE) == at(3, 7)
    all_day = WaterRules(active_from_min=0, active_until_min=24 * 60)
    assert active_seconds(at(2, 21), at(3, 7), all_day, ZONE) == 10 * HOUR


def test_settings_give_the_rules_and_refuse_what_cannot_work() -> None:
    settings = load_settings()
    assert settings.water.rules() == WaterRules()
    night_owls = WaterWatchSettings(active_from="09:00", active_until="24:00")
    assert night_owls.rules().active_from_min == 9 * 60
    assert night_owls.rules().active_until_min == 24 * 60
    with pytest.raises(ConfigError, match=r"water\.window_s"):
        load_settings(water={"window_s": 3 * 3600})
    with pytest.raises(ConfigError, match="max_window_s"):
        load_settings(water={"max_window_s": 7 * 3600})
    with pytest.raises(ConfigError, match="active hours"):
        load_settings(water={"active_from": "22:00", "active_until": "06:00"})


def test_a_meter_blip_tells_nobody_and_a_long_spell_is_told_after_the_hold_off() -> None:
    home = started()
    home.until(at(2, 10))
    home.meter_alive = False
    # Declared offline 45 minutes after its last reading; back 40 minutes later: a blip.
    home.apply(MeterOffline(at(2, 10, 45), since=at(2, 10)))
    home.until(at(2, 11, 25))
    home.meter_alive = True
    home.apply(Reading(at(2, 11, 25), home.volume))
    assert "watch_blind" not in home.kinds()
    assert "watch_restored" not in home.kinds()

    # Offline again, this time for good: the worker is told an hour after the transition,
    # with the time the meter was last heard; nobody is asked while the watch is blind.
    home.until(at(2, 12))
    home.meter_alive = False
    home.apply(MeterOffline(at(2, 12, 45), since=at(2, 12)))
    home.until(at(2, 13, 44))
    assert "watch_blind" not in home.kinds()
    home.until(at(2, 13, 45))
    blind = home.notices[-1]
    assert (blind.kind, blind.recipients) == ("watch_blind", (WORKER,))
    assert (blind.facts.at, blind.facts.offline_since) == (at(2, 13, 45), at(2, 12))
    home.until(at(3, 20))
    assert home.asks == []
    assert home.kinds().count("watch_blind") == 1


MORNING = replace(RULES, morning_check=True)


def regular(rules: WaterRules) -> Home:
    """Water at 07:00, 12:00, 18:00 and 21:00 on days 1-16 (usually first water by 07:00),
    with what the first days' fixed window did forgotten."""
    home = started(rules, first=at(1, 7))
    for day in range(1, 17):
        for hour in (7, 12, 18, 21):
            if at(day, hour) > at(1, 7):
                home.use(at(day, hour))
    assert home.asks == []
    home.notices.clear()
    home.logs.clear()
    return home


def test_the_morning_check_asks_when_no_water_comes_by_the_usual_time_plus_margin() -> None:
    home = regular(MORNING)
    home.until(at(17, 0))
    routine = home.watch.routine
    assert routine is not None
    assert routine.usual_first_use_by_min == 7 * 60
    # Day 17: no water after 21:00 last night. At 08:30 (07:00 + 1.5 h) she is asked, long
    # before the window (6 h + 2 h from 21:00, in active hours: 13:00) would close.
    assert home.due() == at(17, 8, 30)
    home.until(at(17, 8, 29))
    assert home.asks == []
    home.until(at(17, 8, 30))
    assert [a.answer_by for a in home.asks] == [at(17, 8, 40)]
    facts = home.asks[0].facts
    assert facts.reason == "morning"
    assert facts.quiet_since == at(16, 21)
    assert facts.routine is not None
    assert facts.routine.usual_first_use_by_min == 7 * 60
    assert ("asked", "morning") in [(log.kind, log.detail) for log in home.logs]
    # No answer: the alarm says why it was raised.
    home.until(at(17, 8, 40))
    assert home.kinds() == ["zero_use_alarm"]
    alarm = home.notices[-1]
    assert alarm.recipients == (FAMILY, WORKER)
    assert alarm.facts.reason == "morning"
    # Water clears it; the next question is the window's, with its own reason.
    home.use(at(17, 9, 5))
    assert home.kinds() == ["zero_use_alarm", "zero_use_all_clear"]
    assert home.watch.reason is None
    home.until(at(17, 17, 4))
    assert len(home.asks) == 1
    home.until(at(17, 17, 5))
    assert [a.facts.reason for a in home.asks] == ["morning", "window"]


def test_the_morning_check_is_off_by_default_and_needs_a_learned_routine() -> None:
    default = regular(RULES)
    default.until(at(17, 12, 59))
    assert default.asks == [], "without the morning check only the window asks"
    default.until(at(17, 13))
    assert [a.facts.reason for a in default.asks] == ["window"]
    new = started(MORNING, first=at(1, 21))
    new.until(at(2, 12))
    assert new.asks == [], "no routine yet: no usual time to miss"
    assert new.due() == at(2, 13), "the fixed 8 h from 21:00, in active hours"


def test_the_morning_check_waits_for_a_day_that_began_and_for_a_thumbs_up() -> None:
    home = regular(MORNING)
    home.use(at(17, 6, 20))  # up early: the day has begun, nothing to miss this morning
    home.until(at(17, 12))
    assert home.asks == []
    other = regular(MORNING)
    other.until(at(17, 8, 30))
    assert len(other.asks) == 1
    other.apply(Answered(at(17, 8, 33)))
    assert other.phase() == Phase.WATCHING
    other.until(at(18, 0))
    assert len(other.asks) == 2, "after the answer, the window from 08:33 (8 h: 16:33)"
    assert other.asks[1].facts.at == at(17, 16, 33)
    assert other.asks[1].facts.reason == "window"
