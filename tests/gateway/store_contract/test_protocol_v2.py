"""Protocol v2 device state: stored MACs, key rotation, counter reset, pending configuration."""

from __future__ import annotations

from dataclasses import replace

from firmware_protocol import Indication, IndicationKind, Key, LedPattern
from gateway.domain.devices import DeviceSeen, EventRow
from gateway.store.ports import Store, StoredKeyPress
from tests.gateway.store_contract.contract import T0, device, event

BOX = "00000000000000a1"
OTHER = "00000000000000a2"
NEW_KEY = bytes(range(200, 216))


async def test_stored_macs_are_the_last_eight_bytes_of_each_stored_frame(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        first = replace(event(1 << 32 | 1, BOX), raw=bytes(range(40)))
        second = replace(event(2 << 32 | 1, BOX), raw=bytes(range(50, 90)))
        await uow.devices.insert_events([first, second])
    async with store.transaction() as uow:
        found = await uow.devices.stored_macs(BOX, [1 << 32 | 1, 2 << 32 | 1, 3 << 32 | 1])
        assert found == {1 << 32 | 1: bytes(range(32, 40)), 2 << 32 | 1: bytes(range(82, 90))}
        assert await uow.devices.stored_macs(BOX, list(range(2000))) == {}


async def test_a_rotation_is_pending_until_promoted(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.set_next_key(BOX, NEW_KEY, 1)
    pending = await store.devices.get(BOX)
    assert pending is not None
    assert (pending.next_key, pending.next_key_id, pending.key_version) == (NEW_KEY, 1, 0)
    assert pending.key_for(0) == pending.key
    assert pending.key_for(1) == NEW_KEY
    assert pending.key_for(2) is None
    async with store.transaction() as uow:
        await uow.devices.promote_key(BOX, 7)  # not the pending id: nothing changes
    assert await store.devices.get(BOX) == pending
    async with store.transaction() as uow:
        await uow.devices.promote_key(BOX, 1)
    done = await store.devices.get(BOX)
    assert done is not None
    assert (done.key, done.key_version, done.next_key, done.next_key_id) == (NEW_KEY, 1, None, None)


async def test_reset_counters_forgets_the_order_but_not_the_highest_position(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.insert_events([event(9 << 32 | 100, BOX, received_at=T0)])
        await uow.devices.mark_seen([DeviceSeen(BOX, T0, "mqtt", 9 << 32 | 100, 0)])
    before = await store.devices.current(BOX)
    assert before is not None
    assert (before.last_seq, before.high_seq) == (9 << 32 | 100, 9 << 32 | 100)
    async with store.transaction() as uow:
        await uow.devices.reset_counters(BOX, T0 + 10)
    after = await store.devices.current(BOX)
    assert after is not None
    assert (after.last_seq, after.high_seq, after.counters_reset_at) == (
        None,
        9 << 32 | 100,
        T0 + 10,
    )
    async with store.transaction() as uow:
        await uow.devices.insert_events([event(1 << 32 | 1, BOX, received_at=T0 + 20)])
    later = await store.devices.current(BOX)
    assert later is not None
    assert (later.last_seq, later.high_seq) == (1 << 32 | 1, 9 << 32 | 100)


async def test_pending_config_until_each_part_is_confirmed(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.set_pending_config(BOX, 300, True)
    record = await store.devices.get(BOX)
    assert record is not None
    assert (record.pending_heartbeat_s, record.pending_clock) == (300, True)
    async with store.transaction() as uow:
        await uow.devices.config_done(BOX, heartbeat=True, clock=False)
    record = await store.devices.get(BOX)
    assert record is not None
    assert (record.pending_heartbeat_s, record.pending_clock) == (None, True)
    async with store.transaction() as uow:
        await uow.devices.config_done(BOX, heartbeat=False, clock=True)
    record = await store.devices.get(BOX)
    assert record is not None
    assert (record.pending_heartbeat_s, record.pending_clock) == (None, False)


def _key_event(pos: int, key: str, received_at: float) -> EventRow:
    fields = f'{{"key": "{key}", "press_count": 1, "long_press": false}}'
    return replace(event(pos, BOX, "KeyEvent", received_at), fields=fields)


async def test_key_events_after_a_position_in_the_devices_order_and_bounded(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.add(device(OTHER))
        await uow.devices.insert_events(
            [
                _key_event(3 << 32 | 9, "RED_HANGUP", T0 + 1),  # before the position asked
                _key_event(4 << 32 | 2, "THUMBS_UP", T0 + 2),
                event(4 << 32 | 3, BOX, received_at=T0 + 3),  # a heartbeat: not a key event
                _key_event(4 << 32 | 5, "RED_HANGUP", T0 + 4),
                _key_event(5 << 32 | 1, "GREEN_CALL", T0 + 5),
                replace(_key_event(4 << 32 | 7, "RED_HANGUP", T0), device_id=OTHER),
            ]
        )
    async with store.transaction() as uow:
        found = await uow.devices.key_events_after(BOX, 4 << 32 | 1, 10)
        assert found == [
            StoredKeyPress(4 << 32 | 2, Key.THUMBS_UP, 1000 + (4 << 32 | 2), T0 + 2),
            StoredKeyPress(4 << 32 | 5, Key.RED_HANGUP, 1000 + (4 << 32 | 5), T0 + 4),
            StoredKeyPress(5 << 32 | 1, Key.GREEN_CALL, 1000 + (5 << 32 | 1), T0 + 5),
        ]
        assert await uow.devices.key_events_after(BOX, 4 << 32 | 1, 2) == found[:2]
        assert await uow.devices.key_events_after(BOX, 5 << 32 | 1, 10) == []
        # Written earlier in the same transaction: included.
        await uow.devices.insert_events([_key_event(6 << 32 | 1, "THUMBS_DOWN", T0 + 6)])
        later = await uow.devices.key_events_after(BOX, 5 << 32 | 1, 10)
        assert [(p.position, p.key) for p in later] == [(6 << 32 | 1, Key.THUMBS_DOWN)]
    # After a counter reset, frames received before it are out of the device's order.
    async with store.transaction() as uow:
        await uow.devices.reset_counters(BOX, T0 + 4.5)
        after_reset = await uow.devices.key_events_after(BOX, 0, 10)
        assert [p.position for p in after_reset] == [5 << 32 | 1, 6 << 32 | 1]


async def test_a_refused_indication_is_pending_again_unless_a_later_one_replaced_it(
    store: Store,
) -> None:
    registered = Indication(IndicationKind.CALL_REGISTERED, 7, LedPattern.GREEN_BLINK, 1)
    other = Indication(IndicationKind.CALL_REGISTERED, 8, LedPattern.GREEN_BLINK, 1)
    cancelled = Indication(IndicationKind.CANCELLED, 8, LedPattern.RED_SOLID, 6)
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.indications.add([(BOX, registered), (BOX, other)], T0)
        first, second = (r.id for r in await uow.indications.due(T0, 10, []))
        await uow.indications.delivered([first, second], T0)
        await uow.indications.add([(BOX, cancelled)], T0 + 1)  # replaces ticket 8's call
    async with store.transaction() as uow:
        # Ticket 7's is queued again; ticket 8's was replaced; a pending row is no delivered one.
        assert await uow.indications.resend([first, second, first + 99], T0 + 2) == 1
        due = await uow.indications.due(T0 + 2, 10, [])
    assert [(r.id, r.indication) for r in due] == [(first, registered), (second + 1, cancelled)]
    async with store.transaction() as uow:
        assert await uow.indications.resend([second + 1], T0 + 3) == 0  # still pending


async def test_an_indication_replaced_while_it_was_handed_over_is_marked_delivered(
    store: Store,
) -> None:
    """The sender reads a row, hands it to the link, and marks it after; a ticket change that
    commits in between (the red key pressed right after green) supersedes the row the box
    already heard. The mark says what happened: it was delivered."""
    registered = Indication(IndicationKind.CALL_REGISTERED, 7, LedPattern.GREEN_BLINK, 1)
    cancelled = Indication(IndicationKind.CANCELLED, 7, LedPattern.RED_SOLID, 6)
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.indications.add([(BOX, registered)], T0)
        [handed] = await uow.indications.due(T0, 10, [])
    async with store.transaction() as uow:
        await uow.indications.add([(BOX, cancelled)], T0 + 1)
    async with store.transaction() as uow:
        await uow.indications.delivered([handed.id], T0 + 2)
        [waiting] = await uow.indications.due(T0 + 2, 10, [])
    assert waiting.indication == cancelled  # the newer one still goes out
    rows = await store.indications.all(BOX)
    assert [(r.indication, r.status) for r in rows] == [
        (registered, "delivered"),
        (cancelled, "pending"),
    ]
