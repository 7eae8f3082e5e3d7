"""Fixtures shared by every test: a real mosquitto per test, and leak checks."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real mosquitto on a free loopback port, persistence on, queue limits set."""
    instance = MosquittoBroker(tmp_path / "broker")
    instance.start()
    instance.wait_ready_blocking()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads running behind it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 2.0
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith("asyncio_")
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when the test says so."""
    return ManualClock()


@pytest.fixture(autouse=True)
def _leak_check_for_async_tests(request: pytest.FixtureRequest) -> None:
    """Every async test gets `no_leaked_tasks` unless marked `allow_leaked_tasks(reason)`."""
    if not inspect.iscoroutinefunction(getattr(request.node, "obj", None)):
        return
    marker = request.node.get_closest_marker("allow_leaked_tasks")
    if marker is not None:
        if not marker.kwargs.get("reason") and not marker.args:
            pytest.fail("allow_leaked_tasks needs a reason")
        return
    request.getfixturevalue("no_leaked_tasks")


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running (on for every async test)."""
    yield
    current = asyncio.current_task()
    for _ in range(20):
        leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        if not leftover:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"tasks left running: {[t.get_name() for t in leftover]}")
