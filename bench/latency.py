"""Calls for help under load: green press → box ack and → provider request, per background rate.

Run `python -m bench.latency [--rates 0,1000,2000,3500] [--quick]` from the repository root.

One run starts its own mosquitto (`set_tcp_nodelay true`, persistence, Bidao's queue limits)
on a free loopback port, measures a bare paho v5 subscriber on it first (bench/ingest.py's,
fed by `python -m bench.burst`) for scale, then imports a grid with `bidao import`: one
village per call box that will press green (each with its own secretary, so a provider
request names its press), plus a village for the background boxes. The background devices
are the simulator's load mode's (`bidao sim load --kind mixed --list-devices`: half boxes,
half meters); its boxes are imported in households, its meters registered through the
application facade. The gateway runs as `bidao run` with the twilio provider pointed at
`bidao sim phones serve`, all as subprocesses.

For each background rate, `bidao sim load` (a process of its own, paho, every frame's ack
awaited; resent only after a minute, so that the phase's rate is what the gateway gets)
sends heartbeats and readings round-robin at QoS 1 for `--phase` seconds, while
`--presses` fresh boxes each press green once at a random moment.
Green → ack is timed in this process (paho subscribed to those boxes' downlinks only); green
→ provider request is the fake phone network's arrival time of the first SMS or call to that
box's secretary. Clocks are the machine's wall clock. Load mode's own summary (sent, acked,
retransmitted, its ack latency, the rate the broker took and whether that met the target)
is shown beside them; a phase whose background fell short says so. Between phases the
background drains (load mode waits up to `--settle` for its acks). The gateway's acked rate
comes from its /metrics; its CPU from /proc; the machine's from /proc/stat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import queue
import random
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import (
    BIDAO,
    Children,
    Gateway,
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
    register_devices,
    secretary_phone,
    start_gateway,
    start_mosquitto,
    start_phones,
    units_csv,
)
from bench.ingest import measure_bare
from device_sim.device import SimulatedDevice
from firmware_protocol import Key

STAGES = ("queued", "screened", "writer_wait", "write", "acked")
"""The gateway's own stages of an urgent frame (`bidao_urgent_stage_seconds`)."""
RESEND_AFTER_S = 60.0
"""The background resends nothing within a phase: a gateway that falls behind would get
resends on top of the rate the phase names (at 2,000 frames/s, three times as much)."""
LOAD_START_S = 120.0
"""How long `bidao sim load` may take to start sending (its imports are slow on a busy machine)."""


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
    background: dict[str, Any] | None
    """Load mode's JSON summary (None for an idle phase)."""
    stages_ms: dict[str, float]
    """Mean ms of each of the gateway's urgent stages (STAGES) during the phase."""
    ack_mean_ms: float

    @property
    def reached(self) -> bool:
        """The background reached its target (an idle phase always does)."""
        return self.background is None or bool(self.background["reached"])


class Background:
    """`bidao sim load` in a process of its own: its JSON lines read on a thread."""

    def __init__(self, kids: Children, argv: Sequence[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as err:
            self.proc = kids.start(
                "load", argv, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1
            )
        self.kids = kids
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, name="bench-load-reader", daemon=True).start()

    def _read(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        for line in stdout:
            if line.startswith("{"):
                self.lines.put(json.loads(line))
        self.lines.put(None)

    def event(self, name: str, timeout: float) -> dict[str, Any]:
        """The next JSON line, which must be `name`; SystemExit otherwise."""
        try:
            found = self.lines.get(timeout=timeout)
        except queue.Empty:
            found = None
        if found is None or found.get("event") != name:
            self.kids.stop(self.proc)
            raise SystemExit(f"bidao sim load gave no {name!r} line; see {self.log}")
        return found

    def summary(self, timeout: float) -> dict[str, Any]:
        """Load mode's summary, once it has drained; the process has ended."""
        found = self.event("summary", timeout)
        self.kids.stop(self.proc)
        return found


def background_argv(args: argparse.Namespace, port: int, rate: float, n: int) -> list[str]:
    """`bidao sim load` for phase n (each phase a newer boot session of every device)."""
    return [
        str(BIDAO),
        "sim",
        "load",
        "--port",
        str(port),
        "--devices",
        str(args.devices),
        "--kind",
        "mixed",
        "--rate",
        str(rate),
        "--duration",
        str(args.phase),
        "--timeout",
        str(args.settle),
        "--resend-after",
        str(RESEND_AFTER_S),
        "--session",
        str(1 + n),
        "--json",
        "--quiet",
    ]


def background_devices(args: argparse.Namespace) -> list[tuple[str, str, bytes]]:
    """(device_id, kind, key) of load mode's devices, as `bidao sim load --list-devices` says."""
    argv = [*background_argv(args, 1, 1.0, 0), "--list-devices"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bidao sim load --list-devices failed: {done.stdout}{done.stderr}")
    rows = [line.split(",") for line in done.stdout.splitlines()[1:]]
    return [(device_id, kind, bytes.fromhex(key)) for device_id, kind, key in rows]


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
    root: Path,
) -> Phase:
    """One background rate: load mode, presses at random moments, then settle and measure."""
    background = None
    if rate > 0:
        background = Background(kids, background_argv(args, port, rate, n), root / "load.log")
        background.event("sending", LOAD_START_S)
    acks0, cpu0, busy0 = gw.acks(), gw.cpu_seconds(), machine_busy()
    stages0 = stage_totals(gw)
    started = time.time()
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
    # Settle: the background drained (load mode waits for its acks), every press requested.
    settle_start = time.monotonic()
    summary = None if background is None else background.summary(args.settle + 60)
    requests: dict[str, float] = {}
    while time.monotonic() - settle_start < args.settle:
        requests = first_requests(phones_url, started)
        if all(phone in requests for phone in sent):
            break
        time.sleep(0.5)
    drain_s = time.monotonic() - settle_start
    stages1 = stage_totals(gw)
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
        offered=0.0 if summary is None else float(summary["offered_rate"]),
        acked_rate=max(0.0, acks1 - acks0 - len(boxes)) / elapsed,
        ack_ms=percentiles(ack_ms),
        provider_ms=percentiles(provider_ms),
        presses=len(boxes),
        missing_acks=missing_acks,
        missing_requests=len(sent) - len(provider_ms),
        gateway_cpu=(cpu1 - cpu0) / elapsed,
        machine_busy=busy,
        load1=load1,
        drain_s=drain_s,
        background=summary,
        stages_ms={
            stage: (stages1[stage][0] - stages0[stage][0])
            * 1000
            / max(1.0, stages1[stage][1] - stages0[stage][1])
            for stage in STAGES
        },
        ack_mean_ms=sum(ack_ms) / len(ack_ms) if ack_ms else math.nan,
    )


def stage_totals(gw: Gateway) -> dict[str, tuple[float, float]]:
    """(seconds, observations) so far of each urgent stage, from the gateway's /metrics."""
    return {
        stage: (
            gw.metric("bidao_urgent_stage_seconds_sum", f'stage="{stage}"'),
            gw.metric("bidao_urgent_stage_seconds_count", f'stage="{stage}"'),
        )
        for stage in STAGES
    }


def _ms(figures: dict[str, float]) -> str:
    return " / ".join("-" if math.isnan(v) else f"{v:.0f}" for v in figures.values())


def _background(p: Phase) -> tuple[str, str, str]:
    """(reached, sent / acked / retransmitted, ack p50 / p99 / max ms) of load mode."""
    b = p.background
    if b is None:
        return "idle", "-", "-"

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f}"

    reached = (
        f"{'yes' if p.reached else 'NO'}: {b['offered_rate']:,.0f}/s, "
        f"lag {b['max_lag_s'] * 1000:.0f} ms"
    )
    counts = f"{b['sent']:,} / {b['acked']:,} / {b['retransmitted']:,}"
    if b["unacked"] or b["refused"]:
        counts += f" ({b['unacked']:,} unacked, {b['refused']:,} refused)"
    return reached, counts, f"{ms(b['p50_s'])} / {ms(b['p99_s'])} / {ms(b['max_s'])}"


def phase_line(p: Phase) -> str:
    """One phase's figures as they come."""
    reached, counts, latency = _background(p)
    return (
        f"background {p.rate:,.0f}/s: {reached}; load mode sent/acked/retransmitted {counts}, "
        f"its ack p50/p99/max {latency} ms; gateway acked {p.acked_rate:,.0f}/s; "
        f"green → ack {_ms(p.ack_ms)} ms, → provider {_ms(p.provider_ms)} ms (p50/p90/p99/max)"
    )


def print_table(phases: Sequence[Phase], bare_rate: float, header: str) -> None:
    """The figures as a Markdown table."""
    print(header)
    print(f"bare paho v5 subscriber on the same broker: {bare_rate:,.0f} msg/s")
    print()
    print(
        "| background target | reached? (broker took, sender's worst lag) "
        "| load mode sent / acked / retransmitted | load mode ack p50/p99/max ms "
        "| gateway acked/s | green → ack p50/p90/p99/max ms "
        "| green → provider request p50/p90/p99/max ms | presses (no ack, no request) "
        "| gateway CPU | machine busy | load1 | drain s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for p in phases:
        reached, counts, latency = _background(p)
        print(
            f"| {p.rate:,.0f} | {reached} | {counts} | {latency} | {p.acked_rate:,.0f} "
            f"| {_ms(p.ack_ms)} | {_ms(p.provider_ms)} "
            f"| {p.presses} ({p.missing_acks}, {p.missing_requests}) "
            f"| {p.gateway_cpu:.0%} | {p.machine_busy:.0%} | {p.load1:.2f} | {p.drain_s:.1f} |",
            flush=True,
        )
    short = [p for p in phases if not p.reached]
    if short:
        rates = ", ".join(f"{p.rate:,.0f}" for p in short)
        print(
            f"\nThe background did NOT keep its target at {rates} frames/s (see 'reached?'): "
            "the green-press figures of those phases were not measured under the load they name."
        )
    else:
        print("\nEvery phase's background reached its target.")
    print()
    print(
        "Where a green press's time goes inside the gateway (mean ms; `queued` per frame, the "
        "rest per urgent batch), against its mean green → ack; the difference is outside the "
        "gateway's pipeline (the broker, the sockets, the event loop before the frame is "
        "handed over, and the ack's way back):"
    )
    print()
    print(f"| background target | {' | '.join(STAGES)} | inside, sum | green → ack mean |")
    print("|---|" + "---|" * (len(STAGES) + 2))
    for p in phases:
        cells = " | ".join(f"{p.stages_ms[s]:.1f}" for s in STAGES)
        inside = sum(p.stages_ms.values())
        print(f"| {p.rate:,.0f} | {cells} | {inside:.1f} | {p.ack_mean_ms:.1f} |", flush=True)


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
        background = background_devices(args)
        background_boxes = [(d, key) for d, kind, key in background if kind == "call_box"]
        seconds = import_grid(
            config,
            root,
            units_csv(press_total + 1),
            households_csv(
                [(i, i) for i in range(press_total)]
                + [(press_total + i, press_total) for i in range(len(background_boxes))],
                lambda i: box_identity(i) if i < press_total else background_boxes[i - press_total],
            ),
            contacts_csv(range(press_total)),
        )
        meters = [(d, key, None) for d, kind, key in background if kind == "water_meter"]
        seconds += register_devices(config, "water_meter", meters)
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
                phase = run_phase(
                    kids, args, n, rate, port, gw, phones_url, presser, phase_boxes, root
                )
                phases.append(phase)
                print(phase_line(phase), flush=True)
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
        f"`bidao sim load` with {args.devices} devices (half boxes' heartbeats, half meters' "
        f"readings), QoS 1, each frame's ack awaited; mosquitto "
        f"{'without' if args.no_nodelay else 'with'} set_tcp_nodelay; {os.cpu_count()} CPUs",
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
