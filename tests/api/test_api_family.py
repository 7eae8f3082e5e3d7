"""Family view and water alarms through the API: 张桂兰 lives alone with a water meter.

Her daughter signs in and sees that the watch is running, the day's first water use, the
alarm when eight active hours pass without water, and who is handling it; the secretary
takes and closes the alarm through the API, labelling what it was. The meter and the box
talk MQTT to a real broker; the gateway's clock is the test's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from device_sim.device import SimulatedDevice
from firmware_protocol import IndicationKind
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.api_people import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    HOUSEHOLD_A,
    SECRETARY_PHONE,
    People,
    open_people,
)
from tests.gateway.support import wait_for

pytestmark = pytest.mark.timeout(300)

ZONE = ZoneInfo("Asia/Shanghai")
METER_ID = "b1da0000000000c1"
METER_KEY = bytes(range(50, 66))
STEP_S = 15 * 60


def yesterday_at(hour: int, minute: int = 0) -> float:
    day = datetime.now(ZONE).date() - timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZONE).timestamp()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=yesterday_at(5))


class Meter:
    """Her meter's counter, reported as a real meter does."""

    def __init__(self, people: People) -> None:
        self.v = people.v
        self.device = people.v.devices[METER_ID]
        self.litres = 1000

    async def reading(self) -> None:
        await self.v.fleet.send(METER_ID, self.device.water_reading(self.litres, 0))
        await wait_for(lambda: not self.device.pending, timeout=60, what="reading acked")
        await self.v.fleet.send(self.v.box.device_id, self.v.box.heartbeat())
        await wait_for(lambda: not self.v.box.pending, timeout=60, what="heartbeat acked")

    async def passes(self, seconds: float) -> None:
        left = seconds
        while left > 0:
            step = min(STEP_S, left)
            await self.v.clock.advance(step)
            left -= step
            await self.reading()

    async def use_water(self, litres: int = 12) -> None:
        await self.v.clock.advance(60)
        self.litres += litres
        await self.reading()


@pytest.fixture
async def people(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[People]:
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    async with open_people(
        tmp_path, broker, clock, monkeypatch, devices=[(meter, HOUSEHOLD_A)]
    ) as p:
        for phone in (SECRETARY_PHONE, GRID_WORKER_PHONE, DAUGHTER_PHONE, "13912345678"):
            p.v.phones.script(phone).digits = ""  # nobody takes the alarm by phone
        yield p


async def test_family_sees_the_watch_the_first_use_and_who_handles_the_alarm(
    people: People,
) -> None:
    meter = Meter(people)
    await meter.reading()  # 05:00, the first reading: the watch starts
    family = await people.as_user("xiaohong")
    path = f"/api/v1/households/{HOUSEHOLD_A}/water"
    watch = (await family.get(path)).json()
    assert (watch["watched"], watch["reason"], watch["phase"]) == (True, "lives_alone", "watching")
    assert watch["meter"] == METER_ID
    assert watch["open_alarms"] == []
    assert watch["log"] is None

    await meter.passes(89 * 60)
    await meter.use_water()  # 06:30
    assert (await family.get(path)).json()["today_first_use"] == "06:30"

    await meter.passes(8 * 3600)
    await people.v.box_hears(IndicationKind.ARE_YOU_OK)
    await meter.passes(15 * 60)  # ten minutes without an answer: the alarm

    async def alarmed() -> bool:
        return bool((await family.get(path)).json()["open_alarms"])

    await wait_for(alarmed, timeout=60, what="the alarm in the family's view")
    watch = (await family.get(path)).json()
    assert watch["phase"] == "alarmed"
    [alarm] = watch["open_alarms"]
    assert (alarm["kind"], alarm["status"], alarm["owner"]) == ("no_water", "open", None)

    li = await people.as_user("li")
    alarms = (await li.get("/api/v1/alarms")).json()
    assert [t["id"] for t in alarms["water"]] == [alarm["id"]]
    assert (await li.post(f"/api/v1/tickets/{alarm['id']}/accept")).json()["won"] is True
    watch = (await family.get(path)).json()
    assert watch["open_alarms"][0]["owner"]["name"] == "李书记"
    secretary_view = (await li.get(path)).json()
    assert secretary_view["log"]

    # She had overslept after a bad night: resolved as a false alarm, then corrected.
    resolved = await li.post(
        f"/api/v1/tickets/{alarm['id']}/resolve", json={"outcome": "late_rising"}
    )
    assert resolved.status_code == 200, resolved.text
    assert (await family.get(path)).json()["open_alarms"] == []
    relabelled = await li.post(f"/api/v1/tickets/{alarm['id']}/label", json={"outcome": "away"})
    assert relabelled.status_code == 200, relabelled.text
    detail = (await family.get(f"/api/v1/tickets/{alarm['id']}")).json()
    assert detail["ticket"]["outcome"] == "away"
    again = await li.post(f"/api/v1/tickets/{alarm['id']}/label", json={"outcome": "meter_fault"})
    assert again.status_code == 200  # a no-water alarm may be a meter fault

    # She goes to her son's for two days: the secretary marks the home away.
    until = people.v.clock.now() + 2 * 86_400
    away = await li.post(f"{path}/away", json={"until": until})
    assert away.status_code == 202, away.text
    assert away.json()["action"] == "away"
    assert away.json()["until"] == until
    refused = await family.post(f"{path}/away", json={"until": until})
    assert refused.status_code == 403
    audit = [(e.login, e.action, e.target) for e in await people.app.audit_log(20)]
    assert ("li", "water.away", HOUSEHOLD_A) in audit

    # The other family sees nothing of her.
    dawang = await people.as_user("dawang")
    other = await dawang.get(path)
    assert other.status_code == 404
    assert "张桂兰" not in other.text
    assert (await dawang.get("/api/v1/tickets")).json()["total"] == 0
