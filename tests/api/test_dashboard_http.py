"""The dashboard's pages over real HTTP, without a browser: refusals, scope and safety.

The same village as the browser tests (tests/api/village.py); users added with `bidao user
add`. Each refusal must be a page that says what to do, never a 500 or a changed ticket.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from firmware_protocol import Key
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.browser import PASSWORD, add_user
from tests.api.village import Village, open_village
from tests.gateway.support import sample, wait_for

VILLAGE = "341504-101-001"
RESPONDER_PHONES = [f"1380000000{i}" for i in range(1, 8)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=time.time())


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    async with open_village(tmp_path, broker, clock) as v:
        for phone in RESPONDER_PHONES:
            v.phones.script(phone).digits = ""
        await add_user(
            v.data_dir, "li.shuji", "secretary", "--unit", VILLAGE, "--contact", "1",
            "--name", "李书记",
        )  # fmt: skip
        await add_user(v.data_dir, "xiaohong", "family", "--contact", "8", "--name", "张小红")
        yield v


@asynccontextmanager
async def signed_in(v: Village, login: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=v.http.base_url) as client:
        done = await client.post("/signin", data={"login": login, "password": PASSWORD})
        assert done.status_code == 303, done.text
        yield client


async def test_nobody_signed_in_is_sent_to_the_sign_in_page_and_parts_say_401(
    village: Village,
) -> None:
    v = village
    page = await v.http.get("/dash")
    assert (page.status_code, page.headers["location"]) == (303, "/signin?next=/dash")
    assert (await v.http.get("/part/open")).status_code == 401
    assert (await v.http.get("/live")).status_code == 401
    form = await v.http.get("/signin")
    assert form.status_code == 200
    assert "用户名" in form.text
    assert "script-src 'self'" in form.headers["content-security-policy"]
    wrong = await v.http.post("/signin", data={"login": "li.shuji", "password": "not-it-at-all"})
    assert wrong.status_code == 401
    assert "用户名或密码不对" in wrong.text
    assert "bidao_session" not in wrong.headers.get("set-cookie", "")


async def test_the_pages_load_nothing_from_outside_and_serve_their_scripts(
    village: Village,
) -> None:
    async with signed_in(village, "li.shuji") as desk:
        for path in ("/dash", "/dash/water", "/dash/devices", "/dash/stats", "/dash/install"):
            page = await desk.get(path)
            assert page.status_code == 200, path
            assert not re.search(r'(src|href)="(https?:)?//', page.text), path
        for script in ("htmx.min.js", "sse.min.js", "echarts.common.min.js"):
            served = await desk.get(f"/static/vendor/{script}")
            assert served.status_code == 200
            assert len(served.content) > 2000
        assert "安装检查" in (await desk.get("/dash/install")).text


async def test_actions_from_another_site_or_with_a_bad_form_are_refused_with_a_reason(
    village: Village,
) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    async with signed_in(v, "li.shuji") as desk:
        elsewhere = await desk.post(
            "/dash/tickets/1",
            data={"action": "accept"},
            headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert elsewhere.status_code == 403
        assert "只能在本页面上操作" in elsewhere.text
        assert sample(v.gw, "bidao_api_refused_total", reason="cross_origin") == 1
        bad = await desk.post("/dash/tickets/1", data={"action": "explode"})
        assert bad.status_code == 400
        assert "表单内容不对" in bad.text
        bad = await desk.post("/dash/tickets/1", data={"action": "resolve", "category": "x"})
        assert bad.status_code == 400
        huge = await desk.post("/dash/tickets/1", data={"action": "note", "note": "字" * 5000})
        assert huge.status_code == 413
        assert "太长" in huge.text
        early = await desk.post("/dash/tickets/1", data={"action": "arrive"})
        assert early.status_code == 409
        assert "没能办成" in early.text
        missing = await desk.get("/dash/tickets/999")
        assert missing.status_code == 404
        beyond = await desk.get(f"/dash/tickets/{2**70}")  # no 64-bit integer: no 500 either
        assert beyond.status_code == 422
        assert "找不到这件工单" in missing.text
        page = await desk.get("/dash/tickets/1")
        assert 'data-status="open"' in page.text  # nothing above changed it
        taken = await desk.post(
            "/dash/tickets/1", data={"action": "accept"}, headers={"Origin": str(v.http.base_url)}
        )
        assert (taken.status_code, taken.headers["location"]) == (
            303,
            "/dash/tickets/1?done=accept",
        )
        assert 'data-status="accepted"' in (await desk.get("/dash/tickets/1")).text


async def test_family_sees_only_their_elder_and_never_the_duty_desk(village: Village) -> None:
    v = village
    await v.press(Key.GREEN_CALL)
    async with signed_in(v, "xiaohong") as family:
        page = await family.get("/family")
        assert page.status_code == 200
        assert "张桂兰的看护情况" in page.text
        for other in ("李德福", "4321", "高血压"):
            assert other not in page.text
        assert (await family.get("/dash")).headers["location"] == "/family"
        assert (await family.get("/part/open")).status_code == 404
        acted = await family.post("/dash/tickets/1", data={"action": "accept"})
        assert (acted.status_code, acted.headers["location"]) == (303, "/family")
        ticket = await family.get("/dash/tickets/1")  # its call log is not theirs to read
        assert (ticket.status_code, ticket.headers["location"]) == (303, "/family")
        assert (await family.get("/part/tickets/1")).status_code == 404
    async with signed_in(v, "li.shuji") as desk:
        assert 'data-status="open"' in (await desk.get("/dash/tickets/1")).text


async def test_marking_away_a_home_without_a_meter_says_it_is_not_watched(
    village: Village,
) -> None:
    async with signed_in(village, "li.shuji") as desk:
        refused = await desk.post(
            "/dash/water/341504-101-001-0001", data={"action": "away", "days": "3"}
        )
        assert refused.status_code == 409
        assert "这户没有在看护中" in refused.text
        bad = await desk.post("/dash/water/341504-101-001-0001", data={"action": "away"})
        assert bad.status_code == 400
        elsewhere = await desk.post("/dash/water/OTHER-VILLAGE", data={"action": "back"})
        assert elsewhere.status_code == 403
        assert "不在您的范围内" in elsewhere.text


async def test_a_disabled_account_is_sent_to_sign_in_with_a_reason_and_sign_out_works(
    village: Village,
) -> None:
    v = village
    async with signed_in(v, "li.shuji") as desk:
        assert (await desk.get("/dash")).status_code == 200
        await v.cli("user", "disable", "li.shuji")
        page = await desk.get("/dash", follow_redirects=True)
        # Disabling ends the account's sessions: the page says to sign in again.
        assert str(page.url).endswith("/signin?next=/dash&why=session_expired")
        assert "登录已过期，请重新登录。" in page.text
        assert (await desk.get("/part/open")).status_code == 401
        await v.cli("user", "disable", "li.shuji", "--enable")
    async with signed_in(v, "li.shuji") as desk:
        elsewhere = await desk.post("/signout", headers={"Origin": "http://evil.example"})
        assert (elsewhere.status_code, elsewhere.headers["location"]) == (303, "/")
        assert (await desk.get("/dash")).status_code == 200  # still signed in
        out = await desk.post("/signout", headers={"Origin": str(v.http.base_url)})
        assert (out.status_code, out.headers["location"]) == (303, "/signin")
        assert (await desk.get("/dash")).headers["location"] == "/signin?next=/dash"


async def test_the_language_switch_stays_on_this_site(village: Village) -> None:
    v = village
    switched = await v.http.get("/lang/en", params={"next": "//evil.example/x"})
    assert (switched.status_code, switched.headers["location"]) == (303, "/")
    assert "bidao_lang=en" in switched.headers["set-cookie"]
    english = await v.http.get("/signin", headers={"Cookie": "bidao_lang=en"})
    assert "Sign in with the login and password" in english.text


async def test_every_open_stream_hears_of_a_press_and_ends_when_the_server_stops(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    heard: list[list[str]] = [[], [], []]

    async def listen(client: httpx.AsyncClient, lines: list[str]) -> None:
        async with client.stream("GET", "/live") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            async for line in stream.aiter_lines():
                lines.append(line)  # noqa: PERF401 - kept as they come: the test watches it grow

    async with open_village(tmp_path, broker, clock) as v:
        for phone in RESPONDER_PHONES:
            v.phones.script(phone).digits = ""
        await add_user(v.data_dir, "li.shuji", "secretary", "--unit", VILLAGE, "--contact", "1")
        async with signed_in(v, "li.shuji") as desk:
            streams = [asyncio.create_task(listen(desk, lines)) for lines in heard]
            await wait_for(lambda: all("retry: 2000" in h for h in heard), what="connected")
            await v.press(Key.GREEN_CALL)
            await wait_for(
                lambda: all("event: changed" in h for h in heard), timeout=20, what="told"
            )
            # The gateway stops with the streams still open: they end, nothing hangs.
            v.gw.request_stop()
            await v.gw.stopped()
            await asyncio.wait_for(asyncio.gather(*streams), 20)
