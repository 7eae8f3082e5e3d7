"""Blind is not zero: a meter offline, the broker down, a serial line down.

张桂兰 lives alone; her meter and call box talk MQTT to a real broker that the test stops
and starts again; phones are the fake phone network; `bidao alarms` runs as a subprocess.
The home and its fixtures are tests/api/test_water_watch.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from firmware_protocol import IndicationKind
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from tests.api import test_water_watch
from tests.api.test_water_watch import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    METER_ID,
    SECRETARY_PHONE,
    STEP_S,
    Home,
)
from tests.gateway.grid import BOX_ID
from tests.gateway.support import bidao, gateway_settings, wait_for

clock = test_water_watch.clock
home = test_water_watch.home
"""Her home and the clock that starts at 05:00 yesterday: test_water_watch.py's fixtures."""


def asked(h: Home) -> int:
    """How often her box was asked "are you OK?"."""
    return sum(1 for i in h.v.box.indications if i.kind == IndicationKind.ARE_YOU_OK)


async def transitions(gw: GatewayService, device_id: str) -> list[str]:
    return [t.kind for t in await gw.store.devices.transitions(device_id)]


def alarm_count(gw: GatewayService, count: int) -> Callable[[], Awaitable[bool]]:
    """A condition: exactly `count` operator alarms are open."""

    async def check() -> bool:
        return len(await gw.store.devices.alarms()) == count

    return check


async def outbox_templates(h: Home) -> list[str]:
    return [n.template for n in await h.v.gw.store.outbox.notifications()]


async def test_a_silent_meter_makes_the_watch_blind_not_quiet_then_restored(home: Home) -> None:
    h, v = home, home.v
    await h.passes(89 * 60)
    await h.use_water()  # 06:30, then her meter stops reporting; her box keeps its heartbeat
    for _ in range(10 * 4):  # ten hours: well past the eight-hour window
        await v.clock.advance(STEP_S)
        await h.heartbeat()

    # Offline at 07:15 (three missed quarter-hours), told an hour later: the worker only.
    worker = await v.sms_to(GRID_WORKER_PHONE, 1)
    assert worker == [
        (
            "【必到】张桂兰（桥元村三组12号）家的水表自06:30起没有信号，用水看护暂时失效，"
            "请多留意老人情况。"
        )
    ]
    # Blind is not zero: nobody asked her, nobody alarmed, no ticket.
    assert asked(h) == 0
    assert v.sms(DAUGHTER_PHONE) == []
    assert v.sms(SECRETARY_PHONE) == []
    assert "water_watch_blind" in await outbox_templates(h)
    assert not {"no_water_alarm", "alarm_call"} & set(await outbox_templates(h))
    assert await v.gw.store.tickets.live() == []

    # The meter reports again at 16:31: the worker who was told hears it is back.
    await v.clock.advance(60)
    await h.reading()
    worker = await v.sms_to(GRID_WORKER_PHONE, 2)
    assert worker[1] == "【必到】张桂兰（桥元村三组12号）家的水表16:31恢复信号，用水看护已恢复。"
    assert v.sms(DAUGHTER_PHONE) == []


@pytest.mark.timeout(240)  # a day and a half of quarter-hour readings, each acknowledged
async def test_an_hour_without_the_broker_is_one_operator_alarm_and_no_burst(
    home: Home, broker: MosquittoBroker
) -> None:
    h, v = home, home.v
    await h.passes(89 * 60)
    await h.use_water()  # 06:30
    await h.passes(7 * 3600)  # 13:30: seven quiet hours, the window closes at 14:30

    before = {d: await transitions(v.gw, d) for d in (BOX_ID, METER_ID)}
    ended = v.gw.outages.ended
    broker.stop()
    await wait_for(
        lambda: v.gw.outages.down_since("mqtt") is not None, timeout=20, what="link down seen"
    )
    for _ in range(4):  # an hour without the broker: 14:30 falls inside it
        await v.clock.advance(STEP_S)
    await wait_for(alarm_count(v.gw, 1), timeout=60, what="the operator alarm")

    # Exactly one alarm, for the operators, naming the link.
    alarms = await v.gw.store.devices.alarms()
    assert [(a.kind, a.device_id) for a in alarms] == [("link_down", "link:mqtt")]
    assert "MQTT broker 127.0.0.1:" in alarms[0].detail
    assert "down since" in alarms[0].detail
    listing = await v.cli("alarms")
    assert "网关链路中断" in listing
    assert "link:mqtt" in listing
    # No device declared offline, so no installer alarm; nobody asked or alarmed.
    # (Her box, on a quarter-hour heartbeat here, goes offline and back between readings
    # every quarter-hour before the outage; during it, not once.)
    for device in (BOX_ID, METER_ID):
        assert await transitions(v.gw, device) == before[device], device
    assert await v.gw.store.devices.health_alarms() == []
    assert asked(h) == 0

    broker.start()
    await wait_for(lambda: v.gw.outages.ended == ended + 1, timeout=60, what="outage over")
    assert await v.gw.store.devices.alarms() == []  # cleared by the gateway
    await h.reading()
    await h.heartbeat()

    # No burst: the window that closed at 14:30 during the outage asks nothing; her quiet
    # clock restarted at the return, and the evening and the night pass without a question.
    await h.passes(15 * 3600 + 15 * 60)  # to 05:45 the next morning
    assert asked(h) == 0
    assert v.sms(DAUGHTER_PHONE) == []
    assert v.sms(GRID_WORKER_PHONE) == []
    assert await v.gw.store.devices.health_alarms() == []

    # The next day's rules work as ever: water early, then eight quiet active hours.
    await h.use_water()  # 05:46; the night does not count: at 14:00 eight active hours
    await h.passes(8 * 3600 + 15 * 60)
    await v.box_hears(IndicationKind.ARE_YOU_OK)
    assert asked(h) == 1


async def test_a_serial_line_down_is_one_operator_alarm_cleared_when_it_opens(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    port = free_loopback_port()
    url = f"socket://127.0.0.1:{port}"
    settings = gateway_settings(
        tmp_path,
        broker,
        serial=[{"name": "bus1", "url": url, "reopen_initial_s": 0.05, "reopen_max_s": 0.2}],
    )
    gw = GatewayService(settings, clock)
    async with gw:
        # The concentrator is not there: the line cannot open.
        await wait_for(lambda: gw.outages.down_since("bus1") is not None, what="line down")
        await clock.advance(5 * 60)
        assert await gw.store.devices.alarms() == []  # a blip tells nobody
        await clock.advance(6 * 60)
        await wait_for(alarm_count(gw, 1), timeout=60, what="the alarm")
        await clock.advance(30 * 60)
        alarms = await gw.store.devices.alarms()
        assert [(a.kind, a.device_id, a.count) for a in alarms] == [("link_down", "link:bus1", 1)]
        assert f"serial line bus1 ({url}) down since" in alarms[0].detail
        done = await asyncio.to_thread(bidao, settings.data_dir, "alarms")
        assert "link:bus1" in done.stdout

        # The concentrator comes back: the line opens and the alarm is cleared.
        lines: list[asyncio.StreamWriter] = []

        async def concentrator(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            lines.append(writer)

        server = await asyncio.start_server(concentrator, "127.0.0.1", port)
        async with server:
            await wait_for(lambda: gw.outages.down_since("bus1") is None, what="line open")
            await wait_for(alarm_count(gw, 0), timeout=60, what="the alarm cleared")
            cleared = await gw.store.devices.alarms(cleared=True)
            assert [(a.kind, a.cleared_by) for a in cleared] == [("link_down", "gateway")]
            for writer in lines:
                writer.close()
                await writer.wait_closed()
