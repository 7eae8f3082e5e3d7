"""The heap keeper: collector passes walk only what is new (gateway.runtime.heap)."""

from __future__ import annotations

import asyncio
import gc
import signal
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from gateway.clock import ManualClock
from gateway.config import RuntimeSettings
from gateway.metrics import GatewayMetrics
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.heap import HeapKeeper
from tests.gateway.support import send_until_acked, start_gateway, wait_for
from tests.gateway.test_edges import BOX, BOX_KEY, gateway_toml, metric, register_box


class _Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    """A reference cycle nobody else refers to, and a weak reference that says if it lives."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def _live_cycle() -> tuple[_Node, weakref.ref[_Node]]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


def _pauses(metrics: GatewayMetrics, generation: str) -> float:
    value = metrics.registry.get_sample_value(
        "bidao_gc_pause_seconds_count", {"generation": generation}
    )
    return 0.0 if value is None else value


@pytest.fixture
def collector() -> Iterator[None]:
    """The test process's collector, put back however the test ends."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_a_settle_frees_dead_cycles_and_freezes_what_lives() -> None:
    metrics = GatewayMetrics()
    keeper = HeapKeeper(RuntimeSettings(), ManualClock(), metrics)
    keeper.install()
    assert gc.get_threshold() == (20_000, 50, 10)
    dead = _cycle()
    live, live_ref = _live_cycle()
    try:
        keeper.settle()
        assert dead() is None, "a dead cycle was frozen instead of freed"
        assert live_ref() is not None
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert metrics.registry.get_sample_value("bidao_gc_frozen_objects") == frozen
        assert _pauses(metrics, "2") >= 1
        # Later settles do not count (a walk of every frozen object); the one after a thaw does.
        more, _ = _live_cycle()
        keeper.settle()
        assert gc.get_freeze_count() > frozen, more
        assert metrics.registry.get_sample_value("bidao_gc_frozen_objects") == frozen
        # A frozen object that then dies inside a cycle stays until the next thaw.
        del live
        gc.collect()
        assert live_ref() is not None
        keeper.thaw()
        keeper.settle()
        assert live_ref() is None
        assert metrics.registry.get_sample_value("bidao_gc_frozen_objects") == (
            gc.get_freeze_count()
        )
    finally:
        keeper.uninstall()
    assert gc.get_freeze_count() == 0
    assert metrics.registry.get_sample_value("bidao_gc_frozen_objects") == 0


@pytest.mark.usefixtures("collector")
async def test_the_keeper_settles_every_interval_and_thaws_on_its_own_interval() -> None:
    clock, metrics = ManualClock(), GatewayMetrics()
    settings = RuntimeSettings(gc_freeze_interval_s=30, gc_thaw_interval_s=90)
    keeper = HeapKeeper(settings, clock, metrics)
    original = gc.get_threshold()
    task = asyncio.create_task(keeper.run())
    await asyncio.sleep(0)  # it installs itself and starts its first interval
    try:
        await clock.advance(29)
        assert gc.get_freeze_count() == 0, "nothing is frozen before the first interval"
        await clock.advance(1)
        assert gc.get_freeze_count() > 0
        live, live_ref = _live_cycle()
        await clock.advance(30)  # t = 60: frozen with the rest
        del live
        gc.collect()
        assert live_ref() is not None
        await clock.advance(29)
        assert live_ref() is not None
        await clock.advance(1)  # t = 90: thawed, walked once, frozen again
        assert live_ref() is None
        assert gc.get_freeze_count() > 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == original


def test_a_collector_threshold_below_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="at least 1"):
        RuntimeSettings(gc_thresholds=(0, 10, 10))


async def test_bidao_run_freezes_its_heap_and_keeps_acking(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    config, http = gateway_toml(tmp_path, broker.port)
    config.write_text(config.read_text() + "[runtime]\ngc_freeze_interval_s = 0.2\n")
    await register_box(config)
    log = tmp_path / "gateway.log"
    gateway = start_gateway(config, log)
    box = SimulatedDevice(BOX, "call_box", BOX_KEY)
    try:
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            await send_until_acked(fleet, box, box.heartbeat())

            def settled() -> bool:
                frozen = metric(http, "bidao_gc_frozen_objects")
                return frozen > 0 and metric(http, "bidao_gc_pause_seconds_count") > 0

            await wait_for(lambda: asyncio.to_thread(settled), what="a frozen heap")
            frozen = metric(http, "bidao_gc_frozen_objects")
            passes = metric(http, "bidao_gc_pause_seconds_count", generation="2")
            print(f"bidao run: {frozen:.0f} objects frozen after {passes:.0f} full passes")
            assert passes >= 1
            # The gateway goes on acking once its heap is frozen.
            await send_until_acked(fleet, box, box.heartbeat())
    finally:
        gateway.send_signal(signal.SIGTERM)
        await asyncio.to_thread(gateway.wait, 30)
        assert gateway.returncode == 0, log.read_text()[-3000:]
