"""Gateway test helpers: settings on a real broker and store, bounded waits, metric samples."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork
from gateway.config import Settings, load_settings
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from gateway.services.grid_import import ImportKind
from tests.gateway.grid import CONTACTS_CSV, HOUSEHOLDS_CSV, UNITS_CSV

_client_ids = itertools.count()


async def load_grid(gw: GatewayService) -> None:
    """Import the test village (units, households with their box, contacts); no row refused."""
    files: tuple[tuple[ImportKind, str], ...] = (
        ("units", UNITS_CSV),
        ("households", HOUSEHOLDS_CSV),
        ("contacts", CONTACTS_CSV),
    )
    for kind, text in files:
        result = await gw.import_csv(kind, text)
        assert result.rejected == 0, result.errors


def gateway_settings(tmp_path: Path, broker: MosquittoBroker | None, **overrides: Any) -> Settings:
    """Settings for a gateway on the test broker (or with MQTT off) that reconnects quickly."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "gateway",
        "log_format": "text",
        "mqtt": {
            "enabled": broker is not None,
            "embedded_broker": False,
            "port": broker.port if broker is not None else 1883,
            "client_id": f"bidao-test-{next(_client_ids)}",
            "reconnect_initial_s": 0.05,
            "reconnect_max_s": 0.5,
        },
    }
    values.update(overrides)
    return load_settings(**values)


async def wait_for(
    predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 60.0, what: str = ""
) -> None:
    """Poll a condition that depends on real I/O, failing after `timeout` seconds.

    The bound is generous: the machines are shared and slow, and only a failing test waits
    it out.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def sample(service: GatewayService, name: str, **labels: str) -> float:
    """The current value of one metric sample (0 if it was never touched)."""
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def start_gateway(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """`bidao run --config CONFIG` in a process of its own, output appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from api.entry import main; raise SystemExit(main())",
                "run",
                "--config",
                str(config),
            ],
            stdout=out,
            stderr=out,
        )


async def send_until_acked(fleet: MqttFleet, device: SimulatedDevice, frame: bytes) -> None:
    """Send a frame and resend it, as firmware does, until a gateway acknowledges it."""
    await fleet.send(device.device_id, frame)
    for _ in range(120):
        try:
            await fleet.wait_all_acked(0.5)
        except TimeoutError:
            await fleet.retransmit_pending()
        else:
            return
    pytest.fail(f"frame from {device.device_id} was never acknowledged")


BIDAO = Path(sys.executable).with_name("bidao")
"""The console script of this virtualenv."""


def bidao(data_dir: Path, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the installed `bidao` command against one data folder, as a person would."""
    env = {**os.environ, "BIDAO_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [str(BIDAO), *argv], capture_output=True, text=True, check=False, timeout=timeout, env=env
    )


def twilio_notify(public_url: str, phones: FakePhoneNetwork, **more: object) -> dict[str, object]:
    """The `notify` settings of a gateway whose twilio provider talks to the fake network
    `phones`, its webhooks at `public_url`; `more` adds or overrides settings."""
    return {
        "provider": "twilio",
        "public_url": public_url,
        "twilio_account_sid": phones.account_sid,
        "twilio_auth_token": phones.auth_token,
        "twilio_from": "+8657100000000",
        "twilio_api_base_url": phones.url,
        **more,
    }
