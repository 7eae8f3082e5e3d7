"""Thumbs presses: recorded with their ticket, or alone when no ticket is waiting for one."""

from __future__ import annotations

import pytest

from gateway.errors import StoreError
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import T0, ContractStore, seed_grid


async def test_feedback_is_recorded_in_order_with_or_without_a_ticket(
    store: ContractStore,
) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        ticket_id = await uow.insert_ticket(HOUSEHOLD, BOX_ID, None, None, 1, T0)
        await uow.add_feedback(HOUSEHOLD, BOX_ID, T0 + 10, "up", ticket_id)
    async with store.transaction() as uow:
        await uow.add_feedback(None, "00000000000000f1", T0 + 20, "down", None)
    assert await store.feedback() == [("up", ticket_id), ("down", None)]


async def test_feedback_rolls_back_with_its_transaction(store: ContractStore) -> None:
    async def press_then_fail() -> None:
        async with store.transaction() as uow:
            await uow.add_feedback(None, BOX_ID, T0, "up", None)
            raise LookupError

    with pytest.raises(LookupError):
        await press_then_fail()
    assert await store.feedback() == []


@pytest.mark.xfail(
    strict=True,
    reason="SqliteUnitOfWork.add_feedback lets sqlite3.IntegrityError (FOREIGN KEY ticket_id)"
    " escape for a ticket that does not exist instead of a StoreError",
)
async def test_feedback_for_an_unknown_ticket_is_a_store_error(store: ContractStore) -> None:
    async def press() -> None:
        async with store.transaction() as uow:
            await uow.add_feedback(None, BOX_ID, T0, "up", 4242)

    with pytest.raises(StoreError):
        await press()
    assert await store.feedback() == []
