"""The outbox sender: delivers committed notifications, retries, never sends one twice.

    pending ─claim─► sending ─provider took it─► sent ─status callback─► delivered | failed
       ▲  │             │ 5xx: retry with backoff
       │  │             └ timeout / connection lost: in doubt ─lookup at the provider─┐
       │  └ over the number's hourly limit: held back, then merged into one message   │
       └──────────────────────────────────────── not taken: send again ◄──────────────┘

Any failure of the provider (an error it reports, a timeout, or an exception nobody
expected) is one failed attempt; after `max_attempts` the row is quarantined: failed, with
its reason, counted and logged for an operator. Sends run concurrently, at most
`concurrency` at once and one per number, so one slow number never holds up another.

Urgent notifications (a call for help) have their own claimer and their own
`urgent_concurrency` slots: the transaction that writes them wakes it on commit, and it
claims them at once, neither after the next poll nor behind slow normal sends. No provider
call is ever awaited inside a store transaction: a row is claimed (and marked "sending") in
one transaction, sent outside any, and its outcome recorded in another, so a provider that
hangs holds its slot and its number, never the store's write lock.

Once a message is final, what it was for decides what follows: a failed SMS falls back to
a voice call; a call that nobody answered with a key is placed once more, and when that
one is not answered either, the ticket counts it as no answer (and may escalate at once).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from alerts import Notification, TemplateError, fit_sms, render, render_digest
from alerts.notification import URGENT
from alerts.providers.base import (
    LookupUnavailableError,
    OutgoingMessage,
    Provider,
    ProviderError,
    SentItem,
)
from gateway.clock import Clock, polled, sleep_until_or_woken
from gateway.config import NotifySettings
from gateway.domain.notify import FINAL_DELIVERY, FollowUpKind
from gateway.metrics import GatewayMetrics
from gateway.store.ports import OutboxRow, SentNotification, Store, UnitOfWork

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
        self._urgent_wake = asyncio.Event()
        self._unanswered: UnansweredHandler | None = None
        self._busy: set[str] = set()
        """Numbers with a send or an in-doubt lookup in flight (at most one each)."""
        self._urgent_in_flight = 0
        self._failed_in_row = 0
        self._last_failure = ""
        self._quarantines: deque[float] = deque(maxlen=1000)

    def set_unanswered_handler(self, handler: UnansweredHandler) -> None:
        """Who is told that a call went unanswered (the ticket service)."""
        self._unanswered = handler

    def wake(self, urgent: bool = True) -> None:
        """New notifications were committed; `urgent` False if none of them is urgent."""
        self._wake.set()
        if urgent:
            self._urgent_wake.set()

    @property
    def degraded_reason(self) -> str | None:
        """Why the provider looks unwell (recent failures or quarantines); None if healthy."""
        if self._failed_in_row >= self._settings.degraded_after_failures:
            return f"the last {self._failed_in_row} sends failed: {self._last_failure}"
        window = self._settings.degraded_window_s
        since = self._clock.now() - window
        recent = sum(1 for at in self._quarantines if at >= since)
        if recent:
            return f"{recent} notifications quarantined in the last {window:g} s"
        return None

    @property
    def in_flight(self) -> int:
        """Sends and in-doubt lookups under way."""
        return len(self._busy)

    async def run(self) -> None:
        """Send until cancelled."""
        async with self._store.transaction() as uow:
            in_doubt = await uow.outbox.release_in_doubt(self._clock.now())
        if in_doubt:
            log.warning("notifications in doubt after a restart", extra={"count": in_doubt})
        self._urgent_wake.set()  # urgent rows left pending go first
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._run_urgent(tg), name="outbox-urgent")
            while True:
                self._wake.clear()
                now = self._clock.now()
                handled = await self._dispatch(tg, now)
                due = await self._store.outbox.next_at(
                    skip_recipients=sorted(self._busy), urgent=False
                )
                await sleep_until_or_woken(
                    self._clock, self._polled(self._next_wake(handled, due, now)), self._wake
                )

    async def _run_urgent(self, tg: asyncio.TaskGroup) -> None:
        """Claim urgent rows as soon as they commit (or fall due again), in their own slots."""
        while True:
            self._urgent_wake.clear()
            now = self._clock.now()
            handled = await self._dispatch_urgent(tg, now)
            due = await self._store.outbox.next_at(skip_recipients=sorted(self._busy), urgent=True)
            await sleep_until_or_woken(
                self._clock, self._polled(self._next_wake(handled, due, now)), self._urgent_wake
            )

    def _polled(self, due: float | None) -> float:
        """No later than `poll_s` from now: the command line commits rows that wake nobody."""
        return polled(self._clock, due, self._settings.poll_s)

    def _next_wake(self, handled: int, due: float | None, looked_at: float) -> float | None:
        """When to look again if nothing wakes the sender first, after claiming at `looked_at`.

        A row that fell due after `looked_at` (time moved on while claiming) is looked for
        again at once; only one already due then and still not claimed is waiting.
        """
        if handled == 0 and due is not None and due <= looked_at:
            # What is due waits for its number or a free slot: a send ending wakes us.
            return None if self._busy else self._clock.now() + self._settings.retry_initial_s
        return due

    async def _dispatch_urgent(self, tg: asyncio.TaskGroup, now: float) -> int:
        """Claim urgent rows due at `now` into free urgent slots, one per number; rows claimed."""
        free = self._settings.urgent_concurrency - self._urgent_in_flight
        if free <= 0:
            return 0
        async with self._store.transaction() as uow:
            rows = await uow.outbox.due(
                now, free, in_doubt=False, skip_recipients=sorted(self._busy), urgent=True
            )
            rows = await self._still_needed(uow, rows, now)
            numbers: set[str] = set()
            jobs = []
            for row in rows:
                if row.notification.recipient not in numbers:
                    numbers.add(row.notification.recipient)
                    jobs.append(_Job(row))
            await uow.outbox.mark_sending([job.row.id for job in jobs], now)
        for job in jobs:
            job = dataclasses.replace(job, row=_attempted(job.row, now))  # noqa: PLW2901
            send = partial(self._deliver, job)
            self._start(tg, job.row.notification.recipient, send, urgent=True)
        return len(jobs)

    async def _dispatch(self, tg: asyncio.TaskGroup, now: float) -> int:
        """Start settling in-doubt rows and sending normal ones due at `now`, within the limits."""
        handled = 0
        free = self._normal_free()
        if free <= 0:
            return 0
        async with self._store.transaction() as uow:
            doubtful = await uow.outbox.due(
                now, free, in_doubt=True, skip_recipients=sorted(self._busy)
            )
        for row in doubtful:
            if row.notification.recipient not in self._busy:
                self._start(tg, row.notification.recipient, partial(self._settle_doubt, row))
                handled += 1
        free = self._normal_free()
        if free <= 0:
            return handled
        async with self._store.transaction() as uow:
            rows = await uow.outbox.due(
                now,
                self._settings.batch,
                in_doubt=False,
                skip_recipients=sorted(self._busy),
                urgent=False,
            )
            needed = await self._still_needed(uow, rows, now)
            touched = len(rows) - len(needed)
            jobs, planned = await self._plan(uow, needed, now, free)
            touched += planned
            await uow.outbox.mark_sending([job.row.id for job in jobs], now)
        for job in jobs:
            job = dataclasses.replace(job, row=_attempted(job.row, now))  # noqa: PLW2901
            self._start(tg, job.row.notification.recipient, partial(self._deliver, job))
        return handled + touched

    def _normal_free(self) -> int:
        """Free normal slots (urgent sends have their own)."""
        return self._settings.concurrency - (len(self._busy) - self._urgent_in_flight)

    def _start(
        self,
        tg: asyncio.TaskGroup,
        number: str,
        work: Callable[[], Coroutine[Any, Any, None]],
        urgent: bool = False,
    ) -> None:
        self._busy.add(number)
        if urgent:
            self._urgent_in_flight += 1
        tg.create_task(self._holding(number, work, urgent), name="outbox-send")

    async def _holding(
        self, number: str, work: Callable[[], Coroutine[Any, Any, None]], urgent: bool
    ) -> None:
        """Run one send or lookup while its number is marked busy.

        The send's coroutine is made here, not by the caller: a task cancelled before its
        first step (the gateway stopping) must not leave a coroutine that never ran.
        """
        try:
            await work()
        finally:
            self._busy.discard(number)
            if urgent:
                self._urgent_in_flight -= 1
            self._wake.set()
            self._urgent_wake.set()

    async def _still_needed(
        self, uow: UnitOfWork, rows: Sequence[OutboxRow], now: float
    ) -> list[OutboxRow]:
        """The rows to send; a call placed again after no answer is withdrawn instead.

        That is, when its ticket is no longer waiting: someone accepted it, or it was
        resolved meanwhile.
        """
        needed: list[OutboxRow] = []
        withdrawn: list[int] = []
        for row in rows:
            ticket_id = row.notification.ticket_id
            if row.origin_kind == "retry" and ticket_id is not None:
                ticket = await uow.tickets.get(ticket_id)
                if ticket is not None and ticket.status != "open":
                    withdrawn.append(row.id)
                    continue
            needed.append(row)
        if withdrawn:
            await uow.outbox.withdraw(withdrawn, "no longer needed: the ticket was taken", now)
            self._metrics.notifications.labels("voice", "withdrawn").inc(len(withdrawn))
        return needed

    # -- throttling and merging -----------------------------------------------------------

    async def _plan(
        self, uow: UnitOfWork, rows: Sequence[OutboxRow], now: float, free: int
    ) -> tuple[list[_Job], int]:
        """Up to `free` jobs of normal rows, one per number, and how many rows were acted on.

        They respect each number's limit (urgent sends count towards it) and are merged.
        """
        jobs: list[_Job] = []
        numbers: set[str] = set()
        groups: dict[tuple[str, str], list[OutboxRow]] = defaultdict(list)
        for row in rows:
            if row.notification.priority < URGENT:
                groups[(row.notification.recipient, row.notification.channel)].append(row)
        window = self._settings.throttle_window_s
        leaders: list[OutboxRow] = []
        touched = 0
        for (recipient, channel), group in groups.items():
            if recipient in numbers:
                continue  # one message at a time per number: the next round takes these
            sent = await uow.outbox.recent_sends(recipient, channel, now - window)
            if len(sent) >= self._settings.throttle_per_window:
                until = (sent[0] if sent else now) + window
                await uow.outbox.defer([r.id for r in group], until)
                self._metrics.notifications.labels(channel, "held_back").inc(len(group))
                touched += len(group)
                continue
            allowed_at = await self._carrier_allows(uow, recipient, channel, now)
            repeat_at = await self._identical_allowed_at(uow, group[0], now)
            if repeat_at is not None:
                allowed_at = repeat_at if allowed_at is None else max(allowed_at, repeat_at)
            if allowed_at is not None:
                await uow.outbox.defer([r.id for r in group], allowed_at)
                self._metrics.notifications.labels(channel, "carrier_limit").inc(len(group))
                touched += len(group)
                continue
            if len(jobs) + len(leaders) >= free:
                continue
            leader, rest = group[0], group[1:]
            if rest and self._merges(recipient):
                await uow.outbox.merge(leader.id, [r.id for r in rest], now)
                self._metrics.notifications.labels(channel, "merged").inc(len(rest))
                touched += len(rest)
            leaders.append(leader)
            numbers.add(recipient)
        members = await uow.outbox.merged_members([r.id for r in leaders])
        jobs.extend(_Job(r, tuple(members[r.id])) for r in leaders)
        return jobs, touched + len(jobs)

    async def _carrier_allows(
        self, uow: UnitOfWork, recipient: str, channel: str, now: float
    ) -> float | None:
        """When the carrier limits allow one more message to `recipient`; None if now."""
        at: float | None = None
        for limit in self._settings.carrier_limits:
            if limit.channel != channel:
                continue
            sent = await uow.outbox.recent_sends(recipient, channel, now - limit.window_s)
            if len(sent) >= limit.count:
                free_at = sent[len(sent) - limit.count] + limit.window_s
                at = free_at if at is None else max(at, free_at)
        return at

    async def _identical_allowed_at(
        self, uow: UnitOfWork, row: OutboxRow, now: float
    ) -> float | None:
        """When the same text may go to the same number again; None if now."""
        window = self._settings.identical_text_window_s
        n = row.notification
        if window <= 0:
            return None
        try:
            text = message_text(n)
        except TemplateError:
            return None
        sent = await uow.outbox.recent_texts(n.recipient, n.channel, now - window)
        same = [at for at, body in sent if body == text]
        return same[-1] + window if same else None

    def _merges(self, recipient: str) -> bool:
        """Whether messages to `recipient` may go as one digest.

        Not through a provider that sends approved templates only: a digest has none, so
        the messages go one by one instead.
        """
        can_merge = getattr(self._provider, "can_merge", None)
        return True if can_merge is None else bool(can_merge(recipient))

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
        follow_up = not job.members
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
            # when the send finishes at the same moment, and shutdown would then hang.
            async with asyncio.timeout(self._settings.send_timeout_s):
                receipt = await self._provider.send(message)
        except ProviderError as exc:
            error = f"{exc.code} {exc}".strip()
            if exc.operator_alarm:
                await self._alarm_operator(exc.code, error)
            if exc.permanent:
                await self._failed(row, error, bad_number=exc.bad_number, follow_up=follow_up)
            else:
                await self._attempt_failed(row, error, in_doubt=False, follow_up=follow_up)
            return
        except (TimeoutError, OSError) as exc:
            # The provider may have taken it before the answer was lost.
            await self._attempt_failed(row, repr(exc), in_doubt=True, follow_up=follow_up)
            return
        except Exception as exc:  # noqa: BLE001 - whatever a provider raises is a failed attempt
            # Nobody knows how far it got: look it up at the provider before sending again.
            error = f"unexpected {type(exc).__name__}: {exc}"
            await self._attempt_failed(row, error, in_doubt=True, follow_up=follow_up)
            return
        self._failed_in_row = 0
        async with self._store.transaction() as uow:
            sent = SentNotification(self._provider.name, receipt.provider_id, receipt.status, text)
            await uow.outbox.sent(row.id, sent, self._clock.now())
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
                    await uow.outbox.defer([row.id], resend_at)
                else:
                    await uow.outbox.resolved_doubt(row.id, self._clock.now())
            return
        except Exception as exc:  # noqa: BLE001 - whatever a provider raises is a failed attempt
            error = f"in-doubt lookup failed: {_reason(exc)}"
            await self._lookup_failed(row, error)
            return
        hook = None
        async with self._store.transaction() as uow:
            now = self._clock.now()
            found = await self._unclaimed(uow, row, items)
            if found is None:
                await uow.outbox.resolved_doubt(row.id, now)
            elif found.status in FINAL_DELIVERY:
                # Applied as its callback would be (a failed SMS falls back to a call, an
                # unanswered call is tried again), not only written down.
                sent = SentNotification(self._provider.name, found.provider_id, "queued", None)
                await uow.outbox.sent(row.id, sent, now)
                _, hook = await self._status_in(
                    uow, row.id, found.provider_id, found.status, now, bad_number=False
                )
            else:
                sent = SentNotification(self._provider.name, found.provider_id, found.status, None)
                await uow.outbox.sent(row.id, sent, now)
        self._failed_in_row = 0
        outcome = "resent" if found is None else "found_at_provider"
        self._metrics.notifications.labels(n.channel, outcome).inc()
        log.info("in-doubt notification settled", extra={"id": row.id, "outcome": outcome})
        self._run_hook(hook)

    async def _unclaimed(
        self, uow: UnitOfWork, row: OutboxRow, items: Sequence[SentItem]
    ) -> SentItem | None:
        """The provider's message for this row: one no other notification owns (same text)."""
        known = await uow.outbox.known_provider_ids([i.provider_id for i in items])
        expected = None
        if row.notification.channel == "sms":
            members = (await uow.outbox.merged_members([row.id]))[row.id]
            try:
                expected = message_text(row.notification, members)
            except TemplateError:
                return None
        mine = str(row.id)
        return next(
            (
                item
                for item in items
                if item.provider_id not in known
                and (
                    item.reference == mine
                    if item.reference is not None
                    else expected is None or item.body == expected
                )
            ),
            None,
        )

    async def _alarm_operator(self, code: str, error: str) -> None:
        """An operator alarm: the provider refused for a reason only an administrator mends."""
        async with self._store.transaction() as uow:
            await uow.devices.raise_alarm(
                "provider_refused", f"provider:{code or '-'}", error, self._clock.now()
            )
        self._metrics.operator_alarms.labels("provider_refused").inc()
        log.error("operator alarm: the provider refused", extra={"code": code, "error": error})

    def _backoff(self, attempts: int) -> float:
        growth = 2.0 ** max(0, attempts - 1)
        base = min(self._settings.retry_max_s, self._settings.retry_initial_s * growth)
        return base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security

    def _note_failure(self, error: str) -> None:
        self._failed_in_row += 1
        self._last_failure = error

    async def _attempt_failed(
        self, row: OutboxRow, error: str, *, in_doubt: bool, follow_up: bool
    ) -> None:
        """A send that did not go: retried with backoff, or quarantined on its last attempt."""
        self._note_failure(error)
        if row.attempts >= self._settings.max_attempts:
            await self._quarantine(row, error, follow_up=follow_up)
            return
        due = self._clock.now() + self._backoff(row.attempts)
        async with self._store.transaction() as uow:
            await uow.outbox.retry(row.id, due, error, self._clock.now(), in_doubt)
        self._metrics.notifications.labels(row.notification.channel, "retried").inc()
        log.warning("notification not sent, will retry", extra={"id": row.id, "error": error})

    async def _lookup_failed(self, row: OutboxRow, error: str) -> None:
        """An in-doubt lookup that failed uses an attempt, so a broken provider is bounded."""
        self._note_failure(error)
        attempted = _attempted(row, row.claimed_at)
        if attempted.attempts >= self._settings.max_attempts:
            async with self._store.transaction() as uow:
                members = (await uow.outbox.merged_members([row.id]))[row.id]
            await self._quarantine(attempted, error, follow_up=not members)
            return
        due = self._clock.now() + self._backoff(attempted.attempts)
        async with self._store.transaction() as uow:
            await uow.outbox.lookup_failed(row.id, due, error, self._clock.now())
        self._metrics.notifications.labels(row.notification.channel, "lookup_failed").inc()
        log.warning("in-doubt lookup failed", extra={"id": row.id, "error": error})

    async def _quarantine(self, row: OutboxRow, error: str, *, follow_up: bool) -> None:
        """Give up on a row that kept failing: failed with its reason, counted, shown."""
        n = row.notification
        now = self._clock.now()
        reason = f"quarantined after {row.attempts} attempts: {error}"
        hook = None
        async with self._store.transaction() as uow:
            await uow.outbox.quarantine(row.id, reason, now, row.attempts)
            if follow_up:
                hook = await self._after_final(
                    uow, row.id, n, row.origin_kind, bad_number=False, now=now
                )
        self._quarantines.append(now)
        self._metrics.notifications.labels(n.channel, "quarantined").inc()
        log.error(
            "notification quarantined",
            extra={"id": row.id, "channel": n.channel, "attempts": row.attempts, "error": error},
        )
        self._run_hook(hook)

    async def _failed(
        self, row: OutboxRow, error: str, *, bad_number: bool, follow_up: bool
    ) -> None:
        n = row.notification
        now = self._clock.now()
        hook = None
        async with self._store.transaction() as uow:
            await uow.outbox.failed(row.id, error, now, bad_number)
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
        async with self._store.transaction() as uow:
            applied, hook = await self._status_in(
                uow, notification_id, provider_id, state, self._clock.now(), bad_number=bad_number
            )
        self._run_hook(hook)
        return applied

    async def _status_in(
        self,
        uow: UnitOfWork,
        notification_id: int,
        provider_id: str,
        state: str,
        now: float,
        *,
        bad_number: bool,
    ) -> tuple[bool, OnCommit | None]:
        """`apply_status` inside a transaction: (applied, what to run once committed)."""
        record = await uow.outbox.delivery(notification_id, provider_id, state, now)
        if record is None:
            return False, None
        if record.status not in ("delivered", "failed"):
            return True, None
        n = record.notification
        if bad_number and n.contact_id is not None:
            await uow.grid.set_bad_number(n.contact_id)
        answered = record.status == "delivered" and (
            n.channel == "sms" or record.keypress is not None
        )
        if answered or record.merged:
            return True, None
        return True, await self._after_final(
            uow, notification_id, n, record.origin_kind, bad_number, now
        )

    async def message_text(self, notification_id: int) -> tuple[Notification, str] | None:
        """A notification and what its recipient reads or hears (a digest if merged)."""
        found = await self._store.outbox.with_members(notification_id)
        if found is None:
            return None
        notification, members = found
        return notification, message_text(notification, members)

    async def record_keypress(self, notification_id: int, digit: str) -> bool:
        """A person answered a call with a key: a human, not voicemail."""
        async with self._store.transaction() as uow:
            return await uow.outbox.keypress(notification_id, digit, self._clock.now())

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
            if not bad_number and not await uow.outbox.voice_twin_exists(notification_id):
                voice = dataclasses.replace(n, channel="voice")
                if await uow.outbox.enqueue_follow_up(notification_id, "fallback", voice, now):
                    self._metrics.notifications.labels("sms", "fallback_to_voice").inc()
                    return self.wake
            return None
        ticket = await uow.tickets.get(n.ticket_id) if n.ticket_id is not None else None
        still_needed = ticket is None or ticket.status == "open"
        if origin_kind != "retry" and still_needed and not bad_number:
            due = now + self._settings.call_retry_after_s
            if await uow.outbox.enqueue_follow_up(notification_id, "retry", n, due):
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


def _attempted(row: OutboxRow, at: float | None) -> OutboxRow:
    return dataclasses.replace(row, attempts=row.attempts + 1, claimed_at=at)


def _reason(exc: BaseException) -> str:
    """A short reason for a log line and the row: the provider's code, or the exception."""
    if isinstance(exc, ProviderError):
        return f"{exc.code} {exc}".strip()
    if isinstance(exc, (TimeoutError, OSError)):
        return repr(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
