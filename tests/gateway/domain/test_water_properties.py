"""Invariants of the water watch over generated days (hypothesis): no sleeping, no clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.water import AwaySet, Phase, Reading, SignOfLife, WaterRules
from tests.gateway.domain.water_support import HOUR, Home, at

RULES = WaterRules()
MINUTE = 60.0

# A day's uses as gaps in minutes, the first from 06:00: every quiet stretch in active
# hours stays under the 6-hour minimum window (the overnight one: at most 1 h before 22:00
# and 4 h after 06:00).
days_of_use = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=4 * 60),
        st.lists(st.integers(min_value=1, max_value=5 * 60 + 59), max_size=8),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(days=days_of_use, rules_learn=st.booleans(), ask=st.booleans())
def test_a_night_never_raises_an_alarm(
    days: list[tuple[int, list[int]]], rules_learn: bool, ask: bool
) -> None:
    """Quiet stretches shorter than the minimum window in active hours, however long the
    nights between them (no water from the evening's last use to 06:00): nothing, ever."""
    home = Home(rules=WaterRules(learn=rules_learn, ask_first=ask))
    home.apply(Reading(at(1, 21, 30), home.volume))
    for index, (first, gaps) in enumerate(days):
        day = 2 + index
        t = at(day, 6) + first * MINUTE
        home.use(t)
        for gap in gaps:
            if t + gap * MINUTE >= at(day, 22):
                break
            t += gap * MINUTE
            home.use(t)
        while t < at(day, 21):
            t = min(t + 5 * HOUR, at(day, 21, 30))
            home.use(t)
        # The rest of the evening and the whole night are quiet.
    home.until(at(2 + len(days), 10))
    assert home.asks == []
    assert home.kinds() == []


events = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=60),  # minutes since the previous event
        st.sampled_from(["use", "reset", "jump", "quiet", "key", "backflow"]),
    ),
    max_size=120,
)


@settings(max_examples=50, deadline=None)
@given(steps=events, away_hours=st.integers(min_value=1, max_value=72))
def test_never_an_alarm_while_away(steps: list[tuple[int, str]], away_hours: int) -> None:
    home = Home(rules=RULES)
    home.apply(Reading(at(2, 6), home.volume))
    home.use(at(2, 7))
    home.apply(AwaySet(at(2, 7, 30), until=at(2, 7, 30) + away_hours * HOUR))
    t = at(2, 7, 30)
    for minutes, kind in steps:
        t += minutes * MINUTE
        if kind == "reset":
            home.read(t, 0.0)
        elif kind == "jump":
            home.read(t, home.volume + 10_000)
        elif kind == "backflow":
            home.read(t, home.volume - 1)
        elif kind == "key":
            home.until(t)
            home.apply(SignOfLife(t, "key"))
        elif kind == "quiet":
            home.read(t, home.volume)
        if home.phase() != Phase.AWAY:
            break  # water ended away mode (the resident came back)
    home.until(max(t, at(2, 7, 30) + away_hours * HOUR - 1))
    ended = min(
        [log.at for log in home.logs if log.kind in ("away_ended", "away_ended_by_use")]
        or [float("inf")]
    )
    assert all(ask.facts.at >= ended for ask in home.asks)
    assert all(n.facts.at >= ended for n in home.notices if n.kind == "zero_use_alarm")


anomalies = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=90),
        st.sampled_from(["reset", "jump", "wrap", "backflow", "quiet"]),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=50, deadline=None)
@given(steps=anomalies, ask_at_start=st.booleans())
def test_counter_anomalies_never_count_as_use(
    steps: list[tuple[int, str]], ask_at_start: bool
) -> None:
    """Resets, jumps, wraps and backflow: no life, no all-clear, no learned use, no answer."""
    home = Home(rules=RULES)
    home.apply(Reading(at(2, 6), home.volume))
    home.use(at(2, 7))
    t = at(2, 7)
    if ask_at_start:
        t = at(2, 15, 5)
        home.until(t)
        assert home.phase() == Phase.ASKING
    high = home.volume
    for minutes, kind in steps:
        t += minutes * MINUTE
        if kind == "reset":
            home.read(t, 0.0)
        elif kind == "jump":
            home.read(t, home.volume + 10_000)
        elif kind == "wrap":
            home.read(t, 2.0**32 - 1)
            t += MINUTE
            home.read(t, 0.5)
        elif kind == "backflow":
            # Down a little, then back up to (never beyond) the highest volume seen.
            high = max(high, home.volume)
            home.read(t, high - 3)
            t += MINUTE
            home.read(t, high)
        else:
            home.read(t, home.volume)
        high = home.volume
    assert home.watch.last_life_at == at(2, 7)
    assert "zero_use_all_clear" not in home.kinds()
    today = home.watch.today
    history = home.watch.history
    assert all(r.day == history[0].day for r in history) if history else True
    if today is not None and today.lived:
        assert today.first_use_min == 7 * 60
