"""Tickets: opening, the one live ticket per household, first acceptance wins, the audit trail."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from alerts.notification import URGENT
from gateway.domain.tickets import BoxPress, EscalationCursor, Ticket, TicketEvent, TicketStatus
from gateway.errors import ConflictError
from gateway.store.ports import Store, UnitOfWork
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import (
    RULES,
    T0,
    contact_ids,
    seed_grid,
    sms,
    ticket,
)

OTHER_HOUSEHOLD = "341504-101-001-0002"
VILLAGE = "341504-101-001"
NEIGHBOURHOOD = "341504-101-001-1-3-1"


async def _open(uow: UnitOfWork, at: float = T0, household: str | None = HOUSEHOLD) -> int:
    return await uow.tickets.insert(ticket(household, BOX_ID, VILLAGE, NEIGHBOURHOOD, 1, at))


async def _stored(uow: UnitOfWork, ticket_id: int) -> Ticket:
    found = await uow.tickets.get(ticket_id)
    assert found is not None
    return found


async def _set_status(uow: UnitOfWork, ticket_id: int, status: TicketStatus, at: float) -> None:
    """Move a ticket as the domain does when it resolves, rates or cancels one."""
    was = await _stored(uow, ticket_id)
    moved = replace(was, status=status)
    if status == TicketStatus.RESOLVED:
        moved = replace(moved, resolved_at=at)
    elif status == TicketStatus.RATED:
        moved = replace(moved, resolved_at=at - 1, rated_at=at, rating="up")
    elif status == TicketStatus.CANCELLED:
        moved = replace(moved, cancelled_at=at)
    assert await uow.tickets.save(moved, was.status)


async def _claim(uow: UnitOfWork, seen: Ticket, contact_id: int, at: float) -> bool:
    """Accept a ticket as seen open, as the domain does: saved only if it is still open."""
    accepted = replace(
        seen, status=TicketStatus.ACCEPTED, owner_contact_id=contact_id, accepted_at=at
    )
    return await uow.tickets.save(accepted, TicketStatus.OPEN)


async def test_an_opened_ticket_reads_back(store: Store) -> None:
    await seed_grid(store)
    written = replace(
        ticket(HOUSEHOLD, BOX_ID, VILLAGE, NEIGHBOURHOOD, 2, T0 + 5),
        id=777,  # ignored: the store gives the id
        cursor=EscalationCursor(1, frozenset({3, 5})),
        bridged_call="CA1",
    )
    async with store.transaction() as uow:
        ticket_id = await uow.tickets.insert(written)
        inside = await uow.tickets.get(ticket_id)
    assert inside == replace(written, id=ticket_id)
    async with store.transaction() as uow:
        again = await uow.tickets.get(ticket_id)
        assert await uow.tickets.get(ticket_id + 1000) is None
    assert again == inside
    assert await store.tickets.get(ticket_id) == inside
    assert await store.tickets.get(ticket_id + 1000) is None
    assert inside is not None
    assert (inside.status, inside.press_count, inside.owner_contact_id) == ("open", 2, None)
    assert (inside.opened_at, inside.last_press_at, inside.last_notified_at) == (T0 + 5,) * 3
    assert inside.rules == RULES


async def test_a_ticket_saves_every_field_it_carries(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
        opened = await _stored(uow, ticket_id)
        moved = replace(
            opened,
            status=TicketStatus.ON_SITE,
            category="hard",
            press_count=3,
            escalation_level=1,
            escalated=True,
            owner_contact_id=ids["李书记"],
            last_press_at=T0 + 20,
            last_notified_at=T0 + 21,
            accepted_at=T0 + 30,
            on_site_at=T0 + 40,
            day_due_at=T0 + 86_400,
            review_flag=True,
            cursor=EscalationCursor(2, frozenset({ids["王副书记"]})),
            bridged_call="CA9",
            owner_since=T0 + 35,
            latest_press=BoxPress(BOX_ID, 7 << 32 | 0xFFFF_FFFE, 1_772_400_000),
        )
        assert await uow.tickets.save(moved, TicketStatus.OPEN)
    assert await store.tickets.get(ticket_id) == moved


async def test_a_ticket_remembers_its_latest_press_or_none(store: Store) -> None:
    """The press's box, its place in the box's order and its clock, an unset clock too."""
    await seed_grid(store)
    unset_clock = BoxPress(BOX_ID, 0x7FFF_FFFF << 32 | 0xFFFF_FFFE, 0)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
        opened = await _stored(uow, ticket_id)
        assert opened.latest_press is None
        pressed = replace(opened, latest_press=unset_clock)
        assert await uow.tickets.save(pressed, TicketStatus.OPEN)
    assert (await _stored_outside(store, ticket_id)).latest_press == unset_clock
    async with store.transaction() as uow:
        written = replace(
            ticket(HOUSEHOLD, BOX_ID, VILLAGE, NEIGHBOURHOOD, 1, T0), latest_press=unset_clock
        )
        inserted = await uow.tickets.insert(replace(written, household_code=OTHER_HOUSEHOLD))
    assert (await _stored_outside(store, inserted)).latest_press == unset_clock


async def _stored_outside(store: Store, ticket_id: int) -> Ticket:
    found = await store.tickets.get(ticket_id)
    assert found is not None
    return found


async def test_ticket_ids_are_distinct(store: Store) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        first = await _open(uow, T0, HOUSEHOLD)
        second = await _open(uow, T0 + 1, OTHER_HOUSEHOLD)
        third = await _open(uow, T0 + 2, None)
    assert len({first, second, third}) == 3
    assert [t.id for t in await store.tickets.all()] == sorted([first, second, third])


@pytest.mark.parametrize(
    ("status", "live"),
    [
        (TicketStatus.OPEN, True),
        (TicketStatus.ACCEPTED, True),
        (TicketStatus.ON_SITE, True),
        (TicketStatus.RESOLVED, False),
        (TicketStatus.RATED, False),
        (TicketStatus.CANCELLED, False),
    ],
)
async def test_live_ticket_is_only_an_open_accepted_or_on_site_one(
    store: Store, status: TicketStatus, live: bool
) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
        await _set_status(uow, ticket_id, status, T0 + 60)
    async with store.transaction() as uow:
        found = await uow.tickets.live(HOUSEHOLD)
        assert await uow.tickets.live(OTHER_HOUSEHOLD) is None
    assert (found.id if found else None) == (ticket_id if live else None)


async def test_a_household_can_open_again_once_its_ticket_is_closed(store: Store) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        first = await _open(uow)
        await _set_status(uow, first, TicketStatus.RESOLVED, T0 + 60)
        second = await _open(uow, T0 + 120)
        live = await uow.tickets.live(HOUSEHOLD)
    assert live is not None
    assert live.id == second != first


async def test_a_new_call_may_open_beside_a_ticket_on_site_and_is_the_live_one(
    store: Store,
) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        first = await _open(uow)
        await _set_status(uow, first, TicketStatus.ON_SITE, T0 + 60)
        second = await _open(uow, T0 + 3 * 3600)
        live = await uow.tickets.live(HOUSEHOLD)
    assert live is not None
    assert live.id == second != first
    assert sorted(t.id for t in await store.tickets.live()) == sorted([first, second])


async def test_events_by_an_operator_and_by_the_signed_link_are_kept(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
        await uow.tickets.add_events(
            [
                TicketEvent(ticket_id, T0 + 1, "note", "cli", None, "checked by phone"),
                TicketEvent(ticket_id, T0 + 2, "on_site", "link", ids["李书记"]),
            ]
        )
    trail = await store.tickets.events(ticket_id)
    assert [(e.channel, e.contact_id) for e in trail] == [("cli", None), ("link", ids["李书记"])]


async def test_a_second_live_ticket_for_a_household_is_a_conflict(store: Store) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        first = await _open(uow)

    async def open_again() -> None:
        async with store.transaction() as uow:
            await _open(uow, T0 + 1)

    with pytest.raises(ConflictError):
        await open_again()
    assert [t.id for t in await store.tickets.live()] == [first]


async def test_the_first_claim_wins(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
        seen = await _stored(uow, ticket_id)
        assert await _claim(uow, seen, ids["李书记"], T0 + 30)
        assert not await _claim(uow, seen, ids["王副书记"], T0 + 31)
    async with store.transaction() as uow:
        stored = await _stored(uow, ticket_id)
    assert (stored.status, stored.owner_contact_id, stored.accepted_at) == (
        "accepted",
        ids["李书记"],
        T0 + 30,
    )


async def test_a_closed_ticket_cannot_be_claimed(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
        seen = await _stored(uow, ticket_id)
        await _set_status(uow, ticket_id, TicketStatus.CANCELLED, T0 + 10)
        assert not await _claim(uow, seen, ids["李书记"], T0 + 30)
        stored = await _stored(uow, ticket_id)
    assert (stored.status, stored.owner_contact_id) == ("cancelled", None)


async def test_two_people_claiming_at_once_one_wins(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
    claimants = [ids["李书记"], ids["王副书记"], ids["赵网格员"], ids["钱邻长"]]

    async def claim(contact_id: int) -> bool:
        seen = await store.tickets.get(ticket_id)  # each reads it open, beside the writer
        assert seen is not None
        async with store.transaction() as uow:
            return await _claim(uow, seen, contact_id, T0 + 30)

    results = await asyncio.gather(*(claim(c) for c in claimants))
    assert sorted(results) == [False, False, False, True]
    stored = await store.tickets.get(ticket_id)
    assert stored is not None
    assert stored.owner_contact_id == claimants[results.index(True)]


async def test_latest_unrated_is_the_newest_resolved_unrated_ticket(store: Store) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        older = await _open(uow, T0)
        await _set_status(uow, older, TicketStatus.RESOLVED, T0 + 100)
        newer = await _open(uow, T0 + 150)
        await _set_status(uow, newer, TicketStatus.RESOLVED, T0 + 200)
        rated = await _open(uow, T0 + 250)
        await _set_status(uow, rated, TicketStatus.RATED, T0 + 300)
        cancelled = await _open(uow, T0 + 230, OTHER_HOUSEHOLD)
        await _set_status(uow, cancelled, TicketStatus.CANCELLED, T0 + 240)
        neighbour = await _open(uow, T0 + 250, OTHER_HOUSEHOLD)
        await _open(uow, T0 + 500)  # live, so not a candidate
        # Whether it is still in the rating window is the domain's rule (thumbs), not the store's.
        latest = await uow.tickets.latest_unrated(HOUSEHOLD)
        assert await uow.tickets.latest_unrated(OTHER_HOUSEHOLD) is None
        await _set_status(uow, neighbour, TicketStatus.RESOLVED, T0 + 400)
        only_neighbours = await uow.tickets.latest_unrated(OTHER_HOUSEHOLD)
        assert await uow.tickets.latest_unrated("341504-101-001-9999") is None
    assert latest is not None
    assert latest.id == newer
    assert only_neighbours is not None
    assert only_neighbours.id == neighbour


async def test_ticket_events_come_in_the_order_written(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
        other = await _open(uow, T0, OTHER_HOUSEHOLD)
        await uow.tickets.add_events(
            [
                TicketEvent(ticket_id, T0, "opened", "box_key", None, "press 1"),
                TicketEvent(ticket_id, T0 + 1, "notified", "system", ids["李书记"], "step 0"),
                TicketEvent(other, T0 + 1, "notified", "system", ids["李书记"], "step 0"),
            ]
        )
    async with store.transaction() as uow:
        await uow.tickets.add_events(
            [
                TicketEvent(ticket_id, T0 + 2, "accepted", "voice_keypress", ids["李书记"]),
                TicketEvent(ticket_id, T0 + 3, "notified", "system", ids["王副书记"], "step 1"),
            ]
        )
    trail = await store.tickets.events(ticket_id)
    notified = [e for e in trail if e.kind == "notified"]
    accepted = [e for e in trail if e.kind == "accepted"]
    assert [e.kind for e in trail] == ["opened", "notified", "accepted", "notified"]
    assert [e.ticket_id for e in await store.tickets.events(other)] == [other]
    assert await store.tickets.events(other + 1000) == []
    assert notified == [
        TicketEvent(ticket_id, T0 + 1, "notified", "system", ids["李书记"], "step 0"),
        TicketEvent(ticket_id, T0 + 3, "notified", "system", ids["王副书记"], "step 1"),
    ]
    assert accepted == [
        TicketEvent(ticket_id, T0 + 2, "accepted", "voice_keypress", ids["李书记"], "")
    ]


async def test_notified_contacts_are_everyone_written_to_about_the_ticket(
    store: Store,
) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        ticket_id = await _open(uow)
        other = await _open(uow, T0, OTHER_HOUSEHOLD)
        assert await uow.outbox.notified_contacts(ticket_id) == []
        await uow.outbox.enqueue(
            [
                sms("13800000001", contact_id=ids["李书记"], ticket_id=ticket_id, priority=URGENT),
                sms(
                    "13800000001", "ticket_reminder", contact_id=ids["李书记"], ticket_id=ticket_id
                ),
                sms("13800000004", contact_id=ids["钱邻长"], ticket_id=ticket_id),
                sms("13912345678", ticket_id=ticket_id),  # the resident: not a contact
                sms("13800000002", contact_id=ids["王副书记"], ticket_id=other),
            ],
            T0,
        )
    async with store.transaction() as uow:
        notified = await uow.outbox.notified_contacts(ticket_id)
    assert sorted(notified) == sorted([ids["李书记"], ids["钱邻长"]])
