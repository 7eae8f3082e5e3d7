"""Reads for people who look at tickets: listing with filters, one ticket's messages, ratings."""

from __future__ import annotations

from dataclasses import replace

from gateway.domain.tickets import Ticket, TicketStatus
from gateway.store.ports import Feedback, SentNotification, Store, TicketMessage, TicketQuery
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import T0, contact_ids, seed_grid, sms, ticket

OTHER_HOUSEHOLD = "341504-101-001-0002"
VILLAGE = "341504-101-001"
DAY = 86_400.0


async def _three_tickets(store: Store) -> tuple[int, int, int]:
    """An old resolved ticket, an old open one, and a recent cancelled one."""
    await seed_grid(store)
    async with store.transaction() as uow:
        old = await uow.tickets.insert(ticket(HOUSEHOLD, BOX_ID, VILLAGE, None, 1, T0))
        stored = await uow.tickets.get(old)
        assert stored is not None
        resolved = replace(stored, status=TicketStatus.RESOLVED, resolved_at=T0 + 60)
        assert await uow.tickets.save(resolved, TicketStatus.OPEN)
        live = await uow.tickets.insert(ticket(OTHER_HOUSEHOLD, None, VILLAGE, None, 1, T0 + 10))
        recent = await uow.tickets.insert(ticket(HOUSEHOLD, BOX_ID, None, None, 2, T0 + 9 * DAY))
        stored = await uow.tickets.get(recent)
        assert stored is not None
        cancelled = replace(stored, status=TicketStatus.CANCELLED, cancelled_at=T0 + 9 * DAY)
        assert await uow.tickets.save(cancelled, TicketStatus.OPEN)
    return old, live, recent


def _ids(found: list[Ticket]) -> list[int]:
    return [t.id for t in found]


async def test_find_filters_and_orders_newest_first(store: Store) -> None:
    old, live, recent = await _three_tickets(store)
    find = store.tickets.find
    assert _ids(await find(TicketQuery())) == [recent, live, old]
    # Recent ones, and live ones however old they are.
    since = await find(TicketQuery(opened_since=T0 + 5 * DAY))
    assert _ids(since) == [recent, live]
    by_status = await find(TicketQuery(statuses=(TicketStatus.RESOLVED, TicketStatus.CANCELLED)))
    assert _ids(by_status) == [recent, old]
    in_village = await find(TicketQuery(village_codes=(VILLAGE,)))
    assert _ids(in_village) == [live, old]
    assert await find(TicketQuery(village_codes=("nowhere",))) == []
    of_household = await find(TicketQuery(household_code=HOUSEHOLD))
    assert _ids(of_household) == [recent, old]
    assert _ids(await find(TicketQuery(limit=1))) == [recent]
    both = await find(TicketQuery(household_code=HOUSEHOLD, statuses=(TicketStatus.RESOLVED,)))
    assert _ids(both) == [old]
    assert both[0].resolved_at == T0 + 60


async def test_messages_of_a_ticket_carry_their_delivery_story(store: Store) -> None:
    old, live, _ = await _three_tickets(store)
    ids = await contact_ids(store)
    secretary = ids["李书记"]
    async with store.transaction() as uow:
        await uow.outbox.enqueue(
            [
                sms("13800000001", "ticket_call", contact_id=secretary, ticket_id=old),
                sms("13800000002", "ticket_call", contact_id=ids["王副书记"], ticket_id=live),
            ],
            T0 + 1,
        )
    first = (await store.outbox.entries())[0].id
    async with store.transaction() as uow:
        await uow.outbox.sent(first, SentNotification("fake", "SM1", "sent", "text"), T0 + 2)
        await uow.outbox.delivery(first, "SM1", "delivered", T0 + 5)
        await uow.outbox.keypress(first, "1", T0 + 6)
    assert await store.outbox.of_ticket(old) == [
        TicketMessage(
            id=first,
            created_at=T0 + 1,
            channel="sms",
            contact_id=secretary,
            recipient="13800000001",
            template="ticket_call",
            status="delivered",
            delivery="delivered",
            keypress="1",
            sent_at=T0 + 2,
            origin_id=None,
            origin_kind=None,
            merged_into=None,
            last_error=None,
            quarantined_at=None,
        )
    ]
    assert [m.template for m in await store.outbox.of_ticket(live)] == ["ticket_call"]
    assert await store.outbox.of_ticket(4242) == []


async def test_feedback_of_a_ticket_and_contacts_by_id(store: Store) -> None:
    old, _, _ = await _three_tickets(store)
    async with store.transaction() as uow:
        await uow.tickets.add_feedback(Feedback(HOUSEHOLD, BOX_ID, T0 + 70, "up", old))
        await uow.tickets.add_feedback(Feedback(HOUSEHOLD, BOX_ID, T0 + 80, "down", None))
    assert await store.tickets.feedback_of(old) == [Feedback(HOUSEHOLD, BOX_ID, T0 + 70, "up", old)]
    ids = await contact_ids(store)
    found = await store.grid.contacts_by_id([ids["钱邻长"], ids["李书记"], 4242, ids["李书记"]])
    assert [c.name for c in found] == ["李书记", "钱邻长"]
    assert found[0].role == "village_secretary"
    assert await store.grid.contacts_by_id([]) == []
