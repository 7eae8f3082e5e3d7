"""A village for stories about boxes: the gateway, the grid, simulated devices, fake phones.

Real parts: the gateway on the test mosquitto (in-process only so that its clock is the
test's), the boxes and a water meter simulated over MQTT, the real twilio library against
the fake phone network, and `bidao` as a subprocess on the same data folder.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from api.runner import build_provider
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork, Record
from firmware_protocol import IndicationKind, Key
from firmware_protocol.indications import heard
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import gateway_settings, load_grid, wait_for

ACCOUNT = "AC" + "5e70" * 8
TOKEN = "fake-network-auth-token"
TOWNSHIP_PHONE = "13800000007"
GRID_WORKER_PHONE = "13800000003"
DAUGHTER_PHONE = "+447700900123"
LOOSE_BOX, LOOSE_KEY = "b1da000000000002", bytes(range(16, 32))
TYPO_BOX, TYPO_KEY = "b1da000000000003", bytes(range(32, 48))
METER_ID, METER_KEY = "00000000000000c1", bytes(range(48, 64))
TYPO_HOUSEHOLD = "341504-101-001-0099"  # one digit off: no such household
BIDAO = Path(sys.executable).with_name("bidao")
POLL_S = 5.0
NOBODY_REACHED_ZH = "没有联系到能来帮助您的人。请拨打110或120，或联系您的家人。"


@dataclass
class Village:
    gw: GatewayService
    phones: FakePhoneNetwork
    fleet: MqttFleet
    clock: ManualClock
    boxes: dict[str, SimulatedDevice]

    async def press(self, device_id: str, key: Key = Key.GREEN_CALL) -> int:
        """Press a key on a box; wait until the gateway answered it (ack or nack)."""
        box = self.boxes[device_id]
        frame = box.press(key)
        seq = box.next_seq - 1
        await self.fleet.send(device_id, frame)
        await wait_for(lambda: seq in box.acked or seq in box.nacked, what="press answered")
        return seq

    async def send(self, device_id: str, frame: bytes) -> None:
        """A frame from a device (a heartbeat, an alarm, a reading); waits for its answer."""
        device = self.boxes[device_id]
        await self.fleet.send(device_id, frame)
        await wait_for(lambda: not device.pending, timeout=60, what=f"{device_id} answered")

    async def box_hears(self, device_id: str) -> tuple[IndicationKind, int, str]:
        """The one indication a box heard: its kind, ticket and Chinese words."""
        box = self.boxes[device_id]
        await wait_for(lambda: bool(box.indications), what=f"{device_id} told")
        [shown] = box.indications
        said = heard(shown)
        assert said is not None
        return shown.kind, shown.ticket_ref, said.zh

    async def texts_to(self, number: str, count: int = 1) -> list[str]:
        """The SMS bodies one phone received, once it has `count` of them."""

        def sms() -> list[Record]:
            return [r for r in self.phones.received(number) if r.kind == "sms"]

        await wait_for(lambda: len(sms()) >= count, timeout=60, what=f"{count} SMS to {number}")
        return [r.body for r in sms()]

    async def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "BIDAO_DATA_DIR": str(self.gw.settings.data_dir),
            "BIDAO_SUPERVISION__CHANGES_POLL_S": str(POLL_S),  # the gateway's own setting
        }
        return await asyncio.to_thread(
            subprocess.run,
            [str(BIDAO), *argv],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=env,
        )


@asynccontextmanager
async def running_village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    """The gateway on the test broker with the village imported, its boxes (and a water
    meter, registered by the tests that want it) on MQTT, phones on the fake network."""
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        settings = gateway_settings(
            tmp_path,
            broker,
            notify={
                "provider": "twilio",
                "twilio_account_sid": ACCOUNT,
                "twilio_auth_token": TOKEN,
                "twilio_from": "+8657100000000",
                "twilio_api_base_url": phones.url,
                "send_timeout_s": 20.0,  # only a guard: 2 s made ordinary sends in doubt under load
            },
            supervision={"changes_poll_s": POLL_S},
        )
        gw = GatewayService(settings, clock, build_provider(settings))
        boxes = {
            device_id: SimulatedDevice(device_id, "call_box", key, clock=clock.now)
            for device_id, key in (
                (BOX_ID, BOX_KEY),
                (LOOSE_BOX, LOOSE_KEY),
                (TYPO_BOX, TYPO_KEY),
            )
        }
        boxes[METER_ID] = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
        async with gw:
            await load_grid(gw)
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            async with MqttFleet("127.0.0.1", broker.port, list(boxes.values())) as fleet:
                yield Village(gw, phones, fleet, clock, boxes)
                await asyncio.to_thread(phones.wait_idle)
