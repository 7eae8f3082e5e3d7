"""Named scenarios: a whole story told by simulated devices and phones, with a pass/fail report.

A `Stage` is the world a scenario plays in: by default it starts its own gateway as a
subprocess (`bidao run --speed N`, with the seeded village of `device_sim.village_seed`,
the fake phone network and a free loopback port for everything), and puts the simulated
box and meter on MQTT (the gateway's embedded mosquitto) or on a serial line
(`socket://`). Each step of a scenario says what a tester should see; the report lists
each step as expected, seen and ✓/✗, Chinese first. A step that is not seen within the
step timeout fails, and the steps after it are not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from device_sim.device import SimulatedDevice, box_says
from device_sim.locales import scenario_en, scenario_zh_cn
from device_sim.meter import SimulatedMeter
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork
from device_sim.resend import RealClock
from device_sim.serial import SerialConcentrator
from device_sim.village_seed import (
    DEPUTY_PHONE,
    GRID_WORKER_PHONE,
    HOUSEHOLD,
    METER_ID,
    RESIDENT_PHONE,
    SCENARIO_VILLAGE,
    SECRETARY_PHONE,
    UNITS_CSV,
    Village,
    crowd_households,
    crowd_id,
    device_key,
    visiting_box_id,
    visiting_household,
)
from firmware_protocol import Indication, IndicationKind, Key, encode_serial

Transport = Literal["mqtt", "serial"]
ACCOUNT = "AC" + "5ce2" * 8
TOKEN = "bidao-scenario-network"  # noqa: S105 - the fake network's own, loopback only
LINK = re.compile(r"http://127\.0\.0\.1:\d+/r/[0-9A-Za-z._-]+")
POLL_S = 0.02


def words(key: str, **values: object) -> tuple[str, str]:
    """(Chinese, English) of one report phrase."""
    return (
        scenario_zh_cn.WORDS[key].format(**values),
        scenario_en.WORDS[key].format(**values),
    )


class StageError(Exception):
    """The stage could not be set up (no mosquitto, a port taken, the gateway refused)."""


class StepFailedError(Exception):
    """A step was not seen; the scenario stops there."""


class AcceleratedTime:
    """Real time sped up `factor` times from `anchor`: the same formula as the gateway's."""

    def __init__(self, factor: float, anchor: float) -> None:
        self.factor = factor
        self.anchor = anchor

    def now(self) -> float:
        """Accelerated unix seconds."""
        return self.anchor + (time.time() - self.anchor) * self.factor

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of accelerated time."""
        await asyncio.sleep(max(0.0, seconds) / self.factor)


@dataclass
class Step:
    """One line of the report."""

    key: str
    ok: bool | None
    seen: str = ""


@dataclass
class Report:
    """What a scenario expected and saw, step by step."""

    name: str
    steps: list[Step] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every step seen (and at least one step run)."""
        return bool(self.steps) and all(s.ok for s in self.steps)

    def lines(self) -> Iterator[str]:
        """The report as a tester reads it: Chinese first, English second."""
        zh, en = words("title", name=self.name)
        yield f"== {zh} / {en} =="
        for n, step in enumerate(self.steps, 1):
            mark = {True: "✓", False: "✗", None: "✗"}[step.ok]
            expected_zh, expected_en = words(step.key)
            yield f"{mark} {n}. {words('expected')[0]} {expected_zh}"
            yield f"      {words('expected')[1]}: {expected_en}"
            if step.ok is None:
                yield "      " + " / ".join(words("not_reached"))
            else:
                yield f"      {words('seen')[0]} seen: {step.seen}"
        ok = sum(1 for s in self.steps if s.ok)
        if self.passed:
            yield " / ".join(words("passed", ok=ok, total=len(self.steps)))
        else:
            first = next((n for n, s in enumerate(self.steps, 1) if not s.ok), 0)
            yield " / ".join(words("failed", ok=ok, total=len(self.steps), first=first))


def free_port() -> int:
    """A TCP port free on the loopback address now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mosquitto_binary() -> str | None:
    """The mosquitto binary, if installed (Debian puts it in /usr/sbin)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def _end_group(group: int, timeout: float = 10.0) -> None:
    """Stop what is left of a stopped gateway's process group (the broker of one that died).

    The group holds only the gateway's own children, and its id is not reused while it has
    members. SIGTERM, then SIGKILL if they are still there after `timeout`.
    """
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(group, sent)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)


def bidao_command() -> list[str]:
    """The `bidao` command of this installation."""
    beside = Path(sys.executable).with_name("bidao")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("bidao")
    if found is None:
        raise StageError("the bidao command is not installed")
    return [found]


def _with_config(argv: tuple[str, ...], config: Path) -> list[str]:
    """`argv` with `--config`: after `ticket` (a group: options before its argument), else last."""
    if argv and argv[0] == "ticket":
        return [argv[0], "--config", str(config), *argv[1:]]
    return [*argv, "--config", str(config)]


@dataclass
class StageOptions:
    """How the stage is set up."""

    transport: Transport = "mqtt"
    speed: float = 1.0
    step_timeout_s: float = 30.0
    data_dir: Path | None = None
    without_contacts: bool = False
    """Start the gateway with no responders at all (a misbehaving gateway, to see ✗)."""
    quiet: bool = False
    with_meter: bool = False
    """Also a water meter in the resident's home, reporting every quarter of an hour."""
    settings_toml: str = ""
    """More gateway settings (TOML tables) the scenario needs."""
    against: Path | None = None
    """The settings file of a gateway already running: play against it (no gateway, broker
    or phone network of the scenario's own; the village is imported into it)."""
    own_broker: bool = False
    """Run mosquitto here rather than in the gateway, so the scenario can stop and start it."""
    storm_boxes: int = 0
    storm_meters: int = 0
    storm_rate: float = 200.0
    """Frames per second the crowd sends (storm)."""
    storm_duration_s: float = 5.0
    village: Village = SCENARIO_VILLAGE
    """The grid the gateway is given, and the call boxes the stage plays."""
    http_port: int = 0
    """The gateway's HTTP port (0: a free one)."""
    notify_toml: str = ""
    """More [notify] settings (`key = value` lines)."""


class Stage:
    """A gateway of its own (a subprocess), the fake phone network and the simulated devices."""

    def __init__(self, options: StageOptions) -> None:
        self.options = options
        self.anchor = time.time()
        self.time = AcceleratedTime(options.speed, self.anchor)
        self.phones = FakePhoneNetwork(ACCOUNT, TOKEN)
        self._own_dir = options.data_dir is None
        self.root = options.data_dir or Path(tempfile.mkdtemp(prefix="bidao-scenario-"))
        self.config = self.root / "bidao.toml"
        self.http_port = options.http_port or free_port()
        self.mqtt_port = free_port()
        self._serial_port = 0
        if options.against is not None:
            self._read_existing(options.against)
        # Against a running gateway: a box (and household) of this run's own.
        box_ids = (
            options.village.boxes if options.against is None else (visiting_box_id(time.time()),)
        )
        self.boxes = [
            SimulatedDevice(box_id, "call_box", device_key(box_id), clock=self.time.now)
            for box_id in box_ids
        ]
        self.box = self.boxes[0]
        self.devices = list(self.boxes)
        self.meter: SimulatedMeter | None = None
        if options.with_meter:
            device = SimulatedDevice(
                METER_ID, "water_meter", device_key(METER_ID), clock=self.time.now
            )
            self.meter = SimulatedMeter(device, self.time.now)
            self.devices.append(device)
        self._meter_task: asyncio.Task[None] | None = None
        self._broker: subprocess.Popen[bytes] | None = None
        self.crowd: list[SimulatedDevice] = [
            SimulatedDevice(crowd_id(i), "call_box", device_key(crowd_id(i)), clock=self.time.now)
            for i in range(options.storm_boxes)
        ] + [
            SimulatedDevice(
                crowd_id(options.storm_boxes + i),
                "water_meter",
                device_key(crowd_id(options.storm_boxes + i)),
                clock=self.time.now,
            )
            for i in range(options.storm_meters)
        ]
        self.devices += self.crowd
        self.mqtt: MqttFleet | None = None
        self.serial: SerialConcentrator | None = None
        self._gateway: subprocess.Popen[bytes] | None = None
        self._log = self.root / "gateway.log"
        self._acked_shown: dict[str, int] = {}
        self._heard_shown: dict[str, int] = {}
        self._watch: asyncio.Task[None] | None = None

    @property
    def http_url(self) -> str:
        """The gateway's HTTP base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def say(self, line: str) -> None:
        """Print a line of the story (unless quiet)."""
        if not self.options.quiet:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    # -- setting up ------------------------------------------------------------------

    def _read_existing(self, config: Path) -> None:
        """Where the running gateway listens, from its settings file (defaults otherwise)."""
        try:
            values = tomllib.loads(config.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise StageError(f"cannot read the gateway's settings {config}: {exc}") from None
        self.config = config
        mqtt = values.get("mqtt", {})
        self.http_port = int(values.get("http", {}).get("port", 8080))
        self.mqtt_port = int(mqtt.get("port", 18830))
        if self.options.transport == "serial":
            urls = [str(link.get("url", "")) for link in values.get("serial", [])]
            found = next((u for u in urls if u.startswith("socket://127.0.0.1:")), None)
            if found is None:
                raise StageError(f"{config} has no serial line on socket://127.0.0.1:PORT")
            self._serial_port = int(found.rsplit(":", 1)[1])
        elif not mqtt.get("enabled", True):
            raise StageError(f"{config} has MQTT turned off: use --transport serial")

    def _settings_toml(self) -> str:
        serial = self.serial
        mqtt_on = serial is None
        lines = [
            f'data_dir = "{self.root / "gateway"}"',
            'log_format = "text"',
            'log_level = "WARNING"',
            "[mqtt]",
            f"enabled = {str(mqtt_on).lower()}",
            f"embedded_broker = {str(not self.options.own_broker).lower()}",
            f"port = {self.mqtt_port}",
            'client_id = "bidao-scenario"',
            "reconnect_initial_s = 0.05",
            "reconnect_max_s = 0.5",
            "[http]",
            f"port = {self.http_port}",
            "[notify]",
            'provider = "twilio"',
            f'public_url = "{self.http_url}"',
            f'twilio_account_sid = "{ACCOUNT}"',
            f'twilio_auth_token = "{TOKEN}"',
            'twilio_from = "+8657100000000"',
            f'twilio_api_base_url = "{self.phones.url}"',
            "retry_initial_s = 0.5",
            self.options.notify_toml,
        ]
        if serial is not None:
            lines += [
                "[[serial]]",
                'name = "line1"',
                f'url = "{serial.url}"',
                "reopen_initial_s = 0.05",
                "reopen_max_s = 0.5",
            ]
        return "\n".join(lines) + "\n" + self.options.settings_toml

    def bidao(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The `bidao` command against the stage's gateway settings (`stdin`: its input)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIDAO_")}
        return subprocess.run(  # noqa: S603 - our own command, fixed arguments
            [*bidao_command(), *_with_config(argv, self.config)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=env,
            input=stdin,
        )

    async def run_bidao(self, *argv: str, stdin: str | None = None) -> str:
        """`bidao ARGV` in a worker thread; its output (StageError if it failed)."""
        done = await asyncio.to_thread(lambda: self.bidao(*argv, stdin=stdin))
        if done.returncode != 0:
            raise StageError(f"bidao {' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    async def start(self) -> None:
        """Start the phone network, the line, the gateway; import the village."""
        if self.options.against is not None:
            await self._join_existing()
            return
        self.phones.start()
        if self.options.own_broker and self.options.transport == "mqtt":
            self.start_broker()
        if self.options.transport == "serial":
            self.serial = SerialConcentrator(self.devices, clock=RealClock())
            await self.serial.start()
        self.root.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self._settings_toml(), encoding="utf-8")
        boxes = [d for d in self.crowd if d.kind == "call_box"]
        village = self.options.village
        files = {
            "units": village.units_csv,
            "households": village.households_csv + crowd_households(boxes),
        }
        if not self.options.without_contacts:
            files["contacts"] = village.contacts_csv
        for kind, text in files.items():
            path = self.root / f"{kind}.csv"
            path.write_text(text, encoding="utf-8")
            await self.run_bidao("import", kind, str(path))
        meters = [d for d in self.crowd if d.kind == "water_meter"]
        if self.meter is not None:
            meters.append(self.meter.device)
        for meter in meters:
            await self.run_bidao(
                "device",
                "add",
                meter.device_id,
                "--kind",
                "water_meter",
                "--key",
                meter.key.hex(),
                "--household",
                HOUSEHOLD,
            )
        self._start_gateway()
        await self._wait_healthy()
        if self.serial is not None:
            await self.serial.wait_connected(self.options.step_timeout_s)
        else:
            await self._connect_mqtt()
        self._watch = asyncio.create_task(self._print_box(), name="sim-scenario-box")
        if self.meter is not None:
            self._meter_task = asyncio.create_task(self._meter_reports(), name="sim-meter")

    async def _meter_reports(self) -> None:
        """The meter reports at its interval on the (accelerated) clock, as a real one does."""
        meter = self.meter
        assert meter is not None
        while True:
            for frame in meter.report():
                await self.send(meter.device, frame)
            # The box beside it says it is alive on the same beat (its heartbeat setting):
            # a box heard from recently is one the gateway can ask "are you OK?".
            await self.send(self.box, self.box.heartbeat(interval_s=meter.device.report_interval_s))
            await self.time.sleep(meter.device.report_interval_s)

    async def _join_existing(self) -> None:
        """Import the village into the running gateway and put the devices on its line."""
        self.root.mkdir(parents=True, exist_ok=True)
        households = visiting_household(self.box.device_id)
        for kind, text in {"units": UNITS_CSV, "households": households}.items():
            path = self.root / f"{kind}.csv"
            path.write_text(text, encoding="utf-8")
            await self.run_bidao("import", kind, str(path))
        await self._wait_healthy()
        if self.options.transport == "serial":
            self.serial = SerialConcentrator(
                self.devices, port=self._serial_port, clock=RealClock()
            )
            await self.serial.start()
            await self.serial.wait_connected(self.options.step_timeout_s)
        else:
            await self._connect_mqtt()
        self._watch = asyncio.create_task(self._print_box(), name="sim-scenario-box")

    def _start_gateway(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BIDAO_")}
        argv = [*bidao_command(), "run", "--config", str(self.config)]
        if self.options.speed != 1.0:
            argv += ["--speed", str(self.options.speed), "--speed-from", repr(self.anchor)]
        with self._log.open("wb") as log:
            # Its own session: Ctrl-C reaches the scenario alone, which stops it in order.
            self._gateway = subprocess.Popen(  # noqa: S603 - our own command
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    async def _wait_healthy(self) -> None:
        deadline = time.monotonic() + max(60.0, self.options.step_timeout_s)
        while time.monotonic() < deadline:
            gateway = self._gateway
            if gateway is not None and gateway.poll() is not None:
                raise StageError(f"the gateway stopped at start:\n{self.gateway_log_tail()}")
            with contextlib.suppress(OSError):
                if await asyncio.to_thread(self._get, "/healthz"):
                    return
            await asyncio.sleep(0.1)
        raise StageError("the gateway did not answer /healthz in time")

    async def _connect_mqtt(self) -> None:
        deadline = time.monotonic() + self.options.step_timeout_s
        while True:
            fleet = MqttFleet(
                "127.0.0.1",
                self.mqtt_port,
                self.devices,
                "bidao-scenario-devices",
                clock=RealClock(),
            )
            try:
                await fleet.__aenter__()
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise StageError(f"no broker on 127.0.0.1:{self.mqtt_port}") from None
                await asyncio.sleep(0.1)
                continue
            self.mqtt = fleet
            return

    def gateway_log_tail(self, chars: int = 2000) -> str:
        """The end of the gateway's log (what it said before it stopped)."""
        try:
            return self._log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def gateway_status(self) -> int | None:
        """The gateway's exit status once it has stopped; None while it runs (or never ran)."""
        return None if self._gateway is None else self._gateway.poll()

    def _get(self, path: str) -> str:
        url = self.http_url + path
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
            return str(response.read().decode())

    async def stop(self) -> None:
        """Stop everything this stage started; safe to call twice."""
        for task in (self._watch, self._meter_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._watch = self._meter_task = None
        if self.mqtt is not None:
            await self.mqtt.close()
            self.mqtt = None
        await asyncio.to_thread(self.stop_broker)
        gateway, self._gateway = self._gateway, None
        if gateway is not None and gateway.poll() is None:
            gateway.terminate()
            try:
                await asyncio.to_thread(gateway.wait, 30)
            except subprocess.TimeoutExpired:
                # Its session leader: the group is the gateway and the broker it started.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(gateway.pid, signal.SIGKILL)
                await asyncio.to_thread(gateway.wait)
        if gateway is not None:
            await asyncio.to_thread(_end_group, gateway.pid)
        if self.serial is not None:
            await self.serial.close()
            self.serial = None
        self.phones.stop()
        if self._own_dir:
            shutil.rmtree(self.root, ignore_errors=True)

    # -- outages ---------------------------------------------------------------------

    def start_broker(self) -> None:
        """Start the stage's own mosquitto on its MQTT port (own_broker)."""
        binary = mosquitto_binary()
        if binary is None:
            raise StageError("mosquitto is not installed")
        conf = self.root / "mosquitto.conf"
        self.root.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"listener {self.mqtt_port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
            encoding="utf-8",
        )
        self._broker = subprocess.Popen(  # noqa: S603 - the broker binary, our config
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def stop_broker(self) -> None:
        """Stop the stage's own mosquitto (the broker goes down); safe to call twice."""
        broker, self._broker = self._broker, None
        if broker is not None and broker.poll() is None:
            broker.terminate()
            try:
                broker.wait(10)
            except subprocess.TimeoutExpired:
                broker.kill()
                broker.wait()

    async def cut_link(self) -> None:
        """The devices' link goes down: the broker stops, or the serial line is pulled."""
        if self.serial is not None:
            await self.serial.close()
        else:
            await asyncio.to_thread(self.stop_broker)

    async def restore_link(self) -> None:
        """The link is back."""
        if self.serial is not None:
            await self.serial.start()
        else:
            self.start_broker()

    # -- what devices do -------------------------------------------------------------

    async def send(self, device: SimulatedDevice, frame: bytes) -> None:
        """A device sends a frame (and resends it until acked, as firmware does)."""
        if self.serial is not None:
            await self.serial.send(device.device_id, frame)
        else:
            assert self.mqtt is not None
            await self.mqtt.send(device.device_id, frame)

    async def inject(self, device_id: str, frame: bytes) -> None:
        """Raw bytes on a device's uplink, sent once (forged or replayed frames)."""
        if self.serial is not None:
            await self.serial.send_raw(encode_serial(frame))
        else:
            assert self.mqtt is not None
            self.mqtt.publish(device_id, frame)

    async def press(
        self, key: Key, *, long: bool = False, box: SimulatedDevice | None = None
    ) -> bytes:
        """Someone presses a key on a box (the scenario's own by default)."""
        box = box or self.box
        frame = box.press(key, 1, long)
        self.box_pressed(box, key, long=long)
        await self.send(box, frame)
        return frame

    def box_pressed(self, box: SimulatedDevice, key: Key, *, long: bool) -> None:  # noqa: ARG002
        """Say that a key was pressed on `box` (one box here; a stage of several names it)."""
        self.say(f"[盒子 box] 按键 press {key.name}{' (long)' if long else ''}")

    def box_heard(self, box: SimulatedDevice, indication: Indication) -> None:  # noqa: ARG002
        """Say what `box` shows and says for an indication (a stage of several names it)."""
        self.say(f"[老人看到和听到 the resident sees and hears] {box_says(indication)}")

    def box_acked(self, box: SimulatedDevice) -> None:
        """`box` got an ACK for a frame (a scenario's report says it; a demo prints it)."""

    def show_boxes(self) -> None:
        """Say what the boxes got since the last time: ACKs (`box_acked`) and indications."""
        for box in self.boxes:
            while self._acked_shown.get(box.device_id, 0) < len(box.acked_positions):
                self._acked_shown[box.device_id] = self._acked_shown.get(box.device_id, 0) + 1
                self.box_acked(box)
            while (shown := self._heard_shown.get(box.device_id, 0)) < len(box.indications):
                self._heard_shown[box.device_id] = shown + 1
                self.box_heard(box, box.indications[shown])

    async def _print_box(self) -> None:
        while True:
            self.show_boxes()
            await asyncio.sleep(POLL_S)

    # -- what the gateway shows ------------------------------------------------------

    async def metric(self, name: str, **labels: str) -> float:
        """The sum of the gateway's samples of one metric (from /metrics) with these labels."""
        text = await asyncio.to_thread(self._get, "/metrics")
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            head, _, value = line.rpartition(" ")
            if all(f'{k}="{v}"' in head for k, v in labels.items()):
                total += float(value)
        return total

    def heard(self, kind: IndicationKind) -> Indication | None:
        """The latest indication of this kind the box got."""
        return next((i for i in reversed(self.box.indications) if i.kind == kind), None)

    def sms(self, number: str) -> list[str]:
        """SMS bodies one phone got."""
        return [r.body for r in self.phones.received(number) if r.kind == "sms"]

    def accepted_call(self, number: str) -> bool:
        """Whether this phone was called and pressed 1."""
        return any(r.kind == "call" and r.pressed == "1" for r in self.phones.received(number))


Check = Callable[[], "Awaitable[str | None] | str | None"]


class Run:
    """One scenario's run on a stage: steps, each waited for and written into the report."""

    def __init__(self, stage: Stage, report: Report) -> None:
        self.stage = stage
        self.report = report

    async def watch(self, check: Check) -> tuple[str | None, str | None]:
        """Poll `check` up to the step timeout: (what it saw, or None; the last error it met)."""
        deadline = time.monotonic() + self.stage.options.step_timeout_s
        last: str | None = None
        while True:
            try:
                result = check()
                seen = await result if asyncio.iscoroutine(result) else result
            except (OSError, StageError) as exc:
                seen, last = None, f"{type(exc).__name__}: {exc}"
            if isinstance(seen, str):
                return seen, last
            if time.monotonic() > deadline:
                return None, last
            await asyncio.sleep(POLL_S)

    async def step(self, key: str, check: Check) -> str:
        """Wait (up to the step timeout) for `check` to return what was seen; else ✗ and stop."""
        seen, last = await self.watch(check)
        if seen is not None:
            self.report.steps.append(Step(key, ok=True, seen=seen))
            self.stage.say(f"✓ {' / '.join(words(key))}")
            return seen
        self.report.steps.append(Step(key, ok=False, seen=last or "未看到 not seen"))
        self.stage.say(f"✗ {' / '.join(words(key))}")
        raise StepFailedError(key)

    def acked(self, device: SimulatedDevice, frame_count: int) -> Check:
        """Seen once the device has `frame_count` acks and nothing waiting."""

        def check() -> str | None:
            if device.pending_count or len(device.acked_positions) < frame_count:
                return None
            return f"ack ({len(device.acked_positions)} acked, nothing waiting)"

        return check

    def box_heard(
        self, kind: IndicationKind, after: int = 0, box: SimulatedDevice | None = None
    ) -> Check:
        """Seen once a box (the scenario's) got an indication of this kind (after `after`)."""
        device = box or self.stage.box

        def check() -> str | None:
            found = [i for i in device.indications[after:] if i.kind == kind]
            return box_says(found[-1]) if found else None

        return check


ScenarioFn = Callable[[Run], Awaitable[None]]
SCENARIOS: dict[str, ScenarioFn] = {}
DEFAULT_SPEED: dict[str, float] = {}


def scenario(name: str, speed: float = 1.0) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register a scenario under its name, with the speed its story runs at by default."""

    def register(fn: ScenarioFn) -> ScenarioFn:
        SCENARIOS[name] = fn
        DEFAULT_SPEED[name] = speed
        return fn

    return register


async def _call_until_on_the_way(run: Run, phone: str, step: str) -> int:
    """Green press, acked; `phone` accepts; the box says help is coming. The ticket number."""
    stage = run.stage
    await stage.press(Key.GREEN_CALL)
    await run.step("green_acked", run.acked(stage.box, len(stage.box.acked_positions) + 1))
    await run.step(
        step, lambda: f"{phone}: 通话 call, 按 pressed 1" if stage.accepted_call(phone) else None
    )
    await run.step("on_the_way", run.box_heard(IndicationKind.HELPER_ON_THE_WAY))
    heard = stage.heard(IndicationKind.HELPER_ON_THE_WAY)
    assert heard is not None
    return heard.ticket_ref


@scenario("elder-calls", speed=1.0)
async def elder_calls(run: Run) -> None:
    """Green press, the secretary presses 1, arrives (long green), resolves on the link, 👍."""
    stage = run.stage
    ticket = await _call_until_on_the_way(run, SECRETARY_PHONE, "secretary_accepts")

    url = await run.step("link_sent", report_link(stage, SECRETARY_PHONE, ticket))
    acked = len(stage.box.acked_positions)
    await stage.press(Key.GREEN_CALL, long=True)
    await run.step("arrived", run.box_heard(IndicationKind.HELPER_ARRIVED))

    def resolve() -> str | None:
        status, resolved = resolve_on_page(url, "灯泡坏了，已换好")
        return f"页面 page {status}" if resolved else None

    await run.step("resolved", _once(resolve, run.box_heard(IndicationKind.RESOLVED)))
    await stage.press(Key.THUMBS_UP)
    await run.step(
        "rated", both(run.acked(stage.box, acked + 2), ticket_says(stage, ticket, "已评价 rated"))
    )


def _once(action: Callable[[], str | None], then: Check) -> Check:
    """Do `action` once (again only if it raised), then wait for `then`."""
    done: list[str] = []

    async def check() -> str | None:
        if not done:
            result = await asyncio.to_thread(action)
            if result is None:
                return None
            done.append(result)
        seen = then()
        seen = await seen if asyncio.iscoroutine(seen) else seen
        return None if seen is None else f"{done[0]}; {seen}"

    return check


def report_link(stage: Stage, number: str, ticket: int) -> Check:
    """Seen once `number` got an SMS about `ticket` with a link to report on it: the link."""

    def check() -> str | None:
        for body in stage.sms(number):
            found = LINK.findall(body)
            if found and f"工单{ticket}" in body:
                return str(found[0])
        return None

    return check


def resolve_on_page(url: str, note: str) -> tuple[int, bool]:
    """Report resolved (an ordinary matter, `note`) on a responder's page: (status, it says so)."""
    body = urllib.parse.urlencode({"action": "resolve", "category": "ordinary", "note": note})
    request = urllib.request.Request(url, data=body.encode(), method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        return int(response.status), "已解决" in response.read().decode()


def both(first: Check, second: Check) -> Check:
    """Seen once `first` is seen, then `second`: both, separated by "; "."""

    async def check() -> str | None:
        a = first()
        a = await a if asyncio.iscoroutine(a) else a
        if a is None:
            return None
        b = second()
        b = await b if asyncio.iscoroutine(b) else b
        return None if b is None else f"{a}; {b}"

    return check


def ticket_says(stage: Stage, ticket: int, text: str) -> Check:
    """Seen once `bidao ticket N` says `text`: its first line."""

    async def check() -> str | None:
        timeline = await stage.run_bidao("ticket", str(ticket))
        first = timeline.splitlines()[0] if timeline else ""
        return first if text in timeline else None

    return check


@scenario("nobody-answers", speed=30.0)
async def nobody_answers(run: Run) -> None:
    """The secretary does not answer; the call goes up the chain to the deputy, who accepts."""
    stage = run.stage
    stage.phones.script(SECRETARY_PHONE).behaviour = "no_answer"
    ticket = await _call_until_on_the_way(run, DEPUTY_PHONE, "deputy_accepts")
    await run.step("accepted_by_deputy", ticket_says(stage, ticket, "王副书记"))


@scenario("red-cancel", speed=1.0)
async def red_cancel(run: Run) -> None:
    """Green by mistake, red within the minute: the call is cancelled."""
    stage = run.stage
    stage.phones.script(SECRETARY_PHONE).behaviour = "no_answer"
    await stage.press(Key.GREEN_CALL)
    await run.step("green_acked", run.acked(stage.box, 1))
    await run.step("call_registered", run.box_heard(IndicationKind.CALL_REGISTERED))
    ticket = stage.heard(IndicationKind.CALL_REGISTERED)
    assert ticket is not None
    await stage.press(Key.RED_HANGUP)
    await run.step("red_acked", run.acked(stage.box, 2))
    await run.step("cancelled", run.box_heard(IndicationKind.CANCELLED))
    await run.step("ticket_cancelled", ticket_says(stage, ticket.ticket_ref, "已撤销"))


@scenario("spoof-and-replay", speed=1.0)
async def spoof_and_replay(run: Run) -> None:
    """A frame MACed with a wrong key and a replayed old frame are refused; good ones pass."""
    stage = run.stage
    box = stage.box
    heartbeat = box.heartbeat()
    await stage.send(box, heartbeat)
    await run.step("good_frame", run.acked(box, 1))
    rejected = await stage.metric("bidao_frames_rejected_total")
    forger = SimulatedDevice(box.device_id, "call_box", b"\xee" * 16, session=box.session + 1)
    forged = forger.press(Key.GREEN_CALL)
    await stage.inject(box.device_id, forged)

    async def forged_refused() -> str | None:
        now = await stage.metric("bidao_frames_rejected_total")
        if now <= rejected:
            return None
        calls = [r for r in stage.phones.records if r.kind == "call"]
        if calls or forger.acked or stage.heard(IndicationKind.CALL_REGISTERED) is not None:
            return None
        return (
            f"bidao_frames_rejected_total {rejected:g} → {now:g}; 没有确认，没有登记呼叫 "
            "no ack, no call registered"
        )

    await run.step("forged_rejected", forged_refused)
    duplicates = await stage.metric("bidao_frames_duplicate_total")
    await stage.inject(box.device_id, heartbeat)

    async def replay_refused() -> str | None:
        now = await stage.metric("bidao_frames_duplicate_total")
        return (
            None if now <= duplicates else f"bidao_frames_duplicate_total {duplicates:g} → {now:g}"
        )

    await run.step("replay_rejected", replay_refused)
    await stage.send(box, box.heartbeat())
    await run.step("still_serving", run.acked(box, 2))


@scenario("box-reboot", speed=1.0)
async def box_reboot(run: Run) -> None:
    """The box reboots with its counter erased; the gateway resynchronises it; calls work."""
    stage = run.stage
    box = stage.box
    await stage.send(box, box.heartbeat())
    await run.step("before_reboot", run.acked(box, 1))
    box.reboot(erase_counter=True)
    stage.say(f"[盒子 box] 重启，计数器丢失 rebooted, counter lost: session {box.session}")
    await stage.send(box, box.heartbeat())

    def resynced() -> str | None:
        if not box.resyncs or box.pending_count:
            return None
        return f"NACK_RESYNC → session {box.session}, acked"

    await run.step("resynced", resynced)
    acked = len(box.acked_positions)
    await stage.press(Key.GREEN_CALL)
    await run.step("back_in_service", run.acked(box, acked + 1))


@scenario("key-rotation", speed=1.0)
async def key_rotation(run: Run) -> None:
    """The operator gives the box a new key; the box keeps working throughout."""
    stage = run.stage
    box = stage.box
    await stage.send(box, box.heartbeat())
    await run.step("good_frame", run.acked(box, 1))
    old = box.key_version
    await stage.run_bidao("device", "rotate-key", box.device_id, "--by", "scenario")
    stage.say("[运维 operator] bidao device rotate-key " + box.device_id)
    beats = [time.monotonic()]

    async def rotated() -> str | None:
        if not box.provisions:
            # The gateway sends the new key after the box's next frame once it has seen the
            # change: the box keeps its heartbeat going.
            if not box.pending_count and time.monotonic() - beats[-1] >= 1.0:
                beats.append(time.monotonic())
                await stage.send(box, box.heartbeat())
            return None
        if box.stored is not None and not box.pending_count:
            # The new key is stored: the next frame is MACed with it, and its ACK confirms it.
            await stage.send(box, box.heartbeat())
        if box.stored is not None or box.pending_count or box.key_version == old:
            return None
        return f"key id {old} → {box.key_version}, 新密钥的帧已确认 acked under the new key"

    await run.step("rotated", rotated)
    acked = len(box.acked_positions)
    await stage.press(Key.GREEN_CALL)
    await run.step("call_after_rotation", run.acked(box, acked + 1))


@scenario("storm", speed=1.0)
async def storm(run: Run) -> None:
    """Many boxes and meters send at the chosen rate; every frame is acknowledged."""
    stage = run.stage
    options = stage.options
    crowd = stage.crowd
    await run.step("gateway_sees_crowd", lambda: f"{len(crowd)} devices" if crowd else None)
    total = int(options.storm_rate * options.storm_duration_s)
    started = time.monotonic()
    for n in range(total):
        device = crowd[n % len(crowd)]
        if device.kind == "water_meter":
            frame = device.water_reading(1000 + n // len(crowd))
        else:
            frame = device.heartbeat()
        await stage.send(device, frame)
        lag = started + (n + 1) / options.storm_rate - time.monotonic()
        if lag > 0:
            await asyncio.sleep(lag)
    rate = total / max(time.monotonic() - started, 1e-9)
    stage.say(f"[风暴 storm] {total} frames from {len(crowd)} devices at {rate:.0f} frames/s")

    def all_acked() -> str | None:
        acked = sum(len(d.acked_positions) for d in crowd)
        if acked < total or any(d.pending_count for d in crowd):
            return None
        return f"{acked}/{total} acked, {rate:.0f} frames/s"

    await run.step("storm_acked", all_acked)


OUTAGE_SETTINGS = """
[runtime]
link_alarm_after_s = 120.0
"""
"""One operator alarm once the link has been down two (accelerated) minutes."""


def _alarms_say(stage: Stage, text: str, *, present: bool) -> Check:
    async def check() -> str | None:
        listing = await stage.run_bidao("alarms")
        lines = [" ".join(line.split()) for line in listing.splitlines() if text in line]
        if present:
            return f"{len(lines)}: {lines[0]}" if len(lines) == 1 else None
        return None if lines else "bidao alarms: " + (listing.strip().splitlines() or [""])[-1]

    return check


@scenario("broker-outage", speed=30.0)
async def broker_outage(run: Run) -> None:
    """The broker (or serial line) goes down: one operator alarm; it comes back: all clear."""
    stage = run.stage
    box = stage.box
    await stage.send(box, box.heartbeat())
    await run.step("good_frame", run.acked(box, 1))
    await stage.cut_link()
    stage.say("[链路 link] 中断 down")
    await run.step("broker_alarm", _alarms_say(stage, "网关链路中断", present=True))
    await stage.restore_link()
    stage.say("[链路 link] 恢复 back")
    acked = len(box.acked_positions)
    await stage.press(Key.GREEN_CALL)
    await run.step(
        "broker_cleared",
        both(run.acked(box, acked + 1), _alarms_say(stage, "网关链路中断", present=False)),
    )


WATER_SETTINGS = """
[water]
active_from = "00:00"
active_until = "24:00"
window_s = 21600.0
learn = false
"""
"""A watch that counts every hour (the story may run at any time of day) from six hours."""


def _sms_with(stage: Stage, number: str, text: str, after: int = 0) -> Check:
    def check() -> str | None:
        found = [b for b in stage.sms(number)[after:] if text in b]
        return found[-1] if found else None

    return check


@scenario("zero-water", speed=1200.0)
async def zero_water(run: Run) -> None:
    """A quiet day: no water for six active hours, "are you OK?", the alarm, then all clear."""
    stage = run.stage
    meter = stage.meter
    assert meter is not None
    stage.phones.script(RESIDENT_PHONE).digits = ""  # she does not pick up her phone
    stage.phones.script(GRID_WORKER_PHONE).digits = ""
    await run.step("meter_reading", run.acked(meter.device, 2))
    meter.use(12)
    meter.switch("no_use")
    stage.say("[水表 meter] 此后不再用水 no more water from now on")
    await run.step("are_you_ok", run.box_heard(IndicationKind.ARE_YOU_OK))
    await run.step("water_alarm", _sms_with(stage, GRID_WORKER_PHONE, "用水预警："))
    meter.switch("normal")
    meter.use(12)
    stage.say("[水表 meter] 她又用水了 she runs the tap again")
    await run.step("all_clear", _sms_with(stage, GRID_WORKER_PHONE, "用水预警解除"))


@scenario("meter-offline", speed=600.0)
async def meter_offline(run: Run) -> None:
    """The meter stops reporting: the installers are told, then told again when it is back."""
    stage = run.stage
    meter = stage.meter
    assert meter is not None
    await run.step("meter_reading", run.acked(meter.device, 2))
    meter.switch("offline")
    stage.say("[水表 meter] 离线 offline")
    await run.step("meter_offline_seen", _device_listing_says(stage, "离线 offline"))
    meter.switch("offline", on=False)
    await run.step("meter_back", _device_listing_says(stage, "在线 online"))


def _device_listing_says(stage: Stage, text: str) -> Check:
    async def check() -> str | None:
        listing = await stage.run_bidao("device", "list")
        line = next((line for line in listing.splitlines() if METER_ID in line), "")
        return " ".join(line.split()) if text in line else None

    return check


NEEDS_METER = {"zero-water": WATER_SETTINGS, "meter-offline": ""}


AGAINST_EXISTING = {"spoof-and-replay", "box-reboot", "key-rotation"}
"""Scenarios that need nothing of the gateway but its line and its box (no phones)."""


async def play(name: str, options: StageOptions) -> Report:
    """Run one scenario on a stage of its own; the report (setting up may raise StageError)."""
    report = Report(name)
    if options.against is not None and name not in AGAINST_EXISTING:
        raise StageError(
            f"{name} needs a gateway of its own (its phones, meter or broker); the ones that "
            f"play against a running gateway: {', '.join(sorted(AGAINST_EXISTING))}"
        )
    if name == "broker-outage":
        options.own_broker = True
        options.settings_toml += OUTAGE_SETTINGS
    if name in NEEDS_METER:
        options.with_meter = True
        options.settings_toml += NEEDS_METER[name]
    stage = Stage(options)
    try:
        try:
            await stage.start()
        except (TimeoutError, OSError) as exc:
            raise StageError(f"could not set the stage up: {type(exc).__name__}: {exc}") from exc
        report.steps.append(
            Step("gateway_up", ok=True, seen=f"{stage.http_url}, {options.transport}")
        )
        with contextlib.suppress(StepFailedError):
            await SCENARIOS[name](Run(stage, report))
    finally:
        await stage.stop()
    return report


def report_json(report: Report) -> str:
    """The report for scripts."""
    return json.dumps(
        {
            "scenario": report.name,
            "passed": report.passed,
            "steps": [
                {"step": s.key, "expected": words(s.key), "ok": bool(s.ok), "seen": s.seen}
                for s in report.steps
            ],
        },
        ensure_ascii=False,
    )


__all__ = ["SCENARIOS", "Report", "StageError", "StageOptions", "play", "report_json"]
