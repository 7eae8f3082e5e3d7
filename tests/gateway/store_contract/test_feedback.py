"""Thumbs presses: recorded with their ticket, or alone when no ticket is waiting for one."""

from __future__ import annotations

import pytest

from gateway.errors import ConflictError
from gateway.store.ports import Feedback, Store
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import T0, seed_grid, ticket


async def test_feedback_is_recorded_in_order_with_or_without_a_ticket(store: Store) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        ticket_id = await uow.tickets.insert(ticket(HOUSEHOLD, BOX_ID))
        await uow.tickets.add_feedback(Feedback(HOUSEHOLD, BOX_ID, T0 + 10, "up", ticket_id))
    async with store.transaction() as uow:
        await uow.tickets.add_feedback(Feedback(None, "00000000000000f1", T0 + 20, "down", None))
    assert await store.tickets.feedback() == [
        Feedback(HOUSEHOLD, BOX_ID, T0 + 10, "up", ticket_id),
        Feedback(None, "00000000000000f1", T0 + 20, "down", None),
    ]


async def test_feedback_rolls_back_with_its_transaction(store: Store) -> None:
    async def press_then_fail() -> None:
        async with store.transaction() as uow:
            await uow.tickets.add_feedback(Feedback(None, BOX_ID, T0, "up", None))
            raise LookupError

    with pytest.raises(LookupError):
        await press_then_fail()
    assert await store.tickets.feedback() == []


async def test_feedback_for_an_unknown_ticket_is_a_conflict(store: Store) -> None:
    async def press() -> None:
        async with store.transaction() as uow:
            await uow.tickets.add_feedback(Feedback(None, BOX_ID, T0, "up", 4242))

    with pytest.raises(ConflictError):
        await press()
    assert await store.tickets.feedback() == []
