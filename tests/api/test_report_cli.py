"""`bidao report` as a township official reads it: Chinese, names, legend, plain words, exports.

The set-up runs a real gateway (real mosquitto, SQLite, simulated boxes over MQTT) on a
manual clock that starts three days before now, plays six calls through the ticket service
in two villages, stops, and leaves the data folder; every test runs the `bidao` console
script on it as a subprocess. The expected figures are worked out by hand below.

    桥元村 (two households)                          白沙村 (two households)
    t1 A1 李书记 accepts 1 min, arrives 10 min,      t5 B1 陈书记 accepts 2 min, classifies
       urgent, resolves, thumbs-up                     ordinary (2 days), never arrives (live)
    t2 A2 钱邻长 accepts 3 min, arrives 20 min,      t6 B2 nobody accepts (open, escalated)
       resolves, thumbs-down (a review)
    t3 A1 钱邻长 accepts 8 min (escalated), urgent,  会馆村 and a village whose imported name
       arrives 40 min, resolves after 3 hours           is a formula: no calls
       (missed its 2-hour limit), no rating
    t4 A2 cancelled with the red key
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from openpyxl import load_workbook

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Key
from gateway.clock import ManualClock
from gateway.domain.grid import GridUnit
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from gateway.services.grid_import import ImportKind
from tests.gateway.support import gateway_settings, wait_for

BIDAO = Path(sys.executable).with_name("bidao")
MINUTE = 60.0
HOUR = 3600.0

A1, A2, B1, B2 = "QY-0001", "QY-0002", "BS-0001", "BS-0002"
BOXES = {
    A1: ("b1da00000000a001", bytes(range(16))),
    A2: ("b1da00000000a002", bytes(range(1, 17))),
    B1: ("b1da00000000b001", bytes(range(2, 18))),
    B2: ("b1da00000000b002", bytes(range(3, 19))),
}
FORMULA_VILLAGE = '=HYPERLINK("http://example.invalid","点我")'

UNITS_CSV = """code,level,name,parent_code
341504,county,叶集区,
341504-101,township,三元镇,341504
341504-101-001,village,桥元村,341504-101
341504-101-001-1,area,一片,341504-101-001
341504-101-001-1-3,group,三组,341504-101-001-1
341504-101-001-1-3-1,neighbourhood,一邻,341504-101-001-1-3
341504-101-002,village,白沙村,341504-101
341504-101-002-2,area,二片,341504-101-002
341504-101-002-2-1,group,一组,341504-101-002-2
341504-101-002-2-1-1,neighbourhood,东邻,341504-101-002-2-1
341504-101-003,village,会馆村,341504-101
"""

HOUSEHOLDS_CSV = (
    "household_code,neighbourhood_code,address,resident_name,resident_phone,lives_alone,"
    "five_guarantee,needs_care,consent,key_safe_code,health_notes,device_id,device_key\n"
    + "".join(
        f"{code},{hood},{address},{name},,1,0,0,0,,,{BOXES[code][0]},{BOXES[code][1].hex()}\n"
        for code, hood, address, name in (
            (A1, "341504-101-001-1-3-1", "桥元村三组12号", "张桂兰"),
            (A2, "341504-101-001-1-3-1", "桥元村三组14号", "李德福"),
            (B1, "341504-101-002-2-1-1", "白沙村一组3号", "王秀英"),
            (B2, "341504-101-002-2-1-1", "白沙村一组5号", "赵大爷"),
        )
    )
)

SECRETARY_A, DEPUTY_A, CHIEF_A, SECRETARY_B, CHIEF_B, TOWNSHIP = range(1, 7)
CONTACTS_CSV = """name,role,unit_code,household_code,phone,language,available_from,available_to
李书记,village_secretary,341504-101-001,,13800000001,zh-CN,,
王副书记,deputy_secretary,341504-101-001,,13800000002,zh-CN,,
钱邻长,neighbour_chief,341504-101-001-1-3-1,,13800000003,zh-CN,,
陈书记,village_secretary,341504-101-002,,13800000004,zh-CN,,
刘邻长,neighbour_chief,341504-101-002-2-1-1,,13800000005,zh-CN,,
吴值班,township_duty,341504-101,,13800000006,zh-CN,,
"""

# The county's colour thresholds, set for this county: orange from two overdue calls.
ENV = {"BIDAO_WARNINGS__ORANGE_OVERDUE": "2"}


@dataclass
class Calls:
    """The gateway's parts the set-up drives."""

    gw: GatewayService
    fleet: MqttFleet
    boxes: dict[str, SimulatedDevice]
    clock: ManualClock

    async def press(self, household: str, key: Key) -> int:
        box = self.boxes[household]
        await self.fleet.send(box.device_id, box.press(key, 1))
        await wait_for(lambda: not box.pending, what="key press acked")
        tickets = [t for t in await self.gw.store.tickets.all() if t.household_code == household]
        return tickets[-1].id

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)
        await self.gw.scheduler.fire_due(self.clock.now())


async def _play(c: Calls) -> None:
    t = c.gw.tickets
    # t1: on time all the way, thumbs-up.
    t1 = await c.press(A1, Key.GREEN_CALL)
    await c.advance(1 * MINUTE)
    await t.accept(t1, SECRETARY_A, "voice_keypress")
    await t.classify(t1, "urgent", SECRETARY_A, "dashboard")
    await c.advance(10 * MINUTE)
    await t.arrive(t1, SECRETARY_A, "box_key")
    await c.advance(20 * MINUTE)
    await t.resolve(t1, SECRETARY_A, "dashboard")
    await c.press(A1, Key.THUMBS_UP)
    # t2: on time, thumbs-down.
    t2 = await c.press(A2, Key.GREEN_CALL)
    await c.advance(3 * MINUTE)
    await t.accept(t2, CHIEF_A, "voice_keypress")
    await c.advance(20 * MINUTE)
    await t.arrive(t2, CHIEF_A, "box_key")
    await t.resolve(t2, CHIEF_A, "dashboard")
    await c.press(A2, Key.THUMBS_DOWN)
    # t3: accepted late, arrived late, missed its 2-hour limit, never rated.
    await c.advance(1 * HOUR)
    t3 = await c.press(A1, Key.GREEN_CALL)
    await c.advance(8 * MINUTE)
    await t.accept(t3, CHIEF_A, "voice_keypress")
    await t.classify(t3, "urgent", CHIEF_A, "dashboard")
    await c.advance(40 * MINUTE)
    await t.arrive(t3, CHIEF_A, "box_key")
    await c.advance(3 * HOUR - 40 * MINUTE)
    await t.resolve(t3, CHIEF_A, "dashboard")
    # t4: cancelled by the resident at once.
    await c.press(A2, Key.GREEN_CALL)
    await c.press(A2, Key.RED_HANGUP)
    # 白沙村, 30.5 hours before the report.
    await c.advance(time.time() - 30.5 * HOUR - c.clock.now())
    t5 = await c.press(B1, Key.GREEN_CALL)
    await c.advance(2 * MINUTE)
    await t.accept(t5, SECRETARY_B, "voice_keypress")
    await t.classify(t5, "ordinary", SECRETARY_B, "dashboard")
    await c.press(B2, Key.GREEN_CALL)
    await c.advance(10 * HOUR)  # t5 never arrives, t6 is never accepted


START_AGO = 3 * 86400.0


async def _build(folder: Path, broker: MosquittoBroker) -> None:
    clock = ManualClock(start=time.time() - START_AGO)
    settings = gateway_settings(folder, broker)
    boxes = {
        code: SimulatedDevice(device_id, "call_box", key, clock=clock.now)
        for code, (device_id, key) in BOXES.items()
    }
    async with GatewayService(settings, clock) as gw:
        files: tuple[tuple[ImportKind, str], ...] = (
            ("units", UNITS_CSV),
            ("households", HOUSEHOLDS_CSV),
            ("contacts", CONTACTS_CSV),
        )
        for kind, text in files:
            result = await gw.import_csv(kind, text)
            assert result.rejected == 0, result.errors
        # A name from before import refused formulas, straight into the store.
        async with gw.store.transaction() as uow:
            await uow.grid.insert(
                [GridUnit("341504-101-004", "village", FORMULA_VILLAGE, "341504-101")]
            )
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, list(boxes.values())) as fleet:
            await _play(Calls(gw, fleet, boxes, clock))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder the set-up leaves behind (the gateway stopped)."""
    folder = tmp_path_factory.mktemp("report")
    broker = MosquittoBroker(folder / "broker")
    broker.start()
    broker.wait_ready_blocking()
    try:
        asyncio.run(_build(folder, broker))
    finally:
        broker.stop()
    return folder / "gateway"


def bidao(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `bidao` console script on the data folder."""
    env = {**os.environ, "BIDAO_DATA_DIR": str(data_dir), **ENV}
    return subprocess.run(
        [str(BIDAO), *argv], capture_output=True, text=True, check=False, timeout=60, env=env
    )


def display_width(text: str) -> int:
    """Terminal cells: wide and full-width characters take two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def cells(line: str) -> list[tuple[int, str]]:
    """The words of a table line with the display column where each ends."""
    out = []
    column = 0
    word = ""
    for char in line + " ":
        if char == " ":
            if word:
                out.append((column, word))
                word = ""
            column += 1
        else:
            word += char
            column += display_width(char)
    return out


def blocks(text: str) -> list[list[str]]:
    """The tables of a report: each title, header, rule and rows, up to the next plain line."""
    lines = text.splitlines()
    out = []
    for i in range(len(lines)):
        if i + 2 < len(lines) and set(lines[i + 2].strip()) == {"─"}:
            block = lines[i : i + 3]
            for row in lines[i + 3 :]:
                if display_width(row) != display_width(lines[i + 2]):
                    break
                block.append(row)
            out.append(block)
    return out


def table(text: str, title: str) -> list[str]:
    """The lines of the table whose title begins with `title`."""
    found = [b for b in blocks(text) if b[0].startswith(title)]
    assert len(found) == 1, title
    return found[0]


def row(lines: list[str], first: str) -> list[str]:
    """The words of the line among `lines` that begins with the word `first`."""
    found = [line.split() for line in lines if line.split()[:1] == [first]]
    assert len(found) == 1, (first, found)
    return found[0]


@pytest.fixture(scope="module")
def chinese(data_dir: Path) -> str:
    done = bidao(data_dir, "report", "--days", "7")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    print(done.stdout)
    return done.stdout


def test_the_chain_from_the_county_down_with_colours_and_their_legend(chinese: str) -> None:
    out = chinese
    assert out.startswith("必到（群众呼叫、书记必到）工作报表\n统计期：")
    assert "近7天" in out
    colours = table(out, "一、预警颜色（此刻）")
    assert colours[1].split() == ["单位", "层级", "颜色", "未办结", "其中超时", "最久已等"]
    names = [line.split()[0] for line in colours[3:]]
    assert names == [
        "叶集区",
        "三元镇",
        "桥元村",
        "一片",
        "三组",
        "一邻",
        "白沙村",
        "二片",
        "一组",
        "东邻",
        "会馆村",
        FORMULA_VILLAGE,
    ]
    # Indented by depth: the county at the margin, each level two cells further in.
    rows = zip(names, colours[3:], strict=True)
    depth = {name: len(line) - len(line.lstrip()) for name, line in rows}
    assert [depth[n] for n in ("叶集区", "三元镇", "白沙村", "二片", "一组", "东邻")] == [
        1,
        3,
        5,
        7,
        9,
        11,
    ]
    # 白沙村: t5 (accepted, never arrived) and t6 (never accepted) are open and overdue:
    # 2 overdue reaches this county's orange line (2); the township and county carry them.
    for name, level in (("叶集区", "县区"), ("三元镇", "乡镇"), ("白沙村", "村"), ("东邻", "邻")):
        assert row(colours, name)[1:5] == [level, "橙", "2", "2"], name
        assert row(colours, name)[5] in ("30.5小时", "30.6小时")  # opened 30.5 hours before
    assert row(colours, "桥元村")[1:] == ["村", "绿", "0", "0", "-"]
    assert row(colours, "会馆村")[1:] == ["村", "绿", "0", "0", "-"]
    # The legend, with the thresholds in force (orange set for this county, the rest default).
    for line in (
        "颜色说明：",
        "  红：超时未办 5 件及以上，或有呼叫、用水报警超过 7天 仍未办结",
        "  橙：超时未办 2 件及以上",
        "  黄：超时未办 1 件及以上，或未办结 3 件及以上",
        "  绿：以上都没有",
        "  “超时”指：5分钟 内无人接单，接单后 30分钟 内未到场，超过办理时限，或已逐级上报。",
    ):
        assert line in out.splitlines()


def test_figures_per_unit_from_the_tickets(chinese: str) -> None:
    out = chinese
    stats = table(out, "二、近7天的呼叫（按单位，含下级）")
    assert stats[1].split() == [
        *("单位", "呼叫", "已办结", "办结率", "已评价", "满意率", "差评", "取消"),
        "上报",
        "准时接单",
        "准时到场",
        "限时办结",
    ]
    # 桥元村: 4 calls; t1 t2 t3 closed, t4 cancelled: 3 / (4 - 1) = 100% closed; rated t1 up and
    # t2 down: 1 / 2 = 50% satisfied, one review; t3 escalated; accepted within 5 minutes:
    # t1 (1) and t2 (3), not t3 (8): 2 / 3; arrived within 30 minutes: t1 (10) and t2 (20),
    # not t3 (40): 2 / 3; classified: t1 resolved within 2 hours, t3 after 3: 1 / 2.
    assert row(stats, "桥元村")[1:] == [
        "4", "3", "100%", "2", "50%", "1", "1", "1", "67%", "67%", "50%"
    ]  # fmt: skip
    # 白沙村: t5 and t6 open: 0 / 2 closed; nothing rated; both escalated; t5 accepted in 2
    # minutes: 1 / 1; nobody arrived; t5's 2-day limit has not run out: not known yet.
    assert row(stats, "白沙村")[1:] == ["2", "0", "0%", "0", "-", "0", "0", "2", "100%", "-", "-"]
    # 三元镇 and 叶集区: both villages: 3 / 5 closed, 3 of 4 accepted on time.
    for name in ("叶集区", "三元镇"):
        assert row(stats, name)[1:] == [
            "6", "3", "60%", "2", "50%", "1", "1", "3", "75%", "67%", "50%"
        ], name  # fmt: skip
    assert row(stats, "会馆村")[1:] == ["0"]
    assert "办结率 = 已办结 ÷（呼叫数减去群众自己取消的）" in out
    assert "限时办结 = 在办理时限内办结（紧急2小时、一般2天、较难7天、复杂30天）。" in out
    assert "p50" not in out
    assert "p90" not in out


def test_times_in_plain_words(chinese: str) -> None:
    lines = chinese.splitlines()
    assert "接单和到场用时：" in lines
    # 桥元村: accepted in 1, 3 and 8 minutes (t4 cancelled, not counted): half (2 of 3)
    # within 3, nine in ten (3 of 3) within 8; arrived 10, 20, 40 minutes after accepting.
    assert (
        "  桥元村：3 个呼叫（不含群众自己取消的），一半的呼叫在 3分钟 内有人接单，九成在 8分钟 内；"
        "到场 3 次，其中一半在接单后 20分钟 内到场，九成在 40分钟 内。"
    ) in lines
    # 白沙村: t5 in 2 minutes, t6 never: half (1 of 2) within 2, nine in ten not at all.
    assert (
        "  白沙村：2 个呼叫（不含群众自己取消的），一半的呼叫在 2分钟 内有人接单，"
        "有人接单的不到九成；还没有到场记录。"
    ) in lines
    # 三元镇: 1, 2, 3, 8 minutes and t6 never: half (3 of 5) within 3; 4 of 5 is not nine in ten.
    assert (
        "  三元镇：5 个呼叫（不含群众自己取消的），一半的呼叫在 3分钟 内有人接单，"
        "有人接单的不到九成；到场 3 次，其中一半在接单后 20分钟 内到场，九成在 40分钟 内。"
    ) in lines


def test_people_by_name_and_role_and_the_chiefs_cards(chinese: str) -> None:
    out = chinese
    assert "contact:" not in out
    people = table(out, "三、接单人员（近7天）")
    assert [line.split()[:3] for line in people[3:]] == [
        ["李书记", "村书记", "桥元村"],
        ["陈书记", "村书记", "白沙村"],
        ["钱邻长", "邻长", "桥元村一片三组一邻"],
    ]
    # 钱邻长 took t2 (on time both ways) and t3 (late both ways): 1 / 2 each; t2 thumbs-down.
    assert row(people, "钱邻长")[3:] == ["2", "50%", "50%", "2", "0%", "1"]
    assert row(people, "李书记")[3:] == ["1", "100%", "100%", "1", "100%", "0"]
    assert row(people, "陈书记")[3:] == ["1", "100%", "-", "0", "-", "0"]
    cards = table(out, "四、邻长考核牌（近7天）")
    assert [line.split() for line in cards[3:]] == [
        ["刘邻长", "白沙村二片一组东邻", "蓝牌", "无接单", "0"],
        # (1 + 1) on time of (2 accepted + 2 arrived) = 50%, below 70%: red.
        ["钱邻长", "桥元村一片三组一邻", "红牌", "50%", "2"],
    ]
    assert "蓝牌：准时率 90% 及以上；黄牌：70% 至 90%；红牌：低于 70%" in out
    assert "90天内没人按过呼叫键的呼叫器：0 台" in out


def test_every_table_lines_up_in_display_cells(chinese: str) -> None:
    tables = blocks(chinese)
    assert len(tables) == 4
    for table in tables:
        widths = {display_width(line) for line in table}
        assert len(widths) == 1, (table[0], widths)
        header = cells(table[1])
        for line in table[3:]:
            words = cells(line)
            if len(words) != len(header):
                continue  # a unit with no calls leaves its figures empty
            # Figures are right-aligned: each ends in the column its header ends in.
            ends = [end for end, _ in words]
            assert ends[3:] == [end for end, _ in header][3:], (table[1], line)


def test_english_on_request(data_dir: Path) -> None:
    done = bidao(data_dir, "report", "--days", "7", "--lang", "en")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Bidao (residents call, the secretary comes): report\n")
    assert "  orange: 2 or more overdue" in out.splitlines()
    assert (
        "  桥元村: 3 calls (not counting those the resident cancelled), half were accepted "
        "within 3 minutes, nine in ten within 8 minutes; 3 arrivals, half within 20 minutes "
        "of accepting, nine in ten within 40 minutes."
    ) in out.splitlines()
    people = table(out, "3. People who accepted calls (last 7 days)")
    assert row(people, "钱邻长")[:4] == ["钱邻长", "neighbour", "chief", "桥元村/一片/三组/一邻"]
    cards = table(out, "4. Neighbour chiefs' cards (last 7 days)")
    assert row(cards, "钱邻长") == ["钱邻长", "桥元村/一片/三组/一邻", "red", "50%", "2"]


@pytest.mark.parametrize("days", ["-1", "0", "nan", "inf", "1e999", "seven", "", "5000"])
def test_a_period_that_is_not_a_positive_number_of_days_is_refused(
    tmp_path: Path, days: str
) -> None:
    done = bidao(tmp_path, "report", "--days", days)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"bidao: --days 必须是大于 0、不超过 3660 的天数，收到 {days}",
        f"bidao: --days must be a positive number of days, got {days} (at most 3660)",
    ]
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "bidao.db").exists()


HEADERS = [
    "类别", "层级或职务", "名称", "所属", "编码", "预警颜色", "未办结", "超时未办", "呼叫数",
    "已办结", "办结率(%)", "已评价", "满意", "满意率(%)", "差评", "取消", "上报",
    "有人接单", "准时接单率(%)", "一半呼叫接单用时(分钟)", "九成呼叫接单用时(分钟)", "到场",
    "准时到场率(%)", "限时办结率(%)", "断线超过一天的呼叫盒", "断线无法呼叫(小时)",
    "无用水报警：报警", "无用水报警：标注真实", "无用水报警：标注误报", "无用水报警：未标注",
    "无用水报警：误报率(%)", "无用水报警：误报原因",
    "持续用水报警：报警", "持续用水报警：标注真实", "持续用水报警：标注误报",
    "持续用水报警：未标注", "持续用水报警：误报率(%)", "持续用水报警：误报原因",
]  # fmt: skip


def test_csv_for_the_county_office(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "报表.csv"
    done = bidao(data_dir, "report", "--days", "7", "--csv", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"已导出 {path}（15 行）\n"
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == HEADERS
    by_name = {r[2]: dict(zip(HEADERS, r, strict=True)) for r in rows[1:]}
    assert len(by_name) == 15  # 12 units and 3 people
    village = by_name["桥元村"]
    assert (village["类别"], village["层级或职务"], village["所属"]) == (
        "单位",
        "村",
        "叶集区三元镇",
    )
    assert (village["预警颜色"], village["呼叫数"], village["办结率(%)"]) == ("绿", "4", "100.0")
    assert (village["满意率(%)"], village["差评"], village["准时接单率(%)"]) == (
        "50.0",
        "1",
        "66.7",
    )
    assert (village["一半呼叫接单用时(分钟)"], village["九成呼叫接单用时(分钟)"]) == ("3.0", "8.0")
    assert by_name["白沙村"]["九成呼叫接单用时(分钟)"] == ""  # fewer than nine in ten accepted
    # The boxes silent between their presses for more than a day (still offline as last heard):
    # each village's, and the county's sum of them, as the terminal says.
    offline = {n: (r["断线超过一天的呼叫盒"], r["断线无法呼叫(小时)"]) for n, r in by_name.items()}
    assert (offline["桥元村"][0], offline["白沙村"][0], offline["叶集区"][0]) == ("2", "2", "4")
    assert offline["一片"] == ("0", "0.0")
    hours = {n: float(offline[n][1]) for n in ("桥元村", "白沙村", "叶集区")}
    assert 2 * 24 < hours["桥元村"] <= 2 * START_AGO / 3600
    assert abs(hours["桥元村"] + hours["白沙村"] - hours["叶集区"]) <= 0.1
    assert by_name["钱邻长"]["断线超过一天的呼叫盒"] == ""
    # No water alarms in this story: none counted, no rate (nothing to divide).
    assert (village["无用水报警：报警"], village["无用水报警：误报率(%)"]) == ("0", "")
    assert by_name["钱邻长"]["持续用水报警：报警"] == ""  # a person's row has no alarms
    shown = bidao(data_dir, "report", "--days", "7").stdout
    assert (
        "五、呼叫盒断线超过一天（近7天；断线期间老人按键无法呼叫）\n"
        "  桥元村：2 台呼叫盒断线超过一天" in shown
    )
    chief = by_name["钱邻长"]
    assert (chief["类别"], chief["层级或职务"], chief["所属"]) == (
        "人员",
        "邻长",
        "桥元村一片三组一邻",
    )
    assert chief["编码"] == ""  # people by name, never by id
    # The imported name that is a formula stays text in Excel.
    assert "'" + FORMULA_VILLAGE in by_name
    for r in rows:
        for cell in r:
            assert not cell.startswith(("=", "+", "-", "@")), cell


def test_excel_workbook_for_the_county_office(data_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "报表.xlsx"
    done = bidao(data_dir, "report", "--days", "7", "--xlsx", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"已导出 {path}（15 行）\n"
    book = load_workbook(path)
    assert book.sheetnames == ["统计", "邻长考核牌", "说明"]
    sheet = book["统计"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == HEADERS
    by_name = {r[2]: dict(zip(HEADERS, r, strict=True)) for r in rows[1:]}
    village = by_name["桥元村"]
    assert (village["呼叫数"], village["办结率(%)"], village["准时接单率(%)"]) == (4, 100.0, 66.7)
    assert village["一半呼叫接单用时(分钟)"] == 3.0
    assert "'" + FORMULA_VILLAGE in by_name
    for cell in sheet["C"]:
        assert cell.data_type == "s", cell.value  # names are text, never formulas
    cards = [list(r) for r in book["邻长考核牌"].iter_rows(values_only=True)]
    assert cards == [
        ["姓名", "所在", "牌", "准时率", "接单"],
        ["刘邻长", "白沙村二片一组东邻", "蓝牌", None, 0],
        ["钱邻长", "桥元村一片三组一邻", "红牌", 50.0, 2],
    ]
    legend = [r[0] for r in book["说明"].iter_rows(values_only=True)]
    assert "橙：超时未办 2 件及以上" in legend


def test_an_export_that_cannot_be_written_is_one_line_and_exit_2(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "no such folder" / "报表.csv"
    done = bidao(data_dir, "report", "--csv", str(path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"bidao: 无法写入 {path}：")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
    assert not path.parent.exists()
