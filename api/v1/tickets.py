"""Tickets: lists with filters and pages, one ticket's timeline, and the actions on it.

The actions are the domain's own (the same as a keypress, the box and the responder's page),
so a dashboard and a phone race safely: the first to accept owns the ticket, the other is
told who did. The acting user must be linked to a responder contact.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.v1.auth import ClientDep, FacadeDep, PrincipalDep
from api.v1.errors import responses
from api.v1.models import (
    AcceptOut,
    ClassifyBody,
    Done,
    KindName,
    LabelBody,
    Message,
    NoteBody,
    ReassignBody,
    ResolveBody,
    StatusName,
    TicketDetail,
    TicketPage,
    message_out,
    ticket_out,
    timeline_out,
)
from api.v1.paging import LimitQuery, OffsetQuery, page
from gateway.application import TicketStatus

TicketId = Annotated[int, Path(ge=1, le=2**62)]
ACTION_REFUSALS = ("forbidden", "not_found", "no_contact", "ticket_conflict", "not_running")


def tickets_router() -> APIRouter:
    """GET /tickets, /tickets/{id}, /tickets/{id}/notifications; POST the actions."""
    router = APIRouter(tags=["tickets"])

    @router.get(
        "/tickets", response_model=TicketPage, responses=responses("forbidden", "not_found")
    )
    async def tickets(
        principal: PrincipalDep,
        application: FacadeDep,
        status: Annotated[list[StatusName] | None, Query()] = None,
        kind: Annotated[list[KindName] | None, Query()] = None,
        village: Annotated[str | None, Query(max_length=40, description="village code")] = None,
        household: Annotated[str | None, Query(max_length=40)] = None,
        days: Annotated[
            float | None,
            Query(gt=0, le=3660, description="also closed tickets opened in this many days"),
        ] = 7.0,
        offset: OffsetQuery = 0,
        limit: LimitQuery = 50,
    ) -> TicketPage:
        """Live tickets in scope and those opened in the last `days` days, newest first."""
        found = await application.scoped_tickets(
            principal,
            statuses=tuple(TicketStatus(s) for s in status or ()),
            kinds=tuple(kind or ()),
            village=village,
            household=household,
            days=days,
        )
        return page(TicketPage, found, ticket_out, offset, limit)

    @router.get(
        "/tickets/{ticket_id}",
        response_model=TicketDetail,
        responses=responses("forbidden", "not_found"),
    )
    async def ticket(
        ticket_id: TicketId, principal: PrincipalDep, application: FacadeDep
    ) -> TicketDetail:
        """One ticket with its whole story: presses, calls, who answered what, arrival, rating."""
        timeline = await application.scoped_timeline(principal, ticket_id)
        items = [timeline_out(i) for i in timeline.items]
        if principal.role == "family":
            items = [i for i in items if i.kind != "message"]  # not the call log
        return TicketDetail(
            ticket=ticket_out(timeline.ticket), places=list(timeline.places), timeline=items
        )

    @router.get(
        "/tickets/{ticket_id}/notifications",
        response_model=list[Message],
        responses=responses("forbidden", "not_found"),
    )
    async def notifications(
        ticket_id: TicketId, principal: PrincipalDep, application: FacadeDep
    ) -> list[Message]:
        """The SMS and calls sent about the ticket, with delivery and keypresses."""
        return [
            message_out(m) for m in await application.scoped_notifications(principal, ticket_id)
        ]

    @router.post(
        "/tickets/{ticket_id}/accept",
        response_model=AcceptOut,
        responses=responses(*ACTION_REFUSALS),
    )
    async def accept(
        ticket_id: TicketId, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> AcceptOut:
        """Take the ticket; if someone was first, `won` is false and says who owns it."""
        result = await application.user_accept(principal, ticket_id, client)
        return AcceptOut(won=result.won, owner_contact_id=result.owner_contact_id)

    @router.post(
        "/tickets/{ticket_id}/arrive", response_model=Done, responses=responses(*ACTION_REFUSALS)
    )
    async def arrive(
        ticket_id: TicketId, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> Done:
        """The owner is at the resident's home."""
        await application.user_arrive(principal, ticket_id, client)
        return Done(ticket_id=ticket_id)

    @router.post(
        "/tickets/{ticket_id}/classify",
        response_model=Done,
        responses=responses(*ACTION_REFUSALS),
    )
    async def classify(
        ticket_id: TicketId,
        body: ClassifyBody,
        principal: PrincipalDep,
        application: FacadeDep,
        client: ClientDep,
    ) -> Done:
        """Set the kind of matter, which starts its day clock."""
        await application.user_classify(principal, ticket_id, body.category, client)
        return Done(ticket_id=ticket_id)

    @router.post(
        "/tickets/{ticket_id}/note", response_model=Done, responses=responses(*ACTION_REFUSALS)
    )
    async def note(
        ticket_id: TicketId,
        body: NoteBody,
        principal: PrincipalDep,
        application: FacadeDep,
        client: ClientDep,
    ) -> Done:
        """Add a short note to the ticket's record."""
        await application.user_note(principal, ticket_id, body.text, client)
        return Done(ticket_id=ticket_id)

    @router.post(
        "/tickets/{ticket_id}/resolve",
        response_model=Done,
        responses=responses(*ACTION_REFUSALS, "not_an_alarm", "bad_outcome"),
    )
    async def resolve(
        ticket_id: TicketId,
        body: ResolveBody,
        principal: PrincipalDep,
        application: FacadeDep,
        client: ClientDep,
    ) -> Done:
        """The matter is dealt with; the box asks the resident to rate it."""
        await application.user_resolve(
            principal, ticket_id, client, body.category, body.note, body.outcome
        )
        return Done(ticket_id=ticket_id)

    @router.post(
        "/tickets/{ticket_id}/reassign",
        response_model=Done,
        responses=responses(*ACTION_REFUSALS),
    )
    async def reassign(
        ticket_id: TicketId,
        body: ReassignBody,
        principal: PrincipalDep,
        application: FacadeDep,
        client: ClientDep,
    ) -> Done:
        """Hand the ticket to another responder of the reader's units."""
        await application.user_reassign(principal, ticket_id, body.to_contact_id, client)
        return Done(ticket_id=ticket_id)

    @router.post(
        "/tickets/{ticket_id}/label",
        response_model=Done,
        responses=responses(*ACTION_REFUSALS, "not_an_alarm", "bad_outcome"),
    )
    async def label(
        ticket_id: TicketId,
        body: LabelBody,
        principal: PrincipalDep,
        application: FacadeDep,
        client: ClientDep,
    ) -> Done:
        """Say what a resolved alarm was: real, or false and why."""
        await application.user_label(principal, ticket_id, body.outcome, client)
        return Done(ticket_id=ticket_id)

    return router
