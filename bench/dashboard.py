"""The live dashboard under load: 500 open tickets, 20 connected clients, one real browser.

Run `python -m bench.dashboard [--tickets 500] [--clients 20] [--probes 10]` from the
repository root (needs /usr/bin/chromium: scripts/bootstrap --dev installs it).

It starts its own mosquitto and `bidao run` (the console provider: no phone traffic) as
subprocesses, imports a county of `--villages` villages with one call box per household
with `bidao import`, adds an administrator with `bidao user add`, and has `--tickets`
boxes press green over MQTT until that many tickets are open. Then:

- first paint: Debian's Chromium, signed in, opens /dash (every open ticket on it); the
  browser's own Navigation and Paint Timing give time to first byte, first contentful paint
  and DOMContentLoaded (nothing is fetched from outside: the scripts are the gateway's);
- update latency: `--clients` event streams (httpx, as the htmx SSE extension does: on each
  "changed" event, GET /part/open) and the browser stay connected while `--probes` more boxes
  press green one at a time; for each press it records when every stream was told and when
  the new row was in each client's list and on the browser's page. Times are wall-clock
  from the moment the press was published.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

from bench.harness import (
    BIDAO,
    Children,
    TimedDevices,
    box_identity,
    children,
    contacts_csv,
    free_port,
    gateway_config,
    households_csv,
    import_grid,
    percentiles,
    start_gateway,
    start_mosquitto,
    units_csv,
)
from device_sim.device import SimulatedDevice
from firmware_protocol import Key

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "bench-dashboard-2026"
LOGIN = "bench.admin"


@dataclass
class Probe:
    """One green press and when each client saw it."""

    name: str
    clients: int
    pressed_at: float = 0.0
    told: dict[int, float] = field(default_factory=dict)
    """Client index → when its stream said "changed" (first time after the press)."""
    shown: dict[int, float] = field(default_factory=dict)
    """Client index → when the row was in its list (-1: the browser)."""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def show(self, client: int) -> None:
        """The row is in `client`'s list now."""
        self.shown.setdefault(client, time.time())
        if len(self.shown) == self.clients + 1:
            self.done.set()


@dataclass
class Stage:
    """The running gateway with its open tickets, ready to be watched."""

    base: str
    cookie: dict[str, str]
    devices: list[SimulatedDevice]
    presser: TimedDevices
    rows: int


def box_device(i: int) -> SimulatedDevice:
    """The i-th household's call box."""
    device_id, key = box_identity(i)
    return SimulatedDevice(device_id, "call_box", key)


def add_admin(config: Path) -> None:
    done = subprocess.run(
        [str(BIDAO), "user", "add", LOGIN, "--role", "administrator", "--name", "测试管理员",
         "--password-stdin", "--config", str(config)],
        input=PASSWORD + "\n", capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"bidao user add failed: {done.stderr}")


def live_rows(base: str, cookie: dict[str, str]) -> int:
    request = urllib.request.Request(f"{base}/part/open")
    request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in cookie.items()))
    with urllib.request.urlopen(request, timeout=60) as reply:
        html: str = reply.read().decode()
        return html.count('<tr id="ticket-')


def prepare(kids: Children, root: Path, args: argparse.Namespace) -> Stage:
    """Broker, grid, user, gateway; then `--tickets` green presses until all are open."""
    mqtt_port = start_mosquitto(kids, root / "broker")
    http_port = free_port()
    base = f"http://127.0.0.1:{http_port}"
    config = gateway_config(root / "bidao.toml", root / "data", mqtt_port, http_port, None)
    total = args.tickets + args.probes
    boxes = [(i, i % args.villages) for i in range(total)]
    started = time.perf_counter()
    import_grid(
        config, root, units_csv(args.villages), households_csv(boxes),
        contacts_csv(range(args.villages)),
    )  # fmt: skip
    add_admin(config)
    print(f"grid of {total} households imported in {time.perf_counter() - started:.1f} s")
    gw = start_gateway(kids, config, http_port)
    print(f"gateway: {gw.banner}")
    devices = [box_device(i) for i in range(total)]
    presser = TimedDevices(mqtt_port, devices)
    with httpx.Client(base_url=base) as http:
        signed = http.post("/signin", data={"login": LOGIN, "password": PASSWORD})
        if signed.status_code != 303:
            raise SystemExit(f"sign-in failed: {signed.status_code}")
        cookie = dict(http.cookies)
    started = time.perf_counter()
    for device in devices[: args.tickets]:
        seq = device.next_seq
        presser.send(device.device_id, device.press(Key.GREEN_CALL), seq)
    while (rows := live_rows(base, cookie)) < args.tickets:
        if time.perf_counter() - started > 300:
            raise SystemExit(f"only {rows} tickets open after 5 minutes")
        time.sleep(1)
    print(f"{rows} open tickets in {time.perf_counter() - started:.1f} s")
    for _ in range(3):  # the server's own time to render the list, warm
        t0 = time.perf_counter()
        live_rows(base, cookie)
        print(f"GET /part/open ({rows} rows): {(time.perf_counter() - t0) * 1000:.0f} ms")
    print(f"gateway RSS {gw.rss_mb():.0f} MB")
    return Stage(base, cookie, devices, presser, rows)


async def stream_client(
    index: int, stage: Stage, current: list[Probe], everyone: asyncio.Event, count: list[int],
    clients: int,
) -> None:  # fmt: skip
    """One dashboard's event stream; on each change it fetches the list, as htmx would."""
    async with (
        httpx.AsyncClient(base_url=stage.base, cookies=stage.cookie, timeout=None) as http,
        http.stream("GET", "/live") as stream,
    ):
        async for line in stream.aiter_lines():
            if line.startswith("event: ready"):  # subscribed
                count[0] += 1
                if count[0] == clients:
                    everyone.set()
            if not line.startswith("event: changed") or not current:
                continue
            probe = current[-1]
            probe.told.setdefault(index, time.time())
            html = (await http.get("/part/open")).text
            if f">{probe.name}</a>" in html:
                probe.show(index)


async def watch(stage: Stage, args: argparse.Namespace) -> list[Probe]:
    """First paint in Chromium, then each probe's press → row on every client."""
    current: list[Probe] = []
    everyone = asyncio.Event()
    connected = [0]
    clients = [
        asyncio.create_task(stream_client(i, stage, current, everyone, connected, args.clients))
        for i in range(args.clients)
    ]
    base = stage.base
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1366, "height": 768})
        await context.add_cookies(
            [{"name": k, "value": v, "url": base} for k, v in stage.cookie.items()]
        )
        page = await context.new_page()
        t0 = time.perf_counter()
        await page.goto(f"{base}/dash")
        await page.locator("#open-tickets").wait_for()
        wall = (time.perf_counter() - t0) * 1000
        timing = await page.evaluate(
            """() => {
                const n = performance.getEntriesByType('navigation')[0];
                const p = performance.getEntriesByName('first-contentful-paint')[0];
                return {ttfb: n.responseStart, response_end: n.responseEnd,
                        dom: n.domContentLoadedEventEnd, fcp: p ? p.startTime : -1,
                        bytes: n.transferSize};
            }"""
        )
        print(
            f"first paint with {stage.rows} open tickets (Chromium, 1366x768): "
            f"TTFB {timing['ttfb']:.0f} ms, HTML received {timing['response_end']:.0f} ms, "
            f"first contentful paint {timing['fcp']:.0f} ms, DOMContentLoaded "
            f"{timing['dom']:.0f} ms, {timing['bytes'] / 1000:.0f} KB; goto→table {wall:.0f} ms"
        )
        await page.get_by_text("实时更新中").wait_for()
        await asyncio.wait_for(everyone.wait(), 60)
        print(f"{args.clients} event streams and the browser connected")
        for k in range(args.probes):
            i = args.tickets + k
            probe = Probe(f"居民{i}", args.clients)
            current.append(probe)
            device = stage.devices[i]
            seq = device.next_seq
            frame = device.press(Key.GREEN_CALL)
            probe.pressed_at = time.time()
            stage.presser.send(device.device_id, frame, seq)
            await page.get_by_role("link", name=probe.name, exact=True).wait_for(timeout=60_000)
            probe.show(-1)
            await asyncio.wait_for(probe.done.wait(), 60)
        await browser.close()
    for task in clients:
        task.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    return current


def measure(args: argparse.Namespace) -> None:
    with children() as kids, tempfile.TemporaryDirectory(prefix="bidao-dash-") as tmp:
        stage = prepare(kids, Path(tmp), args)
        try:
            probes = asyncio.run(watch(stage, args))
        finally:
            stage.presser.close()
        report(probes, args)


def report(probes: list[Probe], args: argparse.Namespace) -> None:
    told = [(t - p.pressed_at) * 1000 for p in probes for k, t in p.told.items()]
    shown = [(t - p.pressed_at) * 1000 for p in probes for k, t in p.shown.items() if k >= 0]
    browser = [(p.shown[-1] - p.pressed_at) * 1000 for p in probes if -1 in p.shown]
    missing = sum(args.clients - len([k for k in p.shown if k >= 0]) for p in probes)

    def line(name: str, values: list[float]) -> str:
        q = percentiles(values)
        return (
            f"{name}: p50 {q['p50']:.0f} ms, p90 {q['p90']:.0f} ms, max {q['max']:.0f} ms "
            f"(n={len(values)})"
        )

    print(f"green press → row, {args.probes} presses, {args.tickets} tickets already open:")
    print("  " + line("stream told 'changed'", told))
    print("  " + line(f"row in the list of each of {args.clients} clients", shown))
    print("  " + line("row on the browser's page", browser))
    print(f"  rows never shown to a client: {missing}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--villages", type=int, default=10)
    args = parser.parse_args()
    os.environ.setdefault("BIDAO_HTTP__PASSWORD_TIME_COST", "1")
    measure(args)


if __name__ == "__main__":
    main()
