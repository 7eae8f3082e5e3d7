"""The whole "群众呼叫、书记必到" loop as the people in it live it, through real surfaces only.

The grid is imported with the `bidao` command; the resident's box talks MQTT to a real
broker; the secretary's phone is the fake phone network driven by the real twilio library;
the secretary reports on the page behind the signed link in the SMS, over real HTTP; what
officials and operators read comes from `bidao ticket` and `bidao report` as subprocesses.
Nothing here calls the gateway's domain or store: the gateway runs in-process only so that
its clock is the test's.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from firmware_protocol import IndicationKind, Key
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.village import Village, open_village
from tests.gateway.support import wait_for

SECRETARY_PHONE = "13800000001"
CHIEF_PHONE = "13800000004"
DAUGHTER_PHONE = "+447700900123"
LINK = re.compile(r"http://127\.0\.0\.1:\d+/r/[0-9A-Za-z._-]+")


@pytest.fixture
def clock() -> ManualClock:
    """The gateway's clock, started at the real time so the report's "last day" holds it."""
    return ManualClock(start=time.time())


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    async with open_village(tmp_path, broker, clock) as v:
        yield v


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

    await wait_for(lambda: accepted_sms() is not None, timeout=60, what="how-to-report SMS")
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
