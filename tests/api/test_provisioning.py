"""Provisioning through the JSON API, as an installer in the field does it.

The two villages of tests/api/api_people.py run in one gateway (a real broker, the fake phone
network, the HTTP server on a loopback port). New boxes are simulated devices on the broker;
the installer 孙 (units: 桥元村) registers them from a manufacturer's CSV, binds them, runs the
install check by pressing the keys, prints labels; the installer 刘 of the other village
tries the same on 桥元村's devices on purpose and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import segno

from device_sim.device import SimulatedDevice
from firmware_protocol import Key
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.api.api_people import (
    HOUSEHOLD_A,
    HOUSEHOLD_A2,
    HOUSEHOLD_B,
    LOOSE_BOX_B,
    PASSWORD,
    SECRETARY_PHONE,
    VILLAGE_A,
    VILLAGE_B,
    People,
    open_people,
)
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import BIDAO, sample, wait_for

pytestmark = pytest.mark.timeout(300)

NEW_BOX = "b1da0000000000c1"
NEW_KEY = bytes(range(32, 48))
SPARE_BOX = "b1da0000000000c2"
SPARE_KEY = bytes(range(48, 64))
METER = "b1da0000000000d1"
METER_KEY = bytes(range(64, 80))
KEYS = {NEW_KEY, SPARE_KEY, METER_KEY, BOX_KEY}
ALL_KEYS = (Key.GREEN_CALL, Key.RED_HANGUP, Key.THUMBS_UP, Key.THUMBS_DOWN)


def key_texts() -> list[str]:
    """Every way a key could show up in a response: hex either case."""
    return [t for k in KEYS for t in (k.hex(), k.hex().upper())]


class Field:
    """The installer's world: the villages, new boxes on the broker, what every answer said."""

    def __init__(self, people: People) -> None:
        self.people = people
        self.v = people.v
        self.bodies: list[str] = []
        self.boxes: dict[str, SimulatedDevice] = {}

    def new_device(self, device_id: str, kind: str, key: bytes) -> SimulatedDevice:
        """A device out of the manufacturer's box, on the broker (unknown until registered)."""
        device = SimulatedDevice(device_id, kind, key, clock=self.v.clock.now)  # type: ignore[arg-type]
        self.v.fleet.add(device)
        self.boxes[device_id] = device
        return device

    async def client(self, login: str) -> httpx.AsyncClient:
        """A signed-in client whose every answer (but event streams) is kept in `bodies`."""

        async def keep(response: httpx.Response) -> None:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()
                self.bodies.append(response.text)

        client = httpx.AsyncClient(base_url=self.people.base_url, event_hooks={"response": [keep]})
        self.people.clients.append(client)
        signed = await client.post("/api/v1/session", json={"login": login, "password": PASSWORD})
        assert signed.status_code == 200, signed.text
        return client

    async def press(self, device_id: str, key: Key) -> None:
        """The installer presses a key; returns once the box has its acknowledgement."""
        device = self.boxes.get(device_id) or self.v.box
        await self.v.fleet.send(device_id, device.press(key, 1, False))
        await wait_for(lambda: not device.pending, timeout=60, what=f"{key.name} acked")

    async def reading(self, device_id: str, litres: int, flow_lph: int = 0) -> None:
        device = self.boxes[device_id]
        await self.v.fleet.send(device_id, device.water_reading(litres, flow_lph))
        await wait_for(lambda: not device.pending, timeout=60, what="reading acked")

    async def tickets(self) -> list[dict[str, Any]]:
        admin = self.people.with_token(self.people.token)
        page = (await admin.get("/api/v1/tickets", params={"days": 1})).json()
        return list(page["items"])

    def no_keys_anywhere(self) -> None:
        """No answer the API gave contained a device key."""
        assert self.bodies
        for body in self.bodies:
            for text in key_texts():
                assert text not in body


@pytest.fixture
async def field(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Field]:
    async with open_people(tmp_path, broker, clock, monkeypatch) as people:
        await people.app.add_user("sun", "孙安装", "installer", PASSWORD, (VILLAGE_A,), None, "t")
        yield Field(people)


def batch_csv(*rows: tuple[str, bytes | str, str]) -> str:
    lines = ["serial,key,kind"]
    for serial, key, kind in rows:
        lines.append(f"{serial},{key.hex() if isinstance(key, bytes) else key},{kind}")
    return "\n".join(lines) + "\n"


async def next_event(lines: AsyncIterator[str]) -> dict[str, Any]:
    """The next `event: check` of a server-sent event stream, as JSON."""
    event: dict[str, str] = {}
    async for line in lines:
        if not line:
            if event.get("event") == "check":
                return dict(json.loads(event["data"]))
            event = {}
            continue
        name, _, value = line.partition(":")
        event[name] = value.strip()
    pytest.fail("the event stream ended")


async def test_four_keys_make_a_box_active_and_nobody_is_called_meanwhile(field: Field) -> None:
    f, v = field, field.v
    sun = await f.client("sun")
    box = f.new_device(NEW_BOX, "call_box", NEW_KEY)

    # The manufacturer's sheet for two boxes, registered in 孙's village.
    done = await sun.post(
        "/api/v1/devices/batch",
        json={
            "unit_code": VILLAGE_A,
            "csv": batch_csv((NEW_BOX, NEW_KEY, "call_box"), (SPARE_BOX, SPARE_KEY, "")),
        },
    )
    assert done.status_code == 201, done.text
    assert done.json() == {"count": 2, "devices": [NEW_BOX, SPARE_BOX]}
    state = (await sun.get(f"/api/v1/devices/{NEW_BOX}/installation")).json()
    assert (state["state"], state["reason"]) == ("pending", "never_checked")

    # Bound to 李德福's household, then checked.
    bound = await sun.post(
        f"/api/v1/devices/{NEW_BOX}/attach", json={"household_code": HOUSEHOLD_A2}
    )
    assert bound.status_code == 200, bound.text
    started = await sun.post(f"/api/v1/devices/{NEW_BOX}/install-checks")
    assert started.status_code == 201, started.text
    check = started.json()
    assert check["state"] == "running"
    assert check["missing"] == ["green", "red", "thumbs_up", "thumbs_down"]
    assert "请在呼叫盒上依次按下四个键" in check["message"]
    url = f"/api/v1/install-checks/{check['id']}"

    # The page follows the check live; each key appears as it arrives.
    async with sun.stream("GET", f"{url}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert (await next_event(lines))["missing"] == check["missing"]
        for i, key in enumerate(ALL_KEYS):
            await f.press(NEW_BOX, key)
            now = (await sun.get(url)).json()
            seen = [k["key"] for k in now["keys"] if k["seen"]]
            assert seen == ["green", "red", "thumbs_up", "thumbs_down"][: i + 1]
            live = await next_event(lines)
            assert [k["key"] for k in live["keys"] if k["seen"]] == seen
            # The box was answered, no ticket was raised, nobody was called.
            assert box.acked
            assert not box.nacked
            assert await f.tickets() == []
        assert live["state"] == "passed"
        with pytest.raises(StopAsyncIteration):
            await anext(lines)  # the stream ends with the check
    await asyncio.to_thread(v.phones.wait_answered)
    assert v.phones.records == []
    assert await f.people.app.alarms() == []
    assert sample(v.gw, "bidao_install_checks_total", event="press_withheld") == 4
    assert sample(v.gw, "bidao_install_checks_total", event="passed") == 1

    passed = (await sun.get(url)).json()
    assert passed["state"] == "passed"
    assert passed["missing"] == []
    assert "检测通过" in passed["message"]
    state = (await sun.get(f"/api/v1/devices/{NEW_BOX}/installation")).json()
    assert state["state"] == "active"
    assert "已启用" in state["message"]

    # Checked and active, the box's green reaches a person again.
    await f.press(NEW_BOX, Key.GREEN_CALL)
    tickets = await f.tickets()
    assert [t["household_code"] for t in tickets] == [HOUSEHOLD_A2]
    await wait_for(
        lambda: any(r.kind == "call" for r in v.phones.received(SECRETARY_PHONE)),
        timeout=20,
        what="the secretary called",
    )
    f.no_keys_anywhere()


async def test_a_key_that_never_arrives_leaves_the_box_pending_and_its_green_still_calls(
    field: Field,
) -> None:
    f, v = field, field.v
    sun = await f.client("sun")
    started = await sun.post(f"/api/v1/devices/{BOX_ID}/install-checks")
    assert started.status_code == 201, started.text
    url = f"/api/v1/install-checks/{started.json()['id']}"
    for key in ALL_KEYS[:3]:  # the thumbs-down key is broken
        await f.press(BOX_ID, key)
    assert await f.tickets() == []
    running = (await sun.get(url)).json()
    assert running["state"] == "running"
    assert running["missing"] == ["thumbs_down"]

    # The check's time runs out.
    await v.clock.advance(v.gw.settings.provisioning.install_check_s + 1)

    async def failed() -> bool:
        return bool((await sun.get(url)).json()["state"] == "failed")

    await wait_for(failed, timeout=60, what="the check failed")
    check = (await sun.get(url)).json()
    assert check["reason"] == "missing_keys"
    assert sample(v.gw, "bidao_install_checks_total", event="failed") == 1
    assert check["missing"] == ["thumbs_down"]
    assert "没有收到点踩键" in check["message"]
    assert "thumbs-down never arrived" in check["message"]
    state = (await sun.get(f"/api/v1/devices/{BOX_ID}/installation")).json()
    assert (state["state"], state["reason"]) == ("pending", "missing_keys")
    assert await f.tickets() == []
    assert v.phones.records == []

    # Pending is no gate: with no check running, 张桂兰's green reaches the secretary.
    await f.press(BOX_ID, Key.GREEN_CALL)
    assert [t["household_code"] for t in await f.tickets()] == [HOUSEHOLD_A]
    await wait_for(
        lambda: any(r.kind == "call" for r in v.phones.received(SECRETARY_PHONE)),
        timeout=20,
        what="the secretary called",
    )
    f.no_keys_anywhere()


async def test_a_meter_passes_when_water_runs(field: Field) -> None:
    f = field
    admin = await f.client("admin")
    f.new_device(METER, "water_meter", METER_KEY)
    done = await admin.post(
        "/api/v1/devices",
        json={
            "device_id": METER.upper(),
            "kind": "water_meter",
            "key": METER_KEY.hex(),
            "unit_code": VILLAGE_A,
        },
    )
    assert done.status_code == 201, done.text
    assert done.json()["device_id"] == METER
    started = (await admin.post(f"/api/v1/devices/{METER}/install-checks")).json()
    assert "放水" in started["message"]
    url = f"/api/v1/install-checks/{started['id']}"
    await f.reading(METER, 1000)
    assert (await admin.get(url)).json()["state"] == "running"
    await f.reading(METER, 1000)  # the tap not open yet
    assert (await admin.get(url)).json()["state"] == "running"
    await f.reading(METER, 1006, 360)
    check = (await admin.get(url)).json()
    assert check["state"] == "passed"
    assert [r["litres"] for r in check["readings"]] == [1000, 1000, 1006]
    assert check["keys"] == []
    f.no_keys_anywhere()


async def test_an_installer_outside_the_area_changes_nothing(field: Field) -> None:
    f, v = field, field.v
    sun = await f.client("sun")
    liu = await f.client("liu")  # installer of 柳树村
    li = await f.client("li")  # 桥元村's secretary: reads devices, does not install them
    check = (await sun.post(f"/api/v1/devices/{BOX_ID}/install-checks")).json()

    def refused(response: httpx.Response, status: int = 404) -> None:
        assert response.status_code == status, response.text
        assert response.json()["error"] == ("not_found" if status == 404 else "forbidden")
        assert HOUSEHOLD_A not in response.text

    refused(await liu.post(f"/api/v1/devices/{BOX_ID}/install-checks"))
    refused(await liu.get(f"/api/v1/install-checks/{check['id']}"))
    refused(await liu.get(f"/api/v1/install-checks/{check['id']}/events"))
    refused(await liu.post(f"/api/v1/install-checks/{check['id']}/cancel"))
    refused(await liu.get(f"/api/v1/devices/{BOX_ID}/installation"))
    refused(await liu.get(f"/api/v1/devices/{BOX_ID}/label.svg"))
    refused(await liu.post(f"/api/v1/devices/{BOX_ID}/rotate-key"))
    refused(await liu.post(f"/api/v1/devices/{BOX_ID}/decommission"))
    refused(
        await liu.post(f"/api/v1/devices/{BOX_ID}/replace", json={"new_device_id": LOOSE_BOX_B})
    )
    # Binding his own loose box to a household of the other village.
    refused(
        await liu.post(
            f"/api/v1/devices/{LOOSE_BOX_B}/attach", json={"household_code": HOUSEHOLD_A2}
        )
    )
    refused(
        await liu.post(
            "/api/v1/devices",
            json={"device_id": NEW_BOX, "key": NEW_KEY.hex(), "unit_code": VILLAGE_A},
        )
    )
    refused(
        await liu.post(
            "/api/v1/devices/batch",
            json={"unit_code": VILLAGE_A, "csv": batch_csv((SPARE_BOX, SPARE_KEY, "call_box"))},
        )
    )
    refused(await li.post(f"/api/v1/devices/{BOX_ID}/install-checks"), 403)
    refused(await li.post(f"/api/v1/devices/{BOX_ID}/decommission"), 403)

    # Nothing changed: the check runs on, the box is where it was, no device was added.
    admin = f.people.with_token(f.people.token)
    assert (await admin.get(f"/api/v1/install-checks/{check['id']}")).json()["state"] == "running"
    box = (await admin.get(f"/api/v1/devices/{BOX_ID}")).json()
    assert (box["enabled"], box["household_code"]) == (True, HOUSEHOLD_A)
    loose = (await admin.get(f"/api/v1/devices/{LOOSE_BOX_B}")).json()
    assert loose["household_code"] is None
    for serial in (NEW_BOX, SPARE_BOX):
        assert (await admin.get(f"/api/v1/devices/{serial}")).status_code == 404
    records = {d.device_id: d for d in await f.people.app.list_devices()}
    assert records[BOX_ID].next_key is None
    # 刘 works in his own village: his loose box to 王老汉's household.
    own = await liu.post(
        f"/api/v1/devices/{LOOSE_BOX_B}/attach", json={"household_code": HOUSEHOLD_B}
    )
    assert own.status_code == 200, own.text
    assert VILLAGE_B in own.json()["unit_code"]
    refusals = [e for e in await f.people.app.audit_log(50) if e.login == "liu"]
    assert any(e.action == "device.attach" and e.outcome == "ok" for e in refusals)

    # 孙 starts the check again (the old one ends), then cancels it: the box stays pending.
    again = (await sun.post(f"/api/v1/devices/{BOX_ID}/install-checks")).json()
    old = (await sun.get(f"/api/v1/install-checks/{check['id']}")).json()
    assert (old["state"], old["reason"]) == ("cancelled", "restarted")
    cancelled = await sun.post(f"/api/v1/install-checks/{again['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert "检测已取消" in cancelled.json()["message"]
    twice = await sun.post(f"/api/v1/install-checks/{again['id']}/cancel")
    assert (twice.status_code, twice.json()["error"]) == (409, "device_refused")
    state = (await sun.get(f"/api/v1/devices/{BOX_ID}/installation")).json()
    assert (state["state"], state["reason"]) == ("pending", "cancelled")
    assert [c["id"] for c in state["checks"]] == [again["id"], check["id"]]
    assert v.phones.records == []


async def test_a_batch_with_bad_rows_is_refused_whole_with_each_row_named(field: Field) -> None:
    f = field
    sun = await f.client("sun")
    text = batch_csv(
        (NEW_BOX, NEW_KEY, "call_box"),  # line 2: good
        (SPARE_BOX, "abc", "call_box"),  # line 3: a short key
        (NEW_BOX, NEW_KEY, "call_box"),  # line 4: line 2 again
        ("not-a-serial", METER_KEY, "call_box"),  # line 5
        (METER, METER_KEY, "fridge"),  # line 6
    )
    refused = await sun.post("/api/v1/devices/batch", json={"unit_code": VILLAGE_A, "csv": text})
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["error"] == "batch_refused"
    assert "整批设备未导入" in body["message"]
    assert [(r["line"], r["problem"]) for r in body["rows"]] == [
        (3, "bad_key"),
        (4, "duplicate_serial"),
        (5, "bad_serial"),
        (6, "bad_kind"),
    ]
    assert body["rows"][1]["message"] == (
        f"第4行：序列号 {NEW_BOX} 与第2行重复。 / line 4: serial {NEW_BOX} is on line 2 already."
    )
    for serial in (NEW_BOX, SPARE_BOX, METER):
        assert (await sun.get(f"/api/v1/devices/{serial}")).status_code == 404

    # A serial registered already refuses the whole file too.
    first = await sun.post(
        "/api/v1/devices/batch",
        json={"unit_code": VILLAGE_A, "csv": batch_csv((NEW_BOX, NEW_KEY, "call_box"))},
    )
    assert first.status_code == 201, first.text
    again = await sun.post(
        "/api/v1/devices/batch",
        json={
            "unit_code": VILLAGE_A,
            "csv": batch_csv((SPARE_BOX, SPARE_KEY, "call_box"), (NEW_BOX, NEW_KEY, "call_box")),
        },
    )
    assert again.status_code == 422
    assert [(r["line"], r["problem"]) for r in again.json()["rows"]] == [(3, "already_registered")]
    assert (await sun.get(f"/api/v1/devices/{SPARE_BOX}")).status_code == 404
    no_header = await sun.post(
        "/api/v1/devices/batch", json={"unit_code": VILLAGE_A, "csv": "id;secret\n1;2\n"}
    )
    assert [r["problem"] for r in no_header.json()["rows"]] == ["bad_header"]
    # An installer must say where the devices go.
    nowhere = await sun.post("/api/v1/devices/batch", json={"csv": batch_csv()})
    assert nowhere.status_code == 422
    assert nowhere.json()["error"] == "bad_input"
    f.no_keys_anywhere()


async def test_label_replace_rotate_and_decommission(field: Field) -> None:
    f = field
    sun = await f.client("sun")
    label = await sun.get(f"/api/v1/devices/{BOX_ID}/label.svg")
    assert label.status_code == 200
    assert label.headers["content-type"].startswith("image/svg+xml")
    svg = label.text
    assert "b1da 0000 0000 0001" in svg
    assert f"<title>{BOX_ID}</title>" in svg
    assert "呼叫盒 / call box" in svg
    # The QR code is the id's and nothing else's: segno draws the same path for it.
    path = segno.make(BOX_ID, error="m").svg_inline(scale=5, border=4).split(' d="')[1]
    assert path.split('"')[0] in svg

    # A spare box (registered, no household) takes over 张桂兰's household.
    done = await sun.post(
        "/api/v1/devices",
        json={"device_id": SPARE_BOX, "key": SPARE_KEY.hex(), "unit_code": VILLAGE_A},
    )
    assert done.status_code == 201, done.text
    assert done.json()["unit_code"] == VILLAGE_A
    replaced = await sun.post(
        f"/api/v1/devices/{BOX_ID}/replace", json={"new_device_id": SPARE_BOX}
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["old_device_id"] == BOX_ID
    assert body["household_code"] == HOUSEHOLD_A
    assert body["new"]["household_code"] == HOUSEHOLD_A
    history = await f.people.app.device_history(BOX_ID)
    assert [(h.action, h.actor) for h in history][-1] == ("replaced", "user:sun")

    rotated = await sun.post(f"/api/v1/devices/{SPARE_BOX}/rotate-key")
    assert rotated.status_code == 200, rotated.text
    records = {d.device_id: d for d in await f.people.app.list_devices()}
    new_key = records[SPARE_BOX].next_key
    assert new_key is not None
    assert new_key.hex() not in rotated.text

    gone = await sun.post(f"/api/v1/devices/{SPARE_BOX}/decommission")
    assert gone.status_code == 200, gone.text
    assert gone.json()["enabled"] is False
    again = await sun.post(f"/api/v1/devices/{SPARE_BOX}/decommission")
    assert again.status_code == 409
    assert again.json()["error"] == "device_refused"
    f.no_keys_anywhere()
    for body_text in f.bodies:
        assert new_key.hex() not in body_text


async def test_the_command_line_check_prints_each_key_as_it_arrives(field: Field) -> None:
    f, v = field, field.v
    process = await asyncio.create_subprocess_exec(
        str(BIDAO),
        "device",
        "check",
        BOX_ID,
        "--by",
        "孙安装",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "BIDAO_DATA_DIR": str(v.data_dir)},
    )
    stdout = process.stdout
    assert stdout is not None
    out: list[str] = []

    async def line() -> str:
        raw: bytes = await asyncio.wait_for(stdout.readline(), 60)
        text = raw.decode().rstrip("\n")
        out.append(text)
        return text

    try:
        assert (await line()).startswith("第1号检测已开始：请在10分钟内依次按下设备")
        assert (await line()).startswith("Check 1 started: press each of the four keys")
        # The gateway reads the check from the store at the box's next press.
        for key, words in zip(
            ALL_KEYS,
            ("绿键（呼叫） / received: green (call)", "红键（挂断）", "点赞键", "点踩键"),
            strict=True,
        ):
            await f.press(BOX_ID, key)
            assert words in await line()
            assert await f.tickets() == []
        assert "检测通过" in await line()
        assert await asyncio.wait_for(process.wait(), 60) == 0, out
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert v.phones.records == []
    admin = await f.client("admin")
    view = (await admin.get(f"/api/v1/devices/{BOX_ID}/installation")).json()
    assert view["state"] == "active"
    assert view["checks"][0]["started_by"] == "孙安装"
