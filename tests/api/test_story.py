"""The whole "群众呼叫、书记必到" loop as the people in it live it, through real surfaces only.

The grid is imported with the `bidao` command; the resident's box talks MQTT to a real
broker; the secretary's phone is the fake phone network driven by the real twilio library;
the secretary reports on the page behind the signed link in the SMS, over real HTTP; what
officials and operators read comes from `bidao ticket` and `bidao report` as subprocesses.
Nothing here calls the gateway's domain or store: the gateway runs in-process only so that
its clock is the test's.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.app import http_component
from api.runner import build_provider
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork
from firmware_protocol import IndicationKind, Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY, CONTACTS_CSV, HOUSEHOLDS_CSV, UNITS_CSV
from tests.gateway.support import bidao, gateway_settings, wait_for

ACCOUNT = "AC" + "5707" * 8
TOKEN = "story-network-auth-token"
SECRETARY_PHONE = "13800000001"
CHIEF_PHONE = "13800000004"
DAUGHTER_PHONE = "+447700900123"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/r/[0-9A-Za-z._-]+")


@pytest.fixture
def clock() -> ManualClock:
    """The gateway's clock, started at the real time so the report's "last day" holds it."""
    return ManualClock(start=time.time())


@dataclass
class Village:
    gw: GatewayService
    phones: FakePhoneNetwork
    box: SimulatedDevice
    fleet: MqttFleet
    http: httpx.AsyncClient
    data_dir: Path
    clock: ManualClock

    async def cli(self, *argv: str) -> str:
        """The `bidao` command, as an operator or official runs it beside the gateway."""
        done = await asyncio.to_thread(bidao, self.data_dir, *argv)
        assert (done.returncode, done.stderr) == (0, ""), (argv, done.stderr)
        return done.stdout

    async def press(self, key: Key, *, long: bool = False) -> None:
        """The resident presses a key; returns once the box has its acknowledgement."""
        await self.fleet.send(BOX_ID, self.box.press(key, 1, long))
        await wait_for(lambda: not self.box.pending, timeout=20, what=f"{key.name} acked")

    async def box_hears(self, kind: IndicationKind) -> None:
        await wait_for(
            lambda: any(i.kind == kind for i in self.box.indications),
            timeout=20,
            what=f"the box told {kind.name}",
        )

    def sms(self, number: str) -> list[str]:
        return [r.body for r in self.phones.received(number) if r.kind == "sms"]

    async def sms_to(self, number: str, count: int) -> list[str]:
        await wait_for(lambda: len(self.sms(number)) >= count, timeout=20, what=f"SMS {number}")
        return self.sms(number)


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    port = free_loopback_port()
    public_url = f"http://127.0.0.1:{port}"
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        settings = gateway_settings(
            tmp_path,
            broker,
            http={"port": port},
            notify={
                "provider": "twilio",
                "public_url": public_url,
                "twilio_account_sid": ACCOUNT,
                "twilio_auth_token": TOKEN,
                "twilio_from": "+8657100000000",
                "twilio_api_base_url": phones.url,
                "bridge_to_resident": False,
            },
        )
        # The installer imports the village with the command, before the gateway starts.
        files = tmp_path / "files"
        files.mkdir()
        for kind, text in (
            ("units", UNITS_CSV),
            ("households", HOUSEHOLDS_CSV),
            ("contacts", CONTACTS_CSV),
        ):
            path = files / f"{kind}.csv"
            path.write_text(text, encoding="utf-8")
            done = await asyncio.to_thread(bidao, settings.data_dir, "import", kind, str(path))
            assert done.returncode == 0, done.stderr
        gw = GatewayService(settings, clock, build_provider(settings))
        gw.add_component("http", http_component(for_service(gw)))
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        async with gw, httpx.AsyncClient(base_url=public_url) as http:
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, what="HTTP server up")
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                yield Village(gw, phones, box, fleet, http, settings.data_dir, clock)
                await asyncio.to_thread(phones.wait_idle)


async def test_a_call_for_help_is_answered_visited_resolved_and_rated(village: Village) -> None:
    v = village
    # 张桂兰 presses green. The secretary's phone rings; he presses 1.
    await v.press(Key.GREEN_CALL)
    await v.box_hears(IndicationKind.HELPER_ON_THE_WAY)
    call = next(r for r in v.phones.received(SECRETARY_PHONE) if r.kind == "call")
    assert call.pressed == "1"

    # The SMS to the one who accepted tells him how to report, with his own link.
    def accepted_sms() -> str | None:
        return next((b for b in v.sms(SECRETARY_PHONE) if "您已接下工单1" in b), None)

    await wait_for(lambda: accepted_sms() is not None, timeout=20, what="how-to-report SMS")
    sms = accepted_sms()
    assert sms is not None
    links = LINK.findall(sms)
    assert len(links) == 1
    link = links[0]
    assert sms == (
        "【必到】您已接下工单1：张桂兰，桥元村三组12号，电话13912345678。"
        f"到达后请在老人的呼叫盒上长按绿键，记录您已到达；到达、办结或转交也可在此报告：{link}"
    )
    path = urllib.parse.urlsplit(link).path
    # (Each step waits for the daughter's SMS of the step before: two messages waiting for
    # the same phone at once go as one, which is right for phones and wrong for this story.)
    await v.sms_to(DAUGHTER_PHONE, 2)

    # Twelve minutes later, at the door, he holds the green key on her box: the box
    # confirms he has arrived.
    await v.clock.advance(12 * 60)
    await v.press(Key.GREEN_CALL, long=True)
    await v.box_hears(IndicationKind.HELPER_ARRIVED)
    await v.sms_to(DAUGHTER_PHONE, 3)

    # Twenty minutes later, on his phone's browser, the link shows her ticket and he marks
    # it resolved.
    await v.clock.advance(20 * 60)
    page = await v.http.get(path)
    assert page.status_code == 200
    assert "张桂兰" in page.text
    assert "桥元村三组12号" in page.text
    assert 'href="tel:13912345678"' in page.text
    assert 'value="resolve"' in page.text
    assert 'value="arrive"' not in page.text  # arrival is recorded already
    done = await v.http.post(
        path,
        data={"action": "resolve", "category": "ordinary", "note": "灯泡坏了，已换好"},
        follow_redirects=True,
    )
    assert done.status_code == 200
    assert "已解决" in done.text

    # The box asks her to rate it; she presses thumbs-up.
    await v.box_hears(IndicationKind.RESOLVED)
    await v.clock.advance(60)
    await v.press(Key.THUMBS_UP)

    # The operator's timeline tells the whole story with names, in order.
    timeline = await v.cli("ticket", "1")
    print(timeline)
    assert timeline.splitlines()[0].startswith("工单 ticket 1 · 已评价 rated")
    kinds = [
        label
        for label in ("接单 accepted：李书记", "到达 arrived：李书记", "已解决 resolved：李书记")
        if label in timeline
    ]
    assert len(kinds) == 3
    order = [timeline.index(label) for label in kinds]
    assert order == sorted(order)
    assert "到达 arrived：李书记（村书记 village secretary），经呼叫器按键 via " in timeline
    assert "灯泡坏了，已换好" in timeline
    assert "满意" in timeline

    # The official's report counts it closed and satisfied.
    report = await v.cli("report", "--days", "1")
    print(report)
    figures = report[report.index("二、") : report.index("接单和到场用时")]
    row = next(line for line in figures.splitlines() if line.strip().startswith("桥元村"))
    # 呼叫 已办结 办结率 已评价 满意率 差评 取消 上报 准时接单 准时到场 限时办结
    cells = ["1", "1", "100%", "1", "100%", "0", "0", "0", "100%", "100%", "100%"]
    assert row.split()[1:] == cells, row
    assert "其中一半在接单后 12分钟 内到场" in report

    # Her daughter in the city was told what her defaults say, in her language.
    daughter = await v.sms_to(DAUGHTER_PHONE, 4)
    assert daughter == [
        (
            "[Bidao] 张桂兰 just pressed the call key at home (桥元村三组12号); the village "
            "responders are being called. Ticket 1."
        ),
        (
            "[Bidao] 李书记 (phone 13800000001) has taken 张桂兰's call and is on the way to "
            "桥元村三组12号. Ticket 1."
        ),
        "[Bidao] 李书记 has arrived at 张桂兰's home (桥元村三组12号). Ticket 1.",
        "[Bidao] 张桂兰's call has been resolved (by 李书记). Ticket 1.",
    ]
    # Nobody who was told of the call was ever told not to go to a resident still waiting,
    # except the neighbour chief once the secretary had taken it.
    chief = v.sms(CHIEF_PHONE)
    assert chief[-1] == "【必到】工单1已由李书记接单，您无需前往。"
    assert not any("无需前往" in body for body in v.sms(SECRETARY_PHONE))
    # No key-safe code or health note ever reached the family.
    assert not any("4321" in body or "高血压" in body for body in daughter)
