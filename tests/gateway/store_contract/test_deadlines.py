"""Deadlines: one per (kind, subject), served earliest first, moved and cleared by key."""

from __future__ import annotations

from gateway.store.ports import Deadline, Store
from tests.gateway.store_contract.contract import T0


async def test_no_deadline_means_nothing_is_due(store: Store) -> None:
    assert await store.deadlines.next_at() is None
    async with store.transaction() as uow:
        assert await uow.deadlines.due(T0 + 1e9, 10) == []


async def test_due_deadlines_are_those_at_or_before_now_earliest_first(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.deadlines.set(
            [
                Deadline("device_silent", "b", T0 + 30),
                Deadline("ticket_step", "1", T0 + 10),
                Deadline("device_silent", "a", T0 + 20),
                Deadline("ticket_day", "1", T0 + 40),
            ]
        )
    async with store.transaction() as uow:
        due = await uow.deadlines.due(T0 + 30, 10)
    assert due == [
        Deadline("ticket_step", "1", T0 + 10),
        Deadline("device_silent", "a", T0 + 20),
        Deadline("device_silent", "b", T0 + 30),  # exactly at now is due
    ]
    assert await store.deadlines.next_at() == T0 + 10


async def test_due_deadlines_honour_the_limit_from_the_earliest(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.deadlines.set([Deadline("k", f"s{i:02}", T0 + 50 - i) for i in range(20)])
        due = await uow.deadlines.due(T0 + 100, 5)
    assert [d.due_at for d in due] == [T0 + 31, T0 + 32, T0 + 33, T0 + 34, T0 + 35]


async def test_reading_due_deadlines_does_not_consume_them(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.deadlines.set([Deadline("k", "s", T0)])
        first = await uow.deadlines.due(T0, 10)
        second = await uow.deadlines.due(T0, 10)
    assert first == second == [Deadline("k", "s", T0)]
    assert await store.deadlines.next_at() == T0


async def test_setting_an_existing_deadline_moves_it(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.deadlines.set([Deadline("device_silent", "a", T0 + 10)])
    async with store.transaction() as uow:
        await uow.deadlines.set([Deadline("device_silent", "a", T0 + 500)])
        assert await uow.deadlines.due(T0 + 100, 10) == []
        assert await uow.deadlines.due(T0 + 500, 10) == [Deadline("device_silent", "a", T0 + 500)]
    assert await store.deadlines.next_at() == T0 + 500


async def test_the_same_subject_under_two_kinds_is_two_deadlines(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.deadlines.set(
            [Deadline("ticket_step", "7", T0 + 1), Deadline("ticket_day", "7", T0 + 2)]
        )
        await uow.deadlines.clear([("ticket_step", "7")])
        assert await uow.deadlines.due(T0 + 10, 10) == [Deadline("ticket_day", "7", T0 + 2)]


async def test_clearing_removes_by_key_and_ignores_unknown_keys(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.deadlines.set([Deadline("k", "a", T0 + 1), Deadline("k", "b", T0 + 2)])
    async with store.transaction() as uow:
        await uow.deadlines.clear([("k", "a"), ("k", "never-set"), ("other", "b")])
        assert await uow.deadlines.due(T0 + 10, 10) == [Deadline("k", "b", T0 + 2)]
    assert await store.deadlines.next_at() == T0 + 2
    async with store.transaction() as uow:
        await uow.deadlines.clear([("k", "b")])
        await uow.deadlines.clear([])
    assert await store.deadlines.next_at() is None


async def test_a_deadline_cleared_and_set_again_in_one_transaction_is_kept(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.deadlines.set([Deadline("device_silent", "a", T0 + 10)])
    # The scheduler clears what it served; a handler re-arms it in the same transaction.
    async with store.transaction() as uow:
        due = await uow.deadlines.due(T0 + 10, 10)
        await uow.deadlines.clear([(d.kind, d.subject) for d in due])
        await uow.deadlines.set([Deadline("device_silent", "a", T0 + 190)])
    assert await store.deadlines.next_at() == T0 + 190
