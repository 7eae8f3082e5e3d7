"""Bulk import of the grid from CSV: a file is checked whole, then written whole, reruns are safe.

Three files, each with a header row (UTF-8, an Excel byte-order mark is fine); every column
has an English header and a Chinese one (import_locales/zh_cn.py), and README.md describes
them:

- units:       code, level, name, parent_code
- households:  household_code, neighbourhood_code, address, resident_name, resident_phone,
               lives_alone, five_guarantee, needs_care, consent, key_safe_code, health_notes,
               device_id, device_key       (the last two register the household's call box)
- contacts:    name, role, unit_code, household_code, phone, language, available_from,
               available_to, notify  (optional: what the contact is told, e.g.
               "accepted;resolved", or "none"; empty: the defaults of the role)

Every cell is trimmed (line breaks within it become a space) and checked against its
column's rule (RULES: a length cap, no control or invisible characters, no leading '=',
'+', '-' or '@' that a spreadsheet would run as a formula, and the column's own form);
phone numbers and times are accepted as people write them and kept in one form
(gateway/domain/grid.py). Every row is then checked
against the file and the store. An error is reported with its line in the file (the line
its record starts on, so a quoted field that spans lines does not shift the lines after
it), its column and the rule, in Chinese and in English (import_locales/); a row that
depends on a rejected row of the same file (a unit whose parent row was rejected) is
rejected too, and so is a row that repeats the key of an earlier row (a household code, a
device_id, a unit code, a contact).

A file with any error is rejected whole: nothing of it is written, and the first
MAX_ERRORS_SHOWN errors are reported (with the count of the rest). A file without errors is
written in chunks of `ImportSettings.chunk_rows` rows, each chunk matched against the store
again just before its own short transaction, so that ingest keeps committing (and
acknowledging) between them, each row whole: a household goes in with its resident and its
call box, or not at all, and a unit after its parent. A write that fails part-way (or a row
that another writer made wrong since the check) stops the import; the chunks before it
stay, and importing the file again finishes it. A problem with the file itself (not UTF-8,
a required column missing, an unknown or repeated column, more than MAX_ROWS rows) raises
ImportRejectedError.

Importing the same file again changes nothing. Rows are matched on their natural keys:
units by code, households by household_code (the resident by household_code and name),
call boxes by device_id, contacts by role, unit_code or household_code, and phone (as
kept, so "139-0000-0020" and "13900000020" are the same contact). A matching row with the
same content is unchanged; with other content it is updated (a unit's name; a household's
neighbourhood and address and its resident's fields; a contact's name, language and
hours). A resident_name the household does not have yet adds a resident beside the
existing ones. Moving a unit to another level or parent, or giving a call box another key
or household (or a household a second box), is refused: keys are rotated and boxes moved by
provisioning, not by a spreadsheet. A new call box gets its silence deadline at once, as
`bidao device add` gives it; a known box keeps its deadline. With `check`, everything is
checked and counted and nothing is written.

Adding a column: name it in COLUMNS (and REQUIRED if it must be filled), give it a rule in
RULES (without one it is plain text of at most TEXT_MAX characters), a Chinese header in
import_locales/zh_cn.py HEADERS, and read `row["column"]` where the row is turned into
what is stored.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import string
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from types import ModuleType
from typing import Literal, cast, get_args

from alerts.templates import LOCALES as MESSAGE_LANGUAGES
from firmware_protocol import KEY_LEN, ProtocolError, parse_device_id
from gateway.clock import Clock
from gateway.config import ImportSettings, Role, SupervisionSettings
from gateway.domain.devices import DeviceRecord
from gateway.domain.grid import (
    ADDRESS_MAX,
    NAME_MAX,
    NOTES_MAX,
    TEXT_MAX,
    UNIT_NAME_MAX,
    ContactRow,
    FieldError,
    GridRow,
    GridUnit,
    HouseholdRow,
    ResidentRow,
    clock_time,
    grid_code,
    key_safe_code,
    phone_number,
    plain_text,
)
from gateway.errors import GatewayError
from gateway.ingest.registry import SILENT_DEADLINE
from gateway.metrics import GatewayMetrics
from gateway.services.import_locales import en, zh_cn
from gateway.store.ports import Deadline, GridReader, Store

ImportKind = Literal["units", "households", "contacts"]
Outcome = Literal["inserted", "updated", "unchanged", "rejected"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
MAX_ROWS = 200_000
MAX_ERRORS_SHOWN = 20
"""Errors reported per file; the rest are counted."""
LEVELS = ("county", "township", "village", "area", "group", "neighbourhood")
ROLES: tuple[str, ...] = get_args(Role)
LANGUAGES: tuple[str, ...] = tuple(MESSAGE_LANGUAGES)
TEXTS: tuple[ModuleType, ...] = (zh_cn, en)
"""The languages of the report, in the order it gives them: Chinese first."""
COLUMNS: dict[ImportKind, tuple[str, ...]] = {
    "units": ("code", "level", "name", "parent_code"),
    "households": (
        "household_code",
        "neighbourhood_code",
        "address",
        "resident_name",
        "resident_phone",
        "lives_alone",
        "five_guarantee",
        "needs_care",
        "consent",
        "key_safe_code",
        "health_notes",
        "device_id",
        "device_key",
    ),
    "contacts": (
        "name",
        "role",
        "unit_code",
        "household_code",
        "phone",
        "language",
        "available_from",
        "available_to",
        "notify",
    ),
}
NOTIFY_EVENTS = ("called", "accepted", "arrived", "resolved", "first_use")
"""What the optional `notify` column may list (separated by `;` or `|`); `none` for nothing,
empty for the defaults of the contact's role. `first_use` (family only, opt-in): the day's
first water use at a watched household (gateway.services.water)."""
REQUIRED: dict[ImportKind, tuple[str, ...]] = {
    "units": ("code", "level", "name"),
    "households": ("household_code", "neighbourhood_code", "resident_name"),
    "contacts": ("name", "role", "phone"),
}
FLAGS = ("lives_alone", "five_guarantee", "needs_care", "consent")
# Reading and checking a file runs in a worker thread, which pauses every _PACE_ROWS rows.
_PACE_ROWS = 200
_PACE_PAUSE_S = 0.0002

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
Rule = Callable[[str], str]
"""A column's rule: the value as kept, or FieldError (the cell is trimmed and not empty)."""


def _choice(rule: str, canonical: Sequence[str], kind: str) -> Rule:
    """A rule for a column of fixed values, written in English or in any report language."""
    names = {value.lower(): value for value in canonical}
    for texts in reversed(TEXTS):
        for value, aliases in texts.VALUES.get(kind, {}).items():
            names.update({alias.lower(): value for alias in aliases})
    choices = ", ".join(canonical)

    def check(value: str) -> str:
        found = names.get(value.lower())
        if found is None:
            plain_text(value, TEXT_MAX)
            raise FieldError(rule, choices=choices, value=_quoted(value))
        return found

    return check


def _text(cap: int) -> Rule:
    return partial(plain_text, cap=cap)


_flag = _choice("flag", ("1", "0"), "flag")
_notify_event = _choice("notify", (*NOTIFY_EVENTS, "none"), "notify")


def _notify_events(value: str) -> str:
    """The `notify` column: events separated by ';', '|' or '、' (or none), kept as "a;b"."""
    events = [_notify_event(e.strip()) for e in re.split(r"[;|；、,，]", value) if e.strip()]
    if "none" in events:
        if len(events) > 1:
            raise FieldError("notify_none")
        return "none"
    return ";".join(dict.fromkeys(events))


RULES: dict[ImportKind, dict[str, Rule]] = {
    "units": {
        "code": grid_code,
        "level": _choice("level", LEVELS, "level"),
        "name": _text(UNIT_NAME_MAX),
        "parent_code": grid_code,
    },
    "households": {
        "household_code": grid_code,
        "neighbourhood_code": grid_code,
        "address": _text(ADDRESS_MAX),
        "resident_name": _text(NAME_MAX),
        "resident_phone": phone_number,
        **dict.fromkeys(FLAGS, _flag),
        "key_safe_code": key_safe_code,
        "health_notes": _text(NOTES_MAX),
    },
    "contacts": {
        "name": _text(NAME_MAX),
        "role": _choice("role", ROLES, "role"),
        "unit_code": grid_code,
        "household_code": grid_code,
        "phone": phone_number,
        "language": _choice("language", LANGUAGES, "language"),
        "available_from": partial(clock_time, end=False),
        "available_to": partial(clock_time, end=True),
        "notify": _notify_events,
    },
}
_ANY_TEXT = _text(TEXT_MAX)


_WORDED = frozenset({"what", "kind", "level", "above", "parent_level", "role"})
"""The parameters that are words (a level, a role), not what the file wrote."""


def _render(texts: ModuleType, template: str, params: Mapping[str, str]) -> str:
    words: Mapping[str, str] = texts.WORDS
    return string.Template(template).safe_substitute(
        {k: words.get(v, v) if k in _WORDED else v for k, v in params.items()}
    )


@dataclass(frozen=True, slots=True, order=True)
class RowError:
    """What is wrong with one row: `line` is where its record starts in the file (1 = header).

    `column` is the column's English name ("-" for the row or file as a whole), `rule` the
    rule it breaks (a key of the MESSAGES of import_locales), `params` what fills the text.
    """

    line: int
    column: str
    rule: str
    params: tuple[tuple[str, str], ...] = ()
    header: str = ""
    """The header the file gave the column, if it was not the English name."""

    def text(self, texts: ModuleType) -> str:
        """The message in one language."""
        return _render(texts, texts.MESSAGES[self.rule], dict(self.params))

    @property
    def message(self) -> str:
        """The message in English."""
        return self.text(en)

    def located(self, file: str, texts: ModuleType) -> str:
        """The message with file, line and column, in one language."""
        params = {"file": file, "line": str(self.line), "message": self.text(texts)}
        if self.column == "-":
            return _render(texts, texts.AT_FILE, params)
        header = self.header or _shown_header(texts, self.column)
        column = (
            header
            if header == self.column
            else _render(texts, texts.COLUMN, {"header": header, "column": self.column})
        )
        return _render(texts, texts.AT_LINE, {**params, "column": column})

    def __str__(self) -> str:
        """As an administrator reads it, in English."""
        return f"line {self.line}, {self.column}: {self.message}"


def _shown_header(texts: ModuleType, column: str) -> str:
    for headers in texts.HEADERS.values():
        if column in headers:
            return str(headers[column][0])
    return column


def _error_lines(file: str, errors: Sequence[RowError], count: int) -> list[str]:
    """Each error in Chinese then in English, the first MAX_ERRORS_SHOWN of `count`."""
    lines = [e.located(file, texts) for e in errors[:MAX_ERRORS_SHOWN] for texts in TEXTS]
    if count > MAX_ERRORS_SHOWN:
        more = {"file": file, "count": str(count - MAX_ERRORS_SHOWN)}
        lines += [_render(texts, texts.MORE, more) for texts in TEXTS]
    return lines


def _error(
    line: int, column: str, rule: str, header: str = "", params: Mapping[str, object] | None = None
) -> RowError:
    found = tuple((k, str(v)) for k, v in (params or {}).items())
    return RowError(line, column, rule, found, header)


class ImportRejectedError(GatewayError):
    """The file itself is unusable (encoding, header, size); nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = sorted(errors)
        shown = "; ".join(str(e) for e in self.errors[:MAX_ERRORS_SHOWN])
        more = (
            f" (and {len(errors) - MAX_ERRORS_SHOWN} more)"
            if len(errors) > MAX_ERRORS_SHOWN
            else ""
        )
        super().__init__(f"file rejected, nothing imported: {shown}{more}")

    def lines(self, file: str) -> list[str]:
        """What the administrator is told, Chinese first."""
        head = [_render(texts, texts.REFUSED, {"file": file}) for texts in TEXTS]
        return head + _error_lines(file, self.errors, len(self.errors))


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did (or, with `check`, would do) to the rows of the file.

    A file with `rejected` rows is not written at all (`written` is False); the counts of
    the other outcomes are then those a check gives, and zero for an import.
    """

    kind: ImportKind
    rows: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    devices: int = 0
    errors: tuple[RowError, ...] = ()
    """The first MAX_ERRORS_SHOWN errors, by line."""
    error_count: int = 0
    check: bool = False
    transactions: int = 0

    @property
    def written(self) -> bool:
        """Whether the file's rows are in the grid now."""
        return not self.check and not self.rejected

    def summary(self) -> str:
        """One line for the administrator, in English."""
        return self._summary(en, "")

    def _summary(self, texts: ModuleType, file: str) -> str:
        params = {
            "file": file,
            "kind": self.kind,
            **{k: str(getattr(self, k)) for k in (*OUTCOMES, "rows", "devices")},
        }
        if self.rejected:
            template = texts.CHECKED_REFUSED if self.check else texts.ROWS_REFUSED
            return _render(texts, template, params).removeprefix(": ")
        boxes = _render(texts, texts.BOXES, params) if self.kind == "households" else ""
        done = texts.CHECKED if self.check else texts.DONE
        line = _render(texts, texts.SUMMARY, {**params, "done": done, "boxes": boxes})
        return line.removeprefix(": ").removeprefix("：")

    def summary_lines(self, file: str) -> list[str]:
        """The summary for the administrator, Chinese first."""
        return [self._summary(texts, file) for texts in TEXTS]

    def error_lines(self, file: str) -> list[str]:
        """Every error shown, each in Chinese then in English, with file, line and column."""
        return _error_lines(file, self.errors, self.error_count)


@dataclass(slots=True)
class _Book:
    """What is wrong with the rows of a file, kept apart from the rows (only bad rows appear)."""

    errors: dict[int, list[RowError]] = field(default_factory=dict)
    duplicates: set[int] = field(default_factory=set)  # lines repeating an earlier row's key
    headers: dict[str, str] = field(default_factory=dict)  # column -> the file's own header

    def add(self, line: int, column: str, rule: str, params: Mapping[str, object]) -> None:
        header = self.headers.get(column, "")
        self.errors.setdefault(line, []).append(_error(line, column, rule, header, params))


@dataclass(slots=True)
class _Row:
    """A view of one data row of the file: its cells by column; its errors go to the book.

    A file keeps its rows as plain tuples, which the garbage collector stops scanning, so a
    200,000-row file does not make every collection pause the event loop; views are made
    for the rows being checked and dropped after.
    """

    line: int
    cells: tuple[str, ...]
    columns: Mapping[str, int]
    book: _Book

    def __getitem__(self, column: str) -> str:
        i = self.columns.get(column)
        return "" if i is None else self.cells[i]

    @property
    def errors(self) -> Sequence[RowError]:
        return self.book.errors.get(self.line, ())

    @property
    def duplicate(self) -> bool:
        """The row repeats an earlier row's key: it is not checked against the store."""
        return self.line in self.book.duplicates

    def error(self, column: str, rule: str, **params: object) -> None:
        self.book.add(self.line, column, rule, params)


@dataclass(slots=True)
class _Plan:
    """The writes for the accepted rows and the outcome of every row."""

    outcomes: dict[int, Outcome] = field(default_factory=dict)
    inserts: list[GridRow] = field(default_factory=list)  # in order: a parent before its rows
    updates: list[GridRow] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
    devices: int = 0
    new: bool = False
    """Nothing of the rows was in the store (so writing them needs no second look)."""


def _let_others_run() -> None:
    """Hand the GIL over for a moment, so the event loop never waits a switch interval for it."""
    time.sleep(_PACE_PAUSE_S)


def _paced(indexes: range) -> Iterator[int]:
    for i in indexes:
        if i % _PACE_ROWS == 0:
            _let_others_run()
        yield i


def _decode(data: str | bytes) -> str:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportRejectedError(
            [_error(line, "-", "not_utf8", params={"byte": f"{data[exc.start]:02x}"})]
        ) from None


@dataclass(slots=True)
class _Records:
    """The data rows of a file as (line, cells) with the cells in header order, as kept."""

    columns: dict[str, int]
    rows: list[tuple[int, tuple[str, ...]]]
    book: _Book

    def row(self, index: int) -> _Row:
        """A view of the index-th data row."""
        line, cells = self.rows[index]
        return _Row(line, cells, self.columns, self.book)


def _read(data: str | bytes, kind: ImportKind) -> _Records:
    """The data rows of a file, each cell checked and kept in its column's form.

    ImportRejectedError if the file itself is unusable.
    """
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    book = _Book()
    rows: list[tuple[int, tuple[str, ...]]] = []
    header: list[str] | None = None
    rules: list[Rule | None] = []
    columns: dict[str, int] = {}
    try:
        while True:
            start = reader.line_num + 1
            record = next(reader, None)
            if reader.line_num % _PACE_ROWS == 0:
                _let_others_run()
            if record is None:
                break
            if not any(cell.strip() for cell in record):
                continue  # blank lines, and the empty rows Excel leaves at the end
            if header is None:
                header = _header(record, kind, start, book)
                columns = {name: i for i, name in enumerate(header) if name}
                rules = [RULES[kind].get(name, _ANY_TEXT) if name else None for name in header]
                continue
            if len(rows) == MAX_ROWS:
                raise ImportRejectedError(
                    [_error(start, "-", "too_many_rows", params={"max": f"{MAX_ROWS:,}"})]
                )
            rows.append((start, _cells(record, header, rules, start, book)))
    except csv.Error as exc:
        raise ImportRejectedError(
            [_error(reader.line_num, "-", "not_csv", params={"reason": exc})]
        ) from None
    if header is None:
        raise ImportRejectedError([_error(1, "-", "empty")])
    return _Records(columns, rows, book)


def _cells(
    record: list[str], header: list[str], rules: list[Rule | None], line: int, book: _Book
) -> tuple[str, ...]:
    """A record's cells, trimmed and in their columns' forms; what is wrong goes to the book."""
    cells = [cell.strip() for cell in record[: len(header)]]
    cells += [""] * (len(header) - len(cells))
    for i, rule in enumerate(rules):
        cell = cells[i]
        if not cell:
            continue
        if rule is None:
            book.add(line, "-", "extra_value", {"value": _quoted(cell)})
            continue
        if "\n" in cell or "\r" in cell:  # Alt+Enter in an Excel cell: one line, as kept
            cell = _LINE_BREAKS.sub(" ", cell)
        try:
            cells[i] = rule(cell)
        except FieldError as exc:
            book.add(line, header[i], exc.rule, exc.params)
    if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
        book.add(line, "-", "too_many_fields", {"fields": len(record), "header": len(header)})
    return tuple(cells)


def _quoted(value: str, cap: int = 40) -> str:
    """A cell as shown in a message: short, and with its invisible characters visible."""
    shown = value if len(value) <= cap else value[:cap] + "…"
    return ascii(shown)[1:-1] if not shown.isprintable() else shown


def _header(record: list[str], kind: ImportKind, line: int, book: _Book) -> list[str]:
    """The columns of a file, by their English names; the file's own headers go to the book."""
    aliases = {
        alias: column
        for texts in TEXTS
        for column, names in texts.HEADERS.get(kind, {}).items()
        for alias in names
    }
    given = [cell.strip() for cell in record]
    header = [aliases.get(cell, cell) for cell in given]
    book.headers = {c: g for c, g in zip(header, given, strict=True) if c and c != g}
    expected = ", ".join(COLUMNS[kind])
    errors = [_error(line, c, "missing_column") for c in REQUIRED[kind] if c not in header]
    errors += [
        _error(line, c, "unknown_column", g, {"kind": kind, "expected": expected})
        for c, g in zip(header, given, strict=True)
        if c and c not in COLUMNS[kind]
    ]
    errors += [
        _error(line, c, "duplicate_column", given[i])
        for i, c in enumerate(header)
        if c and c in header[:i]
    ]
    if errors:
        raise ImportRejectedError(errors)
    return header


def _required(kind: ImportKind, row: _Row) -> None:
    for column in REQUIRED[kind]:
        if not row[column]:
            row.error(column, "required")


@dataclass(slots=True)
class _FirstOf:
    """The first line of each key; a later row with the same key is rejected."""

    column: str
    what: str
    lines: dict[object, int] = field(default_factory=dict)

    def see(self, row: _Row, key: object) -> None:
        if not key:
            return
        first = self.lines.setdefault(key, row.line)
        if first != row.line:
            row.error(self.column, "duplicate_key", what=self.what, first=first)
            row.book.duplicates.add(row.line)


def _hours(row: _Row) -> tuple[str, str]:
    """A contact's hours (from, to), the whole day by default."""
    return row["available_from"] or "00:00", row["available_to"] or "24:00"


def _contact(row: _Row) -> None:
    """The checks a contact row needs no store for (its cells passed their rules)."""
    role, unit, household = row["role"], row["unit_code"], row["household_code"]
    if role not in ROLES:
        pass  # reported by its rule, or required
    elif role == "family":
        if not household or unit:
            row.error("household_code", "family_household")
    elif not unit or household:
        row.error("unit_code", "role_unit", role=role)
    if role in ROLES and role != "family" and "first_use" in row["notify"].split(";"):
        row.error("notify", "first_use_family")
    available_from, available_to = _hours(row)
    if available_from == available_to and not row.errors:
        row.error("available_to", "never_available", time=available_from)


def _notify(row: _Row) -> tuple[str, ...] | None:
    """The events a contact chose (None: the role's defaults; empty: nothing)."""
    text = row["notify"]
    if not text:
        return None
    if text == "none":
        return ()
    return tuple(text.split(";"))


@dataclass(slots=True)
class _HouseholdsInStore:
    """What the store holds already for the households, units and boxes a file names."""

    levels: dict[str, str]
    households: dict[str, HouseholdRow]
    residents: dict[tuple[str, str], ResidentRow]
    devices: dict[str, DeviceRecord]
    boxes_of: dict[str, list[str]]

    @classmethod
    async def load(
        cls, grid: GridReader, rows: Sequence[_Row], device_ids: Sequence[str], *, known: bool
    ) -> _HouseholdsInStore:
        """What the store holds; without `known`, only the units (the rest was found new)."""
        codes = [r["household_code"] for r in rows]
        units = await grid.units_by_code([r["neighbourhood_code"] for r in rows])
        if not known:
            return cls({u.code: u.level for u in units}, {}, {}, {}, {})
        residents: dict[tuple[str, str], ResidentRow] = {}
        for r in await grid.residents_of(codes):
            residents.setdefault((r.household_code, r.name), r)
        boxes_of: dict[str, list[str]] = {}
        for d in await grid.devices_of(codes):
            if d.kind == "call_box" and d.household_code is not None:
                boxes_of.setdefault(d.household_code, []).append(d.device_id)
        return cls(
            levels={u.code: u.level for u in units},
            households={h.code: h for h in await grid.households_by_code(codes)},
            residents=residents,
            devices={d.device_id: d for d in await grid.devices_by_id(device_ids)},
            boxes_of=boxes_of,
        )

    @property
    def new(self) -> bool:
        """Whether none of the households, residents and boxes is in the store."""
        return not (self.households or self.residents or self.devices or self.boxes_of)

    def check(self, row: _Row, box: tuple[str, bytes] | None) -> bool:
        """Check a row against the store; whether the call box it names is a new one."""
        unit = row["neighbourhood_code"]
        if unit and unit not in self.levels:
            row.error("neighbourhood_code", "unknown_unit", unit=unit)
        elif unit and self.levels[unit] != "neighbourhood":
            row.error("neighbourhood_code", "not_neighbourhood", unit=unit, level=self.levels[unit])
        if box is None:
            return False
        device_id, key = box
        code = row["household_code"]
        stored = self.devices.get(device_id)
        if stored is None:
            if others := self.boxes_of.get(code):
                row.error("device_id", "box_other", household=code, other=others[0])
            return True
        if stored.kind != "call_box":
            row.error("device_id", "box_kind", device=device_id, kind=stored.kind)
        elif stored.household_code != code:
            if owner := stored.household_code:
                row.error("device_id", "box_owner", device=device_id, owner=owner)
            else:
                row.error("device_id", "box_no_owner", device=device_id)
        if stored.key != key:
            row.error("device_key", "box_key", device=device_id)
        return False


@dataclass(slots=True)
class _HouseholdWrites:
    """The rows to insert and update for the accepted household rows."""

    due: float
    households: list[HouseholdRow] = field(default_factory=list)
    residents: list[ResidentRow] = field(default_factory=list)
    devices: list[DeviceRecord] = field(default_factory=list)
    changed: list[HouseholdRow | ResidentRow] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)

    def add(
        self,
        row: _Row,
        box: tuple[str, bytes] | None,
        new_box: bool,
        found: _HouseholdsInStore,
        interval: int,
        now: float,
    ) -> Outcome:
        """Plan one accepted row (household, resident and box together); its outcome."""
        code = row["household_code"]
        household = HouseholdRow(code, row["neighbourhood_code"], row["address"])
        old = found.households.get(code)
        changed = False
        if old is None:
            self.households.append(household)
        elif old != household:
            self.changed.append(household)
            changed = True
        resident = _resident(row)
        old_resident = found.residents.get((code, resident.name))
        if old_resident is None:
            self.residents.append(resident)
            changed = True
        elif (resident := replace(resident, id=old_resident.id)) != old_resident:
            self.changed.append(resident)
            changed = True
        if box is not None and new_box:
            device_id, key = box
            self.devices.append(
                DeviceRecord(device_id, "call_box", key, interval, now, household_code=code)
            )
            # As `bidao device add` does: a box installed but never heard from is noticed.
            self.deadlines.append(Deadline(SILENT_DEADLINE, device_id, self.due))
            changed = True
        if old is None:
            return "inserted"
        return "updated" if changed else "unchanged"


def _resident(row: _Row) -> ResidentRow:
    """The resident of a household row that passed its checks."""
    return ResidentRow(
        household_code=row["household_code"],
        name=row["resident_name"],
        phone=row["resident_phone"] or None,
        lives_alone=row["lives_alone"] == "1",
        five_guarantee=row["five_guarantee"] == "1",
        needs_care=row["needs_care"] == "1",
        consent=row["consent"] == "1",
        key_safe_code=row["key_safe_code"] or None,
        health_notes=row["health_notes"] or None,
    )


def _box(row: _Row) -> tuple[str, bytes] | None:
    """The call box a row names, if it names one correctly."""
    raw_id, raw_key = row["device_id"], row["device_key"]
    if not raw_id and not raw_key:
        return None
    if not raw_id:
        row.error("device_id", "device_id_required")
        return None
    try:
        device_id = parse_device_id(raw_id)
    except ProtocolError:
        row.error("device_id", "device_id_hex")
        return None
    if not raw_key:
        row.error("device_key", "device_key_required", digits=2 * KEY_LEN)
        return None
    try:
        key = bytes.fromhex(raw_key)
    except ValueError:
        key = b""
    if len(key) != KEY_LEN:
        row.error("device_key", "device_key_hex", digits=2 * KEY_LEN)
        return None
    return device_id, key


def _contact_key(row: _Row) -> tuple[str, str, str, str] | None:
    """A contact's natural key: role, unit_code, household_code, phone."""
    if not (row["role"] and row["phone"]):
        return None
    return (row["role"], row["unit_code"], row["household_code"], row["phone"])


@dataclass(slots=True)
class _File:
    """A file's rows after every check that needs no store, and the order they are written in."""

    kind: ImportKind
    records: _Records
    order: list[int]
    boxes: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    units: dict[object, int] = field(default_factory=dict)  # unit code -> its first line
    levels: dict[int, str] = field(default_factory=dict)  # line -> level of the units rows

    def rows(self, indexes: Sequence[int]) -> list[_Row]:
        """Views of some data rows."""
        return [self.records.row(i) for i in indexes]


def _prepare(kind: ImportKind, data: str | bytes) -> _File:
    """Read a file and check its rows against each other; touches no store (runs in a thread)."""
    records = _read(data, kind)
    rows = (records.row(i) for i in _paced(range(len(records.rows))))
    everything = list(range(len(records.rows)))
    if kind == "units":
        codes = _FirstOf("code", "unit")
        levels: dict[int, str] = {}
        for row in rows:
            _required(kind, row)
            codes.see(row, row["code"])
            levels[row.line] = row["level"]
        # Parents before children: a unit's parent is always one level up.
        rank = {level: i for i, level in enumerate(LEVELS)}
        order = sorted(everything, key=lambda i: rank.get(levels[records.rows[i][0]], len(LEVELS)))
        return _File(kind, records, order, units=codes.lines, levels=levels)
    if kind == "households":
        households = _FirstOf("household_code", "household")
        devices = _FirstOf("device_id", "box")
        boxes: dict[int, tuple[str, bytes]] = {}
        for row in rows:
            _required(kind, row)
            box = _box(row)
            households.see(row, row["household_code"])
            if box is not None:
                boxes[row.line] = box
                devices.see(row, box[0])
        return _File(kind, records, everything, boxes=boxes)
    contacts = _FirstOf("phone", "contact")
    for row in rows:
        _required(kind, row)
        _contact(row)
        contacts.see(row, _contact_key(row))
    return _File(kind, records, everything)


class ImportInterruptedError(GatewayError):
    """A write failed part-way: the rows before it are in whole, the rest are not; rerun."""

    def __init__(self, kind: ImportKind, written: int, total: int, reason: Exception) -> None:
        self.written = written
        super().__init__(
            f"{kind} import interrupted after {written} of {total} rows, each written whole; "
            f"import the same file again to finish ({type(reason).__name__}: {reason})"
        )


class GridImporter:
    """Checks a CSV file against itself and the store, then writes it in chunks, or not at all.

    The file is read and checked against itself in a worker thread. Then, chunk by chunk
    (`ImportSettings.chunk_rows` rows), the rows are matched against committed rows on the
    store's reader, without the write lock. A file with any error stops there: nothing is
    written. Otherwise each chunk is matched again and written in one short transaction, so
    ingest commits interleave with the import. A row (a household with its resident and its
    box, a unit, a contact) is never split between transactions, and a unit's parent is
    written before it. A write that fails, or a row another writer made wrong since the
    check, stops the import with ImportInterruptedError; the chunks before it stay, and a
    rerun of the file finishes the job.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        supervision: SupervisionSettings,
        settings: ImportSettings,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._supervision = supervision
        self._settings = settings
        self._metrics = metrics
        self._one_at_a_time = asyncio.Lock()

    async def import_csv(
        self, kind: ImportKind, data: str | bytes, *, check: bool = False
    ) -> ImportResult:
        """Import one file (bytes must be UTF-8); with `check`, report but write nothing.

        ImportRejectedError if the file itself is unusable; bad rows are in the result;
        ImportInterruptedError if a write failed part-way.
        """
        async with self._one_at_a_time:
            return await self._import(kind, data, check=check)

    async def _import(self, kind: ImportKind, data: str | bytes, *, check: bool) -> ImportResult:
        try:
            file = await asyncio.to_thread(_prepare, kind, data)
        except ImportRejectedError:
            if not check:
                self._count_refused(kind)
            raise
        checked, new = await self._check(file)
        if check:
            return checked
        if checked.rejected:
            self._count_refused(kind)
            if self._metrics is not None:
                self._metrics.import_rows.labels(kind, "rejected").inc(checked.rejected)
            return replace(checked, inserted=0, updated=0, unchanged=0, devices=0, check=False)
        return await self._write_all(file, new)

    def _count_refused(self, kind: ImportKind) -> None:
        if self._metrics is not None:
            self._metrics.import_files_rejected.labels(kind).inc()

    async def _check(self, file: _File) -> tuple[ImportResult, set[int]]:
        """Match every row against the store, chunk by chunk, and count; nothing is written.

        Also the chunks (by first index) none of whose rows the store holds yet.
        """
        new: set[int] = set()
        counts = dict.fromkeys(OUTCOMES, 0)
        devices = 0
        now = self._clock.now()
        size = self._settings.chunk_rows
        for start in range(0, len(file.order), size):
            chunk = file.rows(file.order[start : start + size])
            plan = await self._plan(file, chunk, now)
            if plan.new:
                new.add(start)
            devices += plan.devices
            for row in chunk:
                counts["rejected" if row.errors else plan.outcomes[row.line]] += 1
            await asyncio.sleep(0)  # a turn for everyone else between chunks
        errors = sorted(e for found in file.records.book.errors.values() for e in found)
        return ImportResult(
            file.kind,
            len(file.records.rows),
            devices=devices,
            errors=tuple(errors[:MAX_ERRORS_SHOWN]),
            error_count=len(errors),
            check=True,
            inserted=counts["inserted"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
            rejected=counts["rejected"],
        ), new

    async def _write_all(self, file: _File, new: set[int]) -> ImportResult:
        """Write a file whose every row passed: each chunk matched again, then committed.

        A chunk the check found wholly new is only checked against its units again: should
        another writer have added one of its rows since, the insert fails on the row's key
        and the import stops (ImportInterruptedError); the rerun matches it.
        """
        kind = file.kind
        counts = dict.fromkeys(OUTCOMES, 0)
        devices = transactions = done = 0
        now = self._clock.now()
        size = self._settings.chunk_rows
        total = len(file.records.rows)
        for start in range(0, len(file.order), size):
            chunk = file.rows(file.order[start : start + size])
            plan = await self._plan(file, chunk, now, known=start not in new)
            changed = [e for row in chunk for e in row.errors]
            if changed:  # another writer changed the grid since the check
                reason = GatewayError(f"{min(changed)} (changed since the file was checked)")
                raise ImportInterruptedError(kind, done, total, reason)
            if plan.inserts or plan.updates:
                try:
                    await self._write(plan)
                except Exception as exc:
                    raise ImportInterruptedError(kind, done, total, exc) from exc
                transactions += 1
                if self._metrics is not None:
                    self._metrics.import_transactions.labels(kind).inc()
            done += len(chunk)
            devices += plan.devices
            chunk_counts = dict.fromkeys(OUTCOMES, 0)
            for row in chunk:
                chunk_counts[plan.outcomes[row.line]] += 1
            for outcome, n in chunk_counts.items():
                counts[outcome] += n
                if n and self._metrics is not None:
                    self._metrics.import_rows.labels(kind, outcome).inc(n)
            await asyncio.sleep(0)  # a turn for everyone else between chunks
        return ImportResult(
            kind,
            total,
            inserted=counts["inserted"],
            updated=counts["updated"],
            unchanged=counts["unchanged"],
            devices=devices,
            transactions=transactions,
        )

    async def _plan(
        self, file: _File, chunk: list[_Row], now: float, *, known: bool = True
    ) -> _Plan:
        """Match a chunk against the store; without `known`, take its rows as new ones."""
        if file.kind == "units":
            return await self._units(file, chunk)
        if file.kind == "households":
            return await self._households(file, chunk, now, known)
        return await self._contacts(chunk)

    async def _write(self, plan: _Plan) -> None:
        async with self._store.transaction() as uow:
            await uow.grid.insert(plan.inserts)
            await uow.grid.update(plan.updates)
            await uow.deadlines.set(plan.deadlines)

    async def _units(self, file: _File, rows: list[_Row]) -> _Plan:
        codes = [r["code"] for r in rows] + [r["parent_code"] for r in rows]
        stored = {u.code: u for u in await self._store.grid.units_by_code(codes)}
        plan = _Plan()
        for row in rows:
            if row.duplicate or row["level"] not in LEVELS:
                continue
            code, level, parent = row["code"], row["level"], row["parent_code"]
            self._check_parent(row, level, parent, file, stored)
            old = stored.get(code)
            if old is not None:
                if old.level != level:
                    row.error("level", "unit_level", code=code, level=old.level)
                if (old.parent_code or "") != parent:
                    row.error(
                        "parent_code", "unit_parent", code=code, parent=old.parent_code or "-"
                    )
            if row.errors:
                continue
            unit = GridUnit(code, level, row["name"], parent or None)
            if old is None:
                plan.inserts.append(unit)
                plan.outcomes[row.line] = "inserted"
            elif old != unit:
                plan.updates.append(unit)
                plan.outcomes[row.line] = "updated"
            else:
                plan.outcomes[row.line] = "unchanged"
        return plan

    @staticmethod
    def _check_parent(
        row: _Row,
        level: str,
        parent: str,
        file: _File,
        stored: Mapping[str, GridUnit],
    ) -> None:
        if level == "county":
            if parent:
                row.error("parent_code", "county_parent")
            return
        above = LEVELS[LEVELS.index(level) - 1]
        if not parent:
            row.error("parent_code", "parent_required", above=above, level=level)
            return
        parent_line = file.units.get(parent)
        if parent_line is not None and parent_line != row.line:
            if parent_line in file.records.book.errors:
                row.error("parent_code", "parent_rejected", parent=parent, line=parent_line)
                return
            parent_level: object = file.levels[parent_line]
        elif parent in stored:
            parent_level = stored[parent].level
        else:
            row.error("parent_code", "parent_unknown", parent=parent)
            return
        if parent_level != above:
            row.error(
                "parent_code", "parent_level", level=level, above=above, parent_level=parent_level
            )

    async def _households(self, file: _File, rows: list[_Row], now: float, known: bool) -> _Plan:
        boxes = [box[0] for r in rows if (box := file.boxes.get(r.line)) is not None]
        found = await _HouseholdsInStore.load(self._store.grid, rows, boxes, known=known)
        interval = self._supervision.heartbeat_interval_s["call_box"]
        plan = _Plan()
        writes = _HouseholdWrites(now + self._supervision.missed_intervals * interval)
        for row in rows:
            box = file.boxes.get(row.line)
            new_box = not row.duplicate and found.check(row, box)
            if not row.errors:
                plan.outcomes[row.line] = writes.add(row, box, new_box, found, interval, now)
        plan.devices = len(writes.devices)
        plan.inserts += [*writes.households, *writes.residents, *writes.devices]
        plan.updates += writes.changed
        plan.deadlines += writes.deadlines
        plan.new = found.new
        return plan

    async def _contacts(self, rows: list[_Row]) -> _Plan:
        unit_codes = [r["unit_code"] for r in rows if r["unit_code"]]
        household_codes = [r["household_code"] for r in rows if r["household_code"]]
        grid = self._store.grid
        units = {u.code for u in await grid.units_by_code(unit_codes)}
        households = {h.code for h in await grid.households_by_code(household_codes)}
        existing: dict[tuple[str, str, str, str], list[ContactRow]] = {}
        for c in await grid.contacts_of(unit_codes, household_codes):
            k = (c.role, c.unit_code or "", c.household_code or "", c.phone)
            existing.setdefault(k, []).append(c)

        plan = _Plan()
        for row in rows:
            unit, household = row["unit_code"], row["household_code"]
            if unit and unit not in units:
                row.error("unit_code", "unknown_unit", unit=unit)
            if household and household not in households:
                row.error("household_code", "unknown_household", household=household)
            row_key = _contact_key(row)
            if row.errors or row_key is None:
                continue
            available_from, available_to = _hours(row)
            contact = ContactRow(
                name=row["name"],
                role=cast("Role", row["role"]),  # checked against ROLES
                phone=row["phone"],
                unit_code=unit or None,
                household_code=household or None,
                language=row["language"] or "zh-CN",  # checked against LANGUAGES
                available_from=available_from,
                available_to=available_to,
                notify=_notify(row),
            )
            matches = existing.get(row_key, [])
            if not matches:
                plan.inserts.append(contact)
                plan.outcomes[row.line] = "inserted"
            elif any(replace(contact, id=m.id) != m for m in matches):
                plan.updates += [replace(contact, id=m.id) for m in matches]
                plan.outcomes[row.line] = "updated"
            else:
                plan.outcomes[row.line] = "unchanged"
        return plan
