"""Box indications: delivered after the commit that wrote them, retried until the box is reached.

Rows come from the transaction of the ticket change that causes them (`uow.indications.add`),
so a crash after the commit loses nothing: the sender finds them on its next start. A box
that cannot be reached (link down, not heard from yet) is retried with capped backoff and
at once when it is next heard from; while it waits, a newer indication for the same ticket
supersedes the older one in the store, so the box hears the ticket's current state, once.
An indication counts as delivered when it is handed to the link (a restart between the
hand-over and the mark sends it again: the box shows the same state twice, nothing worse).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from gateway.clock import Clock, polled, sleep_until_or_woken
from gateway.config import IndicationSettings
from gateway.ingest.downlink import Downlinker, DownlinkError
from gateway.metrics import GatewayMetrics
from gateway.store.ports import IndicationRetry, Store

log = logging.getLogger(__name__)


class IndicationSender:
    """The long-lived part that hands pending indications to each box's link."""

    def __init__(
        self,
        store: Store,
        downlinks: Downlinker,
        clock: Clock,
        settings: IndicationSettings,
        metrics: GatewayMetrics,
    ) -> None:
        self._store = store
        self._downlinks = downlinks
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._waiting: set[str] = set()
        """Devices with an indication held back because they could not be reached."""
        self._heard: set[str] = set()

    def wake(self) -> None:
        """New indications were committed: look for them now."""
        self._wake.set()

    def heard(self, device_ids: Sequence[str]) -> None:
        """These devices were just heard from: retry what waits for them at once."""
        if not self._waiting:
            return
        reached = self._waiting.intersection(device_ids)
        if reached:
            self._heard |= reached
            self._waiting -= reached
            self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; after a start, everything pending is tried once at once."""
        everything = True
        while True:
            self._wake.clear()
            handled = await self.send_due(everything=everything)
            everything = False
            if handled == 0:
                due = await self._store.indications.next_at()
                # Indications committed by another process (the command line) wake nobody.
                due = polled(self._clock, due, self._settings.poll_s)
                await sleep_until_or_woken(self._clock, due, self._wake)

    async def send_due(self, *, everything: bool = False) -> int:
        """Hand every due indication to its link; returns how many were tried."""
        now = self._clock.now()
        heard, self._heard = sorted(self._heard), set()
        async with self._store.transaction() as uow:
            rows = await uow.indications.due(
                float("inf") if everything else now, self._settings.batch, heard
            )
        delivered: list[int] = []
        retries: list[IndicationRetry] = []
        for row in rows:
            try:
                await self._downlinks.send(row.device_id, row.indication)
            except DownlinkError as exc:
                delay = min(
                    self._settings.retry_initial_s * 2 ** min(row.attempts, 30),
                    self._settings.retry_max_s,
                )
                retries.append(IndicationRetry(row.id, now + delay, exc.reason))
                self._waiting.add(row.device_id)
                log.info(
                    "indication waits for its box",
                    extra={"device_id": row.device_id, "reason": exc.reason, "retry_s": delay},
                )
            else:
                delivered.append(row.id)
        if delivered or retries:
            async with self._store.transaction() as uow:
                await uow.indications.delivered(delivered, now)
                await uow.indications.retry(retries, now)
        if delivered:
            self._metrics.indications.labels("delivered").inc(len(delivered))
        if retries:
            self._metrics.indications.labels("retry").inc(len(retries))
        return len(rows)
