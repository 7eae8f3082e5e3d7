"""The responder's page over real HTTP: the signed link, the actions, the refusals."""

from __future__ import annotations

import html
import io
import re
import string
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from alerts.providers.console import ConsoleProvider
from api.app import http_component
from api.pages import en, zh_cn
from api.responder_page import NOTE_MAX
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import IndicationKind, Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.domain.tickets import Ticket
from gateway.errors import StartupError
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from gateway.services.links import responder_links
from tests.gateway.grid import (
    BOX_ID,
    BOX_KEY,
    CONTACTS_CSV,
    DAUGHTER,
    DEPUTY,
    HOUSEHOLDS_CSV,
    SECRETARY,
    UNITS_CSV,
)
from tests.gateway.support import gateway_settings, sample, wait_for

TTL_S = 3600.0
ZONE = ZoneInfo("Asia/Shanghai")
# Markup that the import allows (plain text within the 20-character cap for names).
HOSTILE_RESIDENT = "<script>a()</script>"
HOSTILE_HELPER = '"><img onerror=a()>'


@dataclass
class Page:
    gw: GatewayService
    box: SimulatedDevice
    fleet: MqttFleet
    clock: ManualClock
    http: httpx.AsyncClient
    origin: str

    async def call_and_accept(self) -> Ticket:
        """The resident presses green; the secretary accepts (as after pressing 1)."""
        await self.fleet.send(BOX_ID, self.box.press(Key.GREEN_CALL))
        await wait_for(lambda: not self.box.pending, what="press acked")
        ticket = (await self.gw.store.tickets.all())[-1]
        await for_service(self.gw).accept_ticket(ticket.id, SECRETARY, "voice_keypress")
        return await self.ticket(ticket.id)

    async def ticket(self, ticket_id: int) -> Ticket:
        found = await self.gw.store.tickets.get(ticket_id)
        assert found is not None
        return found

    def link(self, ticket_id: int, contact_id: int) -> str:
        assert self.gw.links is not None
        return self.gw.links.token(ticket_id, contact_id, self.clock.now())

    async def post(
        self, token: str, form: dict[str, str], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = {"Origin": self.origin} if headers is None else headers
        return await self.http.post(f"/r/{token}", data=form, headers=sent)

    def refused(self, reason: str) -> float:
        return sample(self.gw, "bidao_responder_links_refused_total", reason=reason)

    async def box_hears(self, kind: IndicationKind) -> None:
        await wait_for(
            lambda: any(i.kind == kind for i in self.box.indications), what=f"box hears {kind}"
        )


@pytest.fixture
def households_csv() -> str:
    return HOUSEHOLDS_CSV


@pytest.fixture
def contacts_csv() -> str:
    return CONTACTS_CSV


@pytest.fixture
async def page(
    tmp_path: Path,
    broker: MosquittoBroker,
    clock: ManualClock,
    households_csv: str,
    contacts_csv: str,
) -> AsyncIterator[Page]:
    port = free_loopback_port()
    origin = f"http://127.0.0.1:{port}"
    settings = gateway_settings(
        tmp_path,
        broker,
        http={"port": port},
        notify={"public_url": origin, "link_ttl_s": TTL_S},
    )
    gw = GatewayService(settings, clock, ConsoleProvider(io.StringIO()))
    gw.add_component("http", http_component(for_service(gw)))
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    async with gw:
        for kind, text in (
            ("units", UNITS_CSV),
            ("households", households_csv),
            ("contacts", contacts_csv),
        ):
            result = await gw.import_csv(kind, text)  # type: ignore[arg-type]
            assert result.rejected == 0, result.errors
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with (
            httpx.AsyncClient(base_url=origin, timeout=10) as http,
            MqttFleet("127.0.0.1", broker.port, [box]) as fleet,
        ):
            await wait_for(_up(http), what="HTTP server up")
            yield Page(gw, box, fleet, clock, http, origin)


def _up(http: httpx.AsyncClient) -> Callable[[], Awaitable[bool]]:
    async def up() -> bool:
        try:
            return (await http.get("/healthz")).status_code in (200, 503)
        except httpx.TransportError:
            return False

    return up


def local(at: float | None) -> str:
    assert at is not None
    return datetime.fromtimestamp(at, ZONE).strftime("%Y-%m-%d %H:%M")


async def test_the_owner_sees_the_ticket_and_reports_arrival_then_resolution(page: Page) -> None:
    ticket = await page.call_and_accept()
    token = page.link(ticket.id, SECRETARY)

    shown = await page.http.get(f"/r/{token}")
    assert shown.status_code == 200
    assert shown.headers["content-type"].startswith("text/html")
    assert shown.headers["referrer-policy"] == "no-referrer"
    body = shown.text
    assert '<meta name="viewport"' in body
    assert "张桂兰" in body
    assert "桥元村三组12号" in body
    assert '<a class="tel" href="tel:13912345678">13912345678</a>' in body
    assert "已接单，尚未到达" in body
    assert "Accepted, not there yet" in body
    assert body.index("已接单，尚未到达") < body.index("Accepted, not there yet")
    assert f"<dd>{local(ticket.accepted_at)}</dd>" in body
    assert "李书记" in body
    assert 'value="arrive"' in body
    assert 'value="resolve"' in body
    assert 'value="handover"' in body
    # The day-clock limits come from the ticket's own rules.
    assert "立即办（2小时内）" in body
    assert "一般（2天内）" in body
    assert "复杂（30天内）" in body

    arrived = await page.post(token, {"action": "arrive"})
    assert arrived.status_code == 303
    assert arrived.headers["location"] == f"/r/{token}?done=arrived"
    ticket = await page.ticket(ticket.id)
    assert ticket.status == "on_site"
    events = await page.gw.store.tickets.events(ticket.id)
    assert (events[-1].kind, events[-1].contact_id) == ("on_site", SECRETARY)
    await page.box_hears(IndicationKind.HELPER_ARRIVED)
    after = (await page.http.get(arrived.headers["location"])).text
    assert f"已记录到达（{local(ticket.on_site_at)}），老人的呼叫盒会收到提示。" in after
    assert "已到达，正在处理" in after
    assert 'value="arrive"' not in after  # arrival is done; resolution and hand-over remain
    assert 'value="resolve"' in after

    resolved = await page.post(
        token, {"action": "resolve", "category": "ordinary", "note": "修好了水管\r\n已试水"}
    )
    assert resolved.status_code == 303
    assert resolved.headers["location"] == f"/r/{token}?done=resolved"
    ticket = await page.ticket(ticket.id)
    assert (ticket.status, ticket.category) == ("resolved", "ordinary")
    await page.box_hears(IndicationKind.RESOLVED)
    done = (await page.http.get(resolved.headers["location"])).text
    assert f"已记录解决（{local(ticket.resolved_at)}），老人的呼叫盒会收到提示。" in done
    assert "Resolution recorded" in done
    assert "此工单已结束，无需再操作。" in done
    assert "<form" not in done


async def test_a_done_message_is_shown_only_when_the_ticket_shows_it(page: Page) -> None:
    ticket = await page.call_and_accept()
    token = page.link(ticket.id, SECRETARY)
    # Someone edits the address bar: nothing was recorded, so nothing is claimed.
    body = (await page.http.get(f"/r/{token}?done=arrived")).text
    assert "已记录到达" not in body
    assert "已接单，尚未到达" in body


async def test_forged_malformed_and_expired_links_are_refused(page: Page) -> None:
    ticket = await page.call_and_accept()
    token = page.link(ticket.id, SECRETARY)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    other_ticket = re.sub(r"^\d+", str(ticket.id + 1), token)

    for bad, reason in ((forged, "forged"), (other_ticket, "forged"), ("17.3.x", "malformed")):
        before = page.refused(reason)
        answer = await page.http.get(f"/r/{bad}")
        assert answer.status_code == 404
        assert "链接无效" in answer.text
        assert "This link does not work" in answer.text
        assert "Traceback" not in answer.text
        assert page.refused(reason) == before + 1
    assert (await page.post(forged, {"action": "arrive"})).status_code == 404

    await page.clock.advance(TTL_S + 1)
    expired = await page.http.get(f"/r/{token}")
    assert expired.status_code == 410
    assert "链接已过期" in expired.text
    assert "This link has expired" in expired.text
    assert page.refused("expired") == 1
    assert (await page.post(token, {"action": "arrive"})).status_code == 410
    assert page.refused("expired") == 2
    assert (await page.ticket(ticket.id)).on_site_at is None


async def test_only_the_owner_may_act(page: Page) -> None:
    ticket = await page.call_and_accept()
    deputy = page.link(ticket.id, DEPUTY)

    shown = await page.http.get(f"/r/{deputy}")
    assert shown.status_code == 200
    assert "此工单由李书记负责，您不能操作。" in shown.text
    assert "<form" not in shown.text

    refused = await page.post(deputy, {"action": "arrive"})
    assert refused.status_code == 403
    assert "此工单由李书记负责" in refused.text
    assert page.refused("not_owner") == 1
    assert (await page.ticket(ticket.id)).status == "accepted"


async def test_cross_origin_posts_are_refused(page: Page) -> None:
    ticket = await page.call_and_accept()
    token = page.link(ticket.id, SECRETARY)
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": page.origin, "Sec-Fetch-Site": "same-site"},
    ):
        answer = await page.post(token, {"action": "arrive"}, headers)
        assert answer.status_code == 403, headers
        assert "只能在本工单的页面上操作" in answer.text
    assert page.refused("cross_origin") == 4
    assert (await page.ticket(ticket.id)).status == "accepted"
    # A browser on the page itself says so and is let through.
    ok = await page.post(token, {"action": "arrive"}, {"Sec-Fetch-Site": "same-origin"})
    assert ok.status_code == 303
    assert (await page.ticket(ticket.id)).status == "on_site"


async def test_hand_over_makes_the_old_link_read_only(page: Page) -> None:
    ticket = await page.call_and_accept()
    token = page.link(ticket.id, SECRETARY)
    body = (await page.http.get(f"/r/{token}")).text
    assert f'<option value="{DEPUTY}">王副书记（副书记 / deputy secretary）</option>' in body
    assert f'value="{DAUGHTER}"' not in body  # family never take a ticket

    family = await page.post(token, {"action": "handover", "to": str(DAUGHTER)})
    assert family.status_code == 400
    assert "请从列表中选择要转交的人" in family.text

    handed = await page.post(token, {"action": "handover", "to": str(DEPUTY)})
    assert handed.status_code == 303
    assert (await page.ticket(ticket.id)).owner_contact_id == DEPUTY
    events = await page.gw.store.tickets.events(ticket.id)
    assert (events[-1].kind, events[-1].contact_id) == ("reassigned", SECRETARY)

    old = (await page.http.get(handed.headers["location"])).text
    assert "已转交给王副书记，系统正在给其打电话并发短信告知。" in old
    # ... which is so: the deputy is called and sent an SMS about this ticket.
    told = {
        (e.channel, e.template)
        for e in await page.gw.store.outbox.entries()
        if e.contact_id == DEPUTY and e.ticket_id == ticket.id
    }
    assert {("voice", "ticket_reassigned_to_you"), ("sms", "ticket_reassigned_sms_link")} <= told
    assert "此工单已转交给王副书记，您不能再操作。" in old
    assert "<form" not in old
    assert (await page.post(token, {"action": "arrive"})).status_code == 403

    deputy = page.link(ticket.id, DEPUTY)
    assert 'value="arrive"' in (await page.http.get(f"/r/{deputy}")).text
    assert (await page.post(deputy, {"action": "arrive"})).status_code == 303
    assert (await page.ticket(ticket.id)).status == "on_site"


async def test_bad_forms_are_refused_with_the_reason(page: Page) -> None:
    ticket = await page.call_and_accept()
    token = page.link(ticket.id, SECRETARY)
    cases = (
        ({"action": "explode"}, "不认识这个操作"),
        ({"action": "resolve"}, "请选择事情类别"),
        ({"action": "resolve", "category": "trivial"}, "请选择事情类别"),
        (
            {"action": "resolve", "category": "hard", "note": "字" * (NOTE_MAX + 1)},
            f"说明最多{NOTE_MAX}字，您写了{NOTE_MAX + 1}字",
        ),
        ({"action": "resolve", "category": "hard", "note": "a\x00b"}, "特殊字符"),
        ({"action": "handover", "to": "x"}, "请从列表中选择"),
    )
    for form, why in cases:
        answer = await page.post(token, form)
        assert answer.status_code == 400, form
        assert why in answer.text, form
    assert page.refused("bad_form") == len(cases)
    huge = await page.http.post(
        f"/r/{token}",
        content=b"action=arrive&note=" + b"x" * 10_000,
        headers={"Origin": page.origin},
    )
    assert huge.status_code == 400
    assert (await page.ticket(ticket.id)).status == "accepted"


async def test_an_action_the_ticket_no_longer_allows_says_why(page: Page) -> None:
    ticket = await page.call_and_accept()
    token = page.link(ticket.id, SECRETARY)
    assert (await page.post(token, {"action": "resolve", "category": "urgent"})).status_code == 303
    # A second tab still showing the old form.
    stale = await page.post(token, {"action": "arrive"})
    assert stale.status_code == 409
    assert "不能记录到达：工单现在是“已解决，等待老人评价”。" in stale.text
    assert "the ticket is now “Resolved, waiting for the resident's rating”" in html.unescape(
        stale.text
    )
    assert (await page.ticket(ticket.id)).status == "resolved"


@pytest.mark.parametrize(
    ("households_csv", "contacts_csv"),
    [
        (
            HOUSEHOLDS_CSV.replace("张桂兰", HOSTILE_RESIDENT).replace(
                "桥元村三组12号", "12号<b>&amp;"
            ),
            CONTACTS_CSV.replace("王副书记", HOSTILE_HELPER.replace('"', '""').join('""')),
        )
    ],
)
async def test_names_and_addresses_from_files_are_escaped(page: Page) -> None:
    ticket = await page.call_and_accept()
    body = (await page.http.get(f"/r/{page.link(ticket.id, SECRETARY)}")).text
    assert "&lt;script&gt;a()&lt;/script&gt;" in body
    assert "12号&lt;b&gt;&amp;amp;" in body
    assert "&quot;&gt;&lt;img onerror=a()&gt;" in body
    assert "<script" not in body
    assert "<img" not in body
    assert "<b>" not in body


def test_each_language_has_every_text_with_the_same_placeholders() -> None:
    assert zh_cn.TEXTS.keys() == en.TEXTS.keys()

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    for key, text in zh_cn.TEXTS.items():
        assert fields(text) == fields(en.TEXTS[key]), key


async def test_links_keep_working_after_a_restart(page: Page) -> None:
    ticket = await page.call_and_accept()
    token = page.link(ticket.id, SECRETARY)
    key = page.gw.settings.data_dir / "link.key"
    assert key.stat().st_mode & 0o777 == 0o600
    # The next start reads the same key from the data folder.
    again = responder_links(page.gw.settings).verify(token, page.clock.now())
    assert (again.ticket_id, again.contact_id) == (ticket.id, SECRETARY)


@pytest.mark.parametrize("secret", ["not hex", "00ff"])
def test_a_bad_configured_link_secret_stops_the_start(tmp_path: Path, secret: str) -> None:
    settings = gateway_settings(tmp_path, None, notify={"link_secret": secret})
    with pytest.raises(StartupError, match=r"notify\.link_secret"):
        GatewayService(settings)
