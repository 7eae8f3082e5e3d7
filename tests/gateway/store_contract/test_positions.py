"""Positions (session << 32 | seq) over the whole unsigned 64-bit range, 2**63 and above too."""

from __future__ import annotations

from dataclasses import replace

from firmware_protocol import Key
from gateway.domain.devices import DeviceSeen, EventRow
from gateway.domain.tickets import BoxPress
from gateway.store.ports import Store, StoredKeyPress
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import T0, device, event, seed_grid, ticket

BOX = "00000000000000a1"
TOP = 0xFFFF_FFFE << 32 | 0xFFFF_FFFE
"""The highest position protocol v2 allows."""
# Around 2**63 (session 0x80000000), in order; the first three are below it.
POSITIONS = [
    0,
    1 << 32 | 1,
    0x7FFF_FFFF << 32 | 0xFFFF_FFFE,
    0x8000_0000 << 32,
    0x8000_0000 << 32 | 1,
    0x8000_0000 << 32 | 0xFFFF_FFFE,
    0xFFFF_FFFE << 32 | 1,
    TOP,
]


def frame(position: int, received_at: float = T0 + 1) -> EventRow:
    """A heartbeat at `position` (the box's clock, a 32-bit timestamp, at 7)."""
    return replace(event(position, BOX, received_at=received_at), device_time=7)


def key_event(position: int, key: str = "GREEN_CALL") -> EventRow:
    return replace(frame(position), msg_type="KeyEvent", fields=f'{{"key": "{key}"}}')


async def test_positions_round_trip_and_keep_their_order(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX, last_seq=TOP, downlink_seq=TOP))
        await uow.devices.insert_events([frame(p) for p in reversed(POSITIONS)])
    stored = await store.devices.get(BOX)
    assert stored is not None
    assert (stored.last_seq, stored.downlink_seq) == (TOP, TOP)
    assert sorted(await store.devices.event_seqs()) == [(BOX, p) for p in POSITIONS]
    async with store.transaction() as uow:
        assert await uow.devices.stored_seqs(BOX, [*POSITIONS, 0x8000_0000 << 32 | 2]) == set(
            POSITIONS
        )
        macs = await uow.devices.stored_macs(BOX, POSITIONS)
        assert sorted(macs) == POSITIONS


async def test_the_newest_position_is_found_across_two_to_the_63(store: Store) -> None:
    below, above = 0x7FFF_FFFF << 32 | 5, 0x8000_0000 << 32 | 1
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.insert_events([frame(below), frame(above, received_at=T0)])
        await uow.devices.mark_seen([DeviceSeen(BOX, T0 + 1, "mqtt", below, 0)])
    current = await store.devices.current(BOX)
    assert current is not None
    assert (current.last_seq, current.high_seq) == (above, above)
    async with store.transaction() as uow:
        # Seen never lowers the order; a first sighting (no order yet) sets it, high or low.
        await uow.devices.mark_seen([DeviceSeen(BOX, T0 + 2, "mqtt", TOP, TOP)])
        await uow.devices.mark_seen([DeviceSeen(BOX, T0 + 3, "mqtt", below, 1)])
        await uow.devices.set_downlink_seq(BOX, 5)
    stored = await store.devices.get(BOX)
    assert stored is not None
    assert (stored.last_seq, stored.downlink_seq) == (TOP, TOP)
    async with store.transaction() as uow:
        await uow.devices.reset_counters(BOX, T0 + 10)
        await uow.devices.mark_seen([DeviceSeen(BOX, T0 + 11, "mqtt", 0x8000_0000 << 32, TOP)])
    reset = await store.devices.get(BOX)
    assert reset is not None
    assert reset.last_seq == 0x8000_0000 << 32


async def test_key_events_after_a_position_across_two_to_the_63(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.insert_events(
            [key_event(p, "RED_HANGUP" if i % 2 else "GREEN_CALL") for i, p in enumerate(POSITIONS)]
        )
    async with store.transaction() as uow:
        below_edge = await uow.devices.key_events_after(BOX, 0x7FFF_FFFF << 32 | 0xFFFF_FFFE, 2)
        after_edge = await uow.devices.key_events_after(BOX, 0x8000_0000 << 32, 10)
        after_top = await uow.devices.key_events_after(BOX, TOP, 10)
        from_zero = await uow.devices.key_events_after(BOX, 0, 100)
    assert below_edge == [
        StoredKeyPress(0x8000_0000 << 32, Key.RED_HANGUP, 7, T0 + 1),
        StoredKeyPress(0x8000_0000 << 32 | 1, Key.GREEN_CALL, 7, T0 + 1),
    ]
    assert [p.position for p in after_edge] == POSITIONS[4:]
    assert after_top == []
    assert [p.position for p in from_zero] == POSITIONS[1:]


async def test_a_ticket_keeps_a_press_from_the_highest_session(store: Store) -> None:
    await seed_grid(store)
    press = BoxPress(BOX_ID, TOP, 1_772_400_000)
    async with store.transaction() as uow:
        ticket_id = await uow.tickets.insert(
            replace(ticket(HOUSEHOLD, BOX_ID, presses=1, at=T0), latest_press=press)
        )
    found = await store.tickets.get(ticket_id)
    assert found is not None
    assert found.latest_press == press
