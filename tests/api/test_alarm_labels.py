"""What 张桂兰's water alarms turned out to be, said by the ones who dealt with them, and counted.

The alarm is raised as in tests/api/test_water_watch.py (her meter over a real broker, the
fake phone network, the test's clock); the one who resolves it labels it with `bidao` as a
subprocess, and `bidao report` counts it as an alarm of its rule, real or false.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import pytest

from firmware_protocol import Key
from gateway.domain.tickets import TicketStatus
from tests.api.test_water_watch import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    SECRETARY_PHONE,
    Home,
    eight_quiet_hours_after_breakfast,
)
from tests.api.test_water_watch import clock as clock  # noqa: PLC0414 - the fixtures, by name
from tests.api.test_water_watch import home as home  # noqa: PLC0414
from tests.gateway.support import bidao, wait_for

# Hang guard only: each test starts the `bidao` command many times, and on a loaded machine
# one start takes seconds.
pytestmark = pytest.mark.timeout(300)


async def alarm_raised(h: Home) -> None:
    """Eight quiet active hours, no thumbs-up: the no-water alarm (ticket 1) is raised."""
    await eight_quiet_hours_after_breakfast(h)
    await h.passes(15 * 60)
    await h.v.sms_to(GRID_WORKER_PHONE, 1)


async def status_of(h: Home, ticket_id: int) -> TicketStatus:
    found = await h.v.gw.store.tickets.get(ticket_id)
    assert found is not None
    return found.status


async def refused(h: Home, *argv: str) -> tuple[int, str]:
    done = await asyncio.to_thread(bidao, h.v.data_dir, *argv)
    assert done.stdout == ""
    return done.returncode, done.stderr


def report_row(text: str, unit: str, rule: str) -> list[str]:
    """The cells of the alarms table's row for `unit` and `rule`."""
    table = text[text.index("六、") :]
    rows = [line.split() for line in table.splitlines() if rule in line.split()]
    found = [cells for cells in rows if cells[0] == unit]
    assert len(found) == 1, (unit, rule, table)
    return found[0]


async def test_an_alarm_resolved_as_late_rising_is_a_false_alarm_of_its_village_and_rule(
    home: Home, tmp_path: Path
) -> None:
    h, v = home, home.v
    v.phones.script(DAUGHTER_PHONE).digits = ""  # the community worker takes it (presses 1)
    await alarm_raised(h)

    async def accepted() -> bool:
        return await status_of(h, 1) == TicketStatus.ACCEPTED

    await wait_for(accepted, timeout=30, what="the worker took the alarm")
    listing = await v.cli("tickets")
    assert "无用水报警 no-water alarm" in listing
    # She had slept late: the worker found her well, and says so as he resolves it.
    said = await v.cli("ticket", "1", "resolve", "--outcome", "误报：晚起", "--note", "起得晚")
    assert said == (
        "第1号工单：已由赵网格员解决，标注为“误报：晚起” "
        'ticket 1: resolved by 赵网格员, labelled "false: late rising"\n'
    )
    timeline = (await v.cli("ticket", "1")).splitlines()
    assert timeline[0].startswith(
        "工单 ticket 1 · 无用水报警 no-water alarm · 已解决 resolved · 报警时间 raised "
    )
    assert "呼叫时间" not in "\n".join(timeline)
    assert timeline[3].endswith("结果 outcome：误报：晚起 false: late rising")
    assert any(
        line.endswith("用水预警 water alarm：无用水报警 no-water alarm") for line in timeline
    )
    assert any(
        line.endswith(
            "标注结果 outcome labelled：赵网格员（网格员 grid worker），"
            "误报：晚起 false: late rising，经命令行 via command line"
        )
        for line in timeline
    )
    assert not any("alarm_raised" in line or "no_water" in line for line in timeline)

    # The report counts it as a false no-water alarm of 桥元村, and of the whole county.
    report = await v.cli("report", "--days", "30")
    assert report_row(report, "桥元村", "无用水报警") == [
        "桥元村", "无用水报警", "1", "0", "1", "0", "100%", "晚起1"
    ]  # fmt: skip
    assert report_row(report, "叶集区", "无用水报警")[2:7] == ["1", "0", "1", "0", "100%"]
    assert "持续用水报警" not in report[report.index("六、") :].split("误报率 =")[0]
    assert "误报率 = 标注误报 ÷ 已标注的报警（真实 + 误报）" in report
    # It is no call: the calls table of 桥元村 counts none.
    calls = report[report.index("二、") : report.index("三、")].splitlines()
    assert next(line for line in calls if line.strip().startswith("桥元村")).split()[1] == "0"
    # The export says the same.
    path = tmp_path / "报表.csv"
    await v.cli("report", "--days", "30", "--csv", str(path))
    with path.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.DictReader(file))
    village = next(r for r in rows if r["名称"] == "桥元村")
    assert village["呼叫数"] == "0"
    assert [village[f"无用水报警：{k}"] for k in ("报警", "标注真实", "标注误报", "未标注")] == [
        "1",
        "0",
        "1",
        "0",
    ]
    assert village["无用水报警：误报率(%)"] == "100.0"
    assert village["无用水报警：误报原因"] == "晚起1"
    assert village["持续用水报警：报警"] == "0"

    # A label that is none: exit 2, the choices named, nothing changed.
    code, error = await refused(h, "ticket", "1", "label", "睡懒觉")
    assert code == 2
    assert error.startswith("bidao: 不认识的结果“睡懒觉”，可选：真实情况、误报：晚起、")
    # He corrects it: she had been at her daughter's (labels may be corrected).
    said = await v.cli("ticket", "1", "label", "外出", "--by", "赵网格员")
    assert said.startswith("第1号工单：赵网格员标注为“误报：外出”")
    report = await v.cli("report", "--days", "30")
    assert report_row(report, "桥元村", "无用水报警")[-1] == "外出1"


async def test_an_alarm_cleared_by_water_is_labelled_afterwards_and_a_call_never_is(
    home: Home,
) -> None:
    h, v = home, home.v
    for phone in (GRID_WORKER_PHONE, DAUGHTER_PHONE, SECRETARY_PHONE):
        v.phones.script(phone).digits = ""  # nobody takes it
    await alarm_raised(h)
    # Still open: there is nothing to say of it yet.
    code, error = await refused(h, "ticket", "1", "label", "其他")
    assert (code, error.splitlines()[0]) == (
        1,
        "bidao: 第1号工单现在是“待接单”，不能标注结果（ticket 1 is open; it cannot be labelled）",
    )
    # She comes back from the fields and fills the kettle: the all-clear resolves it.
    await h.use_water()

    async def cleared() -> bool:
        return await status_of(h, 1) == TicketStatus.RESOLVED

    await wait_for(cleared, timeout=30, what="the all-clear")
    report = await v.cli("report", "--days", "30")
    assert report_row(report, "桥元村", "无用水报警")[2:7] == ["1", "0", "0", "1", "-"]
    timeline = await v.cli("ticket", "1")
    assert "预警解除 all clear：又用上水了 water used again" in timeline
    assert "结果 outcome：未标注 not labelled" in timeline
    # The worker, told the story afterwards, labels it.
    said = await v.cli("ticket", "1", "label", "other", "--by", "赵网格员")
    assert said.startswith("第1号工单：赵网格员标注为“误报：其他”")
    report = await v.cli("report", "--days", "30")
    assert report_row(report, "桥元村", "无用水报警")[2:8] == ["1", "0", "1", "0", "100%", "其他1"]

    # Her green key is a call, which is never labelled real or false.
    for phone in (GRID_WORKER_PHONE, SECRETARY_PHONE):
        v.phones.script(phone).digits = "1"
    await v.press(Key.GREEN_CALL)

    async def call_taken() -> bool:
        return await status_of(h, 2) == TicketStatus.ACCEPTED

    await wait_for(call_taken, timeout=30, what="the secretary took the call")
    code, error = await refused(h, "ticket", "2", "resolve", "--outcome", "真实")
    assert code == 1
    assert error == (
        "bidao: 第2号工单是呼叫，不是报警，不用标注真实或误报"
        "（ticket 2 is a call, not an alarm: only alarms are labelled real or false）\n"
    )
    assert await status_of(h, 2) == TicketStatus.ACCEPTED  # nothing changed
    listing = (await v.cli("tickets")).splitlines()
    assert any(line.split()[:3] == ["2", "呼叫", "call"] for line in listing)
    assert any(line.split()[:4] == ["1", "无用水报警", "no-water", "alarm"] for line in listing)
