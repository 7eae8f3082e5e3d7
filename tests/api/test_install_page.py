"""The installers' page in Debian's Chromium: find a box, bind it, watch its four keys arrive.

The village of test_dashboard (and test_story): the grid imported with `bidao`, boxes over a
real broker, the phones on the fake network, the gateway in-process only for its clock.
Installers are added with `bidao user add`. A new box is a simulated device on the broker;
the test presses its keys as an installer would, and the browser waits on what the page
shows, never on time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import FilePayload, Page, expect

from device_sim.device import SimulatedDevice
from firmware_protocol import Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.browser import DESKTOP, PHONE, add_user, chromium, shot, sign_in
from tests.api.test_water_watch import METER_ID, METER_KEY
from tests.api.village import Village, open_village
from tests.gateway.grid import BOX_ID, BOX_KEY, HOUSEHOLD
from tests.gateway.support import sample, wait_for

pytestmark = pytest.mark.timeout(240)

VILLAGE = "341504-101-001"
OTHER_VILLAGE = "341504-101-002"
HOUSEHOLD_2 = "341504-101-001-0002"
NEW_BOX = "b1da0000000000c1"
NEW_KEY = bytes(range(32, 48))
SPARE_BOX = "b1da0000000000c2"
SPARE_KEY = bytes(range(48, 64))
THIRD_BOX = "b1da0000000000c3"
THIRD_KEY = bytes(range(64, 80))
KEYS = (
    (Key.GREEN_CALL, "green"),
    (Key.RED_HANGUP, "red"),
    (Key.THUMBS_UP, "thumbs_up"),
    (Key.THUMBS_DOWN, "thumbs_down"),
)
LIVE_S = 60_000
"""How long (ms) the page may take to show a change pushed to it: a hang guard only."""


@pytest.fixture
def clock() -> ManualClock:
    """Started at the real time, as the dashboard's tests do."""
    return ManualClock(start=time.time())


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    async with open_village(tmp_path, broker, clock) as v:
        # A second village, with its own installer.
        units = tmp_path / "files" / "more-units.csv"
        units.write_text(
            f"code,level,name,parent_code\n{OTHER_VILLAGE},village,柳树村,341504-101\n",
            encoding="utf-8",
        )
        await v.cli("import", "units", str(units))
        await add_user(v.data_dir, "sun", "installer", "--unit", VILLAGE, "--name", "孙安装")
        await add_user(v.data_dir, "liu", "installer", "--unit", OTHER_VILLAGE, "--name", "刘安装")
        yield v


def new_box(v: Village, device_id: str, key: bytes) -> SimulatedDevice:
    """A box out of the manufacturer's carton, on the broker (unknown until registered)."""
    device = SimulatedDevice(device_id, "call_box", key, clock=v.clock.now)
    v.fleet.add(device)
    v.devices[device_id] = device
    return device


async def press(v: Village, device_id: str, key: Key) -> None:
    """The installer presses a key on the box; returns once the box has its answer."""
    device = v.devices[device_id]
    await v.fleet.send(device_id, device.press(key, 1, False))
    await wait_for(lambda: not device.pending, timeout=60, what=f"{key.name} acked")


async def nobody_was_called(v: Village) -> None:
    """No ticket, no call, no SMS: the presses were a check, not a call for help."""
    assert await for_service(v.gw).list_ticket_views(days=None) == []
    await asyncio.to_thread(v.phones.wait_idle)
    assert v.phones.records == []


async def unfold(page: Page, part: str) -> None:
    """Open a folded part of the page (registration, more actions) unless it is open."""
    if await page.locator(part).get_attribute("open") is None:
        await page.locator(f"{part} > summary").click()


def csv_file(name: str, text: str) -> FilePayload:
    """A manufacturer's CSV as the file chooser gives it."""
    return {"name": name, "mimeType": "text/csv", "buffer": text.encode()}


async def page_text(page: Page) -> str:
    return await page.locator("body").inner_text()


async def test_an_installer_registers_binds_and_watches_the_four_keys_tick_live(
    village: Village,
) -> None:
    v = village
    base = str(v.http.base_url).rstrip("/")
    box = new_box(v, NEW_BOX, NEW_KEY)
    async with chromium() as browser:
        page = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
        await sign_in(page, base, "sun")
        # An installer starts on their page: the guide says what to do, in order.
        await expect(page).to_have_url(f"{base}/dash/install")
        await expect(page.locator("h1")).to_have_text("安装检查")
        await expect(page.locator("#guide li")).to_have_text(
            [
                "找到设备：输入或扫描标签上的设备编号。",
                "绑定住户：选出这台设备装在哪一户。",
                "开始检测，然后在设备上依次按四个键：绿键（呼叫）、红键（挂断）、点赞、点踩。",
                "看到四个键全部打勾，就完成了：设备已启用。",
            ]
        )
        await shot(page, "install-start-390")

        # The new box from the manufacturer's sheet: registered in 桥元村.
        await unfold(page, "#register")
        form = page.locator("#register-form")
        await form.get_by_label("设备编号（16位）").fill(NEW_BOX.upper())
        await form.get_by_label("密钥（32位十六进制）").fill(NEW_KEY.hex())
        await form.get_by_label("安装在哪个单元").select_option(VILLAGE)
        await page.locator("#do-register").click()
        await expect(page).to_have_url(f"{base}/dash/install?device={NEW_BOX}&done=register")
        await expect(page.locator("#done")).to_contain_text("设备已登记")
        await expect(page.locator("#install-state")).to_have_text("待启用：还没有检测过")
        assert NEW_KEY.hex() not in await page.content()

        # Bound to 李德福's household.
        await page.get_by_label("住户", exact=True).select_option(HOUSEHOLD_2)
        await page.locator("#do-bind").click()
        await expect(page.locator("#done")).to_have_text("已绑定住户。下一步：开始检测。")
        await expect(page.locator("#device-household")).to_contain_text("李德福")
        label = page.locator("#print-label")
        assert await label.get_attribute("href") == f"/api/v1/devices/{NEW_BOX}/label.svg"
        svg = await page.request.get(f"{base}/api/v1/devices/{NEW_BOX}/label.svg")
        assert svg.status == 200
        assert "b1da 0000 0000 00c1" in await svg.text()

        # The check starts while the phone's connection to the stream fails: the page says
        # so, and once the network is back it reconnects by itself and shows what arrived.
        stream = "**/dash/install/checks/*/live"
        await page.route(stream, lambda route: route.abort())
        await page.locator("#do-start").click()
        await expect(page.locator("#done")).to_contain_text("检测已开始")
        await expect(page.locator("#install-state")).to_have_text("检测中")
        await expect(page.locator("#keys li.waiting")).to_have_count(4)
        await expect(page.locator("#check-live-state")).to_have_text("连接中断，正在重新连接…")
        await shot(page, "install-check-offline-390")
        await press(v, NEW_BOX, Key.GREEN_CALL)  # pressed while the page is cut off
        await page.unroute(stream)
        await expect(page.locator("#check-live-state")).to_have_text("实时更新中", timeout=LIVE_S)
        await expect(page.locator("#key-green")).to_have_attribute("data-seen", "yes")
        await expect(page.locator("#keys li.waiting")).to_have_count(3)

        # The installer presses each key: each is ticked as it arrives, the others wait.
        for i, (key, name) in enumerate(KEYS):
            if i > 0:  # green arrived above
                await press(v, NEW_BOX, key)
            await expect(page.locator(f"#key-{name}")).to_have_attribute(
                "data-seen", "yes", timeout=LIVE_S
            )
            await expect(page.locator("#keys li.seen")).to_have_count(i + 1)
            assert box.acked
            assert not box.nacked
            if i == 0:
                await shot(page, "install-check-waiting-390")
            if i == 1:
                await expect(page.locator("#key-thumbs_up")).to_contain_text("等待按键")
                await shot(page, "install-check-two-keys-390")

        await expect(page.locator("#check-outcome")).to_have_text("✓ 检测通过：设备已启用。")
        await expect(page.locator("#install-state")).to_have_text("已启用")
        await expect(page.locator("#check-live-state")).to_be_hidden()
        await shot(page, "install-check-passed-390")
        await nobody_was_called(v)

        # A fresh page says the same; so does the desk's size.
        await page.reload()
        await expect(page.locator("#install-state")).to_have_text("已启用")
        desk = await (await browser.new_context(viewport=DESKTOP, locale="zh-CN")).new_page()
        await sign_in(desk, base, "sun")
        await desk.locator("#device-id").fill(NEW_BOX)
        await desk.get_by_role("button", name="查找").click()
        await expect(desk.locator("#install-state")).to_have_text("已启用")
        await expect(desk.locator("#keys li.seen")).to_have_count(4)
        await shot(desk, "install-check-passed-1366")

        # English on request.
        await desk.get_by_role("link", name="English").click()
        await expect(desk.locator("h1")).to_have_text("Install check")
        await expect(desk.locator("#install-state")).to_have_text("active")
        await expect(desk.locator("#check-outcome")).to_have_text(
            "✓ Check passed: the device is active."
        )
        await shot(desk, "install-check-passed-en-1366")


async def test_a_missing_key_leaves_the_box_pending_and_another_area_sees_nothing(
    village: Village,
) -> None:
    v = village
    base = str(v.http.base_url).rstrip("/")
    async with chromium() as browser:
        page = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
        await sign_in(page, base, "sun")
        # A mistyped id is named beside the finder, to try again.
        await page.locator("#device-id").fill("b1da 0000 0000 000")
        await page.get_by_role("button", name="查找").click()
        await expect(page.locator("#error")).to_contain_text("不是设备编号")
        await expect(page.locator("#device-id")).to_have_value("b1da00000000000")
        # The label's QR code gives the id; pasted with its spaces, it is found.
        await page.locator("#device-id").fill("B1DA 0000 0000 0001")
        await page.get_by_role("button", name="查找").click()
        await expect(page.locator("#install-state")).to_have_text("待启用：还没有检测过")
        await expect(page.locator("#device-household")).to_contain_text("张桂兰")
        await page.locator("#do-start").click()
        await expect(page.locator("#check-live-state")).to_have_text("实时更新中")
        for key, name in KEYS[:3]:  # the thumbs-down key is broken
            await press(v, BOX_ID, key)
            await expect(page.locator(f"#key-{name}")).to_have_attribute(
                "data-seen", "yes", timeout=LIVE_S
            )

        # The check's time runs out: the page says which key never came.
        await v.clock.advance(v.gw.settings.provisioning.install_check_s + 1)
        outcome = page.locator("#check-outcome")
        await expect(outcome).to_contain_text("检测未通过：没有收到 点踩键", timeout=LIVE_S)
        await expect(page.locator("#install-state")).to_have_text("待启用：上次检测没有收到点踩键")
        await expect(page.locator("#key-thumbs_down")).to_have_attribute("data-seen", "no")
        await shot(page, "install-check-failed-390")
        await page.reload()
        await expect(page.locator("#install-state")).to_have_text("待启用：上次检测没有收到点踩键")
        await expect(page.locator("#do-start")).to_have_text("重新检测")
        await nobody_was_called(v)

        # 刘 installs in 柳树村: 桥元村's box is not found for him, and he learns nothing.
        liu = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
        await sign_in(liu, base, "liu")
        answer = await liu.goto(f"{base}/dash/install?device={BOX_ID}")
        assert answer is not None
        assert answer.status == 404
        text = await page_text(liu)
        assert f"找不到设备 {BOX_ID}，或者它不在您负责的范围内。" in text
        for private in ("张桂兰", "桥元村三组12号", HOUSEHOLD, "待启用", "点踩"):
            assert private not in text
        await expect(liu.locator("#back")).to_have_attribute("href", "/dash/install")
        await shot(liu, "install-refused-390")
        started = await liu.request.post(
            f"{base}/dash/install/{BOX_ID}", form={"action": "start"}, max_redirects=0
        )
        assert started.status == 404
        live = await liu.request.get(f"{base}/dash/install/checks/1/live")
        assert live.status == 404
        gone = await liu.request.post(
            f"{base}/dash/install/{BOX_ID}",
            form={"action": "decommission", "confirm": "yes"},
            max_redirects=0,
        )
        assert gone.status == 404
        # A form posted from another site is refused even for 孙 himself.
        forged = await page.request.post(
            f"{base}/dash/install/{BOX_ID}",
            form={"action": "start"},
            headers={"Origin": "http://127.0.0.2:9"},
            max_redirects=0,
        )
        assert forged.status == 403
        await page.reload()
        await expect(page.locator("#install-state")).to_have_text("待启用：上次检测没有收到点踩键")
        devices = {d.device_id: d for d in await for_service(v.gw).list_devices()}
        assert devices[BOX_ID].enabled
        refused = "bidao_api_refused_total"
        assert sample(v.gw, refused, reason="not_found") == 4
        assert sample(v.gw, refused, reason="bad_input") == 1  # the mistyped id
        await nobody_was_called(v)


async def test_a_batch_is_all_or_nothing_and_decommissioning_asks_first(village: Village) -> None:
    v = village
    base = str(v.http.base_url).rstrip("/")
    bad = (
        "serial,key,kind\n"
        f"{SPARE_BOX},{SPARE_KEY.hex()},call_box\n"
        f"{THIRD_BOX},abc,call_box\n"
        f"{SPARE_BOX},{SPARE_KEY.hex()},call_box\n"
    )
    good = (
        f"serial,key,kind\n{SPARE_BOX},{SPARE_KEY.hex()},call_box\n{THIRD_BOX},{THIRD_KEY.hex()},\n"
    )
    async with chromium() as browser:
        page = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
        await sign_in(page, base, "sun")
        await unfold(page, "#register")
        batch = page.locator("#batch")
        await batch.get_by_label("CSV 文件").set_input_files(files=csv_file("bad.csv", bad))
        await batch.get_by_label("安装在哪个单元").select_option(VILLAGE)
        await page.locator("#do-batch").click()
        await expect(page.locator("#error")).to_contain_text("整批未导入：有 2 行有误")
        await expect(page.locator("#row-errors li")).to_have_text(
            [
                f"第3行（{THIRD_BOX}）：密钥须为32位十六进制数（16字节）。",
                f"第4行：序列号 {SPARE_BOX} 与第2行重复。",
            ]
        )
        await shot(page, "install-batch-refused-390")
        registered = {d.device_id for d in await for_service(v.gw).list_devices()}
        assert SPARE_BOX not in registered
        assert THIRD_BOX not in registered

        await unfold(page, "#register")
        await batch.get_by_label("CSV 文件").set_input_files(files=csv_file("good.csv", good))
        await batch.get_by_label("安装在哪个单元").select_option(VILLAGE)
        await page.locator("#do-batch").click()
        await expect(page.locator("#done")).to_have_text(
            f"已导入 2 台设备：{SPARE_BOX}, {THIRD_BOX}。密钥不再显示。"
        )
        content = await page.content()
        for key in (SPARE_KEY, THIRD_KEY):
            assert key.hex() not in content
            assert key.hex().upper() not in content

        # Decommissioning asks once more; "no" changes nothing, "yes" retires it.
        await page.goto(f"{base}/dash/install?device={THIRD_BOX}")
        await unfold(page, "#more")
        await page.locator("#do-decommission").click()
        await expect(page.locator("#confirm-text")).to_have_text(
            f"确认停用 {THIRD_BOX}？停用后它发来的消息都会被拒绝，不能撤销。"
        )
        await shot(page, "install-confirm-390")
        await page.get_by_role("link", name="不，返回").click()
        await expect(page.locator("#confirm")).to_have_count(0)
        devices = {d.device_id: d for d in await for_service(v.gw).list_devices()}
        assert devices[THIRD_BOX].enabled
        await unfold(page, "#more")
        await page.locator("#do-decommission").click()
        await page.locator("#confirm-yes").click()
        await expect(page.locator("#done")).to_have_text("设备已停用，历史记录保留。")
        await expect(page.locator("#device")).to_contain_text("已停用（历史记录保留）")
        devices = {d.device_id: d for d in await for_service(v.gw).list_devices()}
        assert not devices[THIRD_BOX].enabled

        # 张桂兰's box is replaced by the spare: asked first, then the spare has her household.
        await page.goto(f"{base}/dash/install?device={BOX_ID}")
        await unfold(page, "#more")
        await page.locator("#replace-id").fill("b1da 0000 0000 0fff")  # not registered
        await page.locator("#do-replace").click()
        await expect(page.locator("#error")).to_have_text(
            "找不到设备 b1da000000000fff，或者它不在您负责的范围内。"
        )
        await expect(page.locator("#confirm")).to_have_count(0)
        await unfold(page, "#more")
        await page.locator("#replace-id").fill(SPARE_BOX.upper())
        await page.locator("#do-replace").click()
        await expect(page.locator("#confirm-text")).to_contain_text(f"确认用 {SPARE_BOX} 接替")
        await page.locator("#confirm-yes").click()
        await expect(page).to_have_url(f"{base}/dash/install?device={SPARE_BOX}&done=replace")
        await expect(page.locator("#done")).to_contain_text("已更换")
        await expect(page.locator("#device-household")).to_contain_text("张桂兰")
        await expect(page.locator("#install-state")).to_have_text("待启用：还没有检测过")
        devices = {d.device_id: d for d in await for_service(v.gw).list_devices()}
        assert not devices[BOX_ID].enabled
        assert devices[SPARE_BOX].household_code == HOUSEHOLD

        # Rotating a key asks first too, and shows no key.
        await page.goto(f"{base}/dash/install?device={SPARE_BOX}")
        await unfold(page, "#more")
        await page.locator("#do-rotate").click()
        await expect(page.locator("#confirm-text")).to_contain_text("确认为")
        await page.locator("#confirm-yes").click()
        await expect(page.locator("#done")).to_contain_text("已开始更换密钥")
        devices = {d.device_id: d for d in await for_service(v.gw).list_devices()}
        next_key = devices[SPARE_BOX].next_key
        assert next_key is not None
        assert next_key.hex() not in await page.content()
        assert BOX_KEY.hex() not in await page.content()
    await nobody_was_called(v)


async def test_a_meter_check_shows_the_reading_rise(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    async with open_village(tmp_path, broker, clock, devices=[(meter, HOUSEHOLD)]) as v:
        await add_user(v.data_dir, "sun", "installer", "--unit", VILLAGE, "--name", "孙安装")
        base = str(v.http.base_url).rstrip("/")
        async with chromium() as browser:
            page = await (await browser.new_context(viewport=PHONE, locale="zh-CN")).new_page()
            await sign_in(page, base, "sun")
            await page.goto(f"{base}/dash/install?device={METER_ID}")
            await expect(page.locator("#check")).to_contain_text("打开水龙头放水")
            await page.locator("#do-start").click()
            await expect(page.locator("#check-live-state")).to_have_text("实时更新中")
            await expect(page.locator("#readings")).to_have_text("还没有收到读数…")
            readings = page.locator("#readings li")
            for i, (litres, flow) in enumerate(((1000, 0), (1006, 360))):
                await v.fleet.send(METER_ID, meter.water_reading(litres, flow))
                await wait_for(lambda: not meter.pending, timeout=60, what="reading acked")
                await expect(readings).to_have_count(i + 1, timeout=LIVE_S)
                await expect(readings.nth(i)).to_contain_text(f"{litres} 升")
            await expect(readings.nth(1)).to_contain_text("流量 360 升/时")
            await expect(page.locator("#check-outcome")).to_have_text("✓ 检测通过：设备已启用。")
            await expect(page.locator("#install-state")).to_have_text("已启用")
            await shot(page, "install-meter-passed-390")
        await nobody_was_called(v)
