"""deploy/mosquitto-entrypoint.sh, run by sh with the shipped config: files in, SIGHUP on change.

The script runs as in the container, with its folders moved into a temporary one (its
variables' defaults are the container's paths). Run as root, as the container's entrypoint is,
mosquitto drops to the `mosquitto` user and must still read the files the script installed.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_protocol import uplink_topic
from firmware_protocol.broker_auth import broker_password
from gateway.runtime.broker import find_mosquitto, free_loopback_port
from tests.deploy.test_broker_acl import (
    BAD_LOGIN,
    BOX_A,
    BOX_B,
    BOX_C,
    HANG_GUARD_S,
    KEY_A,
    KEY_B,
    KEY_C,
    Client,
    add_box,
    box,
    first_accepted_login,
    gateway,
    write_credentials,
)

REPO = Path(__file__).resolve().parents[2]
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder the `mosquitto` user may traverse (pytest's own are private to their owner)."""
    path = Path(tempfile.mkdtemp(prefix="bidao-entrypoint-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def brokers(pid: int) -> list[int]:
    """The mosquitto processes the script started (its other child is its `sleep`)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if Path(f"/proc/{child}/comm").read_text() == "mosquitto\n":
                found.append(int(child))
        except FileNotFoundError:
            pass  # a `sleep` that just ended
    return found


def test_the_entrypoint_installs_the_files_and_reloads_on_a_change(folder: Path) -> None:
    data, shared, auth, mq = (folder / name for name in ("bidao", "shared", "auth", "mq"))
    shared.mkdir()
    mq.mkdir()
    add_box(BOX_A, KEY_A, data)
    add_box(BOX_B, KEY_B, data)
    write_credentials(shared, data)
    port = free_loopback_port()
    text = (REPO / "deploy" / "mosquitto.conf").read_text()
    for old, new in (
        ("listener 1883\n", f"listener {port} 127.0.0.1\n"),
        ("/mosquitto/data/", f"{mq}/"),
        ("/mosquitto/auth/", f"{auth}/"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    if not AS_ROOT:
        text += f"user {getpass.getuser()}\n"  # it cannot switch users
    conf = folder / "mosquitto.conf"
    conf.write_text(text)
    env = {
        "PATH": "/usr/bin:/bin",
        "BROKER_AUTH_SHARED": str(shared),
        "BROKER_AUTH_DIR": str(auth),
        "MOSQUITTO_DATA": str(mq),
        "MOSQUITTO_CONF": str(conf),
        "MOSQUITTO": find_mosquitto(),
        "BROKER_AUTH_OWNER": "mosquitto:mosquitto" if AS_ROOT else f"{os.getuid()}:{os.getgid()}",
        "BROKER_AUTH_POLL_S": "1",
    }
    log = folder / "entrypoint.log"
    with log.open("wb") as out:
        script = subprocess.Popen(
            ["sh", str(REPO / "deploy" / "mosquitto-entrypoint.sh")],
            env=env,
            stdout=out,
            stderr=out,
        )
    broker_pid = 0
    try:
        first_accepted_login(port, BOX_A, broker_password(KEY_A)).close()
        (broker_pid,) = brokers(script.pid)
        for name in ("passwd", "acl"):
            installed = (auth / name).stat()
            assert installed.st_mode & 0o777 == 0o600
            if AS_ROOT:
                assert installed.st_uid == pwd.getpwnam("mosquitto").pw_uid

        intake = gateway(port)
        a = box(port, BOX_A, KEY_A)
        try:
            refused = Client(port, BOX_C, broker_password(KEY_C))
            assert refused.connect().value in BAD_LOGIN
            refused.close()
            # A box is registered and the writer runs (as broker-auth's --watch does).
            add_box(BOX_C, KEY_C, data)
            write_credentials(shared, data)
            c = first_accepted_login(port, BOX_C, broker_password(KEY_C))
            try:
                assert c.publish(uplink_topic(BOX_C), b"c").value == 0
                assert intake.received.get(timeout=HANG_GUARD_S) == (uplink_topic(BOX_C), b"c")
            finally:
                c.close()
            # The same broker process, and box A's connection from before the reload, go on.
            assert brokers(script.pid) == [broker_pid]
            assert a.publish(uplink_topic(BOX_A), b"a").value == 0
            assert intake.received.get(timeout=HANG_GUARD_S) == (uplink_topic(BOX_A), b"a")
        finally:
            a.close()
            intake.close()
    finally:
        script.send_signal(signal.SIGTERM)
        script.wait(timeout=HANG_GUARD_S)
    said = log.read_text()
    assert script.returncode == 0, said
    assert "broker credentials changed: mosquitto re-reads them" in said
    assert not Path(f"/proc/{broker_pid}").exists()  # stopped and reaped with the script
    problems = [
        line
        for line in said.splitlines()
        if ("Error" in line or "Warning" in line) and "should not be run as root" not in line
    ]
    assert not problems, said
    assert (mq / "mosquitto.db").exists()  # saved on SIGTERM, by the mosquitto user
