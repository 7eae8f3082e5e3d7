"""Broker logins at a county's scale: `bidao broker-credentials` and mosquitto with 200,000 users.

Run `python -m bench.broker_credentials [--devices 200000]` from the repository root. It
registers the devices through the application facade (as `bidao device add` does), then
measures, with the real command and the real mosquitto running deploy/mosquitto.conf (port
and paths moved into a temporary folder):

- `bidao broker-credentials` writing both files for every device (read the registry, derive
  each password, PBKDF2-SHA512 hash it, write atomically), and the file sizes;
- mosquitto starting with that password file: seconds until a device's login is accepted,
  and the broker's RSS;
- one more device registered and the command run again with `--reload-pid-file`: seconds from
  the command's start until the new device's login is accepted (rewrite + SIGHUP + reload);
- what `--watch` pays per change in one process (unchanged users keep their lines).
"""

from __future__ import annotations

import argparse
import getpass
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.harness import meter_identity, register_meters
from firmware_protocol.broker_auth import broker_password
from gateway.runtime.broker import find_mosquitto, free_loopback_port
from gateway.runtime.broker_auth import PasswordFile, write_atomically

REPO = Path(__file__).resolve().parents[1]
GATEWAY_USER, GATEWAY_PASSWORD = "bidao-gateway", "bench-gateway-password"


def bidao(args: list[str], data: Path) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDAO_")}
    env |= {
        "BIDAO_DATA_DIR": str(data),
        "BIDAO_MQTT__USERNAME": GATEWAY_USER,
        "BIDAO_MQTT__PASSWORD": GATEWAY_PASSWORD,
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; raise SystemExit(main())", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, done.stdout


def logs_in(port: int, user: str, password: str) -> bool:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=user, protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(user, password)
    try:
        client.connect("127.0.0.1", port, keepalive=30)
    except OSError:
        return False
    accepted: list[bool] = []
    client.on_connect = lambda _c, _u, _f, rc, _p: accepted.append(not rc.is_failure)
    deadline = time.monotonic() + 30
    while not accepted and time.monotonic() < deadline:
        if client.loop(timeout=0.05) != 0:
            break
    client.disconnect()
    return bool(accepted and accepted[0])


def wait_login(port: int, user: str, password: str, limit_s: float = 600) -> float:
    started = time.perf_counter()
    while not logs_in(port, user, password):
        if time.perf_counter() - started > limit_s:
            raise SystemExit(f"{user} never logged in")
        time.sleep(0.01)
    return time.perf_counter() - started


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def watch_cost(count: int, tmp: Path) -> None:
    """What `--watch` pays per change: it keeps every unchanged user's line."""
    renderer = PasswordFile()
    devices = [meter_identity(i) for i in range(count)]
    started = time.perf_counter()
    renderer.render(GATEWAY_USER, GATEWAY_PASSWORD, devices)
    first = time.perf_counter() - started
    devices.append(meter_identity(count + 1))
    started = time.perf_counter()
    text = renderer.render(GATEWAY_USER, GATEWAY_PASSWORD, devices)
    again = time.perf_counter() - started
    started = time.perf_counter()
    write_atomically(tmp / "passwd.watch", text)
    written = time.perf_counter() - started
    print(
        f"--watch in one process: first rendering {first:.2f} s; after one more device"
        f" {again:.2f} s, writing {written:.2f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bidao-broker-bench-") as folder:
        tmp = Path(folder)
        data = tmp / "data"
        config = tmp / "bidao.toml"
        config.write_text(f'data_dir = "{data}"\n')
        seconds = register_meters(config, 0, args.devices)
        print(f"registered {args.devices:,} devices in {seconds:.1f} s", flush=True)

        files = ["--password-file", str(tmp / "passwd"), "--acl-file", str(tmp / "acl")]
        seconds, _ = bidao(["broker-credentials", *files], data)
        size = (tmp / "passwd").stat().st_size
        print(
            f"bidao broker-credentials, {args.devices:,} devices: {seconds:.1f} s (process,"
            f" registry read and files); password file {size / 2**20:.1f} MiB,"
            f" acl file {(tmp / 'acl').stat().st_size} bytes",
            flush=True,
        )

        port = free_loopback_port()
        text = (REPO / "deploy" / "mosquitto.conf").read_text()
        for old, new in (
            ("listener 1883\n", f"listener {port} 127.0.0.1\n"),
            ("/mosquitto/data/", f"{tmp}/mq/"),
            ("/mosquitto/auth/passwd", f"{tmp}/passwd"),
            ("/mosquitto/auth/acl", f"{tmp}/acl"),
        ):
            text = text.replace(old, new)
        (tmp / "mq").mkdir()
        conf = tmp / "mosquitto.conf"
        conf.write_text(text + f"user {getpass.getuser()}\n")
        last_id, last_key = meter_identity(args.devices - 1)
        started = time.perf_counter()
        broker = subprocess.Popen(
            [find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            wait_login(port, last_id, broker_password(last_key))
            print(
                f"mosquitto start to first device login: {time.perf_counter() - started:.2f} s,"
                f" RSS {rss_mib(broker.pid):.0f} MiB",
                flush=True,
            )
            register_meters(config, args.devices, 1)
            new_id, new_key = meter_identity(args.devices)
            pid_file = tmp / "mosquitto.pid"
            pid_file.write_text(str(broker.pid))
            started = time.perf_counter()
            seconds, _ = bidao(
                ["broker-credentials", *files, "--reload-pid-file", str(pid_file)], data
            )
            wait_login(port, new_id, broker_password(new_key))
            total = time.perf_counter() - started
            print(
                f"one device added: command {seconds:.1f} s, command start to the new device's"
                f" login {total:.1f} s (reload {total - seconds:.2f} s after the command);"
                f" RSS {rss_mib(broker.pid):.0f} MiB",
                flush=True,
            )
        finally:
            broker.terminate()
            broker.wait(30)
        watch_cost(args.devices, tmp)


if __name__ == "__main__":
    main()
