"""The grid, households with their residents, and contacts, as the reader may see them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.v1.auth import FacadeDep, PrincipalDep
from api.v1.errors import responses
from api.v1.models import (
    ContactPage,
    Household,
    HouseholdPage,
    Resident,
    Unit,
    contact_out,
    household_out,
    unit_out,
)
from api.v1.paging import LimitQuery, OffsetQuery, page

UnitQuery = Annotated[str | None, Query(max_length=40, description="only under this unit")]


def grid_router() -> APIRouter:
    """GET /units, /households, /households/{code}, /households/{code}/residents, /contacts."""
    router = APIRouter(tags=["grid"])

    @router.get("/units", response_model=list[Unit], responses=responses("forbidden"))
    async def units(principal: PrincipalDep, application: FacadeDep) -> list[Unit]:
        """The grid units the reader answers for, and every unit below them, by code."""
        return [unit_out(u) for u in await application.scoped_units(principal)]

    @router.get(
        "/households",
        response_model=HouseholdPage,
        responses=responses("forbidden", "not_found"),
    )
    async def households(
        principal: PrincipalDep,
        application: FacadeDep,
        unit: UnitQuery = None,
        q: Annotated[
            str | None,
            Query(max_length=40, description="code, address or a resident's name contains"),
        ] = None,
        lives_alone: Annotated[bool | None, Query(description="someone lives alone")] = None,
        after: Annotated[
            str | None, Query(max_length=40, description="the previous page's next_after")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> HouseholdPage:
        """A page of households in scope, by code, with their residents."""
        page = await application.scoped_households(
            principal, unit=unit, text=q, lives_alone=lives_alone, after=after, limit=limit
        )
        return HouseholdPage(
            items=[household_out(e) for e in page.items],
            total=page.total,
            next_after=page.next_after,
        )

    @router.get(
        "/households/{code}",
        response_model=Household,
        responses=responses("forbidden", "not_found"),
    )
    async def household(code: str, principal: PrincipalDep, application: FacadeDep) -> Household:
        """One household and its residents (private fields only for those who may see them)."""
        return household_out(await application.scoped_household(principal, code))

    @router.get(
        "/households/{code}/residents",
        response_model=list[Resident],
        responses=responses("forbidden", "not_found"),
    )
    async def residents(
        code: str, principal: PrincipalDep, application: FacadeDep
    ) -> list[Resident]:
        """The residents of one household."""
        return household_out(await application.scoped_household(principal, code)).residents

    @router.get(
        "/contacts",
        response_model=ContactPage,
        responses=responses("forbidden", "not_found"),
    )
    async def contacts(
        principal: PrincipalDep,
        application: FacadeDep,
        unit: UnitQuery = None,
        offset: OffsetQuery = 0,
        limit: LimitQuery = 100,
    ) -> ContactPage:
        """A page of the contacts of the units and households in scope, by id."""
        found = await application.scoped_contacts(principal, unit)
        return page(ContactPage, found, contact_out, offset, limit)

    return router
