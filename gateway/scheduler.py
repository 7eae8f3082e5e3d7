"""One scheduler serving every deadline row in due order."""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

from gateway.clock import Clock, sleep_until_or_woken
from gateway.errors import StoreError
from gateway.store import Deadline, Store, UnitOfWork

log = logging.getLogger(__name__)


class DeadlineHandler(Protocol):
    """Acts on due deadlines of one kind inside the scheduler's transaction."""

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        """Handle the deadlines (they are cleared unless re-set here); return an on-commit hook."""
        ...


class DeadlineScheduler:
    """Sleeps until the earliest deadline on the injected clock, then hands due rows out."""

    def __init__(self, store: Store, clock: Clock, batch: int = 500) -> None:
        self._store = store
        self._clock = clock
        self._batch = batch
        self._handlers: dict[str, DeadlineHandler] = {}
        self._wake = asyncio.Event()
        self._next_due = math.inf
        self.rounds = 0

    def register(self, kind: str, handler: DeadlineHandler) -> None:
        """Route deadlines of `kind` to `handler`."""
        self._handlers[kind] = handler

    def notify(self, due_at: float) -> None:
        """A deadline at `due_at` was set; wake up if it is earlier than the one awaited."""
        if due_at < self._next_due:
            self._wake.set()

    async def run(self) -> None:
        """Serve deadlines until cancelled."""
        while True:
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except (sqlite3.Error, StoreError, OSError):
                log.exception("deadline round failed; retrying")
                await asyncio.sleep(1.0)

    async def _round(self) -> None:
        self._wake.clear()
        now = self._clock.now()
        next_due = await self._store.next_deadline_at()
        if next_due is not None and next_due <= now:
            await self.fire_due(now)
            return
        self._next_due = math.inf if next_due is None else next_due
        await sleep_until_or_woken(self._clock, next_due, self._wake)

    async def fire_due(self, now: float) -> int:
        """Handle every deadline due at `now`, in batches; returns how many were handled."""
        handled = 0
        while True:
            hooks: list[Callable[[], None]] = []
            async with self._store.transaction() as uow:
                due = await uow.due_deadlines(now, self._batch)
                if not due:
                    break
                by_kind: dict[str, list[Deadline]] = defaultdict(list)
                for deadline in due:
                    by_kind[deadline.kind].append(deadline)
                await uow.clear_deadlines([(d.kind, d.subject) for d in due])
                for kind, items in by_kind.items():
                    handler = self._handlers.get(kind)
                    if handler is None:
                        log.error("no handler for deadline kind", extra={"kind": kind})
                        continue
                    hook = await handler.on_due(uow, items, now)
                    if hook is not None:
                        hooks.append(hook)
            for hook in hooks:
                hook()
            handled += len(due)
            self.rounds += 1
            if len(due) < self._batch:
                break
        return handled
