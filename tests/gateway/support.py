"""Gateway test helpers: settings on a real broker and store, bounded waits, metric samples."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.broker import MosquittoBroker
from gateway.config import Settings, load_settings
from gateway.service import GatewayService

_client_ids = itertools.count()


def gateway_settings(tmp_path: Path, broker: MosquittoBroker | None, **overrides: Any) -> Settings:
    """Settings for a gateway on the test broker (or with MQTT off) that reconnects quickly."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "gateway",
        "log_format": "text",
        "mqtt": {
            "enabled": broker is not None,
            "embedded_broker": False,
            "port": broker.port if broker is not None else 1883,
            "client_id": f"bidao-test-{next(_client_ids)}",
            "reconnect_initial_s": 0.05,
            "reconnect_max_s": 0.5,
        },
    }
    values.update(overrides)
    return load_settings(**values)


async def wait_for(
    predicate: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0, what: str = ""
) -> None:
    """Poll a condition that depends on real I/O, failing after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def sample(service: GatewayService, name: str, **labels: str) -> float:
    """The current value of one metric sample (0 if it was never touched)."""
    value = service.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value
