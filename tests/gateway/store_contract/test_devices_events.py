"""Devices and their events: registration, de-duplication, link state, telemetry, status."""

from __future__ import annotations

import pytest

from gateway.domain.devices import DeviceSeen, Telemetry, Transition
from gateway.errors import ConflictError, RegistryError
from gateway.store.ports import Store
from tests.gateway.store_contract.contract import T0, device, event

BOX = "00000000000000a1"
OTHER = "00000000000000b2"


async def test_a_registered_device_reads_back_as_written(store: Store) -> None:
    written = device(
        BOX,
        kind="water_meter",
        key=bytes(range(100, 116)),
        heartbeat_interval_s=3600,
        key_version=2,
        label="东头水表",
        enabled=False,
    )
    async with store.transaction() as uow:
        await uow.devices.add(written)
        await uow.devices.add(device(OTHER))
    assert await store.devices.get(BOX) == written
    assert {d.device_id: d for d in await store.devices.all()} == {
        BOX: written,
        OTHER: device(OTHER),
    }
    fresh = await store.devices.get(OTHER)
    assert fresh is not None
    assert (fresh.status, fresh.low_battery, fresh.last_seq, fresh.downlink_seq) == (
        "unknown",
        False,
        None,
        0,
    )


async def test_an_unknown_device_is_none(store: Store) -> None:
    assert await store.devices.get(BOX) is None
    assert await store.devices.all() == []


async def test_adding_a_device_twice_is_a_registry_error_and_keeps_the_first(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX, label="first"))

    async def add_again() -> None:
        async with store.transaction() as uow:
            await uow.devices.add(device(BOX, label="second"))

    with pytest.raises(RegistryError):
        await add_again()
    stored = await store.devices.get(BOX)
    assert stored is not None
    assert stored.label == "first"


async def test_a_key_of_the_wrong_length_is_a_registry_error(store: Store) -> None:
    async def add() -> None:
        async with store.transaction() as uow:
            await uow.devices.add(device(BOX, key=bytes(15)))

    with pytest.raises(RegistryError):
        await add()
    assert await store.devices.get(BOX) is None


async def test_stored_seqs_answers_per_device(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.add(device(OTHER))
        await uow.devices.insert_events(
            [event(1, BOX), event(2, BOX), event(5, BOX), event(3, OTHER)]
        )
    async with store.transaction() as uow:
        assert await uow.devices.stored_seqs(BOX, [1, 3, 5, 9]) == {1, 5}
        assert await uow.devices.stored_seqs(OTHER, [1, 3, 5]) == {3}
        assert await uow.devices.stored_seqs(BOX, []) == set()
        assert await uow.devices.stored_seqs("00000000000000c3", [1]) == set()


async def test_stored_seqs_answers_for_a_large_batch(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.insert_events([event(seq, BOX) for seq in range(0, 3000, 3)])
    async with store.transaction() as uow:
        found = await uow.devices.stored_seqs(BOX, list(range(3000)))
    assert found == set(range(0, 3000, 3))


async def test_storing_an_event_twice_is_a_conflict_and_keeps_the_first(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.insert_events([event(1, BOX)])

    async def again() -> None:
        async with store.transaction() as uow:
            await uow.devices.insert_events([event(2, BOX), event(1, BOX)])

    with pytest.raises(ConflictError):
        await again()
    # The whole batch is rolled back: the new event beside the copy is not kept either.
    assert await store.devices.event_seqs() == [(BOX, 1)]


async def test_an_event_of_an_unregistered_device_is_a_conflict(store: Store) -> None:
    async def insert() -> None:
        async with store.transaction() as uow:
            await uow.devices.insert_events([event(1, "00000000000000c3")])

    with pytest.raises(ConflictError):
        await insert()
    assert await store.devices.count_events() == 0


async def test_mark_seen_updates_contact_and_only_moves_sequence_numbers_forward(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.mark_seen([DeviceSeen(BOX, T0 + 10, "mqtt", 7, 4)])
    seen = await store.devices.get(BOX)
    assert seen is not None
    assert (seen.last_seen, seen.last_link, seen.last_seq, seen.downlink_seq) == (
        T0 + 10,
        "mqtt",
        7,
        4,
    )
    async with store.transaction() as uow:
        # A late batch from another link: contact moves on, sequence numbers do not go back.
        await uow.devices.mark_seen([DeviceSeen(BOX, T0 + 20, "serial0", 3, 1)])
    later = await store.devices.get(BOX)
    assert later is not None
    assert (later.last_seen, later.last_link, later.last_seq, later.downlink_seq) == (
        T0 + 20,
        "serial0",
        7,
        4,
    )


async def test_mark_seen_accepts_sequence_number_zero_first(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.mark_seen([DeviceSeen(BOX, T0 + 1, "mqtt", 0, 0)])
    seen = await store.devices.get(BOX)
    assert seen is not None
    assert seen.last_seq == 0


async def test_downlink_seq_never_moves_back(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.set_downlink_seq(BOX, 12)
        await uow.devices.set_downlink_seq(BOX, 9)
    stored = await store.devices.get(BOX)
    assert stored is not None
    assert stored.downlink_seq == 12
    async with store.transaction() as uow:
        await uow.devices.set_downlink_seq(BOX, 13)
    stored = await store.devices.get(BOX)
    assert stored is not None
    assert stored.downlink_seq == 13


async def test_telemetry_is_reflected_on_the_device(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.add(device(OTHER))
        await uow.devices.update_telemetry(
            [
                Telemetry(BOX, "1.4.2", 83, 3710, -71, 86_400, 300),
                Telemetry(OTHER, "1.4.3", None, 3300, -90, 5, 120),
            ]
        )
    box = await store.devices.get(BOX)
    other = await store.devices.get(OTHER)
    assert box is not None
    assert other is not None
    assert (
        box.firmware,
        box.battery_pct,
        box.battery_mv,
        box.rssi_dbm,
        box.uptime_s,
        box.heartbeat_interval_s,
    ) == ("1.4.2", 83, 3710, -71, 86_400, 300)
    assert (other.firmware, other.battery_pct, other.heartbeat_interval_s) == ("1.4.3", None, 120)


async def test_transitions_set_status_flags_and_are_recorded_in_order(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.add(device(OTHER))
        await uow.devices.apply_transitions(
            [Transition(BOX, T0 + 1, "online"), Transition(BOX, T0 + 2, "low_battery", "18%")]
        )
    box = await store.devices.get(BOX)
    assert box is not None
    assert (box.status, box.low_battery) == ("online", True)
    async with store.transaction() as uow:
        await uow.devices.apply_transitions(
            [
                Transition(BOX, T0 + 3, "offline", "silent 180 s"),
                Transition(BOX, T0 + 4, "battery_ok"),
            ]
        )
    box = await store.devices.get(BOX)
    other = await store.devices.get(OTHER)
    assert box is not None
    assert other is not None
    assert (box.status, box.low_battery) == ("offline", False)
    assert (other.status, other.low_battery) == ("unknown", False)
    assert await store.devices.transitions(BOX) == [
        Transition(BOX, T0 + 1, "online"),
        Transition(BOX, T0 + 2, "low_battery", "18%"),
        Transition(BOX, T0 + 3, "offline", "silent 180 s"),
        Transition(BOX, T0 + 4, "battery_ok"),
    ]
    assert await store.devices.transitions(OTHER) == []
    assert len(await store.devices.transitions()) == 4
