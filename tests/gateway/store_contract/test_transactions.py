"""A transaction commits all or nothing, serialises writers, and survives closing the store."""

from __future__ import annotations

import asyncio

import pytest

from gateway.domain.devices import DeviceSeen
from gateway.errors import RegistryError, StoreCorruptError, StoreError
from gateway.store.ports import Deadline, Store
from tests.gateway.store_contract.contract import (
    T0,
    Backend,
    device,
    event,
    pending_ids,
    sms,
)


class InjectedError(Exception):
    """Raised by a test inside a transaction."""


async def _write_everything(store: Store) -> None:
    """One transaction that writes a device, events, a deadline and an outbox row, then fails."""
    async with store.transaction() as uow:
        await uow.devices.add(device())
        await uow.devices.insert_events([event(1), event(2)])
        await uow.devices.mark_seen([DeviceSeen("00000000000000a1", T0 + 1, "mqtt", 2, 0)])
        await uow.deadlines.set([Deadline("device_silent", "00000000000000a1", T0 + 180)])
        await uow.outbox.enqueue([sms()], T0 + 1)
        raise InjectedError


async def _nothing_visible(store: Store) -> None:
    assert await store.devices.get("00000000000000a1") is None
    assert await store.devices.all() == []
    assert await store.deadlines.next_at() is None
    assert await store.outbox.next_at() is None
    async with store.transaction() as uow:
        assert await uow.devices.stored_seqs("00000000000000a1", [1, 2]) == set()
        assert await uow.deadlines.due(T0 + 10_000, 10) == []
        assert await pending_ids(uow) == []


async def test_an_exception_inside_a_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(InjectedError):
        await _write_everything(store)
    await _nothing_visible(store)


async def test_a_committed_transaction_shows_every_write(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device())
        await uow.devices.insert_events([event(1), event(2)])
        await uow.deadlines.set([Deadline("device_silent", "00000000000000a1", T0 + 180)])
        await uow.outbox.enqueue([sms()], T0 + 1)
    assert await store.devices.get("00000000000000a1") is not None
    assert await store.deadlines.next_at() == T0 + 180
    assert await store.outbox.next_at() is not None
    async with store.transaction() as uow:
        assert await uow.devices.stored_seqs("00000000000000a1", [1, 2, 3]) == {1, 2}
        assert len(await pending_ids(uow)) == 1


async def test_a_domain_error_rolls_back_the_earlier_writes_of_its_transaction(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device())

    async def add_twice_with_more() -> None:
        async with store.transaction() as uow:
            await uow.outbox.enqueue([sms()], T0)
            await uow.deadlines.set([Deadline("x", "y", T0)])
            await uow.devices.add(device())

    with pytest.raises(RegistryError):
        await add_twice_with_more()
    assert await store.deadlines.next_at() is None
    assert await store.outbox.next_at() is None


async def test_writes_are_visible_inside_their_transaction_and_only_to_it(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device())
        await uow.devices.insert_events([event(7)])
        assert await uow.devices.stored_seqs("00000000000000a1", [7]) == {7}
        # Readers outside the transaction see only what is committed.
        assert await store.devices.get("00000000000000a1") is None
    assert await store.devices.get("00000000000000a1") is not None


async def test_a_cancelled_transaction_rolls_back_and_frees_the_store(
    store: Store,
) -> None:
    inside = asyncio.Event()
    never = asyncio.Event()

    async def writer() -> None:
        async with store.transaction() as uow:
            await uow.devices.add(device())
            await uow.outbox.enqueue([sms()], T0)
            inside.set()
            await never.wait()

    task = asyncio.create_task(writer())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await store.devices.get("00000000000000a1") is None
    # The next writer is not blocked by the cancelled one.
    async with store.transaction() as uow:
        await uow.devices.add(device("00000000000000b2"))
        assert await pending_ids(uow) == []
    assert [d.device_id for d in await store.devices.all()] == ["00000000000000b2"]


async def test_concurrent_transactions_are_serialised_and_all_commit(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device())

    async def write(seq: int) -> None:
        async with store.transaction() as uow:
            stored = await uow.devices.stored_seqs("00000000000000a1", [seq])
            if not stored:
                await uow.devices.insert_events([event(seq)])
                await uow.devices.set_downlink_seq("00000000000000a1", seq)

    # Each sequence number twice, all at once: every one stored exactly once, no error.
    await asyncio.gather(*(write(seq) for seq in [*range(1, 21), *range(1, 21)]))
    async with store.transaction() as uow:
        assert await uow.devices.stored_seqs("00000000000000a1", list(range(1, 25))) == set(
            range(1, 21)
        )
    stored = await store.devices.get("00000000000000a1")
    assert stored is not None
    assert stored.downlink_seq == 20


async def test_an_urgent_transaction_is_next_in_line_ahead_of_ordinary_ones_waiting(
    store: Store,
) -> None:
    order: list[str] = []
    inside = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with store.transaction() as uow:
            await uow.devices.add(device())
            inside.set()
            await release.wait()

    async def write(name: str, *, urgent: bool) -> None:
        async with store.transaction(urgent=urgent) as uow:
            order.append(name)
            await uow.outbox.enqueue([sms()], T0)

    held = asyncio.create_task(holder())
    await inside.wait()
    waiting = [
        asyncio.create_task(write("telemetry", urgent=False)),
        asyncio.create_task(write("outbox", urgent=False)),
        asyncio.create_task(write("green press", urgent=True)),
    ]
    for _ in range(5):
        await asyncio.sleep(0)  # every one of them is waiting for the writer
    release.set()
    await asyncio.gather(held, *waiting)
    assert order == ["green press", "telemetry", "outbox"]
    async with store.transaction() as uow:
        assert len(await pending_ids(uow)) == 3


async def test_committed_writes_survive_closing_and_reopening(
    backend: Backend, store: Store
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device())
        await uow.devices.insert_events([event(1)])
        await uow.deadlines.set([Deadline("device_silent", "00000000000000a1", T0 + 180)])
    await store.close()
    again = backend.make()
    await again.open()
    try:
        assert await again.devices.get("00000000000000a1") is not None
        assert await again.deadlines.next_at() == T0 + 180
        async with again.transaction() as uow:
            assert await uow.devices.stored_seqs("00000000000000a1", [1]) == {1}
    finally:
        await again.close()


async def test_opening_twice_and_closing_twice_are_harmless(backend: Backend) -> None:
    instance = backend.make()
    await instance.open()
    await instance.open()
    async with instance.transaction() as uow:
        await uow.devices.add(device())
    await instance.close()
    await instance.close()
    await instance.open()
    try:
        assert [d.device_id for d in await instance.devices.all()] == ["00000000000000a1"]
    finally:
        await instance.close()


async def test_a_closed_store_refuses_work_with_a_store_error(backend: Backend) -> None:
    instance = backend.make()
    await instance.open()
    await instance.close()
    with pytest.raises(StoreError):
        await instance.devices.get("00000000000000a1")
    with pytest.raises(StoreError):
        await instance.deadlines.next_at()

    async def write() -> None:
        async with instance.transaction() as uow:
            await uow.devices.add(device())

    with pytest.raises(StoreError):
        await write()


async def _open_damaged(backend: Backend) -> tuple[type[BaseException] | None, int]:
    """Open a damaged database: what open() raised, and how many connections it left open.

    Leaked connections are closed here, so that none outlives the test (a running driver
    thread would hang the process at exit).
    """
    if backend.damage is None or backend.reap is None:
        pytest.skip(f"{backend.name} cannot be damaged from a test")
    backend.damage()
    instance = backend.make()
    raised: type[BaseException] | None = None
    try:
        await instance.open()
    except Exception as exc:  # noqa: BLE001 - which kind it is, is what the test checks
        raised = type(exc)
    await instance.close()
    return raised, await backend.reap()


async def test_a_damaged_database_is_a_corrupt_store_error_when_opened(backend: Backend) -> None:
    raised, _ = await _open_damaged(backend)
    assert raised is StoreCorruptError


async def test_a_failed_open_leaves_no_connection_behind(backend: Backend) -> None:
    raised, leaked = await _open_damaged(backend)
    assert raised is not None
    assert leaked == 0
