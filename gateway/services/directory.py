"""What one principal may see: the grid, people, devices and tickets, filtered by scope.

Every read takes the Principal of the request. Something outside its scope is answered as
if it did not exist (NotFound), so that a person cannot learn which codes exist elsewhere;
a role that may not read a kind of thing at all is refused (Forbidden). Private fields
(key-safe codes, health notes) are blanked for anyone `Principal.sees_private` refuses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from gateway.domain.access import Capability, Principal, descendants
from gateway.domain.devices import DeviceRecord, OperatorAlarm
from gateway.domain.grid import Contact, GridUnit, ResidentRow
from gateway.domain.tickets import Ticket, TicketKind, TicketStatus
from gateway.services.access import AccessError
from gateway.store.ports import HouseholdEntry, HouseholdQuery, Store, TicketQuery


def require(principal: Principal, capability: Capability) -> None:
    """AccessError("forbidden") if the principal's role does not allow `capability`."""
    if not principal.may(capability):
        raise AccessError(
            "forbidden",
            f"role {principal.role} may not {capability.replace('_', ' ')}",
            capability=capability,
        )


def not_found(what: str, key: str) -> AccessError:
    """The error for something missing or outside the principal's scope (the same answer)."""
    return AccessError("not_found", f"no {what} {key}", what=what, key=key)


@dataclass(frozen=True, slots=True)
class HouseholdPage:
    """One page of households; `next_after` is the cursor of the next page (None: last)."""

    items: list[HouseholdEntry]
    total: int
    next_after: str | None


@dataclass(frozen=True, slots=True)
class ScopedDevice:
    """A device with the grid unit it is in (its household's neighbourhood, or installed)."""

    device: DeviceRecord
    unit_code: str | None


def redact(principal: Principal, resident: ResidentRow) -> ResidentRow:
    """The resident with private fields blanked unless the principal may see them."""
    if principal.sees_private(resident.consent):
        return resident
    return replace(resident, key_safe_code=None, health_notes=None)


class Directory:
    """Scoped reads over the store's read ports."""

    def __init__(self, store: Store, page_max: int) -> None:
        self._store = store
        self._page_max = page_max

    def _limit(self, limit: int) -> int:
        if not 1 <= limit <= self._page_max:
            raise AccessError("bad_input", f"limit must be 1 to {self._page_max}", field="limit")
        return limit

    async def units(self, principal: Principal) -> list[GridUnit]:
        """The grid units in scope, by code."""
        require(principal, "read_grid")
        units = await self._store.grid.units()
        return sorted(
            (u for u in units.values() if principal.sees_unit(u.code)), key=lambda u: u.code
        )

    def _query(
        self,
        principal: Principal,
        unit: str | None,
        text: str | None,
        lives_alone: bool | None,
        after: str | None,
        limit: int,
    ) -> HouseholdQuery:
        roots = None if principal.units is None else tuple(sorted(principal.roots))
        households = None if principal.households is None else tuple(sorted(principal.households))
        if unit is not None and not principal.sees_unit(unit):
            raise not_found("unit", unit)
        return HouseholdQuery(
            roots=roots,
            households=households,
            unit=unit,
            text=(text or "").strip() or None,
            lives_alone=lives_alone,
            after=after,
            limit=self._limit(limit),
        )

    async def households(
        self,
        principal: Principal,
        *,
        unit: str | None = None,
        text: str | None = None,
        lives_alone: bool | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> HouseholdPage:
        """A page of households in scope (with residents, private fields as allowed)."""
        require(principal, "read_grid")
        query = self._query(principal, unit, text, lives_alone, after, limit)
        directory = self._store.directory
        entries = await directory.households(query)
        total = await directory.count_households(query)
        items = [
            HouseholdEntry(e.household, tuple(redact(principal, r) for r in e.residents))
            for e in entries
        ]
        last = items[-1].household.code if len(items) == query.limit else None
        return HouseholdPage(items, total, last)

    async def household(self, principal: Principal, code: str) -> HouseholdEntry:
        """One household in scope with its residents; AccessError not_found otherwise."""
        if not (principal.may("read_grid") or principal.may("read_water")):
            require(principal, "read_grid")
        found = await self._store.grid.households_by_code([code])
        if not found or not principal.sees_household(code, found[0].neighbourhood_code):
            raise not_found("household", code)
        residents = await self._store.grid.residents_of([code])
        return HouseholdEntry(found[0], tuple(redact(principal, r) for r in residents))

    async def check_household(self, principal: Principal, code: str) -> None:
        """AccessError not_found unless the household exists and is in scope."""
        found = await self._store.grid.households_by_code([code])
        if not found or not principal.sees_household(code, found[0].neighbourhood_code):
            raise not_found("household", code)

    async def contacts(self, principal: Principal, unit: str | None = None) -> list[Contact]:
        """The contacts of units and households in scope, by id."""
        require(principal, "read_contacts")
        if unit is not None and not principal.sees_unit(unit):
            raise not_found("unit", unit)
        contacts = await self._store.grid.contacts()
        households = {c.household_code for c in contacts if c.household_code is not None}
        neighbourhoods = {
            h.code: h.neighbourhood_code
            for h in await self._store.grid.households_by_code(sorted(households))
        }
        wanted = None if unit is None else descendants(await self._store.grid.units(), [unit])

        def where(c: Contact) -> str | None:
            if c.unit_code is not None:
                return c.unit_code
            return neighbourhoods.get(c.household_code or "")

        return [
            c
            for c in contacts
            if (
                principal.sees_unit(c.unit_code)
                if c.unit_code is not None
                else principal.sees_household(c.household_code, where(c))
            )
            and (wanted is None or where(c) in wanted)
        ]

    async def devices(
        self, principal: Principal, *, kind: str | None = None, status: str | None = None
    ) -> list[ScopedDevice]:
        """The devices in scope, by id."""
        require(principal, "read_devices")
        devices = await self._store.devices.all()
        placed = await self._places(devices)
        return [
            ScopedDevice(d, placed[d.device_id])
            for d in sorted(devices, key=lambda d: d.device_id)
            if _sees_device(principal, placed[d.device_id])
            and (kind is None or d.kind == kind)
            and (status is None or d.status == status)
        ]

    async def device(self, principal: Principal, device_id: str) -> ScopedDevice:
        """One device in scope; AccessError not_found otherwise."""
        require(principal, "read_devices")
        device = await self._store.devices.get(device_id)
        if device is None:
            raise not_found("device", device_id)
        unit = (await self._places([device]))[device.device_id]
        if not _sees_device(principal, unit):
            raise not_found("device", device_id)
        return ScopedDevice(device, unit)

    async def _places(self, devices: Sequence[DeviceRecord]) -> dict[str, str | None]:
        codes = sorted({d.household_code for d in devices if d.household_code is not None})
        neighbourhoods = {
            h.code: h.neighbourhood_code for h in await self._store.grid.households_by_code(codes)
        }
        placed: dict[str, str | None] = {}
        history_units: dict[str, str | None] = {}
        unplaced = [d.device_id for d in devices if d.household_code is None]
        if unplaced:
            history_units = await self._installed_units(unplaced)
        for d in devices:
            if d.household_code is not None:
                placed[d.device_id] = neighbourhoods.get(d.household_code)
            else:
                placed[d.device_id] = history_units.get(d.device_id)
        return placed

    async def _installed_units(self, device_ids: Sequence[str]) -> dict[str, str | None]:
        """The unit each unattached device was registered to (from its history)."""
        wanted = set(device_ids)
        found: dict[str, str | None] = dict.fromkeys(wanted)
        for device_id in wanted:
            for entry in reversed(await self._store.devices.history(device_id)):
                if entry.unit_code is not None:
                    found[device_id] = entry.unit_code
                    break
        return found

    async def ticket(self, principal: Principal, ticket_id: int) -> Ticket:
        """A ticket in scope; AccessError not_found otherwise."""
        require(principal, "read_tickets")
        ticket = await self._store.tickets.get(ticket_id)
        if ticket is None or not self.sees_ticket(principal, ticket):
            raise not_found("ticket", str(ticket_id))
        return ticket

    def sees_ticket(self, principal: Principal, ticket: Ticket) -> bool:
        """Whether the ticket's household is in scope (an unplaced box: administrators only)."""
        return principal.sees_household(ticket.household_code, ticket.neighbourhood_code)

    async def tickets(
        self,
        principal: Principal,
        *,
        statuses: Sequence[TicketStatus] = (),
        kinds: Sequence[TicketKind] = (),
        village: str | None = None,
        household: str | None = None,
        opened_since: float | None = None,
    ) -> list[Ticket]:
        """Tickets in scope matching every filter, newest first."""
        require(principal, "read_tickets")
        if village is not None and not principal.sees_unit(village):
            raise not_found("village", village)
        if household is not None:
            await self.check_household(principal, household)
        villages: tuple[str, ...] = () if village is None else (village,)
        tickets = await self._store.tickets.find(
            TicketQuery(tuple(statuses), villages, household, opened_since)
        )
        return [
            t for t in tickets if self.sees_ticket(principal, t) and (not kinds or t.kind in kinds)
        ]

    async def alarms(self, principal: Principal, *, cleared: bool = False) -> list[OperatorAlarm]:
        """Operator alarms about devices in scope (alarms about no device: administrators)."""
        require(principal, "read_alarms")
        alarms = await self._store.devices.alarms(cleared=cleared)
        if principal.sees_everything:
            return alarms
        ids = sorted({a.device_id for a in alarms if a.device_id is not None})
        devices = await self._store.grid.devices_by_id(ids)
        placed = await self._places(devices)
        return [
            a
            for a in alarms
            if a.device_id is not None and principal.sees_unit(placed.get(a.device_id))
        ]


def _sees_device(principal: Principal, unit: str | None) -> bool:
    """Whether a device in `unit` (None: unknown) is in scope."""
    return principal.sees_everything or principal.sees_unit(unit)
