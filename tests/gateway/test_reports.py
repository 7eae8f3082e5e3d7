"""The report read model: times in words that are true, day clocks, the county, unplaced calls."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.domain.tickets import Outcome, Ticket, TicketKind, TicketStatus
from gateway.services.reports import UNPLACED, AlarmStats, Reports, TicketStats, within
from gateway.store.ports import Store
from tests.gateway.grid import BOX_ID, HOUSEHOLD, NEIGHBOURHOOD
from tests.gateway.store_contract.contract import T0, seed_grid, sqlite_backend, ticket

VILLAGE = "341504-101-001"
HOUR = 3600.0
OTHER_HOUSEHOLD = "341504-101-001-0002"


def test_within_is_a_time_some_call_took_and_true_of_the_share() -> None:
    assert within([], 0.5) is None
    assert within([5.0], 0.9) == 5.0
    # Interpolation would say 2.5 for half of four; nearest rank says 2: two of four within 2.
    assert within([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert within([float(i) for i in range(1, 11)], 0.9) == 9.0
    assert within([float(i) for i in range(1, 12)], 0.9) == 10.0  # 9 of 11 is not nine in ten
    for share in (0.5, 0.9):
        values = [1.0, 7.0, 2.0, 30.0, 4.0, 4.0, 9.0]
        bound = within(values, share)
        assert bound in values
        assert sum(v <= bound for v in values) >= share * len(values)


def test_calls_never_accepted_count_against_the_share() -> None:
    # 5 calls, 1 cancelled by the resident, 2 accepted (1 and 3 minutes), 2 still waiting.
    stats = TicketStats(requests=5, cancelled=1, accepted=2, accept_s=[60.0, 180.0])
    assert stats.accepted_within(0.5) == 180.0  # 2 of 4 within 3 minutes
    assert stats.accepted_within(0.9) == math.inf  # fewer than nine in ten ever accepted
    assert TicketStats(requests=1, cancelled=1).accepted_within(0.5) is None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    instance = sqlite_backend(tmp_path).make()
    await instance.open()
    try:
        await seed_grid(instance)
        yield instance
    finally:
        await instance.close()


async def _add(
    store: Store,
    draft: Ticket,
    status: TicketStatus | None = None,
    due: float | None = None,
    resolved: float | None = None,
) -> None:
    """Store a ticket; with a status, as accepted by contact 1 and classified urgent."""
    async with store.transaction() as uow:
        ticket_id = await uow.tickets.insert(draft)
        opened = await uow.tickets.get(ticket_id)
        assert opened is not None
        if status is not None:
            done = replace(
                opened,
                status=status,
                accepted_at=opened.opened_at + 60,
                owner_contact_id=1,
                category="urgent",
                day_due_at=due,
                resolved_at=resolved,
            )
            assert await uow.tickets.save(done, TicketStatus.OPEN)


def _placed(at: float, household: str = HOUSEHOLD) -> Ticket:
    return ticket(household, BOX_ID, VILLAGE, NEIGHBOURHOOD, at=at)


async def test_day_clocks_the_county_and_calls_from_boxes_with_no_household(
    store: Store,
) -> None:
    due = T0 + 60 + 2 * HOUR
    resolved, accepted = TicketStatus.RESOLVED, TicketStatus.ACCEPTED
    # Resolved within its 2-hour limit: kept.
    await _add(store, _placed(T0), resolved, due, resolved=due - 1)
    # Resolved after its limit before the clock fired (say the gateway was down): missed.
    await _add(store, _placed(T0), resolved, due, resolved=due + 1)
    # Still open past its limit: missed, though not resolved yet.
    await _add(store, _placed(T0), accepted, due)
    # Still open within its limit (the other household: one live ticket each): not known yet.
    await _add(store, _placed(T0, OTHER_HOUSEHOLD), accepted, due + 10 * HOUR)
    # A box attached to no household.
    await _add(store, ticket(None, None, at=T0))

    reports = Reports(store)
    stats = await reports.statistics(T0, due + HOUR)
    for code in ("341504", "341504-101", VILLAGE, NEIGHBOURHOOD):
        s = stats[code]
        assert (s.requests, s.day_clocked, s.day_on_time) == (4, 3, 1), code
    assert stats[UNPLACED].requests == 1
    assert stats["contact:1"].requests == 4
    colours = await reports.warning_colours(due + HOUR)
    county = colours["341504"]
    # Both live tickets are overdue: one past its limit, the other not arrived in 30 minutes.
    assert (county.level, county.name, county.live, county.overdue) == ("county", "叶集区", 2, 2)
    units, contacts = await reports.grid()
    assert units["341504"].name == "叶集区"
    assert contacts[1].name == "李书记"


async def _alarm(store: Store, kind: TicketKind, outcome: Outcome | None, household: str) -> None:
    """An alarm of the water watch, resolved and labelled `outcome` (None: left unlabelled)."""
    draft = replace(_placed(T0, household), kind=kind, device_id=None, press_count=0)
    async with store.transaction() as uow:
        opened = await uow.tickets.get(await uow.tickets.insert(draft))
        assert opened is not None
        done = replace(opened, status=TicketStatus.RESOLVED, resolved_at=T0 + HOUR, outcome=outcome)
        assert await uow.tickets.save(done, TicketStatus.OPEN)


async def test_alarms_are_counted_apart_from_calls_with_their_labels_per_rule(
    store: Store,
) -> None:
    await _add(store, _placed(T0), TicketStatus.RESOLVED, resolved=T0 + HOUR)  # one call
    for outcome in ("real", "late_rising", None, "late_rising", "away"):
        await _alarm(store, "no_water", outcome, OTHER_HOUSEHOLD)
    await _alarm(store, "leak", "meter_fault", HOUSEHOLD)

    reports = Reports(store)
    calls = await reports.statistics(T0, T0 + 2 * HOUR)
    assert calls[VILLAGE].requests == 1  # an alarm is nobody's call
    alarms = await reports.alarm_statistics(T0, T0 + 2 * HOUR)
    for code in ("341504", "341504-101", VILLAGE):
        no_water, leak = alarms[code]["no_water"], alarms[code]["leak"]
        assert (no_water.alarms, no_water.real, no_water.false, no_water.unlabelled) == (
            5,
            1,
            3,
            1,
        )
        assert no_water.false_rate == 3 / 4  # of the labelled ones: the unlabelled is neither
        assert no_water.cause_counts() == [("late_rising", 2), ("away", 1)]
        assert (leak.alarms, leak.false, leak.false_rate) == (1, 1, 1.0)
    assert AlarmStats().false_rate is None  # nothing labelled: no rate, not 0 %
