"""A box's key presses take effect in the box's own order, whatever order they arrive in.

Against a real broker, the running gateway, the real twilio library and the fake phone
network: the red key is published and acknowledged before the green press that came just
before it on the box (same session, green seq N, red seq N+1). The green press must still
be cancelled, everyone told it was cancelled word for word, and the box must hear it, when
the red came within the cancel window of the press; and not otherwise.
"""

from __future__ import annotations

import asyncio

import pytest

from firmware_protocol import IndicationKind, Key
from tests.api import test_phone_calls as phone_calls
from tests.api.test_phone_calls import CHIEF_PHONE, SECRETARY_PHONE, Line
from tests.gateway.grid import BOX_ID
from tests.gateway.support import sample, wait_for

DAUGHTER_PHONE = "+447700900123"
CANCELLED_ZH = (
    "【必到】张桂兰（桥元村三组12号）取消了呼叫。请回电13912345678确认老人是否平安。工单{ticket}。"
)
CANCELLED_EN = (
    "[Bidao] 张桂兰 (桥元村三组12号) cancelled the call. "
    "Please call back on 13912345678 to confirm they are well. Ticket {ticket}."
)
# The gateway with the fake phone network, as in test_phone_calls.
line = phone_calls.line
notify_overrides = phone_calls.notify_overrides

NOT_SET = -1e12
"""A clock offset that makes the box stamp its frames 0 (clock not set)."""


async def _acked(line: Line, seq: int) -> None:
    await wait_for(lambda: seq not in line.box.pending, what=f"frame {seq} acked")


async def _red_then_green(line: Line, red_after_s: float, red_offset_s: float = 0.0) -> None:
    """Press green, then red `red_after_s` later; deliver the red first, then the green."""
    line.phones.script(SECRETARY_PHONE).digits = ""  # the secretary does not accept
    green = line.box.press(Key.GREEN_CALL)
    green_seq = line.box.next_seq - 1
    await line.clock.advance(red_after_s)
    line.box.clock_offset_s += red_offset_s
    red = line.box.press(Key.RED_HANGUP)
    red_seq = line.box.next_seq - 1
    assert red_seq == green_seq + 1
    await line.fleet.send(BOX_ID, red)
    await _acked(line, red_seq)
    assert await line.gw.store.tickets.all() == []  # nothing to cancel yet
    await line.fleet.send(BOX_ID, green)
    await _acked(line, green_seq)


def _sms(line: Line, number: str) -> list[str]:
    return [r.body for r in line.phones.received(number) if r.kind == "sms"]


def _told(line: Line) -> set[str]:
    """Every number the network sent anything to (the resident's bridged leg excepted)."""
    return {r.to for r in line.phones.records if not r.parent_sid}


async def test_a_red_key_delivered_before_its_green_still_cancels_the_call(
    line: Line,
) -> None:
    await _red_then_green(line, red_after_s=30)
    ticket = await line.ticket()
    assert ticket.status == "cancelled"
    assert [kind for kind, _ in await line.events()] == ["opened", "cancelled"]
    await wait_for(
        lambda: any(
            i.kind == IndicationKind.CANCELLED and i.ticket_ref == ticket.id
            for i in line.box.indications
        ),
        what="the box told the call is cancelled",
    )
    last = [i for i in line.box.indications if i.ticket_ref == ticket.id][-1]
    assert last.kind == IndicationKind.CANCELLED

    zh, en = CANCELLED_ZH.format(ticket=ticket.id), CANCELLED_EN.format(ticket=ticket.id)
    expected = {SECRETARY_PHONE: zh, CHIEF_PHONE: zh, DAUGHTER_PHONE: en}

    def everyone_told() -> bool:
        return all(text in _sms(line, number) for number, text in expected.items())

    await wait_for(everyone_told, timeout=60, what="everyone told the call was cancelled")
    await asyncio.to_thread(line.phones.wait_idle)
    # Everyone the call reached was told it was cancelled, in their language, once.
    assert _told(line) == set(expected)
    for number, text in expected.items():
        assert _sms(line, number).count(text) == 1, number
    assert sample(line.gw, "bidao_tickets_total", event="red_key_out_of_order") == 1
    assert sample(line.gw, "bidao_tickets_total", event="cancelled") == 1


@pytest.mark.parametrize(
    ("red_after_s", "red_offset_s", "clock_set", "cancelled"),
    [
        (61, 0.0, True, False),  # by the box's clock the red came after the 60 s window
        (0, -30.0, True, False),  # stamped before the green: pressed first, renumbered later
        (0, 0.0, False, True),  # clock not set (timestamps 0): both arrived in the window
        (61, 0.0, False, False),  # clock not set, and they arrived 61 s apart
    ],
    ids=["outside-the-window", "stamped-before-the-green", "no-clock", "no-clock-apart"],
)
async def test_a_red_key_delivered_first_cancels_only_within_the_window(
    line: Line, red_after_s: float, red_offset_s: float, clock_set: bool, cancelled: bool
) -> None:
    if not clock_set:
        line.box.clock_offset_s = NOT_SET
        line.phones.script(SECRETARY_PHONE).digits = ""
        green, green_seq = line.box.press(Key.GREEN_CALL), line.box.next_seq - 1
        red, red_seq = line.box.press(Key.RED_HANGUP), line.box.next_seq - 1
        await line.fleet.send(BOX_ID, red)
        await _acked(line, red_seq)
        await line.clock.advance(red_after_s)
        await line.fleet.send(BOX_ID, green)
        await _acked(line, green_seq)
    else:
        await _red_then_green(line, red_after_s, red_offset_s)
    ticket = await line.ticket()
    assert (ticket.status == "cancelled") is cancelled
    if cancelled:
        return
    assert [kind for kind, _ in await line.events()] == ["opened"]
    await wait_for(
        lambda: any(i.ticket_ref == ticket.id for i in line.box.indications),
        what="the box told of its call",
    )
    await asyncio.to_thread(line.phones.wait_idle)
    assert not any(
        "取消了呼叫" in r.body or "cancelled the call" in r.body for r in line.phones.records
    )
    assert all(i.kind != IndicationKind.CANCELLED for i in line.box.indications)
    assert sample(line.gw, "bidao_tickets_total", event="red_key_out_of_order") == 0


@pytest.mark.parametrize("clock_set", [True, False], ids=["box-clock", "no-clock"])
async def test_a_red_key_pressed_before_the_green_but_delivered_after_it_cancels_nothing(
    line: Line, clock_set: bool
) -> None:
    """Red seq N, green seq N+1 a second later; the red arrives after the green, in the window.

    By arrival the red came 1 s after the call opened; in the box's order it came before it.
    The resident's call stands: the ticket stays open and nobody hears it was cancelled.
    """
    if not clock_set:
        line.box.clock_offset_s = NOT_SET
    line.phones.script(SECRETARY_PHONE).digits = ""  # the secretary does not accept
    red, red_seq = line.box.press(Key.RED_HANGUP), line.box.next_seq - 1
    await line.clock.advance(1)
    green, green_seq = line.box.press(Key.GREEN_CALL), line.box.next_seq - 1
    assert green_seq == red_seq + 1
    await line.fleet.send(BOX_ID, green)
    await _acked(line, green_seq)
    await line.clock.advance(1)
    await line.fleet.send(BOX_ID, red)
    await _acked(line, red_seq)

    ticket = await line.ticket()
    assert ticket.status == "open"
    assert await line.events() == [
        ("opened", "presses=1"),
        ("red_key", "pressed before the call"),
    ]
    await wait_for(
        lambda: any(i.ticket_ref == ticket.id for i in line.box.indications),
        what="the box told of its call",
    )
    await wait_for(lambda: SECRETARY_PHONE in _told(line), timeout=60, what="the secretary called")
    await asyncio.to_thread(line.phones.wait_idle)
    assert not any(
        "取消了呼叫" in r.body or "cancelled the call" in r.body for r in line.phones.records
    )
    assert all(i.kind != IndicationKind.CANCELLED for i in line.box.indications)
    assert sample(line.gw, "bidao_tickets_total", event="cancelled") == 0
    assert sample(line.gw, "bidao_tickets_total", event="red_key_out_of_order") == 0
