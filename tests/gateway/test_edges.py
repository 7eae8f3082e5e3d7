"""Small but real: packet sizes, broker settings, floods of forged ids, odd topics and types.

Real parts: mosquitto (the configuration Bidao ships and starts), the gateway in this
process or as `bidao run` in its own, `mosquitto_pub` for what no Bidao device would send.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.harness import mosquitto_conf
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Ack, Envelope, Heartbeat, Key, encode, uplink_topic
from gateway.clock import ManualClock
from gateway.config import BrokerSettings, load_settings
from gateway.runtime.broker import (
    MosquittoBroker,
    free_loopback_port,
    render_config,
)
from gateway.runtime.service import GatewayService
from tests.gateway.support import (
    gateway_settings,
    sample,
    send_until_acked,
    start_gateway,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
BOX, BOX_KEY = "b1da0000000000e1", bytes(range(16))
MIB = 1024 * 1024
LIMITS = (
    "max_packet_size",
    "set_tcp_nodelay",
    "persistence",
    "autosave_interval",
    "max_queued_messages",
    "max_queued_bytes",
    "max_inflight_messages",
    "queue_qos0_messages",
    "persistent_client_expiration",
)
"""The settings every broker config Bidao ships or starts must carry, with the same values."""


def options(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            out[name] = value
    return out


def test_every_broker_config_sets_size_latency_queue_and_persistence(tmp_path: Path) -> None:
    shipped = options((REPO / "deploy" / "mosquitto.conf").read_text())
    started = options(render_config(BrokerSettings(), "127.0.0.1", 1883, tmp_path))
    bench = options(mosquitto_conf(1883, tmp_path, nodelay=True))
    for name in LIMITS:
        assert shipped.get(name) == started.get(name) == bench.get(name), name
    assert shipped["max_packet_size"] == "1024"
    assert shipped["set_tcp_nodelay"] == "true"
    assert shipped["persistence"] == "true"
    assert shipped["queue_qos0_messages"] == "false"
    assert int(shipped["max_queued_messages"]) >= 1_000_000
    assert "message_size_limit" not in shipped  # mosquitto 2 asks for max_packet_size instead
    assert (
        "./deploy/mosquitto.conf:/mosquitto/config/mosquitto.conf"
        in (REPO / "compose.yaml").read_text()
    )


# The shipped config is run by mosquitto, with its logins and ACLs, in
# tests/deploy/test_broker_acl.py.


# -- 64 MiB against the running gateway ----------------------------------------------------


def gateway_toml(tmp_path: Path, port: int) -> tuple[Path, int]:
    http = free_loopback_port()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "gateway"}"\n'
        'log_format = "text"\nlog_level = "WARNING"\n'
        "[mqtt]\n"
        "embedded_broker = false\n"
        f"port = {port}\n"
        'client_id = "bidao-edges-test"\n'
        "reconnect_initial_s = 0.05\nreconnect_max_s = 0.5\n"
        "[http]\n"
        f"port = {http}\n"
    )
    return config, http


async def register_box(config: Path) -> None:
    service = GatewayService(load_settings(config))
    await service.store.open()
    try:
        await service.register_device(BOX, "call_box", BOX_KEY)
    finally:
        await service.store.close()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def metric(http: int, name: str, **labels: str) -> float:
    url = f"http://127.0.0.1:{http}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            head, _, value = line.rpartition(" ")
            got = head[len(name) :].strip("{}")
            if all(part in got.split(",") for part in want.split(",") if part):
                total += float(value)
    return total


def mosquitto_pub(port: int, topic: str, payload: Path, version: str) -> int:
    return subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-V",
            version,
            "-q",
            "1",
            "-t",
            topic,
            "-f",
            str(payload),
        ],
        capture_output=True,
        check=False,
        timeout=120,
    ).returncode


@pytest.fixture
def big_payload(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "64mib.bin"
    with path.open("wb") as f:
        f.truncate(64 * MIB)
    yield path
    path.unlink()


async def oversized_story(
    tmp_path: Path, port: int, big: Path, version: str, what: str
) -> list[int]:
    """Four 64 MiB publishes at the running gateway; returns mosquitto_pub's exit codes."""
    config, http = gateway_toml(tmp_path, port)
    await register_box(config)
    log = tmp_path / "gateway.log"
    gateway = start_gateway(config, log)
    box = SimulatedDevice(BOX, "call_box", BOX_KEY)
    try:
        async with MqttFleet("127.0.0.1", port, [box]) as fleet:
            await send_until_acked(fleet, box, box.heartbeat())
            before = rss_kib(gateway.pid)
            codes = [
                await asyncio.to_thread(mosquitto_pub, port, uplink_topic(BOX), big, version)
                for _ in range(4)
            ]
            # The gateway is unharmed and its links intact: the next frame is acked at once.
            await send_until_acked(fleet, box, box.press(Key.GREEN_CALL))
            after = rss_kib(gateway.pid)
        print(
            f"{what}: gateway RSS before {before / 1024:.1f} MiB, after four 64 MiB "
            f"publishes {after / 1024:.1f} MiB; mosquitto_pub exit codes {codes}"
        )
        # Nothing of the payloads reached the gateway: no frame refused as too long, and
        # exactly the two frames of the box were received.
        assert metric(http, "bidao_frames_rejected_total", reason="too_long") == 0
        assert metric(http, "bidao_frames_rejected_total") == 0
        assert metric(http, "bidao_frames_received_total") == 2
        return codes
    finally:
        gateway.send_signal(signal.SIGTERM)
        await asyncio.to_thread(gateway.wait, 30)
        assert gateway.returncode == 0, log.read_text()[-3000:]


async def test_a_64_mib_publish_is_refused_by_the_shipped_broker(
    tmp_path: Path, broker: MosquittoBroker, big_payload: Path
) -> None:
    # An MQTT 3.1.1 client cannot be told the limit: the broker disconnects it when the
    # packet's fixed header says 64 MiB (its body is never read).
    codes = await oversized_story(tmp_path, broker.port, big_payload, "mqttv311", "3.1.1")
    assert all(code != 0 for code in codes), codes
    # An MQTT 5 client is told the limit in CONNACK and does not send it at all.
    v5 = await asyncio.to_thread(mosquitto_pub, broker.port, uplink_topic(BOX), big_payload, "5")
    print(f"MQTT 5 publisher: exit code {v5}")


@pytest.fixture
def unlimited_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A mosquitto without max_packet_size (someone else's broker): only the gateway's limit."""

    def without_limit(*args: Any) -> str:
        text = render_config(*args)
        return "".join(ln for ln in text.splitlines(True) if not ln.startswith("max_packet_size"))

    monkeypatch.setattr("gateway.runtime.broker.render_config", without_limit)
    instance = MosquittoBroker(tmp_path / "unlimited")
    instance.start()
    try:
        instance.wait_ready_blocking()
        assert "max_packet_size" not in (instance.data_dir / "mosquitto.conf").read_text()
        yield instance.port
    finally:
        instance.stop()


async def test_the_gateway_announces_its_maximum_packet_size(
    tmp_path: Path, unlimited_broker: int, big_payload: Path
) -> None:
    # The broker takes the publishes (PUBACK: exit code 0) but must not forward a packet
    # larger than the gateway's Maximum Packet Size to it (MQTT 5, 3.1.2.11.4).
    codes = await oversized_story(tmp_path, unlimited_broker, big_payload, "5", "no broker limit")
    assert codes == [0, 0, 0, 0]


# -- forged ids, downlink types, upper-case topics, against the gateway in this process -----


class Gateway:
    def __init__(self, gw: GatewayService, fleet: MqttFleet, box: SimulatedDevice) -> None:
        self.gw, self.fleet, self.box = gw, fleet, box


@pytest.fixture
async def gateway(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Gateway]:
    box = SimulatedDevice(BOX, "call_box", BOX_KEY, clock=clock.now)
    async with GatewayService(gateway_settings(tmp_path, broker), clock) as gw:
        await gw.register_device(BOX, "call_box", BOX_KEY)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            yield Gateway(gw, fleet, box)


def rejected(gw: GatewayService, reason: str) -> float:
    return sample(gw, "bidao_frames_rejected_total", transport="mqtt", reason=reason)


async def test_a_flood_of_forged_ids_is_counted_and_logged_within_a_budget(
    gateway: Gateway, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    g = gateway
    forged = [f"{0xF0F0000000000000 + i:016x}" for i in range(300)]
    with caplog.at_level(logging.WARNING, logger="gateway.ingest.pipeline"):
        for device_id in forged:
            beat = Heartbeat(90, 3000, -60, (1, 0, 0), 10, 60)
            await g.fleet.send(device_id, encode(Envelope(device_id, 1, 0, beat), BOX_KEY))
        # The box's own frame, behind them in the same lane: once it is acked, all were seen.
        await send_until_acked(g.fleet, g.box, g.box.heartbeat())
        # Every frame from an unknown device is counted, as the README says.
        assert rejected(g.gw, "unknown_device") == 300
        lines = [r for r in caplog.records if r.getMessage() == "frame rejected"]
        assert len(lines) == 20  # the budget per interval, not a line per forged id
        await clock.advance(61)
        beat = Heartbeat(90, 3000, -60, (1, 0, 0), 10, 60)
        await g.fleet.send(forged[0], encode(Envelope(forged[0], 2, 0, beat), BOX_KEY))
        await wait_for(lambda: rejected(g.gw, "unknown_device") == 301, what="counted")
    summary = [r for r in caplog.records if r.getMessage().startswith("log lines held back")]
    assert len(summary) == 1
    assert summary[0].held_back == 280  # type: ignore[attr-defined]
    assert summary[0].by_reason == "unknown_device=280"  # type: ignore[attr-defined]
    assert await g.gw.store.devices.count_events() == 1


async def test_a_downlink_type_on_the_up_topic_is_ignored_not_answered(gateway: Gateway) -> None:
    g = gateway
    await send_until_acked(g.fleet, g.box, g.box.heartbeat())
    # An ack MACed with the box's own key, as a reflected downlink would be.
    reflected = encode(Envelope(BOX, 77, 0, Ack(1)), BOX_KEY)
    await g.fleet.send(BOX, reflected)
    await send_until_acked(g.fleet, g.box, g.box.heartbeat())
    # Same device, same lane, in order: the reflected frame was handled before this ack.
    assert rejected(g.gw, "downlink_type_on_uplink") == 1
    assert (
        sample(
            g.gw, "bidao_frames_nacked_total", transport="mqtt", reason="downlink_type_on_uplink"
        )
        == 0
    )
    assert g.box.nacked == {}
    assert 77 not in g.box.acked
    assert sample(g.gw, "bidao_acks_sent_total", code="ACCEPTED") == 2
    assert await g.gw.store.devices.count_events() == 2


async def test_an_upper_case_device_id_in_the_topic_is_taken_as_lower_case(
    gateway: Gateway, broker: MosquittoBroker
) -> None:
    g = gateway
    frame = g.box.press(Key.GREEN_CALL)
    upper = f"bidao/v2/0/{BOX.upper()}/up"
    result = await asyncio.to_thread(
        subprocess.run,
        ["mosquitto_pub", "-p", str(broker.port), "-V", "5", "-q", "1", "-t", upper, "-s"],
        input=frame,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    # Acked on the lower-case downlink topic, which the box listens on; the call is stored.
    await g.fleet.wait_all_acked(10)
    assert sample(g.gw, "bidao_uplink_topics_normalised_total", transport="mqtt") == 1
    assert await g.gw.store.devices.count_events(BOX) == 1
    # Anything else wrong with a topic is still rejected and counted.
    bad = await asyncio.to_thread(
        subprocess.run,
        [
            "mosquitto_pub",
            "-p",
            str(broker.port),
            "-q",
            "1",
            "-t",
            "bidao/v2/0/not-hex/up",
            "-m",
            "x",
        ],
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert bad.returncode == 0
    await wait_for(lambda: rejected(g.gw, "invalid_topic") == 1, what="bad topic counted")


# -- the intake's own PUBLISH reader -------------------------------------------------------


def mosquitto_pub_frame(port: int, device_id: str, frame: bytes, *extra: str) -> None:
    result = subprocess.run(
        ["mosquitto_pub", "-p", str(port), "-V", "5", "-t", uplink_topic(device_id), *extra, "-s"],
        input=frame,
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


async def test_uplinks_with_properties_dup_retain_or_qos_0_are_read_and_acked(
    gateway: Gateway, broker: MosquittoBroker
) -> None:
    # The intake reads QoS 1 PUBLISHes itself (skipping their properties) and leaves every
    # other packet to paho: both paths must give the pipeline the same frame.
    g = gateway
    with_properties = (
        "-q",
        "1",
        "-D",
        "publish",
        "user-property",
        "firmware",
        "长的属性值" * 10,
        "-D",
        "publish",
        "message-expiry-interval",
        "600",
        "-D",
        "publish",
        "content-type",
        "application/octet-stream",
    )
    for extra in (with_properties, ("-q", "1", "-r"), ("-q", "0")):
        frame = g.box.press(Key.GREEN_CALL) if extra[1] == "0" else g.box.heartbeat()
        await asyncio.to_thread(mosquitto_pub_frame, broker.port, BOX, frame, *extra)
        await g.fleet.wait_all_acked(20)
    assert await g.gw.store.devices.count_events(BOX) == 3
    assert sample(g.gw, "bidao_acks_sent_total", code="ACCEPTED") == 3
    assert sample(g.gw, "bidao_frames_rejected_total") == 0
    # Clear the retained frame so that it does not outlive the test on a shared broker.
    await asyncio.to_thread(
        subprocess.run,
        ["mosquitto_pub", "-p", str(broker.port), "-t", uplink_topic(BOX), "-r", "-n"],
        check=True,
        timeout=30,
    )
