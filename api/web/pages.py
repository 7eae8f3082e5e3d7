"""The dashboard's pages: sign-in, the duty desk, one ticket, water, devices, statistics, family.

    GET  /                      where a signed-in person starts (family: /family; else /dash)
    GET  /signin, POST /signin  the sign-in form (the API's session cookie); POST /signout
    GET  /lang/{zh|en}?next=    switch the language (a cookie), back to the page
    GET  /dash                  open calls and alarms (live), today's resolved, areas, alarms
    GET  /dash/tickets/{id}     one ticket: details, what to do next, its timeline (live)
    POST /dash/tickets/{id}     one action (accept, arrive, classify, note, resolve,
                                reassign, label), then 303 back to the ticket
    GET  /dash/water            water watch of the residents living alone
    GET  /dash/devices          devices offline or low on battery, device alarms
    GET  /dash/stats?days=      statistics and the chiefs' cards, with charts
    GET  /dash/install          the installers' page (api/web/install.py: find, bind, check
                                live, register, replace, rotate, decommission)
    GET  /family                the family's own elder only (live)
    GET  /live                  server-sent events: "changed" whenever tickets or alarms do
    GET  /part/..., /family/part  the live sections alone, for htmx to swap on "changed"

Every read and write goes through the facade's scoped methods with the signed-in Principal.
POSTs from another origin (Origin or Sec-Fetch-Site say so) are refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, get_args
from urllib.parse import parse_qs, quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from api.v1.auth import client_address, cross_site, maybe_principal, session_secret
from api.v1.errors import ApiError
from api.v1.tickets import TicketId
from api.web.feed import LiveFeed
from api.web.words import LANGS, WORDS, Lang, Words
from gateway.application import (
    NOTE_MAX_CHARS,
    OUTCOMES_OF,
    AccessError,
    Application,
    Category,
    Outcome,
    OutcomeError,
    Principal,
    TicketError,
    TicketStatus,
    TicketView,
    TimelineItem,
    WatchView,
    WaterRequestError,
)
from gateway.errors import GatewayError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
LANG_COOKIE = "bidao_lang"
BODY_MAX = 8192
"""The largest form accepted, in bytes."""
LIVE: tuple[TicketStatus, ...] = (TicketStatus.OPEN, TicketStatus.ACCEPTED, TicketStatus.ON_SITE)
CLOSED: tuple[TicketStatus, ...] = (TicketStatus.RESOLVED, TicketStatus.RATED)
CATEGORIES: tuple[Category, ...] = get_args(Category)
ACTIONS = ("accept", "arrive", "classify", "note", "resolve", "reassign", "label")
PERIODS = (1, 7, 30, 90)
AWAY_DAYS = (1, 3, 7, 14)
"""How long a home may be marked away from the water page, in days."""
WATER_PAGE = 200
"""The most residents the water page lists at once."""
KEEPALIVE_S = 15.0
"""A comment line this often keeps proxies from closing a quiet event stream."""
_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Robots-Tag": "noindex",
}


class _Refused(Exception):  # noqa: N818 - a page answer, not an error of the program
    """A request answered with a page saying why, instead of what was asked."""

    def __init__(self, status: int, key: str, **params: object) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.params = params


@dataclass(frozen=True, slots=True)
class TicketRow:
    """One ticket as a row of the live list."""

    view: TicketView
    opened: str
    mine: bool
    """The reader has it."""


class Pages:
    """Renders the templates for one application."""

    def __init__(self, application: Application) -> None:
        self.application = application
        self.tz = ZoneInfo(application.settings.tickets.timezone)
        self.env = Environment(
            loader=PackageLoader("api.web", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def lang(self, request: Request) -> Lang:
        """The reader's language: the cookie's, else Chinese."""
        chosen = request.cookies.get(LANG_COOKIE)
        return "en" if chosen == "en" else "zh"

    def words(self, request: Request) -> Words:
        """The words of the reader's language."""
        return WORDS[self.lang(request)]

    def local(self, at: float | None, fmt: str = "%m-%d %H:%M") -> str:
        """A time in the villages' zone."""
        if at is None:
            return "-"
        return datetime.fromtimestamp(at, self.tz).strftime(fmt)

    def age(self, t: Words, seconds: float) -> str:
        """A duration as a person says it: 12分钟, 3小时, 2天."""
        minutes = max(0, int(seconds // 60))
        if minutes < 120:
            return t("time_ago_min", n=minutes)
        if minutes < 48 * 60:
            return t("time_ago_hour", n=minutes // 60)
        return t("time_ago_day", n=minutes // (24 * 60))

    def render(
        self,
        request: Request,
        template: str,
        principal: Principal | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page or a part, with the words, the reader and the navigation."""
        t = self.words(request)
        html = self.env.get_template(template).render(
            t=t,
            lang=t.lang,
            other_lang="en" if t.lang == "zh" else "zh",
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            me=principal,
            local=self.local,
            age=lambda s: self.age(t, s),
            now=self.application.now(),
            **context,
        )
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    def rows(self, principal: Principal, views: list[TicketView]) -> list[TicketRow]:
        """The live list's rows: nobody's first, then the oldest first."""
        ordered = sorted(views, key=lambda v: (v.status != TicketStatus.OPEN, v.opened_at))
        return [
            TicketRow(
                v,
                self.local(v.opened_at),
                v.owner is not None and v.owner.id == principal.contact_id,
            )
            for v in ordered
        ]

    def timeline_line(self, t: Words, item: TimelineItem) -> str:
        """One step of a ticket's story in the reader's language."""
        if item.message is not None:
            m = item.message
            to = item.person.name if item.person else m.recipient
            state = m.status
            if m.channel == "voice" and (m.keypress is not None or m.delivery == "completed"):
                state = "answered"
            elif m.delivery in ("no-answer", "busy", "canceled"):
                state = m.delivery
            line = f"{t.message_channel(m.channel)} → {to}{t('colon')}{t.template(m.template)}"
            return f"{line} — {t.delivery(state)}"
        line = t.event(item.kind)
        if item.kind == "rating" and item.rating is not None:
            return f"{line}{t('colon')}{t.rating(item.rating)}"
        if item.person is not None:
            line += (
                f"{t('colon')}{t('person', name=item.person.name, role=t.role(item.person.role))}"
            )
        detail = item.detail
        if item.kind == "classified":
            detail = t.category(detail)
        elif item.kind == "labelled":
            detail = t.outcome(detail)
        elif item.kind == "alarm_raised":
            detail = t.kind(detail)
        elif item.kind == "reassigned":
            old = item.handed_from.name if item.handed_from else "?"
            new = item.handed_to.name if item.handed_to else "?"
            detail = f"{old} → {new}"
        elif item.kind not in ("note", "resolved") or detail.startswith("presses="):
            detail = ""
        if detail:
            line += f" · {detail}"
        if (item.channel and item.channel not in ("system", "box_key")) or (
            item.channel == "box_key" and item.person is not None
        ):
            line += f" · {t.channel(item.channel)}"
        return line


def _same_origin(request: Request) -> bool:
    """Whether a POST came from a page of this server (browsers say so in these headers)."""
    return not cross_site(request)


def _check_origin(request: Request) -> None:
    """_Refused unless the POST came from a page of this server."""
    if not _same_origin(request):
        raise _Refused(403, "err_cross_origin")


def _next_path(text: str | None) -> str:
    """A place on this server to go back to (never another site)."""
    if not text or not text.startswith("/") or text.startswith("//") or "\\" in text:
        return "/"
    return text


async def _principal(request: Request) -> Principal | None:
    """The signed-in principal, or None (also for an expired or revoked session)."""
    try:
        return await maybe_principal(request)
    except ApiError:
        return None


def web_router(application: Application, feed: LiveFeed) -> APIRouter:  # noqa: PLR0915 - one router, one closure per page
    """The dashboard's routes."""
    pages = Pages(application)
    cache = PartCache()
    router = APIRouter(include_in_schema=False)
    http = application.settings.http

    def to_signin(request: Request, why: str | None = None) -> RedirectResponse:
        target = f"/signin?next={quote(request.url.path)}"
        if why is not None:
            target += f"&why={why}"
        response = RedirectResponse(target, status_code=303)
        if why is not None:  # the cookie is no good: drop it
            response.delete_cookie(http.session_cookie, path="/")
        return response

    async def signed_in(request: Request) -> Principal | Response:
        try:
            principal = await maybe_principal(request)
        except ApiError as exc:
            if exc.code == "cross_site":  # a page elsewhere posted with the cookie
                return refused(request, None, _Refused(403, "err_cross_origin"))
            why = exc.code if exc.code in ("session_expired", "disabled") else "session_expired"
            return to_signin(request, why)
        if principal is None:
            return to_signin(request)
        if principal.role == "family" and request.url.path.startswith("/dash"):
            # Family read their own elder only: not the duty desk, nor a ticket's call log.
            return RedirectResponse("/family", status_code=303)
        return principal

    def refused(request: Request, principal: Principal | None, exc: _Refused) -> HTMLResponse:
        application.count_api_refusal(exc.key.removeprefix("err_"))  # as the API counts its own
        return pages.render(
            request,
            "refused.html",
            principal,
            exc.status,
            message=pages.words(request)(exc.key, **exc.params),
        )

    # -- sign-in ---------------------------------------------------------------------------

    @router.get("/")
    async def start(request: Request) -> Response:
        principal = await _principal(request)
        if principal is None:
            return RedirectResponse("/signin", status_code=303)
        return RedirectResponse("/family" if principal.role == "family" else "/dash", 303)

    @router.get("/signin")
    async def signin_form(
        request: Request,
        next: str | None = None,  # noqa: A002 - the query's name
        why: str | None = None,
    ) -> Response:
        error = pages.words(request)(why) if why in ("session_expired", "disabled") else None
        return pages.render(
            request, "signin.html", None, next=_next_path(next), error=error, login=""
        )

    @router.post("/signin")
    async def signin(request: Request) -> Response:
        t = pages.words(request)
        if not _same_origin(request):
            return pages.render(
                request, "signin.html", None, 403, next="/", error=t("err_cross_origin"), login=""
            )
        try:
            form = await _form(request)
        except _Refused as exc:
            return pages.render(
                request, "signin.html", None, exc.status, next="/", error=t(exc.key), login=""
            )
        login = form.get("login", "").strip()[:64]
        password = form.get("password", "")[:256]
        target = _next_path(form.get("next"))
        if not login or not password:
            return pages.render(
                request,
                "signin.html",
                None,
                400,
                next=target,
                error=t("bad_credentials"),
                login=login,
            )
        try:
            signed = await application.sign_in(login, password, client_address(request))
        except AccessError as exc:
            status = {"rate_limited": 429, "disabled": 403}.get(exc.code, 401)
            key = exc.code if exc.code in ("rate_limited", "disabled") else "bad_credentials"
            minutes = max(1, round(http.signin_window_s / 60))
            return pages.render(
                request,
                "signin.html",
                None,
                status,
                next=target,
                error=t(key, minutes=minutes),
                login=login,
            )
        if target == "/":
            target = "/family" if signed.principal.role == "family" else "/dash"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            http.session_cookie,
            signed.secret,
            max_age=int(http.session_ttl_s),
            httponly=True,
            samesite="lax",
            secure=http.cookie_secure,
            path="/",
        )
        return response

    @router.post("/signout")
    async def signout(request: Request) -> Response:
        if not _same_origin(request):  # a page elsewhere may not sign people out either
            return RedirectResponse("/", status_code=303)
        principal = await _principal(request)
        secret = session_secret(request)
        if principal is not None and secret is not None:
            await application.sign_out(secret, principal, client_address(request))
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(http.session_cookie, path="/")
        return response

    @router.get("/lang/{lang}")
    async def switch_language(lang: str, next: str | None = None) -> Response:  # noqa: A002 - the query's name
        response = RedirectResponse(_next_path(next), status_code=303)
        if lang in LANGS:
            response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
        return response

    # -- the duty desk ---------------------------------------------------------------------

    async def open_part(principal: Principal) -> dict[str, Any]:
        views = await application.scoped_tickets(principal, statuses=LIVE, days=None)
        recent = await application.scoped_tickets(principal, statuses=CLOSED, days=1)
        return {
            "rows": pages.rows(principal, views),
            "recent": sorted(recent, key=lambda v: -(v.closed_at or v.opened_at))[:20],
        }

    async def areas_part(principal: Principal) -> dict[str, Any]:
        if not principal.may("read_statistics"):
            return {"areas": None}
        colours, units = await application.scoped_colours(principal)
        return {"areas": _area_tree(units, colours), "warnings": application.settings.warnings}

    async def alarms_part(principal: Principal) -> dict[str, Any]:
        if not principal.may("read_alarms"):
            return {"alarms": []}
        return {"alarms": await application.scoped_alarms(principal)}

    def desk(principal: Principal) -> bool:
        return principal.role not in ("family", "installer")

    @router.get("/dash")
    async def home(request: Request) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        if principal.role == "family":
            return RedirectResponse("/family", 303)
        if not desk(principal):
            return RedirectResponse("/dash/install", 303)
        context = (
            await open_part(principal) | await areas_part(principal) | await alarms_part(principal)
        )
        return pages.render(request, "home.html", principal, nav="home", **context)

    parts: dict[str, tuple[str, Callable[[Principal], Awaitable[dict[str, Any]]]]] = {
        "open": ("_open.html", open_part),
        "areas": ("_areas.html", areas_part),
        "alarms": ("_alarms.html", alarms_part),
    }

    @router.get("/part/{name}")
    async def part(request: Request, name: str) -> Response:
        principal = await _principal(request)
        if principal is None:
            return Response(status_code=401, headers={"HX-Redirect": "/signin"})
        if name not in parts or not desk(principal):
            return Response(status_code=404)
        template, fetch = parts[name]
        # Browsers of the same scope asking after the same change share one rendering.
        key = (name, _scope(principal), pages.lang(request), int(application.now() // 60))

        async def render() -> bytes:
            context = await fetch(principal)
            return bytes(pages.render(request, template, principal, **context).body)

        return HTMLResponse(await cache.get(key, feed, render), headers=_HEADERS)

    # -- one ticket ------------------------------------------------------------------------

    async def ticket_context(t: Words, principal: Principal, ticket_id: int) -> dict[str, Any]:
        timeline = await application.scoped_timeline(principal, ticket_id)
        handover = []
        if principal.may("read_contacts"):
            handover = [
                c
                for c in await application.scoped_contacts(principal)
                if c.role not in ("family", "installer")
                and c.id != principal.contact_id
                and not c.bad_number
            ]
        return {
            "timeline": timeline,
            "ticket": timeline.ticket,
            "handover": handover,
            "categories": CATEGORIES,
            "outcomes": OUTCOMES_OF[timeline.ticket.kind],
            "note_max": NOTE_MAX_CHARS,
            "lines": [
                (pages.local(i.at), pages.timeline_line(t, i))
                for i in sorted(timeline.items, key=lambda i: i.at)
            ],
        }

    async def show_ticket(
        request: Request,
        principal: Principal,
        ticket_id: int,
        template: str,
        status: int = 200,
        **extra: Any,
    ) -> Response:
        try:
            context = await ticket_context(pages.words(request), principal, ticket_id)
        except AccessError as exc:
            forbidden = exc.code == "forbidden"
            return refused(
                request,
                principal,
                _Refused(
                    403 if forbidden else 404, "err_forbidden" if forbidden else "err_not_found"
                ),
            )
        return pages.render(request, template, principal, status, nav="home", **context, **extra)

    @router.get("/dash/tickets/{ticket_id}")
    async def ticket(request: Request, ticket_id: TicketId, done: str | None = None) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        return await show_ticket(
            request,
            principal,
            ticket_id,
            "ticket.html",
            done=done if done in ACTIONS else None,
            error=None,
        )

    @router.get("/part/tickets/{ticket_id}")
    async def ticket_part(request: Request, ticket_id: TicketId) -> Response:
        principal = await _principal(request)
        if principal is None:
            return Response(status_code=401, headers={"HX-Redirect": "/signin"})
        if not desk(principal):
            return Response(status_code=404)
        return await show_ticket(
            request, principal, ticket_id, "_ticket_live.html", done=None, error=None
        )

    @router.post("/dash/tickets/{ticket_id}")
    async def act(request: Request, ticket_id: TicketId) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        t = pages.words(request)
        try:
            _check_origin(request)
            form = await _form(request)
            action = form.get("action", "")
            await _carry_out(
                application, principal, ticket_id, action, form, client_address(request)
            )
        except _Refused as exc:
            return await show_ticket(
                request,
                principal,
                ticket_id,
                "ticket.html",
                exc.status,
                done=None,
                error=t(exc.key, **exc.params),
            )
        except AccessError as exc:
            key = {"no_contact": "no_contact", "forbidden": "err_forbidden"}.get(
                exc.code, "err_not_found"
            )
            return await show_ticket(
                request, principal, ticket_id, "ticket.html", 403, done=None, error=t(key)
            )
        except (TicketError, OutcomeError) as exc:
            log.info(
                "dashboard action %s on ticket %d refused: %s", form.get("action"), ticket_id, exc
            )
            return await show_ticket(
                request,
                principal,
                ticket_id,
                "ticket.html",
                409,
                done=None,
                error=t("err_refused", why=str(exc)),
            )
        return RedirectResponse(f"/dash/tickets/{ticket_id}?done={action}", status_code=303)

    # -- water, devices, statistics, installers -------------------------------------------

    @router.get("/dash/water")
    async def water(request: Request, done: str | None = None) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        return await water_page(request, principal, done=done if done in ("away", "back") else None)

    async def water_page(
        request: Request, principal: Principal, status: int = 200, **extra: Any
    ) -> Response:
        rows: list[tuple[Any, WatchView | None]] = []
        if principal.may("read_water") and principal.may("read_grid"):
            page = await application.scoped_households(
                principal, lives_alone=True, limit=WATER_PAGE
            )
            for entry in page.items:
                watch = await application.scoped_watch(principal, entry.household.code)
                rows.append((entry, watch))
        today = datetime.fromtimestamp(application.now(), pages.tz).date().toordinal()
        return pages.render(
            request,
            "water.html",
            principal,
            status,
            nav="water",
            rows=rows,
            today=today,
            minute=_minute,
            away_days=AWAY_DAYS,
            **({"done": None, "error": None} | extra),
        )

    @router.post("/dash/water/{household}")
    async def water_act(request: Request, household: str) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        t = pages.words(request)
        try:
            _check_origin(request)
            form = await _form(request)
            action = form.get("action", "")
            await _water_request(application, principal, household, form, client_address(request))
        except _Refused as exc:
            return await water_page(request, principal, exc.status, error=t(exc.key, **exc.params))
        except AccessError as exc:
            key = "err_forbidden" if exc.code == "forbidden" else "err_not_found_household"
            return await water_page(request, principal, 403, error=t(key))
        except WaterRequestError as exc:
            return await water_page(request, principal, 409, error=t(f"water_{exc.reason}"))
        return RedirectResponse(f"/dash/water?done={action}", status_code=303)

    @router.get("/dash/devices")
    async def devices(request: Request) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        found = []
        if principal.may("read_devices"):
            found = [
                d
                for d in await application.scoped_devices(principal)
                if d.device.status == "offline" or d.device.low_battery
            ]
        context = await alarms_part(principal)
        return pages.render(
            request, "devices.html", principal, nav="devices", devices=found, **context
        )

    @router.get("/dash/stats")
    async def stats(request: Request, days: int = 7) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        days = days if days in PERIODS else 7
        context: dict[str, Any] = {"report": None, "chart": None}
        if principal.may("read_statistics"):
            report = await application.scoped_report(principal, days)
            context = {"report": report, "chart": _chart(report, pages.words(request))}
        return pages.render(
            request, "stats.html", principal, nav="stats", days=days, periods=PERIODS, **context
        )

    # The installers' page: its module imports this one's helpers, hence imported here.
    from api.web.install import install_routes

    install_routes(router, application, pages, signed_in, refused)

    # -- family ----------------------------------------------------------------------------

    async def family_context(principal: Principal) -> dict[str, Any]:
        elders = []
        today = datetime.fromtimestamp(application.now(), pages.tz).date().toordinal()
        for code in sorted(principal.households or ()):
            try:
                entry = await application.scoped_household(principal, code)
                watch = await application.scoped_watch(principal, code)
            except (AccessError, GatewayError):
                continue
            tickets = await application.scoped_tickets(
                principal, household=code, statuses=LIVE, days=None
            )
            elders.append((entry, watch, tickets))
        return {"elders": elders, "today": today, "minute": _minute}

    @router.get("/family")
    async def family(request: Request) -> Response:
        principal = await signed_in(request)
        if isinstance(principal, Response):
            return principal
        if principal.role != "family":
            return RedirectResponse("/dash", 303)
        return pages.render(request, "family.html", principal, **await family_context(principal))

    @router.get("/family/part")
    async def family_part(request: Request) -> Response:
        principal = await _principal(request)
        if principal is None or principal.role != "family":
            return Response(status_code=401, headers={"HX-Redirect": "/signin"})
        return pages.render(request, "_family.html", principal, **await family_context(principal))

    # -- the live stream -------------------------------------------------------------------

    @router.get("/live")
    async def live(request: Request) -> Response:
        principal = await _principal(request)
        if principal is None:
            return Response(status_code=401)

        ready = pages.words(request)("live_on")

        async def stream() -> AsyncIterator[bytes]:
            first = True
            async for mark in feed.subscribe(KEEPALIVE_S):
                if first:  # subscribed: the page may now say it is live
                    first = False
                    yield f"retry: 2000\n\nevent: ready\ndata: {ready}\n\n".encode()
                elif mark is None:
                    # A quiet moment to see that the sign-in still holds (signed out,
                    # expired, disabled): if not, end the stream; its reconnect gets 401.
                    if await _principal(request) is None:
                        return
                    yield b": keepalive\n\n"
                else:
                    yield f"event: changed\ndata: {mark[0]}.{mark[1]}\n\n".encode()

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router


class PartCache:
    """Rendered live parts, shared while the feed's change mark stays the same.

    When a change is pushed, every open dashboard asks for its parts at once: those of the
    same scope wait for one rendering instead of each making their own. Only while the feed
    is watching (its mark is then current); keyed by everything a part depends on (which
    part, the reader's scope, language and the minute for ages), so a rendering is never
    shown to someone of another scope.
    """

    MAX = 256

    def __init__(self) -> None:
        self._mark: object = None
        self._parts: dict[tuple[object, ...], asyncio.Future[bytes]] = {}

    async def get(
        self, key: tuple[object, ...], feed: LiveFeed, render: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        """The part for `key`: rendered since the last change, being rendered, or now."""
        if not feed.subscribers:
            return await render()
        mark = feed.mark  # read before the data: a later change gets a new rendering
        if mark != self._mark:
            self._mark, self._parts = mark, {}
        found = self._parts.get(key)
        if found is None:
            found = asyncio.ensure_future(render())
            if len(self._parts) < self.MAX:
                self._parts[key] = found
            found.add_done_callback(lambda f: self._forget_failed(key, f))
        return await asyncio.shield(found)

    def _forget_failed(self, key: tuple[object, ...], done: asyncio.Future[bytes]) -> None:
        if done.cancelled() or done.exception() is not None:
            self._parts.pop(key, None)


def _scope(principal: Principal) -> tuple[object, ...]:
    """What a live part's content depends on of the reader: their role and units."""
    return (principal.role, principal.units, principal.households, principal.contact_id)


def _minute(minute: int | None) -> str:
    """A local minute of the day as 07:05."""
    if minute is None:
        return "-"
    return f"{minute // 60:02d}:{minute % 60:02d}"


async def _form(request: Request) -> dict[str, str]:
    """The form's first value of each field; _Refused if it is too large or not a form."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > BODY_MAX):
        raise _Refused(413, "err_too_large")
    body = await request.body()
    if len(body) > BODY_MAX:
        raise _Refused(413, "err_too_large")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise _Refused(400, "err_bad_form", what="encoding") from None
    return {k: v[0] for k, v in fields.items()}


async def _water_request(
    application: Application,
    principal: Principal,
    household: str,
    form: dict[str, str],
    client: str,
) -> None:
    """Mark a home away for some days, or back, through the facade's scoped methods."""
    action = form.get("action", "")
    if action == "away":
        days = form.get("days", "")
        if not days.isdigit() or int(days) not in AWAY_DAYS:
            raise _Refused(400, "err_bad_form", what="days")
        until = application.now() + int(days) * 86400
        await application.scoped_mark_away(principal, household, until, client)
    elif action == "back":
        await application.scoped_clear_away(principal, household, client)
    else:
        raise _Refused(400, "err_bad_form", what="action")


async def _carry_out(  # noqa: PLR0912 - one branch per action
    application: Application,
    principal: Principal,
    ticket_id: int,
    action: str,
    form: dict[str, str],
    client: str,
) -> None:
    """One action of the ticket page through the facade's user_* methods."""
    category = form.get("category") or None
    if category is not None and category not in CATEGORIES:
        raise _Refused(400, "err_bad_form", what="category")
    note = (form.get("note") or "").strip() or None
    if note is not None and len(note) > NOTE_MAX_CHARS:
        raise _Refused(400, "err_bad_form", what=f"note > {NOTE_MAX_CHARS}")
    outcome_text = form.get("outcome") or None
    outcome: Outcome | None = None
    if outcome_text is not None:
        if outcome_text not in get_args(Outcome):
            raise _Refused(400, "err_bad_form", what="outcome")
        outcome = outcome_text  # type: ignore[assignment]  # checked against the Literal's values
    typed: Category | None = category
    if action == "accept":
        await application.user_accept(principal, ticket_id, client)
    elif action == "arrive":
        await application.user_arrive(principal, ticket_id, client)
    elif action == "classify":
        if typed is None:
            raise _Refused(400, "err_bad_form", what="category")
        await application.user_classify(principal, ticket_id, typed, client)
    elif action == "note":
        if note is None:
            raise _Refused(400, "err_bad_form", what="note")
        await application.user_note(principal, ticket_id, note, client)
    elif action == "resolve":
        await application.user_resolve(principal, ticket_id, client, typed, note, outcome)
    elif action == "reassign":
        to = form.get("to", "")
        if not to.isdigit():
            raise _Refused(400, "err_bad_form", what="to")
        await application.user_reassign(principal, ticket_id, int(to), client)
    elif action == "label":
        if outcome is None:
            raise _Refused(400, "err_bad_form", what="outcome")
        await application.user_label(principal, ticket_id, outcome, client)
    else:
        raise _Refused(400, "err_bad_form", what="action")


@dataclass(frozen=True, slots=True)
class AreaBox:
    """One unit of the schematic, with its colour and the units below it."""

    code: str
    name: str
    level: str
    colour: str
    live: int
    overdue: int
    children: tuple[AreaBox, ...]


AREA_BOXES = 150
"""The most boxes the schematic draws: a township's hundreds of neighbourhoods would be a
wall of boxes, so the finest levels are left out until it fits (their colour shows in the
level above)."""
SCHEMATIC_LEVELS = ("village", "area", "group", "neighbourhood")


def _area_tree(units: dict[str, Any], colours: dict[str, Any]) -> list[AreaBox]:
    """The villages the principal sees, each with its areas, groups and neighbourhoods."""
    below: dict[str | None, list[Any]] = {}
    for unit in units.values():
        below.setdefault(unit.parent_code, []).append(unit)
    levels = list(SCHEMATIC_LEVELS)
    while len(levels) > 1 and sum(u.level in levels for u in units.values()) > AREA_BOXES:
        levels.pop()

    def box(unit: Any) -> AreaBox:
        warning = colours.get(unit.code)
        return AreaBox(
            unit.code,
            unit.name,
            unit.level,
            warning.colour if warning else "green",
            warning.live if warning else 0,
            warning.overdue if warning else 0,
            tuple(
                box(u)
                for u in sorted(below.get(unit.code, []), key=lambda u: u.code)
                if u.level in levels
            ),
        )

    villages = sorted((u for u in units.values() if u.level == "village"), key=lambda u: u.code)
    return [box(v) for v in villages]


def _chart(report: Any, t: Words) -> dict[str, Any]:
    """The figures the charts draw: per village, calls and closures, and the three rates."""
    names, requests, closed, accept, arrive, satisfied = [], [], [], [], [], []
    for code, unit in sorted(report.units.items()):
        if unit.level != "village" or code not in report.statistics:
            continue
        s = report.statistics[code]
        names.append(unit.name)
        requests.append(s.requests)
        closed.append(s.closed)
        accept.append(_pct(s.accept_on_time, s.accepted))
        arrive.append(_pct(s.arrive_on_time, s.arrived))
        satisfied.append(_pct(s.satisfied, s.rated))
    return {
        "names": names,
        "series": {
            "requests": {"name": t("s_requests"), "data": requests},
            "closed": {"name": t("s_closed"), "data": closed},
            "accept": {"name": t("s_accept_on_time"), "data": accept},
            "arrive": {"name": t("s_arrive_on_time"), "data": arrive},
            "satisfied": {"name": t("s_satisfaction"), "data": satisfied},
        },
        "titles": {"requests": t("chart_requests"), "rates": t("chart_rates")},
    }


def _pct(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(100 * part / whole, 1)


def install_web(app: FastAPI, application: Application) -> LiveFeed:
    """Add the dashboard's pages, its live stream and its static files to `app`."""
    feed = LiveFeed(application)
    app.state.live_feed = feed
    app.include_router(web_router(application, feed))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return feed


def close_streams(app: object) -> None:
    """End the dashboard's open event streams (the server is stopping); safe without any."""
    feed = getattr(getattr(app, "state", None), "live_feed", None)
    if isinstance(feed, LiveFeed):
        feed.close()
