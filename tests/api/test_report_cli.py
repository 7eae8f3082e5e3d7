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
from collections.abc import Iterator
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
            await uow.grid.insert([GridUnit("341504-101-004", "village", FORMULA_VILLAGE, "341504-101")])
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, list(boxes.values())) as fleet:
            await _play(Calls(gw, fleet, boxes, clock))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The data folder the set-up leaves behind (the gateway stopped)."""
    folder = tmp_path_factory.mktemp("report")
    broker = MosquittoBroker(folder / "broker")
    broker.start()
    broker.wait_ready_blocking()
    try:
        asyncio.run(_build(folder, broker))
    finally:
        broker.stop()
    yield folder / "gateway"


def bidao(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `bidao` console script on the data folder."""
    env = {**os.environ, "BIDAO_DATA_DIR": str(data_dir), **ENV}
    return subprocess.run(
        [str(BIDAO), *argv], capture_output=True, text=True, check=False, timeout=60, env=env
    )


def test_report_prints(data_dir: Path) -> None:
    done = bidao(data_dir, "report", "--days", "7")
    print(done.stdout)
    print(done.stderr)
    assert done.returncode == 0
