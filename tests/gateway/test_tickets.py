"""Stories of "呼叫书记必到" tickets, walked with a real broker, store and simulated box."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from alerts import Notification, render
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import IndicationKind, Key
from gateway.application import offline
from gateway.clock import ManualClock
from gateway.config import TicketSettings
from gateway.domain.tickets import EscalationCursor, Rating, Ticket, TicketStatus, new_ticket
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from gateway.services.tickets import TicketError
from gateway.store.sqlite import SqliteStore, migrations
from tests.gateway.grid import (
    AREA_CHIEF,
    BOX_ID,
    BOX_KEY,
    CHIEF,
    DAUGHTER,
    DEPUTY,
    GRID_WORKER,
    GROUP_LEADER,
    HOUSEHOLD,
    SECRETARY,
    TOWNSHIP,
)
from tests.gateway.support import gateway_settings, load_grid, sample, wait_for

MINUTE = 60.0


@dataclass
class Village:
    gw: GatewayService
    box: SimulatedDevice
    fleet: MqttFleet
    clock: ManualClock

    async def press(self, key: Key, count: int = 1) -> None:
        await self.fleet.send(BOX_ID, self.box.press(key, count))
        await wait_for(lambda: not self.box.pending, what="key press acked")

    async def ticket(self) -> Ticket:
        tickets = await self.gw.store.tickets.all()
        assert tickets, "no ticket"
        return tickets[-1]

    async def sent(self) -> list[Notification]:
        return await self.gw.store.outbox.notifications()

    async def to(self, contact_id: int) -> list[tuple[str, str]]:
        return [(n.channel, n.template) for n in await self.sent() if n.contact_id == contact_id]

    async def events(self) -> list[str]:
        return [e.kind for e in await self.gw.store.tickets.events((await self.ticket()).id)]

    async def indicated(self, kind: IndicationKind) -> None:
        await wait_for(
            lambda: any(i.kind == kind for i in self.box.indications), what=f"box told {kind.name}"
        )

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)
        await self.gw.scheduler.fire_due(self.clock.now())


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    settings = gateway_settings(tmp_path, broker)
    async with GatewayService(settings, clock) as gw:
        await load_grid(gw)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            yield Village(gw, box, fleet, clock)


async def test_call_accept_arrive_resolve_thumbs_up(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    assert (ticket.status, ticket.household_code, ticket.device_id) == (
        "open",
        "341504-101-001-0001",
        BOX_ID,
    )
    await v.indicated(IndicationKind.CALL_REGISTERED)
    assert await v.to(SECRETARY) == [("voice", "ticket_call"), ("sms", "ticket_call")]
    assert await v.to(CHIEF) == [("sms", "ticket_informed")]
    call = next(n for n in await v.sent() if n.contact_id == SECRETARY)
    assert call.params["resident"] == "张桂兰"
    assert call.params["place"] == "桥元村三组12号"  # the imported address
    assert "4321" not in str(call.params)  # the key-safe code
    assert "高血压" not in str(call.params)  # health notes

    result = await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    assert result.won
    await v.indicated(IndicationKind.HELPER_ON_THE_WAY)
    await v.advance(12 * MINUTE)
    await v.gw.tickets.arrive(ticket.id, SECRETARY, "dashboard")
    await v.indicated(IndicationKind.HELPER_ARRIVED)
    await v.gw.tickets.resolve(ticket.id, SECRETARY, "dashboard")
    await v.indicated(IndicationKind.RESOLVED)
    await v.press(Key.THUMBS_UP)

    ticket = await v.ticket()
    assert (ticket.status, ticket.rating, ticket.owner_contact_id) == ("rated", "up", SECRETARY)
    assert ticket.on_site_at == ticket.accepted_at + 12 * MINUTE  # type: ignore[operator]
    assert not ticket.escalated
    trail = await v.gw.store.tickets.events(ticket.id)
    assert [(e.kind, e.channel, e.contact_id) for e in trail] == [
        ("opened", "box_key", None),
        ("accepted", "voice_keypress", SECRETARY),
        ("on_site", "dashboard", SECRETARY),
        ("resolved", "dashboard", SECRETARY),
        ("rated_up", "box_key", None),
    ]
    # The arrive clock was cleared on arrival: nothing escalates later.
    await v.advance(60 * MINUTE)
    assert not (await v.ticket()).escalated


async def test_nobody_accepts_the_next_is_called_and_the_first_again_once(
    village: Village,
) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    await v.advance(5 * MINUTE - 1)
    assert await v.to(DEPUTY) == []
    await v.advance(2)
    assert await v.to(DEPUTY) == [
        ("voice", "ticket_escalated_not_accepted"),
        ("sms", "ticket_escalated_not_accepted"),
    ]
    assert await v.to(SECRETARY) == [
        ("voice", "ticket_call"),
        ("sms", "ticket_call"),
        ("voice", "ticket_still_waiting"),
    ]
    ticket = await v.ticket()
    assert (ticket.status, ticket.responder_step, ticket.escalated) == ("open", 1, True)
    await v.advance(5 * MINUTE)
    assert await v.to(GRID_WORKER) == [
        ("voice", "ticket_escalated_not_accepted"),
        ("sms", "ticket_escalated_not_accepted"),
    ]
    assert len(await v.to(SECRETARY)) == 3  # called again once, not every time
    await v.advance(5 * MINUTE)
    assert await v.to(TOWNSHIP) == [
        ("voice", "ticket_escalated_not_accepted"),
        ("sms", "ticket_escalated_not_accepted"),
    ]
    await v.advance(5 * MINUTE)
    assert "escalation_exhausted" in await v.events()
    # The deputy can still take it; the box hears that help is coming.
    assert (await v.gw.tickets.accept(ticket.id, DEPUTY, "voice_keypress")).won
    await v.indicated(IndicationKind.HELPER_ON_THE_WAY)


async def test_declining_passes_it_on_at_once(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.decline(ticket.id, SECRETARY, "voice_keypress")
    assert await v.to(DEPUTY) == [
        ("voice", "ticket_escalated_declined"),
        ("sms", "ticket_escalated_declined"),
    ]
    assert [e for e in await v.events() if e in ("declined", "escalated")] == [
        "declined",
        "escalated",
    ]


async def test_accepted_but_nobody_arrives_escalates(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    await v.advance(30 * MINUTE - 1)
    assert await v.to(DEPUTY) == []
    await v.advance(2)
    assert await v.to(DEPUTY) == [("voice", "ticket_not_arrived"), ("sms", "ticket_not_arrived")]
    ticket = await v.ticket()
    assert (ticket.status, ticket.escalated) == ("accepted", True)
    not_arrived = next(n for n in await v.sent() if n.template == "ticket_not_arrived")
    assert not_arrived.params["owner"] == "李书记"


async def test_repeated_presses_merge_and_renotify_after_the_gap(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    await v.press(Key.GREEN_CALL, count=2)
    await v.press(Key.GREEN_CALL)
    tickets = await v.gw.store.tickets.all()
    assert len(tickets) == 1
    assert tickets[0].press_count == 4
    assert await v.to(SECRETARY) == [("voice", "ticket_call"), ("sms", "ticket_call")]
    await v.advance(2 * MINUTE)
    await v.press(Key.GREEN_CALL)
    assert await v.to(SECRETARY) == [
        ("voice", "ticket_call"),
        ("sms", "ticket_call"),
        ("voice", "ticket_call_repeat"),
        ("sms", "ticket_call_repeat"),
    ]
    assert (await v.ticket()).press_count == 5
    assert (await v.events()).count("pressed_again") == 3


async def test_red_key_within_the_window_cancels_and_tells_everyone(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    await v.advance(30)
    await v.press(Key.RED_HANGUP)
    ticket = await v.ticket()
    assert ticket.status == "cancelled"
    await v.indicated(IndicationKind.CANCELLED)
    cancelled = ("sms", "ticket_cancelled_by_resident")
    assert cancelled in await v.to(SECRETARY)
    assert cancelled in await v.to(CHIEF)
    # Nobody is chased for a cancelled call.
    await v.advance(10 * MINUTE)
    assert await v.to(DEPUTY) == []
    # The next green press opens a new ticket.
    await v.press(Key.GREEN_CALL)
    assert len(await v.gw.store.tickets.all()) == 2


async def test_red_key_after_the_window_only_hangs_up(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    await v.advance(61)
    await v.press(Key.RED_HANGUP)
    assert (await v.ticket()).status == "open"
    assert (await v.events())[-1] == "red_key"
    assert all(t != "ticket_cancelled_by_resident" for _, t in await v.to(SECRETARY))


async def test_thumbs_with_nothing_to_rate_is_answered_and_counted_not_stored(
    village: Village,
) -> None:
    v = village
    await v.press(Key.THUMBS_UP)
    await v.indicated(IndicationKind.NOTHING_TO_RATE)
    await v.press(Key.THUMBS_DOWN)
    assert await v.gw.store.tickets.feedback() == []
    assert await v.gw.store.tickets.all() == []
    assert sample(v.gw, "bidao_tickets_total", event="nothing_to_rate") == 2


async def test_thumbs_down_flags_a_review(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    await v.gw.tickets.resolve(ticket.id, SECRETARY, "api")
    await v.advance(71 * 3600)
    await v.press(Key.THUMBS_DOWN)
    ticket = await v.ticket()
    assert (ticket.status, ticket.rating, ticket.review_flag) == ("rated", "down", True)
    assert await v.to(TOWNSHIP) == [("sms", "ticket_review")]


async def test_thumbs_after_the_rating_window_is_standalone(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    await v.gw.tickets.resolve(ticket.id, SECRETARY, "api")
    await v.advance(73 * 3600)
    await v.press(Key.THUMBS_UP)
    await v.indicated(IndicationKind.NOTHING_TO_RATE)
    assert (await v.ticket()).status == "resolved"
    assert await v.gw.store.tickets.feedback() == []


async def test_two_accept_at_once_exactly_one_owner(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    await v.advance(5 * MINUTE + 1)  # both secretary and deputy have been called
    ticket = await v.ticket()
    results = await asyncio.gather(
        v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress"),
        v.gw.tickets.accept(ticket.id, DEPUTY, "voice_keypress"),
    )
    assert sorted(r.won for r in results) == [False, True]
    assert {r.owner_contact_id for r in results} == {SECRETARY}
    assert (await v.ticket()).owner_contact_id == SECRETARY
    assert ("sms", "ticket_taken") in await v.to(DEPUTY)
    assert ("sms", "ticket_taken") not in await v.to(SECRETARY)
    assert (await v.events()).count("accepted") == 1
    assert "accept_too_late" in await v.events()


async def test_day_clock_misses_climb_the_chain(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, CHIEF, "dashboard")
    await v.gw.tickets.arrive(ticket.id, CHIEF, "dashboard")
    await v.gw.tickets.classify(ticket.id, "ordinary", CHIEF, "dashboard")
    await v.advance(2 * 86400 - 1)
    assert await v.to(GROUP_LEADER) == []
    await v.advance(2)
    assert await v.to(GROUP_LEADER) == [("sms", "ticket_overdue")]
    await v.advance(2 * 86400)
    assert await v.to(AREA_CHIEF) == [("sms", "ticket_overdue")]
    assert (await v.ticket()).escalation_level == 2
    await v.gw.tickets.resolve(ticket.id, CHIEF, "dashboard")
    await v.advance(10 * 86400)
    assert await v.to(TOWNSHIP) == []


async def test_actions_that_do_not_fit_the_state_are_refused(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    with pytest.raises(TicketError, match="cannot become on_site"):
        await v.gw.tickets.arrive(ticket.id, SECRETARY, "api")
    with pytest.raises(TicketError, match="no ticket"):
        await v.gw.tickets.accept(9999, SECRETARY, "api")
    assert (await v.ticket()).status == "open"


async def test_warning_colours_climb_with_overdue_tickets(village: Village) -> None:
    v = village
    colours = await v.gw.reports.warning_colours(v.clock.now())
    assert colours["341504-101-001"].colour == "green"
    await v.press(Key.GREEN_CALL)
    colours = await v.gw.reports.warning_colours(v.clock.now())
    assert (colours["341504-101-001-1-3-1"].live, colours["341504-101-001"].overdue) == (1, 0)
    assert colours["341504-101-001"].colour == "green"
    await v.advance(5 * MINUTE + 1)  # nobody accepted: overdue
    colours = await v.gw.reports.warning_colours(v.clock.now())
    for code in ("341504-101-001-1-3-1", "341504-101-001-1-3", "341504-101-001", "341504-101"):
        assert colours[code].colour == "yellow", code
    await v.advance(7 * 86400)
    colours = await v.gw.reports.warning_colours(v.clock.now())
    assert colours["341504-101-001"].colour == "red"  # a week old and still unresolved


async def test_statistics_and_chief_cards(village: Village) -> None:
    v = village
    start = v.clock.now()
    # Ticket 1: accepted by the chief in 2 minutes, arrived in 10, resolved, thumbs-up.
    await v.press(Key.GREEN_CALL)
    first = await v.ticket()
    await v.advance(2 * MINUTE)
    await v.gw.tickets.accept(first.id, CHIEF, "voice_keypress")
    await v.advance(10 * MINUTE)
    await v.gw.tickets.arrive(first.id, CHIEF, "dashboard")
    await v.gw.tickets.resolve(first.id, CHIEF, "dashboard")
    await v.press(Key.THUMBS_UP)
    # Ticket 2: accepted late (escalated), arrived late, resolved, never rated.
    await v.press(Key.GREEN_CALL)
    second = await v.ticket()
    await v.advance(6 * MINUTE)
    await v.gw.tickets.accept(second.id, CHIEF, "voice_keypress")
    await v.advance(40 * MINUTE)
    await v.gw.tickets.arrive(second.id, CHIEF, "dashboard")
    await v.gw.tickets.resolve(second.id, CHIEF, "dashboard")
    # Ticket 3: cancelled by the resident.
    await v.press(Key.GREEN_CALL)
    await v.press(Key.RED_HANGUP)

    stats = await v.gw.reports.statistics(start, v.clock.now() + 1)
    village_stats = stats["341504-101-001"]
    assert (village_stats.requests, village_stats.closed, village_stats.cancelled) == (3, 2, 1)
    assert village_stats.closure_rate == 1.0
    assert village_stats.escalated == 1
    assert village_stats.satisfaction == 1.0
    assert village_stats.unrated_share == 0.5
    assert village_stats.accept_on_time_rate == 0.5
    assert village_stats.arrive_on_time_rate == 0.5
    assert village_stats.accept_percentiles()[0] == 4 * MINUTE
    assert stats["341504-101"].requests == 3  # the township sees its villages
    assert stats[f"contact:{CHIEF}"].requests == 2
    cards = await v.gw.reports.chief_cards(start, v.clock.now() + 1)
    assert [(c.name, c.colour, c.on_time) for c in cards] == [("钱邻长", "red", 0.5)]


async def test_boxes_never_pressed_in_90_days(village: Village) -> None:
    v = village
    assert await v.gw.reports.unused_boxes(v.clock.now()) == []  # installed today
    await v.advance(91 * 86400)
    assert await v.gw.reports.unused_boxes(v.clock.now()) == [BOX_ID]
    await v.press(Key.GREEN_CALL)
    assert await v.gw.reports.unused_boxes(v.clock.now()) == []


async def test_contacts_outside_their_hours_are_passed_over(village: Village) -> None:
    v = village
    await v.clock.advance(13 * 3600 + 14 * 60)  # 02:00 in the village
    await v.press(Key.GREEN_CALL)
    await v.advance(5 * MINUTE + 1)
    assert await v.to(DEPUTY) == [
        ("voice", "ticket_escalated_not_accepted"),
        ("sms", "ticket_escalated_not_accepted"),
    ]
    await v.advance(5 * MINUTE)
    # The grid worker works 07:00-21:00: at night the township duty officer is next.
    assert await v.to(GRID_WORKER) == []
    assert await v.to(TOWNSHIP) == [
        ("voice", "ticket_escalated_not_accepted"),
        ("sms", "ticket_escalated_not_accepted"),
    ]
    ticket = await v.gw.store.tickets.events((await v.ticket()).id)
    assert [e.detail for e in ticket if e.kind == "escalated"][-1].startswith("township_duty")


async def test_the_one_who_goes_gets_the_key_safe_code_and_nobody_else(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    access = [n for n in await v.sent() if n.template == "ticket_access"]
    assert [(n.contact_id, n.channel) for n in access] == [(SECRETARY, "sms")]
    assert (access[0].params["key_safe"], access[0].params["health"]) == ("4321", "高血压")
    for n in await v.sent():
        if n.template != "ticket_access":
            assert "4321" not in str(n.params)
            assert "高血压" not in str(n.params)


async def test_a_neighbour_chief_who_accepts_gets_no_secrets(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, CHIEF, "voice_keypress")
    assert [n for n in await v.sent() if n.template == "ticket_access"] == []


async def test_a_deadline_passed_while_down_fires_once_on_restart(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    settings = gateway_settings(tmp_path, broker)
    async with GatewayService(settings, clock) as gw:
        await load_grid(gw)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            await fleet.send(BOX_ID, box.press(Key.GREEN_CALL))
            await wait_for(lambda: not box.pending, what="press acked")
    await clock.advance(6 * MINUTE)  # the accept clock ran out while the gateway was down
    async with GatewayService(settings, clock) as gw:
        await wait_for(
            lambda: has_escalated(gw), what="the missed deadline fires after the restart"
        )
        await gw.scheduler.fire_due(clock.now())  # and again: nothing more happens
        to_deputy = [
            n.template for n in await gw.store.outbox.notifications() if n.contact_id == DEPUTY
        ]
        events = [e.kind for e in await gw.store.tickets.events(1)]
    assert to_deputy == ["ticket_escalated_not_accepted"] * 2  # one call, one SMS
    assert events.count("escalated") == 1


async def has_escalated(gw: GatewayService) -> bool:
    return any(e.kind == "escalated" for e in await gw.store.tickets.events(1))


async def test_statistics_of_a_seeded_history_match_the_hand_computed_figures(
    tmp_path: Path, clock: ManualClock
) -> None:
    # Twelve requests in one village. Minutes to accept and to arrive (None: never):
    history: list[tuple[str, float | None, float | None, Rating | None]] = [
        ("rated", 1, 10, "up"),
        ("rated", 2, 15, "up"),
        ("rated", 3, 20, "up"),
        ("rated", 4, 25, "down"),
        ("rated", 5, 30, "up"),
        ("rated", 6, 35, "up"),
        ("resolved", 7, 40, None),
        ("resolved", 8, 50, None),
        ("cancelled", None, None, None),
        ("cancelled", None, None, None),
        ("accepted", 9, None, None),  # still live: one per household
        ("accepted", 20, None, None),
    ]
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await load_grid(gw)
        start = clock.now()
        rules = gw.settings.tickets.rules_for("341504-101-001")
        async with gw.store.transaction() as uow:
            for n, (status, accept, arrive, rating) in enumerate(history):
                opened = start + n * 3600
                accepted = None if accept is None else opened + accept * MINUTE
                on_site = None if arrive is None or accepted is None else accepted + arrive * MINUTE
                draft = new_ticket(
                    f"341504-101-001-000{1 + n % 2}",
                    None,
                    "341504-101-001",
                    "341504-101-001-1-3-1",
                    1,
                    rules,
                    opened,
                )
                await uow.tickets.insert(
                    replace(
                        draft,
                        status=TicketStatus(status),
                        owner_contact_id=None if accepted is None else CHIEF,
                        accepted_at=accepted,
                        on_site_at=on_site,
                        resolved_at=on_site,
                        rating=rating,
                    )
                )
        stats = (await gw.reports.statistics(start, start + 86400))["341504-101-001"]
    assert (stats.requests, stats.cancelled, stats.closed) == (12, 2, 8)
    assert stats.closure_rate == 8 / 10  # cancelled requests are not counted against it
    assert stats.satisfaction == 5 / 6
    assert stats.unrated_share == 2 / 8
    assert stats.accept_on_time_rate == 5 / 10  # within 5 minutes: the first five
    assert stats.arrive_on_time_rate == 5 / 8  # within 30 minutes
    # Accept: 1..9 and 20 minutes. Median (5 + 6) / 2; p90 at rank 0.9 x 9 = 8.1,
    # between 9 and 20 minutes: 9 + 0.1 x 11 = 10.1.
    assert stats.accept_percentiles() == pytest.approx((5.5 * MINUTE, 10.1 * MINUTE))
    # Arrive: 10, 15, ... 35, 40, 50. Median (25 + 30) / 2; p90 at 0.9 x 7 = 6.3: 40 + 0.3 x 10.
    assert stats.arrive_percentiles() == pytest.approx((27.5 * MINUTE, 43 * MINUTE))


async def test_a_settings_change_leaves_live_tickets_on_their_own_rules(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    settings = gateway_settings(tmp_path, broker)
    async with GatewayService(settings, clock) as gw:
        await load_grid(gw)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            await fleet.send(BOX_ID, box.press(Key.GREEN_CALL))
            await wait_for(lambda: not box.pending, what="press acked")
    # An administrator changes the chain and the accept clock, and restarts the gateway.
    changed = {"default": {"responder_chain": ["township_duty"], "accept_within_s": 1800}}
    settings = gateway_settings(tmp_path, broker, tickets=changed)
    async with GatewayService(settings, clock) as gw:
        await clock.advance(5 * MINUTE + 1)
        await gw.scheduler.fire_due(clock.now())
        to_deputy = [
            n.template for n in await gw.store.outbox.notifications() if n.contact_id == DEPUTY
        ]
        to_township = [n for n in await gw.store.outbox.notifications() if n.contact_id == TOWNSHIP]
        ticket = await gw.store.tickets.get(1)
    assert to_deputy == ["ticket_escalated_not_accepted"] * 2  # the chain it opened under
    assert to_township == []
    assert ticket is not None
    assert ticket.rules.accept_within_s == 5 * MINUTE
    assert ticket.rules.responder_chain[:2] == ("village_secretary", "deputy_secretary")


async def test_rules_and_cursor_survive_the_store(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "t.db")
    await store.open()
    try:
        rules = replace(
            TicketSettings().rules_for(None),
            responder_chain=("grid_worker", "township_duty"),
            day_clock_s={"urgent": 60.0, "ordinary": 120.0, "hard": 180.0, "complex": 240.0},
        )
        draft = new_ticket(None, None, None, None, 2, rules, 1000.0)
        async with store.transaction() as uow:
            ticket = replace(draft, id=await uow.tickets.insert(draft))
            moved = replace(
                ticket,
                cursor=EscalationCursor(1, frozenset({5, 3})),
                status=TicketStatus.ACCEPTED,
                owner_contact_id=None,
                bridged_call="CA1",
            )
            assert await uow.tickets.save(moved, TicketStatus.OPEN)
            # Saved over a status that is no longer stored: refused, nothing written.
            assert not await uow.tickets.save(replace(moved, press_count=9), TicketStatus.OPEN)
        assert await store.tickets.get(ticket.id) == moved
    finally:
        await store.close()


async def test_an_older_database_keeps_each_open_tickets_unanswered_step(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for version, name, sql in migrations():
            if version < 7:
                conn.executescript(sql)
                digest = hashlib.sha256(sql.encode()).hexdigest()
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?, 'then')",
                    (version, name, digest),
                )
        conn.execute(
            "INSERT INTO tickets (id, status, responder_step, opened_at, last_press_at,"
            " last_notified_at) VALUES (1, 'open', 1, 0, 0, 0), (2, 'accepted', 1, 0, 0, 0)"
        )
        # Who let their call ring out, as the audit trail recorded it before the cursor.
        conn.executemany(
            "INSERT INTO ticket_events (ticket_id, at, kind, contact_id, channel, detail)"
            " VALUES (?, 0, 'no_answer', ?, 'system', ?)",
            [
                (1, 1, "step 0"),
                (1, 2, "step 1"),
                (1, 9, "step 1"),
                (1, 9, "step 1"),
                (2, 2, "step 1"),
            ],
        )
    store = SqliteStore(db)
    await store.open()
    try:
        live, closed = await store.tickets.all()
    finally:
        await store.close()
    assert live.cursor == EscalationCursor(1, frozenset({2, 9}))
    assert closed.cursor == EscalationCursor(1, frozenset())
    # Tickets opened before the rules were kept on them take the shipped defaults.
    assert live.rules == TicketSettings().rules_for(None)


async def words(v: Village, contact_id: int) -> list[str]:
    """What a contact was sent, as they read or hear it, in order."""
    return [
        f"{n.channel}: {render(n.template, n.language, n.params)}"
        for n in await v.sent()
        if n.contact_id == contact_id
    ]


async def test_a_press_48_minutes_after_acceptance_re_alerts_the_owner_with_the_truth(
    village: Village,
) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.advance(2 * MINUTE)
    assert (await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")).won
    before = len(await v.sent())
    await v.clock.advance(48 * MINUTE)  # the arrive clock (30 min) has run out meanwhile
    await v.gw.scheduler.fire_due(v.clock.now())
    await v.press(Key.GREEN_CALL)
    assert len(await v.gw.store.tickets.all()) == 1  # merged: nobody has reached her yet
    said = await words(v, SECRETARY)
    assert said[-2:] == [
        (
            "voice: 【必到】张桂兰（桥元村三组12号，电话13912345678）在您接单48分钟后又按了呼叫键，"
            "仍在等您，请尽快前往。工单1。"
        ),
        (
            "sms: 【必到】张桂兰（桥元村三组12号，电话13912345678）在您接单48分钟后又按了呼叫键，"
            "仍在等您，请尽快前往。工单1。"
        ),
    ]
    # The deputy, called because the secretary had not arrived, is offered to take it over.
    assert await words(v, DEPUTY) == [
        f"{channel}: 【必到】张桂兰（桥元村三组12号，电话13912345678）32分钟前按了呼叫键，"
        "李书记（电话13800000001）30分钟前接单，至今未到达。如您能接手，请在来电中按1，"
        "工单将转给您。工单1。"
        for channel in ("voice", "sms")
    ]
    for n in (await v.sent())[before:]:
        assert "无需前往" not in render(n.template, n.language, n.params)
    # Pressing 1 in that call hands it to the deputy, whose arrive clock starts afresh.
    await v.gw.tickets.reassign(ticket.id, DEPUTY, DEPUTY, "voice_keypress")
    ticket = await v.ticket()
    assert (ticket.owner_contact_id, ticket.owner_since) == (DEPUTY, v.clock.now())
    assert v.gw.links is not None  # the page is served: the SMS carries the deputy's own link
    link = v.gw.links.url(ticket.id, DEPUTY, v.clock.now())
    assert (await words(v, DEPUTY))[-2] == (
        "sms: 【必到】您已接手工单1（原由李书记接单）：张桂兰，桥元村三组12号，电话13912345678。"
        f"到达后请在老人的呼叫盒上长按绿键，记录您已到达；到达、办结或转交也可在此报告：{link}"
    )
    assert (await words(v, SECRETARY))[-1] == (
        "sms: 【必到】工单1已转交给王副书记（电话13800000002），现由其负责。"
    )
    await v.advance(30 * MINUTE - 1)
    assert await v.to(GRID_WORKER) == []
    await v.advance(2)  # the deputy's own 30 minutes: the next step hears of it
    assert await v.to(GRID_WORKER) == [
        ("voice", "ticket_not_arrived"),
        ("sms", "ticket_not_arrived"),
    ]


async def test_a_long_green_press_while_accepted_is_the_helpers_arrival(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    await v.advance(12 * MINUTE)
    await v.fleet.send(BOX_ID, v.box.press(Key.GREEN_CALL, long_press=True))
    await wait_for(lambda: not v.box.pending, what="long press acked")
    await v.indicated(IndicationKind.HELPER_ARRIVED)
    ticket = await v.ticket()
    assert (ticket.status, ticket.on_site_at) == ("on_site", ticket.accepted_at + 12 * MINUTE)  # type: ignore[operator]
    trail = await v.gw.store.tickets.events(ticket.id)
    assert (trail[-1].kind, trail[-1].channel, trail[-1].contact_id) == (
        "on_site",
        "box_key",
        SECRETARY,
    )
    assert len(await v.gw.store.tickets.all()) == 1


async def test_a_long_press_with_nothing_accepted_is_a_call(village: Village) -> None:
    v = village
    await v.fleet.send(BOX_ID, v.box.press(Key.GREEN_CALL, long_press=True))
    await wait_for(lambda: not v.box.pending, what="long press acked")
    assert (await v.ticket()).status == "open"
    assert await v.to(SECRETARY) == [("voice", "ticket_call"), ("sms", "ticket_call")]


async def test_a_press_long_after_the_helper_arrived_is_a_new_call(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    first = await v.ticket()
    await v.gw.tickets.accept(first.id, SECRETARY, "voice_keypress")
    await v.gw.tickets.arrive(first.id, SECRETARY, "link")
    await v.advance(30 * MINUTE)
    await v.press(Key.GREEN_CALL)  # she is still with him: he hears of it
    assert (await words(v, SECRETARY))[-1] == (
        "sms: 【必到】张桂兰（桥元村三组12号，电话13912345678）在您到达30分钟后又按了呼叫键，"
        "请回去看看或回电。工单1。"
    )
    await v.advance(3 * 3600)
    await v.press(Key.GREEN_CALL)
    tickets = await v.gw.store.tickets.all()
    assert [(t.id, t.status) for t in tickets] == [(1, "on_site"), (2, "open")]
    assert (await words(v, SECRETARY))[-1].startswith("sms: 【必到】张桂兰（桥元村三组12号")
    assert (await words(v, SECRETARY))[-1].endswith("按下了呼叫键，请尽快联系或上门。工单2。")


async def test_resolved_asks_for_a_rating_and_thumbs_rate_that_ticket(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    await v.gw.tickets.resolve(ticket.id, SECRETARY, "link", "ordinary", "换了灯泡")
    await v.indicated(IndicationKind.RESOLVED)
    await v.press(Key.THUMBS_UP)
    ticket = await v.ticket()
    assert (ticket.status, ticket.rating, ticket.category) == ("rated", "up", "ordinary")
    assert [(f.rating, f.ticket_id) for f in await v.gw.store.tickets.feedback()] == [
        ("up", ticket.id)
    ]
    trail = [(e.kind, e.detail) for e in await v.gw.store.tickets.events(ticket.id)]
    assert trail[-4:] == [
        ("classified", "ordinary"),
        ("note", "换了灯泡"),
        ("resolved", ""),
        ("rated_up", ""),
    ]
    await v.press(Key.THUMBS_DOWN)  # rated already: nothing more to rate
    await wait_for(
        lambda: sum(i.kind == IndicationKind.NOTHING_TO_RATE for i in v.box.indications) == 1,
        what="nothing to rate",
    )
    assert (await v.ticket()).rating == "up"


async def test_the_family_hears_the_call_who_accepted_arrival_and_resolution(
    village: Village,
) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    await v.gw.tickets.arrive(ticket.id, SECRETARY, "box_key")
    await v.gw.tickets.resolve(ticket.id, SECRETARY, "link")
    assert await words(v, DAUGHTER) == [
        (
            "sms: [Bidao] 张桂兰 just pressed the call key at home (桥元村三组12号); the village "
            "responders are being called. Ticket 1."
        ),
        (
            "sms: [Bidao] 李书记 (phone 13800000001) has taken 张桂兰's call and is on the way to "
            "桥元村三组12号. Ticket 1."
        ),
        "sms: [Bidao] 李书记 has arrived at 张桂兰's home (桥元村三组12号). Ticket 1.",
        "sms: [Bidao] 张桂兰's call has been resolved (by 李书记). Ticket 1.",
    ]
    for said in await words(v, DAUGHTER):
        assert "4321" not in said
        assert "高血压" not in said


async def test_a_family_member_who_chose_only_resolution_hears_only_that(
    village: Village,
) -> None:
    v = village
    header = "name,role,unit_code,household_code,phone,notify\n"
    # "health" is not something one can choose to be told: the file is refused, on that cell.
    bad = header + f"张三伟,family,,{HOUSEHOLD},13700000003,arrived;health\n"
    refused = await v.gw.import_csv("contacts", bad)
    assert [(e.column, e.line) for e in refused.errors] == [("notify", 2)]
    assert "health" in refused.errors[0].message
    assert all(c.name != "张三伟" for c in await v.gw.store.grid.contacts())
    contacts = (
        header
        + f"张大伟,family,,{HOUSEHOLD},13700000001,resolved\n"
        + f"张二伟,family,,{HOUSEHOLD},13700000002,none\n"
    )
    result = await v.gw.import_csv("contacts", contacts)
    assert (result.rejected, result.errors) == (0, ())
    son, quiet = (c.id for c in await v.gw.store.grid.contacts() if c.name in ("张大伟", "张二伟"))
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    await v.gw.tickets.resolve(ticket.id, SECRETARY, "cli")
    assert await words(v, son) == ["sms: 【必到】张桂兰的呼叫已办结（李书记处理）。工单1。"]
    assert await words(v, quiet) == []


async def test_operator_actions_from_another_process_reach_the_running_gateway(
    village: Village,
) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    ticket = await v.ticket()
    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    async with offline(v.gw.settings, v.clock) as app:
        await app.note_ticket(ticket.id, None, "cli", "电话联系过，老人说腿疼")
        await app.reassign_ticket(ticket.id, DEPUTY, None, "cli")
        await app.arrive_ticket(ticket.id, None, "cli")
        with pytest.raises(TicketError, match="cannot become on_site"):
            await app.arrive_ticket(ticket.id, None, "cli")
        with pytest.raises(TicketError, match="the note is empty"):
            await app.note_ticket(ticket.id, None, "cli", "  ")
    # Nothing woke the running gateway: its indication sender finds the row by polling.
    await v.clock.advance(v.gw.settings.indications.poll_s)
    await v.indicated(IndicationKind.HELPER_ARRIVED)
    trail = [(e.kind, e.channel, e.contact_id) for e in await v.gw.store.tickets.events(ticket.id)]
    assert trail[-3:] == [
        ("note", "cli", None),
        ("reassigned", "cli", None),
        ("on_site", "cli", None),
    ]
    assert (await v.ticket()).owner_contact_id == DEPUTY
    assert ("voice", "ticket_reassigned_to_you") in await v.to(DEPUTY)
