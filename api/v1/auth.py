"""Who is asking: FastAPI dependencies for a session cookie or an API token.

    FacadeDep          the Application (set on app.state by create_app)
    PrincipalDep       the signed-in Principal; 401 JSON (not_signed_in, session_expired,
                       bad_token) or 403 (disabled) if there is none
    MaybePrincipalDep  the Principal, or None when nobody is signed in (for HTML pages that
                       redirect to a sign-in page instead of answering 401)
    ClientDep          the client's address (for rate limits and the audit log)

A request is signed in by `Authorization: Bearer bdo_...` (an API token, for systems) or by
the session cookie (`http.session_cookie`, HttpOnly, SameSite=Lax) that POST /api/v1/session
sets. A bearer header wins over a cookie. Writes with a cookie must come from
the same origin): a write with a cookie that the browser says comes from another origin
(Sec-Fetch-Site, Origin) is refused (403 cross_site), so a page elsewhere cannot act.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from api.v1.errors import ApiError
from gateway.application import AccessError, Application, Principal

BEARER = "bearer "
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def cross_site(request: Request) -> bool:
    """Whether the browser says the request was sent by a page of another origin."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc != host


def facade(request: Request) -> Application:
    """The application facade the app was built around."""
    application: Application = request.app.state.application
    return application


FacadeDep = Annotated[Application, Depends(facade)]


def client_address(request: Request) -> str:
    """The client's address as the server sees it ("" if unknown)."""
    return request.client.host if request.client is not None else ""


ClientDep = Annotated[str, Depends(client_address)]


def session_secret(request: Request) -> str | None:
    """The session cookie's value, if any."""
    application = facade(request)
    return request.cookies.get(application.settings.http.session_cookie) or None


async def maybe_principal(request: Request) -> Principal | None:
    """The signed-in principal, or None if the request carries no credential at all.

    A credential that is present but wrong (an expired session, a revoked token) is still
    an error: ApiError with its code.
    """
    application = facade(request)
    header = request.headers.get("authorization", "")
    try:
        if header:
            if not header.lower().startswith(BEARER):
                raise ApiError("bad_token")
            return await application.principal_for_token(header[len(BEARER) :].strip())
        secret = session_secret(request)
        if secret is None:
            return None
        if request.method not in SAFE_METHODS and cross_site(request):
            raise ApiError("cross_site")
        return await application.principal_for_session(secret)
    except AccessError as exc:
        raise ApiError(exc.code, **exc.params) from None


async def current_principal(request: Request) -> Principal:
    """The signed-in principal; ApiError("not_signed_in") if there is none."""
    principal = await maybe_principal(request)
    if principal is None:
        raise ApiError("not_signed_in")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
MaybePrincipalDep = Annotated[Principal | None, Depends(maybe_principal)]
