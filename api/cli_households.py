"""`bidao household away|show`: mark a home away, end it, and read a household's water watch.

An away request is checked against the store (the household exists, is watched, the return
time is still to come; refusals in Chinese, then English, on stderr, exit status 2) and
queued there; a gateway running on the same data folder applies it within
`water.requests_poll_s`, or at its next start. Channel "cli". Words are kept in
api/cli_households_zh.py and api/cli_households_en.py.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import datetime, time
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

import typer

from api import cli
from api.cli_households_en import TEXT as EN
from api.cli_households_zh import TEXT as ZH
from gateway.application import (
    Application,
    NoSuchContactError,
    WatchView,
    WaterRequest,
    WaterRequestError,
)

T = TypeVar("T")

DATE_ONLY_RETURN = time(12, 0)
"""A return date without a time means that day at noon."""

household_app = typer.Typer(
    help="A household's water watch: away mode, and what the watch sees (住户用水看护).",
    no_args_is_help=True,
)

_TIMESTAMP = re.compile(r"\b1\d{9}\b")


def _both(key: str, **params: str) -> str:
    """The Chinese line, then the English one."""
    return f"{ZH[key].format(**params)}\n{EN[key].format(**params)}"


def _refuse(key: str, **params: str) -> typer.Exit:
    cli._complain("错误：" + ZH[key].format(**params))
    english = {**params, "why": params.get("why_en", params.get("why", ""))}
    cli._complain("error: " + EN[key].format(**english))
    return typer.Exit(cli.EXIT_USAGE)


def _zone(config: cli.ConfigOption) -> ZoneInfo:
    return ZoneInfo(cli._settings(config).tickets.timezone)


def _local(at: float, zone: ZoneInfo) -> str:
    return datetime.fromtimestamp(at, zone).strftime("%Y-%m-%d %H:%M")


def parse_until(text: str, zone: ZoneInfo) -> float:
    """A local date (that day at noon) or date and time, as a timestamp; ValueError if not."""
    cleaned = text.strip().replace("T", " ")
    for pattern in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
        try:
            return datetime.strptime(cleaned, pattern).replace(tzinfo=zone).timestamp()
        except ValueError:
            continue
    day = datetime.strptime(cleaned, "%Y-%m-%d").replace(tzinfo=zone).date()
    return datetime.combine(day, DATE_ONLY_RETURN, zone).timestamp()


def _run(config: cli.ConfigOption, work: Callable[[Application], Awaitable[T]]) -> T:
    """Run against the store; a refused request is said in both languages, exit status 2."""
    try:
        return cli._with_store(config, work)
    except WaterRequestError as exc:
        raise _refusal(exc) from None
    except NoSuchContactError as exc:
        cli._complain(f"错误：{exc}\nerror: {exc}")
        raise typer.Exit(cli.EXIT_USAGE) from None


def _refusal(exc: WaterRequestError) -> typer.Exit:
    if exc.reason == "not_watched":
        key = f"not_watched_{exc.detail}"
        return _refuse("err_not_watched", household=exc.household, why=ZH[key], why_en=EN[key])
    return _refuse(f"err_{exc.reason}", household=exc.household)


def _running_note(config: cli.ConfigOption) -> None:
    seconds = f"{cli._settings(config).water.requests_poll_s:g}"
    cli._say(_both("running_note", seconds=seconds))


def household_away(
    household: Annotated[str, typer.Argument(help="household code")],
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="expected return, local: 2025-05-01 (that day at 12:00) or 2025-05-01 18:30",
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="end away mode now")] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="who says so: contact id, phone or name")
    ] = None,
    config: cli.ConfigOption = None,
) -> None:
    """Mark the home away until a return time (no zero-use alarm), or end it (登记外出)."""
    if (until is None) == (not clear):
        raise _refuse("err_until_or_clear")
    zone = _zone(config)

    async def work(application: Application) -> tuple[WatchView, WaterRequest]:
        view = await application.household_watch(household)
        if clear:
            return view, await application.clear_away(household, "cli")
        assert until is not None
        try:
            at = parse_until(until, zone)
        except ValueError:
            raise _refuse("err_bad_time", text=until) from None
        contact = None if by is None else (await application.find_contact(by)).id
        try:
            request = await application.mark_away(household, at, contact, "cli")
        except WaterRequestError as exc:
            if exc.reason == "past":
                raise _refuse("err_past", until=_local(at, zone)) from None
            raise
        return view, request

    view, request = _run(config, work)
    resident = view.resident or ""
    if request.action == "clear":
        cli._say(_both("clear_queued", resident=resident, household=household))
    else:
        assert request.until is not None
        until_text = _local(request.until, zone)
        cli._say(_both("away_queued", resident=resident, household=household, until=until_text))
    _running_note(config)


def household_show(
    household: Annotated[str, typer.Argument(help="household code")],
    config: cli.ConfigOption = None,
) -> None:
    """Whether the household is watched and why, its phase, routine and record (用水看护)."""
    zone = _zone(config)
    view = _run(config, lambda a: a.household_watch(household))
    for line in show_lines(view, zone):
        cli._say(line)


def _duration(seconds: float, words: dict[str, str]) -> str:
    minutes = round(seconds / 60)
    h, m = divmod(minutes, 60)
    return words["hours"].format(h=h) if m == 0 else words["hours_minutes"].format(h=h, m=m)


def show_lines(view: WatchView, zone: ZoneInfo) -> list[str]:
    """What `bidao household show` prints: each fact in Chinese, then in English."""
    lines: list[str] = []
    state_key = f"{'' if view.watched else 'not_'}watched_{view.reason}"
    lines += _pair(
        lambda w: w["title"].format(
            household=view.household_code, resident=view.resident or "", state=w[state_key]
        )
    )
    watch = view.watch
    if watch is not None:
        lines += _pair(
            lambda w: w["phase_line"].format(phase=_phase(view, w, zone)),
        )
    if view.meter is not None:
        if view.last_reading_at is None:
            lines += _pair(lambda w: w["meter_never"].format(meter=view.meter))
        else:
            at = _local(view.last_reading_at, zone)
            lines += _pair(lambda w: w["meter_line"].format(meter=view.meter, at=at))
    if view.watched:
        lines += _pair(lambda w: _routine(view, w))
    for request in view.pending:
        lines += [_pending(request, ZH, zone), _pending(request, EN, zone)]
    lines += _pair(lambda w: w["log_title"] if view.log else w["log_none"])
    for line in view.log:
        key = f"log_{line.kind}"
        detail = _TIMESTAMP.sub(lambda m: _local(float(m.group()), zone), line.detail)
        zh = ZH.get(key, line.kind)
        en = EN.get(key, line.kind)
        lines.append(f"  {_local(line.at, zone)}  {zh} / {en}  {detail}".rstrip())
    return lines


def _pair(make: Callable[[dict[str, str]], str]) -> list[str]:
    return [make(ZH), make(EN)]


def _phase(view: WatchView, words: dict[str, str], zone: ZoneInfo) -> str:
    watch = view.watch
    assert watch is not None
    phase = watch.phase.value
    if phase == "asking" and watch.asked_at is not None:
        return words["phase_asking"].format(at=_local(watch.asked_at, zone))
    if phase == "alarmed" and watch.alarm_at is not None:
        return words["phase_alarmed"].format(at=_local(watch.alarm_at, zone))
    if phase == "away" and watch.away_until is not None:
        return words["phase_away"].format(until=_local(watch.away_until, zone))
    return words.get(f"phase_{phase}", phase)


def _routine(view: WatchView, words: dict[str, str]) -> str:
    routine = view.watch.routine if view.watch is not None else None
    if routine is None:
        return words["no_routine"].format(
            need=view.learn_min_days, window=_duration(view.window_s, words)
        )
    but = words["all_days"] if routine.rank == 1 else words["all_but"].format(n=routine.rank - 1)
    params = {
        "days": str(routine.of_days),
        "but": but,
        "quiet": _duration(routine.usual_longest_quiet_s, words),
        "window": _duration(routine.window_s, words),
    }
    first = routine.usual_first_use_by_min
    if first is None:
        return words["routine_no_first"].format(**params)
    return words["routine"].format(first=f"{first // 60:02d}:{first % 60:02d}", **params)


def _pending(request: WaterRequest, words: dict[str, str], zone: ZoneInfo) -> str:
    if request.action == "away" and request.until is not None:
        what = words["pending_away"].format(until=_local(request.until, zone))
    else:
        what = words["pending_clear"]
    return words["pending"].format(what=what, at=_local(request.requested_at, zone))


def register(app: typer.Typer) -> None:
    """Add `bidao household away|show`."""
    household_app.command("away")(household_away)
    household_app.command("show")(household_show)
    app.add_typer(household_app, name="household")
