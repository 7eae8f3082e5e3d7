"""The accelerated clock: real time times a factor from an anchor, sleeps shortened alike."""

from __future__ import annotations

import time

import pytest

from gateway.clock import AcceleratedClock


def test_time_runs_factor_times_faster_from_the_anchor() -> None:
    anchor = time.time() - 10
    clock = AcceleratedClock(60, anchor)
    before = time.time()
    now = clock.now()
    after = time.time()
    assert anchor + (before - anchor) * 60 <= now <= anchor + (after - anchor) * 60


async def test_a_sleep_lasts_at_least_its_accelerated_length() -> None:
    clock = AcceleratedClock(1000)
    start = clock.now()
    await clock.sleep(50)  # 50 ms real
    assert clock.now() - start >= 50


def test_a_speed_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="speed must be positive, got 0"):
        AcceleratedClock(0)
