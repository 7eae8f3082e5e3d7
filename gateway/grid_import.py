"""Bulk import of the grid from CSV: every row is checked first, then all or nothing is written.

Three files, each with a header row (UTF-8, an Excel byte-order mark is fine):

- units:       code, level, name, parent_code
- households:  household_code, neighbourhood_code, address, resident_name, resident_phone,
               lives_alone, five_guarantee, needs_care, consent, key_safe_code, health_notes,
               device_id, device_key       (the last two register the household's call box)
- contacts:    name, role, unit_code, household_code, phone, language, available_from,
               available_to
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Literal, get_args

from firmware_protocol import KEY_LEN, ProtocolError, parse_device_id
from gateway.clock import Clock
from gateway.config import Role, SupervisionSettings
from gateway.errors import GatewayError
from gateway.registry import SILENT_DEADLINE
from gateway.store import Deadline, Store, UnitOfWork

ImportKind = Literal["units", "households", "contacts"]
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
    ),
}
REQUIRED: dict[ImportKind, tuple[str, ...]] = {
    "units": ("code", "level", "name"),
    "households": ("household_code", "neighbourhood_code", "resident_name"),
    "contacts": ("name", "role", "phone"),
}
_CODE = re.compile(r"^[0-9A-Za-z-]{1,40}$")
_PHONE = re.compile(r"^\+?[0-9]{5,15}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
_YES = {"1", "true", "yes", "y", "是"}
_NO = {"", "0", "false", "no", "n", "否"}


@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong with one row (row 2 is the first after the header)."""

    row: int
    column: str
    message: str

    def __str__(self) -> str:
        """As an administrator reads it."""
        return f"row {self.row}, {self.column}: {self.message}"


class ImportRejectedError(GatewayError):
    """The file has errors; nothing was written."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:20])
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} errors, nothing imported: {shown}{more}")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """How many rows went in."""

    kind: ImportKind
    rows: int
    devices: int = 0


def _flag(value: str, row: int, column: str, errors: list[RowError]) -> int:
    text = value.strip().lower()
    if text in _YES:
        return 1
    if text not in _NO:
        errors.append(RowError(row, column, f"expected 1/0 or 是/否, got {value!r}"))
    return 0


def _read(text: str, kind: ImportKind) -> tuple[list[dict[str, str]], list[RowError]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED[kind] if c not in header]
    unknown = [c for c in header if c not in COLUMNS[kind]]
    errors = [RowError(1, c, "required column missing") for c in missing]
    errors += [RowError(1, c, "unknown column") for c in unknown]
    rows: list[dict[str, str]] = []
    for raw in reader:
        if len(rows) >= MAX_ROWS:
            errors.append(RowError(len(rows) + 2, "-", f"more than {MAX_ROWS} rows"))
            break
        rows.append({k.strip(): (v or "").strip() for k, v in raw.items() if k is not None})
    return rows, errors


class GridImporter:
    """Checks a CSV file against itself and the store, then writes it in one transaction."""

    def __init__(self, store: Store, clock: Clock, supervision: SupervisionSettings) -> None:
        self._store = store
        self._clock = clock
        self._supervision = supervision

    async def import_csv(self, kind: ImportKind, text: str) -> ImportResult:
        """Import one file; ImportRejectedError lists every bad row and nothing is written."""
        rows, errors = _read(text, kind)
        async with self._store.transaction() as uow:
            if kind == "units":
                written = await self._units(uow, rows, errors)
            elif kind == "households":
                written = await self._households(uow, rows, errors)
            else:
                written = await self._contacts(uow, rows, errors)
            if errors:
                # Raising rolls the transaction back: nothing half-imported.
                raise ImportRejectedError(sorted(errors, key=lambda e: e.row))
        return ImportResult(kind, len(rows), written)

    @staticmethod
    def _required(kind: ImportKind, rows: list[dict[str, str]], errors: list[RowError]) -> None:
        errors.extend(
            RowError(n, column, "required")
            for n, row in enumerate(rows, start=2)
            for column in REQUIRED[kind]
            if not row.get(column)
        )

    async def _units(
        self, uow: UnitOfWork, rows: list[dict[str, str]], errors: list[RowError]
    ) -> int:
        self._required("units", rows, errors)
        known = await uow.existing_keys("grid_units", [r.get("parent_code", "") for r in rows])
        existing = await uow.existing_keys("grid_units", [r["code"] for r in rows if r.get("code")])
        out = []
        for n, row in enumerate(rows, start=2):
            code, level, parent = row.get("code", ""), row.get("level", ""), row.get("parent_code")
            if code and not _CODE.match(code):
                errors.append(RowError(n, "code", f"not a grid code: {code!r}"))
            if code in existing:
                errors.append(RowError(n, "code", f"{code} exists already"))
            if level and level not in LEVELS:
                errors.append(RowError(n, "level", f"must be one of {', '.join(LEVELS)}"))
            elif level == "county" and parent:
                errors.append(RowError(n, "parent_code", "a county has no parent"))
            elif level and level != "county":
                parent_level = known.get(parent or "")
                if parent_level is None:
                    errors.append(RowError(n, "parent_code", f"unknown parent {parent!r}"))
                elif LEVELS.index(parent_level) != LEVELS.index(level) - 1:
                    errors.append(
                        RowError(
                            n,
                            "parent_code",
                            f"a {level} must sit in a "
                            f"{LEVELS[LEVELS.index(level) - 1]}, not a {parent_level}",
                        )
                    )
            if code and level:
                known[code] = level  # later rows may use it as their parent
            existing[code] = level
            out.append(
                {
                    "code": code,
                    "level": level,
                    "name": row.get("name", ""),
                    "parent_code": parent or None,
                }
            )
        if not errors:
            await uow.insert_grid_rows("grid_units", out)
        return 0

    async def _households(
        self, uow: UnitOfWork, rows: list[dict[str, str]], errors: list[RowError]
    ) -> int:
        self._required("households", rows, errors)
        units = await uow.existing_keys(
            "grid_units", [r.get("neighbourhood_code", "") for r in rows]
        )
        existing = await uow.existing_keys(
            "households", [r.get("household_code", "") for r in rows]
        )
        devices = await uow.existing_keys("devices", [r.get("device_id", "") for r in rows])
        households, residents, new_devices = [], [], []
        seen_codes: set[str] = set()
        seen_devices: set[str] = set()
        now = self._clock.now()
        for n, row in enumerate(rows, start=2):
            code = row.get("household_code", "")
            if code in existing or code in seen_codes:
                errors.append(RowError(n, "household_code", f"{code} appears twice or exists"))
            seen_codes.add(code)
            unit = row.get("neighbourhood_code", "")
            if unit and units.get(unit) != "neighbourhood":
                errors.append(RowError(n, "neighbourhood_code", f"{unit!r} is not a neighbourhood"))
            phone = row.get("resident_phone", "")
            if phone and not _PHONE.match(phone):
                errors.append(RowError(n, "resident_phone", f"not a phone number: {phone!r}"))
            flags = {
                c: _flag(row.get(c, ""), n, c, errors)
                for c in ("lives_alone", "five_guarantee", "needs_care", "consent")
            }
            households.append(
                {"code": code, "neighbourhood_code": unit, "address": row.get("address", "")}
            )
            residents.append(
                {
                    "household_code": code,
                    "name": row.get("resident_name", ""),
                    "phone": phone or None,
                    **flags,
                    "key_safe_code": row.get("key_safe_code") or None,
                    "health_notes": row.get("health_notes") or None,
                }
            )
            device = self._device_row(row, n, errors, devices, seen_devices, now)
            if device is not None:
                new_devices.append(device)
        if not errors:
            await uow.insert_grid_rows("households", households)
            await uow.insert_grid_rows("residents", residents)
            await uow.insert_grid_rows("devices", new_devices)
            due = now + self._supervision.missed_intervals * self._box_interval
            await uow.set_deadlines(
                [Deadline(SILENT_DEADLINE, str(d["device_id"]), due) for d in new_devices]
            )
        return len(new_devices)

    @property
    def _box_interval(self) -> int:
        return self._supervision.heartbeat_interval_s["call_box"]

    def _device_row(
        self,
        row: dict[str, str],
        n: int,
        errors: list[RowError],
        existing: dict[str, str],
        seen: set[str],
        now: float,
    ) -> dict[str, object] | None:
        raw_id, raw_key = row.get("device_id", ""), row.get("device_key", "")
        if not raw_id and not raw_key:
            return None
        try:
            device_id = parse_device_id(raw_id)
        except ProtocolError:
            errors.append(RowError(n, "device_id", f"must be 16 hex digits, got {raw_id!r}"))
            return None
        if device_id in existing or device_id in seen:
            errors.append(RowError(n, "device_id", f"{device_id} appears twice or exists"))
        seen.add(device_id)
        try:
            key = bytes.fromhex(raw_key)
        except ValueError:
            key = b""
        if len(key) != KEY_LEN:
            errors.append(RowError(n, "device_key", f"must be {2 * KEY_LEN} hex digits"))
        return {
            "device_id": device_id,
            "kind": "call_box",
            "key": key,
            "household_code": row.get("household_code"),
            "heartbeat_interval_s": self._box_interval,
            "created_at": now,
        }

    async def _contacts(
        self, uow: UnitOfWork, rows: list[dict[str, str]], errors: list[RowError]
    ) -> int:
        self._required("contacts", rows, errors)
        units = await uow.existing_keys("grid_units", [r.get("unit_code", "") for r in rows])
        households = await uow.existing_keys(
            "households", [r.get("household_code", "") for r in rows]
        )
        out = []
        for n, row in enumerate(rows, start=2):
            role = row.get("role", "")
            unit, household = row.get("unit_code", ""), row.get("household_code", "")
            if role and role not in ROLES:
                errors.append(RowError(n, "role", f"must be one of {', '.join(ROLES)}"))
            if role == "family":
                if not household or unit:
                    errors.append(RowError(n, "household_code", "family: household only"))
                elif household not in households:
                    errors.append(RowError(n, "household_code", f"unknown household {household}"))
            elif role:
                if not unit or household:
                    errors.append(RowError(n, "unit_code", f"{role}: a grid unit only"))
                elif unit not in units:
                    errors.append(RowError(n, "unit_code", f"unknown unit {unit}"))
            phone = row.get("phone", "")
            if phone and not _PHONE.match(phone):
                errors.append(RowError(n, "phone", f"not a phone number: {phone!r}"))
            hours = {
                c: row.get(c) or d
                for c, d in (("available_from", "00:00"), ("available_to", "24:00"))
            }
            for column, value in hours.items():
                if not _TIME.match(value):
                    errors.append(RowError(n, column, f"expected HH:MM, got {value!r}"))
            out.append(
                {
                    "name": row.get("name", ""),
                    "role": role,
                    "unit_code": unit or None,
                    "household_code": household or None,
                    "phone": phone,
                    "language": row.get("language") or "zh-CN",
                    **hours,
                }
            )
        if not errors:
            await uow.insert_grid_rows("contacts", out)
        return 0
