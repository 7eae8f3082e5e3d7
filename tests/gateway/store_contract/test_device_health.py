"""Device health spells, health flags and offline spells, as every store keeps them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.domain.devices import HealthAlarm, Transition
from gateway.errors import ConflictError
from gateway.store.ports import Store
from tests.gateway.grid import HOUSEHOLD
from tests.gateway.store_contract.contract import T0, device, seed_grid

BOX = "00000000000000a1"
METER = "00000000000000c1"


async def test_one_open_spell_per_device_and_condition_from_pending_to_cleared(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        spell = await uow.devices.save_health_alarm(HealthAlarm(BOX, "offline", T0))
        assert spell.id is not None
        assert spell.state == "pending"
        await uow.devices.save_health_alarm(HealthAlarm(BOX, "tamper", T0 + 5))
        with pytest.raises(ConflictError):
            async with uow.savepoint():
                await uow.devices.save_health_alarm(HealthAlarm(BOX, "offline", T0 + 9))
        told = replace(spell, told_at=T0 + 3600, told=(9, 8))
        await uow.devices.save_health_alarm(told)
        assert await uow.devices.health_alarm(BOX, "offline") == told
        assert await uow.devices.health_alarm(BOX, "low_battery") is None
    async with store.transaction() as uow:
        await uow.devices.save_health_alarm(replace(told, ok_since=T0 + 4000, cleared_at=T0 + 4900))
        assert await uow.devices.health_alarm(BOX, "offline") is None
        again = await uow.devices.save_health_alarm(HealthAlarm(BOX, "offline", T0 + 5000))
    assert [(a.kind, a.since) for a in await store.devices.health_alarms()] == [
        ("tamper", T0 + 5),
        ("offline", T0 + 5000),
    ]
    every = await store.devices.health_alarms(cleared=True)
    assert [(a.kind, a.state, a.told) for a in every] == [
        ("offline", "cleared", (9, 8)),
        ("tamper", "pending", ()),
        ("offline", "pending", ()),
    ]
    assert again.id is not None


async def test_health_transitions_set_the_flags_and_offline_spells_pair_the_status(
    store: Store,
) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        await uow.devices.add(device(METER, kind="water_meter"))
        await uow.devices.apply_transitions(
            [
                Transition(METER, T0, "tamper"),
                Transition(METER, T0, "power_loss"),
                Transition(METER, T0 + 1, "power_ok"),
            ]
        )
        meter = await uow.devices.get(METER)
        assert meter is not None
        assert (meter.tamper, meter.power_loss, meter.low_battery) == (True, False, False)
        assert await uow.grid.lives_alone(HOUSEHOLD)
        assert not await uow.grid.lives_alone("no-such-household")
        box = "b1da000000000001"  # the imported box of HOUSEHOLD
        await uow.devices.apply_transitions(
            [
                Transition(box, T0, "online"),
                Transition(box, T0 + 100, "offline"),
                Transition(box, T0 + 200, "online"),
                Transition(box, T0 + 300, "offline"),
                Transition(METER, T0 + 100, "offline"),  # meters are not in the promise
            ]
        )
    spells = await store.devices.offline_spells(T0, T0 + 1000)
    assert [(s.device_id, s.household_code, s.began, s.ended) for s in spells] == [
        (box, HOUSEHOLD, T0 + 100, T0 + 200),
        (box, HOUSEHOLD, T0 + 300, None),
    ]
    assert [s.began for s in await store.devices.offline_spells(T0 + 250, T0 + 1000)] == [T0 + 300]
