"""The outbox sender: delivers committed notifications, retries, never sends one twice.

    pending ─claim─► sending ─provider took it─► sent ─status callback─► delivered | failed
       ▲  │             │ 5xx: retry with backoff
       │  │             └ timeout / connection lost: in doubt ─lookup at the provider─┐
       │  └ over the number's hourly limit: held back, then merged into one message   │
       └──────────────────────────────────────── not taken: send again ◄──────────────┘

Once a message is final, what it was for decides what follows: a failed SMS falls back to
a voice call; a call that nobody answered with a key is placed once more, and when that
one is not answered either, the ticket counts it as no answer (and may escalate at once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from alerts import Notification, TemplateError, fit_sms, render, render_digest
from alerts.notification import URGENT
from alerts.providers.base import (
    LookupUnavailableError,
    OutgoingMessage,
    Provider,
    ProviderError,
    SentItem,
)
from gateway.clock import Clock, sleep_until_or_woken
from gateway.config import NotifySettings
from gateway.metrics import GatewayMetrics
from gateway.store import FollowUpKind, OutboxRow, Store, UnitOfWork

log = logging.getLogger(__name__)

OnCommit = Callable[[], None]


class UnansweredHandler(Protocol):
    """Told, inside the delivery transaction, that a responder did not answer a call."""

    async def call_unanswered(
        self, uow: UnitOfWork, ticket_id: int, contact_id: int, now: float
    ) -> OnCommit | None:
        """Act on it (escalate at once, perhaps); return what to do once committed."""
        ...


@dataclass(frozen=True, slots=True)
class _Job:
    """A claimed notification and the ones merged into it."""

    row: OutboxRow
    members: tuple[Notification, ...] = ()


def message_text(notification: Notification, members: Sequence[Notification] = ()) -> str:
    """What the recipient reads or hears: the template, or one digest for merged messages."""
    n = notification
    text = render(n.template, n.language, n.params)
    if members:
        texts = [text, *(render(m.template, m.language, m.params) for m in members)]
        text = render_digest(n.language, texts)
    return fit_sms(text) if n.channel == "sms" else text


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
        self._unanswered: UnansweredHandler | None = None
        self.degraded_reason: str | None = None
        """Why sending is impaired right now (None while the provider takes messages)."""

    def set_unanswered_handler(self, handler: UnansweredHandler) -> None:
        """Who is told that a call went unanswered (the ticket service)."""
        self._unanswered = handler

    def wake(self) -> None:
        """New notifications were committed."""
        self._wake.set()

    async def run(self) -> None:
        """Send until cancelled."""
        async with self._store.transaction() as uow:
            in_doubt = await uow.release_in_doubt(self._clock.now())
        if in_doubt:
            log.warning("notifications in doubt after a restart", extra={"count": in_doubt})
        while True:
            self._wake.clear()
            if await self.send_due() == 0:
                due = await self._store.next_notification_at()
                await sleep_until_or_woken(self._clock, due, self._wake)

    async def send_due(self) -> int:
        """Settle in-doubt rows, then send every notification due now; returns rows handled."""
        now = self._clock.now()
        async with self._store.transaction() as uow:
            doubtful = await uow.due_notifications(now, self._settings.batch, in_doubt=True)
        for row in doubtful:
            await self._settle_doubt(row)
        async with self._store.transaction() as uow:
            rows = await uow.due_notifications(now, self._settings.batch, in_doubt=False)
            jobs = await self._plan(uow, rows, now)
            await uow.mark_sending([job.row.id for job in jobs], now)
        for job in jobs:
            await self._deliver(dataclasses.replace(job, row=_attempted(job.row, now)))
        return len(doubtful) + len(rows)

    # -- throttling and merging -----------------------------------------------------------

    async def _plan(self, uow: UnitOfWork, rows: Sequence[OutboxRow], now: float) -> list[_Job]:
        """Urgent rows go at once; the others respect each number's limit and are merged."""
        jobs = [_Job(r) for r in rows if r.notification.priority >= URGENT]
        groups: dict[tuple[str, str], list[OutboxRow]] = defaultdict(list)
        for row in rows:
            if row.notification.priority < URGENT:
                groups[(row.notification.recipient, row.notification.channel)].append(row)
        window = self._settings.throttle_window_s
        leaders: list[OutboxRow] = []
        for (recipient, channel), group in groups.items():
            sent = await uow.recent_sends(recipient, channel, now - window)
            in_batch = sum(
                1
                for j in jobs
                if (j.row.notification.recipient, j.row.notification.channel)
                == (recipient, channel)
            )
            if len(sent) + in_batch >= self._settings.throttle_per_window:
                until = (sent[0] if sent else now) + window
                await uow.defer_notifications([r.id for r in group], until)
                self._metrics.notifications.labels(channel, "held_back").inc(len(group))
                continue
            leader, rest = group[0], group[1:]
            if rest:
                await uow.merge_notifications(leader.id, [r.id for r in rest], now)
                self._metrics.notifications.labels(channel, "merged").inc(len(rest))
            leaders.append(leader)
        members = await uow.merged_members([r.id for r in leaders])
        jobs.extend(_Job(r, tuple(members[r.id])) for r in leaders)
        return jobs

    # -- sending --------------------------------------------------------------------------

    async def _deliver(self, job: _Job) -> None:
        row = job.row
        n = row.notification
        try:
            text = message_text(n, job.members)
        except TemplateError as exc:
            await self._failed(row, str(exc), bad_number=False, follow_up=False)
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
                error = f"{exc.code} {exc}".strip()
                await self._failed(row, error, bad_number=exc.bad_number, follow_up=not job.members)
            else:
                await self._retry(row, str(exc), in_doubt=False)
            return
        except (TimeoutError, OSError) as exc:
            # The provider may have taken it before the answer was lost.
            if row.attempts >= self._settings.max_attempts:
                await self._failed(row, repr(exc), bad_number=False, follow_up=not job.members)
            else:
                await self._retry(row, repr(exc), in_doubt=True)
            return
        async with self._store.transaction() as uow:
            await uow.notification_sent(
                row.id,
                self._provider.name,
                receipt.provider_id,
                receipt.status,
                self._clock.now(),
                text,
            )
        self._metrics.notifications.labels(n.channel, "sent").inc()

    async def _settle_doubt(self, row: OutboxRow) -> None:
        """Ask the provider whether it took an in-doubt message before sending it again."""
        n = row.notification
        since = row.claimed_at if row.claimed_at is not None else self._clock.now()
        try:
            async with asyncio.timeout(self._settings.send_timeout_s):
                items = await self._provider.sent_since(n.channel, n.recipient, since)
        except LookupUnavailableError:
            resend_at = since + self._settings.in_doubt_resend_s
            async with self._store.transaction() as uow:
                if self._clock.now() < resend_at:
                    # Its status callback, if it went, settles it before then.
                    await uow.defer_notifications([row.id], resend_at)
                else:
                    await uow.notification_resolved_doubt(row.id, self._clock.now())
            return
        except (ProviderError, TimeoutError, OSError) as exc:
            backoff = self._backoff(row.attempts)
            async with self._store.transaction() as uow:
                await uow.defer_notifications([row.id], self._clock.now() + backoff)
            log.warning("in-doubt lookup failed", extra={"id": row.id, "error": repr(exc)})
            return
        async with self._store.transaction() as uow:
            found = await self._unclaimed(uow, row, items)
            if found is None:
                await uow.notification_resolved_doubt(row.id, self._clock.now())
            else:
                await uow.notification_sent(
                    row.id,
                    self._provider.name,
                    found.provider_id,
                    found.status,
                    self._clock.now(),
                    None,
                )
        outcome = "resent" if found is None else "found_at_provider"
        self._metrics.notifications.labels(n.channel, outcome).inc()
        log.info("in-doubt notification settled", extra={"id": row.id, "outcome": outcome})

    async def _unclaimed(
        self, uow: UnitOfWork, row: OutboxRow, items: Sequence[SentItem]
    ) -> SentItem | None:
        """The provider's message for this row: one no other notification owns (same text)."""
        known = await uow.known_provider_ids([i.provider_id for i in items])
        expected = None
        if row.notification.channel == "sms":
            members = (await uow.merged_members([row.id]))[row.id]
            try:
                expected = message_text(row.notification, members)
            except TemplateError:
                return None
        return next(
            (
                item
                for item in items
                if item.provider_id not in known and (expected is None or item.body == expected)
            ),
            None,
        )

    def _backoff(self, attempts: int) -> float:
        growth = 2.0 ** max(0, attempts - 1)
        base = min(self._settings.retry_max_s, self._settings.retry_initial_s * growth)
        return base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    async def _retry(self, row: OutboxRow, error: str, *, in_doubt: bool) -> None:
        due = self._clock.now() + self._backoff(row.attempts)
        async with self._store.transaction() as uow:
            await uow.notification_retry(row.id, due, error, self._clock.now(), in_doubt)
        self._metrics.notifications.labels(row.notification.channel, "retried").inc()
        log.warning("notification not sent, will retry", extra={"id": row.id, "error": error})

    async def _failed(
        self, row: OutboxRow, error: str, *, bad_number: bool, follow_up: bool
    ) -> None:
        n = row.notification
        now = self._clock.now()
        hook = None
        async with self._store.transaction() as uow:
            await uow.notification_failed(row.id, error, now, bad_number)
            if follow_up:
                hook = await self._after_final(uow, row.id, n, row.origin_kind, bad_number, now)
        self._metrics.notifications.labels(n.channel, "failed").inc()
        log.error("notification failed", extra={"id": row.id, "error": error})
        self._run_hook(hook)

    # -- what a final state leads to ------------------------------------------------------

    async def apply_status(
        self, notification_id: int, provider_id: str, state: str, *, bad_number: bool = False
    ) -> bool:
        """Apply a provider status callback (idempotent, never backwards); False if stale."""
        now = self._clock.now()
        hook = None
        async with self._store.transaction() as uow:
            record = await uow.notification_delivery(notification_id, provider_id, state, now)
            if record is None:
                return False
            if record.status in ("delivered", "failed"):
                n = record.notification
                if bad_number and n.contact_id is not None:
                    await uow.set_contact_bad_number(n.contact_id)
                answered = record.status == "delivered" and (
                    n.channel == "sms" or record.keypress is not None
                )
                if not answered and not record.merged:
                    hook = await self._after_final(
                        uow, notification_id, n, record.origin_kind, bad_number, now
                    )
        self._run_hook(hook)
        return True

    async def message_text(self, notification_id: int) -> tuple[Notification, str] | None:
        """A notification and what its recipient reads or hears (a digest if merged)."""
        found = await self._store.notification_with_members(notification_id)
        if found is None:
            return None
        notification, members = found
        return notification, message_text(notification, members)

    async def record_keypress(self, notification_id: int, digit: str) -> bool:
        """A person answered a call with a key: a human, not voicemail."""
        async with self._store.transaction() as uow:
            return await uow.notification_keypress(notification_id, digit, self._clock.now())

    async def _after_final(
        self,
        uow: UnitOfWork,
        notification_id: int,
        n: Notification,
        origin_kind: FollowUpKind | None,
        bad_number: bool,
        now: float,
    ) -> OnCommit | None:
        """A message that did not reach its person: fall back, call again, or give up."""
        if n.channel == "sms":
            if not bad_number and not await uow.voice_twin_exists(notification_id):
                voice = dataclasses.replace(n, channel="voice")
                if await uow.enqueue_follow_up(notification_id, "fallback", voice, now):
                    self._metrics.notifications.labels("sms", "fallback_to_voice").inc()
                    return self.wake
            return None
        ticket = await uow.get_ticket(n.ticket_id) if n.ticket_id is not None else None
        still_needed = ticket is None or ticket.status == "open"
        if origin_kind != "retry" and still_needed and not bad_number:
            due = now + self._settings.call_retry_after_s
            if await uow.enqueue_follow_up(notification_id, "retry", n, due):
                self._metrics.notifications.labels("voice", "call_retried").inc()
                return self.wake
            return None
        self._metrics.notifications.labels("voice", "unanswered").inc()
        if ticket is None or n.contact_id is None or self._unanswered is None:
            return None
        return await self._unanswered.call_unanswered(uow, ticket.id, n.contact_id, now)

    def _run_hook(self, hook: OnCommit | None) -> None:
        if hook is not None:
            hook()


def _attempted(row: OutboxRow, at: float) -> OutboxRow:
    return dataclasses.replace(row, attempts=row.attempts + 1, claimed_at=at)
