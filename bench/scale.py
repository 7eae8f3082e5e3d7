"""A county's scale: start-up, memory and CPU per frame at 1,000 and at 200,000 devices.

Run `python -m bench.scale [--boxes 100000 --meters 100000] [--quick]` from the repository
root. One database grows in two steps, the gateway (`bidao run`, a subprocess, against its
own mosquitto with `set_tcp_nodelay true`) is measured at each:

1. `--small` devices (half call boxes in households imported with `bidao import`, half
   water meters registered through the application facade, each in the home of the
   household with its index: every resident lives alone, so every meter is watched by the
   water watch);
2. the same database grown to `--boxes` boxes and `--meters` meters.

At each size: start (and restart) to first ack, i.e. from spawning `bidao run` until a probe
box, sending a heartbeat every 50 ms from before the spawn, gets its first protocol ack; RSS
after start and after `--frames` frames; gateway CPU per frame while `--frames` frames come
at `--cpu-rate`/s from random devices (gross, and net of the gateway's idle CPU, measured
once it has used under 5% of a core for `--idle` s, which also says how long start-up work
such as overdue silence deadlines keeps it busy); gateway CPU per first contact after a
restart, from devices all heard before it, in a random order (at the full size, after the
phases below).

At the full size also, after a restart, three phases, with probe boxes heartbeating at
`--probe-rate`/s among the frames (the rate the gateway acked, the probes' ack p50/p99):

- "first": `--rate` frames/s for `--seconds` s from random devices, most of them heard for
  the first time since the start (a fleet's first day, or the minutes after a restart);
- the whole fleet once, in turn, offered at `--rate`: how long until all are acked, and the
  RSS once every device has been heard (what a county's gateway holds in its steady state);
- "steady": `--rate` frames/s for `--seconds` s from random devices, all heard before, each
  kind as often as its default interval makes it report (a box every 60 s, a meter every
  15 minutes: about 94% heartbeats): 200,000 devices at their real rate.

Frames are heartbeats (boxes) and readings (meters) built by device_sim; every reading shows
a litre more (water use, the costlier case). Every watch is `--history-days` old (28: four
weeks of day records and a learned routine, what each of a county's households keeps in
memory and in its stored watch once the programme has run a month). Also at each size:
gateway CPU per water reading, from `--frames` readings alone at `--cpu-rate`/s (issue 13:
per-reading cost independent of the number of meters).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import (
    Children,
    Gateway,
    PublishPlan,
    TimedDevices,
    box_identity,
    children,
    free_port,
    gateway_config,
    households_csv,
    import_grid,
    machine_busy,
    percentiles,
    publisher_result,
    register_meters,
    seed_water_history,
    start_gateway,
    start_mosquitto,
    start_publisher,
    units_csv,
)
from device_sim.device import SimulatedDevice

SEQ_STRIDE = 1_000_000
HOUSEHOLDS_PER_VILLAGE = 1000
DRAIN_TIMEOUT_S = 120.0
IDLE_CPU = 0.05
"""A gateway using less CPU than this (of one core) has finished its start-up work."""


@dataclass(slots=True)
class Size:
    """Figures at one number of registered devices."""

    devices: int
    start_s: float = math.nan
    restart_s: float = math.nan
    rss_start_mb: float = math.nan
    rss_after_mb: float = math.nan
    cpu_ms: float = math.nan
    cpu_net_ms: float = math.nan
    cpu_rate: float = math.nan
    reading_ms: float = math.nan
    """Gateway CPU per water reading (meters only, each in a watched household)."""
    reading_rate: float = math.nan
    warm_ms: float = math.nan
    """Gateway CPU per heartbeat (net of idle) from boxes already heard since the start."""
    first_ms: float = math.nan
    """Gateway CPU per first contact (net of idle): a device's first frame since a restart,
    every device heard before it."""
    first_frames: int = 0
    settle_s: float = math.nan
    fleet_s: float = math.nan
    """Seconds for every device to be heard once (from the first frame to the last ack)."""
    fleet_rate: float = math.nan
    rss_fleet_mb: float = math.nan
    """RSS once every device has been heard since the start (a county's steady state)."""
    sustained: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per phase ("first": mostly first contacts; "steady": every device heard before)."""


class Probes:
    """Probe boxes (never in the publisher's pool) heartbeating at a steady rate, timed."""

    def __init__(self, port: int, count: int) -> None:
        self.boxes = []
        for i in range(count):
            device_id, key = box_identity(i)
            self.boxes.append(SimulatedDevice(device_id, "call_box", key))
        self.timed = TimedDevices(port, self.boxes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._turn = 0

    def beat(self) -> None:
        """One heartbeat from the next probe box."""
        box = self.boxes[self._turn % len(self.boxes)]
        self._turn += 1
        seq = box.next_seq
        self.timed.send(box.device_id, box.heartbeat(uptime_s=3600), seq)

    def first_ack_after(self, since: float, interval: float, timeout: float) -> float:
        """Heartbeat every `interval` s until some ack arrives; seconds from `since` to it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            acked = [at for at in list(self.timed.acked.values()) if at >= since]
            if acked:
                return min(acked) - since
            self.beat()
            time.sleep(interval)
        raise SystemExit("no probe was acked in time")

    def start(self, rate: float) -> float:
        """Heartbeat at `rate`/s in a thread until `stop`; the wall-clock time it began."""
        self._stop.clear()

        def loop() -> None:
            started = time.monotonic()
            sent = 0
            while not self._stop.is_set():
                if sent < rate * (time.monotonic() - started):
                    self.beat()
                    sent += 1
                else:
                    self._stop.wait(0.005)

        self._thread = threading.Thread(target=loop, daemon=True)
        began = time.time()
        self._thread.start()
        return began

    def stop(self) -> None:
        """End the heartbeat thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def latencies_since(self, since: float) -> tuple[list[float], int]:
        """(send → ack ms of frames sent after `since`, those not acked)."""
        sent = {k: t for k, t in list(self.timed.sent.items()) if t >= since}
        done = [(self.timed.acked[k] - t) * 1000 for k, t in sent.items() if k in self.timed.acked]
        return done, len(sent) - len(done)

    def close(self) -> None:
        """Stop and disconnect."""
        self.stop()
        self.timed.close()


def wait_acks(gw: Gateway, target: float, timeout: float = DRAIN_TIMEOUT_S) -> float:
    """Until the gateway has sent `target` acks in all; seconds waited."""
    started = time.monotonic()
    while gw.acks() < target:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"the gateway acked {gw.acks():.0f} of {target:.0f} in time")
        time.sleep(0.2)
    return time.monotonic() - started


@dataclass(frozen=True, slots=True)
class Spent:
    """What the gateway spent on frames sent and acknowledged."""

    sent: float
    elapsed: float
    """Seconds from the first frame sent to the last ack."""
    cpu: float
    """Gateway CPU seconds meanwhile."""

    def net_ms(self, idle_rate: float) -> float:
        """Gateway CPU per frame in ms, net of its idle CPU (`idle_rate` s/s)."""
        return (self.cpu - idle_rate * self.elapsed) / self.sent * 1000


def spent(gw: Gateway, send: Callable[[], tuple[float, float]]) -> Spent:
    """Send (a publisher's (offered, sent)) and wait for every ack: what the gateway spent."""
    acks0, cpu0, t0 = gw.acks(), gw.cpu_seconds(), time.monotonic()
    _offered, sent = send()
    wait_acks(gw, acks0 + sent)
    return Spent(sent, time.monotonic() - t0, gw.cpu_seconds() - cpu0)


def settle(gw: Gateway, window: float, limit: float) -> tuple[float, float]:
    """(idle CPU in s/s, seconds waited): windows of `window` s until one shows the gateway
    below 5% of a core (start-up work done) or `limit` s have passed; the last window's rate."""
    started = time.monotonic()
    while True:
        cpu0, t0 = gw.cpu_seconds(), time.monotonic()
        time.sleep(window)
        rate = (gw.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        if rate < IDLE_CPU or time.monotonic() - started >= limit:
            return rate, time.monotonic() - started


class Bench:
    """The broker, the config and the gateway process of one run."""

    def __init__(self, kids: Children, args: argparse.Namespace, root: Path) -> None:
        self.kids = kids
        self.args = args
        self.root = root
        self.port = start_mosquitto(kids, root / "mosquitto")
        self.http_port = free_port()
        self.config = gateway_config(
            root / "bidao.toml", root / "data", self.port, self.http_port, None
        )
        self.probes = Probes(self.port, args.probes)
        self.phase = 0
        self.gw: Gateway | None = None

    def grow(self, boxes: int, meters: int, had_boxes: int, had_meters: int) -> None:
        """Import households (with boxes) and register meters up to these totals."""
        villages = max(1, math.ceil(boxes / HOUSEHOLDS_PER_VILLAGE))
        rows = [(i, i // HOUSEHOLDS_PER_VILLAGE) for i in range(had_boxes, boxes)]
        seconds = import_grid(self.config, self.root, units_csv(villages), households_csv(rows), "")
        print(f"imported {len(rows):,} households in {seconds:.1f} s", flush=True)
        seconds = register_meters(self.config, had_meters, meters - had_meters, boxes)
        print(f"registered {meters - had_meters:,} meters in {seconds:.1f} s", flush=True)
        days = self.args.history_days
        if days:
            homes = [f"H{i:07d}" for i in range(had_meters, min(meters, boxes))]
            seconds = seed_water_history(self.config, homes, days, time.time())
            print(
                f"gave {len(homes):,} watches {days} days of history in {seconds:.1f} s",
                flush=True,
            )

    def start(self) -> tuple[Gateway, float]:
        """Spawn the gateway while a probe heartbeats; (gateway, seconds to the first ack)."""
        since = time.time()
        box: list[float] = []
        waiter = threading.Thread(
            target=lambda: box.append(self.probes.first_ack_after(since, 0.05, 300)), daemon=True
        )
        waiter.start()
        gw = start_gateway(self.kids, self.config, self.http_port, timeout=300)
        waiter.join()
        if not box:
            raise SystemExit("no probe was acked after the start")
        self.gw = gw
        print(f"gateway: {gw.banner}", flush=True)
        return gw, box[0]

    def stop(self) -> None:
        """Stop the gateway (SIGTERM)."""
        if self.gw is not None:
            status = self.kids.stop(self.gw.proc)
            self.gw = None
            if status != 0:
                raise SystemExit(f"the gateway exited with status {status}")

    def publish(
        self, boxes: int, meters: int, rate: float, frames: int, pick: str = "random"
    ) -> tuple[float, float]:
        """`frames` at `rate` from the devices (probes excluded), picked by `pick`;
        (offered rate, sent)."""
        probes = self.args.probes
        return self.publish_from((probes, boxes - probes), (0, meters), rate, frames, pick)

    def publish_from(
        self,
        boxes: tuple[int, int],
        meters: tuple[int, int],
        rate: float,
        frames: int,
        pick: str,
    ) -> tuple[float, float]:
        """`frames` at `rate` from these (first, count) ranges; (offered rate, sent)."""
        self.phase += 1
        plan = PublishPlan(
            self.port, boxes, meters, rate, frames / rate, 1 + self.phase * SEQ_STRIDE, pick
        )
        proc = start_publisher(self.kids, plan)
        done = publisher_result(self.kids, proc, frames / rate + 60)
        return done.rate, done.sent

    def measure(self, size: Size, boxes: int, meters: int) -> None:
        """Start, RSS, CPU per frame, restart at this size."""
        args = self.args
        gw, size.start_s = self.start()
        time.sleep(1.0)
        size.rss_start_mb = gw.rss_mb()
        idle_rate, settled = settle(gw, args.idle, args.settle)
        size.settle_s = settled
        frames = spent(gw, lambda: self.publish(boxes, meters, args.cpu_rate, args.frames))
        size.cpu_rate = frames.sent / frames.elapsed
        size.cpu_ms = frames.net_ms(0.0)
        size.cpu_net_ms = frames.net_ms(idle_rate)
        size.rss_after_mb = gw.rss_mb()
        # Readings alone: each meter is in a watched household, so every one runs the water
        # watch's rule (each bench reading rises by a litre: water use, the costlier case).
        readings = spent(gw, lambda: self.publish(args.probes, meters, args.cpu_rate, args.frames))
        size.reading_rate = readings.sent / readings.elapsed
        size.reading_ms = readings.net_ms(idle_rate)
        # Warm: devices heard since the start again (a county's steady state, each box every
        # minute): first `--warm` boxes once each, then `--frames` from random ones of them.
        warm = (args.probes, min(args.warm, boxes - args.probes))
        acks0 = gw.acks()
        _offered, sent = self.publish_from(warm, (0, 0), args.cpu_rate, warm[1], "round")
        wait_acks(gw, acks0 + sent)
        beats = spent(
            gw, lambda: self.publish_from(warm, (0, 0), args.cpu_rate, args.frames, "random")
        )
        size.warm_ms = beats.net_ms(idle_rate)
        print(
            f"{size.devices:,} devices: start {size.start_s:.2f} s, RSS {size.rss_start_mb:.0f}"
            f" / {size.rss_after_mb:.0f} MB, CPU {size.cpu_ms:.2f} ms/frame "
            f"(net of idle {size.cpu_net_ms:.2f}; warm {size.warm_ms:.2f}); per reading"
            f" {size.reading_ms:.2f} ms net",
            flush=True,
        )

    def restart(self, size: Size) -> None:
        """Stop and start again; the restart-to-first-ack time."""
        self.stop()
        _gw, size.restart_s = self.start()
        print(f"{size.devices:,} devices: restart {size.restart_s:.2f} s", flush=True)

    def first_contacts(self, size: Size, boxes: int, meters: int) -> None:
        """CPU per first contact: just after a restart, `--frames` devices (or all at the
        small size), every one heard before the restart, each send one frame, in a random
        order (what a gateway meets after a restart).

        Compared across sizes, it says whether a device's first frame costs more in a larger
        county. "Random devices" in `measure` mixes first frames and repeats in shares that
        differ by size (at 200,000 nearly every frame is a device's first ever), and its
        batches are small at `--cpu-rate`: a first contact costs reads a repeat does not.
        """
        assert self.gw is not None
        gw, args = self.gw, self.args
        idle_rate, _settled = settle(gw, args.idle, args.settle)
        frames = min(args.frames, boxes - args.probes + meters)
        first = spent(gw, lambda: self.publish(boxes, meters, args.cpu_rate, frames, "shuffled"))
        size.first_frames = round(first.sent)
        size.first_ms = first.net_ms(idle_rate)
        print(
            f"{size.devices:,} devices: CPU per first contact after a restart"
            f" {size.first_ms:.2f} ms net ({size.first_frames:,} frames)",
            flush=True,
        )

    def fleet(self, size: Size, boxes: int, meters: int) -> None:
        """Every device once, in turn, offered at `--rate`: how long until all are acked, and
        the RSS once the gateway has heard the whole fleet since its start."""
        assert self.gw is not None
        gw = self.gw
        acks0, t0 = gw.acks(), time.monotonic()
        count = boxes - self.args.probes + meters
        offered, sent = self.publish(boxes, meters, self.args.rate, count, "round")
        wait_acks(gw, acks0 + sent, timeout=DRAIN_TIMEOUT_S + count / 500)
        size.fleet_s = time.monotonic() - t0
        size.fleet_rate = sent / size.fleet_s
        time.sleep(1.0)
        size.rss_fleet_mb = gw.rss_mb()
        print(
            f"every device once ({sent:,} frames offered at {offered:,.0f}/s): all acked after"
            f" {size.fleet_s:.1f} s ({size.fleet_rate:,.0f}/s); RSS {size.rss_fleet_mb:.0f} MB",
            flush=True,
        )

    def sustain(self, size: Size, boxes: int, meters: int, pick: str, phase: str) -> None:
        """`--rate` offered from devices picked by `pick` for `--seconds`; acked rate and
        probe acks, kept as `phase`."""
        args = self.args
        assert self.gw is not None
        gw = self.gw
        time.sleep(2.0)
        acks0, cpu0, busy0 = gw.acks(), gw.cpu_seconds(), machine_busy()
        began = self.probes.start(args.probe_rate)
        t0 = time.monotonic()
        offered, sent = self.publish(boxes, meters, args.rate, int(args.rate * args.seconds), pick)
        elapsed = time.monotonic() - t0
        acks1, busy1 = gw.acks(), machine_busy()
        self.probes.stop()
        probe_frames = len([t for t in self.probes.timed.sent.values() if t >= began])
        drain = wait_acks(gw, acks0 + sent + probe_frames)
        time.sleep(1.0)
        latencies, missing = self.probes.latencies_since(began)
        cpu = gw.cpu_seconds() - cpu0
        size.sustained[phase] = {
            "offered": offered,
            "acked": (acks1 - acks0) / elapsed,
            "drain_s": drain,
            "cpu_ms": cpu / (sent + probe_frames) * 1000,
            "busy": (busy1[0] - busy0[0]) / max(1.0, busy1[1] - busy0[1]),
            "load1": os.getloadavg()[0],
            "probes": len(latencies),
            "missing": missing,
            **percentiles(latencies),
        }
        s = size.sustained[phase]
        print(
            f"{phase}: offered {offered:,.0f}/s ({pick}): acked {s['acked']:,.0f}/s,"
            f" drained {drain:.1f} s later,"
            f" probe ack p50 {s['p50']:.0f} ms p99 {s['p99']:.0f} ms max {s['max']:.0f} ms",
            flush=True,
        )


def print_table(small: Size, large: Size, args: argparse.Namespace) -> None:
    """The figures as a Markdown table."""
    print(
        f"frames: heartbeats and readings from random devices; CPU per frame while "
        f"{args.frames:,} frames come at {args.cpu_rate:,.0f}/s; {os.cpu_count()} CPUs"
    )
    print()
    print(f"| figure | {small.devices:,} devices | {large.devices:,} devices |")
    print("|---|---|---|")
    rows: list[tuple[str, Callable[[Size], str]]] = [
        ("start to first ack (restart)", lambda z: f"{z.start_s:.2f} s ({z.restart_s:.2f} s)"),
        (
            f"RSS after start / after {args.frames:,} frames",
            lambda z: f"{z.rss_start_mb:.0f} / {z.rss_after_mb:.0f} MB",
        ),
        ("busy after start (until < 5% of a core)", lambda z: f"{z.settle_s:.0f} s"),
        (
            "gateway CPU per frame (net of idle)",
            lambda z: f"{z.cpu_ms:.2f} ms ({z.cpu_net_ms:.2f} ms) at {z.cpu_rate:,.0f}/s",
        ),
        (
            f"gateway CPU per heartbeat, net of idle, from {args.warm:,} boxes already heard",
            lambda z: f"{z.warm_ms:.2f} ms",
        ),
        (
            "gateway CPU per first contact after a restart, net of idle (random order)",
            lambda z: f"{z.first_ms:.2f} ms ({z.first_frames:,} frames)",
        ),
        (
            "gateway CPU per water reading, net of idle (meters in watched households)",
            lambda z: f"{z.reading_ms:.2f} ms at {z.reading_rate:,.0f}/s",
        ),
    ]
    for name, fmt in rows:
        print(f"| {name} | {fmt(small)} | {fmt(large)} |")
    print(
        f"| every device once, offered at {args.rate:,.0f}/s: all acked after; RSS then | - |"
        f" {large.fleet_s:.0f} s ({large.fleet_rate:,.0f}/s); {large.rss_fleet_mb:.0f} MB |"
    )
    phases = {
        "first": "from random devices, most heard for the first time",
        "steady": "from random devices all heard before, each kind at its interval's share",
    }
    for phase, what in phases.items():
        s = large.sustained.get(phase)
        if s is None:
            continue
        print(
            f"| offered {s['offered']:,.0f} frames/s for {args.seconds:.0f} s {what}: acked/s,"
            f" drain after, probe ack p50 / p99 / max ({s['probes']:.0f} probes,"
            f" {s['missing']:.0f} unacked) | - | {s['acked']:,.0f}/s, {s['drain_s']:.1f} s,"
            f" {s['p50']:.0f} / {s['p99']:.0f} / {s['max']:.0f} ms |"
        )
        print(
            f"| gateway CPU per frame then; machine busy; load1 | - | {s['cpu_ms']:.2f} ms;"
            f" {s['busy']:.0%}; {s['load1']:.2f} |"
        )


def run(args: argparse.Namespace, root: Path) -> None:
    """Both sizes, then the table; every process ends on exit."""
    small_boxes = max(args.probes + 1, args.small // 2)
    small_meters = args.small - small_boxes
    small, large = Size(args.small), Size(args.boxes + args.meters)
    with children() as kids:
        bench = Bench(kids, args, root)
        try:
            bench.grow(small_boxes, small_meters, 0, 0)
            bench.measure(small, small_boxes, small_meters)
            bench.restart(small)
            bench.first_contacts(small, small_boxes, small_meters)
            bench.stop()
            bench.grow(args.boxes, args.meters, small_boxes, small_meters)
            bench.measure(large, args.boxes, args.meters)
            bench.restart(large)
            bench.sustain(large, args.boxes, args.meters, "random", "first")
            bench.fleet(large, args.boxes, args.meters)
            bench.sustain(large, args.boxes, args.meters, "rated", "steady")
            bench.stop()
            bench.start()  # every device was heard in the fleet pass
            bench.first_contacts(large, args.boxes, args.meters)
            bench.stop()
        finally:
            bench.probes.close()
    print()
    print_table(small, large, args)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and run the bench."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--boxes", type=int, default=100_000, help="call boxes at full size")
    parser.add_argument("--meters", type=int, default=100_000, help="water meters at full size")
    parser.add_argument("--small", type=int, default=1000, help="devices at the small size")
    parser.add_argument("--frames", type=int, default=10_000, help="frames for CPU and RSS")
    parser.add_argument("--cpu-rate", type=float, default=1000.0, help="frames/s for CPU")
    parser.add_argument("--rate", type=float, default=3500.0, help="frames/s to sustain")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to sustain")
    parser.add_argument("--probes", type=int, default=50, help="probe boxes")
    parser.add_argument("--warm", type=int, default=5000, help="boxes for the warm CPU figure")
    parser.add_argument("--probe-rate", type=float, default=20.0, help="probe heartbeats/s")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds per idle CPU window")
    parser.add_argument("--settle", type=float, default=60.0, help="max seconds to go idle")
    parser.add_argument(
        "--history-days",
        type=int,
        default=28,
        help="days of water history each watch has (a county after its first weeks; 0: new)",
    )
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    parser.add_argument("--dir", type=Path, default=None, help="where the data goes")
    args = parser.parse_args(argv)
    if args.quick:
        args.boxes, args.meters, args.small = 2000, 2000, 200
        args.frames, args.rate, args.seconds, args.idle = 2000, 1000.0, 5.0, 1.0
        args.warm = 500
    if args.boxes + args.meters <= args.small:
        parser.error("the full size must be larger than --small")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        try:
            run(args, Path(tmp))
        except KeyboardInterrupt:
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
