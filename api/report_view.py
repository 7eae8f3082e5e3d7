"""`bidao report` for a township or county official: tables, legend, plain words, exports.

Everything here reads the facade's `Report`; the words come from api/report_strings.py.
Tables are Rich tables, which measure double-width (Chinese) characters as two cells, so
columns line up in a terminal. The export for the county office is CSV (UTF-8 with a byte
order mark, which Excel needs to read Chinese) or an Excel workbook; text cells that a
spreadsheet would run as a formula are neutralised with a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from api.report_strings import LANGUAGES
from gateway.application import ALARM_KINDS, UNPLACED, AlarmStats, GridUnit, Report, TicketStats

MAX_DAYS: Final = 3660.0
"""The longest period a report covers (ten years)."""

_ALWAYS_SHOWN = ("county", "township", "village")
"""Units of these levels appear in the statistics even with no calls; smaller ones only with."""
_COLOUR_STYLES: Final = {
    "red": "bold red",
    "orange": "dark_orange",
    "yellow": "yellow",
    "green": "green",
}
_CARD_STYLES: Final = {"blue": "bold blue", "yellow": "yellow", "red": "bold red"}
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | None


class ReportInputError(ValueError):
    """A report option that cannot be used (a period that is not a positive number of days)."""


def parse_days(text: str) -> float:
    """The period in days from what a person typed: a finite number above 0, at most MAX_DAYS."""
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not (math.isfinite(days) and 0 < days <= MAX_DAYS):
        message = "\n".join(
            words["error.days"].format(value=text, max=f"{MAX_DAYS:g}")
            for words in LANGUAGES.values()
        )
        raise ReportInputError(message)
    return days


def neutralise(text: str) -> str:
    """A text cell a spreadsheet will show as text, never run as a formula."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


@dataclass(frozen=True, slots=True)
class _Place:
    code: str
    level: str
    name: str
    depth: int


class ReportView:
    """One report in one language: the tables for the terminal and the rows for export."""

    def __init__(self, report: Report, lang: str = "zh") -> None:
        self.report = report
        self.words = LANGUAGES[lang]

    def t(self, key: str, **fields: object) -> str:
        """The words for `key` in this language."""
        return self.words[key].format(**fields)

    # -- small formats ------------------------------------------------------------------

    def duration(self, seconds: float | None) -> str:
        """A time in plain words: seconds, minutes, hours or days, one decimal at most."""
        if seconds is None or math.isinf(seconds):
            return self.t("none")
        for key, size, limit in (
            ("seconds", 1, 60),
            ("minutes", 60, 3600),
            ("hours", 3600, 2 * 86400),
            ("days", 86400, math.inf),
        ):
            if seconds < limit:
                return self.t(key, n=_number(seconds / size))
        raise AssertionError("unreachable")  # pragma: no cover

    def percent(self, value: float | None) -> str:
        """A share as a whole percentage, or a dash when there is nothing to divide."""
        return self.t("none") if value is None else self.t("percent", n=f"{value * 100:.0f}")

    def _local(self, unix: float) -> str:
        return datetime.fromtimestamp(unix, ZoneInfo(self.report.timezone)).strftime(
            "%Y-%m-%d %H:%M"
        )

    # -- the grid ------------------------------------------------------------------------

    def places(self) -> list[_Place]:
        """Every unit, county first, each followed by the units inside it (by code)."""
        units = self.report.units
        children: dict[str | None, list[str]] = {}
        for unit in units.values():
            parent = unit.parent_code if unit.parent_code in units else None
            children.setdefault(parent, []).append(unit.code)
        out: list[_Place] = []

        def visit(code: str, depth: int) -> None:
            unit = units[code]
            out.append(_Place(code, unit.level, unit.name, depth))
            for child in sorted(children.get(code, ())):
                visit(child, depth + 1)

        for root in sorted(children.get(None, ())):
            visit(root, 0)
        return out

    def place_of(self, unit_code: str | None) -> str:
        """Where a person works, by name: from the village down, or the unit above it."""
        units = self.report.units
        chain: list[GridUnit] = []
        code = unit_code
        while code is not None and code in units and len(chain) < 10:
            chain.append(units[code])
            code = units[code].parent_code
        if not chain:
            return self.t("none")
        below = [u.name for u in reversed(chain) if u.level not in ("county", "township")]
        return self.t("place.sep").join(below) if below else chain[0].name

    def path_of(self, unit_code: str) -> str:
        """The names of the units above `unit_code`, county first."""
        units = self.report.units
        names: list[str] = []
        code = units[unit_code].parent_code if unit_code in units else None
        while code is not None and code in units and len(names) < 10:
            names.append(units[code].name)
            code = units[code].parent_code
        return self.t("place.sep").join(reversed(names))

    def _level(self, level: str) -> str:
        return self.words.get(f"level.{level}", level)

    def _role(self, role: str) -> str:
        return self.words.get(f"role.{role}", role)

    def _people(self) -> Iterator[tuple[int, str, str, str]]:
        """(contact id, name, role, place) of everyone who accepted a call, by role and name."""
        rows = []
        for key in self.report.statistics:
            if not key.startswith("contact:"):
                continue
            contact_id = int(key.removeprefix("contact:"))
            contact = self.report.contacts.get(contact_id)
            if contact is None:
                rows.append((contact_id, self.t("unknown_person"), "", self.t("none")))
            else:
                rows.append(
                    (
                        contact_id,
                        contact.name,
                        self._role(contact.role),
                        self.place_of(contact.unit_code),
                    )
                )
        yield from sorted(rows, key=lambda r: (r[2], r[1], r[0]))

    def _shown(self) -> list[_Place]:
        stats = self.report.statistics
        return [
            p
            for p in self.places()
            if p.level in _ALWAYS_SHOWN or (p.code in stats and stats[p.code].requests)
        ]

    # -- the terminal --------------------------------------------------------------------

    def render(self, console: Console) -> None:
        """Print the whole report."""
        r = self.report
        days = _number(r.days)
        say: Callable[[str], None] = lambda text: console.print(  # noqa: E731
            text, markup=False, highlight=False, soft_wrap=True
        )
        say(self.t("title"))
        say(self.t("period", start=self._local(r.start), end=self._local(r.end), days=days))
        say("")
        console.print(self.colours_table())
        for line in self.legend():
            say(line)
        say("")
        console.print(self.statistics_table())
        say(self.t("stats.notes"))
        say(self.t("stats.notes_clocks", **self._clock_words()))
        unplaced = r.statistics.get(UNPLACED)
        if unplaced is not None:
            say(self.t("stats.unplaced", count=unplaced.requests))
        sentences = self.time_sentences()
        if sentences:
            say("")
            say(self.t("times.title"))
            for sentence in sentences:
                say("  " + sentence)
        say("")
        people = self.people_table()
        if people.row_count:
            console.print(people)
        else:
            say(self.t("people.title", days=days))
            say(self.t("people.none", days=days))
        say("")
        cards = self.cards_table()
        if cards.row_count:
            console.print(cards)
            say(self.cards_legend())
        else:
            say(self.t("cards.title", days=days))
            say(self.t("cards.none"))
        say("")
        say(self.t("boxes.unused", days=_number(r.unused_days), count=len(r.unused_boxes)))
        say("")
        for line in self.promise_lines():
            say(line)
        say("")
        alarms = self.alarms_table()
        if alarms.row_count:
            console.print(alarms)
            say(self.t("alarms.notes"))
        else:
            say(self.t("alarms.title", days=days))
            say(self.t("alarms.none", days=days))

    def _table(self, title: str, *headers: str, text: int = 1) -> Table:
        """A table whose first `text` columns hold words (left) and the rest figures (right)."""
        table = Table(title=title, title_justify="left", box=box.SIMPLE, show_edge=False)
        for i, header in enumerate(headers):
            table.add_column(header, justify="left" if i < text else "right")
        return table

    def colours_table(self) -> Table:
        """The warning colour of every unit, the chain from the county down."""
        table = self._table(
            self.t("colours.title"),
            self.t("colours.unit"),
            self.t("colours.level"),
            self.t("colours.colour"),
            self.t("colours.live"),
            self.t("colours.overdue"),
            self.t("colours.oldest"),
            text=3,
        )
        for place in self.places():
            w = self.report.colours.get(place.code)
            if w is None:
                continue
            table.add_row(
                Text("  " * place.depth + place.name),
                self._level(place.level),
                Text(self.t(f"colour.{w.colour}"), style=_COLOUR_STYLES[w.colour]),
                str(w.live),
                str(w.overdue),
                self.duration(w.oldest_age_s) if w.live else self.t("none"),
            )
        return table

    def _clock_words(self) -> dict[str, str]:
        policy = self.report.policy
        limits = self.t("limit.sep").join(
            self.t(
                "limit",
                category=self.t(f"category.{category}"),
                duration=self.duration(seconds),
            )
            for category, seconds in policy.day_clock_s.items()
        )
        return {
            "accept": self.duration(policy.accept_within_s),
            "arrive": self.duration(policy.arrive_within_s),
            "limits": limits,
        }

    def legend(self) -> list[str]:
        """What each colour means, with the thresholds in force."""
        w = self.report.warnings
        fields = {
            "red_overdue": w.red_overdue,
            "red_oldest": self.duration(w.red_oldest_s),
            "orange_overdue": w.orange_overdue,
            "yellow_overdue": w.yellow_overdue,
            "yellow_open": w.yellow_open,
        }
        lines = [self.t("legend.title")]
        lines += [
            "  " + self.t(f"legend.{c}", **fields) for c in ("red", "orange", "yellow", "green")
        ]
        lines.append("  " + self.t("legend.overdue", **self._clock_words()))
        lines.append("  " + self.t("legend.counted"))
        return lines

    def statistics_table(self) -> Table:
        """The figures of the period per unit, county first."""
        table = self._table(
            self.t("stats.title", days=_number(self.report.days)),
            self.t("stats.unit"),
            *(
                self.t(f"stats.{k}")
                for k in (
                    "requests",
                    "closed",
                    "closure",
                    "rated",
                    "satisfaction",
                    "reviews",
                    "cancelled",
                    "escalated",
                    "accept_on_time",
                    "arrive_on_time",
                    "day_on_time",
                )
            ),
        )
        for place in self._shown():
            s = self.report.statistics.get(place.code)
            if s is None:
                table.add_row(Text("  " * place.depth + place.name), "0", *[""] * 10)
                continue
            table.add_row(
                Text("  " * place.depth + place.name),
                str(s.requests),
                str(s.closed),
                self.percent(s.closure_rate),
                str(s.rated),
                self.percent(s.satisfaction),
                str(s.reviews),
                str(s.cancelled),
                str(s.escalated),
                self.percent(s.accept_on_time_rate),
                self.percent(s.arrive_on_time_rate),
                self.percent(s.day_on_time_rate),
            )
        return table

    def time_sentences(self) -> list[str]:
        """How long accepting and arriving took, in plain words, county to village."""
        out = []
        for place in self._shown():
            s = self.report.statistics.get(place.code)
            if place.level not in _ALWAYS_SHOWN or s is None:
                continue
            calls = s.requests - s.cancelled
            if calls <= 0:
                continue
            text = self.t("times.calls", unit=place.name, calls=calls)
            half, ninety = s.accepted_within(0.5), s.accepted_within(0.9)
            if half is None or math.isinf(half):
                text += self.t("times.half_not")
            else:
                text += self.t("times.half", t=self.duration(half))
                if ninety is None or math.isinf(ninety):
                    text += self.t("times.ninety_not")
                else:
                    text += self.t("times.ninety", t=self.duration(ninety))
            if s.arrived:
                text += self.t(
                    "times.arrive",
                    arrived=s.arrived,
                    half=self.duration(s.arrived_within(0.5)),
                    ninety=self.duration(s.arrived_within(0.9)),
                )
            elif s.accepted:
                text += self.t("times.no_arrival")
            out.append(text + self.t("times.end"))
        return out

    def people_table(self) -> Table:
        """Everyone who accepted a call in the period, by name and role."""
        table = self._table(
            self.t("people.title", days=_number(self.report.days)),
            self.t("people.name"),
            self.t("people.role"),
            self.t("people.place"),
            self.t("people.accepted"),
            self.t("stats.accept_on_time"),
            self.t("stats.arrive_on_time"),
            self.t("people.closed"),
            self.t("stats.satisfaction"),
            self.t("stats.reviews"),
            text=3,
        )
        for contact_id, name, role, place in self._people():
            s = self.report.statistics[f"contact:{contact_id}"]
            table.add_row(
                Text(name),
                role,
                Text(place),
                str(s.accepted),
                self.percent(s.accept_on_time_rate),
                self.percent(s.arrive_on_time_rate),
                str(s.closed),
                self.percent(s.satisfaction),
                str(s.reviews),
            )
        return table

    def cards_table(self) -> Table:
        """The neighbour chiefs' blue, yellow and red cards."""
        table = self._table(
            self.t("cards.title", days=_number(self.report.days)),
            self.t("cards.name"),
            self.t("cards.place"),
            self.t("cards.card"),
            self.t("cards.on_time"),
            self.t("cards.tickets"),
            text=3,
        )
        for card in sorted(self.report.cards, key=lambda c: (c.name, c.contact_id)):
            contact = self.report.contacts.get(card.contact_id)
            table.add_row(
                Text(card.name),
                Text(self.place_of(contact.unit_code if contact else None)),
                Text(self.t(f"card.{card.colour}"), style=_CARD_STYLES[card.colour]),
                self.t("cards.no_tickets") if card.on_time is None else self.percent(card.on_time),
                str(card.tickets),
            )
        return table

    def cards_legend(self) -> str:
        """What each card means, with the thresholds in force."""
        c = self.report.card_thresholds
        return self.t(
            "cards.legend", blue=self.percent(c.blue_on_time), yellow=self.percent(c.yellow_on_time)
        )

    def promise_lines(self) -> list[str]:
        """Call boxes offline for more than a day, per village: the promise broken."""
        days = _number(self.report.days)
        promises = self.report.broken_promises
        lines = [self.t("promise.title", days=days)]
        if not promises:
            return [*lines, "  " + self.t("promise.none", days=days)]
        villages = [p for p in self.places() if p.code in promises]
        for code, name in [(p.code, p.name) for p in villages] + (
            [(UNPLACED, self.t("promise.unplaced"))] if UNPLACED in promises else []
        ):
            promise = promises[code]
            lines.append(
                "  "
                + self.t(
                    "promise.line",
                    unit=name,
                    boxes=len(promise.boxes),
                    hours=_number(promise.hours),
                )
            )
        return [*lines, self.t("promise.notes")]

    def promise_of(self, unit_code: str) -> tuple[int, float]:
        """Boxes offline over a day and their hours in the unit's villages (itself included)."""
        units = self.report.units
        boxes: set[str] = set()
        hours = 0.0
        for village, promise in self.report.broken_promises.items():
            code: str | None = village
            for _ in range(10):
                if code is None or code == unit_code:
                    break
                code = units[code].parent_code if code in units else None
            if code == unit_code:
                boxes |= promise.boxes
                hours += promise.hours
        return len(boxes), round(hours, 1)

    def _alarm_places(self) -> list[_Place]:
        """County, townships and villages (and smaller units) that had alarms in the period."""
        return [p for p in self.places() if p.code in self.report.alarms]

    def causes(self, a: AlarmStats) -> str:
        """Why the false alarms were false: 晚起2、外出1."""
        return self.t("cause.sep").join(
            self.t("cause", cause=self.t(f"cause.{o}"), n=n) for o, n in a.cause_counts()
        )

    def alarms_table(self) -> Table:
        """Per unit and rule: alarms, labelled real, labelled false, unlabelled, false rate."""
        table = self._table(
            self.t("alarms.title", days=_number(self.report.days)),
            self.t("alarms.unit"),
            self.t("alarms.kind"),
            self.t("alarms.count"),
            self.t("alarms.real"),
            self.t("alarms.false"),
            self.t("alarms.unlabelled"),
            self.t("alarms.rate"),
            self.t("alarms.causes"),
            text=2,
        )
        for place in self._alarm_places():
            if place.level not in _ALWAYS_SHOWN:
                continue
            for kind in ALARM_KINDS:
                a = self.report.alarms[place.code][kind]
                if not a.alarms:
                    continue
                table.add_row(
                    Text("  " * place.depth + place.name),
                    self.t(f"alarm.{kind}"),
                    str(a.alarms),
                    str(a.real),
                    str(a.false),
                    str(a.unlabelled),
                    self.percent(a.false_rate),
                    Text(self.causes(a) or self.t("none"), justify="left"),
                )
        return table

    def alarm_figures(self, unit_code: str | None) -> list[Cell]:
        """The export's alarm columns of one unit (None: a person's row, which has none)."""
        per_kind = self.report.alarms.get(unit_code) if unit_code is not None else None
        cells: list[Cell] = []
        for kind in ALARM_KINDS:
            a = per_kind[kind] if per_kind is not None else None
            if a is None:
                cells += [None] * 6 if unit_code is None else [0, 0, 0, 0, None, None]
                continue
            causes = self.causes(a)
            cells += [a.alarms, a.real, a.false, a.unlabelled, _pct(a.false_rate), causes or None]
        return cells

    def alarm_headers(self) -> list[str]:
        """The export's alarm column headers: per rule, the table's columns."""
        out: list[str] = []
        for kind in ALARM_KINDS:
            name = self.t(f"alarm.{kind}")
            out.extend(
                self.t("export.alarm", kind=name, what=self.t(f"alarms.{what}"))
                for what in ("count", "real", "false", "unlabelled")
            )
            out.append(self.t("export.alarm", kind=name, what=self.t("export.alarm.rate")))
            out.append(self.t("export.alarm", kind=name, what=self.t("alarms.causes")))
        return out

    # -- the export ----------------------------------------------------------------------

    def export_headers(self) -> list[str]:
        """The column headers of the export, in this language."""
        keys = (
            "kind",
            "level_or_role",
            "name",
            "place",
            "code",
            "colour",
            "live",
            "overdue",
            "requests",
            "closed",
            "closure",
            "rated",
            "satisfied",
            "satisfaction",
            "reviews",
            "cancelled",
            "escalated",
            "accepted",
            "accept_on_time",
            "accept_half",
            "accept_ninety",
            "arrived",
            "arrive_on_time",
            "day_on_time",
            "offline_boxes",
            "offline_hours",
        )
        return [self.t(f"export.{k}") for k in keys] + self.alarm_headers()

    def export_rows(self) -> list[list[Cell]]:
        """One row per unit (county down) and per person who accepted; numbers as numbers."""
        rows: list[list[Cell]] = []
        for place in self._shown():
            w = self.report.colours.get(place.code)
            s = self.report.statistics.get(place.code)
            rows.append(
                [
                    self.t("export.kind.unit"),
                    self._level(place.level),
                    place.name,
                    self.path_of(place.code),
                    place.code,
                    self.t(f"colour.{w.colour}") if w else None,
                    w.live if w else None,
                    w.overdue if w else None,
                    *_figures(s),
                    *self.promise_of(place.code),
                    *self.alarm_figures(place.code),
                ]
            )
        for contact_id, name, role, place_name in self._people():
            s = self.report.statistics[f"contact:{contact_id}"]
            rows.append(
                [
                    self.t("export.kind.person"),
                    role,
                    name,
                    place_name,
                    None,
                    None,
                    None,
                    None,
                    *_figures(s),
                    None,
                    None,
                    *self.alarm_figures(None),
                ]
            )
        return rows

    def legend_lines(self) -> list[str]:
        """The title, period, legends and definitions, for the export's legend sheet."""
        r = self.report
        days = _number(r.days)
        return [
            self.t("title"),
            self.t("period", start=self._local(r.start), end=self._local(r.end), days=days),
            *self.legend(),
            self.t("stats.notes"),
            self.t("stats.notes_clocks", **self._clock_words()),
            self.cards_legend(),
            *self.promise_lines(),
            self.t("alarms.notes"),
        ]

    def write_csv(self, path: Path) -> int:
        """Write the export as CSV (UTF-8 with BOM); returns the number of data rows."""
        rows = self.export_rows()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(self.export_headers())
        for row in rows:
            writer.writerow(["" if c is None else _safe(c) for c in row])
        _write_atomically(path, buffer.getvalue().encode("utf-8-sig"))
        return len(rows)

    def write_xlsx(self, path: Path) -> int:
        """Write the export as an Excel workbook; returns the number of data rows."""
        from openpyxl import Workbook  # loads only for this export
        from openpyxl.styles import Font

        rows = self.export_rows()
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.title = self.t("export.sheet.figures")
        sheet.append(self.export_headers())
        for row in rows:
            sheet.append([_safe(c) for c in row])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.freeze_panes = "D2"
        cards = book.create_sheet(self.t("export.sheet.cards"))
        cards.append(
            [self.t(f"cards.{k}") for k in ("name", "place", "card", "on_time", "tickets")]
        )
        for card in sorted(self.report.cards, key=lambda c: (c.name, c.contact_id)):
            contact = self.report.contacts.get(card.contact_id)
            cards.append(
                [
                    _safe(card.name),
                    _safe(self.place_of(contact.unit_code if contact else None)),
                    self.t(f"card.{card.colour}"),
                    None if card.on_time is None else round(card.on_time * 100, 1),
                    card.tickets,
                ]
            )
        legend = book.create_sheet(self.t("export.sheet.legend"))
        for line in self.legend_lines():
            legend.append([_safe(line.strip())])
        buffer = io.BytesIO()
        book.save(buffer)
        _write_atomically(path, buffer.getvalue())
        return len(rows)


def _number(value: float) -> str:
    """A figure with at most one decimal and no trailing zero: 30, 1.6."""
    return f"{round(value, 1):g}"


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _minutes(value: float | None) -> float | None:
    return None if value is None or math.isinf(value) else round(value / 60, 1)


def _figures(s: TicketStats | None) -> Sequence[Cell]:
    if s is None:
        return [0, *[None] * 15]
    return [
        s.requests,
        s.closed,
        _pct(s.closure_rate),
        s.rated,
        s.satisfied,
        _pct(s.satisfaction),
        s.reviews,
        s.cancelled,
        s.escalated,
        s.accepted,
        _pct(s.accept_on_time_rate),
        _minutes(s.accepted_within(0.5)),
        _minutes(s.accepted_within(0.9)),
        s.arrived,
        _pct(s.arrive_on_time_rate),
        _pct(s.day_on_time_rate),
    ]


def _safe(cell: Cell) -> Cell:
    return neutralise(cell) if isinstance(cell, str) else cell


def _write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` whole, or leave it as it was (never half written)."""
    directory = path.parent if str(path.parent) else Path()
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
