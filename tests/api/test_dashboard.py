"""The secretaries' live dashboard and the family view, in Debian's Chromium.

The village is the one of test_story: the grid imported with `bidao`, the box over a real
broker, the phones on the fake network, the gateway in-process only for its clock. Users
are added with `bidao user add`. The browser waits on what the page shows, never on time.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import expect

from device_sim.device import SimulatedDevice
from firmware_protocol import IndicationKind, Key
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.browser import DESKTOP, PHONE, add_user, chromium, shot, sign_in
from tests.api.test_water_watch import METER_ID, METER_KEY, Home, yesterday_at
from tests.api.village import Village, open_village
from tests.gateway.grid import HOUSEHOLD
from tests.gateway.support import wait_for

pytestmark = pytest.mark.timeout(180)

VILLAGE = "341504-101-001"
RESPONDER_PHONES = [f"1380000000{i}" for i in range(1, 8)]
LIVE_S = 60_000
"""How long (ms) the page may take to show a change pushed to it: a hang guard only."""


@pytest.fixture
def clock() -> ManualClock:
    """Started at the real time: the page's "waiting" ages and today's list hold it."""
    return ManualClock(start=time.time())


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    async with open_village(tmp_path, broker, clock) as v:
        for phone in RESPONDER_PHONES:  # nobody accepts by phone: the dashboard does
            v.phones.script(phone).digits = ""
        await add_user(
            v.data_dir, "li.shuji", "secretary", "--unit", VILLAGE, "--contact", "1",
            "--name", "李书记",
        )  # fmt: skip
        yield v


def indications(v: Village) -> list[IndicationKind]:
    return [i.kind for i in v.box.indications]


async def test_a_secretary_sees_a_call_live_accepts_arrives_resolves_and_the_box_hears(
    village: Village,
) -> None:
    v = village
    base = str(v.http.base_url).rstrip("/")
    async with chromium() as browser:
        desk = await (await browser.new_context(viewport=DESKTOP, locale="zh-CN")).new_page()
        await desk.goto(f"{base}/dash")
        await expect(desk).to_have_url(f"{base}/signin?next=/dash")
        await shot(desk, "signin-1366")
        await sign_in(desk, base, "li.shuji")
        await expect(desk).to_have_url(f"{base}/dash")
        await expect(desk.locator("#open-empty")).to_be_visible()
        await expect(desk.locator("#live-state")).to_have_text("实时更新中")
        await shot(desk, "desk-empty-1366")
        phone = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
        await sign_in(phone, base, "li.shuji")
        await expect(phone.locator("#open-empty")).to_be_visible()
        await expect(phone.locator("#live-state")).to_have_text("实时更新中")
        await shot(phone, "desk-empty-390")

        # 张桂兰 presses green: the row appears on both screens without a reload.
        await v.press(Key.GREEN_CALL)
        row = desk.locator("#ticket-1")
        await expect(row).to_be_visible(timeout=LIVE_S)
        await expect(row).to_contain_text("张桂兰")
        await expect(row).to_contain_text("待接单")
        await expect(phone.locator("#ticket-1")).to_be_visible(timeout=LIVE_S)
        village_box = desk.locator(f'.unit[data-code="{VILLAGE}"] > .uname')
        await expect(village_box).to_have_text("桥元村 · 待处理1件", timeout=LIVE_S)
        await shot(desk, "desk-call-1366")
        await shot(phone, "desk-call-390")

        await phone.goto(f"{base}/dash/tickets/1")
        await expect(phone.locator("#do-accept")).to_be_visible()
        await shot(phone, "ticket-open-390")
        await phone.goto(f"{base}/dash")

        # He opens it and takes it: the box tells her help is on the way.
        await row.get_by_role("link", name="处理").click()
        await expect(desk.locator("#ticket-status")).to_have_text("待接单")
        await shot(desk, "ticket-open-1366")
        await desk.locator("#do-accept").click()
        await expect(desk.locator("#done")).to_have_text("已接单。")
        await expect(desk.locator("#ticket-status")).to_have_text("已接单")
        await v.box_hears(IndicationKind.HELPER_ON_THE_WAY)
        await expect(phone.locator("#ticket-1")).to_contain_text("李书记", timeout=LIVE_S)

        # At her door he reports arrival: the box says he has arrived.
        await desk.locator("#do-arrive").click()
        await expect(desk.locator("#done")).to_have_text("已记录到达。")
        await expect(desk.locator("#ticket-status")).to_have_text("已到达")
        await v.box_hears(IndicationKind.HELPER_ARRIVED)

        # Dealt with: he resolves it with its kind and a note; the box asks her to rate it.
        await desk.locator("#resolve-category").select_option("ordinary")
        note = desk.locator("#resolve-note")
        await note.fill("灯泡坏了，已换好")
        # A live refresh while he types (any change to the ticket) keeps what he typed.
        await desk.locator("#ticket-status").evaluate("el => el.dataset.before = 'refresh'")
        await desk.evaluate("htmx.trigger('#ticket-live', 'sse:changed')")
        await expect(desk.locator("#ticket-status[data-before]")).to_have_count(0)
        await expect(note).to_have_value("灯泡坏了，已换好")
        await expect(desk.locator("#resolve-category")).to_have_value("ordinary")
        await desk.locator("#do-resolve").click()
        await expect(desk.locator("#done")).to_have_text("已办结。")
        await expect(desk.locator("#ticket-status")).to_have_text("已解决")
        await v.box_hears(IndicationKind.RESOLVED)
        timeline = desk.locator("#timeline")
        for words in ("接单：李书记", "到达：李书记", "已解决：李书记", "灯泡坏了，已换好"):
            await expect(timeline).to_contain_text(words)
        await shot(desk, "ticket-resolved-1366")
        phone_ticket = await desk.context.new_page()
        await phone_ticket.set_viewport_size(PHONE)
        await phone_ticket.goto(f"{base}/dash/tickets/1")
        await shot(phone_ticket, "ticket-resolved-390")

        # The live list is empty again; the call is under today's resolved.
        await expect(phone.locator("#open-empty")).to_be_visible(timeout=LIVE_S)
        await expect(phone.locator("#ticket-1")).to_have_count(0)
        await shot(phone, "desk-resolved-390")

        # A minute later the statistics count it, drawn as charts; water and devices say
        # what will show.
        await v.clock.advance(60)
        await desk.get_by_role("link", name="统计").click()
        await desk.get_by_label("时段").select_option("1")
        await desk.get_by_role("button", name="查看").click()
        await expect(desk).to_have_url(f"{base}/dash/stats?days=1")
        await expect(desk.locator("#stats-table tbody tr")).to_have_text(
            ["桥元村 1 1 100.0% 100.0% -"], use_inner_text=True
        )
        await expect(desk.locator('.chart[data-chart="requests"] canvas')).to_have_count(1)
        await shot(desk, "stats-1366")
        await phone.goto(f"{base}/dash/stats?days=1")
        await expect(phone.locator('.chart[data-chart="rates"] canvas')).to_have_count(1)
        await shot(phone, "stats-390")
        await phone.get_by_role("link", name="用水看护").click()
        await expect(phone.locator("h1")).to_have_text("独居老人用水看护")
        await expect(phone.locator("#water tbody tr")).to_have_count(2)
        await shot(phone, "water-390")
        await phone.get_by_role("link", name="设备").click()
        await expect(phone.locator(".empty").first).to_have_text("所有设备都正常：有信号，电量足。")
        await shot(phone, "devices-390")
        await desk.goto(f"{base}/dash/tickets/1")

        # English on request, same page.
        await desk.get_by_role("link", name="English").click()
        await expect(desk.locator("h1")).to_contain_text("Ticket 1")
        await expect(desk.locator("#ticket-status")).to_have_text("resolved")
        await expect(desk.locator("#timeline")).to_contain_text(
            "accepted: 李书记 (village secretary)"
        )
        await shot(desk, "ticket-resolved-en-1366")
        await desk.get_by_role("link", name="Tickets", exact=True).click()
        await expect(desk.locator("h1")).to_have_text("Calls and alarms to handle")
        await desk.set_viewport_size(PHONE)
        await shot(desk, "desk-en-390")

    kinds = indications(v)
    order = [
        kinds.index(k)
        for k in (
            IndicationKind.HELPER_ON_THE_WAY,
            IndicationKind.HELPER_ARRIVED,
            IndicationKind.RESOLVED,
        )
    ]
    assert order == sorted(order)
    log = await v.cli("ticket", "1")
    assert "经管理页面 via the dashboard" in log or "管理页面" in log


@pytest.fixture
def water_clock() -> ManualClock:
    return ManualClock(start=yesterday_at(5))


async def test_family_sees_their_elder_only_the_watch_first_use_and_who_handles_a_call(
    tmp_path: Path, broker: MosquittoBroker, water_clock: ManualClock
) -> None:
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=water_clock.now)
    async with open_village(tmp_path, broker, water_clock, devices=[(meter, HOUSEHOLD)]) as v:
        v.phones.script("13912345678").digits = ""
        await add_user(v.data_dir, "xiaohong", "family", "--contact", "8", "--name", "张小红")
        h = Home(v)
        await h.reading()  # 05:00: the watch starts
        await h.passes(90 * 60)
        await h.use_water()  # 06:31
        base = str(v.http.base_url).rstrip("/")
        async with chromium() as browser:
            page = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
            await sign_in(page, base, "xiaohong")
            await expect(page).to_have_url(f"{base}/family")
            elder = page.locator(f"#elder-{HOUSEHOLD}")
            await expect(elder.locator("h1")).to_have_text("张桂兰的看护情况")
            await expect(page.locator("#watch-state")).to_have_text("用水看护正在运行。")
            await expect(page.locator("#first-use")).to_have_text("今天第一次用水：06:31")
            await expect(page.locator(".empty")).to_contain_text("现在没有呼叫或预警")
            await expect(page.locator("#live-state")).to_have_text("实时更新中")
            await shot(page, "family-quiet-390")

            # She presses green; the secretary takes it by phone (presses 1): the family
            # sees the call and who is handling it, live.
            v.phones.script("13800000001").digits = "1"
            await v.press(Key.GREEN_CALL)
            await v.box_hears(IndicationKind.HELPER_ON_THE_WAY)
            item = page.locator("#family-ticket-1")
            await expect(item).to_contain_text(
                "李书记（村书记）在处理，电话 13800000001", timeout=LIVE_S
            )
            await shot(page, "family-call-390")
            desk = await page.context.new_page()
            await desk.set_viewport_size(DESKTOP)
            await desk.goto(f"{base}/family")
            await expect(desk.locator("#family-ticket-1")).to_be_visible()
            await shot(desk, "family-call-1366")

            # Nothing about anyone else, nothing private, and no way into the duty desk.
            text = await page.locator("main").inner_text()
            for other in ("李德福", "桥元村三组14号", "4321", "高血压"):
                assert other not in text
            await page.goto(f"{base}/dash")
            await expect(page).to_have_url(f"{base}/family")
            answer = await page.request.get(f"{base}/part/open")
            assert answer.status == 404
            answer = await page.request.get(f"{base}/api/v1/me")
            assert (await answer.json())["households"] == [HOUSEHOLD]

            # The secretary reads her water watch and marks her away for three days.
            await add_user(
                v.data_dir, "li.shuji", "secretary", "--unit", VILLAGE, "--contact", "1",
                "--name", "李书记",
            )  # fmt: skip
            desk = await (await browser.new_context(viewport=DESKTOP, locale="zh-CN")).new_page()
            await sign_in(desk, base, "li.shuji")
            await desk.get_by_role("link", name="用水看护").click()
            row = desk.locator(f"#water-{HOUSEHOLD}")
            await expect(row).to_contain_text("06:31")
            await expect(row).to_contain_text("独居，看护中")
            await shot(desk, "water-1366")
            await row.get_by_label("登记外出").select_option("3")
            await row.get_by_role("button", name="登记外出").click()
            await expect(desk.locator("#done")).to_have_text("已登记外出，几秒内生效。")

            async def away() -> bool:
                await desk.reload()
                return "外出中" in await row.inner_text()

            await wait_for(away, timeout=60, what="the watch shows her away")
            await expect(row.get_by_role("button", name="已回家")).to_be_visible()
