"""The responder's page: the signed link in the SMS opens one ticket for one person.

    GET  /r/<token>   the ticket (resident, address, phone, status, times) and the actions
                      that fit it: arrived, resolved (with the kind of matter and a note;
                      for an alarm of the water watch, with what it turned out to be),
                      hand over; and for an alarm closed by its all-clear, what it was
    POST /r/<token>   one action, then 303 back to the GET (redirect after post)

The token is the credential (gateway.services.links): it names the ticket and the person
and expires. Only the ticket's current owner may act; anyone else holding a valid link sees
the ticket read-only ("已转交给…"). POSTs from another origin (Origin or Sec-Fetch-Site say
so) are refused, so a page elsewhere cannot make the phone's browser act. Plain HTML forms,
no script: it works on any phone browser. Everything from the database is escaped.
"""

from __future__ import annotations

import html
import logging
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import NoReturn, get_args
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.pages import texts, zh_cn
from gateway.application import (
    LINK_PATH,
    NOTE_MAX_CHARS,
    OUTCOMES_OF,
    ActionChannel,
    Application,
    Category,
    LinkError,
    LinkGrant,
    Outcome,
    ResponderView,
    TicketError,
)

log = logging.getLogger(__name__)

NOTE_MAX = NOTE_MAX_CHARS
"""The longest note a responder may leave, in characters: the rules' own limit."""
BODY_MAX = 8192
"""The largest form accepted, in bytes (a note of NOTE_MAX Chinese characters is ~4.5 KB)."""
CHANNEL: ActionChannel = "link"
CATEGORIES: tuple[Category, ...] = get_args(Category)
ACTIONS = ("arrive", "resolve", "handover", "label")
_TIME = "%Y-%m-%d %H:%M"
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Robots-Tag": "noindex",
}
_STYLE = """
body{font-family:system-ui,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;padding:12px;
font-size:18px;line-height:1.5;color:#111;background:#fff;max-width:36em}
h1{font-size:22px;margin:4px 0 12px}
.en{display:block;color:#555;font-size:15px}
dl{margin:0 0 16px}dt{font-weight:bold;margin-top:8px}dd{margin:0}
a.tel{font-size:22px}
form{margin:16px 0;padding:12px;border:1px solid #ccc;border-radius:8px}
button{display:block;width:100%;min-height:56px;font-size:20px;margin-top:8px;
border:0;border-radius:8px;background:#1a7f37;color:#fff}
button .en{color:#eee}
button.second{background:#555}
label{display:block;margin:6px 0}
input[type=radio]{width:22px;height:22px;vertical-align:middle}
textarea,select{width:100%;font-size:18px;box-sizing:border-box}
.msg{padding:12px;border-radius:8px;background:#e6f4ea;margin:12px 0}
.err{padding:12px;border-radius:8px;background:#fdecea;margin:12px 0}
"""


class _RefusedError(Exception):
    """A request the page answers with an error page instead of the ticket."""

    def __init__(self, status: int, title: str, *lines: tuple[str, str]) -> None:
        """`lines` are (Chinese, English) pairs, not yet escaped."""
        super().__init__(title)
        self.status = status
        self.title = title
        self.lines = lines


def _refuse(status: int, title: str, *lines: tuple[str, str]) -> NoReturn:
    raise _RefusedError(status, title, *lines)


@dataclass(frozen=True, slots=True)
class _Action:
    """One validated form."""

    kind: str
    category: Category | None = None
    note: str | None = None
    to_contact: int | None = None
    outcome: Outcome | None = None


def _both(key: str, **params: object) -> str:
    """A text in Chinese, then English beneath, escaped."""
    zh, en = texts(key, **params)
    return f'{html.escape(zh)}<span class="en" lang="en">{html.escape(en)}</span>'


def _page(title_key: str, body: str, **params: object) -> str:
    zh, en = texts(title_key, **params)
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{html.escape(zh)} / {html.escape(en)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_both(title_key, **params)}</h1>{body}</body></html>"
    )


def _html(content: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(content, status_code=status, headers=_HEADERS)


def _refusal_page(refusal: _RefusedError, back: str | None = None) -> HTMLResponse:
    body = "".join(
        f'<p class="err">{html.escape(zh)}<span class="en" lang="en">{html.escape(en)}</span></p>'
        for zh, en in refusal.lines
    )
    if back is not None:
        body += f'<p><a href="{html.escape(back)}">{_both("back")}</a></p>'
    return _html(_page(refusal.title, body), refusal.status)


def _line(key: str, **params: object) -> tuple[str, str]:
    return texts(key, **params)


def _duration(seconds: float) -> tuple[str, dict[str, object]]:
    if seconds < 86_400 or seconds % 86_400:
        return "hours", {"n": f"{seconds / 3600:g}"}
    return "days", {"n": f"{seconds / 86_400:g}"}


def _category(view: ResponderView, category: Category) -> tuple[str, str]:
    unit, params = _duration(view.day_clock_s[category])
    limit_zh, limit_en = texts(unit, **params)
    zh, _ = texts(f"cat_{category}", limit=limit_zh)
    _, en = texts(f"cat_{category}", limit=limit_en)
    return zh, en


def _role(role: str) -> tuple[str, str]:
    key = f"role_{role}"
    return texts(key) if key in zh_cn.TEXTS else (role, role)


def _when(at: datetime | None) -> str | None:
    return None if at is None else at.strftime(_TIME)


def _facts(view: ResponderView) -> str:
    """The ticket's facts as a definition list (every value escaped)."""
    missing = _both("not_recorded")
    rows: list[tuple[str, str]] = [
        ("resident", html.escape(view.resident_name) if view.resident_name else missing),
        ("address", html.escape(view.address) if view.address else missing),
    ]
    if view.resident_phone:
        phone = html.escape(view.resident_phone)
        rows.append(("phone", f'<a class="tel" href="tel:{phone}">{phone}</a>'))
    else:
        rows.append(("phone", missing))
    if view.is_alarm:
        rows.append(("kind", _both(f"kind_{view.kind}")))
    status = f"status_{view.status.value}"
    if view.is_alarm and view.status.value == "resolved":
        status = "status_resolved_alarm"  # nobody is asked to rate an alarm
    rows.append(("status", _both(status)))
    owner = html.escape(view.owner_name) if view.owner_name else _both("nobody")
    rows.append(("owner", owner))
    if view.is_alarm:
        # Nobody called: the alarm was raised at that time.
        rows.append(("raised_at", view.opened_at.strftime(_TIME)))
    else:
        rows.append(("opened_at", view.opened_at.strftime(_TIME)))
    for key in (
        "accepted_at",
        "on_site_at",
        "resolved_at",
        "rated_at",
        "cancelled_at",
    ):
        when = _when(getattr(view, key))
        if when is not None:
            rows.append((key, when))
    if view.is_alarm and view.outcome is not None:
        rows.append(("outcome", _both(f"outcome_{view.outcome}")))
    if view.category is not None:
        zh, en = _category(view, view.category)
        rows.append(
            ("category", f'{html.escape(zh)}<span class="en" lang="en">{html.escape(en)}</span>')
        )
        due = _when(view.day_due_at)
        if due is not None:
            rows.append(("day_due_at", due))
    items = "".join(f"<dt>{_both(key)}</dt><dd>{value}</dd>" for key, value in rows)
    return f"<dl>{items}</dl>"


def _forms(view: ResponderView) -> str:
    """The actions that fit the ticket's status, for its owner."""
    parts: list[str] = []
    if view.status.value == "accepted":
        parts.append(
            '<form method="post"><input type="hidden" name="action" value="arrive">'
            f"<p>{_both('arrive_hint')}</p>"
            f'<button type="submit">{_both("arrive_button")}</button></form>'
        )
    if view.is_alarm:
        # An alarm is no matter with a time limit: the one who checked says what it was.
        hint, choice = "resolve_hint_alarm", _outcome_choice(view)
    else:
        radios = "".join(
            f'<label><input type="radio" name="category" value="{c}" required'
            f"{' checked' if c == view.category else ''}> "
            f'{html.escape(zh)}<span class="en" lang="en">{html.escape(en)}</span></label>'
            for c in CATEGORIES
            for zh, en in (_category(view, c),)
        )
        hint, choice = (
            "resolve_hint",
            f"<fieldset><legend>{_both('category')}</legend>{radios}</fieldset>",
        )
    parts.append(
        '<form method="post"><input type="hidden" name="action" value="resolve">'
        f"<p>{_both(hint)}</p>{choice}"
        f'<label>{_both("note", max=NOTE_MAX)}<textarea name="note" rows="3" '
        f'maxlength="{NOTE_MAX}"></textarea></label>'
        f'<button type="submit">{_both("resolve_button")}</button></form>'
    )
    if view.handover:
        options = "".join(
            f'<option value="{p.contact_id}">{html.escape(p.name)}（{html.escape(role_zh)} / '
            f"{html.escape(role_en)}）</option>"
            for p in view.handover
            for role_zh, role_en in (_role(p.role),)
        )
        parts.append(
            '<form method="post"><input type="hidden" name="action" value="handover">'
            f'<label>{_both("handover_to")}<select name="to" required>{options}</select></label>'
            f'<button class="second" type="submit">{_both("handover_button")}</button></form>'
        )
    else:
        parts.append(f"<p>{_both('handover_none')}</p>")
    return "".join(parts)


def _outcome_choice(view: ResponderView) -> str:
    """The outcomes an alarm of this kind can have, as required radio buttons."""
    radios = "".join(
        f'<label><input type="radio" name="outcome" value="{o}" required'
        f"{' checked' if o == view.outcome else ''}> {_both(f'outcome_{o}')}</label>"
        for o in OUTCOMES_OF[view.kind]
    )
    return f"<fieldset><legend>{_both('outcome_question')}</legend>{radios}</fieldset>"


def _label_form(view: ResponderView) -> str:
    """For an alarm closed by its all-clear (or labelled already): say, or correct, what it was."""
    return (
        '<form method="post"><input type="hidden" name="action" value="label">'
        f"<p>{_both('label_hint')}</p>{_outcome_choice(view)}"
        f'<button type="submit">{_both("label_button")}</button></form>'
    )


def _done_message(view: ResponderView, done: str | None) -> str:
    """What the last action did, if the ticket shows it did (never claimed otherwise)."""
    key: str | None = None
    params: dict[str, object] = {}
    if done == "arrived" and view.on_site_at is not None:
        key = "done_arrived_box" if view.has_box else "done_arrived"
        params = {"time": _when(view.on_site_at)}
    elif done == "resolved" and view.resolved_at is not None:
        key = "done_resolved_box" if view.has_box else "done_resolved"
        params = {"time": _when(view.resolved_at)}
    elif done == "labelled" and view.outcome is not None:
        zh, en = texts(f"outcome_{view.outcome}")
        key, params = "done_labelled", {"outcome": zh}
        line_zh, _ = texts(key, **params)
        _, line_en = texts(key, outcome=en)
        return (
            f'<p class="msg">{html.escape(line_zh)}'
            f'<span class="en" lang="en">{html.escape(line_en)}</span></p>'
        )
    elif done == "handed_over" and not view.is_owner and view.owner_name:
        # The rules call and text the new owner about the household's resident; with no
        # household on record nobody is told, and the words do not claim it.
        told = view.resident_name is not None
        key = "done_handed_over_told" if told else "done_handed_over"
        params = {"owner": view.owner_name}
    return "" if key is None else f'<p class="msg">{_both(key, **params)}</p>'


def _ticket_page(view: ResponderView, done: str | None = None) -> str:
    body = [_done_message(view, done)]
    if view.viewer_name:
        body.append(f"<p>{_both('you', name=view.viewer_name)}</p>")
    body.append(_facts(view))
    if view.can_act:
        body.append(_forms(view))
    elif view.can_label:
        body.append(_label_form(view))
    elif view.owner_id is not None and not view.is_owner:
        key = "handed_over" if view.had_it else "taken_by"
        body.append(f'<p class="err">{_both(key, owner=view.owner_name or "?")}</p>')
    elif view.is_owner:
        body.append(f"<p>{_both('closed')}</p>")
    else:
        body.append(f'<p class="err">{_both("not_yours")}</p>')
    return _page("title", "".join(body), ticket=view.ticket_id)


def _cross_origin(request: Request, public_url: str) -> bool:
    """Whether the browser says the form was sent from another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    public = urlsplit(public_url)
    allowed = {f"{public.scheme}://{public.netloc}"}
    host = request.headers.get("host")
    if host:
        allowed.add(f"{request.url.scheme}://{host}")
    return origin.rstrip("/") not in allowed


def _parse_form(body: bytes, view: ResponderView) -> _Action:
    """The one action a form asks for; _RefusedError (400) naming what is wrong."""

    def bad(key: str, **params: object) -> _RefusedError:
        return _RefusedError(400, "bad_input_title", _line(key, **params))

    if len(body) > BODY_MAX:
        raise bad("too_large")
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=8, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise bad("too_large") from None
    first = {name: values[0] for name, values in fields.items()}
    kind = first.get("action", "")
    if kind not in ACTIONS:
        raise bad("bad_action")
    if kind == "arrive":
        return _Action(kind)
    if kind == "label":
        return _Action(kind, outcome=_parsed_outcome(first, view))
    if kind == "resolve":
        outcome = _parsed_outcome(first, view) if view.is_alarm else None
        category = next((c for c in CATEGORIES if c == first.get("category")), None)
        if category is None and not view.is_alarm:
            raise bad("bad_category")
        # A note is one line: the textarea's line breaks become spaces.
        note = " ".join(first.get("note", "").replace("\r\n", "\n").split("\n")).strip() or None
        if note is not None:
            if len(note) > NOTE_MAX:
                raise bad("note_too_long", max=NOTE_MAX, count=len(note))
            if any(unicodedata.category(ch) == "Cc" for ch in note):
                raise bad("note_control")
        return _Action(kind, category=category, note=note, outcome=outcome)
    chosen = first.get("to", "")
    allowed = {p.contact_id for p in view.handover}
    if not chosen.isdigit() or int(chosen) not in allowed:
        raise bad("bad_handover")
    return _Action(kind, to_contact=int(chosen))


def _parsed_outcome(first: dict[str, str], view: ResponderView) -> Outcome:
    """The outcome chosen on the form; _RefusedError (400) if none this ticket can have."""
    if not view.is_alarm:
        raise _RefusedError(400, "bad_input_title", _line("not_alarm"))
    chosen = next((o for o in OUTCOMES_OF[view.kind] if o == first.get("outcome")), None)
    if chosen is None:
        raise _RefusedError(400, "bad_input_title", _line("bad_outcome"))
    return chosen


_CONFLICTS = {
    "arrive": "conflict_arrive",
    "resolve": "conflict_resolve",
    "handover": "conflict_handover",
    "label": "conflict_label",
}
_FITS = {
    "arrive": ("accepted",),
    "resolve": ("accepted", "on_site"),
    "handover": ("accepted", "on_site"),
    "label": ("resolved", "rated"),
}
_DONE = {"arrive": "arrived", "resolve": "resolved", "handover": "handed_over", "label": "labelled"}


def responder_router(app: Application) -> APIRouter:
    """GET and POST {LINK_PATH}<token>, bound to one running gateway's facade."""
    router = APIRouter()
    public_url = app.settings.notify.public_url

    def grant(token: str) -> LinkGrant:
        try:
            return app.open_link(token)
        except LinkError as exc:
            app.refuse_link(exc.reason)
            log.info("responder link refused", extra={"reason": exc.reason})
            if exc.reason == "expired":
                raise _RefusedError(410, "expired_title", _line("expired")) from None
            raise _RefusedError(404, "bad_link_title", _line("bad_link")) from None

    async def view_for(found: LinkGrant) -> ResponderView:
        try:
            return await app.responder_view(found.ticket_id, found.contact_id)
        except TicketError:
            app.refuse_link("no_ticket")
            raise _RefusedError(404, "no_ticket_title", _line("no_ticket")) from None

    @router.get(LINK_PATH + "{token}", response_class=HTMLResponse)
    async def show(token: str, done: str | None = None) -> Response:
        try:
            view = await view_for(grant(token))
        except _RefusedError as refusal:
            return _refusal_page(refusal)
        return _html(_ticket_page(view, done))

    @router.post(LINK_PATH + "{token}", response_class=HTMLResponse)
    async def act(token: str, request: Request) -> Response:
        here = LINK_PATH + token
        try:
            if _cross_origin(request, public_url):
                app.refuse_link("cross_origin")
                _refuse(403, "refused_title", _line("cross_origin"))
            found = grant(token)
            view = await view_for(found)
            if not view.is_owner:
                app.refuse_link("not_owner")
                key = "not_yours"
                if view.owner_id is not None:
                    key = "handed_over" if view.had_it else "taken_by"
                _refuse(403, "refused_title", _line(key, owner=view.owner_name or "?"))
            action = _parse_form(await request.body(), view)
            await _carry_out(app, view, action)
        except _RefusedError as refusal:
            if refusal.status == 400:
                app.refuse_link("bad_form")
            return _refusal_page(refusal, back=here if refusal.status != 404 else None)
        return RedirectResponse(f"{here}?done={_DONE[action.kind]}", status_code=303)

    return router


async def _carry_out(app: Application, view: ResponderView, action: _Action) -> None:
    """Do the action through the facade; _RefusedError (409) if the ticket's state refuses it."""
    ticket, me = view.ticket_id, view.viewer_id
    try:
        if action.kind == "arrive":
            await app.arrive_ticket(ticket, me, CHANNEL)
        elif action.kind == "resolve":
            await app.resolve_ticket(
                ticket, me, CHANNEL, action.category, action.note, action.outcome
            )
        elif action.kind == "label":
            assert action.outcome is not None
            await app.label_ticket(ticket, action.outcome, me, CHANNEL)
        else:
            assert action.to_contact is not None
            await app.reassign_ticket(ticket, action.to_contact, me, CHANNEL)
    except TicketError as exc:
        log.info("responder action refused", extra={"ticket": ticket, "error": str(exc)})
        app.refuse_link("conflict")
        now = await app.responder_view(ticket, me)
        if not now.is_owner and now.owner_id is not None:
            _refuse(409, "conflict_title", _line("handed_over", owner=now.owner_name or "?"))
        if (now.can_act or now.can_label) and now.status.value in _FITS[action.kind]:
            _refuse(409, "conflict_title", _line("conflict_retry"))
        status_zh, status_en = texts(f"status_{now.status.value}")
        key = _CONFLICTS[action.kind]
        _refuse(
            409,
            "conflict_title",
            (texts(key, status=status_zh)[0], texts(key, status=status_en)[1]),
        )
