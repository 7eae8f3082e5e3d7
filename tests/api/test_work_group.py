"""The village work group: a ticket's progress posted to the village's WeCom group robot,
with names and times and nothing personal; a refused post is posted again later."""

from __future__ import annotations

import re
import string
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from device_sim.wecom import FakeWeCom
from firmware_protocol import IndicationKind, Key
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from gateway.services.work_group_locales import en, zh_cn
from tests.api.village import Village, open_village
from tests.gateway.support import sample, wait_for

VILLAGE_KEY, OTHER_KEY = "village-robot-key", "another-village-key"
SECRETARY_PHONE = "13800000001"
LINK = re.compile(r"https?://")


@dataclass
class Group:
    v: Village
    wecom: FakeWeCom

    def posts(self) -> list[str]:
        return self.wecom.posted(VILLAGE_KEY)

    async def posted(self, count: int) -> list[str]:
        self.v.gw.work_groups.wake()
        await wait_for(lambda: len(self.posts()) >= count, timeout=60, what=f"{count} posts")
        return self.posts()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=time.time())  # the fake robot limits posts by the wall clock


@pytest.fixture
async def group(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Group]:
    with FakeWeCom([VILLAGE_KEY, OTHER_KEY]) as wecom:
        groups = {
            "341504-101-001": wecom.url(VILLAGE_KEY),  # 桥元村
            "341504-999": wecom.url(OTHER_KEY),  # a unit the household is not in
        }
        async with open_village(
            tmp_path, broker, clock, work_group={"groups": groups, "poll_s": 3600}
        ) as v:
            yield Group(v, wecom)


async def test_a_ticket_s_progress_is_posted_to_the_village_group_without_anything_personal(
    group: Group,
) -> None:
    v = group.v
    await v.press(Key.GREEN_CALL)
    await v.box_hears(IndicationKind.HELPER_ON_THE_WAY)
    posts = await group.posted(2)
    assert re.fullmatch(
        r"【必到】工单1：张桂兰（桥元村三组12号）\d\d-\d\d \d\d:\d\d按了呼叫键，已通知负责人。",
        posts[0],
    )
    assert re.fullmatch(r"【必到】工单1：李书记\d\d-\d\d \d\d:\d\d接单，正在赶往。", posts[1])

    await v.clock.advance(12 * 60)
    await v.press(Key.GREEN_CALL, long=True)
    await v.box_hears(IndicationKind.HELPER_ARRIVED)
    posts = await group.posted(3)
    assert re.fullmatch(r"【必到】工单1：李书记\d\d-\d\d \d\d:\d\d已到达。", posts[2])

    await v.clock.advance(20 * 60)
    await v.cli("ticket", "1", "resolve")
    posts = await group.posted(4)
    assert re.fullmatch(r"【必到】工单1：\d\d-\d\d \d\d:\d\d已办结（李书记负责）。", posts[3])

    for text in posts:
        assert "4321" not in text  # the key-safe code
        assert "高血压" not in text  # the health note
        assert not LINK.search(text)  # no personal link
        assert "13912345678" not in text  # nor the resident's phone
    assert group.wecom.posted(OTHER_KEY) == []
    assert sample(v.gw, "bidao_work_group_posts_total", outcome="posted") == 4


async def test_a_refused_post_is_posted_again_and_nothing_is_posted_twice(group: Group) -> None:
    v = group.v
    group.wecom.failures_left = 1  # the robot's endpoint is down for one post
    await v.press(Key.GREEN_CALL)
    await v.box_hears(IndicationKind.HELPER_ON_THE_WAY)
    v.gw.work_groups.wake()
    await wait_for(
        lambda: sample(v.gw, "bidao_work_group_posts_total", outcome="failed") == 1,
        timeout=20,
        what="the first post refused",
    )
    assert group.posts() == []
    posts = await group.posted(2)
    assert len(posts) == 2
    assert posts[0].startswith("【必到】工单1：张桂兰")
    assert posts[1].startswith("【必到】工单1：李书记")


def test_the_posts_have_the_same_words_and_parameters_in_both_languages() -> None:
    assert zh_cn.TEXT.keys() == en.TEXT.keys()
    for kind, text in zh_cn.TEXT.items():
        names = {m[1] or m[2] for m in string.Template.pattern.findall(text) if m[1] or m[2]}
        assert names == {
            m[1] or m[2] for m in string.Template.pattern.findall(en.TEXT[kind]) if m[1] or m[2]
        }
        assert names <= {"ticket", "resident", "place", "owner", "now"}, kind
