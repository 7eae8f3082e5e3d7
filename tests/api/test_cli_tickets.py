"""`bidao tickets` and `bidao ticket N ...`: what an operator sees and does, as a subprocess.

The history is made by a real gateway (broker, simulated box, store, outbox with the console
provider) on a ManualClock set to 2026-11-30 14:05 in China; the command line then reads
and acts on the same data folder, while that gateway runs and after it has stopped.
"""

# ruff: noqa: E501 - the expected output is kept line for line as the command prints it

from __future__ import annotations

import asyncio
import subprocess
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import get_args
from zoneinfo import ZoneInfo

import pytest

from alerts.locales import en as messages_en
from alerts.locales import zh_cn as messages_zh
from api import cli_tickets_en, cli_tickets_zh
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.domain.tickets import (
    ESCALATION_TEMPLATES,
    EVENT_KINDS,
    ActionChannel,
    Ticket,
)
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY, SECRETARY
from tests.gateway.support import bidao, gateway_settings, load_grid, wait_for

# Hang guard only: each test starts the `bidao` command many times, and on a loaded machine
# one start takes seconds.
pytestmark = pytest.mark.timeout(300)

START = datetime(2026, 11, 30, 14, 5, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
MINUTE = 60.0
OTHER_HOUSEHOLD = "341504-101-001-0002"


@dataclass
class Story:
    gw: GatewayService
    box: SimulatedDevice
    fleet: MqttFleet
    clock: ManualClock
    data: Path

    async def press(self, key: Key) -> None:
        await self.fleet.send(BOX_ID, self.box.press(key, 1))
        await wait_for(lambda: not self.box.pending, what="key press acked")

    async def all_sent(self) -> None:
        async def settled() -> bool:
            entries = await self.gw.store.outbox.entries()
            return all(e.status in ("delivered", "failed", "merged") for e in entries)

        await wait_for(settled, what="every notification handed to the provider")

    async def latest(self) -> Ticket:
        tickets = await self.gw.store.tickets.all()
        return tickets[-1]

    async def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """The command line, run while this gateway keeps running."""
        return await asyncio.to_thread(bidao, self.data, *argv)


@pytest.fixture
async def story(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[Story]:
    clock = ManualClock(START)
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    settings = gateway_settings(tmp_path, broker, http={"enabled": False})
    async with GatewayService(settings, clock) as gw:
        await load_grid(gw)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            yield Story(gw, box, fleet, clock, settings.data_dir)


async def _closed_loop(s: Story) -> int:
    """Press → calls → 1 pressed → accepted → arrived → classified, resolved, noted → 👍."""
    await s.press(Key.GREEN_CALL)
    await s.all_sent()
    ticket = await s.latest()
    call = next(
        e
        for e in await s.gw.store.outbox.entries()
        if e.contact_id == SECRETARY and e.channel == "voice"
    )
    await s.clock.advance(2 * MINUTE)
    assert await s.gw.outbox.record_keypress(call.id, "1")
    await s.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    await s.all_sent()
    await s.clock.advance(12 * MINUTE)
    application = for_service(s.gw)
    await application.arrive_ticket(ticket.id, None, "api")
    await s.all_sent()  # the family's SMS goes before the next one could join it
    await s.clock.advance(20 * MINUTE)
    await application.resolve_ticket(
        ticket.id, SECRETARY, "api", category="ordinary", note="换了灯泡，老人一切安好"
    )
    await s.all_sent()
    await s.clock.advance(5 * MINUTE)
    await s.press(Key.THUMBS_UP)
    assert (await s.latest()).status == "rated"
    return ticket.id


TIMELINE = """\
工单 ticket 1 · 已评价 rated · 呼叫时间 opened 2026-11-30 14:05
居民 resident：张桂兰，13912345678 · 地址 address：桥元村三组12号
位置 place：叶集区 三元镇 桥元村 一片 三组 一邻 · 户号 household 341504-101-001-0001 · 呼叫器 box b1da000000000001
负责人 owner：李书记（村书记 village secretary，13800000001） · 类别 category：一般 ordinary · 评价 rating：满意（点赞） satisfied (thumbs up)

11-30 14:05  按下呼叫键 call key pressed：共1次 1 in all
11-30 14:05  电话 call → 李书记（村书记 village secretary）：呼叫上门 call for help — 已接通 call connected，按1接单 pressed 1: accept
11-30 14:05  短信 SMS → 李书记（村书记 village secretary）：呼叫上门 call for help — 已送达 delivered
11-30 14:05  短信 SMS → 钱邻长（邻长 neighbour chief）：告知有人呼叫 told of the call — 已送达 delivered
11-30 14:05  短信 SMS → 张小红（家属 family）：告知家属：老人呼叫 family told: their elder called — 已送达 delivered
11-30 14:07  接单 accepted：李书记（村书记 village secretary），经电话按键 via phone key
11-30 14:07  短信 SMS → 钱邻长（邻长 neighbour chief）：已有人接单 someone has taken it — 已送达 delivered
11-30 14:07  短信 SMS → 李书记（村书记 village secretary）：已接单，如何报告进度 accepted: how to report progress — 已送达 delivered
11-30 14:07  短信 SMS → 李书记（村书记 village secretary）：钥匙盒密码和健康提示 key-safe code and health notes — 已送达 delivered
11-30 14:07  短信 SMS → 张小红（家属 family）：告知家属：已有人接单 family told: someone accepted — 已送达 delivered
11-30 14:19  到达 arrived，经接口 via API
11-30 14:19  短信 SMS → 张小红（家属 family）：告知家属：已到达 family told: the helper arrived — 已送达 delivered
11-30 14:39  分类 classified：李书记（村书记 village secretary），一般 ordinary，经接口 via API
11-30 14:39  备注 note：李书记（村书记 village secretary），换了灯泡，老人一切安好，经接口 via API
11-30 14:39  已解决 resolved：李书记（村书记 village secretary），经接口 via API
11-30 14:39  短信 SMS → 张小红（家属 family）：告知家属：已办结 family told: resolved — 已送达 delivered
11-30 14:44  评价 rated：满意（点赞） satisfied (thumbs up)，呼叫器 box b1da000000000001
"""


FRAGMENTS = {"not_recorded", "digest_same"}
"""Catalogue entries that are parts of other texts, never a message of their own."""


def test_every_message_event_channel_and_reason_has_words_in_both_languages() -> None:
    """A template or event kind added to the rules without words here fails this test."""
    sent = {
        t
        for catalogue in (messages_zh.TEMPLATES, messages_en.TEMPLATES)
        for t in catalogue
        if not t.startswith("voice_") and t not in FRAGMENTS
    }
    wanted: dict[str, set[str]] = {
        "TEMPLATE": sent,
        "EVENT": set(EVENT_KINDS),
        "ACTION_CHANNEL": set(get_args(ActionChannel)),
        "WHY": {*ESCALATION_TEMPLATES, "not arrived"},
    }
    for table, keys in wanted.items():
        zh_words: dict[str, str] = getattr(cli_tickets_zh, table)
        en_words: dict[str, str] = getattr(cli_tickets_en, table)
        missing = sorted(
            k for k in keys if not zh_words.get(k, "").strip() or zh_words[k].isascii()
        )
        assert missing == [], f"cli_tickets_zh.{table} has no Chinese words for {missing}"
        missing = sorted(k for k in keys if not en_words.get(k, "").strip())
        assert missing == [], f"cli_tickets_en.{table} has no English words for {missing}"
    assert {"family_called", "device_offline", "ticket_accepted_link"} <= sent
    assert {"owner_alerted", "reassigned", "rated_down"} <= set(EVENT_KINDS)


async def test_the_timeline_of_a_closed_loop_word_for_word(story: Story) -> None:
    ticket_id = await _closed_loop(story)
    shown = await story.cli("ticket", str(ticket_id))
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == ""
    assert shown.stdout == TIMELINE
    # An unknown ticket: one line, Chinese first, exit 1, no traceback.
    missing = await story.cli("ticket", "999")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "bidao: 没有第999号工单（no ticket 999）\n"
    acting = await story.cli("ticket", "999", "arrive")
    assert (acting.returncode, acting.stderr) == (1, missing.stderr)


async def test_the_list_its_filters_and_its_columns(story: Story) -> None:
    first = await _closed_loop(story)
    await story.clock.advance(60 * MINUTE)  # 15:44: the box calls again, a new ticket
    await story.press(Key.GREEN_CALL)
    second = (await story.latest()).id
    await story.all_sent()
    await story.gw.tickets.accept(second, SECRETARY, "voice_keypress")

    listed = await story.cli("tickets", "--all")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    header = lines[0]
    titles = ["工单 ticket", "类型 kind", "状态 status", "居民 resident", "地址 address"]
    titles += ["呼叫时间 opened"]
    titles += ["时长 age", "负责人 owner"]
    # Where each column starts on the screen, counting a Chinese character as two columns.
    starts = [display_width(header[: header.index(t)]) for t in titles]
    assert columns(header, starts) == titles
    assert set(lines[1].strip()) == {"─"}
    live_age = columns(lines[2], starts)[6]
    assert columns(lines[2], starts) == [
        str(second),
        "呼叫 call",
        "已接单 accepted",
        "张桂兰",
        "桥元村三组12号",
        "11-30 15:44",
        live_age,
        "李书记",
    ]
    assert columns(lines[3], starts) == [
        str(first), "呼叫 call", "已评价 rated", "张桂兰", "桥元村三组12号", "11-30 14:05", "34分钟 34 min",
        "李书记",
    ]  # fmt: skip
    assert lines[4] == "共2个工单 2 ticket(s)"

    def ids(result: subprocess.CompletedProcess[str]) -> list[str]:
        assert result.returncode == 0, result.stderr
        return [line.split()[0] for line in result.stdout.splitlines()[2:-1]]

    assert ids(await story.cli("tickets", "--status", "accepted", "--all")) == [str(second)]
    assert ids(await story.cli("tickets", "--status", "rated", "--status", "open", "--all")) == [
        str(first)
    ]
    assert ids(await story.cli("tickets", "--village", "桥元村", "--all")) == [
        str(second),
        str(first),
    ]
    assert ids(await story.cli("tickets", "--village", "341504-101-001", "--all")) == [
        str(second),
        str(first),
    ]
    assert ids(await story.cli("tickets", "--household", OTHER_HOUSEHOLD, "--all")) == []
    # The story is in the past of the machine's clock: only the live ticket is recent.
    assert ids(await story.cli("tickets", "--days", "0.001")) == [str(second)]

    negative = await story.cli("tickets", "--days", "-1")
    assert (negative.returncode, negative.stdout) == (2, "")
    assert negative.stderr == (
        "bidao: 天数必须是正数，而不是 -1（the number of days must be positive, not -1）\n"
    )
    nowhere = await story.cli("tickets", "--village", "无此村")
    assert (nowhere.returncode, nowhere.stdout) == (2, "")
    assert nowhere.stderr == (
        "bidao: 没有代码或名称为“无此村”的村（no village has the code or name '无此村'）\n"
    )


async def test_actions_while_the_gateway_runs(story: Story) -> None:
    await story.press(Key.GREEN_CALL)
    ticket = await story.latest()
    await story.all_sent()
    n = str(ticket.id)
    nobody = await story.cli("ticket", n, "accept")
    assert (nobody.returncode, nobody.stdout) == (2, "")
    assert nobody.stderr == (
        "bidao: 请用 --by 说明是谁接的单（编号、电话或姓名）"
        "（say with --by who accepted it (contact id, phone or name)）\n"
    )
    accepted = await story.cli("ticket", n, "accept", "--by", "李书记")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout == f"第{n}号工单：李书记已接单 ticket {n}: accepted by 李书记\n"
    late = await story.cli("ticket", n, "accept", "--by", "王副书记")
    assert (late.returncode, late.stdout) == (1, "")
    assert late.stderr == (
        f"bidao: 第{n}号工单已由李书记接单，没有改动"
        f"（ticket {n} was already accepted by 李书记; nothing changed）\n"
    )
    # Another 李书记, in the township: the name alone no longer says who.
    result = await story.gw.import_csv(
        "contacts",
        "name,role,unit_code,household_code,phone,language,available_from,available_to\n"
        "李书记,township_duty,341504-101,,13800000099,zh-CN,,\n",
    )
    assert result.rejected == 0, result.errors

    ambiguous = await story.cli("ticket", n, "arrive", "--by", "李书记")
    assert (ambiguous.returncode, ambiguous.stdout) == (2, "")
    assert ambiguous.stderr == (
        "bidao: 有多个联系人符合“李书记”，请用编号：（several contacts match '李书记'; use an id:）\n"
        "  1 李书记（村书记 village secretary，13800000001）\n"
        "  9 李书记（镇值班 township duty officer，13800000099）\n"
    )
    assert (await story.latest()).status == "accepted"  # nothing was changed

    arrived = await story.cli("ticket", n, "arrive", "--by", "138-0000-0001")
    assert arrived.returncode == 0, arrived.stderr
    assert arrived.stdout == f"第{n}号工单：李书记已到达 ticket {n}: 李书记 has arrived\n"
    noted = await story.cli("ticket", n, "note", "老人血压偏高，已联系家属")
    assert noted.returncode == 0, noted.stderr
    handed = await story.cli("ticket", n, "reassign", "王副书记", "--by", "1")
    assert handed.returncode == 0, handed.stderr
    assert handed.stdout == f"第{n}号工单：已转交王副书记 ticket {n}: handed over to 王副书记\n"
    again = await story.cli("ticket", n, "arrive")
    assert again.returncode == 1
    assert again.stderr.splitlines()[0] == (
        f"bidao: 第{n}号工单现在是“已到达”，不能记录到达"
        f"（ticket {n} is on site; it cannot record an arrival）"
    )
    resolved = await story.cli("ticket", n, "resolve", "--category", "urgent", "--note", "已送医")
    assert resolved.returncode == 0, resolved.stderr
    assert resolved.stdout == f"第{n}号工单：已由王副书记解决 ticket {n}: resolved by 王副书记\n"

    stored = await story.latest()
    assert (stored.status, stored.category, stored.owner_contact_id) == ("resolved", "urgent", 2)
    trail = [
        (e.kind, e.contact_id, e.detail) for e in await story.gw.store.tickets.events(stored.id)
    ]
    assert trail[1:] == [
        ("accepted", SECRETARY, ""),
        ("accept_too_late", 2, ""),
        ("on_site", SECRETARY, ""),
        ("note", None, "老人血压偏高，已联系家属"),
        ("reassigned", SECRETARY, f"from {SECRETARY} to 2"),
        ("classified", 2, "urgent"),
        ("note", 2, "已送医"),
        ("resolved", 2, ""),
    ]
    shown = await story.cli("ticket", n)
    assert shown.returncode == 0, shown.stderr
    assert "备注 note：老人血压偏高，已联系家属，经命令行 via command line" in shown.stdout
    assert (
        "转交 handed over：李书记（村书记 village secretary），"
        "由李书记转交给王副书记 from 李书记 to 王副书记，经命令行 via command line"
    ) in shown.stdout


def display_width(text: str) -> int:
    """Terminal columns, as wcwidth counts them: wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def columns(line: str, starts: list[int]) -> list[str]:
    """Cut a line at display columns."""
    cells, col, current, i = [], 0, "", 0
    bounds = [*starts[1:], 10_000]
    for ch in line:
        if col >= bounds[i]:
            cells.append(current.strip())
            current, i = "", i + 1
        current += ch
        col += display_width(ch)
    cells.append(current.strip())
    return cells
