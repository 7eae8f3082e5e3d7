"""`bidao broker-credentials`: the password file's format, who is in it, and its errors."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

from firmware_protocol.broker_auth import broker_password
from gateway.runtime.broker_auth import PasswordFile, password_hash, render_acl
from tests.deploy.test_broker_acl import BOX_A, BOX_B, KEY_A, KEY_B, add_box, bidao

REPO = Path(__file__).resolve().parents[2]
HASH = re.compile(r"^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$")


def test_the_hash_is_the_one_mosquitto_passwd_writes() -> None:
    # `mosquitto_passwd -c -b pw alice secret` (mosquitto 2.0.11) wrote this line; the same
    # salt gives the same hash.
    line = (
        "$7$101$rvRWlwKSrGH8Q5p5$G3knZiZLCnCwouZYD8zUU1ngXEb9e6IVp7bwsTKPuKr3hANbjP6OIAp3RF2q"
        "H/wSQtE6QVpP8sjtApdh106+pQ=="
    )
    salt = base64.b64decode("rvRWlwKSrGH8Q5p5")
    assert password_hash("secret", salt) == line
    assert HASH.match(password_hash("secret"))


def test_the_box_password_is_the_one_the_protocol_document_gives() -> None:
    example = broker_password(bytes(range(16)))
    assert re.fullmatch(r"[0-9a-f]{32}", example)
    assert (
        f"`000102030405060708090a0b0c0d0e0f` gives `{example}`"
        in (REPO / "docs" / "protocol.md").read_text()
    )
    assert broker_password(KEY_A) != broker_password(KEY_B)


def test_an_unchanged_user_keeps_its_line_and_a_new_key_gets_a_new_one() -> None:
    renderer = PasswordFile()
    first = renderer.render("gw", "pw", [(BOX_A, KEY_A), (BOX_B, KEY_B)]).splitlines()
    second = renderer.render("gw", "pw", [(BOX_A, KEY_A), (BOX_B, KEY_A)]).splitlines()
    assert [line.split(":")[0] for line in first] == [
        "gw",
        "gw-down",
        "bidao-health",
        BOX_A,
        BOX_B,
    ]
    assert first[:4] == second[:4]
    assert first[4] != second[4]
    # A person's password gets mosquitto_passwd's 101 iterations; a box's 128-bit one, 1.
    assert [line.split("$")[2] for line in first] == ["101", "101", "101", "1", "1"]


def test_the_acl_does_not_grow_with_the_devices() -> None:
    acl = render_acl("bidao-gateway")
    assert "pattern write bidao/v2/+/%u/up" in acl
    assert "pattern read bidao/v2/+/%u/down" in acl
    assert "%c" not in acl  # the client id is the username (use_username_as_clientid)


def test_only_enabled_devices_get_a_login(tmp_path: Path) -> None:
    data = tmp_path / "data"
    add_box(BOX_A, KEY_A, data)
    add_box(BOX_B, KEY_B, data)
    removed = bidao("device", "remove", BOX_B, data=data)
    assert removed.returncode == 0, removed.stderr
    done = bidao(
        "broker-credentials",
        "--password-file",
        str(tmp_path / "passwd"),
        "--acl-file",
        str(tmp_path / "acl"),
        data=data,
    )
    assert done.returncode == 0, done.stderr
    users = [line.split(":")[0] for line in (tmp_path / "passwd").read_text().splitlines()]
    assert users == ["bidao-gateway", "bidao-gateway-down", "bidao-health", BOX_A]
    assert (tmp_path / "passwd").stat().st_mode & 0o777 == 0o640
    assert "wrote broker credentials for 1 devices" in done.stdout
    assert "已为 1 台设备和网关写入消息服务器账号" in done.stdout


def test_without_the_gateways_login_it_says_which_variables(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.entry import main; raise SystemExit(main())",
            "broker-credentials",
            "--password-file",
            str(tmp_path / "passwd"),
            "--acl-file",
            str(tmp_path / "acl"),
        ],
        env={"PATH": "/usr/bin:/bin", "BIDAO_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 2
    assert "BIDAO_MQTT__USERNAME and BIDAO_MQTT__PASSWORD" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "passwd").exists()


def test_a_pid_file_without_a_broker_is_a_clear_error(tmp_path: Path) -> None:
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text("not a pid\n")
    done = bidao(
        "broker-credentials",
        "--password-file",
        str(tmp_path / "passwd"),
        "--acl-file",
        str(tmp_path / "acl"),
        "--reload-pid-file",
        str(pid_file),
        data=tmp_path / "data",
    )
    assert done.returncode == 1
    assert f"bidao: the broker's pid file {pid_file} holds no pid: 'not a pid'" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    done = bidao(
        "broker-credentials",
        "--password-file",
        str(tmp_path / "missing" / "passwd"),
        "--acl-file",
        str(tmp_path / "acl"),
        data=tmp_path / "data",
    )
    assert done.returncode == 1
    assert "cannot write" in done.stderr
    assert "No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr
