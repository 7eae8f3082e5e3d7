"""Box indications: delivered after the commit that wrote them, retried until the box is reached.

Rows come from the transaction of the ticket change that causes them (`uow.indications.add`),
so a crash after the commit loses nothing: the sender finds them on its next start. A box
that cannot be reached (link down, not heard from yet) is retried with capped backoff and
at once when it is next heard from; while it waits, a newer indication for the same ticket
supersedes the older one in the store, so the box hears the ticket's current state, once.
An indication counts as delivered when it is handed to the link (a restart between the
hand-over and the mark sends it again: the box shows the same state twice, nothing worse).
The MQTT link keeps what it was handed until the broker confirms it, and publishes it again
on its next connection if that one was lost first.

A box refuses a downlink numbered at or below the last one it accepted. A gateway restored
from an older copy of its database numbers from the copy's counter, so its first downlinks
are refused as stale; the box then sends a heartbeat naming its number (docs/protocol.md
section 10). Each indication handed over is remembered with its number until a heartbeat
tells whether the box could take it; one it refused is queued again and goes out under a
number above the box's, unless a later one for the same ticket replaced it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence

from firmware_protocol import split_position
from gateway.clock import Clock, polled, sleep_until_or_woken
from gateway.config import IndicationSettings
from gateway.ingest.downlink import Downlinker, DownlinkError
from gateway.metrics import GatewayMetrics
from gateway.store.ports import IndicationRetry, Store

log = logging.getLogger(__name__)

HANDED_KEPT = 32
"""Indications remembered per box with their downlink number until a heartbeat settles them."""


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
        self._handed: dict[str, deque[tuple[int, int]]] = {}
        """Per box, (downlink position, row id) of indications handed over and not settled."""
        self._refused_through: dict[str, int] = {}
        """Per box, the position at or below which this run's downlinks were refused."""
        self._refused: set[int] = set()
        """Rows the box refused as stale: queued again on the next round."""

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

    def downlink_heard(self, device_id: str, heard: int, refused: bool) -> None:
        """A heartbeat named the box's last accepted downlink (position `heard`).

        If `refused` (that number came from an earlier run of the gateway), what this run
        handed the box in that session, all numbered at or below it, was refused as stale:
        it is queued again. Either way, indications numbered up to `heard` are settled.
        """
        if refused:
            self._refused_through[device_id] = max(self._refused_through.get(device_id, 0), heard)
        handed = self._handed.pop(device_id, None)
        if handed is None:
            return
        session = split_position(heard)[0]
        kept: deque[tuple[int, int]] = deque(maxlen=HANDED_KEPT)
        for at, row_id in handed:
            if at > heard:
                kept.append((at, row_id))
            elif refused and split_position(at)[0] == session:
                self._refused.add(row_id)
        if kept:
            self._handed[device_id] = kept
        if self._refused:
            self._wake.set()

    def _handed_over(self, device_id: str, at: int, row_id: int) -> None:
        """Remember an indication handed over under downlink position `at`."""
        through = self._refused_through.get(device_id)
        if (
            through is not None
            and split_position(through)[0] == split_position(at)[0]
            and at <= through
        ):
            # Numbered before a heartbeat told the gateway its counter was behind.
            self._refused.add(row_id)
            self._wake.set()
            return
        self._handed.setdefault(device_id, deque(maxlen=HANDED_KEPT)).append((at, row_id))

    async def _resend_refused(self, now: float) -> None:
        refused, self._refused = sorted(self._refused), set()
        if not refused:
            return
        async with self._store.transaction() as uow:
            queued = await uow.indications.resend(refused, now)
        if queued:
            self._metrics.indications.labels("refused_stale").inc(queued)
            log.info("indications refused by their box as stale are sent again: %d", queued)

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
        await self._resend_refused(now)
        heard, self._heard = sorted(self._heard), set()
        async with self._store.transaction() as uow:
            rows = await uow.indications.due(
                float("inf") if everything else now, self._settings.batch, heard
            )
        delivered: list[int] = []
        retries: list[IndicationRetry] = []
        for row in rows:
            try:
                at = await self._downlinks.send_numbered(row.device_id, row.indication)
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
                self._handed_over(row.device_id, at, row.id)
        if delivered or retries:
            async with self._store.transaction() as uow:
                await uow.indications.delivered(delivered, now)
                await uow.indications.retry(retries, now)
        if delivered:
            self._metrics.indications.labels("delivered").inc(len(delivered))
        if retries:
            self._metrics.indications.labels("retry").inc(len(retries))
        # Everything numbered before a heartbeat moved a counter on is handed over by now.
        self._refused_through.clear()
        return len(rows)
