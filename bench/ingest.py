"""Ingest throughput over a real mosquitto: group commit against one commit per frame.

Run `python bench/ingest.py [--devices 100] [--frames 20000]`. The gateway runs in this
process; the device fleet runs in a separate process (`bidao sim fleet`), as real devices
would. Prints frames/s from first publish to last protocol ack for each configuration and
the ratio of the batched pipeline to the one-transaction-per-frame baseline, both
measured in this run on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path

from device_sim.mqtt import fleet_identity
from gateway.broker import MosquittoBroker
from gateway.config import load_settings
from gateway.service import GatewayService

RESULT = re.compile(r"(\d+) frames from (\d+) devices acked in ([\d.]+) s")


async def measure(
    broker: MosquittoBroker, data_dir: Path, devices: int, frames: int, batch_max: int
) -> tuple[float, float]:
    """(frames/s, mean frames per commit) for one pipeline configuration."""
    settings = load_settings(
        data_dir=data_dir,
        log_level="WARNING",
        mqtt={"embedded_broker": False, "port": broker.port, "client_id": f"bench-{batch_max}"},
        pipeline={"batch_max": batch_max},
    )
    async with GatewayService(settings) as gw:
        for i in range(devices):
            device_id, key = fleet_identity(i)
            await gw.register_device(device_id, "water_meter", key)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        fleet = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from api.cli import main; raise SystemExit(main())",
            "sim",
            "fleet",
            "--port",
            str(broker.port),
            "--devices",
            str(devices),
            "--frames",
            str(frames),
            "--timeout",
            "600",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await fleet.communicate()
        match = RESULT.search(out.decode())
        if fleet.returncode != 0 or match is None:
            raise SystemExit(f"fleet failed: {out.decode()}")
        sent, elapsed = int(match.group(1)), float(match.group(3))
        stored = await gw.store.count_events()
        batches = gw.metrics.registry.get_sample_value("bidao_commit_batch_size_count") or 1.0
    if stored != sent:
        raise SystemExit(f"stored {stored} of {sent} frames")
    return sent / elapsed, stored / batches


async def main() -> None:
    """Measure both configurations and print the figures."""
    parser = argparse.ArgumentParser(description="Ingest throughput: group commit vs baseline")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--frames", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = MosquittoBroker(Path(tmp) / "broker")
        broker.start()
        broker.wait_ready_blocking()
        try:
            baseline, _ = await measure(
                broker, Path(tmp) / "one", args.devices, args.frames // 4, batch_max=1
            )
            batched, per_commit = await measure(
                broker, Path(tmp) / "batched", args.devices, args.frames, batch_max=500
            )
        finally:
            broker.stop()
    print(f"one commit per frame (baseline): {baseline:9.0f} frames/s")
    print(
        f"group commit (batch_max=500):    {batched:9.0f} frames/s "
        f"(mean {per_commit:.1f} frames per commit)"
    )
    print(f"ratio: {batched / baseline:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
