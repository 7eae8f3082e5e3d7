"""Ingest throughput over one real mosquitto: the whole pipeline against a bare paho subscriber.

Run `python bench/ingest.py [--frames 60000] [--devices 100] [--rounds 3]`. One mosquitto
(started by `MosquittoBroker`, so with Bidao's queue limits and persistence) runs on a free
loopback port for the whole run. Every measurement uses the same publisher, a separate
process (`python -m bench.burst`) that builds and MACs every frame first and then
publishes them at QoS 1 as fast as the broker takes them. What receives them differs:

- bare paho: a paho-mqtt v5 client in a process of its own that subscribes at QoS 1 and
  only counts; msg/s from the first message received to the last.
- pipeline: `GatewayService` in this process (decode, MAC check, replay window, dedupe,
  group commit to SQLite with WAL and synchronous=FULL, protocol ack downlink, MQTT PUBACK
  after the commit); frames/s from the first frame received to the last one committed and
  acknowledged, checked by counting the stored events and the protocol acks.
- baseline (once, fewer frames): the same pipeline with one commit per frame.

Each round measures bare paho, then the pipeline, and prints their ratio; the target is a
pipeline at two thirds of the bare rate or more. Other load on the machine moves both
figures, so the ratio within one round is the figure that counts. The databases go to a
temporary directory (`--dir` to choose where: on tmpfs an fsync is free and the figures
mean little). Nothing subscribes to the downlinks, so the broker drops the protocol acks
after its PUBACK instead of delivering them to devices.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from device_sim.device import fleet_identity
from firmware_protocol import UPLINK_SUBSCRIPTION
from gateway.config import load_settings
from gateway.ingest.links import InboundFrame
from gateway.ingest.transports.mqtt import MqttLink
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService

TARGET = 2 / 3
REPO = Path(__file__).resolve().parent.parent
"""Where `python -m bench.burst` is found."""
PUBLISHED = re.compile(r"(\d+) frames from (\d+) devices published in ([\d.]+) s")
RECEIVED = re.compile(r"received (\d+) messages in ([\d.]+) s")
SUBSCRIBED = "subscribed"
RECEIVE_MAXIMUM = 1000
"""As the gateway asks for (MqttSettings.receive_maximum), so both receivers get as much."""


@dataclass(frozen=True, slots=True)
class Figure:
    """One measurement: what the receiver did and how fast the publisher published."""

    frames: int
    seconds: float
    publisher_rate: float

    @property
    def rate(self) -> float:
        """Frames (messages) per second."""
        return self.frames / self.seconds


# The bare subscriber: run as `python bench/ingest.py --bare-subscriber PORT FRAMES`.


def bare_subscriber(port: int, frames: int, idle_timeout: float) -> int:
    """Subscribe at QoS 1, count `frames` messages and print how long they took."""
    first = last = 0.0
    count = 0

    def on_message(_client: paho.Client, _userdata: Any, _msg: paho.MQTTMessage) -> None:
        nonlocal first, last, count
        last = time.perf_counter()
        if count == 0:
            first = last
        count += 1

    def on_subscribe(*_args: Any) -> None:
        print(SUBSCRIBED, flush=True)

    def on_socket_open(_client: paho.Client, _userdata: Any, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as the gateway does

    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-bare-{time.monotonic_ns()}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    client.on_socket_open = on_socket_open
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.ReceiveMaximum = RECEIVE_MAXIMUM
    client.connect("127.0.0.1", port, properties=props)
    client.subscribe(UPLINK_SUBSCRIPTION, options=SubscribeOptions(qos=1))
    seen, quiet_since = 0, time.monotonic()
    while count < frames:
        if client.loop(0.5) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            print("connection lost", flush=True)
            return 1
        if count != seen:
            seen, quiet_since = count, time.monotonic()
        elif time.monotonic() - quiet_since > idle_timeout:
            print(f"only {count} of {frames} messages arrived", flush=True)
            return 1
    client.disconnect()
    print(f"received {count} messages in {last - first:.6f} s", flush=True)
    return 0


# Measurements, driven from the event loop.


async def publish(port: int, devices: int, frames: int) -> float:
    """Run the burst publisher to completion; its rate (first PUBLISH to last PUBACK)."""
    fleet = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.burst",
        "--port",
        str(port),
        "--devices",
        str(devices),
        "--frames",
        str(frames),
        "--session",
        "1",
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, _ = await fleet.communicate()
    match = PUBLISHED.search(out.decode())
    if fleet.returncode != 0 or match is None:
        raise SystemExit(f"publisher failed: {out.decode()}")
    # A small burst on a fast machine can take well under a millisecond: never divide by 0.
    return int(match.group(1)) / max(float(match.group(3)), 1e-6)


async def measure_bare(port: int, devices: int, frames: int, timeout: float) -> Figure:
    """A paho subscriber in its own process that only counts what arrives."""
    sub = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--bare-subscriber",
        str(port),
        str(frames),
        str(timeout),
        stdout=asyncio.subprocess.PIPE,
    )
    assert sub.stdout is not None
    line = await sub.stdout.readline()
    if line.decode().strip() != SUBSCRIBED:
        raise SystemExit(f"bare subscriber failed: {line.decode()}")
    publisher_rate = await publish(port, devices, frames)
    out, _ = await sub.communicate()
    match = RECEIVED.search(out.decode())
    if sub.returncode != 0 or match is None:
        raise SystemExit(f"bare subscriber failed: {out.decode()}")
    return Figure(int(match.group(1)), float(match.group(2)), publisher_rate)


class Probe:
    """Times the gateway from its first frame received to its last frame done.

    The gateway sends a frame's PUBACK only after the frame is committed and its protocol
    ack is handed to the link (acks go at QoS 0, written as they are handed over); the
    measurement then waits until no QoS 1 downlink is held or in flight either. Only the first
    submit and every queued PUBACK pass through the probe: one call per frame more.
    """

    def __init__(self, link: MqttLink, expected: int) -> None:
        self.expected = expected
        self.first = 0.0
        self.last = 0.0
        self.acked = 0
        self.done = asyncio.Event()
        submit = link._submit
        queue_puback = link._queue_puback

        def first_submit(frame: InboundFrame) -> bool:
            self.first = time.perf_counter()
            link._submit = submit
            return submit(frame)

        def counted_puback(client: paho.Client, mid: int) -> None:
            # PUBACKs of one turn of the loop go out together, written right after it.
            queue_puback(client, mid)
            self.acked += 1
            if self.acked == self.expected:
                self.last = time.perf_counter()
                self.done.set()

        link._submit = first_submit
        link._queue_puback = counted_puback  # type: ignore[method-assign]


async def measure_pipeline(
    port: int, data_dir: Path, devices: int, frames: int, batch_max: int, timeout: float
) -> tuple[Figure, float]:
    """(figure, mean frames per commit) of the gateway with this batch size."""
    settings = load_settings(
        data_dir=data_dir,
        log_level="WARNING",
        mqtt={
            "embedded_broker": False,
            "port": port,
            "client_id": f"bench-gateway-{time.monotonic_ns()}",
        },
        pipeline={"batch_max": batch_max},
    )
    async with GatewayService(settings) as gw:
        for i in range(devices):
            device_id, key = fleet_identity(i)
            await gw.register_device(device_id, "water_meter", key)
        link = gw.mqtt
        assert link is not None
        await link.wait_connected(10)
        probe = Probe(link, frames)
        publisher_rate = await publish(port, devices, frames)
        try:
            async with asyncio.timeout(timeout):
                await probe.done.wait()
                # Nothing may be left in the link's send window (QoS 1 downlinks) either.
                while link.held or link.in_flight:  # noqa: ASYNC110 - polls the link's own state
                    await asyncio.sleep(0.001)
                probe.last = time.perf_counter()
        except TimeoutError:
            raise SystemExit(f"only {probe.acked} of {frames} frames acked in time") from None
        stored = await gw.store.devices.count_events()
        registry = gw.metrics.registry
        acked = registry.get_sample_value("bidao_acks_sent_total", {"code": "ACCEPTED"}) or 0.0
        commits = registry.get_sample_value("bidao_commit_batch_size_count") or 1.0
        rejected = sum(
            sample.value
            for metric in gw.metrics.frames_rejected.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
    if stored != frames or acked != frames or rejected:
        raise SystemExit(
            f"of {frames} frames: {stored} stored, {acked:.0f} acked, {rejected:.0f} rejected"
        )
    return Figure(frames, probe.last - probe.first, publisher_rate), stored / commits


def spread(values: list[float]) -> str:
    """Median and range."""
    low, high = min(values), max(values)
    return f"median {statistics.median(values):7.0f}  (min {low:.0f}, max {high:.0f})"


async def run(args: argparse.Namespace, root: Path) -> None:
    """Every measurement against one broker; prints as it goes."""
    broker = MosquittoBroker(root / "broker")
    queue_limit = broker.settings.max_queued_messages
    if args.frames > queue_limit:
        raise SystemExit(f"--frames above the broker's per-client queue ({queue_limit}) drops")
    broker.start()
    await broker.wait_ready()
    bare_rates, pipe_rates, ratios = [], [], []
    try:
        conf = broker.settings
        print(
            f"mosquitto on 127.0.0.1:{broker.port} (persistence on, max_queued_messages "
            f"{conf.max_queued_messages}, max_inflight_messages {conf.max_inflight_messages}); "
            f"{args.frames} frames from {args.devices} devices per measurement, QoS 1; "
            f"SQLite WAL, synchronous=FULL, in {root}"
        )
        for n in range(1, args.rounds + 1):
            bare = await measure_bare(broker.port, args.devices, args.frames, args.timeout)
            pipe, per_commit = await measure_pipeline(
                broker.port, root / f"pipeline-{n}", args.devices, args.frames, 500, args.timeout
            )
            ratio = pipe.rate / bare.rate
            bare_rates.append(bare.rate)
            pipe_rates.append(pipe.rate)
            ratios.append(ratio)
            print(
                f"round {n}: bare paho {bare.rate:7.0f} msg/s | pipeline {pipe.rate:7.0f} "
                f"frames/s ({per_commit:.0f} frames per commit) | ratio {ratio:.2f} | "
                f"publisher {bare.publisher_rate:.0f} / {pipe.publisher_rate:.0f} msg/s",
                flush=True,
            )
        if args.baseline_frames:
            base, _ = await measure_pipeline(
                broker.port, root / "baseline", args.devices, args.baseline_frames, 1, args.timeout
            )
    finally:
        await asyncio.to_thread(broker.stop)
    print(f"bare paho subscriber (QoS 1):    {spread(bare_rates)} msg/s")
    print(f"pipeline (group commit, 500):    {spread(pipe_rates)} frames/s")
    if args.baseline_frames:
        print(
            f"one commit per frame (baseline): {base.rate:7.0f} frames/s "
            f"({args.baseline_frames} frames); group commit is "
            f"{statistics.median(pipe_rates) / base.rate:.1f}x that"
        )
    ratio = statistics.median(ratios)
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(
        f"pipeline / bare paho: median {ratio:.2f} (min {min(ratios):.2f}, max {max(ratios):.2f});"
        f" target {TARGET:.2f} {verdict}"
    )


def main() -> None:
    """Parse the options and run the bench (or, as a child process, the bare subscriber)."""
    if len(sys.argv) == 5 and sys.argv[1] == "--bare-subscriber":
        raise SystemExit(bare_subscriber(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    parser = argparse.ArgumentParser(description="Ingest throughput: pipeline vs bare paho")
    parser.add_argument("--frames", type=int, default=60_000, help="per measurement")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="bare + pipeline pairs")
    parser.add_argument(
        "--baseline-frames", type=int, default=3_000, help="one commit per frame; 0 to skip"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per measurement")
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
