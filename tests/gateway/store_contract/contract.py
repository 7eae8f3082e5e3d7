"""What the storage contract suite runs against: store backends, sample values, grid seeding.

A backend makes stores that all open the same fresh database, so a test can "crash" one
store (close it mid-story) and carry on with another. To run the suite against a new store,
add a backend to `BACKENDS` and nothing else: the suite uses only the `Store` port
(`gateway.store.ports`), its write ports (`uow.devices`, `uow.tickets`, ...) and its read
ports (`store.devices`, `store.tickets`, ...).
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiosqlite

from alerts import Notification
from alerts.notification import NORMAL
from gateway.clock import ManualClock
from gateway.config import ImportSettings, SupervisionSettings, TicketSettings
from gateway.domain.devices import DeviceRecord, EventRow
from gateway.domain.grid import Contact
from gateway.domain.tickets import Ticket, TicketRules, new_ticket
from gateway.services.grid_import import GridImporter, ImportKind
from gateway.store.ports import Store, UnitOfWork
from gateway.store.sqlite import SqliteStore
from tests.gateway.grid import CONTACTS_CSV, HOUSEHOLDS_CSV, UNITS_CSV

T0 = 1_780_030_000.0
"""A time at which every sample starts."""

KEY = bytes(range(16))

RULES: TicketRules = TicketSettings().rules_for(None)
"""The default ticket rules, as snapshotted onto a ticket when it opens."""


@dataclass(frozen=True, slots=True)
class Backend:
    """One store implementation under test, over one fresh database."""

    name: str
    make: Callable[[], Store]
    """A new, unopened store on this backend's database."""
    damage: Callable[[], None] | None = None
    """Make the database unusable as a database (None if the backend cannot be damaged)."""
    reap: Callable[[], Awaitable[int]] | None = None
    """Close driver connections that no store owns any more; how many there were.

    Only for tests that keep no store open: a leaked connection must not outlive its test.
    """


def sqlite_backend(tmp_path: Path) -> Backend:
    """SQLite in one file under `tmp_path`."""
    path = tmp_path / "contract.db"

    def damage() -> None:
        path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)

    return Backend("sqlite", lambda: SqliteStore(path), damage, _reap_aiosqlite)


async def _reap_aiosqlite() -> int:
    """Close every aiosqlite connection still open in this process; how many were open."""
    leaked = 0
    for conn in [o for o in gc.get_objects() if isinstance(o, aiosqlite.Connection)]:
        try:
            _ = conn.in_transaction  # ValueError once the connection is closed
        except ValueError:
            continue
        leaked += 1
        await conn.close()
    return leaked


BACKENDS: dict[str, Callable[[Path], Backend]] = {"sqlite": sqlite_backend}
"""Every implementation the contract runs against, by name."""


def device(device_id: str = "00000000000000a1", **values: Any) -> DeviceRecord:
    """A call box as registration writes it."""
    base = DeviceRecord(
        device_id=device_id, kind="call_box", key=KEY, heartbeat_interval_s=60, created_at=T0
    )
    return replace(base, **values)


def event(
    seq: int,
    device_id: str = "00000000000000a1",
    msg_type: str = "Heartbeat",
    received_at: float = T0 + 1,
) -> EventRow:
    """One accepted uplink."""
    return EventRow(
        device_id, seq, msg_type, 1000 + seq, received_at, "mqtt", "mqtt", bytes([seq % 256]), "{}"
    )


def ticket(
    household_code: str | None,
    device_id: str | None,
    village_code: str | None = None,
    neighbourhood_code: str | None = None,
    presses: int = 1,
    at: float = T0,
) -> Ticket:
    """A ticket as the domain opens it (id 0 until the store gives it one)."""
    return new_ticket(
        household_code, device_id, village_code, neighbourhood_code, presses, RULES, at
    )


def sms(
    recipient: str = "13800000001",
    template: str = "ticket_opened",
    *,
    priority: int = NORMAL,
    contact_id: int | None = None,
    ticket_id: int | None = None,
    params: dict[str, str] | None = None,
) -> Notification:
    """An SMS as the domain writes it into the outbox."""
    return Notification(
        channel="sms",
        recipient=recipient,
        template=template,
        params=params if params is not None else {"place": "桥元村三组"},
        contact_id=contact_id,
        ticket_id=ticket_id,
        priority=priority,
    )


def _importer(store: Store) -> GridImporter:
    return GridImporter(store, ManualClock(T0), SupervisionSettings(), ImportSettings())


async def seed_grid(store: Store) -> None:
    """Import the test village (units, households with their box, contacts) through the port."""
    importer = _importer(store)
    files: tuple[tuple[ImportKind, str], ...] = (
        ("units", UNITS_CSV),
        ("households", HOUSEHOLDS_CSV),
        ("contacts", CONTACTS_CSV),
    )
    for kind, text in files:
        result = await importer.import_csv(kind, text)
        assert result.rejected == 0, result.errors


async def import_contacts(store: Store, rows: Sequence[str]) -> None:
    """Import more contacts (CSV lines after the header of the test village's contacts)."""
    header = CONTACTS_CSV.splitlines()[0]
    result = await _importer(store).import_csv("contacts", "\n".join([header, *rows]) + "\n")
    assert result.rejected == 0, result.errors


async def contact_ids(store: Store) -> dict[str, int]:
    """Every contact's id by name."""
    return {c.name: c.id for c in await store.grid.contacts()}


async def pending_ids(uow: UnitOfWork, now: float = T0 + 10_000) -> list[int]:
    """Ids of the notifications due for a normal send at `now`, in the order they are served."""
    return [r.id for r in await uow.outbox.due(now, 1000, in_doubt=False)]


def by_id(contacts: Sequence[Contact]) -> dict[int, Contact]:
    """Contacts keyed by id."""
    return {c.id: c for c in contacts}
