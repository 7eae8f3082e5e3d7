"""A supervisor per long-lived part: restart with capped backoff, state visible and logged."""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.clock import Clock
from gateway.config import RuntimeSettings
from gateway.metrics import GatewayMetrics

log = logging.getLogger(__name__)

_ERROR_MAX = 300


class PartState(enum.StrEnum):
    """Where a supervised part is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    """It raised (or ended) and waits out its backoff before the next start."""
    FAILED = "failed"
    """It raised `failed_after` times in a row; it is still restarted at the capped backoff."""
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class PartStatus:
    """A snapshot of one part for /healthz and the logs."""

    name: str
    state: PartState
    restarts: int
    consecutive_failures: int
    last_error: str | None
    ingest: bool
    """Whether frames stop being acknowledged while this part is down."""


class PartSupervisor:
    """Runs one part; an unexpected exception or return restarts it after a backoff."""

    def __init__(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        clock: Clock,
        settings: RuntimeSettings,
        metrics: GatewayMetrics,
        *,
        ingest: bool = False,
    ) -> None:
        self.name = name
        self._run = run
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._ingest = ingest
        self._state = PartState.STARTING
        self._restarts = 0
        self._failures = 0
        self._last_error: str | None = None
        self._stopping = False
        self._publish(None)

    @property
    def state(self) -> PartState:
        """The part's current state."""
        return self._state

    def status(self) -> PartStatus:
        """A snapshot of the part."""
        return PartStatus(
            self.name,
            self._state,
            self._restarts,
            self._failures,
            self._last_error,
            self._ingest,
        )

    def stop(self) -> None:
        """The gateway is stopping: a part that ends now has stopped, not failed."""
        self._stopping = True

    async def run(self) -> None:
        """Run the part until cancelled or, while stopping, until it ends."""
        delay = self._settings.restart_initial_s
        try:
            while True:
                self._set(PartState.RUNNING)
                started = self._clock.now()
                try:
                    await self._run()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure of a part is restarted
                    error = f"{type(exc).__name__}: {exc}"[:_ERROR_MAX]
                    failure: BaseException | None = exc
                else:
                    if self._stopping:
                        return
                    error, failure = "ended unexpectedly", None
                if self._stopping:
                    log.warning(
                        "part failed while stopping", extra={"part": self.name, "error": error}
                    )
                    return
                if self._clock.now() - started >= self._settings.stable_after_s:
                    self._failures, delay = 0, self._settings.restart_initial_s
                self._failures += 1
                self._last_error = error
                failed = self._failures >= self._settings.failed_after
                self._set(PartState.FAILED if failed else PartState.RESTARTING, failure, delay)
                await self._clock.sleep(delay)
                delay = min(delay * 2, self._settings.restart_max_s)
                self._restarts += 1
                self._metrics.part_restarts.labels(self.name).inc()
        finally:
            self._set(PartState.STOPPED)

    def _set(
        self, state: PartState, failure: BaseException | None = None, delay: float = 0.0
    ) -> None:
        if state is self._state and failure is None:
            return
        previous, self._state = self._state, state
        self._publish(previous)
        fields: dict[str, object] = {
            "part": self.name,
            "state": state.value,
            "previous": previous.value,
        }
        if state in (PartState.RESTARTING, PartState.FAILED):
            fields |= {
                "error": self._last_error or "",
                "failures": self._failures,
                "restart_in_s": delay,
            }
            log.error("part %s: %s", self.name, state.value, extra=fields, exc_info=failure)
        else:
            log.info("part %s: %s", self.name, state.value, extra=fields)

    def _publish(self, previous: PartState | None) -> None:
        if previous is not None:
            self._metrics.part_state.labels(self.name, previous.value).set(0)
        else:
            for state in PartState:
                self._metrics.part_state.labels(self.name, state.value).set(0)
        self._metrics.part_state.labels(self.name, self._state.value).set(1)
