"""Fixtures shared by the gateway's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.gateway.village import Village, running_village


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    """The village of tests/gateway/village.py, running (modules may define their own)."""
    async with running_village(tmp_path, broker, clock) as running:
        yield running
