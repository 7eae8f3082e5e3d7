"""Gateway fixtures: a manual clock and a check for leaked tasks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gateway.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock()


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running."""
    yield
    current = asyncio.current_task()
    for _ in range(20):
        leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not leftover:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"tasks left running: {[t.get_name() for t in leftover]}")
