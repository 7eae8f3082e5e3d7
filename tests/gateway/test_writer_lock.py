"""The store's writer lock: urgent waiters are handed the lock first, nothing is lost."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store.writer_lock import WriterLock


async def _queue(lock: WriterLock, order: list[str], name: str, *, urgent: bool) -> None:
    await lock.acquire(urgent=urgent)
    order.append(name)
    await asyncio.sleep(0)  # hold it across a step, as a transaction does
    lock.release()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_urgent_waiter_goes_before_ordinary_ones_that_asked_earlier() -> None:
    lock = WriterLock()
    order: list[str] = []
    await lock.acquire()
    tasks = [
        asyncio.create_task(_queue(lock, order, "telemetry 1", urgent=False)),
        asyncio.create_task(_queue(lock, order, "outbox", urgent=False)),
        asyncio.create_task(_queue(lock, order, "green 1", urgent=True)),
        asyncio.create_task(_queue(lock, order, "telemetry 2", urgent=False)),
        asyncio.create_task(_queue(lock, order, "green 2", urgent=True)),
    ]
    await _settle()
    assert lock.waiting() == (2, 3)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["green 1", "green 2", "telemetry 1", "outbox", "telemetry 2"]
    assert not lock.locked()
    assert lock.waiting() == (0, 0)


async def test_a_free_lock_is_taken_at_once_and_a_newcomer_queues_behind_waiters() -> None:
    lock = WriterLock()
    await lock.acquire(urgent=True)
    assert lock.locked()
    order: list[str] = []
    first = asyncio.create_task(_queue(lock, order, "first", urgent=False))
    await _settle()
    lock.release()  # handed to "first": the lock never looks free to a newcomer
    assert lock.locked()
    late = asyncio.create_task(_queue(lock, order, "late", urgent=False))
    await asyncio.gather(first, late)
    assert order == ["first", "late"]


async def test_a_cancelled_waiter_is_skipped_and_a_handed_one_passes_it_on() -> None:
    lock = WriterLock()
    order: list[str] = []
    await lock.acquire()
    gone = asyncio.create_task(_queue(lock, order, "gone", urgent=True))
    handed = asyncio.create_task(_queue(lock, order, "handed", urgent=True))
    after = asyncio.create_task(_queue(lock, order, "after", urgent=False))
    await _settle()
    gone.cancel()
    await _settle()
    lock.release()  # "gone" is skipped: "handed" is given the lock...
    handed.cancel()  # ...and cancelled before it could run: it passes the lock on
    await asyncio.gather(after)
    for task in (gone, handed):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert order == ["after"]
    assert not lock.locked()


async def test_releasing_a_free_lock_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not held"):
        WriterLock().release()
