"""The shipped mosquitto config with the files `bidao broker-credentials` writes, for real.

mosquitto (the system's binary) runs deploy/mosquitto.conf with only its listener and paths
moved into the test's folder; devices are registered and the files written with the `bidao`
command, as an installer would. Nothing here waits for something *not* to happen: a refused
publish is followed by an allowed marker on the same connection, and the broker delivers one
publisher's messages in order, so once the marker is in, the refused one can no longer come.
"""

from __future__ import annotations

import getpass
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from firmware_protocol import downlink_topic, uplink_topic
from firmware_protocol.broker_auth import broker_password
from gateway.runtime.broker import find_mosquitto, free_loopback_port
from tests.deploy.compose_check import load

REPO = Path(__file__).resolve().parents[2]
GATEWAY_USER, GATEWAY_PASSWORD = "bidao-gateway", "gateway-secret-for-tests"
BOX_A, KEY_A = "b1da00000000a001", bytes(range(16))
BOX_B, KEY_B = "b1da00000000b002", bytes(range(16, 32))
BOX_C, KEY_C = "b1da00000000c003", bytes(range(32, 48))
HANG_GUARD_S = 20.0
"""Only a guard against a hang: every wait below ends as soon as what it waits for happens."""
NOT_AUTHORIZED = 0x87
BAD_LOGIN = (0x86, 0x87)  # MQTT 5: bad user name or password, not authorized


def bidao(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    """The `bidao` command on the test's data folder, as a person would run it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDAO_")}
    env |= {
        "BIDAO_DATA_DIR": str(data),
        "BIDAO_MQTT__USERNAME": GATEWAY_USER,
        "BIDAO_MQTT__PASSWORD": GATEWAY_PASSWORD,
    }
    return subprocess.run(
        [sys.executable, "-c", "from api.entry import main; raise SystemExit(main())", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def add_box(device_id: str, key: bytes, data: Path) -> None:
    done = bidao("device", "add", device_id, "--kind", "call_box", "--key", key.hex(), data=data)
    assert done.returncode == 0, done.stderr


def write_credentials(tmp: Path, data: Path, pid_file: Path | None = None) -> str:
    reload = ["--reload-pid-file", str(pid_file)] if pid_file is not None else []
    done = bidao(
        "broker-credentials",
        "--password-file",
        str(tmp / "passwd"),
        "--acl-file",
        str(tmp / "acl"),
        *reload,
        data=data,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def shipped_config(tmp: Path, port: int) -> Path:
    """deploy/mosquitto.conf with its listener and paths (only those) moved here."""
    text = (REPO / "deploy" / "mosquitto.conf").read_text()
    for old, new in (
        ("listener 1883\n", f"listener {port} 127.0.0.1\n"),
        ("/mosquitto/data/", f"{tmp}/data/"),
        ("/mosquitto/auth/passwd", f"{tmp}/passwd"),
        ("/mosquitto/auth/acl", f"{tmp}/acl"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    (tmp / "data").mkdir(exist_ok=True)
    conf = tmp / "mosquitto.conf"
    conf.write_text(text + f"user {getpass.getuser()}\n")  # as root it would switch users
    return conf


class Client:
    """A paho MQTT 5 client on its own thread: what it receives, its acks, its CONNACK."""

    def __init__(self, port: int, user: str, password: str, client_id: str = "") -> None:
        self.port = port
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connack: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.pubacks: dict[int, ReasonCode] = {}
        self.disconnects = 0
        self._acked = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or user,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
        )
        self.client.username_pw_set(user, password)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self.connack.put(rc)
        self.client.on_subscribe = lambda _c, _u, _m, rcs, _p: self.subacks.put(list(rcs))
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, bytes(m.payload)))
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect

    def _on_publish(
        self, _c: paho.Client, _u: object, mid: int, rc: ReasonCode, _p: Properties
    ) -> None:
        with self._acked:
            self.pubacks[mid] = rc
            self._acked.notify_all()

    def _on_disconnect(self, *_args: object) -> None:
        self.disconnects += 1

    def connect(self) -> ReasonCode:
        """Connect and return the CONNACK's reason code."""
        self.client.connect("127.0.0.1", self.port, keepalive=30, clean_start=True)
        self.client.loop_start()
        return self.connack.get(timeout=HANG_GUARD_S)

    def subscribe(self, topic: str) -> ReasonCode:
        self.client.subscribe(topic, qos=1)
        return self.subacks.get(timeout=HANG_GUARD_S)[0]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        with self._acked:
            assert self._acked.wait_for(lambda: info.mid in self.pubacks, HANG_GUARD_S)
            return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Path, Path, int, subprocess.Popen[bytes]]]:
    """Boxes A and B registered, the files written, mosquitto running the shipped config."""
    data = tmp_path / "bidao-data"
    add_box(BOX_A, KEY_A, data)
    add_box(BOX_B, KEY_B, data)
    said = write_credentials(tmp_path, data)
    assert "wrote broker credentials for 2 devices" in said
    port = free_loopback_port()
    log = (tmp_path / "mosquitto.log").open("wb")
    proc = subprocess.Popen(
        [find_mosquitto(), "-c", str(shipped_config(tmp_path, port))], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            assert proc.poll() is None, (tmp_path / "mosquitto.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mosquitto did not listen"
                time.sleep(0.02)
        yield tmp_path, data, port, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=HANG_GUARD_S)
        log.close()
    # No error and no warning about the files (one others may read, or not ours); the test
    # machine may run it as root, which it warns about, unlike the compose broker.
    logged = [
        line
        for line in (tmp_path / "mosquitto.log").read_text().splitlines()
        if "should not be run as root" not in line
    ]
    assert not [line for line in logged if "Error" in line or "Warning" in line], logged


def gateway(port: int) -> Client:
    intake = Client(port, GATEWAY_USER, GATEWAY_PASSWORD)
    assert not intake.connect().is_failure
    assert intake.subscribe("bidao/v2/+/+/up").value == 1  # granted QoS 1
    return intake


def box(port: int, device_id: str, key: bytes, client_id: str = "") -> Client:
    client = Client(port, device_id, broker_password(key), client_id)
    reason = client.connect()
    assert not reason.is_failure, str(reason)
    return client


def first_accepted_login(port: int, user: str, password: str) -> Client:
    """A client logged in as soon as the broker lets this user in (after a reload, a start)."""
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        client = Client(port, user, password)
        try:
            if not client.connect().is_failure:
                return client
        except OSError:
            pass  # not listening yet
        client.close()
        assert time.monotonic() < deadline, f"{user} was never let in"
        time.sleep(0.02)


def test_a_box_publishes_as_itself_and_is_refused_as_another(
    stack: tuple[Path, Path, int, subprocess.Popen[bytes]],
) -> None:
    _, _, port, _ = stack
    intake = gateway(port)
    a = box(port, BOX_A, KEY_A)
    try:
        assert a.publish(uplink_topic(BOX_A), b"a-as-itself").value == 0
        assert intake.received.get(timeout=HANG_GUARD_S) == (uplink_topic(BOX_A), b"a-as-itself")

        # As box B, in the default shard and in another: refused, then a marker as itself.
        assert a.publish(uplink_topic(BOX_B), b"a-forging-b").value == NOT_AUTHORIZED
        assert a.publish(uplink_topic(BOX_B, "7"), b"a-forging-b-7").value == NOT_AUTHORIZED
        assert a.publish(uplink_topic(BOX_A, "7"), b"marker").value == 0
        assert intake.received.get(timeout=HANG_GUARD_S) == (uplink_topic(BOX_A, "7"), b"marker")
        assert intake.received.empty()  # the forged frames came before the marker, or never

        # Nor may a box publish downlinks (a forged ack to itself or another box).
        assert a.publish(downlink_topic(BOX_B), b"fake-ack").value == NOT_AUTHORIZED
    finally:
        a.close()
        intake.close()


def test_the_gateway_reaches_a_box_on_its_downlink(
    stack: tuple[Path, Path, int, subprocess.Popen[bytes]],
) -> None:
    _, _, port, _ = stack
    downlink = Client(port, f"{GATEWAY_USER}-down", GATEWAY_PASSWORD)
    assert not downlink.connect().is_failure
    a = box(port, BOX_A, KEY_A)
    try:
        assert a.subscribe(downlink_topic(BOX_A)).value == 1
        assert downlink.publish(downlink_topic(BOX_A), b"ack").value == 0
        assert a.received.get(timeout=HANG_GUARD_S) == (downlink_topic(BOX_A), b"ack")
        # mosquitto 2.0 grants any subscription and checks the read rule on delivery: A may
        # listen on B's downlink, but what the gateway sends B never reaches A (the marker
        # for A, sent after it, does).
        a.subscribe(downlink_topic(BOX_B))
        assert downlink.publish(downlink_topic(BOX_B), b"for-b-only").value == 0
        assert downlink.publish(downlink_topic(BOX_A), b"marker").value == 0
        assert a.received.get(timeout=HANG_GUARD_S) == (downlink_topic(BOX_A), b"marker")
        assert a.received.empty()
        # The downlink user publishes only downlinks: an uplink in a box's name is refused.
        assert downlink.publish(uplink_topic(BOX_A), b"forged-up").value == NOT_AUTHORIZED
    finally:
        a.close()
        downlink.close()


def test_a_wrong_password_or_an_unknown_box_cannot_connect(
    stack: tuple[Path, Path, int, subprocess.Popen[bytes]],
) -> None:
    _, _, port, _ = stack
    for user, password in (
        (BOX_A, broker_password(KEY_B)),  # B's password for A
        (BOX_A, "not-the-password"),
        (BOX_C, broker_password(KEY_C)),  # not registered
        (GATEWAY_USER, "guess"),
        ("", ""),  # anonymous
    ):
        client = Client(port, user, password, client_id="someone")
        try:
            reason = client.connect()
            assert reason.is_failure, user
            assert reason.value in BAD_LOGIN, (user, str(reason))
        finally:
            client.close()


def test_a_box_cannot_take_over_the_gateways_session(
    stack: tuple[Path, Path, int, subprocess.Popen[bytes]],
) -> None:
    _, _, port, _ = stack
    intake = gateway(port)
    # The broker takes the username as the client id: this is box A's own session.
    a = box(port, BOX_A, KEY_A, client_id=GATEWAY_USER)
    try:
        assert a.publish(uplink_topic(BOX_A), b"still-there").value == 0
        # Had A taken over the gateway's client id, this subscriber would be gone.
        assert intake.received.get(timeout=HANG_GUARD_S) == (uplink_topic(BOX_A), b"still-there")
        assert intake.disconnects == 0
    finally:
        a.close()
        intake.close()


def test_a_box_added_later_logs_in_after_the_reload(
    stack: tuple[Path, Path, int, subprocess.Popen[bytes]],
) -> None:
    tmp, data, port, proc = stack
    intake = gateway(port)
    a = box(port, BOX_A, KEY_A)
    refused = Client(port, BOX_C, broker_password(KEY_C))
    try:
        assert refused.connect().value in BAD_LOGIN
        refused.close()
        add_box(BOX_C, KEY_C, data)
        pid_file = tmp / "mosquitto.pid"
        pid_file.write_text(f"{proc.pid}\n")
        said = write_credentials(tmp, data, pid_file)
        assert "wrote broker credentials for 3 devices" in said
        assert f"the broker (pid {proc.pid}) re-reads them now" in said
        # mosquitto applies SIGHUP in its next loop turn: log in as soon as it has.
        c = first_accepted_login(port, BOX_C, broker_password(KEY_C))
        try:
            assert c.publish(uplink_topic(BOX_C), b"c-new").value == 0
            assert intake.received.get(timeout=HANG_GUARD_S) == (uplink_topic(BOX_C), b"c-new")
            # Connections made before the reload carry on.
            assert a.publish(uplink_topic(BOX_A), b"a-after").value == 0
            assert intake.received.get(timeout=HANG_GUARD_S) == (uplink_topic(BOX_A), b"a-after")
        finally:
            c.close()
    finally:
        a.close()
        intake.close()


def test_the_gateway_and_a_box_log_in_with_what_provisioning_gave_them(
    stack: tuple[Path, Path, int, subprocess.Popen[bytes]],
) -> None:
    tmp, data, port, _ = stack
    http = free_loopback_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDAO_")}
    env |= {
        "BIDAO_DATA_DIR": str(data),
        "BIDAO_MQTT__EMBEDDED_BROKER": "false",
        "BIDAO_MQTT__PORT": str(port),
        "BIDAO_MQTT__USERNAME": GATEWAY_USER,
        "BIDAO_MQTT__PASSWORD": GATEWAY_PASSWORD,
        "BIDAO_HTTP__PORT": str(http),
        "BIDAO_LOG_FORMAT": "text",
    }
    cli = [sys.executable, "-c", "from api.entry import main; raise SystemExit(main())"]
    log = tmp / "gateway.log"
    with log.open("wb") as out:
        gateway = subprocess.Popen([*cli, "run"], env=env, stdout=out, stderr=out)
    try:
        # The compose healthcheck's question: 200 once both MQTT connections are logged in.
        deadline = time.monotonic() + HANG_GUARD_S
        while True:
            assert gateway.poll() is None, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=2) as r:
                    if r.status == 200 and json.load(r)["mqtt"]["connected"]:
                        break
            except (OSError, KeyError):
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        # The compose healthcheck itself, on the test's port, passes.
        test = load(REPO / "compose.yaml")["services"]["bidao"]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"]
        probe = [sys.executable, *(w.replace(":8080/", f":{http}/") for w in test[2:])]
        assert subprocess.run(probe, check=False, timeout=60).returncode == 0
        press = subprocess.run(
            [
                *cli,
                "sim",
                "box",
                "--port",
                str(port),
                "--broker-login",
                "--device-id",
                BOX_A,
                "--key",
                KEY_A.hex(),
                "--state-dir",
                str(tmp / "sim"),
                "--timeout",
                str(HANG_GUARD_S),
                "press",
                "green",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert press.returncode == 0, press.stdout + press.stderr
        assert f"acked: {BOX_A}" in press.stdout
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=60)
    assert gateway.returncode == 0, log.read_text()[-3000:]


def test_the_compose_healthcheck_command_passes_against_the_broker(
    stack: tuple[Path, Path, int, subprocess.Popen[bytes]],
) -> None:
    _, _, port, _ = stack
    mosquitto = load(REPO / "compose.yaml")["services"]["mosquitto"]
    kind, command = mosquitto["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    command = command.replace("$$", "$")  # compose's escape of a literal $
    assert "-p 1883 " in command
    env = {"PATH": "/usr/bin:/bin"}

    def check(password: str) -> int:
        return subprocess.run(
            ["sh", "-c", command.replace("-p 1883 ", f"-p {port} ")],
            env=env | {"BIDAO_MQTT_PASSWORD": password},
            capture_output=True,
            check=False,
            timeout=60,
        ).returncode

    assert check(GATEWAY_PASSWORD) == 0
    assert check("wrong") != 0
