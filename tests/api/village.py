"""A village for stories told through real surfaces: the grid imported with the `bidao`
command, boxes (and meters) over a real broker, phones on the fake phone network, the
responder page over real HTTP. The gateway runs in-process only so that its clock is the
test's. Shared by tests/api/test_story.py and tests/api/test_water_watch.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from api.app import http_component
from api.runner import build_provider
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork
from firmware_protocol import IndicationKind, Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY, CONTACTS_CSV, HOUSEHOLDS_CSV, UNITS_CSV
from tests.gateway.support import bidao, gateway_settings, twilio_notify, wait_for

ACCOUNT = "AC" + "5707" * 8
TOKEN = "story-network-auth-token"


@dataclass
class Village:
    gw: GatewayService
    phones: FakePhoneNetwork
    box: SimulatedDevice
    fleet: MqttFleet
    http: httpx.AsyncClient
    data_dir: Path
    clock: ManualClock
    devices: dict[str, SimulatedDevice] = field(default_factory=dict)
    """Every simulated device of the village by id (the box included)."""

    async def cli(self, *argv: str) -> str:
        """The `bidao` command, as an operator or official runs it beside the gateway."""
        done = await asyncio.to_thread(bidao, self.data_dir, *argv)
        assert (done.returncode, done.stderr) == (0, ""), (argv, done.stderr)
        return done.stdout

    async def press(self, key: Key, *, long: bool = False) -> None:
        """The resident presses a key; returns once the box has its acknowledgement."""
        await self.fleet.send(BOX_ID, self.box.press(key, 1, long))
        await wait_for(lambda: not self.box.pending, timeout=60, what=f"{key.name} acked")

    async def box_hears(self, kind: IndicationKind) -> None:
        await wait_for(
            lambda: any(i.kind == kind for i in self.box.indications),
            timeout=60,
            what=f"the box told {kind.name}",
        )

    def sms(self, number: str) -> list[str]:
        return [r.body for r in self.phones.received(number) if r.kind == "sms"]

    async def sms_to(self, number: str, count: int) -> list[str]:
        # A bound for when something is broken, not a timing: two suites at once took > 20 s.
        await wait_for(lambda: len(self.sms(number)) >= count, timeout=60, what=f"SMS {number}")
        return self.sms(number)


@asynccontextmanager
async def open_village(
    tmp_path: Path,
    broker: MosquittoBroker,
    clock: ManualClock,
    *,
    devices: Sequence[tuple[SimulatedDevice, str]] = (),
    notify_more: dict[str, Any] | None = None,
    **overrides: Any,
) -> AsyncIterator[Village]:
    """The example village running, with its call box and `devices` (each with the household
    it is added to with `bidao device add`) online; `overrides` are more settings, and
    `notify_more` more `notify` settings (a throttle, ...)."""
    port = free_loopback_port()
    public_url = f"http://127.0.0.1:{port}"
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        settings = gateway_settings(
            tmp_path,
            broker,
            http={"port": port},
            notify=twilio_notify(
                public_url, phones, bridge_to_resident=False, **(notify_more or {})
            ),
            **overrides,
        )
        # The installer imports the village with the command, before the gateway starts.
        files = tmp_path / "files"
        files.mkdir()
        for kind, text in (
            ("units", UNITS_CSV),
            ("households", HOUSEHOLDS_CSV),
            ("contacts", CONTACTS_CSV),
        ):
            path = files / f"{kind}.csv"
            path.write_text(text, encoding="utf-8")
            done = await asyncio.to_thread(bidao, settings.data_dir, "import", kind, str(path))
            assert done.returncode == 0, done.stderr
        for device, household in devices:
            done = await asyncio.to_thread(
                bidao,
                settings.data_dir,
                "device",
                "add",
                device.device_id,
                "--kind",
                device.kind,
                "--key",
                device.key.hex(),
                "--household",
                household,
            )
            assert done.returncode == 0, done.stderr
        gw = GatewayService(settings, clock, build_provider(settings))
        gw.add_component("http", http_component(for_service(gw)))
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        everyone = [box, *(device for device, _ in devices)]
        async with gw, httpx.AsyncClient(base_url=public_url) as http:
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)

            async def up() -> bool:
                try:
                    return (await http.get("/healthz")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(up, what="HTTP server up")
            async with MqttFleet("127.0.0.1", broker.port, everyone) as fleet:
                yield Village(
                    gw,
                    phones,
                    box,
                    fleet,
                    http,
                    settings.data_dir,
                    clock,
                    {d.device_id: d for d in everyone},
                )
                await asyncio.to_thread(phones.wait_idle)
