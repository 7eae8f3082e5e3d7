"""Away mode and the answer window, as 张桂兰's family, secretary and box live them.

The secretary marks her home away with `bidao household away` (a subprocess beside the
running gateway, which applies the request within `water.requests_poll_s`); she marks it
herself with a long thumbs-up on her box. Her meter and box talk MQTT to a real broker; the
phones are the fake phone network. The gateway's clock is the test's; the `bidao` command
reads the real clock, so stories whose return time the command checks start today.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from firmware_protocol import IndicationKind, Key
from firmware_protocol.indications import heard
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.test_water_watch import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    METER_ID,
    METER_KEY,
    RESIDENT_PHONE,
    ZONE,
    Home,
    eight_quiet_hours_after_breakfast,
    yesterday_at,
)
from tests.api.village import open_village
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.support import bidao, wait_for

pytestmark = pytest.mark.timeout(300)  # stories of a day or two, with the command run often

HALF_HOUR = 30 * 60
TODAY = datetime.now(ZONE).date()
"""Read once, with TOMORROW: a run that crosses midnight keeps one day for both."""
TOMORROW = (TODAY + timedelta(days=1)).isoformat()


def today_at(hour: int, minute: int = 0) -> float:
    day = TODAY
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).timestamp()


@pytest.fixture
async def home(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[Home]:
    """Her home from 05:00 yesterday (nothing here asks the command about the time)."""
    clock = ManualClock(start=yesterday_at(5))
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    async with open_village(tmp_path, broker, clock, devices=[(meter, HOUSEHOLD)]) as v:
        # Her own phone rings with "are you OK?" too; unanswered here, so the stories are
        # about her box alone (an answer by phone raced the clock and could cancel the alarm).
        v.phones.script(RESIDENT_PHONE).digits = ""
        h = Home(v)
        await h.reading()
        await h.heartbeat()
        yield h


@pytest.fixture
async def home_today(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[Home]:
    """Her home from 05:00 today: a return time tomorrow is in the future for the command."""
    clock = ManualClock(start=today_at(5))
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    async with open_village(tmp_path, broker, clock, devices=[(meter, HOUSEHOLD)]) as v:
        # Her own phone rings with "are you OK?" too; unanswered here, so the stories are
        # about her box alone (an answer by phone raced the clock and could cancel the alarm).
        v.phones.script(RESIDENT_PHONE).digits = ""
        h = Home(v)
        await h.reading()
        await h.heartbeat()
        yield h


async def passes(h: Home, seconds: float, *, use_l: int = 0) -> None:
    """Time passes with a reading every half hour (within `max_reading_gap_s`)."""
    left = seconds
    while left > 0:
        step = min(HALF_HOUR, left)
        await h.v.clock.advance(step)
        left -= step
        h.litres += use_l
        await h.reading()
        await h.heartbeat()


async def applied(h: Home, count: int) -> None:
    """The running gateway applies the queued requests at its next poll."""
    await h.v.clock.advance(h.v.gw.settings.water.requests_poll_s)
    await wait_for(
        lambda: h.v.gw.water.requests_applied >= count, timeout=20, what="request applied"
    )


def asked(h: Home) -> bool:
    return any(i.kind == IndicationKind.ARE_YOU_OK for i in h.v.box.indications)


async def test_away_until_tomorrow_then_the_family_is_reminded(home_today: Home) -> None:
    h, v = home_today, home_today.v
    await h.passes(89 * 60)
    await h.use_water()  # 06:30
    await passes(h, HALF_HOUR)  # 07:00: her daughter phones the secretary: she is at mine
    said = await v.cli(
        "household", "away", HOUSEHOLD, "--until", f"{TOMORROW} 10:00", "--by", "张小红"
    )
    assert said.splitlines() == [
        (
            f"已登记：张桂兰家（{HOUSEHOLD}）外出至 {TOMORROW} 10:00。"
            "在此之前家里不用水也不会报警；到时仍没有用水，会提醒家属。"
        ),
        (
            f"Marked away: 张桂兰's home ({HOUSEHOLD}) until {TOMORROW} 10:00. No alarm for no "
            "water until then; if no water is used by then, the family is reminded."
        ),
        "正在运行的网关最迟 2 秒内生效。",
        "A running gateway applies it within 2 s.",
    ]
    await applied(h, 1)
    shown = await v.cli("household", "show", HOUSEHOLD)
    assert f"状态：外出至 {TOMORROW} 10:00" in shown
    assert f"Phase: away until {TOMORROW} 10:00" in shown
    assert "登记外出 / marked away" in shown

    # 27 hours without water, many of them active: nothing is asked, nobody is alarmed.
    await passes(h, 27 * 3600)
    assert not asked(h)
    assert v.sms(DAUGHTER_PHONE) == []
    assert v.sms(GRID_WORKER_PHONE) == []

    # 10:00 tomorrow she is not back, and by 12:00 still no water: her daughter is reminded.
    await passes(h, 2 * 3600 + HALF_HOUR)
    assert await v.sms_to(DAUGHTER_PHONE, 1) == [
        (
            "[Bidao] 张桂兰 (桥元村三组12号) was away until 10:00; by 12:00 no water is used at "
            "home. Please check they are back safely, or ask the secretary to mark them away again."
        )
    ]
    assert v.sms(GRID_WORKER_PHONE) == []
    assert not asked(h)
    assert "提醒家属：外出期满仍未用水" in await v.cli("household", "show", HOUSEHOLD)


async def test_water_after_the_leaving_ends_away_early(home_today: Home) -> None:
    h, v = home_today, home_today.v
    await h.passes(89 * 60)
    await h.use_water()  # 06:30
    await passes(h, HALF_HOUR)
    await v.cli("household", "away", HOUSEHOLD, "--until", f"{TOMORROW} 18:00")
    await applied(h, 1)
    away_at = v.clock.now()
    # She flushes before leaving: within the settle time that is the leaving, not the return.
    await h.use_water()
    await passes(h, 2 * 3600)
    # She is back early and fills the kettle: away mode is over, the watch runs again.
    await h.use_water()
    back = v.clock.now()
    assert back - away_at > v.gw.settings.water.away_settle_s
    shown = await v.cli("household", "show", HOUSEHOLD)
    assert "状态：正常看护" in shown
    assert "家里又用水，外出结束 / water used again: away mode over" in shown
    # Eight quiet active hours later she is asked, as on any day.
    await passes(h, 8 * 3600)
    await v.box_hears(IndicationKind.ARE_YOU_OK)


async def test_a_long_thumbs_up_marks_the_home_away_and_another_ends_it(home: Home) -> None:
    h, v = home, home.v
    await h.passes(89 * 60)
    await h.use_water()  # 06:30
    await passes(h, HALF_HOUR)
    # 07:00: she leaves for her son's and holds thumbs-up on the way out.
    await v.press(Key.THUMBS_UP, long=True)
    await v.box_hears(IndicationKind.AWAY_NOTED)
    noted = next(i for i in v.box.indications if i.kind == IndicationKind.AWAY_NOTED)
    said = heard(noted)
    assert said is not None
    assert said.zh == (
        "已记下您外出。24小时内家里不用水，也不会报警。提前回来，请再长按大拇指向上键。"
    )
    assert said.en == (
        "Noted: you are away. For 24 hours, no alarm is raised if no water is used at home. "
        "If you come back sooner, press and hold thumbs-up again."
    )
    # It is true: ten quiet active hours and nothing is asked, nobody alarmed.
    await passes(h, 10 * 3600)
    assert not asked(h)
    assert v.sms(DAUGHTER_PHONE) == []
    assert v.sms(GRID_WORKER_PHONE) == []
    tomorrow_7 = datetime.fromtimestamp(yesterday_at(7) + 86400, ZONE).strftime("%Y-%m-%d")
    assert f"状态：外出至 {tomorrow_7} 07:00" in await v.cli("household", "show", HOUSEHOLD)
    # The press was no rating: no "nothing to rate" was said.
    assert not any(i.kind == IndicationKind.NOTHING_TO_RATE for i in v.box.indications)

    # 17:00 she is back early and holds thumbs-up again: the watch is on again.
    await v.press(Key.THUMBS_UP, long=True)
    await v.box_hears(IndicationKind.AWAY_ENDED)
    ended = heard(next(i for i in v.box.indications if i.kind == IndicationKind.AWAY_ENDED))
    assert ended is not None
    assert ended.zh == "欢迎回家，用水看护已恢复。"
    assert "状态：正常看护" in await v.cli("household", "show", HOUSEHOLD)


async def test_away_cleared_by_the_secretary(home_today: Home) -> None:
    h, v = home_today, home_today.v
    await h.passes(89 * 60)
    await h.use_water()
    await v.cli("household", "away", HOUSEHOLD, "--until", TOMORROW)
    await applied(h, 1)
    assert f"外出至 {TOMORROW} 12:00" in await v.cli("household", "show", HOUSEHOLD)
    said = await v.cli("household", "away", HOUSEHOLD, "--clear")
    assert said.splitlines()[:2] == [
        f"已取消：张桂兰家（{HOUSEHOLD}）的外出登记，用水看护恢复。",
        f"Away mode ended: 张桂兰's home ({HOUSEHOLD}) is watched again.",
    ]
    await applied(h, 2)
    shown = await v.cli("household", "show", HOUSEHOLD)
    assert "状态：正常看护" in shown
    assert "取消外出 / away mode ended by hand" in shown


async def test_plain_refusals(home: Home) -> None:
    v = home.v

    async def refused(*argv: str) -> str:
        done = await asyncio.to_thread(bidao, v.data_dir, "household", *argv)
        assert done.returncode == 2, (argv, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stderr

    assert await refused("away", "999-nope", "--until", TOMORROW) == (
        "错误：住户 999-nope 不存在，请检查住户编码。\n"
        "error: There is no household 999-nope; check the household code.\n"
    )
    yesterday = (datetime.now(ZONE).date() - timedelta(days=1)).isoformat()
    assert await refused("away", HOUSEHOLD, "--until", f"{yesterday} 08:00") == (
        f"错误：返回时间 {yesterday} 08:00 已经过去，未做任何更改。\n"
        f"error: The return time {yesterday} 08:00 has passed. Nothing was changed.\n"
    )
    # 李德福 lives alone, but his home has no water meter.
    assert await refused("away", "341504-101-001-0002", "--until", TOMORROW) == (
        "错误：住户 341504-101-001-0002 不在用水看护之列：不看护（没有水表）。未做任何更改。\n"
        "error: Household 341504-101-001-0002 is not watched: not watched (no water meter). "
        "Nothing was changed.\n"
    )
    assert "没有登记外出" in await refused("away", HOUSEHOLD, "--clear")
    assert "看不懂时间" in await refused("away", HOUSEHOLD, "--until", "next tuesday")
    assert "--until" in await refused("away", HOUSEHOLD)
    shown = await v.cli("household", "show", "341504-101-001-0002")
    assert (
        shown.splitlines()[0] == "住户 341504-101-001-0002（李德福）的用水看护：不看护（没有水表）"
    )


async def test_thumbs_up_at_nine_minutes_answers(home: Home) -> None:
    h, v = home, home.v
    await eight_quiet_hours_after_breakfast(h)
    watch = await v.gw.store.water.watch(HOUSEHOLD)
    assert watch is not None
    assert watch.asked_at is not None
    await v.clock.advance(watch.asked_at + 9 * 60 - v.clock.now())
    await v.press(Key.THUMBS_UP)
    await v.box_hears(IndicationKind.ANSWER_NOTED)
    await h.passes(3600)
    assert v.sms(DAUGHTER_PHONE) == []
    assert v.sms(GRID_WORKER_PHONE) == []


async def test_thumbs_up_at_eleven_minutes_is_no_answer(home: Home) -> None:
    h, v = home, home.v
    v.phones.script(GRID_WORKER_PHONE).digits = ""
    v.phones.script(DAUGHTER_PHONE).digits = ""
    await eight_quiet_hours_after_breakfast(h)
    watch = await v.gw.store.water.watch(HOUSEHOLD)
    assert watch is not None
    assert watch.asked_at is not None
    await v.clock.advance(watch.asked_at + 11 * 60 - v.clock.now())
    await v.sms_to(DAUGHTER_PHONE, 1)  # ten minutes passed: the alarm went out
    await v.press(Key.THUMBS_UP)
    # Too late to be the answer, and no "answer noted": the press clears the alarm as a key.
    await wait_for(
        lambda: len(v.sms(DAUGHTER_PHONE)) >= 2, timeout=60, what="all-clear to the daughter"
    )
    assert not any(i.kind == IndicationKind.ANSWER_NOTED for i in v.box.indications)


async def test_a_meter_added_later_is_watched_without_a_restart(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    clock = ManualClock(start=yesterday_at(5))
    async with open_village(tmp_path, broker, clock) as v:
        # Her box is pressed before her home has a meter: the watch looks, and does not watch.
        await v.press(Key.THUMBS_DOWN)
        await v.box_hears(IndicationKind.NOTHING_TO_RATE)
        meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
        await v.cli(
            "device", "add", METER_ID, "--kind", "water_meter", "--key", METER_KEY.hex(),
            "--household", HOUSEHOLD,
        )  # fmt: skip
        await clock.advance(v.gw.settings.supervision.changes_poll_s)
        await wait_for(lambda: v.gw.registry.cached(METER_ID) is not None, what="meter seen")
        v.fleet.add(meter)
        v.devices[METER_ID] = meter
        h = Home(v)
        await h.reading()
        await h.heartbeat()
        assert (await v.gw.store.water.watch(HOUSEHOLD)) is not None  # watched now
        await h.passes(89 * 60)
        await h.use_water()
        await h.passes(8 * 3600)
        await v.box_hears(IndicationKind.ARE_YOU_OK)
        assert BOX_ID in v.devices
