"""Nothing lost, nothing doubled: 10,000 frames through a gateway killed or a broker restarted."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet, fleet_identity
from firmware_protocol import position
from gateway.config import load_settings
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from tests.gateway.support import send_until_acked, start_gateway, wait_for

DEVICES = 100
FRAMES_PER_DEVICE = 100
TOTAL = DEVICES * FRAMES_PER_DEVICE

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def write_config(tmp_path: Path, broker: MosquittoBroker) -> Path:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "gateway"}"\n'
        'log_format = "text"\nlog_level = "WARNING"\n'
        "[mqtt]\n"
        "embedded_broker = false\n"
        f"port = {broker.port}\n"
        'client_id = "bidao-crash-test"\n'
        "reconnect_initial_s = 0.05\nreconnect_max_s = 0.5\n"
        "[http]\n"
        f"port = {free_loopback_port()}\n"
    )
    return config


def stored_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


async def register_fleet(config: Path) -> list[SimulatedDevice]:
    devices = []
    service = GatewayService(load_settings(config))
    await service.store.open()
    try:
        for i in range(DEVICES):
            device_id, key = fleet_identity(i)
            # Meters: they send both heartbeats and readings (a call box has no readings).
            await service.registry.register(device_id, "water_meter", key)
            device = SimulatedDevice(device_id, "water_meter", key)
            device.queue_max = None  # a stress sender: every frame must arrive exactly once
            devices.append(device)
    finally:
        await service.store.close()
    return devices


async def send_frames(fleet: MqttFleet, devices: list[SimulatedDevice], rounds: range) -> None:
    for r in rounds:
        for device in devices:
            frame = device.heartbeat(uptime_s=r) if r % 2 else device.water_reading(r * 10, 0, 0)
            await fleet.send(device.device_id, frame)


async def deliver_everything(fleet: MqttFleet, devices: list[SimulatedDevice]) -> None:
    """Retransmit what was not acked, as a real device does, until every frame is acked."""
    for _ in range(60):
        try:
            await fleet.wait_all_acked(5)
        except TimeoutError:
            await fleet.retransmit_pending()
        else:
            break
    assert sum(len(d.pending) for d in devices) == 0


def assert_exactly_once(db: Path, devices: list[SimulatedDevice]) -> None:
    with sqlite3.connect(db) as conn:
        stored = conn.execute("SELECT device_id, seq FROM events").fetchall()
    # The store keeps a position as position - 2**63 (gateway/store/sqlite.py, _pos_in).
    rows = [(device_id, seq + (1 << 63)) for device_id, seq in stored]
    expected = {
        (d.device_id, position(d.session, q)) for d in devices for q in range(1, d.next_seq)
    }
    assert len(expected) == TOTAL + 1  # and the probe
    assert len(rows) == len(expected)
    assert set(rows) == expected
    assert all(len(d.acked) == d.next_seq - 1 for d in devices)


async def run_with_fault(
    tmp_path: Path, broker: MosquittoBroker, fault: Callable[[subprocess.Popen[bytes]], object]
) -> subprocess.Popen[bytes]:
    config = write_config(tmp_path, broker)
    db = tmp_path / "gateway" / "bidao.db"
    devices = await register_fleet(config)
    log = tmp_path / "gateway.log"
    gateway = start_gateway(config, log)
    try:
        async with MqttFleet("127.0.0.1", broker.port, devices) as fleet:
            # A first frame, resent until acked: the gateway's session exists from then on.
            await send_until_acked(fleet, devices[0], devices[0].heartbeat())
            await send_frames(fleet, devices, range(FRAMES_PER_DEVICE // 2))
            await wait_for(lambda: stored_count(db) >= TOTAL // 5, timeout=60, what="progress")
            replacement = fault(gateway)
            at_fault = stored_count(db)
            assert TOTAL // 5 <= at_fault <= TOTAL // 2 + 1  # mid-stream (and the probe)
            if isinstance(replacement, subprocess.Popen):
                gateway = replacement
            await send_frames(fleet, devices, range(FRAMES_PER_DEVICE // 2, FRAMES_PER_DEVICE))
            await deliver_everything(fleet, devices)
        gateway.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(gateway.wait, 30) == 0, log.read_text()[-3000:]
        assert_exactly_once(db, devices)
        metrics = (tmp_path / "gateway" / "metrics.prom").read_text()
        duplicates = [line for line in metrics.splitlines() if line.startswith("bidao_frames_dup")]
        print(f"stored at the fault: {at_fault}; after restart: {duplicates}")
        return gateway
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait()


async def test_gateway_sigkilled_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config = tmp_path / "gateway.toml"

    def kill_and_restart(gateway: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        gateway.send_signal(signal.SIGKILL)
        gateway.wait()
        return start_gateway(config, tmp_path / "gateway.log")

    await run_with_fault(tmp_path, broker, kill_and_restart)


async def test_broker_restarted_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    await run_with_fault(tmp_path, broker, lambda _gateway: broker.restart())
