"""The outbox sender: delivers committed notifications, retries, never sends one twice."""

from __future__ import annotations

import asyncio
import logging
import random

from alerts import TemplateError, render
from alerts.providers.base import OutgoingMessage, Provider, ProviderError
from gateway.clock import Clock, sleep_until_or_woken
from gateway.config import NotifySettings
from gateway.metrics import GatewayMetrics
from gateway.store import OutboxRow, Store

log = logging.getLogger(__name__)


class OutboxSender:
    """Takes due rows (marking them "sending" first), hands them to the provider, records it."""

    def __init__(
        self,
        store: Store,
        provider: Provider,
        clock: Clock,
        settings: NotifySettings,
        metrics: GatewayMetrics,
    ) -> None:
        self._store = store
        self._provider = provider
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New notifications were committed."""
        self._wake.set()

    async def run(self) -> None:
        """Send until cancelled."""
        async with self._store.transaction() as uow:
            in_doubt = await uow.release_in_doubt(
                self._clock.now() + self._settings.in_doubt_resend_s
            )
        if in_doubt:
            log.warning("notifications in doubt after a restart", extra={"count": in_doubt})
        while True:
            self._wake.clear()
            if await self.send_due() == 0:
                due = await self._store.next_notification_at()
                await sleep_until_or_woken(self._clock, due, self._wake)

    async def send_due(self) -> int:
        """Send every notification due now; returns how many were tried."""
        async with self._store.transaction() as uow:
            rows = await uow.claim_notifications(self._clock.now(), self._settings.batch)
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row: OutboxRow) -> None:
        n = row.notification
        try:
            text = render(n.template, n.language, n.params)
        except TemplateError as exc:
            await self._failed(row, str(exc), bad_number=False)
            return
        message = OutgoingMessage(
            row.id, n.channel, n.recipient, text, n.template, n.params, n.language
        )
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # when the send finishes at the same moment, and shutdown would then hang.
            async with asyncio.timeout(self._settings.send_timeout_s):
                receipt = await self._provider.send(message)
        except ProviderError as exc:
            if exc.permanent or row.attempts >= self._settings.max_attempts:
                await self._failed(row, f"{exc.code} {exc}".strip(), bad_number=exc.bad_number)
            else:
                await self._retry(row, str(exc))
            return
        except (TimeoutError, OSError) as exc:
            if row.attempts >= self._settings.max_attempts:
                await self._failed(row, repr(exc), bad_number=False)
            else:
                await self._retry(row, repr(exc))
            return
        async with self._store.transaction() as uow:
            await uow.notification_sent(
                row.id,
                self._provider.name,
                receipt.provider_id,
                receipt.status,
                self._clock.now(),
            )
        self._metrics.notifications.labels(n.channel, "sent").inc()

    async def _retry(self, row: OutboxRow, error: str) -> None:
        backoff = min(
            self._settings.retry_max_s, self._settings.retry_initial_s * 2 ** (row.attempts - 1)
        )
        due = self._clock.now() + backoff * random.uniform(0.5, 1.0)  # noqa: S311 - jitter
        async with self._store.transaction() as uow:
            await uow.notification_retry(row.id, due, error, self._clock.now())
        self._metrics.notifications.labels(row.notification.channel, "retried").inc()
        log.warning("notification not sent, will retry", extra={"id": row.id, "error": error})

    async def _failed(self, row: OutboxRow, error: str, *, bad_number: bool) -> None:
        async with self._store.transaction() as uow:
            await uow.notification_failed(row.id, error, self._clock.now(), bad_number)
        self._metrics.notifications.labels(row.notification.channel, "failed").inc()
        log.error("notification failed", extra={"id": row.id, "error": error})
