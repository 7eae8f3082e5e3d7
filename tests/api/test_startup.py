"""`bidao run` as a person meets it: one clear line and a non-zero exit, or a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from gateway.config import load_settings
from gateway.runtime.broker import free_loopback_port
from gateway.runtime.service import GatewayService
from tests.gateway.support import send_until_acked

pytestmark = pytest.mark.slow  # each starts the `bidao` console script

BIDAO = Path(sys.executable).with_name("bidao")
BOX = "00000000000000d1"
KEY = bytes(range(16))


def write_config(tmp_path: Path, extra: str = "", **sections: str) -> tuple[Path, int, int]:
    """A config with an embedded broker and HTTP on free ports; returns (path, mqtt, http)."""
    mqtt_port, http_port = free_loopback_port(), free_loopback_port()
    mqtt = sections.get("mqtt", f"port = {mqtt_port}\nconnect_timeout_s = 5\n")
    config = tmp_path / "bidao.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nlog_format = "text"\nlog_level = "WARNING"\n{extra}'
        f"[mqtt]\n{mqtt}[http]\nport = {http_port}\n{sections.get('rest', '')}",
        encoding="utf-8",
    )
    return config, mqtt_port, http_port


def bidao_run(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`bidao run` that is expected to give up at once."""
    return subprocess.run(
        [str(BIDAO), "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        env={**os.environ, **(env or {})},
    )


def assert_one_line(result: subprocess.CompletedProcess[str], line: str, status: int) -> None:
    print(f"exit {result.returncode}: {result.stderr.strip()}")
    assert result.stderr == f"bidao: {line}\n"
    assert result.returncode == status
    assert "Traceback" not in result.stdout


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


async def register_box(config: Path) -> SimulatedDevice:
    service = GatewayService(load_settings(config))
    await service.store.open()
    try:
        await service.registry.register(BOX, "call_box", KEY)
    finally:
        await service.store.close()
    return SimulatedDevice(BOX, "call_box", KEY)


class RunningGateway:
    """`bidao run` in the background, for the cases where one must keep running beside."""

    def __init__(self, config: Path, tmp_path: Path) -> None:
        self.stderr_path = tmp_path / "first.stderr"
        with self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [str(BIDAO), "run", "--config", str(config)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )

    async def banner(self) -> str:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.process.stdout.readline), 20)
        assert line, self.stderr_path.read_text()
        return line.rstrip("\n")

    async def stop(self, sig: signal.Signals = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        status = await asyncio.to_thread(self.process.wait, 20)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


async def test_second_gateway_on_the_same_data_folder_names_the_first_and_leaves_it_alone(
    tmp_path: Path,
) -> None:
    config, mqtt_port, http_port = write_config(tmp_path)
    box = await register_box(config)
    first = RunningGateway(config, tmp_path)
    try:
        banner = await first.banner()
        print(banner)
        assert banner == (
            f"Bidao gateway running (pid {first.process.pid}): MQTT 127.0.0.1:{mqtt_port} "
            f"(embedded mosquitto), HTTP http://127.0.0.1:{http_port}; 1 devices, "
            f"0 open tickets; data in {tmp_path / 'data'}"
        )
        second = await asyncio.to_thread(bidao_run, config)
        assert_one_line(
            second,
            f"another gateway (pid {first.process.pid}) is already running on data folder "
            f"{tmp_path / 'data'}",
            1,
        )
        async with MqttFleet("127.0.0.1", mqtt_port, [box]) as fleet:
            await send_until_acked(fleet, box, box.heartbeat())
        assert first.process.poll() is None
        status = await first.stop(signal.SIGINT)
        errors = first.stderr_path.read_text()
        assert "Traceback" not in errors
        assert status == 0, errors
    finally:
        first.kill()


async def test_sigterm_stops_cleanly_with_status_0(tmp_path: Path) -> None:
    config, _, _ = write_config(tmp_path)
    gateway = RunningGateway(config, tmp_path)
    try:
        await gateway.banner()
        status = await gateway.stop(signal.SIGTERM)
        errors = gateway.stderr_path.read_text()
        assert "Traceback" not in errors
        assert status == 0, errors
    finally:
        gateway.kill()


def test_http_port_taken(tmp_path: Path, held_port: int) -> None:
    config, mqtt_port, _ = write_config(tmp_path)
    config.write_text(
        config.read_text().replace("[http]\nport = ", f"[http]\nport = {held_port}\n#")
    )
    result = bidao_run(config)
    assert_one_line(
        result, f"cannot listen for HTTP on 127.0.0.1:{held_port}: Address already in use", 1
    )
    with socket.socket() as sock:  # nothing was left running: the broker's port is free again
        sock.bind(("127.0.0.1", mqtt_port))


def test_mqtt_port_taken(tmp_path: Path, held_port: int) -> None:
    config, _, _ = write_config(tmp_path, mqtt=f"port = {held_port}\n")
    result = bidao_run(config)
    assert_one_line(
        result, f"cannot listen for MQTT on 127.0.0.1:{held_port}: Address already in use", 1
    )


def test_broker_that_cannot_be_reached(tmp_path: Path) -> None:
    port = free_loopback_port()
    config, _, _ = write_config(
        tmp_path, mqtt=f"embedded_broker = false\nport = {port}\nconnect_timeout_s = 1\n"
    )
    result = bidao_run(config)
    print(f"exit {result.returncode}: {result.stderr.strip()}")
    # The link logs its connection attempts (log level WARNING); the verdict is one line.
    said = [line for line in result.stderr.splitlines() if line.startswith("bidao: ")]
    expected = (
        f"bidao: cannot connect to the MQTT broker at 127.0.0.1:{port} within 1 s: "
        "Connection refused"
    )
    assert said == [expected]
    assert result.stderr.endswith(said[0] + "\n")
    assert "Traceback" not in result.stderr
    assert result.returncode == 1


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_database_that_is_not_a_database(tmp_path: Path, damage: str) -> None:
    config, _, _ = write_config(tmp_path)
    db = tmp_path / "data" / "bidao.db"
    db.parent.mkdir()
    if damage == "garbage":
        db.write_bytes(b"not a database at all " * 500)
    else:
        subprocess.run(
            [str(BIDAO), "device", "list", "--config", str(config)], check=True, timeout=30
        )
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    result = bidao_run(config)
    reason = "file is not a database" if damage == "garbage" else "database disk image is malformed"
    assert_one_line(result, f"{db} is not a Bidao database: {reason}", 1)


def test_unknown_setting_in_the_file(tmp_path: Path) -> None:
    config, _, _ = write_config(tmp_path, mqtt="prot = 1883\n")
    result = bidao_run(config)
    assert_one_line(result, f"unknown setting 'mqtt.prot' in {config}", 2)


def test_unknown_setting_in_the_environment(tmp_path: Path) -> None:
    config, _, _ = write_config(tmp_path)
    result = bidao_run(config, {"BIDAO_HTTP__PROT": "8080"})
    assert_one_line(result, "unknown setting BIDAO_HTTP__PROT in the environment", 2)


def test_twilio_without_its_credentials(tmp_path: Path) -> None:
    config, _, _ = write_config(
        tmp_path, rest='[notify]\nprovider = "twilio"\ntwilio_account_sid = "AC123"\n'
    )
    result = bidao_run(config)
    assert_one_line(
        result,
        f"setting 'notify' in {config}: provider 'twilio' needs notify.twilio_auth_token, "
        "notify.twilio_from",
        2,
    )
