"""Who may see and do what: users' roles, the principal every query is filtered by.

A user has one role. The unit roles answer for grid units (their unit and every unit below
it): a township officer for a township, a secretary or grid worker for a village (a grid
worker may also be given an area or group), an installer for the units assigned to them.
Family answer for households: those they are a family contact of. An administrator sees
everything.

Private fields (a resident's key-safe code and health notes) are shown only to an
administrator, and to a secretary for residents of their own village who consented to
responders being told them. Grid workers, installers, township officers and family never
see them: the secretary hands the code over when a visit needs it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from gateway.domain.grid import GridUnit

UserRole = Literal[
    "administrator", "township_officer", "secretary", "grid_worker", "installer", "family"
]
USER_ROLES: tuple[UserRole, ...] = (
    "administrator",
    "township_officer",
    "secretary",
    "grid_worker",
    "installer",
    "family",
)

Capability = Literal[
    "read_grid",
    "read_contacts",
    "read_tickets",
    "act_tickets",
    "read_devices",
    "bind_devices",
    "read_alarms",
    "read_water",
    "manage_water",
    "read_statistics",
    "read_settings",
    "read_private",
]

CAPABILITIES: dict[UserRole, frozenset[Capability]] = {
    "administrator": frozenset(
        (
            "read_grid",
            "read_contacts",
            "read_tickets",
            "act_tickets",
            "read_devices",
            "bind_devices",
            "read_alarms",
            "read_water",
            "manage_water",
            "read_statistics",
            "read_settings",
            "read_private",
        )
    ),
    "township_officer": frozenset(
        (
            "read_grid",
            "read_contacts",
            "read_tickets",
            "act_tickets",
            "read_devices",
            "read_alarms",
            "read_water",
            "read_statistics",
            "read_settings",
        )
    ),
    "secretary": frozenset(
        (
            "read_grid",
            "read_contacts",
            "read_tickets",
            "act_tickets",
            "read_devices",
            "read_alarms",
            "read_water",
            "manage_water",
            "read_statistics",
            "read_settings",
            "read_private",
        )
    ),
    "grid_worker": frozenset(
        (
            "read_grid",
            "read_contacts",
            "read_tickets",
            "act_tickets",
            "read_devices",
            "read_alarms",
            "read_water",
            "manage_water",
            "read_settings",
        )
    ),
    "installer": frozenset(("read_grid", "read_devices", "bind_devices", "read_alarms")),
    "family": frozenset(("read_tickets", "read_water")),
}
"""What each role may do, within its scope."""

UNIT_LEVELS: dict[UserRole, tuple[str, ...]] = {
    "administrator": (),
    "township_officer": ("township",),
    "secretary": ("village",),
    "grid_worker": ("village", "area", "group", "neighbourhood"),
    "installer": ("county", "township", "village", "area", "group", "neighbourhood"),
    "family": (),
}
"""The levels of the units a user of each role may be given (none: the role has no units)."""

LOGIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,63}")
"""A login: 2 to 64 letters, digits, dot, underscore, at sign or hyphen."""
PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 256
TOKEN_NAME_MAX_CHARS = 64
NAME_MAX_CHARS = 64

AuthVia = Literal["session", "token", "cli"]


@dataclass(frozen=True, slots=True)
class User:
    """A person or system that signs in; `units` are the units they answer for."""

    id: int
    login: str
    name: str
    role: UserRole
    units: tuple[str, ...]
    contact_id: int | None
    created_at: float
    disabled_at: float | None = None
    has_password: bool = False

    @property
    def enabled(self) -> bool:
        """Whether the user may sign in."""
        return self.disabled_at is None


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A system's token (its secret is never stored, only a digest)."""

    id: int
    user_id: int
    name: str
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A signed-in browser session (its secret is never stored, only a digest)."""

    user_id: int
    created_at: float
    expires_at: float
    client: str = ""
    ended_at: float | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One write, with who made it."""

    at: float
    user_id: int | None
    login: str
    action: str
    target: str = ""
    detail: str = ""
    client: str = ""
    outcome: str = "ok"
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking, and what they may see: every query is filtered by it.

    `units` is the user's units and every unit below them (None: every unit, for an
    administrator); `households` the households a family member may see (None: any in the
    units).
    """

    user_id: int
    login: str
    name: str
    role: UserRole
    roots: tuple[str, ...]
    units: frozenset[str] | None
    households: frozenset[str] | None
    contact_id: int | None = None
    via: AuthVia = "session"

    def may(self, capability: Capability) -> bool:
        """Whether the role allows `capability` at all (scope is checked separately)."""
        return capability in CAPABILITIES[self.role]

    @property
    def capabilities(self) -> tuple[Capability, ...]:
        """What the role allows, sorted."""
        return tuple(sorted(CAPABILITIES[self.role]))

    @property
    def sees_everything(self) -> bool:
        """Whether no scope limits this principal (an administrator)."""
        return self.units is None and self.households is None

    def sees_unit(self, code: str | None) -> bool:
        """Whether the unit is in scope (family see no units)."""
        if self.households is not None:
            return False
        return self.units is None or (code is not None and code in self.units)

    def sees_household(self, code: str | None, neighbourhood_code: str | None) -> bool:
        """Whether a household (given with its neighbourhood) is in scope."""
        if code is None:
            return self.sees_everything
        if self.households is not None:
            return code in self.households
        return self.sees_unit(neighbourhood_code)

    def sees_private(self, consent: bool) -> bool:
        """Whether key-safe codes and health notes of an in-scope resident may be shown."""
        if self.role == "administrator":
            return True
        return self.role == "secretary" and consent


def descendants(units: Mapping[str, GridUnit], roots: Iterable[str]) -> frozenset[str]:
    """The codes of `roots` and of every unit below them."""
    children: dict[str, list[str]] = {}
    for unit in units.values():
        if unit.parent_code is not None:
            children.setdefault(unit.parent_code, []).append(unit.code)
    found: set[str] = set()
    todo = [code for code in roots if code in units]
    while todo:
        code = todo.pop()
        if code in found:
            continue
        found.add(code)
        todo.extend(children.get(code, ()))
    return frozenset(found)


def bad_password(password: str) -> str | None:
    """Why a new password cannot be used ("too_short", "too_long"), or None if it can."""
    if len(password) < PASSWORD_MIN_CHARS:
        return "too_short"
    if len(password) > PASSWORD_MAX_CHARS:
        return "too_long"
    return None
