"""mosquitto's `password_file` and `acl_file`, written from the device registry.

Every enabled device is a broker user: username = its device id, password = the one its key
gives (firmware_protocol.broker_auth, docs/protocol.md section 7.1). The ACL file holds
pattern rules only, so it does not grow with the devices: `%u` is the connecting user, and
a box may publish on its own uplink topic and read its own downlink topic, nothing else.
The gateway has two users (its intake reads every uplink, its downlink connection writes
every downlink topic) and a health user may read the broker's uptime for the compose
healthcheck; they share the gateway's password (BIDAO_MQTT__PASSWORD).

The password file is mosquitto 2's PBKDF2-SHA512 form, as `mosquitto_passwd` writes it:
`user:$7$<iterations>$<base64 12-byte salt>$<base64 64-byte hash>` (101 iterations for the
gateway's users, 1 for the boxes': see DEVICE_PBKDF2_ITERATIONS). Both files are written
to a temporary file beside the target, fsynced and renamed over it, so the broker never
reads half a file; then the broker re-reads them on SIGHUP.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from firmware_protocol.broker_auth import broker_password
from firmware_protocol.topics import TOPIC_PREFIX
from gateway.errors import BrokerError

PBKDF2_ITERATIONS = 101
"""mosquitto_passwd's own default for `$7$` hashes (mosquitto 2.0): the gateway's users,
whose password a person chose."""
DEVICE_PBKDF2_ITERATIONS = 1
"""A box's password is 128 bits out of HMAC-SHA256 of its key: no count of iterations makes
guessing it any harder, but mosquitto hashes the password on every login, on its one thread.
At 101 iterations, 200,000 boxes logging in again after a broker restart cost it about 100
times more CPU while their frames wait; writing the file cost 27 s instead of under 1 s."""
SALT_BYTES = 12
HEALTH_USER = "bidao-health"
FILE_MODE = 0o640
"""Not world-readable: mosquitto warns about such a file and its next version refuses it."""


def password_hash(
    password: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """`$7$iterations$salt$hash` for one password (a fresh random salt unless one is given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def gateway_users(gateway_user: str) -> tuple[str, str, str]:
    """The intake user, the downlink user and the health user of a gateway."""
    return gateway_user, f"{gateway_user}-down", HEALTH_USER


def render_acl(gateway_user: str) -> str:
    """The ACL file: two pattern rules for every box, and the gateway's own users."""
    intake, downlink, health = gateway_users(gateway_user)
    return "\n".join(
        [
            "# Written by `bidao broker-credentials` from the device registry; do not edit.",
            "# A box connects as its device id (%u): it may publish only on its own uplink",
            "# topic and read only its own downlink topic, in any shard.",
            f"pattern write {TOPIC_PREFIX}/+/%u/up",
            f"pattern read {TOPIC_PREFIX}/+/%u/down",
            "",
            "# The gateway's intake subscribes to every uplink topic.",
            f"user {intake}",
            f"topic read {TOPIC_PREFIX}/+/+/up",
            "",
            "# The gateway's downlink connection publishes acks, indications and CONFIG.",
            f"user {downlink}",
            f"topic write {TOPIC_PREFIX}/+/+/down",
            "",
            "# The compose healthcheck reads the broker's uptime.",
            f"user {health}",
            "topic read $SYS/broker/uptime",
            "",
        ]
    )


@dataclass
class PasswordFile:
    """Renders the password file, hashing only users that are new or changed.

    Watch mode rewrites the file every time a device changes; a user whose password is the
    same keeps its line (and salt) from the last rendering.
    """

    _lines: dict[tuple[str, str], str] = field(default_factory=dict)

    def render(
        self, gateway_user: str, gateway_password: str, devices: Iterable[tuple[str, bytes]]
    ) -> str:
        """One line per user: the gateway's three users, then every device given."""
        users = [
            (user, gateway_password, PBKDF2_ITERATIONS) for user in gateway_users(gateway_user)
        ]
        users.extend(
            (device_id, broker_password(key), DEVICE_PBKDF2_ITERATIONS)
            for device_id, key in devices
        )
        lines: dict[tuple[str, str], str] = {}
        for user, password, iterations in users:
            line = self._lines.get((user, password))
            if line is None:
                line = f"{user}:{password_hash(password, iterations=iterations)}"
            lines[(user, password)] = line
        self._lines = lines
        return "".join(f"{line}\n" for line in lines.values())


def check_gateway_user(name: str) -> str:
    """The gateway's broker user name, refused if mosquitto could not take it as a user."""
    if not name or any(c in name for c in ":+#/ \t\n") or not name.isascii():
        raise BrokerError(
            f"broker user {name!r} cannot be used: ASCII without ':', '+', '#', '/' or spaces"
        )
    return name


def write_atomically(path: Path, text: str, mode: int = FILE_MODE) -> None:
    """Write beside `path`, fsync, rename over it and fsync the folder."""
    folder = path.parent
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def reload_broker(pid_file: Path) -> int:
    """SIGHUP to the mosquitto whose pid `pid_file` holds (it re-reads both files); its pid."""
    try:
        text = pid_file.read_text().strip()
    except OSError as exc:
        raise BrokerError(f"cannot read the broker's pid file {pid_file}: {exc.strerror}") from None
    if not text.isdigit() or int(text) <= 1:
        raise BrokerError(f"the broker's pid file {pid_file} holds no pid: {text[:20]!r}")
    pid = int(text)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise BrokerError(f"no broker runs with pid {pid} (from {pid_file})") from None
    except PermissionError:
        raise BrokerError(
            f"not allowed to signal the broker (pid {pid}, from {pid_file})"
        ) from None
    return pid


@dataclass(frozen=True)
class BrokerSync:
    """What one `BrokerCredentialWriter.sync` did."""

    devices: int
    written: bool
    """False: nothing changed since the last sync, nothing was written."""
    seconds: float
    reloaded_pid: int | None = None


class BrokerCredentialWriter:
    """Writes both files from the enabled devices' keys, and tells the broker to re-read them.

    `sync` writes only when a device, a key or the gateway's password changed since its last
    call (always on the first).
    """

    def __init__(
        self,
        password_file: Path,
        acl_file: Path,
        gateway_user: str,
        gateway_password: str,
        reload_pid_file: Path | None = None,
    ) -> None:
        if not gateway_password:
            raise BrokerError("the gateway's broker password is empty")
        self.password_file = password_file
        self.acl_file = acl_file
        self.gateway_user = check_gateway_user(gateway_user)
        self._gateway_password = gateway_password
        self.reload_pid_file = reload_pid_file
        self._renderer = PasswordFile()
        self._last: bytes | None = None

    def _fingerprint(self, devices: list[tuple[str, bytes]]) -> bytes:
        digest = hashlib.sha256(f"{self.gateway_user}\0{self._gateway_password}\0".encode())
        for device_id, key in devices:
            digest.update(device_id.encode() + key)
        return digest.digest()

    def sync(self, devices: list[tuple[str, bytes]]) -> BrokerSync:
        """Write the files if anything changed, then SIGHUP the broker if a pid file is set.

        OSError when a file cannot be written; BrokerError when the broker cannot be told.
        """
        fingerprint = self._fingerprint(devices)
        if fingerprint == self._last:
            return BrokerSync(len(devices), written=False, seconds=0.0)
        started = time.perf_counter()
        text = self._renderer.render(self.gateway_user, self._gateway_password, devices)
        write_atomically(self.password_file, text)
        write_atomically(self.acl_file, render_acl(self.gateway_user))
        seconds = time.perf_counter() - started
        self._last = fingerprint
        pid = None if self.reload_pid_file is None else reload_broker(self.reload_pid_file)
        return BrokerSync(len(devices), written=True, seconds=seconds, reloaded_pid=pid)
