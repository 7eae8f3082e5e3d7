"""A gateway in a process of its own, killed by a provider's fake when it takes the first
call (before the API answers), then started again: the scaffolding of the crash tests."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Key
from gateway.config import load_settings
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import load_grid, send_until_acked, start_gateway, wait_for

KILLED_S = 60.0
"""Bound on waiting for the fake to have killed the gateway at the call."""
EXIT_S = 30.0
"""Bound on a gateway's clean exit after SIGTERM."""


class Taken(Protocol):
    """A message or call a fake has taken (`Record`, `AliyunRecord`)."""

    @property
    def kind(self) -> str: ...


def toml_value(value: object) -> str:
    """A setting's value as TOML (strings, numbers, booleans, tables of strings)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = "{v}"' for k, v in value.items()) + " }"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def write_config(
    tmp_path: Path,
    broker: MosquittoBroker,
    client_id: str,
    http: int,
    notify: dict[str, object],
) -> Path:
    """The gateway's TOML file: the test broker, HTTP on `http`, these `notify` settings."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "gateway"}"\n'
        'log_format = "text"\nlog_level = "WARNING"\n'
        "[mqtt]\n"
        f"embedded_broker = false\nport = {broker.port}\n"
        f'client_id = "{client_id}"\nreconnect_initial_s = 0.05\nreconnect_max_s = 0.5\n'
        f"[http]\nport = {http}\n"
        "[notify]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in notify.items()),
        encoding="utf-8",
    )
    return config


def outbox(db: Path, *, retries: bool | None = None) -> list[tuple[str, str, int]]:
    """(status, provider id, attempts) of every notification, by id (with `retries`, only
    the calls to be placed again after no answer; False: every other)."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            rows = conn.execute(
                "SELECT status, coalesce(provider_id, ''), attempts FROM notifications"
                " WHERE ? IS NULL OR (coalesce(origin_kind, '') = 'retry') = ? ORDER BY id",
                (retries, retries),
            )
            return [(r[0], r[1], r[2]) for r in rows]
    except sqlite3.OperationalError:
        return []


class CrashedGateway:
    """The gateway of `config` as a process; the fake's `before_reply` is `kill_at_the_call`.

    An async context manager: loads the test village and starts the gateway; a gateway
    still running at its end is killed.
    """

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = config.parent / "gateway.log"
        self.db = load_settings(config).database_path
        self.killed = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None

    async def _load_village(self) -> None:
        """Load the test village into the gateway's store, before it runs."""
        service = GatewayService(load_settings(self.config))
        await service.store.open()
        try:
            await load_grid(service)
        finally:
            await service.store.close()

    def start(self) -> None:
        """Start the gateway (again)."""
        self._process = start_gateway(self.config, self.log)

    def kill_at_the_call(self, record: Taken) -> None:
        """The provider has taken the first call: the gateway dies before the answer.

        Sends run concurrently, so an SMS may be taken (and answered) before the call is.
        """
        if record.kind == "call" and not self.killed.is_set():
            self._kill()
            self.killed.set()

    @contextlib.asynccontextmanager
    async def pressed_until_killed(self, broker: MosquittoBroker) -> AsyncIterator[None]:
        """The resident presses green and the gateway is killed at the call, which the
        provider took and the gateway did not record; the box stays connected in the block."""
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            await send_until_acked(fleet, box, box.press(Key.GREEN_CALL))
            await wait_for(self.killed.is_set, timeout=KILLED_S, what="killed at the call")
            assert outbox(self.db)[0] == ("sending", "", 1)  # in doubt: taken, not recorded
            yield

    async def stop(self) -> None:
        """SIGTERM: the gateway must exit 0."""
        assert self._process is not None
        self._process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self._process.wait, EXIT_S)
        assert code == 0, self.log.read_text()[-3000:]

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    async def __aenter__(self) -> CrashedGateway:
        """Load the test village, then start the gateway."""
        await self._load_village()
        self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Kill a gateway left running."""
        self._kill()
