"""An open water alarm as the `bidao` command tells it: the key pressed on the alarm call
means what that call's menu said, and the map's colours and legend count the alarm as open.

张桂兰's meter and box talk MQTT to a real broker, the phones are the fake phone network,
the clock is the test's; `bidao ticket` and `bidao report` run as subprocesses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.test_report_cli import row, table
from tests.api.test_water_watch import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    METER_ID,
    METER_KEY,
    RESIDENT_PHONE,
    SECRETARY_PHONE,
    Home,
    eight_quiet_hours_after_breakfast,
    yesterday_at,
)
from tests.api.village import open_village
from tests.gateway.grid import HOUSEHOLD
from tests.gateway.support import wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def home(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[Home]:
    """Her home from 05:00 yesterday; only the grid worker answers calls, with 1."""
    clock = ManualClock(start=yesterday_at(5))
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    async with open_village(tmp_path, broker, clock, devices=[(meter, HOUSEHOLD)]) as v:
        v.phones.script(RESIDENT_PHONE).digits = ""
        v.phones.script(DAUGHTER_PHONE).digits = ""
        v.phones.script(SECRETARY_PHONE).digits = ""
        v.phones.script(GRID_WORKER_PHONE).digits = "1"
        h = Home(v)
        await h.reading()
        await h.heartbeat()
        yield h


async def test_pressing_1_on_the_alarm_call_is_i_will_check_and_the_map_counts_it(
    home: Home,
) -> None:
    h, v = home, home.v
    await eight_quiet_hours_after_breakfast(h)
    await h.passes(15 * 60)  # no thumbs-up: the alarm goes out; the worker presses 1

    async def pressed() -> bool:
        return "按1我去查看 pressed 1: I will check" in await v.cli("ticket", "1")

    await wait_for(pressed, timeout=60, what="the worker's 1 in the timeline")
    timeline = await v.cli("ticket", "1")
    assert "按1接单" not in timeline
    assert "pressed 1: accept" not in timeline

    # Still open (nobody has been yet): the village's colours count it, and the legend
    # says that open and overdue include water alarms.
    out = await v.cli("report", "--days", "7")
    colours = table(out, "一、预警颜色")
    assert row(colours, "桥元村")[3] == "1"
    lines = out.splitlines()
    assert "  红：超时未办 5 件及以上，或有呼叫、用水报警超过 7天 仍未办结" in lines
    assert (
        "  “未办结”和“超时”都含呼叫和用水报警：报警和呼叫一样要有人接单、上门查看，"
        "无人接手也逐级上报。"
    ) in lines
    english = await v.cli("report", "--days", "7", "--lang", "en")
    assert (
        '  "Open" and "overdue" count calls and water alarms alike: an alarm, like a call, '
        "needs someone to accept it and go to check, and is passed up the chain when nobody "
        "does."
    ) in english.splitlines()
