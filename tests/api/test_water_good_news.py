"""Good news: 张桂兰's family who chose it hear, each day, when she first used water.

The family's choice is the contacts file's `notify` column, imported with `bidao import`
beside the running gateway. Her meter talks MQTT to a real broker, the phones are the fake
phone network, the clock is the test's. What was written for sending is read from the
outbox (written in the reading's own transaction, before the reading is acknowledged), so
"nothing" is a fact, not a wait; what arrives is read at the phones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alerts import Notification
from device_sim.device import SimulatedDevice
from firmware_protocol import Key
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.test_water_watch import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    METER_ID,
    METER_KEY,
    RESIDENT_PHONE,
    SECRETARY_PHONE,
    Home,
    yesterday_at,
)
from tests.api.village import open_village
from tests.gateway.grid import HOUSEHOLD
from tests.gateway.support import bidao

pytestmark = pytest.mark.timeout(300)  # a day and a half in half-hour steps over a broker

SON_PHONE = "13900000021"
NEPHEW_PHONE = "13900000022"
HEADER = "name,role,unit_code,household_code,phone,language,available_from,available_to,notify"
FAMILY_CSV = f"""{HEADER}
张小红,family,,{HOUSEHOLD},+447700900123,en,,,呼叫、接单、到达、办结、早安
张大明,family,,{HOUSEHOLD},{SON_PHONE},zh-CN,,,早安
张小军,family,,{HOUSEHOLD},{NEPHEW_PHONE},zh-CN,,,
"""
"""The daughter keeps the usual messages and adds the morning one; the son wants only the
morning one; the nephew keeps the defaults, which do not include it."""
TEMPLATE = "water_first_use_today"
HALF_HOUR = 30 * 60


@pytest.fixture
async def home(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[Home]:
    """Her home from 05:00 yesterday, her family's choices imported beside the gateway."""
    clock = ManualClock(start=yesterday_at(5))
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    async with open_village(tmp_path, broker, clock, devices=[(meter, HOUSEHOLD)]) as v:
        path = tmp_path / "family.csv"
        path.write_text(FAMILY_CSV, encoding="utf-8")
        done = await asyncio.to_thread(bidao, v.data_dir, "import", "contacts", str(path))
        assert done.returncode == 0, done.stderr
        v.phones.script(GRID_WORKER_PHONE).digits = ""
        v.phones.script(DAUGHTER_PHONE).digits = ""
        v.phones.script(SON_PHONE).digits = ""
        v.phones.script(NEPHEW_PHONE).digits = ""
        v.phones.script(RESIDENT_PHONE).digits = ""  # the "are you OK?" call goes unanswered
        h = Home(v)
        await h.reading()  # 05:00, the first reading: the watch starts
        await h.heartbeat()
        yield h


async def good_news(h: Home) -> list[tuple[str, str]]:
    """(recipient, time) of every first-use message written for sending, oldest first."""
    return [
        (n.recipient, n.params["first_use"])
        for n in await h.v.gw.store.outbox.notifications()
        if n.template == TEMPLATE
    ]


async def until(h: Home, hour: int, minute: int = 0, *, day: int = 0, early_s: float = 0.0) -> None:
    """Time passes to `hour:minute` (`day` days after yesterday; `early_s` before it), a
    reading each half hour."""
    target = yesterday_at(hour, minute) + day * 86400 - early_s
    while h.v.clock.now() < target:
        await h.v.clock.advance(min(HALF_HOUR, target - h.v.clock.now()))
        await h.reading()
        await h.heartbeat()


async def use_at(h: Home, hour: int, minute: int, *, day: int = 0) -> None:
    """She uses water at `hour:minute` (the meter reports the rise at once)."""
    await until(h, hour, minute, day=day, early_s=60)
    await h.use_water()  # a minute later: at hour:minute


async def test_the_family_who_chose_it_hear_of_the_first_use_once_a_day(home: Home) -> None:
    h, v = home, home.v
    # 05:31: up in the night; that is not the morning's first use (active hours from 06:00).
    await use_at(h, 5, 31)
    assert await good_news(h) == []

    # 07:12, the day's first use: the daughter (in English) and the son (in Chinese) hear it.
    await use_at(h, 7, 12)
    assert await good_news(h) == [(DAUGHTER_PHONE, "07:12"), (SON_PHONE, "07:12")]
    assert (await v.sms_to(DAUGHTER_PHONE, 1)) == [
        "[Bidao] Today's water: 张桂兰 (桥元村三组12号) first used water today at 07:12."
    ]
    assert (await v.sms_to(SON_PHONE, 1)) == [
        "【必到】今日用水：张桂兰（桥元村三组12号）家今天07:12第一次用水。"
    ]
    # The household's record says it too.
    shown = await v.cli("household", "show", HOUSEHOLD)
    assert "07:12  今天第一次用水 / today's first water use  07:12" in shown

    # Water again through the day, and at 02:10 in the night: no more good news today.
    for hour in (9, 11, 13, 15, 17, 19, 21):
        await use_at(h, hour, 5)
    await use_at(h, 2, 10, day=1)
    assert len(await good_news(h)) == 2

    # The next morning's first use at 06:40 is told again, with its own time.
    await use_at(h, 6, 40, day=1)
    await use_at(h, 8, 0, day=1)
    assert await good_news(h) == [
        (DAUGHTER_PHONE, "07:12"),
        (SON_PHONE, "07:12"),
        (DAUGHTER_PHONE, "06:40"),
        (SON_PHONE, "06:40"),
    ]
    assert (await v.sms_to(SON_PHONE, 2))[1] == (
        "【必到】今日用水：张桂兰（桥元村三组12号）家今天06:40第一次用水。"
    )
    # The nephew, who did not choose it, was told nothing; the worker neither.
    assert v.sms(NEPHEW_PHONE) == []
    assert not any(n.recipient == GRID_WORKER_PHONE for n in await _written(h))


async def test_no_good_news_on_a_day_a_no_water_alarm_was_open(home: Home) -> None:
    h, v = home, home.v
    # No water at all from 05:00: eight active hours at 14:00, "are you OK?", no answer,
    # then the alarm to the family and the worker.
    await until(h, 14, 30)
    assert (await v.sms_to(DAUGHTER_PHONE, 1))[0].startswith("[Bidao] Water alarm: 张桂兰")
    # At 15:07 she fills the kettle: the day's first use ends the alarm, and the all-clear
    # says so; no "today's water" message on top of it.
    await use_at(h, 15, 7)
    templates = [n.template for n in await _written(h) if n.recipient == DAUGHTER_PHONE]
    assert "no_water_all_clear" in templates
    assert await good_news(h) == []

    # Supper at 19:40 and the next morning at 07:30: nothing was open that day, so its
    # first use is told again.
    await use_at(h, 19, 40)
    await use_at(h, 7, 30, day=1)
    assert await good_news(h) == [(DAUGHTER_PHONE, "07:30"), (SON_PHONE, "07:30")]


async def _written(h: Home) -> list[Notification]:
    return await h.v.gw.store.outbox.notifications()


@pytest.fixture
async def throttled(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[Home]:
    """Her home, where a number gets at most one message in twelve hours (the rest merged)."""
    clock = ManualClock(start=yesterday_at(5))
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    throttle = {"throttle_per_window": 1, "throttle_window_s": 12 * 3600.0}
    async with open_village(
        tmp_path, broker, clock, devices=[(meter, HOUSEHOLD)], notify_more=throttle
    ) as v:
        path = tmp_path / "family.csv"
        path.write_text(FAMILY_CSV, encoding="utf-8")
        done = await asyncio.to_thread(bidao, v.data_dir, "import", "contacts", str(path))
        assert done.returncode == 0, done.stderr
        for phone in (GRID_WORKER_PHONE, DAUGHTER_PHONE, SON_PHONE, NEPHEW_PHONE, RESIDENT_PHONE):
            v.phones.script(phone).digits = ""
        v.phones.script(SECRETARY_PHONE).digits = ""
        h = Home(v)
        await h.reading()
        await h.heartbeat()
        yield h


async def test_held_back_by_the_throttle_it_goes_merged_with_the_others(throttled: Home) -> None:
    h, v = throttled, throttled.v
    # 13:40, the day's first use: told at once (the daughter's one SMS in twelve hours).
    await use_at(h, 13, 40)
    # Then nothing: asked at 21:40, the alarm at 21:50 (urgent: never held back).
    await until(h, 22, 9)
    told = await v.sms_to(DAUGHTER_PHONE, 2)
    assert told[0] == (
        "[Bidao] Today's water: 张桂兰 (桥元村三组12号) first used water today at 13:40."
    )
    assert told[1].startswith("[Bidao] Water alarm: 张桂兰")
    # A key at 22:10 clears it: the all-clear waits, over the limit. So does the next
    # morning's first use at 07:12; once the window allows, both go as one message.
    # (Twelve hours of one message each: the limit is set so for the story.)
    await v.clock.advance(60)
    await v.press(Key.THUMBS_DOWN)
    await use_at(h, 7, 12, day=1)
    assert len(v.sms(DAUGHTER_PHONE)) == 2
    await until(h, 11, 0, day=1)  # twelve hours after the alarm SMS went (by about 22:10)
    merged = (await v.sms_to(DAUGHTER_PHONE, 3))[2]
    assert merged.startswith("[Bidao] 2 reminders: ")
    assert "Today's water: 张桂兰 (桥元村三组12号) first used water today at 07:12" in merged
    assert "pressed a key on the box at 22:10" in merged
    assert len(v.sms(DAUGHTER_PHONE)) == 3
