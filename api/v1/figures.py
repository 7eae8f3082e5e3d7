"""Alarms, statistics, the rules in force, and each household's water watch."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from api.v1.auth import ClientDep, FacadeDep, PrincipalDep
from api.v1.errors import ApiError, responses
from api.v1.models import (
    Alarms,
    AwayBody,
    SettingsOut,
    Statistics,
    WaterRequestOut,
    WaterWatch,
    alarm_out,
    ticket_out,
)
from gateway.application import TicketStatus, WaterRequest

LIVE = (TicketStatus.OPEN, TicketStatus.ACCEPTED, TicketStatus.ON_SITE)


def plain(value: Any) -> Any:
    """A JSON-ready copy: dataclasses as dicts, sets as sorted lists, non-finite floats null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _request_out(r: WaterRequest) -> WaterRequestOut:
    return WaterRequestOut(
        household_code=r.household_code or "",
        action=r.action,
        until=r.until,
        requested_at=r.requested_at,
    )


def figures_router() -> APIRouter:
    """GET /alarms, /statistics, /settings, /households/{code}/water; POST/DELETE away."""
    router = APIRouter(tags=["figures"])

    @router.get("/alarms", response_model=Alarms, responses=responses("forbidden"))
    async def alarms(
        principal: PrincipalDep,
        application: FacadeDep,
        cleared: Annotated[bool, Query(description="include cleared operator alarms")] = False,
    ) -> Alarms:
        """Open operator alarms about devices in scope, and live water alarm tickets."""
        operator = (
            await application.scoped_alarms(principal, cleared=cleared)
            if principal.may("read_alarms")
            else []
        )
        water = (
            await application.scoped_tickets(
                principal, statuses=LIVE, kinds=("no_water", "leak"), days=None
            )
            if principal.may("read_tickets")
            else []
        )
        if not principal.may("read_alarms") and not principal.may("read_tickets"):
            raise ApiError("forbidden")
        return Alarms(
            operator=[alarm_out(a) for a in operator], water=[ticket_out(t) for t in water]
        )

    @router.get("/statistics", response_model=Statistics, responses=responses("forbidden"))
    async def statistics(
        principal: PrincipalDep,
        application: FacadeDep,
        days: Annotated[float, Query(gt=0, le=3660)] = 30.0,
    ) -> Statistics:
        """Warning colours now; statistics, chiefs' cards and water alarms over `days` days."""
        report = await application.scoped_report(principal, days)
        return Statistics(
            start=report.start,
            end=report.end,
            days=report.days,
            timezone=report.timezone,
            colours=plain(report.colours),
            statistics=plain(report.statistics),
            cards=plain(report.cards),
            alarms=plain(report.alarms),
            broken_promises=plain(report.broken_promises),
            unused_boxes=list(report.unused_boxes),
        )

    @router.get("/settings", response_model=SettingsOut, responses=responses("forbidden"))
    async def settings(principal: PrincipalDep, application: FacadeDep) -> SettingsOut:
        """The ticket rules (chains, clocks) and the water watch's windows in force."""
        if not principal.may("read_settings"):
            raise ApiError("forbidden")
        s = application.settings
        return SettingsOut(
            timezone=s.tickets.timezone,
            tickets=s.tickets.model_dump(mode="json"),
            water=s.water.model_dump(mode="json"),
        )

    @router.get(
        "/households/{code}/water",
        response_model=WaterWatch,
        responses=responses("forbidden", "not_found"),
    )
    async def water(code: str, principal: PrincipalDep, application: FacadeDep) -> WaterWatch:
        """The watch: running or not, the day's first use, open alarms and who has them."""
        view = await application.scoped_watch(principal, code)
        open_alarms = await application.scoped_tickets(
            principal, statuses=LIVE, kinds=("no_water", "leak"), household=code, days=None
        )
        watch = view.watch
        first = None
        if watch is not None and watch.today is not None and watch.today.first_use_min is not None:
            minute = watch.today.first_use_min
            first = f"{minute // 60:02d}:{minute % 60:02d}"
        zone = ZoneInfo(application.settings.tickets.timezone)
        log = None
        if principal.role != "family":
            log = [
                {
                    "at": line.at,
                    "local": datetime.fromtimestamp(line.at, zone).isoformat(),
                    "kind": line.kind,
                    "detail": line.detail,
                }
                for line in view.log
            ]
        return WaterWatch(
            household_code=view.household_code,
            watched=view.watched,
            reason=view.reason,
            resident=view.resident,
            meter=view.meter,
            phase=None if watch is None else watch.phase.value,
            last_reading_at=view.last_reading_at,
            today_first_use=first,
            away_until=None if watch is None else watch.away_until,
            window_s=view.window_s,
            open_alarms=[ticket_out(t) for t in open_alarms],
            log=log,
        )

    @router.post(
        "/households/{code}/water/away",
        response_model=WaterRequestOut,
        status_code=202,
        responses=responses("forbidden", "not_found", "water_refused"),
    )
    async def away(
        code: str,
        body: AwayBody,
        principal: PrincipalDep,
        application: FacadeDep,
        client: ClientDep,
    ) -> WaterRequestOut:
        """Mark the home away until a time: no zero-use alarm until then (queued)."""
        return _request_out(await application.scoped_mark_away(principal, code, body.until, client))

    @router.delete(
        "/households/{code}/water/away",
        response_model=WaterRequestOut,
        status_code=202,
        responses=responses("forbidden", "not_found", "water_refused"),
    )
    async def clear_away(
        code: str, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> WaterRequestOut:
        """End away mode now (queued)."""
        return _request_out(await application.scoped_clear_away(principal, code, client))

    return router
