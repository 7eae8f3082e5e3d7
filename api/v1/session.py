"""Sign-in, sign-out and who am I: POST/DELETE /api/v1/session, GET /api/v1/me."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from api.v1.auth import ClientDep, FacadeDep, PrincipalDep, session_secret
from api.v1.errors import ApiError, responses
from gateway.application import AccessError, Principal


class SignInRequest(BaseModel):
    """A login and password."""

    login: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class Me(BaseModel):
    """The signed-in user and what they may see."""

    user_id: int
    login: str
    name: str
    role: Literal[
        "administrator", "township_officer", "secretary", "grid_worker", "installer", "family"
    ]
    units: list[str]
    """The units they answer for (their scope is these and every unit below)."""
    households: list[str] | None
    """For family: the households (elders) they may see; None for other roles."""
    contact_id: int | None
    """The contact they act as on tickets (None: they cannot act on tickets)."""
    via: Literal["session", "token", "cli"]
    capabilities: list[str]


class SignedInBody(Me):
    """The new session's user; the session itself is in the cookie."""

    expires_at: float


def me_of(principal: Principal) -> Me:
    """The Me body for a principal."""
    return Me(
        user_id=principal.user_id,
        login=principal.login,
        name=principal.name,
        role=principal.role,
        units=list(principal.roots),
        households=None if principal.households is None else sorted(principal.households),
        contact_id=principal.contact_id,
        via=principal.via,
        capabilities=list(principal.capabilities),
    )


def session_router() -> APIRouter:
    """The routes that sign people in and out."""
    router = APIRouter(tags=["session"])

    @router.post(
        "/session",
        response_model=SignedInBody,
        responses=responses("bad_credentials", "rate_limited", "disabled"),
        summary="Sign in with a login and password (sets the session cookie)",
    )
    async def sign_in(
        body: SignInRequest, response: Response, application: FacadeDep, client: ClientDep
    ) -> SignedInBody:
        try:
            signed = await application.sign_in(body.login, body.password, client)
        except AccessError as exc:
            raise ApiError(exc.code, **exc.params) from None
        http = application.settings.http
        response.set_cookie(
            http.session_cookie,
            signed.secret,
            max_age=int(http.session_ttl_s),
            httponly=True,
            samesite="lax",
            secure=http.cookie_secure,
            path="/",
        )
        response.headers["Cache-Control"] = "no-store"
        return SignedInBody(**me_of(signed.principal).model_dump(), expires_at=signed.expires_at)

    @router.delete(
        "/session",
        status_code=204,
        responses=responses(),
        summary="Sign out (ends the session of the cookie)",
    )
    async def sign_out(
        request: Request, principal: PrincipalDep, application: FacadeDep, client: ClientDep
    ) -> Response:
        secret = session_secret(request)
        if secret is not None:
            await application.sign_out(secret, principal, client)
        response = Response(status_code=204)
        response.delete_cookie(application.settings.http.session_cookie, path="/")
        return response

    @router.get("/me", response_model=Me, responses=responses(), summary="Who is signed in")
    async def me(principal: PrincipalDep) -> Me:
        return me_of(principal)

    return router
