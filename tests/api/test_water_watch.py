"""The water watch for 张桂兰, who lives alone, as her family and the community worker live it.

Her meter and her call box talk MQTT to a real broker; the phones are the fake phone network
driven by the real twilio library; what the operator reads comes from `bidao` as a
subprocess. The gateway's clock is the test's: hours pass in a moment, and the meter sends
a reading every quarter of an hour as a real one does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from device_sim.device import SimulatedDevice
from firmware_protocol import IndicationKind, Key, MeterStatus
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.village import Village, open_village
from tests.gateway.grid import HOUSEHOLD
from tests.gateway.support import wait_for

# Hang guard only: a story passes hours in quarter-hour steps, each a reading and a
# heartbeat acknowledged over the broker; on a loaded machine that takes minutes.
pytestmark = pytest.mark.timeout(300)

ZONE = ZoneInfo("Asia/Shanghai")
NO_STATUS = MeterStatus(0)
METER_ID = "b1da0000000000a1"
METER_KEY = bytes(range(100, 116))
GRID_WORKER_PHONE = "13800000003"
SECRETARY_PHONE = "13800000001"
RESIDENT_PHONE = "13912345678"
MENU = (
    "平安请按1；不在家请按2，我们会登记您外出3天，这期间不再询问，您回家用水后自动恢复；"
    "重听请按9。如果10分钟内没有回应，我们会请人上门看您。"
)
DAUGHTER_PHONE = "+447700900123"
STEP_S = 15 * 60
"""The meter reports every quarter of an hour (its heartbeat setting is 900 s)."""


def yesterday_at(hour: int, minute: int = 0) -> float:
    """Yesterday's local time: the story happened, and `bidao report --days 30` holds it."""
    day = datetime.now(ZONE).date() - timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).timestamp()


class Home:
    """张桂兰's home: her meter's counter, her box, and the village around them."""

    def __init__(self, village: Village) -> None:
        self.v = village
        self.meter = village.devices[METER_ID]
        self.litres = 1000

    async def reading(self, *, status: MeterStatus = NO_STATUS, flow_lph: int = 0) -> None:
        """The meter sends its counter; returns once the gateway has acknowledged it."""
        await self.v.fleet.send(METER_ID, self.meter.water_reading(self.litres, flow_lph, status))
        await wait_for(lambda: not self.meter.pending, timeout=60, what="reading acked")

    async def heartbeat(self) -> None:
        await self.v.fleet.send(self.v.box.device_id, self.v.box.heartbeat())
        await wait_for(lambda: not self.v.box.pending, timeout=60, what="box heartbeat acked")

    async def passes(self, seconds: float, *, use_l: int = 0, **reading: object) -> None:
        """Time passes; each quarter of an hour the meter reports (using `use_l` litres)."""
        left = seconds
        while left > 0:
            step = min(STEP_S, left)
            await self.v.clock.advance(step)
            left -= step
            self.litres += use_l
            await self.reading(**reading)  # type: ignore[arg-type]
            await self.heartbeat()

    async def use_water(self, litres: int = 12) -> None:
        """A minute later she runs the tap (a meter reports use when it sees it)."""
        await self.v.clock.advance(60)
        self.litres += litres
        await self.reading()

    def heard(self, number: str = RESIDENT_PHONE) -> list[str]:
        """What was said on the calls to `number`, in order."""
        return [
            line.text
            for r in self.v.phones.received(number)
            if r.kind == "call"
            for line in r.transcript
            if line.kind == "say"
        ]

    def calls(self, number: str) -> list[str]:
        return [" ".join(r.spoken) for r in self.v.phones.received(number) if r.kind == "call"]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=yesterday_at(5))


@asynccontextmanager
async def watched_home(
    tmp_path: Path,
    broker: MosquittoBroker,
    clock: ManualClock,
    *,
    silent: Sequence[str] = (RESIDENT_PHONE,),
    **overrides: Any,
) -> AsyncIterator[Home]:
    """Her home with its meter and box online and the first reading in (the watch starts);
    the `silent` phones ring but nobody presses a key; `overrides` are more settings."""
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    async with open_village(
        tmp_path, broker, clock, devices=[(meter, HOUSEHOLD)], **overrides
    ) as v:
        for phone in silent:
            v.phones.script(phone).digits = ""
        h = Home(v)
        await h.reading()
        await h.heartbeat()
        yield h


@pytest.fixture
async def home(tmp_path: Path, broker: MosquittoBroker, clock: ManualClock) -> AsyncIterator[Home]:
    # Her own phone rings with "are you OK?" too; she picks it up only where a story says so
    # (unanswered, it is the box's question alone). The first reading comes at 05:00.
    async with watched_home(tmp_path, broker, clock) as h:
        yield h


async def eight_quiet_hours_after_breakfast(h: Home) -> None:
    """She uses water at 06:30, then nothing: at 14:30 eight active hours have passed."""
    await h.passes(89 * 60)
    await h.use_water()
    await h.passes(8 * 3600)
    await h.v.box_hears(IndicationKind.ARE_YOU_OK)


async def test_eight_quiet_hours_ask_her_then_alarm_the_family_and_worker_then_all_clear(
    home: Home,
) -> None:
    h, v = home, home.v
    # Nobody answers the phone with a key: the alarm stays open until water flows again.
    v.phones.script(GRID_WORKER_PHONE).digits = ""
    v.phones.script(DAUGHTER_PHONE).digits = ""
    await eight_quiet_hours_after_breakfast(h)
    assert v.sms(GRID_WORKER_PHONE) == []
    assert v.sms(DAUGHTER_PHONE) == []

    # Ten minutes without a thumbs-up: the daughter and the community worker are told.
    await h.passes(15 * 60)
    worker = await v.sms_to(GRID_WORKER_PHONE, 1)
    assert worker == [
        (
            "【必到】用水预警：张桂兰（桥元村三组12号，电话13912345678）家从06:30到14:40，"
            "除夜间外已8.2小时没有用水，也没有按呼叫盒。请马上打电话或上门查看。工单1。"
        )
    ]
    daughter = await v.sms_to(DAUGHTER_PHONE, 1)
    assert daughter == [
        (
            "[Bidao] Water alarm: 张桂兰 (桥元村三组12号, 13912345678) has used no water, "
            "pressed no key from 06:30 to 14:40: 8.2 h, nights not counted. Call or visit now. "
            "Ticket 1."
        )
    ]
    await wait_for(lambda: h.calls(GRID_WORKER_PHONE) != [], timeout=60, what="worker called")
    await wait_for(lambda: h.calls(DAUGHTER_PHONE) != [], timeout=60, what="daughter called")
    listing = await v.cli("tickets")
    assert "张桂兰" in listing

    # Nobody took it within five minutes: it went up the village's chain, to the secretary,
    # who pressed 1 ("I will check"); the worker hears that he has it.
    secretary = await v.sms_to(SECRETARY_PHONE, 3)
    assert secretary[0] == (
        "【必到】张桂兰（桥元村三组12号，电话13912345678）家长时间没有用水的预警已发出5分钟，"
        "仍无人接手，现转由您查看。工单1。"
    )
    how_to_report = (
        "【必到】工单1（张桂兰家的用水预警）由您查看：桥元村三组12号，电话13912345678。"
        "到达、办结或转交可在此报告：http://127.0.0.1:"
    )
    assert sum(m.startswith(how_to_report) for m in secretary) == 1
    access = "【必到】工单1：张桂兰家钥匙盒密码4321；健康提示：高血压。仅供上门使用，请勿转发。"
    assert access in secretary
    await v.sms_to(GRID_WORKER_PHONE, 2)
    assert v.sms(GRID_WORKER_PHONE)[1] == "【必到】工单1已由李书记接单，您无需前往。"
    await v.sms_to(DAUGHTER_PHONE, 2)
    assert v.sms(DAUGHTER_PHONE)[1] == (
        "[Bidao] 李书记 (phone 13800000001) has taken the water alarm for 张桂兰 and is going "
        "to 桥元村三组12号 to check. Ticket 1."
    )

    # At 15:07 she fills the kettle: everyone alerted hears it, and the ticket is resolved.
    await v.clock.advance(21 * 60)
    await h.use_water()
    all_clear = "【必到】张桂兰（桥元村三组12号）家15:07又用上水了，用水预警解除。工单1。"
    assert (await v.sms_to(GRID_WORKER_PHONE, 3))[2] == all_clear
    assert (await v.sms_to(SECRETARY_PHONE, 4))[3] == all_clear
    assert (await v.sms_to(DAUGHTER_PHONE, 3))[2] == (
        "[Bidao] Water is being used again at 张桂兰's home (桥元村三组12号) at 15:07: "
        "the water alarm is over. Ticket 1."
    )
    timeline = await v.cli("ticket", "1")
    assert "已解决 resolved" in timeline.splitlines()[0]


async def test_a_thumbs_up_after_are_you_ok_cancels_the_alarm(home: Home) -> None:
    h, v = home, home.v
    await eight_quiet_hours_after_breakfast(h)
    await v.clock.advance(3 * 60)
    await v.press(Key.THUMBS_UP)
    await v.box_hears(IndicationKind.ANSWER_NOTED)
    await h.passes(3 * 3600)
    assert v.sms(GRID_WORKER_PHONE) == []
    assert v.sms(DAUGHTER_PHONE) == []
    assert "张桂兰" not in await v.cli("tickets")


async def test_she_answers_are_you_ok_on_her_own_phone(home: Home) -> None:
    h, v = home, home.v
    v.phones.script(RESIDENT_PHONE).digits = "1"
    await eight_quiet_hours_after_breakfast(h)
    thanked = "谢谢您，已经记下您平安。"
    await wait_for(lambda: thanked in h.heard(), timeout=60, what="her answer taken")
    # The question in words that are true, what to press, and the thanks after she pressed 1.
    assert h.heard() == [
        (
            "您好，这里是必到平安服务，给张桂兰打电话。您家从06:30到现在已经8小时没有用水"
            "（夜里不算）。您平安吗？"
        ),
        MENU,
        thanked,
    ]
    # Her answer counts as thumbs-up on the box would: nobody is alarmed.
    await h.passes(3 * 3600)
    assert v.sms(GRID_WORKER_PHONE) == []
    assert v.sms(DAUGHTER_PHONE) == []
    assert "张桂兰" not in await v.cli("tickets")


async def test_away_from_home_she_presses_2_and_is_not_asked_again_until_back(
    home: Home,
) -> None:
    h, v = home, home.v
    v.phones.script(RESIDENT_PHONE).digits = "2"  # at her son's in town
    await eight_quiet_hours_after_breakfast(h)
    noted = "好的，已登记您外出3天。回家用水后会自动恢复看护，一路平安。"
    await wait_for(lambda: noted in h.heard(), timeout=60, what="away noted")
    # A day and a half with no water at home: nobody is asked again, nobody is alarmed.
    await h.passes(36 * 3600)
    assert len(v.phones.received(RESIDENT_PHONE)) == 1
    assert sum(i.kind == IndicationKind.ARE_YOU_OK for i in v.box.indications) == 1
    assert v.sms(GRID_WORKER_PHONE) == []
    assert v.sms(DAUGHTER_PHONE) == []
    assert "张桂兰" not in await v.cli("tickets")


async def test_a_whole_night_without_water_raises_nothing(home: Home) -> None:
    h, v = home, home.v
    # Water now and then all day until 21:52, then nothing until 07:07: over nine hours,
    # of which only 75 minutes in active hours.
    for _ in range(22):
        await h.passes(45 * 60)
        await h.use_water()
    await h.passes(9 * 3600 + 15 * 60)
    assert not any(i.kind == IndicationKind.ARE_YOU_OK for i in v.box.indications)
    assert v.sms(GRID_WORKER_PHONE) == []
    assert v.sms(DAUGHTER_PHONE) == []


async def test_water_running_for_two_hours_is_a_leak_alarm(home: Home) -> None:
    h, v = home, home.v
    v.phones.script(GRID_WORKER_PHONE).digits = ""
    v.phones.script(DAUGHTER_PHONE).digits = ""
    # From 09:00 the counter rises at every reading: a tap left open, or a fall in the shower.
    await h.passes(4 * 3600)
    await h.passes(2 * 3600 + STEP_S, use_l=40)
    worker = await v.sms_to(GRID_WORKER_PHONE, 1)
    assert worker[0] == (
        "【必到】用水预警：张桂兰（桥元村三组12号，电话13912345678）家的水表从09:15起已连续"
        "2小时不停走水，可能漏水，也可能有人在浴室摔倒。请马上打电话或上门查看。工单1。"
    )
    await v.sms_to(DAUGHTER_PHONE, 1)
    # The tap is closed: the next reading without a rise clears it.
    await h.passes(STEP_S)
    assert (await v.sms_to(GRID_WORKER_PHONE, 2))[1] == (
        "【必到】张桂兰（桥元村三组12号）家的水表11:30停止走水，连续用水预警解除。工单1。"
    )


async def test_a_replaced_meter_counting_from_zero_is_neither_use_nor_alarm(home: Home) -> None:
    h, v = home, home.v
    await h.passes(89 * 60)
    await h.use_water()  # 06:30
    # At 12:00 the installer replaces the meter: the new one counts from 0. Its first reading
    # is no use (the counter went down) and no silence either: the quiet clock restarts.
    await h.passes(5 * 3600 + 30 * 60)
    h.litres = 0
    await h.passes(3 * 3600)
    # 14:30 is eight active hours after her last use, but the replaced meter's readings only
    # cover the time since 12:00: nothing is asked yet.
    assert not any(i.kind == IndicationKind.ARE_YOU_OK for i in v.box.indications)
    assert v.sms(GRID_WORKER_PHONE) == []
    assert v.sms(DAUGHTER_PHONE) == []
