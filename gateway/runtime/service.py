"""The gateway service: owns the broker, store, links, pipeline, scheduler and metrics.

Start-up claims everything the gateway needs (data folder lock, ports, broker, store, the
first MQTT session) before anything runs, and undoes it all when one cannot be had. Then
each long-lived part runs under its own supervisor, so one part failing never stops the
others.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from alerts.providers.base import Provider
from alerts.providers.console import ConsoleProvider
from alerts.providers.wecom_robot import WeComRobot
from firmware_protocol import Message
from gateway.clock import Clock, SystemClock
from gateway.config import DeviceKind, Settings
from gateway.domain.devices import DeviceRecord
from gateway.errors import StartupError
from gateway.ingest.downlink import Downlinker
from gateway.ingest.indications import IndicationSender
from gateway.ingest.pipeline import IngestHandler, Pipeline
from gateway.ingest.registry import SILENT_DEADLINE, DeviceRegistry
from gateway.ingest.supervision import OFFLINE_NOTICE_DEADLINE, DeviceChanges, Supervisor
from gateway.ingest.transports.mqtt import MqttLink
from gateway.ingest.transports.serial import SerialLink
from gateway.metrics import GatewayMetrics
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.health import Health, StoreProbe, assess
from gateway.runtime.heap import HeapKeeper
from gateway.runtime.lock import DataDirLock
from gateway.runtime.looplag import LoopLagMonitor
from gateway.runtime.supervisor import PartState, PartStatus, PartSupervisor
from gateway.scheduler import DeadlineScheduler
from gateway.services.device_health import HEALTH_DEADLINE, DeviceHealth
from gateway.services.devices import DeviceAdmin, DeviceAlarms
from gateway.services.grid_import import GridImporter, ImportKind, ImportResult
from gateway.services.installs import CHECK_DEADLINE, InstallChecks
from gateway.services.links import responder_links
from gateway.services.outages import LinkOutages
from gateway.services.outbox import OutboxSender
from gateway.services.reports import Reports
from gateway.services.tickets import DEADLINE_KINDS as TICKET_DEADLINES
from gateway.services.tickets import TicketService
from gateway.services.water import DEADLINE_KIND as WATER_DEADLINE
from gateway.services.water import WaterService
from gateway.services.work_group import WorkGroups
from gateway.store.sqlite import SqliteStore

log = logging.getLogger(__name__)

PartRun = Callable[[], Coroutine[Any, Any, None]]


@runtime_checkable
class Component(Protocol):
    """A part added from outside (the HTTP server) that claims its resources at start-up."""

    def prepare(self) -> None:
        """Claim what the part needs (a listening socket); StartupError if it cannot."""
        ...

    def release(self) -> None:
        """Give back what `prepare` claimed if the part never ran; safe to call twice."""
        ...

    def describe(self) -> str:
        """Where the part listens, for the start-up banner."""
        ...

    async def __call__(self) -> None:
        """Run the part until cancelled."""
        ...


class GatewayService:
    """Start with `async with GatewayService(settings) as gw:` or `await gw.run()`."""

    def __init__(  # noqa: PLR0915 - the composition root: one statement per part
        self, settings: Settings, clock: Clock | None = None, provider: Provider | None = None
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.metrics = GatewayMetrics()
        self.store = SqliteStore(settings.database_path)
        self.scheduler = DeadlineScheduler(
            self.store,
            self.clock,
            settings.supervision.scheduler_batch,
            max_attempts=settings.runtime.deadline_max_attempts,
            retry_s=settings.runtime.deadline_retry_s,
            metrics=self.metrics,
            poll_s=settings.runtime.deadline_poll_s,
        )
        self.registry = DeviceRegistry(
            self.store,
            self.clock,
            settings.supervision,
            self.metrics,
            settings.pipeline.unknown_device_cache_s,
        )
        self.downlinks = Downlinker(self.store, self.registry, self.clock, self.metrics)
        self.pipeline = Pipeline(
            self.store, self.registry, self.clock, settings.pipeline, self.metrics, self.downlinks
        )
        self.indications = IndicationSender(
            self.store, self.downlinks, self.clock, settings.indications, self.metrics
        )
        self.pipeline.on_heard(self.indications.heard)
        self.pipeline.on_downlink_heard(self.indications.downlink_heard)
        self.supervisor = Supervisor(
            self.registry, self.store, self.clock, settings.supervision, self.metrics
        )
        self.pipeline.add_handler(self.supervisor)
        self.scheduler.register(SILENT_DEADLINE, self.supervisor)
        self.broker: MosquittoBroker | None = None
        if settings.mqtt.enabled and settings.mqtt.embedded_broker:
            self.broker = MosquittoBroker(
                settings.data_dir / "mosquitto",
                settings.broker,
                settings.mqtt.host,
                settings.mqtt.port,
            )
        self.mqtt: MqttLink | None = None
        if settings.mqtt.enabled:
            self.mqtt = MqttLink(
                settings.mqtt, self.pipeline.submit_nowait, self.clock, self.metrics
            )
            self.downlinks.add_link(self.mqtt)
        self.provider: Provider = provider or ConsoleProvider()
        self.outbox = OutboxSender(
            self.store, self.provider, self.clock, settings.notify, self.metrics
        )
        # A link is sent only where its page is served (the HTTP part serves it).
        self.links = responder_links(settings) if settings.http.enabled else None
        self.tickets = TicketService(
            self.store,
            self.clock,
            settings.tickets,
            self.scheduler,
            self.indications.wake,
            self.metrics,
            notifications_committed=self.outbox.wake,
            calls=self.provider,
            links=self.links,
        )
        self.outbox.set_unanswered_handler(self.tickets)
        # Presses of a box under an install check are the installer's: no ticket, no call.
        self.install_checks = InstallChecks(
            self.store,
            self.clock,
            settings.provisioning,
            deadline_set=self.scheduler.notify,
            metrics=self.metrics,
        )
        self.scheduler.register(CHECK_DEADLINE, self.install_checks)
        self.pipeline.add_handler(self.install_checks.screened(self.tickets))
        # Calls that reach nobody, boxes offline for a day, changes made by `bidao device`.
        self.device_alarms = DeviceAlarms(
            self.store,
            self.clock,
            settings.supervision,
            self.metrics,
            notifications_committed=self.outbox.wake,
            deadline_set=self.scheduler.notify,
        )
        self.tickets.set_call_alarms(self.device_alarms)
        self.pipeline.add_handler(self.device_alarms)
        self.scheduler.register(OFFLINE_NOTICE_DEADLINE, self.device_alarms)
        self.supervisor.on_deadline_set(self.scheduler.notify)
        self.device_health = self._device_health(settings)
        self.device_changes = DeviceChanges(
            self.store, self.registry, self.supervisor, self.clock, settings.supervision
        )
        self.devices = DeviceAdmin(self.store, self.clock, settings.supervision, self.registry)
        for kind in TICKET_DEADLINES:
            self.scheduler.register(kind, self.tickets)
        self.water = self._water_watch()
        self.device_changes.on_households_changed(self._forget_watches)
        self.reports = Reports(self.store, settings.warnings, settings.cards)
        self.importer = GridImporter(
            self.store, self.clock, settings.supervision, settings.grid_import, self.metrics
        )
        self.serial_links = [
            SerialLink(link, self.pipeline.submit_nowait, self.clock, self.metrics)
            for link in settings.serial
        ]
        for link in self.serial_links:
            self.downlinks.add_link(link)
        self.outages = self._link_outages(settings)
        self.work_groups = WorkGroups(
            self.store,
            self.clock,
            settings.work_group,
            WeComRobot(settings.work_group.timeout_s),
            self.metrics,
            settings.tickets.timezone,
        )
        self.loop_lag = LoopLagMonitor(
            settings.runtime.loop_lag_interval_s, settings.runtime.loop_lag_window_s, self.metrics
        )
        self._lock = DataDirLock(settings.data_dir)
        self._store_probe = StoreProbe(
            self.store.transaction, settings.runtime.store_probe_timeout_s
        )
        self._components: list[tuple[str, PartRun]] = []
        self._parts: dict[str, PartSupervisor] = {}
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.banner = ""
        self.failing_at_stop: list[PartStatus] = []
        """The parts that were failing when the stop began (the exit status says so)."""
        """One line saying where the gateway listens and what it holds (set once running)."""

    def _water_watch(self) -> WaterService:
        """The water watch, run after the tickets: a thumbs-up that answers it is no rating."""
        water = WaterService(
            self.store,
            self.clock,
            self.settings,
            self.tickets,
            self.metrics,
            indications_committed=self.indications.wake,
            notifications_committed=self.outbox.wake,
            deadline_set=self.scheduler.notify,
        )
        self.tickets.set_thumbs_claims(water)
        self.pipeline.add_handler(self.install_checks.screened(water))
        self.pipeline.add_handler(self.install_checks)
        # A watched household's meter offline: the watch is blind (not quiet).
        self.supervisor.on_transitions(water.on_transitions)
        water.set_unheard(self.supervisor.unheard)
        self.scheduler.register(WATER_DEADLINE, water)
        return water

    def _link_outages(self, settings: Settings) -> LinkOutages:
        """One operator alarm per link outage; no device or water alarm storm after it."""
        outages = LinkOutages(
            self.store,
            self.clock,
            settings.runtime,
            settings.tickets.timezone,
            self.supervisor,
            self.water if settings.water.enabled else None,
            self.metrics,
        )
        if self.mqtt is not None:
            mqtt = self.mqtt
            where = f"MQTT broker {settings.mqtt.host}:{settings.mqtt.port}"
            outages.add_link(mqtt.name, where, lambda: mqtt.connected)
            mqtt.on_state(functools.partial(outages.link_state, mqtt.name))
        for link, line in zip(self.serial_links, settings.serial, strict=True):
            outages.add_link(link.name, f"serial line {link.name} ({line.url})", _is_open(link))
            link.on_state(functools.partial(outages.link_state, link.name))
        return outages

    def _forget_watches(self, households: set[str]) -> None:
        """Devices moved in or out of these households: the water watch looks again."""
        for household in households:
            self.water.forget(household)

    def _device_health(self, settings: Settings) -> DeviceHealth:
        """Offline, low battery, tamper, power loss: told to the area's installers."""
        health = DeviceHealth(
            self.clock,
            settings.supervision,
            settings.tickets.timezone,
            self.metrics,
            notifications_committed=self.outbox.wake,
            deadline_set=self.scheduler.notify,
        )
        self.supervisor.on_transitions(health.on_transitions)
        self.scheduler.register(HEALTH_DEADLINE, health)
        return health

    def add_component(self, name: str, run: PartRun) -> None:
        """Run another long-lived part (the HTTP server) under its own supervisor.

        A `Component` also claims its resources during start-up, so a port that cannot be
        had stops start-up instead of leaving a half-running gateway.
        """
        self._components.append((name, run))

    def keep_heap(self) -> None:
        """Run the heap keeper (gateway.runtime.heap) as the part `heap`.

        Only for the process that owns its collector (`bidao run`), never for a test process
        hosting gateways: it sets the collector's thresholds and freezes objects.
        """
        keeper = HeapKeeper(self.settings.runtime, self.clock, self.metrics)
        self.add_component("heap", keeper.run)

    def add_ingest_handler(self, handler: IngestHandler) -> None:
        """Run domain logic inside every ingest transaction."""
        self.pipeline.add_handler(handler)

    async def register_device(
        self,
        device_id: str,
        kind: DeviceKind,
        key: bytes | None = None,
        household_code: str | None = None,
        label: str | None = None,
    ) -> DeviceRecord:
        """Provision a device while the gateway runs."""
        return await self.registry.register(device_id, kind, key, household_code, label)

    async def import_csv(
        self, kind: ImportKind, data: str | bytes, *, check: bool = False
    ) -> ImportResult:
        """Import grid units, households (with their boxes) or contacts; bad rows are skipped."""
        result = await self.importer.import_csv(kind, data, check=check)
        self.scheduler.notify(0.0)  # new boxes bring silence deadlines
        if not check and kind == "households":
            self.water.forget()  # who lives alone, and which meters, may have changed
        return result

    async def send_downlink(self, device_id: str, message: Message) -> int:
        """Send a message to a device over the link it last used; returns the downlink seq."""
        return await self.downlinks.send(device_id, message)

    def request_stop(self) -> None:
        """Ask `run` to shut down gracefully (safe from a signal handler, even during start-up)."""
        if self._stop is None:
            self._stop = asyncio.Event()
        self._stop.set()

    def parts(self) -> list[PartStatus]:
        """Every supervised part's current state (empty before start-up completes)."""
        return [part.status() for part in self._parts.values()]

    def failed_parts(self) -> list[PartStatus]:
        """Parts that were failing (restarting or failed) when looked at."""
        failing = (PartState.RESTARTING, PartState.FAILED)
        return [status for status in self.parts() if status.state in failing]

    async def health(self) -> Health:
        """Each part's real state; `serving` is False when boxes are not being acknowledged."""
        mqtt: dict[str, Any] | None = None
        if self.mqtt is not None:
            broker = f"{self.settings.mqtt.host}:{self.settings.mqtt.port}"
            mqtt = {"connected": self.mqtt.connected, "broker": broker}
        return assess(
            parts=self.parts(),
            mqtt=mqtt,
            serial={link.name: link.is_open for link in self.serial_links},
            store_error=await self._store_probe.check(),
            outbox_degraded=self.outbox.degraded_reason,
            quarantined_deadlines=self.scheduler.quarantined,
            worst_loop_lag_s=self.loop_lag.worst_recent_s(),
        )

    async def run(self) -> None:
        """Start, run until `request_stop`, finish in-flight frames, stop.

        Raises StartupError, BrokerError or StoreError when something the gateway needs
        cannot be had; everything claimed so far is given back first.
        """
        self._stop = self._stop or asyncio.Event()
        self._ready = self._ready or asyncio.Event()
        async with contextlib.AsyncExitStack() as claimed:
            self._lock.acquire()
            claimed.callback(self._lock.release)
            for _, run in self._components:
                if isinstance(run, Component):
                    claimed.callback(run.release)
                    run.prepare()
            if self.broker is not None:
                claimed.push_async_callback(asyncio.to_thread, self.broker.stop)
                self.broker.start()
                await self.broker.wait_ready()
            claimed.push_async_callback(self.store.close)
            claimed.callback(self._snapshot)
            await self.store.open()
            # Devices are read on their first frame; only the online/offline counts now.
            await self.registry.load()
            self.supervisor.start()
            self.device_alarms.start()
            self.device_health.start()
            await self.device_changes.start()
            claimed.push_async_callback(self._store_probe.close)
            await self._run_parts()
        log.info("gateway stopped")

    def _supervise(self, name: str, run: PartRun, *, ingest: bool = False) -> None:
        self._parts[name] = PartSupervisor(
            name, run, self.clock, self.settings.runtime, self.metrics, ingest=ingest
        )

    async def _run_parts(self) -> None:
        self._parts.clear()
        self._supervise("pipeline", self.pipeline.run, ingest=True)
        if self.mqtt is not None:
            self._supervise("mqtt-link", self.mqtt.run, ingest=True)
        for link in self.serial_links:
            self._supervise(f"serial-{link.name}", link.run, ingest=True)
        self._supervise("scheduler", self.scheduler.run)
        self._supervise("device-silence", self.supervisor.run)
        self._supervise("device-changes", self.device_changes.run)
        self._supervise("link-outages", self.outages.run)
        self._supervise("water-requests", self.water.run)
        self._supervise("outbox-sender", self.outbox.run)
        self._supervise("box-indications", self.indications.run)
        self._supervise("ticket-hangups", self.tickets.run)
        self._supervise("metrics-snapshot", self._write_metrics)
        self._supervise("loop-lag", self.loop_lag.run)
        if self.settings.work_group.groups:
            self._supervise("work-groups", self.work_groups.run)
        for name, run in self._components:
            self._supervise(name, run)
        tasks = [asyncio.create_task(part.run(), name=name) for name, part in self._parts.items()]
        try:
            await self._await_broker_session()
            assert self._stop is not None
            assert self._ready is not None
            if not self._stop.is_set():
                self.banner = await self._banner()
                log.info("gateway running", extra={"banner": self.banner})
                self._ready.set()
                await self._stop.wait()
            # Looked at before shutdown: stopping ends every part, failing or not.
            self.failing_at_stop = self.failed_parts()
            await self._shutdown()
        finally:
            for part in self._parts.values():
                part.stop()
            for task in tasks:
                task.cancel()
            for task, result in zip(
                tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True
            ):
                if isinstance(result, Exception):
                    log.error(
                        "supervisor ended with an error",
                        extra={"part": task.get_name()},
                        exc_info=result,
                    )

    async def _await_broker_session(self) -> None:
        """The first MQTT session, within the connect timeout, or StartupError."""
        if self.mqtt is None:
            return
        assert self._stop is not None
        timeout = self.settings.mqtt.connect_timeout_s
        connected = asyncio.create_task(self.mqtt.wait_connected(timeout))
        stopped = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({connected, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            await asyncio.gather(stopped, return_exceptions=True)
        if not connected.done():
            connected.cancel()
            await asyncio.gather(connected, return_exceptions=True)
            return  # stop requested during start-up
        if connected.exception() is None:
            return
        host, port = self.settings.mqtt.host, self.settings.mqtt.port
        reason = await asyncio.to_thread(_tcp_reachable, host, port)
        raise StartupError(
            f"cannot connect to the MQTT broker at {host}:{port} within {timeout:g} s"
            + (f": {reason}" if reason else "")
        )

    async def _banner(self) -> str:
        mqtt = self.settings.mqtt
        where: list[str] = []
        if self.mqtt is not None:
            embedded = " (embedded mosquitto)" if self.broker is not None else ""
            where.append(f"MQTT {mqtt.host}:{mqtt.port}{embedded}")
        where.extend(f"serial {link.name} {link.url}" for link in self.settings.serial)
        where.extend(run.describe() for _, run in self._components if isinstance(run, Component))
        devices = await self.store.devices.count()
        tickets = len(await self.store.tickets.live())
        return (
            f"Bidao gateway running (pid {os.getpid()}): {', '.join(where) or 'no links'}; "
            f"{devices} devices, {tickets} open tickets; data in {self.settings.data_dir}"
        )

    async def _shutdown(self) -> None:
        log.info("gateway stopping: finishing in-flight frames")
        for part in self._parts.values():
            part.stop()
        for link in self.serial_links:
            link.stop_reading()
        if self.mqtt is not None:
            self.mqtt.stop_intake()
        if not await self.pipeline.drain(self.settings.pipeline.drain_timeout_s):
            log.warning("pipeline did not drain in time; unacked frames will be resent")
        if self.mqtt is not None:
            await self.mqtt.close()

    async def _write_metrics(self) -> None:
        while True:
            await asyncio.sleep(self.settings.metrics_interval_s)
            self._snapshot()

    def _snapshot(self) -> None:
        try:
            self.metrics.write_snapshot(self.settings.metrics_path)
        except OSError as exc:
            log.warning("metrics snapshot failed", extra={"error": str(exc)})

    async def stopped(self) -> None:
        """Wait until a gateway started with `async with` has stopped (after `request_stop`)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def __aenter__(self) -> GatewayService:
        """Start `run` in a task and return once the gateway is up."""
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._task = asyncio.create_task(self.run(), name="gateway")
        ready = asyncio.create_task(self._ready.wait())
        await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ready
            await self._task  # raises what made start-up fail
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop gracefully and wait for the end."""
        self.request_stop()
        if self._task is not None:
            await self._task


def _is_open(link: SerialLink) -> Callable[[], bool]:
    """Whether the serial line is open right now."""
    return lambda: link.is_open


def _tcp_reachable(host: str, port: int) -> str | None:
    """Why a TCP connection to host:port fails right now, or None if it connects."""
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
