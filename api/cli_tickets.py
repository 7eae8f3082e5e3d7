"""`bidao tickets` and `bidao ticket N [arrive|resolve|label|classify|...]`, for operators.

Everything goes through the facade over the store alone (`offline`), so these commands run
beside a gateway on the same data folder: reads see what it has committed, and an action is
one write transaction of its own, as a person's action from any other surface. Words are
Chinese first, English second (api/cli_tickets_zh.py, api/cli_tickets_en.py); times are
local to the tickets' time zone (`tickets.timezone`).

An alarm of the water watch is labelled with what it turned out to be (`resolve --outcome`,
or `label` once the all-clear resolved it): 真实情况 real, or 误报 false and why; the words
are taken in Chinese (full or short: 误报：晚起, 晚起) or English (late_rising).

Exit status: 0 done; 1 no such ticket, or an action the ticket's state refuses (a label on a
call, or on an alarm not yet resolved); 2 bad input (a negative number of days, an unknown
or ambiguous village or contact, an unknown outcome or one the alarm's kind cannot have).
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Protocol, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from alerts.templates import voice_menu
from api import cli_tickets_en as en
from api import cli_tickets_zh as zh
from gateway.application import (
    CLOSED_STATUSES,
    OUTCOMES,
    OUTCOMES_OF,
    ActionChannel,
    Application,
    Category,
    NoSuchContactError,
    NoSuchTicketError,
    NoSuchVillageError,
    NotAnAlarmError,
    Outcome,
    OutcomeError,
    PersonRef,
    TicketError,
    TicketKind,
    TicketStatus,
    TicketView,
    Timeline,
    TimelineItem,
)

T = TypeVar("T")

EXIT_FAILED = 1
EXIT_USAGE = 2
CHANNEL: ActionChannel = "cli"
"""How the command line's actions are recorded."""
_ESCALATED_WHY = "not accepted in "


class WithStore(Protocol):
    """Runs one piece of work against the facade over the store alone."""

    def __call__(self, config: Path | None, work: Callable[[Application], Awaitable[T]]) -> T:
        """The work's result."""
        ...


class StatusChoice(enum.StrEnum):
    """The statuses a person can filter on."""

    open = "open"
    accepted = "accepted"
    on_site = "on_site"
    resolved = "resolved"
    rated = "rated"
    cancelled = "cancelled"


class CategoryChoice(enum.StrEnum):
    """The kinds of matter."""

    urgent = "urgent"
    ordinary = "ordinary"
    hard = "hard"
    complex = "complex"


_CATEGORIES: dict[CategoryChoice, Category] = {
    CategoryChoice.urgent: "urgent",
    CategoryChoice.ordinary: "ordinary",
    CategoryChoice.hard: "hard",
    CategoryChoice.complex: "complex",
}


def both(zh_text: str, en_text: str) -> str:
    """Chinese first, English second."""
    return f"{zh_text} {en_text}" if zh_text != en_text else zh_text


def _pick(table_zh: dict[str, str], table_en: dict[str, str], key: str) -> str:
    return both(table_zh.get(key, key), table_en.get(key, key))


def status_words(status: str) -> str:
    """待接单 open, 已到达 on site, ..."""
    return _pick(zh.STATUS, en.STATUS, status)


def role_words(role: str) -> str:
    """村书记 village secretary, ..."""
    return _pick(zh.ROLE, en.ROLE, role)


def label(key: str) -> str:
    """A field's label in both languages."""
    return _pick(zh.LABEL, en.LABEL, key)


def kind_words(kind: str) -> str:
    """呼叫 call, 无用水报警 no-water alarm, 持续用水报警 continuous-flow alarm."""
    return _pick(zh.KIND, en.KIND, kind)


def outcome_words(outcome: str | None) -> str:
    """误报：晚起 false: late rising, ...; 未标注 not labelled when there is none."""
    if outcome is None:
        return _pick(zh.ALARM_LABEL, en.ALARM_LABEL, "unlabelled")
    return _pick(zh.OUTCOME, en.OUTCOME, outcome)


def _typed(text: str) -> str:
    """An outcome as typed, alike however written: no spaces, `_` or `-`, one kind of colon."""
    cleaned = text.replace("：", ":").lower()
    return "".join(c for c in cleaned if not c.isspace() and c not in "_-")


def parse_outcome(text: str) -> Outcome | None:
    """The outcome a person typed (误报：晚起, 晚起, late_rising, "false: late rising"), or None."""
    wanted = _typed(text)
    for outcome in OUTCOMES:
        names = (outcome, zh.OUTCOME[outcome], zh.OUTCOME_SHORT[outcome], en.OUTCOME[outcome])
        if wanted in {_typed(n) for n in names}:
            return outcome
    return None


def _outcome_choices(outcomes: tuple[Outcome, ...]) -> tuple[str, str]:
    return (
        "、".join(zh.OUTCOME[o] for o in outcomes),
        ", ".join(f"{o} ({en.OUTCOME[o]})" for o in outcomes),
    )


def _outcome_of(text: str | None) -> Outcome | None:
    """The outcome given, or exit 2 naming the choices when it is none."""
    if text is None:
        return None
    outcome = parse_outcome(text)
    if outcome is None:
        choices_zh, choices_en = _outcome_choices(OUTCOMES)
        raise _fail(
            EXIT_USAGE,
            zh.ALARM_ERROR["unknown_outcome"].format(text=text, choices=choices_zh),
            en.ALARM_ERROR["unknown_outcome"].format(text=text, choices=choices_en),
        )
    return outcome


def _fail(code: int, zh_text: str, en_text: str, lines: tuple[str, ...] = ()) -> typer.Exit:
    """Say what is wrong on stderr, Chinese first; the Exit to raise."""
    sys.stderr.write(f"bidao: {zh_text}（{en_text}）\n")
    for line in lines:
        sys.stderr.write(f"  {line}\n")
    return typer.Exit(code)


class Clock:
    """Local times and ages in the tickets' time zone."""

    def __init__(self, application: Application) -> None:
        self.zone = ZoneInfo(application.settings.tickets.timezone)
        self.now = application.now()

    def short(self, at: float) -> str:
        """11-30 14:05."""
        return datetime.fromtimestamp(at, self.zone).strftime("%m-%d %H:%M")

    def full(self, at: float) -> str:
        """2026-11-30 14:05."""
        return datetime.fromtimestamp(at, self.zone).strftime("%Y-%m-%d %H:%M")


def age_words(seconds: float) -> str:
    """3天 3 d, 2小时 2 h, 5分钟 5 min: the largest whole unit."""
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        unit, n = "minutes", minutes
    elif minutes < 24 * 60:
        unit, n = "hours", minutes // 60
    else:
        unit, n = "days", minutes // (24 * 60)
    return both(zh.AGE[unit].format(n=n), en.AGE[unit].format(n=n))


def person_words(person: PersonRef | None, *, phone: bool = False) -> str:
    """李书记（村书记 village secretary）."""
    if person is None:
        return "-"
    extra = f"，{person.phone}" if phone else ""
    return f"{person.name}（{role_words(person.role)}{extra}）"


# -- bidao tickets -------------------------------------------------------------------------


def render_list(console: Console, views: list[TicketView], clock: Clock) -> None:
    """One line per ticket: id, status, resident, address, opened at, age, owner."""
    table = Table(
        label("ticket"),
        _pick(zh.ALARM_LABEL, en.ALARM_LABEL, "kind"),
        label("status"),
        label("resident"),
        label("address"),
        label("opened"),
        label("age"),
        label("owner"),
        box=box.SIMPLE,
        show_edge=False,
    )
    for v in views:
        end = v.closed_at if v.status in CLOSED_STATUSES and v.closed_at else clock.now
        table.add_row(
            str(v.id),
            kind_words(v.kind),
            status_words(v.status),
            v.resident or "-",
            v.address or v.village or "-",
            clock.short(v.opened_at),
            age_words(end - v.opened_at),
            v.owner.name if v.owner else "-",
        )
    console.print(table)
    count = len(views)
    console.print(both(zh.COUNT.format(n=count), en.COUNT.format(n=count)), markup=False)


# -- bidao ticket N ------------------------------------------------------------------------


def _why(text: str) -> str:
    if text.startswith(_ESCALATED_WHY):
        minutes = text.removeprefix(_ESCALATED_WHY).removesuffix(" min")
        return both(
            zh.WHY["not_accepted"].format(minutes=minutes),
            en.WHY["not_accepted"].format(minutes=minutes),
        )
    return _pick(zh.WHY, en.WHY, text)


def _event_detail(item: TimelineItem, ticket_kind: TicketKind = "call") -> str:  # noqa: PLR0911 - one wording per kind
    kind, detail = item.kind, item.detail
    if kind == "alarm_raised":
        return kind_words(detail)
    if kind == "all_clear":
        return _pick(
            zh.ALL_CLEAR, en.ALL_CLEAR, "flow_stopped" if ticket_kind == "leak" else detail
        )
    if kind == "labelled":
        return outcome_words(detail)
    if kind in ("opened", "pressed_again", "owner_alerted") and detail.startswith("presses="):
        count = detail.removeprefix("presses=")
        return both(zh.PRESSES.format(count=count), en.PRESSES.format(count=count))
    if kind == "classified":
        return _pick(zh.CATEGORY, en.CATEGORY, detail)
    if kind == "escalated" and ": " in detail:
        role, why = detail.split(": ", 1)
        return f"→ {role_words(role)}：{_why(why)}"
    if kind == "escalation_exhausted":
        return _why(detail)
    if kind == "overdue" and ": told " in detail:
        category, role = detail.split(": told ", 1)
        told = both(
            zh.TOLD.format(role=zh.ROLE.get(role, role)),
            en.TOLD.format(role=en.ROLE.get(role, role)),
        )
        return f"{_pick(zh.CATEGORY, en.CATEGORY, category)}，{told}"
    if kind == "reassigned":
        old = item.handed_from.name if item.handed_from else label("unknown")
        new = item.handed_to.name if item.handed_to else label("unknown")
        return both(zh.HANDED.format(old=old, new=new), en.HANDED.format(old=old, new=new))
    if kind == "red_key" and detail == "call ended":
        return both(zh.CALL_ENDED, en.CALL_ENDED)
    if kind in ("cancelled", "no_answer", "no_household"):
        return ""
    return detail


def _outcome(item: TimelineItem) -> str:
    m = item.message
    assert m is not None
    if m.status == "merged" and m.merged_into is not None:
        return both(
            zh.DELIVERY["merged"].format(into=m.merged_into),
            en.DELIVERY["merged"].format(into=m.merged_into),
        )
    if m.quarantined_at is not None:
        state = "quarantined"
    elif m.delivery in ("no-answer", "busy", "canceled"):
        state = m.delivery
    elif m.channel == "voice" and (m.keypress is not None or m.delivery == "completed"):
        state = "answered"
    else:
        state = m.status
    words = _pick(zh.DELIVERY, en.DELIVERY, state)
    if m.keypress is not None:
        # The words of the menu that call offered: on an alarm, 1 is "I will check".
        menu = voice_menu(m.template)
        pressed = both(
            zh.KEYPRESS_BY_MENU.get(menu, zh.KEYPRESS).get(
                m.keypress, zh.KEYPRESS_OTHER.format(digit=m.keypress)
            ),
            en.KEYPRESS_BY_MENU.get(menu, en.KEYPRESS).get(
                m.keypress, en.KEYPRESS_OTHER.format(digit=m.keypress)
            ),
        )
        words += f"，{pressed}"
    return words


def timeline_line(item: TimelineItem, clock: Clock, ticket_kind: TicketKind = "call") -> str:
    """One line of a ticket's timeline (of a ticket of `ticket_kind`)."""
    at = clock.short(item.at)
    if item.message is not None:
        m = item.message
        what = _pick(zh.MESSAGE_CHANNEL, en.MESSAGE_CHANNEL, m.channel)
        to = person_words(item.person) if item.person else m.recipient
        line = f"{at}  {what} → {to}：{_pick(zh.TEMPLATE, en.TEMPLATE, m.template)}"
        if m.origin_kind is not None:
            line += f"（{_pick(zh.FOLLOW_UP, en.FOLLOW_UP, m.origin_kind)}）"
        return f"{line} — {_outcome(item)}"
    if item.kind == "rating" and item.rating is not None:
        rating = _pick(zh.RATING, en.RATING, item.rating)
        return (
            f"{at}  {_pick(zh.EVENT, en.EVENT, 'rating')}：{rating}，{label('box')} {item.detail}"
        )
    line = f"{at}  {_pick(zh.EVENT, en.EVENT, item.kind)}"
    if item.person is not None:
        line += f"：{person_words(item.person)}"
    detail = _event_detail(item, ticket_kind)
    if detail:
        line += f"，{detail}" if item.person is not None else f"：{detail}"
    # The resident's own presses need no "via the box"; a helper's do (arrival at the door).
    resident_press = item.channel == "box_key" and item.person is None
    if item.channel and item.channel != "system" and not resident_press:
        via_zh = zh.VIA.format(channel=zh.ACTION_CHANNEL.get(item.channel, item.channel))
        via_en = en.VIA.format(channel=en.ACTION_CHANNEL.get(item.channel, item.channel))
        line += f"，{both(via_zh, via_en)}"
    return line


def timeline_lines(timeline: Timeline, clock: Clock) -> list[str]:
    """A ticket's header and its timeline, oldest first."""
    t = timeline.ticket
    unknown = label("unknown")
    resident = t.resident or unknown
    if t.resident_phone:
        resident += f"，{t.resident_phone}"
    category = _pick(zh.CATEGORY, en.CATEGORY, t.category) if t.category else "-"
    rating = _pick(zh.RATING, en.RATING, t.rating) if t.rating else "-"
    if t.kind == "call":
        first = (
            f"{label('ticket')} {t.id} · {status_words(t.status)} · "
            f"{label('opened')} {clock.full(t.opened_at)}"
        )
        last = f"{label('category')}：{category} · {label('rating')}：{rating}"
    else:
        # Nobody called: the alarm was raised, and what it turned out to be is its outcome.
        raised = _pick(zh.ALARM_LABEL, en.ALARM_LABEL, "opened")
        first = (
            f"{label('ticket')} {t.id} · {kind_words(t.kind)} · {status_words(t.status)} · "
            f"{raised} {clock.full(t.opened_at)}"
        )
        last = f"{_pick(zh.ALARM_LABEL, en.ALARM_LABEL, 'outcome')}：{outcome_words(t.outcome)}"
    lines = [
        first,
        f"{label('resident')}：{resident} · {label('address')}：{t.address or unknown}",
        (
            f"{label('place')}：{' '.join(timeline.places) or unknown} · "
            f"{label('household')} {t.household_code or '-'} · {label('box')} {t.device_id or '-'}"
        ),
        f"{label('owner')}：{person_words(t.owner, phone=True)} · {last}",
        "",
    ]
    lines += [timeline_line(item, clock, t.kind) for item in timeline.items]
    return lines


# -- registration ----------------------------------------------------------------------------


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (BIDAO_* environment variables win)"),
]


class _Env:
    """What the commands need from api/cli.py, given when they are registered."""

    with_store: WithStore
    console: Callable[[], Console]


def _say(text: str) -> None:
    _Env.console().print(text, markup=False, highlight=False, soft_wrap=True)


ticket_app = typer.Typer(
    help="One ticket: its timeline (工单详情), or an action on it.",
    invoke_without_command=True,
    no_args_is_help=True,
)


def register(app: typer.Typer, with_store: WithStore, console: Callable[[], Console]) -> None:
    """Add `tickets` and `ticket` to the `bidao` command."""
    _Env.with_store = with_store
    _Env.console = console
    app.command("tickets")(tickets)
    app.add_typer(ticket_app, name="ticket")


def tickets(
    status: Annotated[
        list[StatusChoice] | None, typer.Option(help="only tickets in this status (repeatable)")
    ] = None,
    village: Annotated[str | None, typer.Option(help="village code or name")] = None,
    household: Annotated[str | None, typer.Option(help="household code")] = None,
    days: Annotated[
        float | None,
        typer.Option(help="live tickets and those opened in the last N days [default: 7]"),
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="every ticket, however old")] = False,
    config: ConfigOption = None,
) -> None:
    """List open and recent tickets (工单列表), newest first."""
    if days is not None and not days > 0:
        shown = f"{days:g}"
        raise _fail(
            EXIT_USAGE, zh.ERROR["days"].format(days=shown), en.ERROR["days"].format(days=shown)
        )
    statuses = tuple(TicketStatus(s.value) for s in status or ())
    period = None if every else (days if days is not None else 7.0)

    async def work(a: Application) -> tuple[list[TicketView], Clock]:
        views = await a.list_ticket_views(
            statuses=statuses, village=village, household=household, days=period
        )
        return views, Clock(a)

    try:
        views, clock = _Env.with_store(config, work)
    except NoSuchVillageError as exc:
        raise _village_error(exc) from None
    render_list(_Env.console(), views, clock)


@ticket_app.callback()
def ticket(
    ctx: typer.Context,
    ticket_id: Annotated[int, typer.Argument(help="the ticket's number", min=1)],
    config: ConfigOption = None,
) -> None:
    """Show a ticket's whole timeline (工单详情), or act on it."""
    ctx.obj = (ticket_id, config)
    if ctx.invoked_subcommand is not None:
        return

    async def work(a: Application) -> tuple[Timeline, Clock]:
        return await a.ticket_timeline(ticket_id), Clock(a)

    try:
        timeline, clock = _Env.with_store(config, work)
    except NoSuchTicketError:
        raise _no_ticket(ticket_id) from None
    for line in timeline_lines(timeline, clock):
        _say(line)


Action = Callable[[Application, int, int | None], Awaitable[None]]


def _act(
    ctx: typer.Context,
    action: str,
    by: str | None,
    run: Action,
    *,
    done: str | None = None,
    outcome: Outcome | None = None,
    **words: str,
) -> None:
    """Run one action as `by` (a contact's id, phone or name), and say it was done.

    `done` names the words that say so (the action's own by default); `outcome` is the
    label given with it, named in those words and in a refusal of it.
    """
    ticket_id, config = ctx.obj

    async def work(a: Application) -> str:
        if by is not None:
            who = await a.find_contact(by)
        elif action == "accept":
            raise _fail(EXIT_USAGE, zh.ERROR["accept_by"], en.ERROR["accept_by"])
        elif action == "note":
            who = None  # the operator's own note
        else:
            who = (await a.ticket_timeline(ticket_id)).ticket.owner  # --by's default
        await run(a, ticket_id, who.id if who else None)
        if action == "reassign":
            who = (await a.ticket_timeline(ticket_id)).ticket.owner
        return who.name if who is not None else "-"

    try:
        name = _Env.with_store(config, work)
    except NoSuchContactError as exc:
        raise _contact_error(exc) from None
    except NoSuchTicketError:
        raise _no_ticket(ticket_id) from None
    except NotAnAlarmError:
        raise _fail(
            EXIT_FAILED,
            zh.ALARM_ERROR["not_alarm"].format(ticket=ticket_id),
            en.ALARM_ERROR["not_alarm"].format(ticket=ticket_id),
        ) from None
    except OutcomeError as exc:
        assert outcome is not None
        raise _outcome_refused(config, ticket_id, outcome, exc) from None
    except TicketError as exc:
        if str(exc) == f"no ticket {ticket_id}":
            raise _no_ticket(ticket_id) from None
        raise _refused(config, ticket_id, action, exc) from None
    key = done or action
    if name == "-" and f"{key}_nobody" in zh.DONE:
        key = f"{key}_nobody"  # nobody named, nobody had it: the operator's own action
    if outcome is not None:
        words = {**words, "outcome": zh.OUTCOME[outcome]}
        words_en = {**words, "outcome": en.OUTCOME[outcome]}
    else:
        words_en = words
    _say(
        both(
            zh.DONE[key].format(ticket=ticket_id, who=name, **words),
            en.DONE[key].format(ticket=ticket_id, who=name, **words_en),
        )
    )


ByOption = Annotated[
    str | None,
    typer.Option("--by", help="who did it: contact id, phone or name (default: the owner)"),
]


@ticket_app.command("accept")
def accept(
    ctx: typer.Context,
    by: Annotated[
        str | None,
        typer.Option("--by", help="who accepted (by phone, in person): contact id, phone or name"),
    ] = None,
) -> None:
    """Someone takes the ticket, told by phone or in person (接单); the box is told."""

    async def run(a: Application, ticket_id: int, who: int | None) -> None:
        assert who is not None
        result = await a.accept_ticket(ticket_id, who, CHANNEL)
        if not result.won:
            owner = await a.contact_name(result.owner_contact_id) or "-"
            raise _fail(
                EXIT_FAILED,
                zh.ERROR["taken"].format(ticket=ticket_id, owner=owner),
                en.ERROR["taken"].format(ticket=ticket_id, owner=owner),
            )

    _act(ctx, "accept", by, run)


@ticket_app.command("arrive")
def arrive(ctx: typer.Context, by: ByOption = None) -> None:
    """The responder is at the resident's home (到达)."""
    _act(ctx, "arrive", by, lambda a, t, who: a.arrive_ticket(t, who, CHANNEL))


OUTCOME_HELP = (
    "for an alarm, what it was: 真实情况 (real), 误报：晚起 (late_rising), 误报：外出 (away), "
    "误报：住院 (hospital), 误报：水表故障 (meter_fault), 误报：其他 (other)"
)


@ticket_app.command("resolve")
def resolve(
    ctx: typer.Context,
    category: Annotated[CategoryChoice | None, typer.Option(help="the kind of matter")] = None,
    note: Annotated[str | None, typer.Option(help="what was done")] = None,
    outcome: Annotated[str | None, typer.Option(help=OUTCOME_HELP)] = None,
    by: ByOption = None,
) -> None:
    """The matter is dealt with (已解决); an alarm with what it turned out to be."""
    kind = _CATEGORIES[category] if category is not None else None
    label_ = _outcome_of(outcome)
    _act(
        ctx,
        "resolve",
        by,
        lambda a, t, who: a.resolve_ticket(
            t, who, CHANNEL, category=kind, note=note, outcome=label_
        ),
        done="resolve" if label_ is None else "resolve_outcome",
        outcome=label_,
    )


@ticket_app.command("label")
def label_alarm(
    ctx: typer.Context,
    outcome: Annotated[str, typer.Argument(help=OUTCOME_HELP.removeprefix("for an alarm, "))],
    by: ByOption = None,
) -> None:
    """Say what a resolved alarm turned out to be (标注结果), e.g. one cleared by water again."""
    chosen = _outcome_of(outcome)
    assert chosen is not None
    _act(
        ctx,
        "label",
        by,
        lambda a, t, who: a.label_ticket(t, chosen, who, CHANNEL),
        outcome=chosen,
    )


@ticket_app.command("classify")
def classify(
    ctx: typer.Context,
    category: Annotated[CategoryChoice, typer.Argument(help="the kind of matter")],
    by: ByOption = None,
) -> None:
    """Set the kind of matter, which starts its day clock (分类)."""
    kind = _CATEGORIES[category]
    _act(
        ctx,
        "classify",
        by,
        lambda a, t, who: a.classify_ticket(t, kind, who, CHANNEL),
        category=_pick(zh.CATEGORY, en.CATEGORY, kind),
    )


@ticket_app.command("note")
def note(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="the note")],
    by: Annotated[
        str | None, typer.Option("--by", help="whose note: contact id, phone or name")
    ] = None,
) -> None:
    """Add a note to the ticket (备注)."""
    _act(ctx, "note", by, lambda a, t, who: a.note_ticket(t, who, CHANNEL, text))


@ticket_app.command("reassign")
def reassign(
    ctx: typer.Context,
    contact: Annotated[str, typer.Argument(help="the new owner: contact id, phone or name")],
    by: ByOption = None,
) -> None:
    """Hand the ticket over to another responder (转交)."""

    async def run(a: Application, ticket_id: int, who: int | None) -> None:
        to = await a.find_contact(contact)
        await a.reassign_ticket(ticket_id, to.id, who, CHANNEL)

    _act(ctx, "reassign", by, run)


def _refused(config: Path | None, ticket_id: int, action: str, exc: TicketError) -> typer.Exit:
    """Why the ticket's state refused the action, in words, from the ticket as it is now."""

    async def status(a: Application) -> str:
        return (await a.ticket_timeline(ticket_id)).ticket.status

    try:
        now = _Env.with_store(config, status)
    except (NoSuchTicketError, TicketError):
        return _fail(EXIT_FAILED, zh.ERROR["refused"], str(exc))
    if now not in zh.STATUS:
        return _fail(EXIT_FAILED, zh.ERROR["refused"], str(exc))
    return _fail(
        EXIT_FAILED,
        zh.ERROR["state"].format(ticket=ticket_id, status=zh.STATUS[now], action=zh.ACTION[action]),
        en.ERROR["state"].format(ticket=ticket_id, status=en.STATUS[now], action=en.ACTION[action]),
        (str(exc),),
    )


def _outcome_refused(
    config: Path | None, ticket_id: int, outcome: Outcome, exc: OutcomeError
) -> typer.Exit:
    """An outcome this alarm's kind cannot have: exit 2 naming the ones it can."""

    async def kind(a: Application) -> TicketKind:
        return (await a.ticket_timeline(ticket_id)).ticket.kind

    try:
        alarm = _Env.with_store(config, kind)
    except (NoSuchTicketError, TicketError):
        return _fail(EXIT_USAGE, zh.ERROR["refused"], str(exc))
    choices_zh, choices_en = _outcome_choices(OUTCOMES_OF[alarm])
    return _fail(
        EXIT_USAGE,
        zh.ALARM_ERROR["outcome_for_kind"].format(
            ticket=ticket_id, kind=zh.KIND[alarm], outcome=zh.OUTCOME[outcome], choices=choices_zh
        ),
        en.ALARM_ERROR["outcome_for_kind"].format(
            ticket=ticket_id, kind=en.KIND[alarm], outcome=en.OUTCOME[outcome], choices=choices_en
        ),
    )


def _no_ticket(ticket_id: int) -> typer.Exit:
    return _fail(
        EXIT_FAILED,
        zh.ERROR["no_ticket"].format(ticket=ticket_id),
        en.ERROR["no_ticket"].format(ticket=ticket_id),
    )


def _village_error(exc: NoSuchVillageError) -> typer.Exit:
    if not exc.candidates:
        return _fail(
            EXIT_USAGE,
            zh.ERROR["no_village"].format(text=exc.text),
            en.ERROR["no_village"].format(text=exc.text),
        )
    return _fail(
        EXIT_USAGE,
        zh.ERROR["many_villages"].format(text=exc.text),
        en.ERROR["many_villages"].format(text=exc.text),
        tuple(f"{u.code} {u.name}" for u in exc.candidates),
    )


def _contact_error(exc: NoSuchContactError) -> typer.Exit:
    if not exc.candidates:
        return _fail(
            EXIT_USAGE,
            zh.ERROR["no_contact"].format(text=exc.text),
            en.ERROR["no_contact"].format(text=exc.text),
        )
    return _fail(
        EXIT_USAGE,
        zh.ERROR["many_contacts"].format(text=exc.text),
        en.ERROR["many_contacts"].format(text=exc.text),
        tuple(f"{c.id} {c.name}（{role_words(c.role)}，{c.phone}）" for c in exc.candidates),
    )
