"""The responder's page for an alarm of the water watch: resolving it says what it was.

Over real HTTP with the signed link, as tests/api/test_responder_page.py (whose gateway and
village this uses). The alarms are raised by the ticket service as the water watch raises
them (how the watch decides to is tests/api/test_water_watch.py's story).
"""

from __future__ import annotations

import re

import pytest

from gateway.application import for_service
from gateway.domain.tickets import Ticket, TicketKind, TicketStatus
from tests.api.test_responder_page import Page
from tests.api.test_responder_page import contacts_csv as contacts_csv  # noqa: PLC0414 - fixture
from tests.api.test_responder_page import households_csv as households_csv  # noqa: PLC0414
from tests.api.test_responder_page import page as page  # noqa: PLC0414
from tests.gateway.grid import GRID_WORKER, HOUSEHOLD

pytestmark = pytest.mark.timeout(120)  # hang guard only

FACTS = {"since": "06:30", "now": "14:40", "hours": "8.2"}


async def raise_alarm(p: Page, kind: TicketKind) -> Ticket:
    """The watch raises an alarm of `kind` for 张桂兰's home; the community worker takes it."""
    async with p.gw.store.transaction() as uow:
        after = await p.gw.tickets.open_alarm(uow, HOUSEHOLD, kind, dict(FACTS), p.clock.now())
    assert after is not None
    after()
    ticket = next(t for t in await p.gw.store.tickets.all() if t.kind == kind)
    await for_service(p.gw).accept_ticket(ticket.id, GRID_WORKER, "voice_keypress")
    return await p.ticket(ticket.id)


def radios(body: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([a-z_]+)"', body)


async def test_the_resolve_form_of_an_alarm_asks_what_it_was(page: Page) -> None:
    p = page
    alarm = await raise_alarm(p, "no_water")
    token = p.link(alarm.id, GRID_WORKER)
    body = (await p.http.get(f"/r/{token}")).text
    assert "无用水报警（长时间没有用水）" in body
    assert "报警时间" in body
    assert "呼叫时间" not in body
    assert "这次报警是怎么回事？" in body
    assert radios(body, "outcome") == [
        "real",
        "late_rising",
        "away",
        "hospital",
        "meter_fault",
        "other",
    ]
    assert radios(body, "category") == []  # an alarm has no kind of matter to choose

    # Resolved without saying what it was: refused, and counted, and nothing changes.
    before = p.refused("bad_form")
    refused = await p.post(token, {"action": "resolve", "note": "人没事"})
    assert refused.status_code == 400
    assert "请选择这次报警是怎么回事。" in refused.text
    assert p.refused("bad_form") == before + 1
    assert (await p.ticket(alarm.id)).status == TicketStatus.ACCEPTED

    done = await p.post(token, {"action": "resolve", "outcome": "late_rising", "note": "起得晚"})
    assert done.status_code == 303
    resolved = await p.ticket(alarm.id)
    assert (resolved.status, resolved.outcome) == (TicketStatus.RESOLVED, "late_rising")
    shown = (await p.http.get(done.headers["location"])).text
    assert "已记录解决" in shown
    assert "误报：晚起" in shown
    assert "等待老人评价" not in shown  # nobody is asked to rate an alarm
    # The one who resolved it may still correct what it was.
    assert radios(shown, "outcome")[0] == "real"


async def test_an_alarm_cleared_by_the_watch_is_labelled_on_the_page_afterwards(
    page: Page,
) -> None:
    p = page
    leak = await raise_alarm(p, "leak")
    token = p.link(leak.id, GRID_WORKER)
    # A leak is never late rising: its form offers only what a leak can be.
    body = (await p.http.get(f"/r/{token}")).text
    assert radios(body, "outcome") == ["real", "meter_fault", "other"]
    bad = await p.post(token, {"action": "resolve", "outcome": "late_rising"})
    assert bad.status_code == 400
    assert "请选择这次报警是怎么回事。" in bad.text

    # The water stops before he gets there: the all-clear resolves it, unlabelled.
    async with p.gw.store.transaction() as uow:
        after = await p.gw.tickets.all_clear(
            uow, HOUSEHOLD, "leak", {"now": "11:30"}, p.clock.now()
        )
    assert after is not None
    after()
    assert (await p.ticket(leak.id)).status == TicketStatus.RESOLVED
    body = (await p.http.get(f"/r/{token}")).text
    assert "报警已解除。请选择这次报警是怎么回事，用于统计误报。" in body
    done = await p.post(token, {"action": "label", "outcome": "meter_fault"})
    assert done.status_code == 303
    assert (await p.ticket(leak.id)).outcome == "meter_fault"
    shown = (await p.http.get(done.headers["location"])).text
    assert "已记录：误报：水表故障。" in shown


async def test_a_call_keeps_its_form_and_is_never_labelled(page: Page) -> None:
    p = page
    call = await p.call_and_accept()
    token = p.link(call.id, call.owner_contact_id or 0)
    body = (await p.http.get(f"/r/{token}")).text
    assert radios(body, "category") == ["urgent", "ordinary", "hard", "complex"]
    assert radios(body, "outcome") == []
    assert "呼叫时间" in body
    refused = await p.post(token, {"action": "label", "outcome": "real"})
    assert refused.status_code == 400
    assert "这是呼叫，不是报警，不用选择真实或误报。" in refused.text
    assert (await p.ticket(call.id)).outcome is None
