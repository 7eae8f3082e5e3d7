"""Boxes and meters in the reader's units; attaching a box to a household."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.v1.auth import ClientDep, FacadeDep, PrincipalDep
from api.v1.errors import responses
from api.v1.models import AttachBody, Device, DevicePage, device_out
from api.v1.paging import LimitQuery, OffsetQuery, page


def devices_router() -> APIRouter:
    """GET /devices, /devices/{id}; POST /devices/{id}/attach."""
    router = APIRouter(tags=["devices"])

    @router.get("/devices", response_model=DevicePage, responses=responses("forbidden"))
    async def devices(
        principal: PrincipalDep,
        application: FacadeDep,
        kind: Annotated[Literal["call_box", "water_meter"] | None, Query()] = None,
        status: Annotated[Literal["online", "offline", "unknown"] | None, Query()] = None,
        offset: OffsetQuery = 0,
        limit: LimitQuery = 100,
    ) -> DevicePage:
        """A page of the devices in the reader's units, by id (never their keys)."""
        found = await application.scoped_devices(principal, kind=kind, status=status)
        return page(DevicePage, found, device_out, offset, limit)

    @router.get(
        "/devices/{device_id}",
        response_model=Device,
        responses=responses("forbidden", "not_found"),
    )
    async def device(device_id: str, principal: PrincipalDep, application: FacadeDep) -> Device:
        """One device in the reader's units."""
        return device_out(await application.scoped_device(principal, device_id))

    @router.post(
        "/devices/{device_id}/attach",
        response_model=Device,
        responses=responses("forbidden", "not_found", "device_refused"),
    )
    async def attach(
        device_id: str,
        body: AttachBody,
        principal: PrincipalDep,
        application: FacadeDep,
        client: ClientDep,
    ) -> Device:
        """Attach a box with no household to a household; both must be in the reader's units."""
        await application.scoped_attach_device(principal, device_id, body.household_code, client)
        return device_out(await application.scoped_device(principal, device_id))

    return router
