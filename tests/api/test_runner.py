"""`bidao run`'s exit status: 0 after a normal stop, 1 when it stopped with a part failing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api.runner import EXIT_FAILED, EXIT_OK, _serve
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from tests.gateway.support import gateway_settings, wait_for


async def test_a_normal_stop_exits_zero(
    tmp_path: Path, broker: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    service = GatewayService(gateway_settings(tmp_path, broker), ManualClock())
    serving = asyncio.create_task(_serve(service))
    await wait_for(lambda: service.banner != "", what="the gateway is up")
    service.request_stop()
    assert await serving == EXIT_OK
    out, err = capsys.readouterr()
    assert out.startswith("Bidao gateway running")
    assert err == ""


async def test_a_stop_while_a_part_is_failing_says_so_and_exits_non_zero(
    tmp_path: Path, broker: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = gateway_settings(tmp_path, broker, runtime={"failed_after": 1})
    service = GatewayService(settings, ManualClock())

    async def broken() -> None:
        raise RuntimeError("the disk went away")

    service.add_component("archiver", broken)
    serving = asyncio.create_task(_serve(service))
    await wait_for(
        lambda: any(p.name == "archiver" for p in service.failed_parts()),
        what="the part is failing",
    )
    service.request_stop()
    assert await serving == EXIT_FAILED
    err = capsys.readouterr().err
    assert err == (
        "bidao: stopped while part archiver was failed: RuntimeError: the disk went away\n"
    )
