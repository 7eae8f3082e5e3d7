"""Calls for help under load: green press → box ack and → provider request, per background rate.

Run `python -m bench.latency [--rates 0,1000,2000,3500] [--quick]` from the repository root.

One run starts its own mosquitto (`set_tcp_nodelay true`, persistence, Bidao's queue limits)
on a free loopback port, measures a bare paho v5 subscriber on it first (bench/ingest.py's,
fed by `bidao sim fleet --lean`) for scale, then imports a grid with `bidao import`: one
village per call box that will press green (each with its own secretary, so a provider
request names its press), plus the background boxes; the background meters are registered
through the application facade. The gateway runs as `bidao run` with the twilio provider
pointed at `bidao sim phones serve`, all as subprocesses.

For each background rate, a publisher process sends heartbeats (boxes) and readings (meters)
round-robin at QoS 1 for `--phase` seconds, while `--presses` fresh boxes each press green
once at a random moment. Green → ack is timed in this process (paho subscribed to those
boxes' downlinks only); green → provider request is the fake phone network's arrival time of
the first SMS or call to that box's secretary. Clocks are the machine's wall clock.
Between phases the gateway's backlog drains (bounded by `--settle`). The gateway's acked
rate comes from its /metrics; its CPU from /proc; the machine's from /proc/stat.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    Children,
    Gateway,
    PublishPlan,
    TimedDevices,
    box_identity,
    children,
    contacts_csv,
    free_port,
    gateway_config,
    households_csv,
    import_grid,
    machine_busy,
    percentiles,
    provider_requests,
    publisher_result,
    register_meters,
    secretary_phone,
    start_gateway,
    start_mosquitto,
    start_phones,
    start_publisher,
    units_csv,
)
from bench.ingest import measure_bare
from device_sim.device import SimulatedDevice
from firmware_protocol import Key

SEQ_STRIDE = 1_000_000
"""Each phase's background frames start this far above the previous phase's."""


@dataclass(frozen=True, slots=True)
class Phase:
    """One background rate's figures."""

    rate: float
    offered: float
    acked_rate: float
    ack_ms: dict[str, float]
    provider_ms: dict[str, float]
    presses: int
    missing_acks: int
    missing_requests: int
    gateway_cpu: float
    machine_busy: float
    load1: float
    drain_s: float


def wait_healthy(gw: Gateway, timeout: float = 60) -> None:
    """Until /healthz answers 200 (the broker link is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{gw.http_port}/healthz", timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the gateway did not report healthy in time")


def first_requests(phones_url: str, since: float) -> dict[str, float]:
    """Arrival time of the first provider request per number at or after `since`."""
    first: dict[str, float] = {}
    for record in provider_requests(phones_url):
        at = float(record["created_at"])
        if at >= since and at < first.get(record["to"], math.inf):
            first[record["to"]] = at
    return first


def run_phase(
    kids: Children,
    args: argparse.Namespace,
    n: int,
    rate: float,
    port: int,
    gw: Gateway,
    phones_url: str,
    presser: TimedDevices,
    boxes: Sequence[tuple[int, SimulatedDevice]],
) -> Phase:
    """One background rate: publisher, presses at random moments, then settle and measure."""
    acks0, cpu0, busy0 = gw.acks(), gw.cpu_seconds(), machine_busy()
    started = time.time()
    publisher = None
    if rate > 0:
        plan = PublishPlan(
            port,
            (args.presses * len(args.rates), args.devices // 2),
            (0, args.devices - args.devices // 2),
            rate,
            args.phase,
            1 + n * SEQ_STRIDE,
        )
        publisher = start_publisher(kids, plan)
    rng = random.Random(n)
    moments = sorted(rng.uniform(0.5, args.phase - 0.5) for _ in boxes)
    sent: dict[str, tuple[str, int, float]] = {}
    for moment, (village, box) in zip(moments, boxes, strict=True):
        time.sleep(max(0.0, started + moment - time.time()))
        seq = box.next_seq
        presser.send(box.device_id, box.press(Key.GREEN_CALL), seq)
        sent[secretary_phone(village)] = (box.device_id, seq, presser.sent[(box.device_id, seq)])
    time.sleep(max(0.0, started + args.phase - time.time()))
    elapsed = time.time() - started
    acks1, cpu1, busy1 = gw.acks(), gw.cpu_seconds(), machine_busy()
    load1 = os.getloadavg()[0]
    offered = 0.0
    expected = acks0 + len(boxes)
    if publisher is not None:
        published = publisher_result(kids, publisher, args.phase + 30)
        offered = published.rate
        expected += published.sent
    # Settle: every press acked and requested, and the background backlog drained.
    settle_start = time.monotonic()
    requests: dict[str, float] = {}
    while time.monotonic() - settle_start < args.settle:
        requests = first_requests(phones_url, started)
        if gw.acks() >= expected and all(phone in requests for phone in sent):
            break
        time.sleep(0.5)
    drain_s = time.monotonic() - settle_start
    ack_ms, provider_ms = [], []
    missing_acks = 0
    for phone, (device_id, seq, at) in sent.items():
        acked = presser.acked.get((device_id, seq))
        if acked is None:
            missing_acks += 1
        else:
            ack_ms.append((acked - at) * 1000)
        if phone in requests:
            provider_ms.append((requests[phone] - at) * 1000)
    busy = (busy1[0] - busy0[0]) / max(1.0, busy1[1] - busy0[1])
    return Phase(
        rate=rate,
        offered=offered,
        acked_rate=(acks1 - acks0 - len(boxes)) / elapsed,
        ack_ms=percentiles(ack_ms),
        provider_ms=percentiles(provider_ms),
        presses=len(boxes),
        missing_acks=missing_acks,
        missing_requests=len(sent) - len(provider_ms),
        gateway_cpu=(cpu1 - cpu0) / elapsed,
        machine_busy=busy,
        load1=load1,
        drain_s=drain_s,
    )


def _ms(figures: dict[str, float]) -> str:
    return " / ".join("-" if math.isnan(v) else f"{v:.0f}" for v in figures.values())


def print_table(phases: Sequence[Phase], bare_rate: float, header: str) -> None:
    """The figures as a Markdown table."""
    print(header)
    print(f"bare paho v5 subscriber on the same broker: {bare_rate:,.0f} msg/s")
    print()
    print(
        "| background offered (target) | gateway acked/s | green → ack p50/p90/p99/max ms "
        "| green → provider request p50/p90/p99/max ms | presses (no ack, no request) "
        "| gateway CPU | machine busy | load1 | drain s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for p in phases:
        print(
            f"| {p.offered:,.0f} ({p.rate:,.0f}) | {p.acked_rate:,.0f} | {_ms(p.ack_ms)} "
            f"| {_ms(p.provider_ms)} | {p.presses} ({p.missing_acks}, {p.missing_requests}) "
            f"| {p.gateway_cpu:.0%} | {p.machine_busy:.0%} | {p.load1:.2f} | {p.drain_s:.1f} |",
            flush=True,
        )


def run(args: argparse.Namespace, root: Path) -> None:
    """Set up everything, run each phase, print the table; every process ends on exit."""
    press_total = args.presses * len(args.rates)
    with children() as kids:
        port = start_mosquitto(kids, root / "mosquitto", nodelay=not args.no_nodelay)
        bare = asyncio.run(measure_bare(port, 100, args.bare_frames, 120))
        print(f"bare paho: {bare.rate:,.0f} msg/s ({args.bare_frames} frames)", flush=True)
        phones_url = start_phones(kids, root)
        http_port = free_port()
        config = gateway_config(root / "bidao.toml", root / "data", port, http_port, phones_url)
        background_boxes = args.devices // 2
        seconds = import_grid(
            config,
            root,
            units_csv(press_total + 1),
            households_csv(
                [(i, i) for i in range(press_total)]
                + [(press_total + i, press_total) for i in range(background_boxes)]
            ),
            contacts_csv(range(press_total)),
        )
        seconds += register_meters(config, 0, args.devices - background_boxes)
        print(f"grid imported and meters registered in {seconds:.1f} s", flush=True)
        gw = start_gateway(kids, config, http_port)
        print(f"gateway: {gw.banner}", flush=True)
        wait_healthy(gw)
        boxes = []
        for i in range(press_total):
            device_id, key = box_identity(i)
            boxes.append((i, SimulatedDevice(device_id, "call_box", key)))
        presser = TimedDevices(port, [box for _, box in boxes])
        phases = []
        try:
            for n, rate in enumerate(args.rates):
                phase_boxes = boxes[n * args.presses : (n + 1) * args.presses]
                phase = run_phase(kids, args, n, rate, port, gw, phones_url, presser, phase_boxes)
                phases.append(phase)
                print(
                    f"rate {rate:,.0f}: acked {phase.acked_rate:,.0f}/s, ack {_ms(phase.ack_ms)}"
                    f" ms, provider {_ms(phase.provider_ms)} ms",
                    flush=True,
                )
        finally:
            presser.close()
            status = kids.stop(gw.proc)
            if status != 0:
                print(f"the gateway exited with status {status}; see {root / 'gateway.log'}")
    print()
    print_table(
        phases,
        bare.rate,
        f"{args.presses} green presses per phase of {args.phase:.0f} s; background from "
        f"{args.devices} devices (half boxes' heartbeats, half meters' readings), QoS 1; "
        f"mosquitto {'without' if args.no_nodelay else 'with'} set_tcp_nodelay; "
        f"{os.cpu_count()} CPUs",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and run the bench."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--rates",
        type=lambda s: [float(r) for r in s.split(",")],
        default=[0.0, 1000.0, 2000.0, 3500.0],
        help="background frames/s, comma-separated",
    )
    parser.add_argument("--presses", type=int, default=100, help="green presses per phase")
    parser.add_argument("--phase", type=float, default=25.0, help="seconds per rate")
    parser.add_argument("--devices", type=int, default=1000, help="background devices")
    parser.add_argument("--settle", type=float, default=30.0, help="max seconds after a phase")
    parser.add_argument("--bare-frames", type=int, default=30_000)
    parser.add_argument("--no-nodelay", action="store_true", help="mosquitto without nodelay")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument("--dir", type=Path, default=None, help="where the data goes")
    args = parser.parse_args(argv)
    if args.quick:
        args.rates, args.presses, args.phase = [0.0, 500.0], 15, 6.0
        args.devices, args.settle, args.bare_frames = 100, 15.0, 3000
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        try:
            run(args, Path(tmp))
        except KeyboardInterrupt:
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
