"""Link outages: one operator alarm per link, and no storm of alarms when it is back.

When the gateway's link to the MQTT broker or a serial line is down, no device on it can be
heard. That is the gateway's problem, not each device's or household's:

- While the link is down, device supervision declares none of its devices offline
  (`Supervisor.link_down`), so neither the installers (device health) nor the water watch
  (blind meters) hear of every device one by one.
- A link down for `runtime.link_alarm_after_s` raises ONE operator alarm (`bidao alarms`,
  kind `link_down`, subject `link:<name>`) naming the link and since when; it is cleared,
  by the gateway, when the link is back. A shorter blip raises nothing.
- When the link is back, the silence clocks of its devices count from its return
  (`Supervisor.link_up`), as they do from a gateway start: a device that really died
  meanwhile is declared offline `supervision.missed_intervals` after the return, once.
- When an outage that long ends, the water watch's quiet clocks restart from the data
  actually received (`WaterService.outage_ended`, in chunks) for the households whose
  meter was on that link, so no burst of stale zero-use alarms follows.

The links tell this watch of every change through their `on_state` listeners (on the event
loop, as it happens); the alarm's hold-off and the work done on a return run in the
supervised part `link-outages`. An alarm left open by a gateway that stopped is cleared at
start once its link is up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.clock import Clock, sleep_until_or_woken
from gateway.config import RuntimeSettings
from gateway.domain.devices import AlarmKind
from gateway.ingest.supervision import Supervisor
from gateway.metrics import GatewayMetrics
from gateway.services.device_health import local_time
from gateway.services.water import WaterService
from gateway.store.ports import Store

log = logging.getLogger(__name__)

ALARM_KIND: AlarmKind = "link_down"
SUBJECT_PREFIX = "link:"


def alarm_subject(link: str) -> str:
    """The operator alarm's subject (its device column) for a link: `link:mqtt`."""
    return SUBJECT_PREFIX + link


@dataclass(slots=True)
class _Link:
    """A link the watch follows."""

    name: str
    description: str
    """How the alarm names it: "MQTT broker 127.0.0.1:1883", "serial line bus1 (/dev/ttyUSB0)"."""
    up: Callable[[], bool]
    down_since: float | None = None
    alarm_id: int | None = None
    """The open operator alarm of its current outage, once raised."""


class LinkOutages:
    """Follows the links; one operator alarm per outage; restarts clocks when it ends."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: RuntimeSettings,
        timezone: str,
        supervisor: Supervisor,
        water: WaterService | None,
        metrics: GatewayMetrics,
    ) -> None:
        self._store = store
        self._clock = clock
        self._after = settings.link_alarm_after_s
        self._timezone = timezone
        self._supervisor = supervisor
        self._water = water
        self._metrics = metrics
        self._links: dict[str, _Link] = {}
        self._returns: deque[tuple[str, float, float]] = deque()
        """Outages that ended, (link, down since, back at), waiting for `run` to finish them."""
        self._wake = asyncio.Event()
        self._started = False
        self.ended = 0
        """Outages finished so far (a test probe and a log field)."""

    def add_link(self, name: str, description: str, up: Callable[[], bool]) -> None:
        """Follow a link; its `on_state` listener must call `link_state(name, up, at)`."""
        self._links[name] = _Link(name, description, up)

    def down_since(self, name: str) -> float | None:
        """Since when the link is down, or None while it is up."""
        return self._links[name].down_since

    def link_state(self, name: str, up: bool, at: float) -> None:
        """A link went down or came back (called on the event loop, as it happens)."""
        link = self._links[name]
        if not up:
            if link.down_since is None:
                link.down_since = at
                self._supervisor.link_down(name, at)
                log.warning("link down", extra={"link": name})
        elif link.down_since is not None:
            self._returns.append((name, link.down_since, at))
            log.info("link back", extra={"link": name, "down_s": round(at - link.down_since)})
            link.down_since = None
        self._wake.set()

    async def run(self) -> None:
        """Raise the alarms whose hold-off passed; finish the outages that ended."""
        if not self._started:
            now = self._clock.now()
            for link in self._links.values():
                if not link.up() and link.down_since is None:
                    # Not open yet (a serial line that cannot open counts from the start).
                    link.down_since = now
                    self._supervisor.link_down(link.name, now)
            await self._adopt_open_alarms()
            self._started = True
        while True:
            self._wake.clear()
            while self._returns:
                name, since, back = self._returns[0]
                await self._outage_ended(name, since, back)
                self._returns.popleft()
            now = self._clock.now()
            due: list[float] = []
            for link in self._links.values():
                if link.down_since is None or link.alarm_id is not None:
                    continue
                if now >= link.down_since + self._after:
                    await self._raise(link, now)
                else:
                    due.append(link.down_since + self._after)
            await sleep_until_or_woken(self._clock, min(due, default=None), self._wake)

    async def _adopt_open_alarms(self) -> None:
        """Alarms a stopped gateway left open: kept while their link is down, else cleared."""
        for alarm in await self._store.devices.alarms():
            subject = alarm.device_id or ""
            if alarm.kind != ALARM_KIND or not subject.startswith(SUBJECT_PREFIX):
                continue
            link = self._links.get(subject.removeprefix(SUBJECT_PREFIX))
            if link is not None and link.down_since is not None:
                link.alarm_id = alarm.id
                continue
            async with self._store.transaction() as uow:
                await uow.devices.clear_alarm(alarm.id, self._clock.now(), "gateway")
            log.info("link alarm cleared at start: the link is up", extra={"alarm": alarm.id})

    async def _raise(self, link: _Link, now: float) -> None:
        assert link.down_since is not None
        since = local_time(link.down_since, self._timezone)
        detail = (
            f"{link.description} down since {since}: no device on it can be heard; "
            "device and water alarms wait for its return"
        )
        async with self._store.transaction() as uow:
            alarm = await uow.devices.raise_alarm(ALARM_KIND, alarm_subject(link.name), detail, now)
        link.alarm_id = alarm.id
        self._metrics.operator_alarms.labels(ALARM_KIND).inc()
        log.error(
            "operator alarm: a link is down",
            extra={"link": link.name, "alarm": alarm.id, "down_s": round(now - link.down_since)},
        )

    async def _outage_ended(self, name: str, since: float, back: float) -> None:
        """Device clocks from the return; the alarm cleared; water clocks restarted."""
        link = self._links[name]
        await self._supervisor.link_up(name, back)
        if link.down_since is not None:  # down again already: keep its devices held
            self._supervisor.link_down(name, link.down_since)
        alarm_id, link.alarm_id = link.alarm_id, None
        if alarm_id is not None:
            async with self._store.transaction() as uow:
                await uow.devices.clear_alarm(alarm_id, self._clock.now(), "gateway")
        restarted = 0
        if self._water is not None and back - since >= self._after:
            restarted = await self._water.outage_ended(
                since, lambda meter: self._supervisor.last_link(meter) in (name, None)
            )
        self.ended += 1
        log.info(
            "link outage ended",
            extra={
                "link": name,
                "down_s": round(back - since),
                "alarm": alarm_id,
                "water_watches_restarted": restarted,
            },
        )
