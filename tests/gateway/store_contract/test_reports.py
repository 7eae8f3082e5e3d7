"""The reads reports make: the grid, contacts, live and recent tickets, silent boxes."""

from __future__ import annotations

from dataclasses import replace

from gateway.domain.tickets import TicketStatus
from gateway.services.reports import ReportSource
from gateway.store.ports import Store
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import T0, device, event, seed_grid, ticket

OTHER_HOUSEHOLD = "341504-101-001-0002"


async def test_the_grid_and_contacts_are_read_whole(store: Store) -> None:
    reports: ReportSource = store
    assert await reports.grid.units() == {}
    assert await reports.grid.contacts() == []
    await seed_grid(store)
    grid = await reports.grid.units()
    assert len(grid) == 6
    assert grid["341504"].parent_code is None
    assert (grid["341504-101-001"].level, grid["341504-101-001"].name) == ("village", "桥元村")
    assert grid["341504-101-001-1-3-1"].parent_code == "341504-101-001-1-3"
    contacts = await reports.grid.contacts()
    assert len(contacts) == 8
    assert {c.role for c in contacts} >= {"village_secretary", "family", "township_duty"}


async def test_live_and_recently_opened_tickets(store: Store) -> None:
    await seed_grid(store)
    reports: ReportSource = store
    async with store.transaction() as uow:
        resolved = await uow.tickets.insert(ticket(HOUSEHOLD, BOX_ID, at=T0))
        opened = await uow.tickets.get(resolved)
        assert opened is not None
        done = replace(opened, status=TicketStatus.RESOLVED, resolved_at=T0 + 50)
        assert await uow.tickets.save(done, TicketStatus.OPEN)
        live = await uow.tickets.insert(ticket(HOUSEHOLD, BOX_ID, at=T0 + 100))
        neighbour = await uow.tickets.insert(ticket(OTHER_HOUSEHOLD, None, at=T0 + 200))
    assert [t.id for t in await reports.tickets.live()] == [live, neighbour]
    assert [t.id for t in await reports.tickets.opened(T0, T0 + 200)] == [resolved, live]
    assert [t.id for t in await reports.tickets.opened(T0 + 100, T0 + 201)] == [live, neighbour]
    assert await reports.tickets.opened(T0 + 201, T0 + 1000) == []


async def test_silent_boxes_are_call_boxes_with_no_key_press_since(store: Store) -> None:
    pressed, silent, meter, new = (
        "00000000000000a1",
        "00000000000000a2",
        "00000000000000a3",
        "00000000000000a4",
    )
    async with store.transaction() as uow:
        await uow.devices.add(device(pressed))
        await uow.devices.add(device(silent))
        await uow.devices.add(device(meter, kind="water_meter"))
        await uow.devices.add(device(new, created_at=T0 + 5000))
        await uow.devices.insert_events(
            [
                event(1, pressed, "KeyEvent", T0 + 2000),
                event(1, silent, "KeyEvent", T0 + 10),  # before the window
                event(2, silent, "Heartbeat", T0 + 2000),  # not a key press
            ]
        )
    reports: ReportSource = store
    assert await reports.devices.silent_boxes(T0 + 1000) == [silent]
    assert await reports.devices.silent_boxes(T0 + 1) == []
