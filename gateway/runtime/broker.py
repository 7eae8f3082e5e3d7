"""A mosquitto process with Bidao's queue, persistence and size settings (run, demos, tests).

`render_config` writes the limits every broker Bidao ships or starts must have; the compose
file's `deploy/mosquitto.conf` carries the same lines (tests/gateway/test_edges.py checks):

- `max_packet_size 1024`: a frame is at most 228 bytes. mosquitto checks a packet's length
  from its fixed header, before reading the body, and disconnects a client that sends a
  larger one, so a 64 MiB publish costs neither the broker nor the gateway its size.
  `message_size_limit` is not set: it reads a whole message before refusing it, and
  mosquitto 2 asks for `max_packet_size` instead (it logs a note when it sees the other).
- `set_tcp_nodelay true`: without it every ack and PUBACK the broker forwards waits for
  Nagle's algorithm (measured: 44 ms median ack latency to a box, against 6.9 ms).
- queues and persistence: see BrokerSettings (a QoS 1 frame is never dropped for a gateway
  that is down or behind; the queue survives a broker restart).
"""

from __future__ import annotations

import asyncio
import getpass
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from gateway.config import BrokerSettings
from gateway.errors import BrokerError
from gateway.ingest.transports.mqtt import MAX_PACKET_SIZE

_EPHEMERAL_PORTS = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PICKED_PORT = 10_000


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, below the ephemeral range if it can.

    The system gives ports of the ephemeral range to connections as they open, so one of
    those can be taken, by this process or another, before the caller listens on it.
    """
    below = _first_ephemeral_port()
    for _ in range(100 if below > _LOWEST_PICKED_PORT else 0):
        port = random.randrange(_LOWEST_PICKED_PORT, below)  # noqa: S311 - not a secret
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_ephemeral_port() -> int:
    """The lowest port the system hands to connections (0 if it does not say)."""
    try:
        return int(_EPHEMERAL_PORTS.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def ensure_port_free(what: str, host: str, port: int) -> None:
    """BrokerError when something already listens on host:port (it would take our clients)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise BrokerError(
                f"cannot listen for {what} on {host}:{port}: {exc.strerror or exc}"
            ) from None


def render_config(settings: BrokerSettings, host: str, port: int, data_dir: Path) -> str:
    """The mosquitto.conf text: loopback listener, persistence on, queue limits set on purpose."""
    return "\n".join(
        [
            f"listener {port} {host}",
            "allow_anonymous true",
            # Run as whoever started us: as root, mosquitto would otherwise switch to the
            # "mosquitto" user and fail to write its persistence file in our data directory.
            f"user {getpass.getuser()}",
            "persistence true",
            f"persistence_location {data_dir}/",
            f"autosave_interval {settings.autosave_interval_s}",
            # A gateway that is down or slow must find every QoS 1 frame still queued.
            f"max_queued_messages {settings.max_queued_messages}",
            f"max_queued_bytes {settings.max_queued_bytes}",
            f"max_inflight_messages {settings.max_inflight_messages}",
            "queue_qos0_messages false",
            f"persistent_client_expiration {settings.persistent_client_expiration}",
            # Frames are a few hundred bytes: nothing larger is read, queued or forwarded.
            f"max_packet_size {MAX_PACKET_SIZE}",
            # Acks are small and latency-bound: no Nagle delay on any client socket.
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "",
        ]
    )


def find_mosquitto() -> str:
    """Path of the mosquitto binary (Debian installs it in /usr/sbin)."""
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
    return found


class MosquittoBroker:
    """One mosquitto process on a loopback port; start, stop, kill and restart keep its data."""

    def __init__(
        self,
        data_dir: Path,
        settings: BrokerSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.data_dir = data_dir
        self.settings = settings or BrokerSettings()
        self.host = host
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path = data_dir / "mosquitto.log"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Spawn mosquitto (choosing a free port the first time if none was given)."""
        if self.running:
            return
        if self.port == 0:
            self.port = free_loopback_port()
        else:
            ensure_port_free("MQTT", self.host, self.port)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text(render_config(self.settings, self.host, self.port, self.data_dir.resolve()))
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
                [find_mosquitto(), "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def _accepting(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def _check_alive(self) -> None:
        if not self.running:
            tail = self._log.read_text(errors="replace") if self._log.exists() else ""
            last = next((ln for ln in reversed(tail.splitlines()) if ln.strip()), "no output")
            raise BrokerError(f"mosquitto exited on {self.host}:{self.port}: {last.strip()}")

    def wait_ready_blocking(self, timeout: float = 10.0) -> None:
        """Block until the broker accepts connections."""
        deadline = time.monotonic() + timeout
        while not self._accepting():
            self._check_alive()
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port}")
            time.sleep(0.02)
        self._check_alive()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the broker accepts connections."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self._accepting):
            self._check_alive()
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port}")
            await asyncio.sleep(0.02)
        self._check_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (mosquitto saves its persistence file) and wait; safe to call twice."""
        self._signal(signal.SIGTERM, timeout)

    def pause(self) -> None:
        """SIGSTOP: the broker reads nothing until `kill`ed or continued (a hung broker)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL: whatever was not autosaved is lost, as in a power cut."""
        self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop gracefully and start again on the same port with the same data."""
        self.stop()
        self.start()
        self.wait_ready_blocking()
