"""Device history, operator alarms, offline notices and savepoints, as every store keeps them."""

from __future__ import annotations

import pytest

from gateway.domain.devices import HistoryEntry, OfflineNotice
from gateway.errors import ConflictError
from gateway.store.ports import Store, UnitOfWork
from tests.gateway.grid import HOUSEHOLD
from tests.gateway.store_contract.contract import T0, device, event, seed_grid

BOX = "00000000000000a1"
OTHER = "00000000000000b2"
NEIGHBOURHOOD = "341504-101-001-1-3-1"


async def test_history_reads_back_per_device_and_as_a_feed_in_order(store: Store) -> None:
    assert await store.devices.history_head() == 0
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.add(device(OTHER))
        first = await uow.devices.add_history(HistoryEntry(BOX, T0, "added", "cli:a"))
        await uow.devices.add_history(
            HistoryEntry(OTHER, T0 + 1, "attached", "cli:b", to_household="H1")
        )
        await uow.devices.add_history(
            HistoryEntry(BOX, T0 + 2, "replaced", "cli:a", from_household="H2", other_device=OTHER)
        )
    head = await store.devices.history_head()
    assert head == first + 2
    box = await store.devices.history(BOX)
    assert [(h.action, h.from_household, h.other_device, h.actor) for h in box] == [
        ("added", None, None, "cli:a"),
        ("replaced", "H2", OTHER, "cli:a"),
    ]
    feed = await store.devices.history_after(first, 10)
    assert [(h.device_id, h.action) for h in feed] == [(OTHER, "attached"), (BOX, "replaced")]
    assert [h.id for h in await store.devices.history_after(first, 1)] == [first + 1]
    assert await store.devices.history_after(head, 10) == []


async def test_household_enabled_and_installed_unit_are_set_in_the_transaction(
    store: Store,
) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        assert await uow.devices.installed_unit(BOX) is None
        await uow.devices.add_history(HistoryEntry(BOX, T0, "added", "cli", unit_code="341504-101"))
        assert await uow.devices.installed_unit(BOX) == "341504-101"
        await uow.devices.set_household(BOX, HOUSEHOLD)
        await uow.devices.add_history(
            HistoryEntry(BOX, T0 + 1, "attached", "cli", to_household=HOUSEHOLD)
        )
        # The household it was attached to places it more exactly than the township.
        assert await uow.devices.installed_unit(BOX) == NEIGHBOURHOOD
        await uow.devices.set_enabled(BOX, False)
        record = await uow.devices.get(BOX)
    assert record is not None
    assert (record.household_code, record.enabled) == (HOUSEHOLD, False)
    assert await store.devices.get(BOX) == record


async def test_last_heard_is_the_newest_event(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        assert await uow.devices.last_heard(BOX) is None
        await uow.devices.insert_events([event(1, BOX, received_at=T0 + 5), event(2, BOX)])
        assert await uow.devices.last_heard(BOX) == T0 + 5


async def test_an_alarm_repeats_on_the_open_one_and_a_cleared_one_starts_afresh(
    store: Store,
) -> None:
    async with store.transaction() as uow:
        opened = await uow.devices.raise_alarm("unassigned_call", BOX, "no household", T0)
        again = await uow.devices.raise_alarm("unassigned_call", BOX, "no household", T0 + 9)
        other = await uow.devices.raise_alarm("unknown_household", BOX, "H9 missing", T0 + 1)
        await uow.devices.alarm_notified(opened.id, T0 + 2)
    assert (opened.count, opened.notified_at) == (1, None)
    assert (again.id, again.count, again.at, again.last_at) == (opened.id, 2, T0, T0 + 9)
    assert other.id != opened.id
    listed = await store.devices.alarms()
    assert [(a.id, a.count, a.notified_at) for a in listed] == [
        (opened.id, 2, T0 + 2),
        (other.id, 1, None),
    ]
    async with store.transaction() as uow:
        cleared = await uow.devices.clear_alarm(opened.id, T0 + 20, "cli:ops")
        assert await uow.devices.clear_alarm(opened.id, T0 + 21, "cli:ops") is None
        fresh = await uow.devices.raise_alarm("unassigned_call", BOX, "no household", T0 + 30)
    assert cleared is not None
    assert (cleared.cleared_at, cleared.cleared_by) == (T0 + 20, "cli:ops")
    assert fresh.id not in (opened.id, other.id)
    assert fresh.count == 1
    assert [a.id for a in await store.devices.alarms()] == [other.id, fresh.id]
    assert len(await store.devices.alarms(cleared=True)) == 3


async def test_an_offline_notice_is_kept_until_taken_once(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        await uow.devices.offline_notice_sent(OfflineNotice(BOX, T0, T0 + 86_400))
    assert await store.devices.offline_notices() == [OfflineNotice(BOX, T0, T0 + 86_400)]
    async with store.transaction() as uow:
        taken = await uow.devices.take_offline_notice(BOX)
        assert await uow.devices.take_offline_notice(BOX) is None
    assert taken == OfflineNotice(BOX, T0, T0 + 86_400)
    assert await store.devices.offline_notices() == []


async def test_a_savepoint_undoes_only_its_own_writes(store: Store) -> None:
    async with store.transaction() as uow:
        await uow.devices.add(device(BOX))
        with pytest.raises(ConflictError):
            await _failing(uow, HistoryEntry("00000000000000ff", T0, "added", "x"))
        with pytest.raises(RuntimeError, match="a bug"):
            await _failing(uow, None)
        async with uow.savepoint():
            await uow.devices.add(device(OTHER))
    assert [d.device_id for d in await store.devices.all()] == sorted([BOX, OTHER])
    box = await store.devices.get(BOX)
    assert box is not None
    assert box.enabled
    assert await store.devices.history(BOX) == []


async def _failing(uow: UnitOfWork, bad: HistoryEntry | None) -> None:
    """Write something, then fail: on a constraint (a row for no device), or by raising."""
    async with uow.savepoint():
        await uow.devices.add_history(HistoryEntry(BOX, T0, "added", "cli"))
        await uow.devices.set_enabled(BOX, False)
        if bad is None:
            raise RuntimeError("a bug")
        await uow.devices.add_history(bad)  # no such device: the foreign key refuses it
