"""Bulk import of the grid from CSV: good rows are written, bad rows are reported, reruns are safe.

Three files, each with a header row (UTF-8, an Excel byte-order mark is fine):

- units:       code, level, name, parent_code
- households:  household_code, neighbourhood_code, address, resident_name, resident_phone,
               lives_alone, five_guarantee, needs_care, consent, key_safe_code, health_notes,
               device_id, device_key       (the last two register the household's call box)
- contacts:    name, role, unit_code, household_code, phone, language, available_from,
               available_to, notify  (optional: what the contact is told, e.g.
               "accepted;resolved", or "none"; empty: the defaults of the role)

Every row is checked against the file and the store. A row with an error is skipped and
reported with its line in the file (the line its record starts on, so a quoted field that
spans lines does not shift the lines after it), the column and the reason; a row that
depends on a rejected row of the same file (a unit whose parent row was rejected) is
rejected too, and so is a row that repeats the key of an earlier row (a household code, a
device_id, a unit code, a contact). The good rows are written in chunks of
`ImportSettings.chunk_rows` rows, one short transaction each so that ingest keeps
committing (and acknowledging) between them, each row whole: a household goes in with its
resident and its call box, or not at all, and a unit after its parent. A write that fails
part-way stops the import; the chunks before it stay, and importing the file again finishes
it. A problem with the file itself (not UTF-8, a required column missing, an unknown or
repeated column, more than MAX_ROWS rows) rejects the whole file and nothing is written.

Importing the same file again changes nothing. Rows are matched on their natural keys:
units by code, households by household_code (the resident by household_code and name),
call boxes by device_id, contacts by role, unit_code or household_code, and phone. A
matching row with the same content is unchanged; with other content it is updated (a
unit's name; a household's neighbourhood and address and its resident's fields; a
contact's name, language and hours). A resident_name the household does not have yet
adds a resident beside the existing ones. Moving a unit to another level or parent, or
giving a call box another key or household (or a household a second box), is refused: keys
are rotated and boxes moved by provisioning, not by a spreadsheet. A new call box gets its
silence deadline at once, as `bidao device add` gives it; a known box keeps its deadline.
With `check`, everything is checked and counted and nothing is written.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, cast, get_args

from firmware_protocol import KEY_LEN, ProtocolError, parse_device_id
from gateway.clock import Clock
from gateway.config import ImportSettings, Role, SupervisionSettings
from gateway.domain.devices import DeviceRecord
from gateway.domain.grid import ContactRow, GridRow, GridUnit, HouseholdRow, ResidentRow
from gateway.errors import GatewayError
from gateway.ingest.registry import SILENT_DEADLINE
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Deadline, GridReader, Store

ImportKind = Literal["units", "households", "contacts"]
Outcome = Literal["inserted", "updated", "unchanged", "rejected"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
MAX_ROWS = 200_000
LEVELS = ("county", "township", "village", "area", "group", "neighbourhood")
ROLES: tuple[str, ...] = get_args(Role)
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
NOTIFY_EVENTS = ("called", "accepted", "arrived", "resolved")
"""What the optional `notify` column may list (separated by `;` or `|`); `none` for nothing,
empty for the defaults of the contact's role."""
REQUIRED: dict[ImportKind, tuple[str, ...]] = {
    "units": ("code", "level", "name"),
    "households": ("household_code", "neighbourhood_code", "resident_name"),
    "contacts": ("name", "role", "phone"),
}
FLAGS = ("lives_alone", "five_guarantee", "needs_care", "consent")
_CODE = re.compile(r"^[0-9A-Za-z-]{1,40}$")
_PHONE = re.compile(r"^\+?[0-9]{5,15}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
_YES = {"1", "true", "yes", "y", "是"}
_NO = {"", "0", "false", "no", "n", "否"}
# Reading and checking a file runs in a worker thread, which pauses every _PACE_ROWS rows.
_PACE_ROWS = 200
_PACE_PAUSE_S = 0.0002


@dataclass(frozen=True, slots=True, order=True)
class RowError:
    """What is wrong with one row: `line` is where its record starts in the file (1 = header)."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        """As an administrator reads it."""
        return f"line {self.line}, {self.column}: {self.message}"


class ImportRejectedError(GatewayError):
    """The file itself is unusable (encoding, header, size); nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:20])
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__(f"file rejected, nothing imported: {shown}{more}")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did (or, with `check`, would do) to the rows of the file."""

    kind: ImportKind
    rows: int
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    devices: int = 0
    errors: tuple[RowError, ...] = ()
    check: bool = False
    transactions: int = 0

    def summary(self) -> str:
        """One line for the administrator."""
        boxes = f"; {self.devices} new call boxes" if self.kind == "households" else ""
        written = "checked, nothing written" if self.check else "imported"
        return (
            f"{written}: {self.rows} {self.kind} rows: {self.inserted} inserted, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.rejected} rejected{boxes}"
        )


@dataclass(slots=True)
class _Book:
    """What is wrong with the rows of a file, kept apart from the rows (only bad rows appear)."""

    errors: dict[int, list[RowError]] = field(default_factory=dict)
    duplicates: set[int] = field(default_factory=set)  # lines repeating an earlier row's key


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

    def error(self, column: str, message: str) -> None:
        self.book.errors.setdefault(self.line, []).append(RowError(self.line, column, message))

    def flag(self, column: str) -> int:
        value = self[column]
        text = value.lower()
        if text in _YES:
            return 1
        if text not in _NO:
            self.error(column, f"expected 1/0 or 是/否, got {value!r}")
        return 0


@dataclass(slots=True)
class _Plan:
    """The writes for the accepted rows and the outcome of every row."""

    outcomes: dict[int, Outcome] = field(default_factory=dict)
    inserts: list[GridRow] = field(default_factory=list)  # in order: a parent before its rows
    updates: list[GridRow] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)
    devices: int = 0


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
            [
                RowError(
                    line,
                    "-",
                    f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as "
                    '"CSV UTF-8" (Excel\'s plain CSV is GBK on Chinese Windows)',
                )
            ]
        ) from None


@dataclass(slots=True)
class _Records:
    """The data rows of a file as (line, cells) with the cells in header order."""

    columns: dict[str, int]
    rows: list[tuple[int, tuple[str, ...]]]
    book: _Book

    def row(self, index: int) -> _Row:
        """A view of the index-th data row."""
        line, cells = self.rows[index]
        return _Row(line, cells, self.columns, self.book)


def _read(data: str | bytes, kind: ImportKind) -> _Records:
    """The data rows of a file; ImportRejectedError if the file itself is unusable."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    book = _Book()
    rows: list[tuple[int, tuple[str, ...]]] = []
    header: list[str] | None = None
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
                header = _header(record, kind, start)
                columns = {name: i for i, name in enumerate(header) if name}
                continue
            if len(rows) == MAX_ROWS:
                raise ImportRejectedError(
                    [RowError(start, "-", f"more than {MAX_ROWS:,} rows; split the file")]
                )
            cells = tuple(cell.strip() for cell in record[: len(header)])
            cells += ("",) * (len(header) - len(cells))
            row = _Row(start, cells, columns, book)
            for name, cell in zip(header, cells, strict=True):
                if not name and cell:
                    row.error("-", f"a value under a column with no header: {cell!r}")
            if len(record) > len(header) and any(c.strip() for c in record[len(header) :]):
                row.error("-", f"{len(record)} fields, but the header has {len(header)}")
            rows.append((start, cells))
    except csv.Error as exc:
        raise ImportRejectedError([RowError(reader.line_num, "-", f"not CSV: {exc}")]) from None
    if header is None:
        raise ImportRejectedError([RowError(1, "-", "empty file: no header row")])
    return _Records(columns, rows, book)


def _header(record: list[str], kind: ImportKind, line: int) -> list[str]:
    header = [cell.strip() for cell in record]
    errors = [
        RowError(line, c, "required column missing") for c in REQUIRED[kind] if c not in header
    ]
    errors += [
        RowError(line, c, f"unknown column for {kind} (expected {', '.join(COLUMNS[kind])})")
        for c in header
        if c and c not in COLUMNS[kind]
    ]
    errors += [
        RowError(line, c, "column appears twice")
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
            row.error(self.column, f"{self.what} is already on line {first}")
            row.book.duplicates.add(row.line)


def _hours(row: _Row) -> tuple[str, str]:
    """A contact's hours (from, to), the whole day by default."""
    return row["available_from"] or "00:00", row["available_to"] or "24:00"


def _contact(row: _Row) -> None:
    """The checks a contact row needs no store for."""
    role, unit, household = row["role"], row["unit_code"], row["household_code"]
    if role and role not in ROLES:
        row.error("role", f"must be one of {', '.join(ROLES)}, got {role!r}")
    elif role == "family":
        if not household or unit:
            row.error("household_code", "family: a household_code and no unit_code")
    elif role and (not unit or household):
        row.error("unit_code", f"{role}: a unit_code and no household_code")
    phone = row["phone"]
    if phone and not _PHONE.match(phone):
        row.error("phone", f"not a phone number: {phone!r}")
    for column, value in zip(("available_from", "available_to"), _hours(row), strict=True):
        if not _TIME.match(value):
            row.error(column, f"expected HH:MM, got {value!r}")
    unknown = [e for e in _notify(row) or () if e not in NOTIFY_EVENTS]
    if unknown:
        row.error("notify", f"events must be among {', '.join(NOTIFY_EVENTS)} or none: {unknown}")


def _notify(row: _Row) -> tuple[str, ...] | None:
    """The events a contact chose (None: the role's defaults; empty: nothing)."""
    text = row["notify"].strip()
    if not text:
        return None
    if text.lower() == "none":
        return ()
    return tuple(e.strip() for e in re.split(r"[;|]", text) if e.strip())


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
        cls, grid: GridReader, rows: Sequence[_Row], device_ids: Sequence[str]
    ) -> _HouseholdsInStore:
        codes = [r["household_code"] for r in rows]
        units = await grid.units_by_code([r["neighbourhood_code"] for r in rows])
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

    def check(self, row: _Row, box: tuple[str, bytes] | None) -> bool:
        """Check a row against the store; whether the call box it names is a new one."""
        unit = row["neighbourhood_code"]
        if unit and unit not in self.levels:
            row.error("neighbourhood_code", f"unknown unit {unit}: import the units first")
        elif unit and self.levels[unit] != "neighbourhood":
            row.error("neighbourhood_code", f"{unit} is a {self.levels[unit]}, not a neighbourhood")
        if box is None:
            return False
        device_id, key = box
        code = row["household_code"]
        stored = self.devices.get(device_id)
        if stored is None:
            if others := self.boxes_of.get(code):
                row.error(
                    "device_id",
                    f"household {code} already has call box {others[0]}; "
                    "a box is replaced by provisioning, not by import",
                )
            return True
        if stored.kind != "call_box":
            row.error("device_id", f"{device_id} is registered as a {stored.kind}")
        elif stored.household_code != code:
            owner = stored.household_code
            where = f"household {owner}" if owner else "no household"
            row.error(
                "device_id",
                f"call box {device_id} is registered to {where}; "
                "a box is moved by provisioning, not by import",
            )
        if stored.key != key:
            row.error(
                "device_key",
                f"differs from the registered key of {device_id}; "
                "keys are rotated by provisioning, not by import",
            )
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


def _household(row: _Row) -> tuple[str, bytes] | None:
    """The checks a household row needs no store for; the call box it names, if valid."""
    code = row["household_code"]
    if code and not _CODE.match(code):
        row.error("household_code", f"not a household code (letters, digits, '-'): {code!r}")
    phone = row["resident_phone"]
    if phone and not _PHONE.match(phone):
        row.error("resident_phone", f"not a phone number: {phone!r}")
    for column in FLAGS:
        row.flag(column)
    return _box(row)


def _resident(row: _Row) -> ResidentRow:
    """The resident of a household row that passed its checks."""
    return ResidentRow(
        household_code=row["household_code"],
        name=row["resident_name"],
        phone=row["resident_phone"] or None,
        lives_alone=row["lives_alone"].lower() in _YES,
        five_guarantee=row["five_guarantee"].lower() in _YES,
        needs_care=row["needs_care"].lower() in _YES,
        consent=row["consent"].lower() in _YES,
        key_safe_code=row["key_safe_code"] or None,
        health_notes=row["health_notes"] or None,
    )


def _box(row: _Row) -> tuple[str, bytes] | None:
    """The call box a row names, if it names one correctly."""
    raw_id, raw_key = row["device_id"], row["device_key"]
    if not raw_id and not raw_key:
        return None
    if not raw_id:
        row.error("device_id", "required with a device_key")
        return None
    try:
        device_id = parse_device_id(raw_id)
    except ProtocolError:
        row.error("device_id", f"must be 16 hex digits, got {raw_id!r}")
        return None
    if not raw_key:
        row.error("device_key", f"required with a device_id ({2 * KEY_LEN} hex digits)")
        return None
    try:
        key = bytes.fromhex(raw_key)
    except ValueError:
        key = b""
    if len(key) != KEY_LEN:
        row.error("device_key", f"must be {2 * KEY_LEN} hex digits")
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
        codes = _FirstOf("code", "this unit")
        levels: dict[int, str] = {}
        for row in rows:
            _required(kind, row)
            if row["code"] and not _CODE.match(row["code"]):
                row.error("code", f"not a grid code (letters, digits, '-'): {row['code']!r}")
            if row["level"] and row["level"] not in LEVELS:
                row.error("level", f"must be one of {', '.join(LEVELS)}, got {row['level']!r}")
            codes.see(row, row["code"])
            levels[row.line] = row["level"]
        # Parents before children: a unit's parent is always one level up.
        rank = {level: i for i, level in enumerate(LEVELS)}
        order = sorted(everything, key=lambda i: rank.get(levels[records.rows[i][0]], len(LEVELS)))
        return _File(kind, records, order, units=codes.lines, levels=levels)
    if kind == "households":
        households = _FirstOf("household_code", "this household")
        devices = _FirstOf("device_id", "this call box")
        boxes: dict[int, tuple[str, bytes]] = {}
        for row in rows:
            _required(kind, row)
            box = _household(row)
            households.see(row, row["household_code"])
            if box is not None:
                boxes[row.line] = box
                devices.see(row, box[0])
        return _File(kind, records, everything, boxes=boxes)
    contacts = _FirstOf("phone", "this contact (same role, unit or household, phone)")
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
    """Checks a CSV file against itself and the store, then writes its good rows in chunks.

    The file is read and checked against itself in a worker thread. Then, chunk by chunk
    (`ImportSettings.chunk_rows` rows), the chunk's rows are matched against committed rows
    on the store's reader, without the write lock, and written in one short transaction, so
    ingest commits interleave with the import. A row (a household with its resident and its
    box, a unit, a contact) is never split between transactions, and a unit's parent is
    written before it. A write that fails stops the import with ImportInterruptedError; the
    chunks before it stay, and a rerun of the file finishes the job.
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
        file = await asyncio.to_thread(_prepare, kind, data)
        counts = dict.fromkeys(OUTCOMES, 0)
        devices = transactions = done = 0
        now = self._clock.now()
        size = self._settings.chunk_rows
        total = len(file.records.rows)
        for start in range(0, len(file.order), size):
            chunk = file.rows(file.order[start : start + size])
            plan = await self._plan(file, chunk, now)
            if not check and (plan.inserts or plan.updates):
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
                chunk_counts["rejected" if row.errors else plan.outcomes[row.line]] += 1
            for outcome, n in chunk_counts.items():
                counts[outcome] += n
                if n and self._metrics is not None and not check:
                    self._metrics.import_rows.labels(kind, outcome).inc(n)
            await asyncio.sleep(0)  # a turn for everyone else between chunks
        return ImportResult(
            kind,
            total,
            devices=devices,
            errors=tuple(sorted(e for errors in file.records.book.errors.values() for e in errors)),
            check=check,
            transactions=transactions,
            **counts,
        )

    async def _plan(self, file: _File, chunk: list[_Row], now: float) -> _Plan:
        if file.kind == "units":
            return await self._units(file, chunk)
        if file.kind == "households":
            return await self._households(file, chunk, now)
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
                    row.error(
                        "level",
                        f"{code} is a {old.level} in the grid; its level is not changed by import",
                    )
                if (old.parent_code or "") != parent:
                    row.error(
                        "parent_code",
                        f"{code} sits in {old.parent_code or 'nothing'} in the grid; "
                        "moving it is not done by import",
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
                row.error("parent_code", "a county has no parent")
            return
        above = LEVELS[LEVELS.index(level) - 1]
        if not parent:
            row.error("parent_code", f"required: the {above} this {level} sits in")
            return
        parent_line = file.units.get(parent)
        if parent_line is not None and parent_line != row.line:
            if parent_line in file.records.book.errors:
                row.error("parent_code", f"its parent {parent} (line {parent_line}) is rejected")
                return
            parent_level: object = file.levels[parent_line]
        elif parent in stored:
            parent_level = stored[parent].level
        else:
            row.error("parent_code", f"unknown parent {parent}: not in the grid nor in this file")
            return
        if parent_level != above:
            row.error("parent_code", f"a {level} must sit in a {above}, not a {parent_level}")

    async def _households(self, file: _File, rows: list[_Row], now: float) -> _Plan:
        boxes = [box[0] for r in rows if (box := file.boxes.get(r.line)) is not None]
        found = await _HouseholdsInStore.load(self._store.grid, rows, boxes)
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
                row.error("unit_code", f"unknown unit {unit}: import the units first")
            if household and household not in households:
                row.error(
                    "household_code", f"unknown household {household}: import the households first"
                )
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
                language=row["language"] or "zh-CN",
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
