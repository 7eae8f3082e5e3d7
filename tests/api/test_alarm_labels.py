"""What 张桂兰's water alarms turned out to be, said by the ones who dealt with them, and counted.

The alarm is raised as in tests/api/test_water_watch.py (her meter over a real broker, the
fake phone network, the test's clock); the one who resolves it labels it with `bidao` as a
subprocess, and `bidao report` counts it as an alarm of its rule, real or false.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from api import cli_tickets_en, cli_tickets_zh
from api.cli_tickets import Clock, parse_outcome, timeline_line
from api.pages import en as pages_en
from api.pages import zh_cn as pages_zh
from api.report_strings import LANGUAGES
from firmware_protocol import Key
from gateway.application import TimelineItem
from gateway.domain.tickets import (
    ALARM_KINDS,
    FALSE_OUTCOMES,
    OUTCOMES,
    TICKET_KINDS,
    TicketStatus,
)
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


CLEARED_BY = ("water", "key", "away")
"""How the water watch says a no-water alarm was cleared (gateway/services/water.py)."""


def _clock() -> Clock:
    """The command line's clock, without a store to ask (the timeline's times are not read)."""
    clock = object.__new__(Clock)
    clock.zone = ZoneInfo("Asia/Shanghai")
    clock.now = 0.0
    return clock


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
    # The community worker takes it (presses 1); the secretary, called if the alarm's accept
    # clock runs out before his key is heard, does not.
    v.phones.script(DAUGHTER_PHONE).digits = ""
    v.phones.script(SECRETARY_PHONE).digits = ""
    await alarm_raised(h)

    async def accepted() -> bool:
        return await status_of(h, 1) == TicketStatus.ACCEPTED

    await wait_for(accepted, timeout=60, what="the worker took the alarm")
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

    await wait_for(cleared, timeout=60, what="the all-clear")
    report = await v.cli("report", "--days", "30")
    assert report_row(report, "桥元村", "无用水报警")[2:7] == ["1", "0", "0", "1", "-"]
    timeline = await v.cli("ticket", "1")
    assert "预警解除 all clear：又用上水了 water used again" in timeline
    assert "结果 outcome：未标注 not labelled" in timeline
    # The operator, told the story afterwards, labels it (nobody had it: no name is claimed).
    said = await v.cli("ticket", "1", "label", "other")
    assert said == '第1号工单：已标注为“误报：其他” ticket 1: labelled "false: other"\n'

    report = await v.cli("report", "--days", "30")
    assert report_row(report, "桥元村", "无用水报警")[2:8] == ["1", "0", "1", "0", "100%", "其他1"]

    # Her green key is a call, which is never labelled real or false.
    for phone in (GRID_WORKER_PHONE, SECRETARY_PHONE):
        v.phones.script(phone).digits = "1"
    await v.press(Key.GREEN_CALL)

    async def call_taken() -> bool:
        return await status_of(h, 2) == TicketStatus.ACCEPTED

    await wait_for(call_taken, timeout=60, what="the secretary took the call")
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


def test_every_ticket_kind_outcome_and_alarm_row_has_words_on_every_surface() -> None:
    """A ticket kind, label or alarm audit row added without words here fails this test."""
    for table, keys in (
        ("KIND", set(TICKET_KINDS)),
        ("OUTCOME", set(OUTCOMES)),
        ("ALL_CLEAR", {*CLEARED_BY, "flow_stopped"}),
    ):
        zh_words: dict[str, str] = getattr(cli_tickets_zh, table)
        en_words: dict[str, str] = getattr(cli_tickets_en, table)
        assert sorted(k for k in keys if zh_words.get(k, "a").isascii()) == [], table
        assert sorted(k for k in keys if not en_words.get(k, "").strip()) == [], table
    assert set(cli_tickets_zh.OUTCOME_SHORT) == set(OUTCOMES)
    for language in (pages_zh.TEXTS, pages_en.TEXTS):
        assert all(f"kind_{k}" in language for k in ALARM_KINDS)
        assert all(f"outcome_{o}" in language for o in OUTCOMES)
    for words in LANGUAGES.values():
        assert all(f"alarm.{k}" in words for k in ALARM_KINDS)
        assert all(f"cause.{o}" in words for o in FALSE_OUTCOMES)
    # Whatever way a label is written in either language, it is read back as itself.
    for outcome in OUTCOMES:
        for written in (
            outcome,
            cli_tickets_zh.OUTCOME[outcome],
            cli_tickets_zh.OUTCOME[outcome].replace("：", ":"),
            cli_tickets_zh.OUTCOME_SHORT[outcome],
            cli_tickets_en.OUTCOME[outcome],
        ):
            assert parse_outcome(written) == outcome, written
    assert parse_outcome("睡懒觉") is None
    # The timeline's alarm rows are words, never the rules' codes.
    rows = [TimelineItem(0.0, "alarm_raised", "system", detail=k) for k in ALARM_KINDS]
    rows += [TimelineItem(0.0, "labelled", "cli", detail=o) for o in OUTCOMES]
    rows += [TimelineItem(0.0, "all_clear", "system", detail=c) for c in CLEARED_BY]
    for row in rows:
        line = timeline_line(row, _clock(), "no_water")
        said = line.split("：", 1)[1]
        assert not said.split()[0].isascii(), line  # Chinese first, then English
    leak_clear = TimelineItem(0.0, "all_clear", "system")
    assert timeline_line(leak_clear, _clock(), "leak").endswith("停止走水 the water stopped")
