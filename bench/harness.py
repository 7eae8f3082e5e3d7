"""What the latency and scale benches share: processes, devices, a paced publisher, timed probes.

The gateway is only reached through its real surfaces: `bidao run` as a subprocess (its
banner on stdout, /metrics over HTTP), the `bidao` command for imports, a real mosquitto,
the fake phone network as a subprocess, and frames built by device_sim over MQTT. Every
process started here is registered with `Children`, which ends them all (gently, then
SIGKILL) on any exit, Ctrl-C and SIGTERM included.

Run `python -m bench.harness publish ...` to get the paced publisher on its own.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.burst import DISCONNECT, PUBLISH_QOS1, BurstConnection, encode_packet, mqtt_string
from device_sim.device import DEFAULT_INTERVAL_S, DeviceKind, SimulatedDevice
from firmware_protocol import KEY_LEN, Ack, downlink_topic, uplink_topic
from gateway.config import BrokerSettings
from gateway.ingest.transports.mqtt import MAX_PACKET_SIZE
from gateway.runtime.broker import render_config

BIDAO = Path(sys.executable).with_name("bidao")
PHONES_ACCOUNT = "ACb1dab1dab1dab1dab1dab1dab1dab1da"
PHONES_TOKEN = "bidao-fake-phone-network"
PHONES_FROM = "+8657100000000"
_BOX_BASE, _METER_BASE, _PROBE_BASE = 0xB1DA500000000000, 0xB1DA600000000000, 0xB1DA700000000000
_KEY_LABEL = b"bidao-bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# Device identities, derived so that every process can rebuild them from an index.


def _identity(base: int, index: int) -> tuple[str, bytes]:
    device_id = f"{base + index:016x}"
    return device_id, hmac.new(_KEY_LABEL, device_id.encode(), hashlib.sha256).digest()[:KEY_LEN]


def box_identity(index: int) -> tuple[str, bytes]:
    """(device_id, key) of the index-th bench call box."""
    return _identity(_BOX_BASE, index)


def meter_identity(index: int) -> tuple[str, bytes]:
    """(device_id, key) of the index-th bench water meter."""
    return _identity(_METER_BASE, index)


def device_identity(kind: DeviceKind, index: int) -> tuple[str, bytes]:
    """(device_id, key) of the index-th bench device of a kind."""
    return box_identity(index) if kind == "call_box" else meter_identity(index)


# Grid CSVs: one county and township; `villages` villages, each down to one neighbourhood.

UNITS_HEADER = "code,level,name,parent_code"
HOUSEHOLDS_HEADER = (
    "household_code,neighbourhood_code,address,resident_name,resident_phone,lives_alone,"
    "five_guarantee,needs_care,consent,key_safe_code,health_notes,device_id,device_key"
)
CONTACTS_HEADER = "name,role,unit_code,household_code,phone,language,available_from,available_to"
COUNTY, TOWNSHIP = "990001", "990001-101"


def village_code(v: int) -> str:
    """Code of the v-th bench village."""
    return f"{TOWNSHIP}-{v:04d}"


def neighbourhood_code(v: int) -> str:
    """Code of the one neighbourhood of the v-th bench village."""
    return f"{village_code(v)}-1-1-1"


def secretary_phone(v: int) -> str:
    """The v-th village secretary's number (unique per village)."""
    return f"137{v:08d}"


def units_csv(villages: int) -> str:
    """The county, its township and `villages` villages with one area, group, neighbourhood."""
    lines = [UNITS_HEADER, f"{COUNTY},county,测试县,", f"{TOWNSHIP},township,测试镇,{COUNTY}"]
    for v in range(villages):
        code = village_code(v)
        lines += [
            f"{code},village,测试村{v},{TOWNSHIP}",
            f"{code}-1,area,一片,{code}",
            f"{code}-1-1,group,一组,{code}-1",
            f"{code}-1-1-1,neighbourhood,一邻,{code}-1-1",
        ]
    return "\n".join(lines) + "\n"


def households_csv(
    boxes: Sequence[tuple[int, int]],
    identity: Callable[[int], tuple[str, bytes]] = box_identity,
) -> str:
    """Households (index, village) each with its resident and its call box (`identity`)."""
    lines = [HOUSEHOLDS_HEADER]
    for i, v in boxes:
        device_id, key = identity(i)
        lines.append(
            f"H{i:07d},{neighbourhood_code(v)},测试村{v}第{i}户,居民{i},139{i:08d},1,0,0,1,,,"
            f"{device_id},{key.hex()}"
        )
    return "\n".join(lines) + "\n"


def contacts_csv(villages: Sequence[int]) -> str:
    """A secretary (with their own number) for each of these villages."""
    lines = [CONTACTS_HEADER]
    lines += [
        f"书记{v},village_secretary,{village_code(v)},,{secretary_phone(v)},zh-CN,,"
        for v in villages
    ]
    return "\n".join(lines) + "\n"


def bidao(config: Path, *args: str) -> str:
    """Run one `bidao` command against the config; its stdout, or SystemExit with its output."""
    done = subprocess.run(
        [str(BIDAO), *args, "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"bidao {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout


def import_grid(config: Path, root: Path, units: str, households: str, contacts: str) -> float:
    """Import the CSVs (an empty text is skipped) with `bidao import`; seconds it took."""
    started = time.perf_counter()
    for kind, text in (("units", units), ("households", households), ("contacts", contacts)):
        if not text:
            continue
        path = root / f"{kind}.csv"
        path.write_text(text, encoding="utf-8")
        bidao(config, "import", kind, str(path))
    return time.perf_counter() - started


def register_meters(config: Path, first: int, count: int, households: int = 0) -> float:
    """Register bench water meters through the application facade (as `bidao device add`
    does, without a process per device); seconds it took. Meter i goes into household i's
    home (imported by `households_csv`, every resident living alone: a watched household)
    when i < `households`, else into none."""
    devices = []
    for i in range(first, first + count):
        device_id, key = meter_identity(i)
        devices.append((device_id, key, f"H{i:07d}" if i < households else None))
    return register_devices(config, "water_meter", devices)


def register_devices(
    config: Path, kind: DeviceKind, devices: Sequence[tuple[str, bytes, str | None]]
) -> float:
    """Register (device_id, key, household or None) devices of a kind through the facade;
    seconds it took."""
    import asyncio

    from gateway.application import offline
    from gateway.config import load_settings

    async def register() -> None:
        async with offline(load_settings(config)) as application:
            for device_id, key, household in devices:
                await application.register_device(device_id, kind, key, household)

    started = time.perf_counter()
    asyncio.run(register())
    return time.perf_counter() - started


def seed_water_history(config: Path, households: Sequence[str], days: int, now: float) -> float:
    """Give these watched households a watch `days` days old (as a county's has after its
    first weeks): a routine learned from a day record per day, water last used 15 minutes
    ago at 1,000 litres (where the bench's meters start); seconds it took."""
    import asyncio
    from zoneinfo import ZoneInfo

    from gateway.config import load_settings
    from gateway.domain.water import DayRecord, Phase, WaterWatch, learn, local_day
    from gateway.store.sqlite import SqliteStore

    settings = load_settings(config)
    rules = settings.water.rules()
    today = local_day(now, ZoneInfo(settings.tickets.timezone))
    rng = random.Random(days)

    def watch(household: str) -> WaterWatch:
        history = tuple(
            DayRecord(day, rng.randrange(360, 540), rng.uniform(3_600, 20_000), lived=True)
            for day in range(today - days, today)
        )
        used = now - 900
        return WaterWatch(
            household=household,
            phase=Phase.WATCHING,
            last_reading_at=used,
            volume_l=1000.0,
            quiet_since=used,
            last_life_at=used,
            today=DayRecord(today, 420, rng.uniform(600, 3_600), lived=True),
            history=history,
            routine=learn(history, today, rules),
        )

    async def seed() -> None:
        store = SqliteStore(settings.database_path)
        await store.open()
        try:
            for start in range(0, len(households), 5000):
                async with store.transaction() as uow:
                    await uow.water.save_many(
                        [watch(h) for h in households[start : start + 5000]], now
                    )
        finally:
            await store.close()

    started = time.perf_counter()
    asyncio.run(seed())
    return time.perf_counter() - started


# Processes.


class Children:
    """Every process the bench starts; `close` ends them all, newest first."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen[Any]]] = []

    def start(self, name: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Popen and remember the process."""
        proc: subprocess.Popen[Any] = subprocess.Popen(argv, **kwargs)
        self._procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 15.0) -> int:
        """SIGTERM, wait, SIGKILL if it lingers; its exit status."""
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs = [(n, p) for n, p in self._procs if p is not proc]
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        return int(proc.returncode)

    def close(self) -> None:
        """Stop every process still running."""
        for _name, proc in reversed(list(self._procs)):
            self.stop(proc)


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def children() -> Iterator[Children]:
    """A Children that is closed on every exit; SIGTERM is handled like Ctrl-C meanwhile."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    kids = Children()
    try:
        yield kids
    finally:
        kids.close()
        signal.signal(signal.SIGTERM, previous)


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[Any], what: str, timeout: float = 15) -> None:
    """Until something accepts on 127.0.0.1:port; SystemExit if `proc` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not listen on 127.0.0.1:{port}")
        time.sleep(0.02)


def mosquitto_conf(port: int, data_dir: Path, nodelay: bool) -> str:
    """The config Bidao starts its own broker with (render_config); nodelay off to compare."""
    text = render_config(BrokerSettings(), "127.0.0.1", port, data_dir.resolve())
    if not nodelay:
        text = text.replace("set_tcp_nodelay true\n", "")
    return text


def start_mosquitto(kids: Children, data_dir: Path, nodelay: bool = True) -> int:
    """A mosquitto on a free loopback port; the port."""
    binary = next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).exists()),
        "mosquitto",
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = data_dir / "mosquitto.conf"
    conf.write_text(mosquitto_conf(port, data_dir, nodelay))
    with (data_dir / "mosquitto.log").open("ab") as log:
        proc = kids.start("mosquitto", [binary, "-c", str(conf)], stdout=log, stderr=log)
    wait_listening(port, proc, "mosquitto")
    return port


def start_phones(kids: Children, log_dir: Path) -> str:
    """`bidao sim phones serve` on a free port; its base URL."""
    port = free_port()
    with (log_dir / "phones.log").open("ab") as log:
        proc = kids.start(
            "phones",
            [str(BIDAO), "sim", "phones", "serve", "--port", str(port)],
            stdout=log,
            stderr=log,
        )
    wait_listening(port, proc, "the fake phone network")
    return f"http://127.0.0.1:{port}"


def provider_requests(phones_url: str) -> list[dict[str, Any]]:
    """Every SMS and call the fake phone network has taken (with `to` and `created_at`)."""
    with urllib.request.urlopen(f"{phones_url}/phones", timeout=30) as reply:
        records: list[dict[str, Any]] = json.loads(reply.read())
    return records


def gateway_config(
    path: Path, data_dir: Path, mqtt_port: int, http_port: int, phones_url: str | None
) -> Path:
    """Write the gateway's TOML (external broker, twilio at the fake phones if given)."""
    lines = [
        f'data_dir = "{data_dir}"',
        'log_level = "WARNING"',
        "",
        "[mqtt]",
        "embedded_broker = false",
        f"port = {mqtt_port}",
        'client_id = "bench-gateway"',
        "",
        "[http]",
        f"port = {http_port}",
    ]
    if phones_url is not None:
        lines += [
            "",
            "[notify]",
            'provider = "twilio"',
            f'public_url = "http://127.0.0.1:{http_port}"',
            f'twilio_account_sid = "{PHONES_ACCOUNT}"',
            f'twilio_auth_token = "{PHONES_TOKEN}"',
            f'twilio_from = "{PHONES_FROM}"',
            f'twilio_api_base_url = "{phones_url}"',
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(slots=True)
class Gateway:
    """A running `bidao run` process and how to read its figures."""

    proc: subprocess.Popen[Any]
    http_port: int
    started_at: float
    """time.monotonic() just before the process was spawned."""
    banner_at: float
    banner: str

    @property
    def pid(self) -> int:
        """The gateway's process id."""
        return int(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU the process has used (/proc/<pid>/stat)."""
        return process_cpu_seconds(self.pid)

    def rss_mb(self) -> float:
        """Resident set size in MB (/proc/<pid>/statm)."""
        fields = Path(f"/proc/{self.pid}/statm").read_text().split()
        return int(fields[1]) * PAGE / 1e6

    def metric(self, name: str, labels: str = "") -> float:
        """Sum of every sample of `name` (optionally only those whose labels contain `labels`)."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as reply:
            text = reply.read().decode()
        total = 0.0
        pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
        for match in pattern.finditer(text):
            if labels in (match.group(1) or ""):
                total += float(match.group(2))
        return total

    def acks(self) -> float:
        """Protocol acks sent so far, every code."""
        return self.metric("bidao_acks_sent_total")


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat); diff two to get a share."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def start_gateway(kids: Children, config: Path, http_port: int, timeout: float = 120) -> Gateway:
    """`bidao run --config`; returns once its banner is printed (SystemExit if it is not)."""
    started = time.monotonic()
    log = (config.parent / "gateway.log").open("ab")
    proc = kids.start(
        "gateway",
        [str(BIDAO), "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    log.close()
    stdout = proc.stdout
    assert stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or not box[0].strip():
        kids.stop(proc)
        raise SystemExit(f"the gateway printed no banner; see {config.parent / 'gateway.log'}")
    banner_at = time.monotonic()
    # Whatever it prints later (the console provider's messages) must not fill the pipe.
    threading.Thread(
        target=_copy_out, args=(stdout, config.parent / "gateway.out"), daemon=True
    ).start()
    return Gateway(proc, http_port, started, banner_at, box[0].strip())


def _copy_out(stream: Any, path: Path) -> None:
    with path.open("a", encoding="utf-8") as out, suppress(ValueError, OSError):
        for line in stream:
            out.write(line)


# Timed devices: a paho client in this process that sends frames and notes when each is acked.


def _nodelay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class TimedDevices:
    """Devices behind one paho v5 client subscribed to their own downlink topics only.

    `send` publishes a frame at QoS 1 and notes the wall-clock time; the ack's arrival is
    noted on paho's thread. Times are time.time() so that they compare with other processes.
    """

    def __init__(self, port: int, devices: Sequence[SimulatedDevice]) -> None:
        self.devices = {d.device_id: d for d in devices}
        self.sent: dict[tuple[str, int], float] = {}
        self.acked: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._topics = {downlink_topic(d): d for d in self.devices}
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-timed-{os.getpid()}-{id(self):x}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._subscribed.set()
        self.client.on_socket_open = _nodelay
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        topics = [(topic, 1) for topic in self._topics]
        # Each SUBSCRIBE fits the broker's max_packet_size (a topic costs its length + 3).
        per = max(1, (MAX_PACKET_SIZE - 64) // (max(map(len, self._topics), default=1) + 3))
        for start in range(0, len(topics), per):
            self._subscribed.clear()
            self.client.subscribe(topics[start : start + per])
            if not self._subscribed.wait(15):
                self.close()
                raise SystemExit("the timed devices' subscription was not granted")

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        at = time.time()
        device = self.devices[self._topics[msg.topic]]
        envelope = device.handle_downlink(bytes(msg.payload))
        if envelope is not None and isinstance(envelope.message, Ack):
            key = (device.device_id, envelope.message.acked_seq)
            with self._lock:
                self.acked.setdefault(key, at)

    def send(self, device_id: str, frame: bytes, seq: int) -> None:
        """Publish one frame of a device at QoS 1, noting when."""
        with self._lock:
            self.sent[(device_id, seq)] = time.time()
        self.client.publish(uplink_topic(device_id), frame, qos=1)

    def latencies_ms(self) -> tuple[list[float], int]:
        """(send → ack in ms of every acked frame, frames not acked)."""
        with self._lock:
            done = [(self.acked[k] - t) * 1000 for k, t in self.sent.items() if k in self.acked]
            return done, len(self.sent) - len(done)

    def close(self) -> None:
        """Disconnect and stop paho's thread."""
        self.client.disconnect()
        self.client.loop_stop()


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max (nearest rank); NaN when empty."""
    if not values:
        return {k: float("nan") for k in ("p50", "p90", "p99", "max")}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]

    return {"p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": ordered[-1]}


# The paced publisher: a process of its own, heartbeats and readings at a target rate.


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """What the publisher sends: devices, rate, duration and the first sequence number."""

    port: int
    boxes: tuple[int, int]
    """(first index, count) of bench call boxes sending heartbeats."""
    meters: tuple[int, int]
    """(first index, count) of bench water meters sending readings."""
    rate: float
    seconds: float
    first_seq: int
    pick: str = "round"
    """round: devices in turn; shuffled: every device once in a random order, then again in
    another; random: a random device for each frame; rated: a random device for each frame,
    each kind as often as its default interval makes it report (a county's mix: a box every
    60 s, a meter every 15 minutes)."""

    def argv(self) -> list[str]:
        """The command line of a publisher process with this plan."""
        return [
            sys.executable,
            "-m",
            "bench.harness",
            "publish",
            "--port",
            str(self.port),
            "--boxes",
            *map(str, self.boxes),
            "--meters",
            *map(str, self.meters),
            "--rate",
            str(self.rate),
            "--seconds",
            str(self.seconds),
            "--first-seq",
            str(self.first_seq),
            "--pick",
            self.pick,
        ]


@dataclass(frozen=True, slots=True)
class Published:
    """What a publisher did: frames sent, PUBACKed by the broker, over how long."""

    sent: int
    acked: int
    seconds: float

    @property
    def rate(self) -> float:
        """Frames per second offered."""
        return self.sent / self.seconds if self.seconds else 0.0


def start_publisher(kids: Children, plan: PublishPlan) -> subprocess.Popen[str]:
    """The publisher process; read its result with `publisher_result`."""
    return kids.start(
        "publisher",
        plan.argv(),
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )


def publisher_result(kids: Children, proc: subprocess.Popen[str], timeout: float) -> Published:
    """Wait for the publisher's JSON line; SystemExit if it failed."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kids.stop(proc)
        raise SystemExit("the publisher did not finish in time") from None
    kids.stop(proc)
    if proc.returncode != 0 or not out.strip():
        raise SystemExit(f"the publisher failed ({proc.returncode}): {out}")
    result = json.loads(out.strip().splitlines()[-1])
    return Published(int(result["sent"]), int(result["acked"]), float(result["seconds"]))


class _Sender:
    """Builds the next frame of a device (heartbeat for a box, reading for a meter)."""

    def __init__(self, plan: PublishPlan) -> None:
        self.plan = plan
        self.slots: list[tuple[DeviceKind, int]] = [
            ("call_box", i) for i in range(plan.boxes[0], plan.boxes[0] + plan.boxes[1])
        ]
        self.slots += [
            ("water_meter", i) for i in range(plan.meters[0], plan.meters[0] + plan.meters[1])
        ]
        if not self.slots:
            raise SystemExit("the publisher has no devices")
        self.devices: dict[int, tuple[SimulatedDevice, bytes]] = {}
        self.litres: dict[int, int] = {}
        self.turn = 0
        self.random = plan.pick == "random"
        self.rng = random.Random(plan.first_seq)
        self.order: list[int] = []
        """This pass's order ("shuffled")."""
        self.picked = -1
        """The slot of the last frame's device."""
        # For "rated": the share of frames that come from boxes.
        boxes, meters = plan.boxes[1], plan.meters[1]
        per_s = boxes / DEFAULT_INTERVAL_S["call_box"] + meters / DEFAULT_INTERVAL_S["water_meter"]
        self.box_share = (
            boxes / DEFAULT_INTERVAL_S["call_box"] / per_s if plan.pick == "rated" else None
        )

    def _device(self, n: int) -> tuple[SimulatedDevice, bytes]:
        found = self.devices.get(n)
        if found is None:
            kind, index = self.slots[n]
            device_id, key = device_identity(kind, index)
            device = SimulatedDevice(device_id, kind, key, session=self.plan.first_seq)
            found = self.devices[n] = (device, mqtt_string(uplink_topic(device.device_id)))
        return found

    def packet(self, packet_id: int) -> bytes:
        """The MQTT PUBLISH of the next frame, with this packet id."""
        if self.box_share is not None:
            boxes = self.plan.boxes[1]
            if self.rng.random() < self.box_share:
                n = self.rng.randrange(boxes)
            else:
                n = boxes + self.rng.randrange(len(self.slots) - boxes)
        elif self.random:
            n = self.rng.randrange(len(self.slots))
        elif self.plan.pick == "shuffled":
            if not self.order:
                self.order = list(range(len(self.slots)))
                self.rng.shuffle(self.order)
            n = self.order.pop()
        else:
            n, self.turn = self.turn, (self.turn + 1) % len(self.slots)
        self.picked = n
        device, topic = self._device(n)
        if device.kind == "call_box":
            frame = device.heartbeat(uptime_s=3600)
        else:
            self.litres[n] = self.litres.get(n, 1000) + 1
            frame = device.water_reading(self.litres[n])
        return encode_packet(PUBLISH_QOS1, topic + packet_id.to_bytes(2, "big") + b"\x00" + frame)


def publish_paced(plan: PublishPlan) -> Published:
    """Publish at `plan.rate` frames/s for `plan.seconds`, then wait (≤10 s) for the PUBACKs.

    The collector is off meanwhile: with 200,000 simulated devices, its full passes stopped
    this publisher for up to 1.1 s, and the burst that followed was timed against the
    gateway. Sending frames makes no reference cycles, and the process ends after the run.
    """
    gc.disable()
    sender = _Sender(plan)
    total = int(plan.rate * plan.seconds)
    tick = 0.005
    with socket.create_connection(("127.0.0.1", plan.port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = BurstConnection(sock)
        window = max(1, min(1000, conn.connect(f"bench-pub-{os.getpid()}"), 0xFFFE))
        sent = 0
        started = time.perf_counter()
        while sent < total:
            now = time.perf_counter()
            due = min(total, int(plan.rate * (now - started))) - sent
            room = window - (sent - conn.acked)
            count = min(due, room)
            if count > 0:
                sock.sendall(b"".join(sender.packet((sent + k) % 0xFFFF + 1) for k in range(count)))
                sent += count
            sock.settimeout(max(0.0005, tick - (time.perf_counter() - now)))
            with suppress(TimeoutError):
                conn.read_acks()
        elapsed = time.perf_counter() - started
        sock.settimeout(10)
        with suppress(TimeoutError):
            while conn.acked < sent:
                conn.read_acks()
        with suppress(OSError):
            sock.sendall(encode_packet(DISCONNECT, b""))
    return Published(sent, conn.acked, elapsed)


def _publish_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.harness publish")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--boxes", type=int, nargs=2, default=(0, 0), metavar=("FIRST", "COUNT"))
    parser.add_argument("--meters", type=int, nargs=2, default=(0, 0), metavar=("FIRST", "COUNT"))
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--first-seq", type=int, default=1)
    parser.add_argument("--pick", choices=("round", "shuffled", "random", "rated"), default="round")
    args = parser.parse_args(argv)
    plan = PublishPlan(
        args.port,
        tuple(args.boxes),
        tuple(args.meters),
        args.rate,
        args.seconds,
        args.first_seq,
        args.pick,
    )
    try:
        result = publish_paced(plan)
    except KeyboardInterrupt:
        return 130
    sys.stdout.write(
        json.dumps({"sent": result.sent, "acked": result.acked, "seconds": result.seconds}) + "\n"
    )
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["publish"]:
        raise SystemExit("usage: python -m bench.harness publish --help")
    raise SystemExit(_publish_main(sys.argv[2:]))
