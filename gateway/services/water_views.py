"""The water watch as people ask for it: is a household watched and why, and away requests.

Works over the store alone, so `bidao household ...` runs beside a running gateway (or
without one). A request is queued in the store (`water_requests`); the running gateway's
water service applies it within `water.requests_poll_s` (`WaterService.apply_requests`),
or at its next start. Refusals that can be known here are made here, plainly: an unknown
household, one that is not watched, a return time already past, clearing a home that is
not marked away.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.config import Settings
from gateway.domain.water import WaterWatch, window_of
from gateway.errors import GatewayError
from gateway.services.water import is_away
from gateway.store.ports import Store, WaterLogLine, WaterRequest

WatchReason = Literal["lives_alone", "opted_in", "no_household", "not_alone", "no_meter", "off"]
"""Why a household is watched (the first two) or not (the others)."""

LOG_LINES = 12
"""How many of the newest water-watch record lines `household show` gives."""


class WaterRequestError(GatewayError):
    """An away request that cannot be made; `reason` names which refusal it is."""

    def __init__(self, reason: str, message: str, household: str, detail: str = "") -> None:
        super().__init__(message)
        self.reason = reason
        self.household = household
        self.detail = detail
        """For "not_watched": why not (a WatchReason)."""


@dataclass(frozen=True, slots=True)
class WatchView:
    """One household's water watch as the secretary reads it."""

    household_code: str
    watched: bool
    reason: WatchReason
    resident: str | None
    meter: str | None
    watch: WaterWatch | None
    """The stored watch (None: no reading yet since it became watched)."""
    last_reading_at: float | None
    """When its meter was last heard."""
    window_s: float
    """The window today: the learned one, or the fixed one."""
    learn_min_days: int
    log: list[WaterLogLine]
    pending: list[WaterRequest]
    """Requests the running gateway has not applied yet, oldest first."""


class WaterViews:
    """Queries and away requests over the store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def view(self, household_code: str) -> WatchView:
        """The household's watch; WaterRequestError("unknown_household") if there is none."""
        grid = self._store.grid
        households = await grid.households_by_code([household_code])
        if not households:
            raise WaterRequestError(
                "unknown_household", f"no household {household_code}", household_code
            )
        residents = await grid.residents_of([household_code])
        meters = sorted(
            (d for d in await grid.devices_of([household_code]) if d.kind == "water_meter"),
            key=lambda d: d.device_id,
        )
        reason: WatchReason
        if not self._settings.water.enabled:
            reason = "off"
        elif not meters:
            reason = "no_meter"
        elif any(r.lives_alone for r in residents):
            reason = "lives_alone"
        elif household_code in self._settings.water.watch_households:
            reason = "opted_in"
        else:
            reason = "not_alone"
        watch = await self._store.water.watch(household_code)
        heard = [d.last_seen for d in meters if d.last_seen is not None]
        last = max(heard) if heard else None
        if watch is not None and watch.last_reading_at is not None:
            last = max(last or 0.0, watch.last_reading_at)
        rules = self._settings.water.rules()
        requests = await self._store.water.requests(household_code)
        return WatchView(
            household_code=household_code,
            watched=reason in ("lives_alone", "opted_in"),
            reason=reason,
            resident=min(residents, key=lambda r: r.id or 0).name if residents else None,
            meter=meters[0].device_id if meters else None,
            watch=watch,
            last_reading_at=last,
            window_s=window_of(watch, rules) if watch is not None else rules.window_s,
            learn_min_days=rules.learn_min_days,
            log=await self._store.water.log(household_code, LOG_LINES),
            pending=[r for r in requests if r.done_at is None],
        )

    async def request_away(
        self, household_code: str, until: float, now: float, by_contact: int | None, channel: str
    ) -> WaterRequest:
        """Queue "away until `until`"; WaterRequestError if it cannot be."""
        view = await self._watched(household_code)
        if until <= now:
            raise WaterRequestError(
                "past", f"the return time for {household_code} has passed", view.household_code
            )
        return await self._queue(
            WaterRequest(household_code, "away", now, until, by_contact, channel)
        )

    async def request_clear(self, household_code: str, now: float, channel: str) -> WaterRequest:
        """Queue the end of away mode; WaterRequestError if the home is not marked away."""
        view = await self._watched(household_code)
        away = view.watch is not None and is_away(view.watch, now)
        if not away and not any(r.action == "away" for r in view.pending):
            raise WaterRequestError(
                "not_away", f"household {household_code} is not marked away", household_code
            )
        return await self._queue(WaterRequest(household_code, "clear", now, channel=channel))

    async def request_recheck(self, now: float, channel: str) -> None:
        """After a grid import: the running gateway looks again at which homes it watches."""
        await self._queue(WaterRequest(None, "recheck", now, channel=channel))

    async def _watched(self, household_code: str) -> WatchView:
        view = await self.view(household_code)
        if not view.watched:
            raise WaterRequestError(
                "not_watched",
                f"household {household_code} is not watched ({view.reason})",
                household_code,
                view.reason,
            )
        return view

    async def _queue(self, request: WaterRequest) -> WaterRequest:
        async with self._store.transaction() as uow:
            request_id = await uow.water.add_request(request)
        return WaterRequest(
            request.household_code,
            request.action,
            request.requested_at,
            request.until,
            request.by_contact,
            request.channel,
            request_id,
        )
