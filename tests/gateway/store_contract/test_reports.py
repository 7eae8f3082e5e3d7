"""The reads reports make: the grid, contacts, live and recent tickets, silent boxes."""

from __future__ import annotations

from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import T0, ContractStore, device, event, seed_grid

OTHER_HOUSEHOLD = "341504-101-001-0002"


async def test_the_grid_and_contacts_are_read_whole(store: ContractStore) -> None:
    assert await store.grid() == {}
    assert await store.contacts() == []
    await seed_grid(store)
    grid = await store.grid()
    assert len(grid) == 6
    assert grid["341504"].parent_code is None
    assert (grid["341504-101-001"].level, grid["341504-101-001"].name) == ("village", "桥元村")
    assert grid["341504-101-001-1-3-1"].parent_code == "341504-101-001-1-3"
    contacts = await store.contacts()
    assert len(contacts) == 8
    assert {c.role for c in contacts} >= {"village_secretary", "family", "township_duty"}


async def test_live_and_recently_opened_tickets(store: ContractStore) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        resolved = await uow.insert_ticket(HOUSEHOLD, BOX_ID, None, None, 1, T0)
        await uow.update_ticket(resolved, status="resolved", resolved_at=T0 + 50)
        live = await uow.insert_ticket(HOUSEHOLD, BOX_ID, None, None, 1, T0 + 100)
        neighbour = await uow.insert_ticket(OTHER_HOUSEHOLD, None, None, None, 1, T0 + 200)
    assert [t.id for t in await store.live_tickets()] == [live, neighbour]
    assert [t.id for t in await store.tickets_opened(T0, T0 + 200)] == [resolved, live]
    assert [t.id for t in await store.tickets_opened(T0 + 100, T0 + 201)] == [live, neighbour]
    assert await store.tickets_opened(T0 + 201, T0 + 1000) == []


async def test_silent_boxes_are_call_boxes_with_no_key_press_since(store: ContractStore) -> None:
    pressed, silent, meter, new = (
        "00000000000000a1",
        "00000000000000a2",
        "00000000000000a3",
        "00000000000000a4",
    )
    async with store.transaction() as uow:
        await uow.add_device(device(pressed))
        await uow.add_device(device(silent))
        await uow.add_device(device(meter, kind="water_meter"))
        await uow.add_device(device(new, created_at=T0 + 5000))
        await uow.insert_events(
            [
                event(1, pressed, "KeyEvent", T0 + 2000),
                event(1, silent, "KeyEvent", T0 + 10),  # before the window
                event(2, silent, "Heartbeat", T0 + 2000),  # not a key press
            ]
        )
    assert await store.silent_boxes(T0 + 1000) == [silent]
    assert await store.silent_boxes(T0 + 1) == []
