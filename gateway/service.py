"""The gateway service: owns the broker, store, links, pipeline, scheduler and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

from alerts.providers.base import Provider
from alerts.providers.console import ConsoleProvider
from firmware_protocol import Message
from gateway.broker import MosquittoBroker
from gateway.clock import Clock, SystemClock
from gateway.config import DeviceKind, Settings
from gateway.downlink import DownlinkSender
from gateway.grid_import import GridImporter, ImportKind, ImportResult
from gateway.metrics import GatewayMetrics
from gateway.outbox import OutboxSender
from gateway.pipeline import IngestHandler, Pipeline
from gateway.registry import SILENT_DEADLINE, DeviceRegistry
from gateway.reports import Reports
from gateway.scheduler import DeadlineScheduler
from gateway.sqlite_store import SqliteStore
from gateway.store import DeviceRecord
from gateway.supervision import Supervisor
from gateway.tickets import DEADLINE_KINDS as TICKET_DEADLINES
from gateway.tickets import TicketService
from gateway.transports.mqtt import MqttLink
from gateway.transports.serial import SerialLink

log = logging.getLogger(__name__)


class GatewayService:
    """Start with `async with GatewayService(settings) as gw:` or `await gw.run()`."""

    def __init__(
        self, settings: Settings, clock: Clock | None = None, provider: Provider | None = None
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.metrics = GatewayMetrics()
        self.store = SqliteStore(settings.database_path)
        self.scheduler = DeadlineScheduler(
            self.store, self.clock, settings.supervision.scheduler_batch
        )
        self.registry = DeviceRegistry(
            self.store,
            self.clock,
            settings.supervision,
            self.metrics,
            settings.pipeline.unknown_device_cache_s,
            deadline_set=self.scheduler.notify,
        )
        self.pipeline = Pipeline(
            self.store, self.registry, self.clock, settings.pipeline, self.metrics
        )
        self.supervisor = Supervisor(
            self.registry, self.scheduler, settings.supervision, self.metrics
        )
        self.pipeline.add_handler(self.supervisor)
        self.scheduler.register(SILENT_DEADLINE, self.supervisor)
        self.downlinks = DownlinkSender(self.store, self.registry, self.clock, self.metrics)
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
        self.tickets = TicketService(
            self.store,
            self.clock,
            settings.tickets,
            self.scheduler,
            self.downlinks,
            self.metrics,
            notifications_committed=self.outbox.wake,
            calls=self.provider,
        )
        self.outbox.set_unanswered_handler(self.tickets)
        self.pipeline.add_handler(self.tickets)
        for kind in TICKET_DEADLINES:
            self.scheduler.register(kind, self.tickets)
        self.reports = Reports(self.store, settings.tickets, settings.warnings, settings.cards)
        self.importer = GridImporter(
            self.store, self.clock, settings.supervision, settings.grid_import, self.metrics
        )
        self.serial_links = [
            SerialLink(link, self.pipeline, self.clock, self.metrics) for link in settings.serial
        ]
        for link in self.serial_links:
            self.downlinks.add_link(link)
        self._components: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []
        self._stop: asyncio.Event | None = None
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def add_component(self, name: str, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run another long-lived part (the HTTP server) in the gateway's task group."""
        self._components.append((name, run))

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
        return result

    async def send_downlink(self, device_id: str, message: Message) -> int:
        """Send a message to a device over the link it last used; returns the downlink seq."""
        return await self.downlinks.send(device_id, message)

    def request_stop(self) -> None:
        """Ask `run` to shut down gracefully (safe from a signal handler)."""
        if self._stop is not None:
            self._stop.set()

    async def run(self) -> None:
        """Run until `request_stop`; finishes in-flight frames before it returns."""
        self._stop = self._stop or asyncio.Event()
        self._ready = self._ready or asyncio.Event()
        try:
            if self.broker is not None:
                self.broker.start()
                await self.broker.wait_ready()
            await self.store.open()
            await self.registry.load()
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self.pipeline.run(), name="pipeline"),
                    tg.create_task(self.scheduler.run(), name="scheduler"),
                    tg.create_task(self._write_metrics(), name="metrics-snapshot"),
                    tg.create_task(self.tickets.run(), name="box-indications"),
                    tg.create_task(self.outbox.run(), name="outbox-sender"),
                ]
                if self.mqtt is not None:
                    tasks.append(tg.create_task(self.mqtt.run(), name="mqtt-link"))
                tasks.extend(
                    tg.create_task(link.run(), name=f"serial-{link.name}")
                    for link in self.serial_links
                )
                tasks.extend(tg.create_task(run(), name=name) for name, run in self._components)
                self._ready.set()
                log.info("gateway running", extra={"database": str(self.settings.database_path)})
                await self._stop.wait()
                await self._shutdown()
                for task in tasks:
                    task.cancel()
        finally:
            self._snapshot()
            await self.store.close()
            if self.broker is not None:
                await asyncio.to_thread(self.broker.stop)
            log.info("gateway stopped")

    async def _shutdown(self) -> None:
        log.info("gateway stopping: finishing in-flight frames")
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
