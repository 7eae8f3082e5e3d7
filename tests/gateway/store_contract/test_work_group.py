"""The work groups' poster reads the audit trail of every ticket in order, from a cursor
the store keeps."""

from __future__ import annotations

from gateway.domain.tickets import TicketEvent
from gateway.store.ports import Store
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import T0, seed_grid, ticket


async def test_events_after_an_id_come_in_order_with_their_ids_and_the_cursor_is_kept(
    store: Store,
) -> None:
    await seed_grid(store)
    assert await store.tickets.work_group_cursor() is None
    async with store.transaction() as uow:
        first = await uow.tickets.insert(ticket(HOUSEHOLD, BOX_ID))
        await uow.tickets.add_events(
            [
                TicketEvent(first, T0, "opened", "box_key"),
                TicketEvent(first, T0 + 60, "accepted", "voice_keypress", 1),
                TicketEvent(first, T0 + 600, "on_site", "box_key", 1),
            ]
        )
    every = await store.tickets.events_after(0, 10)
    assert [e.kind for _, e in every] == ["opened", "accepted", "on_site"]
    ids = [i for i, _ in every]
    assert ids == sorted(ids)
    assert await store.tickets.events_after(ids[0], 1) == [every[1]]
    assert await store.tickets.events_after(ids[-1], 10) == []
    async with store.transaction() as uow:
        await uow.tickets.set_work_group_cursor(ids[1])
    async with store.transaction() as uow:
        await uow.tickets.set_work_group_cursor(ids[2])
    assert await store.tickets.work_group_cursor() == ids[2]
