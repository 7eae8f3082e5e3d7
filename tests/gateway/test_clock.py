"""The clock seam: sleeping until a time on a clock that a test moves."""

from __future__ import annotations

import asyncio

from gateway.clock import ManualClock, sleep_until_or_woken
from tests.gateway.support import wait_for


async def test_a_sleep_until_a_time_passed_before_the_sleep_began_returns(
    clock: ManualClock,
) -> None:
    due = clock.now() + 5
    sleeping = asyncio.create_task(sleep_until_or_woken(clock, due, asyncio.Event()))
    try:
        await asyncio.sleep(0)  # it has asked to sleep; the sleep itself has not begun
        await clock.advance(10)
        await wait_for(sleeping.done, what="the sleep over: its time has passed")
    finally:
        sleeping.cancel()
    assert clock.now() >= due


async def test_a_sleep_until_a_later_time_waits_for_it(clock: ManualClock) -> None:
    sleeping = asyncio.create_task(sleep_until_or_woken(clock, clock.now() + 5, asyncio.Event()))
    try:
        await asyncio.sleep(0)
        await clock.advance(4)
        assert not sleeping.done()
        await clock.advance(1)
        await wait_for(sleeping.done, what="the sleep over at its time")
    finally:
        sleeping.cancel()
