"""The grid: units up to the county, households, residents, and the people who respond."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from gateway.domain.devices import DeviceRecord
from gateway.domain.tickets import ResponderRole

Role = Literal[ResponderRole, "family", "installer"]
"""Responders of the call chain, family (of a household), and installers (who keep a unit's
boxes and meters working: device alarms go to them, never a call for help)."""


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


# -- Rules for the values a person types into the grid (the import checks every cell) --------

CODE_MAX = 40
"""A grid or household code: letters, digits and '-', beginning with a letter or digit."""
NAME_MAX = 20
"""A person's name (resident or contact): a Chinese name, or a foreign one written out."""
UNIT_NAME_MAX = 32
"""A unit's name ("三元镇桥元村第十三村民小组" is 13)."""
ADDRESS_MAX = 100
NOTES_MAX = 100
"""Health notes go whole into the one SMS that carries them (three parts with the longest name)."""
KEY_SAFE_MAX = 16
TEXT_MAX = 100
"""Any other text column."""
PHONE_TYPED_MAX = 32
"""A phone number as typed, separators included."""

FORMULA_LEADS = "=+-@"
"""A cell beginning with one of these is a formula to a spreadsheet (CSV injection)."""

# Unicode categories Cc (control, NUL included), Cf (format: zero-width and bidi controls),
# Zl, Zp (line and paragraph separators) and Cs (surrogates), as of Unicode 14; a test
# checks the list against unicodedata.
_INVISIBLE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
    "]"
)
_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]*")
_KEY_SAFE = re.compile(r"[0-9A-Za-z][0-9A-Za-z-]*")
_PHONE_SEPARATORS = re.compile(r"[ \-().]")
_PHONE_DIGITS = re.compile(r"\+?[0-9]+")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"0(?:10|2[0-9]|[3-9][0-9]{2})[0-9]{7,8}")
_INTERNATIONAL = re.compile(r"[1-9][0-9]{6,14}")
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})")
_CHINESE_CLOCK = re.compile(r"([0-9]{1,2})[点时](?:(半)|([0-9]{1,2})分?)?")


class FieldError(ValueError):
    """A value breaks a rule: `rule` names the rule, `params` fill in its message."""

    def __init__(self, rule: str, **params: object) -> None:
        self.rule = rule
        self.params = {k: str(v) for k, v in params.items()}
        super().__init__(rule, self.params)


def plain_text(value: str, cap: int) -> str:
    """`value` (already trimmed) if it is at most `cap` characters of visible text.

    No control characters (NUL, line breaks, tabs), no invisible format characters, and no
    first character that makes a spreadsheet run the cell as a formula.
    """
    if value[:1] in FORMULA_LEADS:
        raise FieldError("formula", first=value[0])
    found = _INVISIBLE.search(value)
    if found is not None:
        raise FieldError(
            "invisible", char=f"U+{ord(found.group()):04X}", position=found.start() + 1
        )
    if len(value) > cap:
        raise FieldError("too_long", cap=cap, length=len(value))
    return value


def grid_code(value: str) -> str:
    """A unit or household code: letters, digits and '-', at most CODE_MAX characters."""
    plain_text(value, CODE_MAX)
    if not _CODE.fullmatch(value):
        raise FieldError("code", cap=CODE_MAX)
    return value


def key_safe_code(value: str) -> str:
    """A key-safe code: letters, digits and '-', at most KEY_SAFE_MAX characters."""
    plain_text(value, KEY_SAFE_MAX)
    if not _KEY_SAFE.fullmatch(value):
        raise FieldError("key_safe", cap=KEY_SAFE_MAX)
    return value


def phone_number(value: str) -> str:
    """A phone number as people write it, in the one form the grid keeps.

    Mainland numbers are kept as dialled at home, digits only: a mobile as its 11 digits
    ("139-0000-0020", "+86 139 0000 0020", "0086 13900000020" -> "13900000020"), a landline
    with its area code ("0558-1234567", "+86 558 1234567" -> "05581234567"). Other countries
    in E.164 ("0044 7700 900123" -> "+447700900123"). FieldError for anything that cannot be
    a number.
    """
    if len(value) > PHONE_TYPED_MAX:
        raise FieldError("too_long", cap=PHONE_TYPED_MAX, length=len(value))
    typed = unicodedata.normalize("NFKC", value)  # full-width digits, brackets and spaces
    digits = _PHONE_SEPARATORS.sub("", typed)
    if not _PHONE_DIGITS.fullmatch(digits):
        raise FieldError("phone_characters")
    if digits.startswith(("+", "00")):
        number = digits.removeprefix("+") if digits[0] == "+" else digits[2:]
        if not number.startswith("86"):
            if not _INTERNATIONAL.fullmatch(number):
                raise FieldError("phone_international")
            return f"+{number}"
        national = number[2:]
        # After +86 a landline drops its leading 0; only Beijing's area code (10) begins with 1.
        beijing = national.startswith("10") and len(national) == 10
        digits = national if national.startswith(("0", "1")) and not beijing else f"0{national}"
    if digits.startswith("1"):
        if _MOBILE.fullmatch(digits):
            return digits
        raise FieldError("phone_mobile")
    if _LANDLINE.fullmatch(digits):
        return digits
    raise FieldError("phone_landline" if digits.startswith("0") else "phone_area")


def clock_time(value: str, *, end: bool) -> str:
    """A time of day as people write it ("8:00", "08:00", "8点", "8点半", "20:30") as HH:MM.

    "24:00" is the end of the day, so only an `end` may be it.
    """
    typed = unicodedata.normalize("NFKC", value).replace(" ", "")
    clock = _CLOCK.fullmatch(typed)
    chinese = None if clock else _CHINESE_CLOCK.fullmatch(typed)
    if clock is not None:
        hour, minute = int(clock[1]), int(clock[2])
    elif chinese is not None:
        hour = int(chinese[1])
        minute = 30 if chinese[2] else int(chinese[3] or 0)
    else:
        raise FieldError("time")
    if hour == 24 and minute == 0:
        if not end:
            raise FieldError("time_24_start")
    elif hour > 23 or minute > 59:
        raise FieldError("time")
    return f"{hour:02d}:{minute:02d}"
