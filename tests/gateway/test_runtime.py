"""Supervision of the gateway's parts, /healthz, deadline quarantine and loop lag."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.providers.base import OutgoingMessage, Receipt
from alerts.providers.console import ConsoleProvider
from api.app import http_component
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.config import RuntimeSettings
from gateway.metrics import GatewayMetrics
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.looplag import LoopLagMonitor
from gateway.runtime.service import GatewayService
from gateway.runtime.supervisor import PartState, PartSupervisor
from gateway.scheduler import DeadlineScheduler
from gateway.store.ports import Deadline, UnitOfWork
from gateway.store.sqlite import SqliteStore
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import gateway_settings, load_grid, sample, send_until_acked, wait_for

BOX = "00000000000000c1"
KEY = bytes(range(16))
RUNTIME: dict[str, Any] = {"restart_initial_s": 1.0, "restart_max_s": 4.0, "failed_after": 3}


class PartBrokeError(Exception):
    """What the failing part raises."""


async def test_a_part_that_raises_is_restarted_with_capped_backoff_on_the_clock(
    clock: ManualClock,
) -> None:
    metrics = GatewayMetrics()
    starts: list[float] = []

    async def part() -> None:
        starts.append(clock.now())
        raise PartBrokeError("bad luck")

    settings = RuntimeSettings(**RUNTIME)
    supervisor = PartSupervisor("boom", part, clock, settings, metrics)
    assert supervisor.state is PartState.STARTING
    task = asyncio.create_task(supervisor.run())
    await wait_for(lambda: supervisor.state is PartState.RESTARTING, what="first failure")
    t0 = clock.now()
    for delay in (1.0, 2.0, 4.0, 4.0):  # doubling, capped at restart_max_s
        await clock.advance(delay - 0.01)
        assert len(starts) == len([s for s in starts if s <= clock.now()])
        before = len(starts)
        await clock.advance(0.01)
        await wait_for(lambda: len(starts) == before + 1, what="restart")  # noqa: B023
    assert [round(s - t0, 2) for s in starts] == [0.0, 1.0, 3.0, 7.0, 11.0]
    status = supervisor.status()
    assert status.state is PartState.FAILED  # 3 or more failures in a row
    assert status.restarts == 4
    assert status.last_error == "PartBrokeError: bad luck"
    assert sample_of(metrics, "bidao_part_state", part="boom", state="failed") == 1
    assert sample_of(metrics, "bidao_part_state", part="boom", state="running") == 0
    assert sample_of(metrics, "bidao_part_restarts_total", part="boom") == 4
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert supervisor.status().state is PartState.STOPPED


async def test_a_part_that_ran_long_enough_starts_its_backoff_afresh(clock: ManualClock) -> None:
    runs = 0

    async def part() -> None:
        nonlocal runs
        runs += 1
        await clock.sleep(100.0)  # longer than stable_after_s
        raise PartBrokeError("after a long run")

    settings = RuntimeSettings(**RUNTIME, stable_after_s=50.0)
    supervisor = PartSupervisor("steady", part, clock, settings, GatewayMetrics())
    task = asyncio.create_task(supervisor.run())
    for expected in range(1, 5):
        await wait_for(lambda: runs == expected, what="run")  # noqa: B023
        await clock.advance(100.0)
        await wait_for(lambda: supervisor.state is PartState.RESTARTING, what="restarting")
        assert supervisor.status().consecutive_failures == 1  # never reaches "failed"
        await clock.advance(1.0)  # the initial backoff every time
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_part_that_ends_while_stopping_is_stopped_not_failed(clock: ManualClock) -> None:
    async def part() -> None:
        await asyncio.sleep(0)

    supervisor = PartSupervisor("done", part, clock, RuntimeSettings(), GatewayMetrics())
    supervisor.stop()
    await supervisor.run()
    assert supervisor.state is PartState.STOPPED
    assert supervisor.status().restarts == 0


def sample_of(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def heartbeat_acked(fleet: MqttFleet, box: SimulatedDevice, uptime: int) -> None:
    await send_until_acked(fleet, box, box.heartbeat(uptime_s=uptime))


async def healthz(port: int) -> tuple[int, dict[str, object]]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{port}/healthz")
    return response.status_code, response.json()


def part_state(body: dict[str, object], name: str) -> str:
    parts = body["parts"]
    assert isinstance(parts, dict)
    return str(parts[name]["state"])


async def test_boxes_are_acked_while_another_part_keeps_failing_and_healthz_says_so(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    http_port = free_loopback_port()
    settings = gateway_settings(
        tmp_path, broker, runtime=RUNTIME, http={"port": http_port}, metrics_interval_s=3600
    )
    gw = GatewayService(settings, clock)
    starts = 0

    async def flaky() -> None:
        nonlocal starts
        starts += 1
        raise PartBrokeError(f"attempt {starts}")

    gw.add_component("flaky", flaky)
    gw.add_component("http", http_component(for_service(gw)))
    box = SimulatedDevice(BOX, "call_box", KEY, clock=clock.now)
    async with gw, MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
        await gw.register_device(BOX, "call_box", KEY)
        await wait_for(lambda: starts == 1, what="first failure")
        status, body = await healthz(http_port)
        assert part_state(body, "flaky") == "restarting"
        assert status == 200  # degraded: the boxes are still served
        assert body["status"] == "degraded"
        assert "part flaky is restarting: PartBrokeError: attempt 1" in body["problems"]  # type: ignore[operator]

        for uptime in range(1, 4):
            await heartbeat_acked(fleet, box, uptime)
            before = starts
            await clock.advance(4.0)
            await wait_for(lambda: starts > before, what="restart")  # noqa: B023
        await heartbeat_acked(fleet, box, 10)
        assert gw.registry.cached(BOX) is not None
        status, body = await healthz(http_port)
        assert status == 200
        assert part_state(body, "flaky") == "failed"
        assert part_state(body, "pipeline") == "running"
        assert part_state(body, "mqtt-link") == "running"
        assert body["mqtt"] == {"connected": True, "broker": f"127.0.0.1:{broker.port}"}
        assert body["store"] == {"writable": True, "error": None}
        assert sample(gw, "bidao_part_state", part="flaky", state="failed") == 1
        assert starts >= 4
        assert sample(gw, "bidao_part_restarts_total", part="flaky") == starts - 1
        assert await gw.store.devices.count_events(BOX) == 4


class RaisingProvider(ConsoleProvider):
    """A provider whose every send raises something nobody expected."""

    def __init__(self) -> None:
        super().__init__()
        self.sends = 0

    async def send(self, message: OutgoingMessage) -> Receipt:
        self.sends += 1
        raise KeyError("surprise")


async def test_a_provider_raising_on_every_send_does_not_stop_the_acks(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    http_port = free_loopback_port()
    settings = gateway_settings(tmp_path, broker, runtime=RUNTIME, http={"port": http_port})
    provider = RaisingProvider()
    gw = GatewayService(settings, clock, provider=provider)
    gw.add_component("http", http_component(for_service(gw)))
    async with gw:
        await load_grid(gw)
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
            await send_until_acked(fleet, box, box.press(Key.GREEN_CALL))
            await wait_for(lambda: provider.sends >= 1, what="a send attempt")
            for uptime in range(1, 4):
                await clock.advance(4.0)
                await heartbeat_acked(fleet, box, uptime)
            status, body = await healthz(http_port)
            outbox = body["outbox"]
            assert isinstance(outbox, dict)
            # Whichever way the outbox copes (restarted, or degraded), it is shown, and the
            # boxes are still served.
            parts = body["parts"]
            assert isinstance(parts, dict)
            sender = parts["outbox-sender"]
            assert (
                sender["restarts"] >= 1 and sender["last_error"] == "KeyError: 'surprise'"
            ) or outbox["degraded_reason"] is not None, body
            assert status == 200
            assert part_state(body, "pipeline") == "running"


async def test_healthz_is_503_without_the_broker_link(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    http_port = free_loopback_port()
    settings = gateway_settings(tmp_path, broker, http={"port": http_port})
    gw = GatewayService(settings, clock)
    gw.add_component("http", http_component(for_service(gw)))
    async with gw:
        status, body = await healthz(http_port)
        assert (status, body["status"]) == (200, "ok")
        broker.stop()
        await wait_for(lambda: gw.mqtt is not None and not gw.mqtt.connected, what="link lost")
        status, body = await healthz(http_port)
        assert status == 503
        assert body["status"] == "failing"
        assert body["problems"] == [f"no link to the MQTT broker at 127.0.0.1:{broker.port}"]
        broker.start()
        await wait_for(lambda: gw.mqtt is not None and gw.mqtt.connected, what="link back")
        status, _ = await healthz(http_port)
        assert status == 200


class PickyHandler:
    """Raises for the subject "bad", handles the others."""

    def __init__(self) -> None:
        self.handled: list[str] = []

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        for deadline in deadlines:
            if deadline.subject == "bad":
                raise ValueError("cannot handle bad")
        return lambda: self.handled.extend(d.subject for d in deadlines)


async def test_a_deadline_that_keeps_failing_is_quarantined_and_the_others_go_on(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SqliteStore(tmp_path / "bidao.db")
    await store.open()
    metrics = GatewayMetrics()
    scheduler = DeadlineScheduler(
        store, clock, batch=10, max_attempts=3, retry_s=10.0, metrics=metrics
    )
    handler = PickyHandler()
    scheduler.register("check", handler)
    try:
        now = clock.now()
        async with store.transaction() as uow:
            await uow.deadlines.set(
                [Deadline("check", s, now - i) for i, s in enumerate(["a", "bad", "b"])]
            )
        assert await scheduler.fire_due(now) == 3
        assert sorted(handler.handled) == ["a", "b"]
        [failure] = await store.deadlines.failures()
        assert (failure.subject, failure.attempts, failure.status) == ("bad", 1, "retrying")
        assert failure.reason == "ValueError: cannot handle bad"
        assert failure.due_at == now - 1
        assert await store.deadlines.next_at() == now + 10.0

        await clock.advance(10.0)
        assert await scheduler.fire_due(clock.now()) == 1
        assert await store.deadlines.next_at() == clock.now() + 20.0
        await clock.advance(20.0)
        async with store.transaction() as uow:
            await uow.deadlines.set([Deadline("check", "c", clock.now())])
        assert await scheduler.fire_due(clock.now()) == 2
        assert sorted(handler.handled) == ["a", "b", "c"]
        [failure] = await store.deadlines.failures()
        assert (failure.attempts, failure.status) == (3, "quarantined")
        assert await store.deadlines.next_at() is None
        assert await store.deadlines.quarantined_count() == 1
        assert scheduler.quarantined == 1
        retried = sample_of(metrics, "bidao_deadline_failures_total", kind="check", outcome="retry")
        assert retried == 2
        quarantined = sample_of(
            metrics, "bidao_deadline_failures_total", kind="check", outcome="quarantined"
        )
        assert quarantined == 1
    finally:
        await store.close()


async def test_a_deadline_that_succeeds_at_last_leaves_no_failure_behind(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SqliteStore(tmp_path / "bidao.db")
    await store.open()
    scheduler = DeadlineScheduler(store, clock, max_attempts=3, retry_s=5.0)
    calls = 0

    class FailsOnce:
        async def on_due(
            self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
        ) -> Callable[[], None] | None:
            nonlocal calls
            calls += 1
            if calls <= 2:  # the batch, then the deadline on its own
                raise RuntimeError("first round")
            return None

    scheduler.register("once", FailsOnce())
    try:
        async with store.transaction() as uow:
            await uow.deadlines.set([Deadline("once", "x", clock.now())])
        await scheduler.fire_due(clock.now())
        assert [f.status for f in await store.deadlines.failures()] == ["retrying"]
        await clock.advance(5.0)
        await scheduler.fire_due(clock.now())
        assert await store.deadlines.failures() == []
        assert await store.deadlines.next_at() is None
    finally:
        await store.close()


async def test_loop_lag_sees_a_blocked_loop() -> None:
    metrics = GatewayMetrics()
    monitor = LoopLagMonitor(0.05, 60.0, metrics)
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.01)
        time.sleep(0.3)  # noqa: ASYNC251 - block the loop, as a slow synchronous step would
        await wait_for(lambda: monitor.worst_recent_s() >= 0.2, what="lag recorded")
        print(f"worst lag {monitor.worst_recent_s():.3f} s after a 0.3 s block")
        assert sample_of(metrics, "bidao_loop_lag_worst_seconds") >= 0.2
        assert sample_of(metrics, "bidao_loop_lag_seconds_count") >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_loop_lag_forgets_what_is_older_than_its_window() -> None:
    monitor = LoopLagMonitor(0.25, 60.0, GatewayMetrics())
    monitor.record(100.0, 0.8)
    monitor.record(130.0, 0.1)
    assert monitor.worst_recent_s() == 0.8
    monitor.record(161.0, 0.05)
    assert monitor.worst_recent_s() == 0.1


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
async def test_a_file_that_is_not_a_database_is_a_clear_store_error(
    tmp_path: Path, damage: str
) -> None:
    from gateway.errors import StoreError

    path = tmp_path / "bidao.db"
    if damage == "garbage":
        path.write_bytes(b"this is not a database, just some text " * 100)
    else:
        store = SqliteStore(path)
        await store.open()
        await store.close()
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    store = SqliteStore(path)
    with pytest.raises(StoreError, match=r"bidao\.db is not a Bidao database: "):
        await store.open()


def test_a_free_loopback_port_is_one_no_connection_can_be_given_meanwhile() -> None:
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if not ephemeral.exists():
        pytest.skip("the system does not say which ports it gives connections")
    first = int(ephemeral.read_text().split()[0])
    if first <= 10_000:
        pytest.skip(f"the ephemeral range starts at {first}: nothing to pick below it")
    for _ in range(20):
        port = free_loopback_port()
        assert 10_000 <= port < first
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))  # free
