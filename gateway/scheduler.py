"""One scheduler serving every deadline row in due order."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.clock import Clock, polled, sleep_until_or_woken
from gateway.errors import ConflictError, StoreError
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Deadline, Store, UnitOfWork

log = logging.getLogger(__name__)


class DeadlineHandler(Protocol):
    """Acts on due deadlines of one kind inside the scheduler's transaction."""

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        """Handle the deadlines (they are cleared unless re-set here); return an on-commit hook."""
        ...


_REASON_MAX = 500
DEFAULT_POLL_S = 5.0
"""How often the scheduler looks for deadlines set by another process."""


def _store_failed(exc: Exception) -> bool:
    """Whether the store itself failed: not a deadline's fault, so the round is retried whole.

    A write that conflicts with stored rows is the handler's fault, like any other exception.
    """
    return isinstance(exc, StoreError | OSError) and not isinstance(exc, ConflictError)


class DeadlineScheduler:
    """Sleeps until the earliest deadline on the injected clock, then hands due rows out.

    A deadline whose handler raises is retried later (backoff doubling from `retry_s`) and,
    after `max_attempts`, quarantined: removed, recorded with its reason, counted, logged.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        batch: int = 500,
        *,
        max_attempts: int = 5,
        retry_s: float = 5.0,
        metrics: GatewayMetrics | None = None,
        poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        self._store = store
        self._poll_s = poll_s
        self._clock = clock
        self._batch = batch
        self._max_attempts = max_attempts
        self._retry_s = retry_s
        self._metrics = metrics
        self._handlers: dict[str, DeadlineHandler] = {}
        self._wake = asyncio.Event()
        self._next_due = math.inf
        self.rounds = 0
        self.quarantined = 0
        """Deadlines quarantined so far (read from the store when `run` starts)."""

    def register(self, kind: str, handler: DeadlineHandler) -> None:
        """Route deadlines of `kind` to `handler`."""
        self._handlers[kind] = handler

    def notify(self, due_at: float) -> None:
        """A deadline at `due_at` was set; wake up if it is earlier than the one awaited."""
        if due_at < self._next_due:
            self._wake.set()

    async def run(self) -> None:
        """Serve deadlines until cancelled; a failing store ends it (its supervisor restarts it)."""
        self.quarantined = await self._store.deadlines.quarantined_count()
        while True:
            await self._round()

    async def _round(self) -> None:
        self._wake.clear()
        now = self._clock.now()
        next_due = await self._store.deadlines.next_at()
        if next_due is not None and next_due <= now:
            await self.fire_due(now)
            return
        self._next_due = math.inf if next_due is None else next_due
        # Deadlines set by another process (the command line) wake nobody: look again soon.
        await sleep_until_or_woken(
            self._clock, polled(self._clock, next_due, self._poll_s), self._wake
        )

    async def fire_due(self, now: float) -> int:
        """Handle every deadline due at `now`, in batches; returns how many were handled."""
        handled = 0
        while True:
            try:
                count = await self._fire_batch(now)
            except Exception as exc:
                if _store_failed(exc):
                    raise
                log.warning("a deadline handler raised; handling deadlines one at a time")
                count = await self._fire_isolating(now)
            handled += count
            self.rounds += 1
            if count < self._batch:
                break
        return handled

    async def _fire_batch(self, now: float) -> int:
        """One transaction for up to `batch` due deadlines; raises what a handler raised."""
        hooks: list[Callable[[], None]] = []
        async with self._store.transaction() as uow:
            due = await uow.deadlines.due(now, self._batch)
            if not due:
                return 0
            by_kind: dict[str, list[Deadline]] = defaultdict(list)
            for deadline in due:
                by_kind[deadline.kind].append(deadline)
            await uow.deadlines.clear([(d.kind, d.subject) for d in due])
            for kind, items in by_kind.items():
                hook = await self._handle(uow, kind, items, now)
                if hook is not None:
                    hooks.append(hook)
        self._run_hooks(hooks)
        return len(due)

    async def _fire_isolating(self, now: float) -> int:
        """Up to `batch` due deadlines, one transaction each, so one bad row fails alone."""
        handled = 0
        for _ in range(self._batch):
            deadline: Deadline | None = None
            try:
                async with self._store.transaction() as uow:
                    due = await uow.deadlines.due(now, 1)
                    if not due:
                        break
                    deadline = due[0]
                    await uow.deadlines.clear([(deadline.kind, deadline.subject)])
                    hook = await self._handle(uow, deadline.kind, due, now)
            except Exception as exc:
                if deadline is None or _store_failed(exc):
                    raise
                await self._failed(deadline, exc, now)
            else:
                self._run_hooks([hook] if hook is not None else [])
            handled += 1
        return handled

    async def _handle(
        self, uow: UnitOfWork, kind: str, deadlines: list[Deadline], now: float
    ) -> Callable[[], None] | None:
        handler = self._handlers.get(kind)
        if handler is None:
            log.error("no handler for deadline kind", extra={"kind": kind})
            return None
        return await handler.on_due(uow, deadlines, now)

    async def _failed(self, deadline: Deadline, exc: Exception, now: float) -> None:
        """Count a failed attempt: retry later, or quarantine after the last attempt."""
        reason = f"{type(exc).__name__}: {exc}"[:_REASON_MAX]
        retry_at: float | None = None
        async with self._store.transaction() as uow:
            attempts = await uow.deadlines.record_failure(deadline, reason, now)
            if attempts >= self._max_attempts:
                await uow.deadlines.quarantine(deadline)
            else:
                retry_at = now + self._retry_s * 2 ** (attempts - 1)
                await uow.deadlines.set([Deadline(deadline.kind, deadline.subject, retry_at)])
        fields = {
            "kind": deadline.kind,
            "subject": deadline.subject,
            "attempts": attempts,
            "reason": reason,
        }
        if retry_at is None:
            self.quarantined += 1
            log.error("deadline quarantined after its handler kept failing", extra=fields)
        else:
            log.warning("deadline handler failed; retrying later", extra=fields, exc_info=exc)
            self.notify(retry_at)
        if self._metrics is not None:
            outcome = "retry" if retry_at is not None else "quarantined"
            self._metrics.deadline_failures.labels(deadline.kind, outcome).inc()

    def _run_hooks(self, hooks: list[Callable[[], None]]) -> None:
        """On-commit hooks only update memory; one that raises is logged, the rest still run."""
        for hook in hooks:
            try:
                hook()
            except Exception:
                log.exception("deadline on-commit hook failed")
