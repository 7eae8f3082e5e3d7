"""What /healthz says: each part's real state, and whether the gateway can do its job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.errors import StoreError
from gateway.runtime.supervisor import PartState, PartStatus

HealthStatus = Literal["ok", "degraded", "failing"]


class StoreProbe:
    """Begins and commits an empty write transaction, with at most one probe in flight."""

    def __init__(
        self, begin: Callable[[], AbstractAsyncContextManager[object]], timeout_s: float
    ) -> None:
        self._begin = begin
        self._timeout = timeout_s
        self._task: asyncio.Task[str | None] | None = None

    async def check(self) -> str | None:
        """None when the store took a write; otherwise what is wrong."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._probe(), name="store-probe")
        try:
            async with asyncio.timeout(self._timeout):
                return await asyncio.shield(self._task)
        except TimeoutError:
            return f"store did not begin a write within {self._timeout:g} s"

    async def _probe(self) -> str | None:
        try:
            async with self._begin():
                pass
        except (StoreError, OSError) as exc:
            return f"store cannot write: {exc}"
        return None

    async def close(self) -> None:
        """Wait for (or cancel) a probe still in flight."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass(frozen=True, slots=True)
class Health:
    """The health report; `serving` is False when boxes are not being acknowledged."""

    status: HealthStatus
    problems: tuple[str, ...]
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def serving(self) -> bool:
        """Whether /healthz answers 200 (ok or degraded) rather than 503."""
        return self.status != "failing"


def assess(
    *,
    parts: Iterable[PartStatus],
    mqtt: dict[str, Any] | None,
    serial: dict[str, bool],
    store_error: str | None,
    outbox_degraded: str | None,
    quarantined_deadlines: int,
    worst_loop_lag_s: float,
) -> Health:
    """Judge the gateway from its parts: failing stops acks, degraded stops something else."""
    failing: list[str] = []
    degraded: list[str] = []
    part_bodies: dict[str, Any] = {}
    for part in parts:
        part_bodies[part.name] = {
            "state": part.state.value,
            "restarts": part.restarts,
            "last_error": part.last_error,
        }
        if part.state in (PartState.RUNNING, PartState.STARTING, PartState.STOPPED):
            continue
        problem = f"part {part.name} is {part.state.value}: {part.last_error}"
        (failing if part.ingest else degraded).append(problem)
    if mqtt is not None and not mqtt["connected"]:
        failing.append(f"no link to the MQTT broker at {mqtt['broker']}")
    degraded.extend(f"serial line {name} is not open" for name, up in serial.items() if not up)
    if store_error is not None:
        failing.append(store_error)
    if outbox_degraded is not None:
        degraded.append(f"outbox degraded: {outbox_degraded}")
    status: HealthStatus = "failing" if failing else "degraded" if degraded else "ok"
    problems = (*failing, *degraded)
    body: dict[str, Any] = {
        "status": status,
        "problems": list(problems),
        "parts": part_bodies,
        "mqtt": mqtt,
        "serial": {name: {"open": up} for name, up in serial.items()},
        "store": {"writable": store_error is None, "error": store_error},
        "outbox": {"degraded_reason": outbox_degraded},
        "scheduler": {
            "state": part_bodies.get("scheduler", {}).get("state"),
            "quarantined_deadlines": quarantined_deadlines,
        },
        "loop_lag": {"worst_recent_s": round(worst_loop_lag_s, 6)},
    }
    return Health(status, problems, body)
