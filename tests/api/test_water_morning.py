"""The water watch's morning check (`water.morning_check`), as 张桂兰's family lives it.

Her meter and her call box talk MQTT to a real broker; the phones are the fake phone network
driven by the real twilio library; the timeline comes from `bidao ticket` as a subprocess.
She learned her routine in one day here (`learn_min_days` 1, rank 1): she first used water
at 06:30. The next morning no water comes: at 08:00 (06:30 + 1.5 h) she is asked, in words
that say why, long before the window of quiet in active hours would close (13:00).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from firmware_protocol import IndicationKind
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.test_water_watch import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    MENU,
    RESIDENT_PHONE,
    ZONE,
    Home,
    watched_home,
    yesterday_at,
)
from tests.gateway.support import wait_for

pytestmark = pytest.mark.timeout(600)

DAY = 86400.0


@pytest.fixture
async def home(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[Home]:
    """Her home from 05:00 the day before yesterday, with the morning check on."""
    clock = ManualClock(start=yesterday_at(5) - DAY)
    water = {"morning_check": True, "learn_min_days": 1, "learn_rank": 1}
    silent = (RESIDENT_PHONE, DAUGHTER_PHONE, GRID_WORKER_PHONE)
    async with watched_home(tmp_path, broker, clock, silent=silent, water=water) as h:
        yield h


async def test_no_water_by_her_usual_time_asks_her_then_tells_family_why(home: Home) -> None:
    h, v = home, home.v
    # Her day: water at 06:30, 13:00 and 20:00 (no quiet stretch reaches the fixed 8 h).
    for hour, minute in ((6, 29), (12, 59), (19, 59)):
        await h.passes(_until(v.clock.now(), hour, minute))
        await h.use_water()
    # The night, and a morning without water: nothing until 08:00.
    await h.passes(_until(v.clock.now(), 7, 45))
    assert not any(i.kind == IndicationKind.ARE_YOU_OK for i in v.box.indications)
    assert v.phones.received(RESIDENT_PHONE) == []
    await h.passes(15 * 60)  # 08:00
    await v.box_hears(IndicationKind.ARE_YOU_OK)
    question = (
        "您好，这里是必到平安服务，给张桂兰打电话。您平时06:30前就会用水，"
        "今天到现在家里还没有用水。您平安吗？"
    )
    await wait_for(lambda: question in h.heard(), timeout=60, what="the morning question")
    assert h.heard()[:2] == [question, MENU]
    assert v.sms(GRID_WORKER_PHONE) == []

    # No thumbs-up, no 1 on the phone in ten minutes: the family and the worker are told why.
    await h.passes(15 * 60)
    since = datetime.fromtimestamp(yesterday_at(20) - DAY, ZONE).strftime("%m-%d %H:%M")
    worker = await v.sms_to(GRID_WORKER_PHONE, 1)
    assert worker[0] == (
        "【必到】用水预警：张桂兰（桥元村三组12号，电话13912345678）家平时06:30前就会用水，"
        f"今天到08:10还没有用水：从{since}起没有用水，也没有按呼叫盒。请马上打电话或上门查看。"
        "工单1。"
    )
    daughter = await v.sms_to(DAUGHTER_PHONE, 1)
    assert daughter[0] == (
        "[Bidao] Water alarm: 张桂兰 (桥元村三组12号, 13912345678) usually uses water by "
        f"06:30; today none by 08:10, and no water or key since {since}. Call or visit now. "
        "Ticket 1."
    )
    timeline = await v.cli("ticket", "1")
    assert "用水预警：过了平时用水的时间还没有用水" in timeline

    # Nobody took it in five minutes; it went up the chain and 李书记 took it.
    taken = "【必到】工单1已由李书记接单，您无需前往。"
    assert (await v.sms_to(GRID_WORKER_PHONE, 2))[1] == taken
    # At 08:31 she fills the kettle: the alarm is over, and everyone alerted hears it.
    await v.clock.advance(15 * 60)
    await h.use_water()
    all_clear = "【必到】张桂兰（桥元村三组12号）家08:31又用上水了，用水预警解除。工单1。"
    assert (await v.sms_to(GRID_WORKER_PHONE, 3))[2] == all_clear
    assert (await v.sms_to(DAUGHTER_PHONE, 3))[2] == (
        "[Bidao] Water is being used again at 张桂兰's home (桥元村三组12号) at 08:31: "
        "the water alarm is over. Ticket 1."
    )


def _until(now: float, hour: int, minute: int) -> float:
    """Seconds from `now` to the next local hour:minute, in whole quarter hours."""
    local = datetime.fromtimestamp(now, ZONE)
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    seconds = target.timestamp() - now
    if seconds <= 0:
        seconds += DAY
    return seconds
