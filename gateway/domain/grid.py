"""The grid: units up to the county, households, residents, and the people who respond."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.domain.devices import DeviceRecord
from gateway.domain.tickets import ResponderRole

Role = Literal[ResponderRole, "family"]


def found_by_unit(role: Role) -> bool:
    """Whether contacts with `role` belong to a grid unit (family belong to a household)."""
    return role != "family"


@dataclass(frozen=True, slots=True)
class Contact:
    """A person who can be notified."""

    id: int
    name: str
    role: Role
    phone: str
    language: str = "zh-CN"
    unit_code: str | None = None
    household_code: str | None = None
    bad_number: bool = False
    available_from: str = "00:00"
    available_to: str = "24:00"
    notify: tuple[str, ...] | None = None
    """The events this contact chose to be told of ("" in the file: none); None: the
    defaults of the role (TicketPolicy.family_events for family)."""

    def available_at(self, minute_of_day: int) -> bool:
        """Whether `minute_of_day` (local time, 0..1439) is within the contact's hours.

        Hours may wrap midnight (22:00-06:00 for a night duty officer).
        """
        start, end = _minutes(self.available_from), _minutes(self.available_to)
        if start <= end:
            return start <= minute_of_day < end
        return minute_of_day >= start or minute_of_day < end


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class GridUnit:
    """One unit of the grid."""

    code: str
    level: str
    name: str
    parent_code: str | None


@dataclass(frozen=True, slots=True)
class HouseholdRow:
    """One household as stored."""

    code: str
    neighbourhood_code: str
    address: str = ""


@dataclass(frozen=True, slots=True)
class ResidentRow:
    """One resident of a household as stored; `id` is None until it is."""

    household_code: str
    name: str
    phone: str | None = None
    lives_alone: bool = False
    five_guarantee: bool = False
    needs_care: bool = False
    consent: bool = False
    key_safe_code: str | None = None
    health_notes: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact as the grid import writes it; `id` is None until it is stored."""

    name: str
    role: Role
    phone: str
    unit_code: str | None = None
    household_code: str | None = None
    language: str = "zh-CN"
    available_from: str = "00:00"
    available_to: str = "24:00"
    id: int | None = None
    notify: tuple[str, ...] | None = None


GridRow = GridUnit | HouseholdRow | ResidentRow | ContactRow | DeviceRecord


@dataclass(frozen=True, slots=True)
class HouseholdInfo:
    """A household with its place in the grid, nearest unit first, and its first resident."""

    code: str
    address: str
    unit_chain: tuple[str, ...]
    unit_names: dict[str, str]
    unit_levels: dict[str, str]
    resident_name: str
    resident_phone: str | None = None
    consent: bool = False
    """The resident agreed that responders may be given the key-safe code and health notes."""
    key_safe_code: str | None = None
    health_notes: str | None = None

    def __repr__(self) -> str:
        """Never show the key-safe code or health notes."""
        return f"HouseholdInfo(code={self.code!r}, resident={self.resident_name!r})"

    def unit_at(self, level: str) -> str | None:
        """The code of the household's unit at `level`, if the grid has one."""
        return next((c for c in self.unit_chain if self.unit_levels[c] == level), None)

    @property
    def place(self) -> str:
        """The house address as imported ("白沙村一组15号"); village and group names if none."""
        if self.address.strip():
            return self.address
        names = [
            self.unit_names[c]
            for c in reversed(self.unit_chain)
            if self.unit_levels[c] in ("village", "group")
        ]
        return "".join(names) or self.code
