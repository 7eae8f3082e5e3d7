"""Device health, as the installer and the family live it: offline, low battery, tamper, power.

Real parts (tests/gateway/village.py): the gateway on the test mosquitto with a ManualClock,
the resident's box and a water meter simulated over MQTT, the phones on the fake phone
network through the real twilio library, `bidao` as a subprocess beside the gateway. The
installers are imported with `bidao import contacts`, as an administrator would.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from datetime import time as dt_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from firmware_protocol import AlarmKind, MeterStatus
from gateway.clock import ManualClock
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.support import wait_for
from tests.gateway.village import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    LOOSE_BOX,
    LOOSE_KEY,
    METER_ID,
    METER_KEY,
    POLL_S,
    Village,
)

INSTALLER_PHONE = "13800000009"
TOWNSHIP_INSTALLER_PHONE = "13800000010"
INSTALLERS_CSV = """name,role,unit_code,household_code,phone,language,available_from,available_to
郑师傅,安装维护员,341504-101-001,,13800000009,zh-CN,,
冯师傅,安装维护员,341504-101,,13800000010,zh-CN,,
"""
"""The village's installer, and one at the township (further up: told only when the
village has none)."""
HOUR = 3600.0
LONG_INTERVAL_S = 6 * 3600
"""A box told to report every six hours stays online through the hours these tests skip."""
METER_HOUSEHOLD = "341504-101-001-0002"


@pytest.fixture
def clock() -> ManualClock:
    """06:00 in the villages' zone three days ago: `bidao report` reads the real time, so the
    stories' days are in it, and no story crosses a midnight (a spell over midnight is told
    with its date), whatever the time of day the tests run."""
    zone = ZoneInfo("Asia/Shanghai")
    day = datetime.fromtimestamp(time.time() - 3 * 86_400, zone).date()
    return ManualClock(start=datetime.combine(day, dt_time(6, 0), zone).timestamp())


def local(unix: float) -> str:
    """A moment as the messages write it: month-day hour:minute in the villages' zone."""
    return datetime.fromtimestamp(unix, ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M")


async def import_installers(v: Village, tmp_path: Path) -> None:
    path = tmp_path / "installers.csv"
    path.write_text(INSTALLERS_CSV, encoding="utf-8")
    done = await v.cli("import", "contacts", str(path))
    assert done.returncode == 0, done.stderr


def status(v: Village, device_id: str) -> str | None:
    state = v.gw.registry.cached(device_id)
    return None if state is None else state.status


def sms(v: Village, number: str) -> list[str]:
    return [r.body for r in v.phones.received(number) if r.kind == "sms"]


async def settle(v: Village) -> None:
    """Let what is due be handled and sent: the outbox has nothing waiting."""

    async def idle() -> bool:
        entries = await v.gw.store.outbox.entries()
        return all(e.status not in ("pending", "sending") for e in entries)

    await wait_for(idle, timeout=60, what="outbox idle")


async def keep_alive(v: Village, seconds: float, every: float = 120.0) -> None:
    """The box keeps reporting (every two minutes) while `seconds` pass."""
    box = v.boxes[BOX_ID]
    end = v.clock.now() + seconds
    while v.clock.now() < end:
        await v.clock.advance(min(every, end - v.clock.now()))
        await v.send(BOX_ID, box.heartbeat())


async def test_a_silent_box_alarms_the_installer_and_the_family_once_then_the_all_clear(
    village: Village, tmp_path: Path
) -> None:
    v, box = village, village.boxes[BOX_ID]
    await import_installers(v, tmp_path)
    await v.send(BOX_ID, box.heartbeat())

    # A blip: offline for ten minutes, back before the hour's hold-off. Nobody is told.
    await v.clock.advance(10 * 60)
    await wait_for(lambda: status(v, BOX_ID) == "offline", what="offline")
    await v.send(BOX_ID, box.heartbeat())
    await keep_alive(v, 2 * HOUR)
    await settle(v)
    assert sms(v, INSTALLER_PHONE) == []
    assert sms(v, DAUGHTER_PHONE) == []

    # Silent for good: offline three minutes after its last frame, told an hour later.
    heard_at = v.clock.now()
    await v.clock.advance(181)
    await wait_for(lambda: status(v, BOX_ID) == "offline", what="offline")
    offline_at = heard_at + 180
    await v.clock.advance(offline_at + HOUR - v.clock.now() - 1)
    await settle(v)
    assert sms(v, INSTALLER_PHONE) == []
    await v.clock.advance(1)
    since = local(heard_at)
    assert await v.texts_to(INSTALLER_PHONE) == [
        (
            f"【必到】张桂兰家（桥元村三组12号）的呼叫盒{BOX_ID}自{since}起没有信号，"
            "老人现在按键无法呼叫。请尽快检查电源和网络。"
        )
    ]
    # 张桂兰 lives alone: her daughter is told too (in English, as she asked).
    assert await v.texts_to(DAUGHTER_PHONE) == [
        (
            f"[Bidao] The call box at 张桂兰's home (桥元村三组12号) has had no signal since "
            f"{since}, so a key press cannot call for help. Its maintainers are told; please "
            "phone 张桂兰 meanwhile."
        )
    ]
    # The installer of the village, the nearest unit that has one; not the township's.
    assert sms(v, TOWNSHIP_INSTALLER_PHONE) == []

    # Once per spell: more silence tells nobody again.
    await v.clock.advance(5 * HOUR)
    await settle(v)
    assert len(sms(v, INSTALLER_PHONE)) == 1

    # Back, then flapping: silent again for five minutes within the all-clear's hold-off.
    back_at = v.clock.now()
    await v.send(BOX_ID, box.heartbeat())
    await keep_alive(v, 10 * 60)
    await v.clock.advance(5 * 60)
    await wait_for(lambda: status(v, BOX_ID) == "offline", what="flap")
    await v.send(BOX_ID, box.heartbeat())
    await keep_alive(v, 14 * 60)
    await settle(v)
    assert len(sms(v, INSTALLER_PHONE)) == 1  # the flap tells nobody anything
    # Reporting steadily for the all-clear's 15 minutes after its last return: all clear.
    returned_at = v.clock.now() - 14 * 60
    await keep_alive(v, 2 * 60)
    installer = await v.texts_to(INSTALLER_PHONE, 2)
    assert installer[1] == (
        f"【必到】张桂兰家（桥元村三组12号）的呼叫盒{BOX_ID}已恢复信号"
        f"（{since}至{local(returned_at)}没有信号）。"
    )
    assert back_at < returned_at
    daughter = await v.texts_to(DAUGHTER_PHONE, 2)
    assert daughter[1] == (
        f"[Bidao] The call box at 张桂兰's home (桥元村三组12号) has a signal again "
        f"(none from {since} to {local(returned_at)}); its key can call for help again."
    )
    assert await v.gw.store.devices.health_alarms() == []


async def test_low_battery_is_told_once_and_the_all_clear_when_a_new_battery_reports(
    village: Village, tmp_path: Path
) -> None:
    v, box = village, village.boxes[BOX_ID]
    await import_installers(v, tmp_path)
    await v.send(BOX_ID, box.heartbeat(battery_pct=60, interval_s=LONG_INTERVAL_S))
    low_at = v.clock.now()
    await v.send(BOX_ID, box.heartbeat(battery_pct=15))
    # Low heartbeats, and one just above the line (below line + margin): nothing changes.
    for battery in (14, 21, 13):
        await v.clock.advance(15 * 60)
        await v.send(BOX_ID, box.heartbeat(battery_pct=battery))
    kinds = [t.kind for t in await v.gw.store.devices.transitions(BOX_ID)]
    assert kinds == ["online", "low_battery"]
    await v.clock.advance(low_at + HOUR - v.clock.now())
    since = local(low_at)
    assert await v.texts_to(INSTALLER_PHONE) == [
        f"【必到】张桂兰家（桥元村三组12号）的呼叫盒{BOX_ID}自{since}起电量低，请尽快上门更换电池。"
    ]
    assert await v.texts_to(DAUGHTER_PHONE) == [
        (
            f"[Bidao] The call box at 张桂兰's home (桥元村三组12号) has had a low battery since "
            f"{since}. Its maintainers are told to replace it."
        )
    ]
    await v.clock.advance(2 * HOUR)
    await v.send(BOX_ID, box.heartbeat(battery_pct=12))
    await settle(v)
    assert len(sms(v, INSTALLER_PHONE)) == 1

    # The installer puts in a new battery.
    replaced_at = v.clock.now()
    await v.send(BOX_ID, box.heartbeat(battery_pct=100))
    await v.clock.advance(15 * 60)
    assert (await v.texts_to(INSTALLER_PHONE, 2))[1] == (
        f"【必到】张桂兰家（桥元村三组12号）的呼叫盒{BOX_ID}电量已恢复正常"
        f"（{since}至{local(replaced_at)}电量低）。"
    )
    assert (await v.texts_to(DAUGHTER_PHONE, 2))[1] == (
        f"[Bidao] The call box at 张桂兰's home (桥元村三组12号) has a good battery again "
        f"(low from {since} to {local(replaced_at)})."
    )


async def test_tamper_and_power_loss_on_the_box_of_a_resident_living_alone(
    village: Village, tmp_path: Path
) -> None:
    v, box = village, village.boxes[BOX_ID]
    await import_installers(v, tmp_path)
    await v.send(BOX_ID, box.heartbeat(interval_s=LONG_INTERVAL_S))

    opened_at = v.clock.now()
    await v.send(BOX_ID, box.alarm(AlarmKind.TAMPER))
    await v.send(BOX_ID, box.alarm(AlarmKind.POWER_LOSS, value=3100))
    await v.clock.advance(60)  # a case opened is told within a minute
    assert await v.texts_to(INSTALLER_PHONE) == [
        (
            f"【必到】张桂兰家（桥元村三组12号）的呼叫盒{BOX_ID}在{local(opened_at)}"
            "报告外壳被打开或被移动，请上门查看。"
        )
    ]
    assert await v.texts_to(DAUGHTER_PHONE) == [
        (
            "[Bidao] The call box at 张桂兰's home (桥元村三组12号) reported at "
            f"{local(opened_at)} that its case was opened or moved. Its maintainers are told; "
            "please phone 张桂兰."
        )
    ]
    await v.clock.advance(9 * 60)  # a power cut is told after ten minutes
    installer = await v.texts_to(INSTALLER_PHONE, 2)
    assert installer[1] == (
        f"【必到】张桂兰家（桥元村三组12号）的呼叫盒{BOX_ID}自{local(opened_at)}起断电，"
        "正在用电池工作。请查看电源。"
    )
    daughter = await v.texts_to(DAUGHTER_PHONE, 2)
    assert daughter[1] == (
        f"[Bidao] The call box at 张桂兰's home (桥元村三组12号) has had no mains power since "
        f"{local(opened_at)} and runs on battery; maybe a power cut. Its maintainers are "
        "told; please phone 张桂兰."
    )

    # The case is closed and the power comes back: each all-clear after its quarter hour.
    ended_at = v.clock.now()
    await v.send(BOX_ID, box.alarm(AlarmKind.TAMPER, active=False))
    await v.send(BOX_ID, box.alarm(AlarmKind.POWER_LOSS, active=False))
    await v.clock.advance(15 * 60)
    span = f"{local(opened_at)}至{local(ended_at)}"
    # Both all-clears fall due together: each phone gets them as one merged SMS.
    installer = await v.texts_to(INSTALLER_PHONE, 3)
    assert installer[2] == (
        f"【必到】您有2条提醒：张桂兰家（桥元村三组12号）的呼叫盒{BOX_ID}外壳报警已解除（{span}）；"
        f"张桂兰家（桥元村三组12号）的呼叫盒{BOX_ID}已恢复供电（{span}断电）"
    )
    daughter = await v.texts_to(DAUGHTER_PHONE, 3)
    assert daughter[2].startswith(
        f"[Bidao] 2 reminders: The call box at 张桂兰's home (桥元村三组12号): the case alarm "
        f"has ended ({local(opened_at)} to {local(ended_at)}); The call box at 张桂兰's home "
        "(桥元村三组12号) has mains power again"
    )
    await settle(v)
    assert {n.template for n in await v.gw.store.outbox.notifications()} == {
        "health_box_tamper",
        "health_box_tamper_ok",
        "health_box_power_loss",
        "health_box_power_loss_ok",
        "health_family_tamper",
        "health_family_tamper_ok",
        "health_family_power_loss",
        "health_family_power_loss_ok",
    }
    kinds = [t.kind for t in await v.gw.store.devices.transitions(BOX_ID)]
    assert kinds == ["online", "tamper", "power_loss", "tamper_ok", "power_ok"]


async def test_a_meter_offline_is_told_to_the_installer_and_back_with_its_readings(
    village: Village, tmp_path: Path
) -> None:
    v = village
    await import_installers(v, tmp_path)
    await v.send(BOX_ID, v.boxes[BOX_ID].heartbeat(interval_s=LONG_INTERVAL_S))  # box is well
    added = await v.cli(
        "device", "add", METER_ID, "--kind", "water_meter", "--key", METER_KEY.hex(),
        "--household", METER_HOUSEHOLD,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    await v.clock.advance(POLL_S)
    await wait_for(lambda: v.gw.registry.cached(METER_ID) is not None, what="meter seen")
    meter = v.boxes[METER_ID]
    v.fleet.add(meter)
    await v.send(METER_ID, meter.water_reading(1000, 0))
    heard_at = v.clock.now()

    # Three missed quarter-hours: offline; an hour later the installer is told.
    await v.clock.advance(3 * 900 + HOUR)
    assert await v.texts_to(INSTALLER_PHONE) == [
        (
            f"【必到】李德福家（桥元村三组14号）的水表{METER_ID}自{local(heard_at)}起没有数据，"
            "用水看护暂时无法判断。请检查水表的电池和网络。"
        )
    ]
    # The meter is the installer's to mend: no family message. 李德福 lives alone, so the
    # community worker hears from the water watch (not from device health) that it is blind.
    await settle(v)
    assert sms(v, GRID_WORKER_PHONE) == [
        (
            f"【必到】李德福（桥元村三组14号）家的水表自{local(heard_at)[-5:]}起没有信号，"
            "用水看护暂时失效，请多留意老人情况。"
        )
    ]
    assert {n.template for n in await v.gw.store.outbox.notifications()} == {
        "health_meter_offline",
        "water_watch_blind",
    }

    back_at = v.clock.now()
    await v.send(METER_ID, meter.water_reading(1010, 0))
    await v.clock.advance(15 * 60)
    assert (await v.texts_to(INSTALLER_PHONE, 2))[1] == (
        f"【必到】李德福家（桥元村三组14号）的水表{METER_ID}已恢复数据"
        f"（{local(heard_at)}至{local(back_at)}没有数据）。"
    )

    # A reading with the tamper bit set is a tamper spell of its own.
    await v.send(METER_ID, meter.water_reading(1011, 0, MeterStatus.TAMPER))
    await v.clock.advance(60)
    assert (await v.texts_to(INSTALLER_PHONE, 3))[2] == (
        f"【必到】李德福家（桥元村三组14号）的水表{METER_ID}在{local(v.clock.now() - 60)}"
        "报告被拆动，请上门查看。"
    )


async def test_no_installer_or_no_household_raises_an_operator_alarm(village: Village) -> None:
    v, box = village, village.boxes[BOX_ID]
    # A box in the township with no household yet, as an installer registers it.
    added = await v.cli(
        "device", "add", LOOSE_BOX, "--kind", "call_box", "--key", LOOSE_KEY.hex(),
        "--unit", "341504-101",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    await v.clock.advance(POLL_S)
    await wait_for(lambda: v.gw.registry.cached(LOOSE_BOX) is not None, what="box seen")
    heard_at = v.clock.now()
    await v.send(BOX_ID, box.heartbeat())
    await v.send(LOOSE_BOX, v.boxes[LOOSE_BOX].heartbeat())

    # No installer anywhere up 张桂兰's units: the operators hear of it; her daughter still does.
    await v.clock.advance(180 + HOUR)

    async def both_alarms() -> bool:
        kinds = {a.kind for a in await v.gw.store.devices.alarms()}
        return kinds == {"health_no_installer", "health_no_household"}

    await wait_for(both_alarms, timeout=60, what="two operator alarms")
    assert len(await v.texts_to(DAUGHTER_PHONE)) == 1
    listed = await v.cli("alarms")
    assert listed.returncode == 0, listed.stderr
    assert "设备告警：没有安装维护员" in listed.stdout
    assert "设备告警：设备未绑定住户" in listed.stdout
    assert BOX_ID in listed.stdout
    assert LOOSE_BOX in listed.stdout
    details = {a.kind: a.detail for a in await v.gw.store.devices.alarms()}
    assert details == {
        "health_no_installer": (
            f"offline since {local(heard_at)}: no installer on record for household "
            f"{HOUSEHOLD} or the units above it"
        ),
        "health_no_household": (
            f"offline since {local(heard_at)}: call_box {LOOSE_BOX} has no household"
        ),
    }


async def test_a_box_offline_for_a_day_is_a_broken_promise_in_the_report(
    village: Village, tmp_path: Path
) -> None:
    v, box = village, village.boxes[BOX_ID]
    await import_installers(v, tmp_path)
    # Two hours without a signal: a broken promise only once it lasts more than a day.
    await v.send(BOX_ID, box.heartbeat())
    await v.clock.advance(2 * HOUR)
    await wait_for(lambda: status(v, BOX_ID) == "offline", what="offline")
    await v.send(BOX_ID, box.heartbeat())
    offline_at = v.clock.now() + 180
    await v.clock.advance(181)
    await wait_for(lambda: status(v, BOX_ID) == "offline", what="offline")
    # Back 26 hours after it was declared offline: 26 hours in which a key press reached nobody.
    await v.clock.advance(offline_at + 26 * HOUR - v.clock.now())
    await v.send(BOX_ID, box.heartbeat())

    shown = await v.cli("report", "--days", "7")
    assert shown.returncode == 0, shown.stderr
    assert (
        "五、呼叫盒断线超过一天（近7天；断线期间老人按键无法呼叫）\n"
        "  桥元村：1 台呼叫盒断线超过一天，统计期内共 26 小时无法呼叫\n"
    ) in shown.stdout
    english = await v.cli("report", "--days", "7", "--lang", "en")
    assert (
        "  桥元村: 1 call boxes offline for more than a day, 26 hours without a way to call "
        "within the period"
    ) in english.stdout
    # The export says the same, per unit (the county counts its villages' boxes).
    path = tmp_path / "报表.csv"
    exported = await v.cli("report", "--days", "7", "--csv", str(path))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    header = rows[0]
    figures = {
        r[2]: (r[header.index("断线超过一天的呼叫盒")], r[header.index("断线无法呼叫(小时)")])
        for r in rows[1:]
    }
    assert figures["桥元村"] == ("1", "26.0")
    assert figures["叶集区"] == ("1", "26.0")
    assert len(await v.gw.store.devices.offline_spells(0, v.clock.now())) == 2  # both spells
