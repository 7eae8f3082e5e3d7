"""Ingest throughput over a real mosquitto: group commit against one commit per frame.

    python bench/ingest.py [--devices 100] [--frames 20000]

Prints frames/s for each configuration and the ratio of the batched pipeline to the
one-frame-per-transaction baseline, both measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet, fleet_identity
from gateway.broker import MosquittoBroker
from gateway.config import load_settings
from gateway.service import GatewayService


async def measure(
    broker: MosquittoBroker, data_dir: Path, devices: int, frames: int, batch_max: int
) -> float:
    """Frames per second from first publish to last protocol ack."""
    settings = load_settings(
        data_dir=data_dir,
        log_level="WARNING",
        mqtt={"embedded_broker": False, "port": broker.port, "client_id": f"bench-{batch_max}"},
        pipeline={"batch_max": batch_max},
    )
    sims = []
    async with GatewayService(settings) as gw:
        for i in range(devices):
            device_id, key = fleet_identity(i)
            await gw.register_device(device_id, "water_meter", key)
            sims.append(SimulatedDevice(device_id, "water_meter", key))
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, sims) as fleet:
            started = time.perf_counter()
            for r in range(frames // devices):
                for sim in sims:
                    await fleet.send(sim.device_id, sim.water_reading(r, 0, 0))
            await fleet.wait_all_acked(600)
            elapsed = time.perf_counter() - started
        stored = await gw.store.count_events()
    assert stored == (frames // devices) * devices, stored
    return stored / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--frames", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "broker")
        broker.start()
        broker.wait_ready_blocking()
        try:
            baseline = await measure(
                broker, Path(tmp) / "one", args.devices, args.frames // 4, batch_max=1
            )
            batched = await measure(
                broker, Path(tmp) / "batched", args.devices, args.frames, batch_max=500
            )
        finally:
            broker.stop()
    print(f"one commit per frame (baseline): {baseline:9.0f} frames/s")
    print(f"group commit (batch_max=500):    {batched:9.0f} frames/s")
    print(f"ratio: {batched / baseline:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
