"""SQLite implementation of the store: WAL, synchronous=FULL, versioned migrations."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields, replace
from importlib import resources
from pathlib import Path
from typing import Any, cast

import aiosqlite

from alerts import Notification
from alerts.notification import URGENT
from firmware_protocol import Indication, IndicationKind, Key, LedPattern
from gateway.domain.devices import (
    AlarmKind,
    DeviceRecord,
    DeviceSeen,
    DeviceStatus,
    EventRow,
    HealthAlarm,
    HealthKind,
    HistoryEntry,
    OfflineNotice,
    OfflineSpell,
    OperatorAlarm,
    Telemetry,
    Transition,
)
from gateway.domain.grid import (
    Contact,
    ContactRow,
    GridRow,
    GridUnit,
    HouseholdInfo,
    HouseholdRow,
    ResidentRow,
    Role,
)
from gateway.domain.notify import FollowUpKind, delivery_advances, status_for_delivery
from gateway.domain.tickets import (
    BoxPress,
    EscalationCursor,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketRules,
    TicketStatus,
)
from gateway.domain.water import DayHistory, WaterWatch, watch_from_record, watch_to_record
from gateway.errors import (
    ConflictError,
    MigrationError,
    RegistryError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from gateway.store.ports import (
    Deadline,
    DeadlineFailure,
    Feedback,
    IndicationRecord,
    IndicationRetry,
    OutboxEntry,
    OutboxRecord,
    OutboxRow,
    PendingIndication,
    SentNotification,
    StoredKeyPress,
    TicketMessage,
    TicketQuery,
    WatchedDevice,
    WaterLogLine,
    WaterRequest,
)
from gateway.store.sqlite_access import (
    SqliteAccessReads,
    SqliteAccessWrites,
    SqliteDirectoryReads,
)
from gateway.store.sqlite_installs import SqliteInstallReads, SqliteInstallWrites
from gateway.store.writer_lock import WriterLock

_POSITION_BIAS = 1 << 63
"""A frame's position (session << 32 | seq, docs/protocol.md) runs over 0 .. 2**64 - 1, but an
SQLite integer is signed 64-bit. Every column holding a position (events.seq, devices.last_seq,
devices.downlink_seq, tickets.latest_press_position) stores it minus 2**63: the map is one to
one and keeps order, so ORDER BY, max() and `seq > ?` work on stored values unchanged, as long
as every bound position goes through _pos_in and every read one through _pos_out."""


def _pos_in(position: int) -> int:
    """A position as stored; ValueError outside 0 .. 2**64 - 1."""
    if not 0 <= position < 1 << 64:
        raise ValueError(f"position {position} is outside 0 .. 2**64 - 1")
    return position - _POSITION_BIAS


def _pos_in_opt(position: int | None) -> int | None:
    return None if position is None else _pos_in(position)


def _pos_out(stored: int) -> int:
    """A stored position as the position it stands for."""
    return int(stored) + _POSITION_BIAS


def _pos_out_opt(stored: int | None) -> int | None:
    return None if stored is None else _pos_out(stored)


_IN_CHUNK = 500
"""Ids per `IN (...)` list: well under SQLite's limit on bound parameters."""
_CURRENT_DEVICES = (
    "SELECT d.*, e.seq AS e_seq, e.received_at AS e_at, e.link AS e_link,"
    " (SELECT max(seq) FROM events WHERE device_id = d.device_id) AS e_high FROM devices d"
    " LEFT JOIN events e ON e.id = (SELECT id FROM events WHERE device_id = d.device_id"
    " AND received_at >= coalesce(d.counters_reset_at, 0) ORDER BY seq DESC LIMIT 1)"
)
"""Devices with their newest event, for a WHERE on d.device_id."""
_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # An acknowledged frame must survive power loss: fsync the WAL on every commit.
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=10000",
)
_DEVICE_COLUMNS = (
    "device_id",
    "kind",
    "key",
    "heartbeat_interval_s",
    "created_at",
    "key_version",
    "household_code",
    "label",
    "enabled",
    "status",
    "low_battery",
    "firmware",
    "battery_pct",
    "battery_mv",
    "rssi_dbm",
    "uptime_s",
    "last_seen",
    "last_link",
    "last_seq",
    "downlink_seq",
    "next_key",
    "next_key_id",
    "counters_reset_at",
    "pending_heartbeat_s",
    "pending_clock",
)
_GRID_KEYS_PER_QUERY = 500


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped with the code, in order."""
    found = []
    for entry in resources.files("gateway.store.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql"):
            found.append((int(name.split("_", 1)[0]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


_INSERT_UNIT = "INSERT INTO grid_units (code, level, name, parent_code) VALUES (?, ?, ?, ?)"
_INSERT_HOUSEHOLD = "INSERT INTO households (code, neighbourhood_code, address) VALUES (?, ?, ?)"
_INSERT_RESIDENT = (
    "INSERT INTO residents (household_code, name, phone, lives_alone, five_guarantee,"
    " needs_care, consent, key_safe_code, health_notes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_CONTACT = (
    "INSERT INTO contacts (name, role, unit_code, household_code, phone, language,"
    " available_from, available_to, notify) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_DEVICE = (
    f"INSERT INTO devices ({', '.join(_DEVICE_COLUMNS)})"  # noqa: S608 - fixed names
    f" VALUES ({', '.join('?' for _ in _DEVICE_COLUMNS)})"
)
_UPDATE_UNIT = "UPDATE grid_units SET name = ? WHERE code = ?"
_UPDATE_HOUSEHOLD = "UPDATE households SET neighbourhood_code = ?, address = ? WHERE code = ?"
_UPDATE_RESIDENT = (
    "UPDATE residents SET phone = ?, lives_alone = ?, five_guarantee = ?, needs_care = ?,"
    " consent = ?, key_safe_code = ?, health_notes = ? WHERE id = ?"
)
_UPDATE_CONTACT = (
    "UPDATE contacts SET name = ?, language = ?, available_from = ?, available_to = ?,"
    " notify = ? WHERE id = ?"
)


def _grid_insert(row: GridRow) -> tuple[str, str, tuple[object, ...]]:
    """(table, INSERT statement, values) that store a new grid row."""
    match row:
        case GridUnit():
            return "grid_units", _INSERT_UNIT, (row.code, row.level, row.name, row.parent_code)
        case HouseholdRow():
            return "households", _INSERT_HOUSEHOLD, (row.code, row.neighbourhood_code, row.address)
        case ResidentRow():
            return (
                "residents",
                _INSERT_RESIDENT,
                (
                    row.household_code,
                    row.name,
                    row.phone,
                    row.lives_alone,
                    row.five_guarantee,
                    row.needs_care,
                    row.consent,
                    row.key_safe_code,
                    row.health_notes,
                ),
            )
        case ContactRow():
            return (
                "contacts",
                _INSERT_CONTACT,
                (
                    row.name,
                    row.role,
                    row.unit_code,
                    row.household_code,
                    row.phone,
                    row.language,
                    row.available_from,
                    row.available_to,
                    _notify_text(row.notify),
                ),
            )
        case DeviceRecord():
            return "devices", _INSERT_DEVICE, _device_values(row)


def _grid_update(row: GridRow) -> tuple[str, str, tuple[object, ...]]:
    """(table, UPDATE statement, values) that set what an import may change of a row."""
    match row:
        case GridUnit():
            return "grid_units", _UPDATE_UNIT, (row.name, row.code)
        case HouseholdRow():
            return (
                "households",
                _UPDATE_HOUSEHOLD,
                (row.neighbourhood_code, row.address, row.code),
            )
        case ResidentRow():
            return (
                "residents",
                _UPDATE_RESIDENT,
                (
                    row.phone,
                    row.lives_alone,
                    row.five_guarantee,
                    row.needs_care,
                    row.consent,
                    row.key_safe_code,
                    row.health_notes,
                    row.id,
                ),
            )
        case ContactRow():
            return (
                "contacts",
                _UPDATE_CONTACT,
                (
                    row.name,
                    row.language,
                    row.available_from,
                    row.available_to,
                    _notify_text(row.notify),
                    row.id,
                ),
            )
        case DeviceRecord():
            raise StoreError("devices rows are not changed by a grid import")


def _contact(row: sqlite3.Row) -> Contact:
    return Contact(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        phone=row["phone"],
        language=row["language"],
        unit_code=row["unit_code"],
        household_code=row["household_code"],
        bad_number=bool(row["bad_number"]),
        available_from=row["available_from"],
        available_to=row["available_to"],
        notify=_notify_events(row["notify"]),
    )


def _notify_text(events: tuple[str, ...] | None) -> str | None:
    return None if events is None else ",".join(events)


def _notify_events(text: str | None) -> tuple[str, ...] | None:
    """A contact's chosen events as stored (comma-separated; NULL: the role's defaults)."""
    if text is None:
        return None
    return tuple(e for e in (part.strip() for part in text.split(",")) if e)


def _ticket(row: sqlite3.Row) -> Ticket:
    return Ticket(
        id=row["id"],
        household_code=row["household_code"],
        device_id=row["device_id"],
        village_code=row["village_code"],
        neighbourhood_code=row["neighbourhood_code"],
        status=TicketStatus(row["status"]),
        category=row["category"],
        press_count=row["press_count"],
        escalation_level=row["escalation_level"],
        escalated=bool(row["escalated"]),
        owner_contact_id=row["owner_contact_id"],
        opened_at=row["opened_at"],
        last_press_at=row["last_press_at"],
        last_notified_at=row["last_notified_at"],
        accepted_at=row["accepted_at"],
        on_site_at=row["on_site_at"],
        resolved_at=row["resolved_at"],
        rated_at=row["rated_at"],
        cancelled_at=row["cancelled_at"],
        day_due_at=row["day_due_at"],
        rating=row["rating"],
        review_flag=bool(row["review_flag"]),
        rules=TicketRules(
            responder_chain=tuple(json.loads(row["responder_chain"])),
            informed_at_open=tuple(json.loads(row["informed_at_open"])),
            day_chain=tuple(json.loads(row["day_chain"])),
            review_role=row["review_role"],
            access_roles=tuple(json.loads(row["access_roles"])),
            accept_within_s=row["accept_within_s"],
            arrive_within_s=row["arrive_within_s"],
            renotify_gap_s=row["renotify_gap_s"],
            red_cancel_window_s=row["red_cancel_window_s"],
            rating_window_s=row["rating_window_s"],
            day_clock_s=json.loads(row["day_clock_s"]),
        ),
        cursor=EscalationCursor(
            row["responder_step"], frozenset(json.loads(row["step_no_answer"]))
        ),
        bridged_call=row["bridged_call"],
        owner_since=row["owner_since"],
        latest_press=(
            None
            if row["latest_press_device_id"] is None
            else BoxPress(
                row["latest_press_device_id"],
                _pos_out(row["latest_press_position"]),
                row["latest_press_device_time"],
            )
        ),
        kind=row["kind"],
        outcome=row["outcome"],
    )


# Every column a ticket's state is stored in, but its id; in the order of _ticket_values.
_TICKET_COLUMNS = (
    "household_code",
    "device_id",
    "village_code",
    "neighbourhood_code",
    "status",
    "category",
    "press_count",
    "escalation_level",
    "escalated",
    "owner_contact_id",
    "opened_at",
    "last_press_at",
    "last_notified_at",
    "accepted_at",
    "on_site_at",
    "resolved_at",
    "rated_at",
    "cancelled_at",
    "day_due_at",
    "rating",
    "review_flag",
    "responder_chain",
    "informed_at_open",
    "day_chain",
    "review_role",
    "access_roles",
    "accept_within_s",
    "arrive_within_s",
    "renotify_gap_s",
    "red_cancel_window_s",
    "rating_window_s",
    "day_clock_s",
    "responder_step",
    "step_no_answer",
    "bridged_call",
    "owner_since",
    "latest_press_device_id",
    "latest_press_position",
    "latest_press_device_time",
    "kind",
    "outcome",
)
_INSERT_TICKET = (
    f"INSERT INTO tickets ({', '.join(_TICKET_COLUMNS)})"  # noqa: S608 - fixed names
    f" VALUES ({', '.join('?' for _ in _TICKET_COLUMNS)})"
)
_SAVE_TICKET = (
    f"UPDATE tickets SET {', '.join(f'{c} = ?' for c in _TICKET_COLUMNS)}"  # noqa: S608
    " WHERE id = ? AND status = ?"
)


def _ticket_values(t: Ticket) -> tuple[object, ...]:
    rules = t.rules
    return (
        t.household_code,
        t.device_id,
        t.village_code,
        t.neighbourhood_code,
        t.status.value,
        t.category,
        t.press_count,
        t.escalation_level,
        int(t.escalated),
        t.owner_contact_id,
        t.opened_at,
        t.last_press_at,
        t.last_notified_at,
        t.accepted_at,
        t.on_site_at,
        t.resolved_at,
        t.rated_at,
        t.cancelled_at,
        t.day_due_at,
        t.rating,
        int(t.review_flag),
        json.dumps(rules.responder_chain),
        json.dumps(rules.informed_at_open),
        json.dumps(rules.day_chain),
        rules.review_role,
        json.dumps(rules.access_roles),
        rules.accept_within_s,
        rules.arrive_within_s,
        rules.renotify_gap_s,
        rules.red_cancel_window_s,
        rules.rating_window_s,
        json.dumps(dict(rules.day_clock_s), sort_keys=True),
        t.cursor.step,
        json.dumps(sorted(t.cursor.no_answer)),
        t.bridged_call,
        t.owner_since,
        *(
            (None, None, None)
            if t.latest_press is None
            else (
                t.latest_press.device_id,
                _pos_in(t.latest_press.position),
                t.latest_press.device_time,
            )
        ),
        t.kind,
        t.outcome,
    )


def _notification(row: sqlite3.Row) -> Notification:
    return Notification(
        channel=row["channel"],
        recipient=row["recipient"],
        template=row["template"],
        params=json.loads(row["params"]),
        language=row["language"],
        contact_id=row["contact_id"],
        ticket_id=row["ticket_id"],
        priority=row["priority"],
    )


_INSERT_NOTIFICATION = (
    "INSERT INTO notifications (created_at, channel, contact_id, recipient, template, params,"
    " language, ticket_id, priority) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_FOLLOW_UP = (
    "INSERT OR IGNORE INTO notifications (created_at, channel, contact_id, recipient, template,"
    " params, language, ticket_id, priority, next_attempt_at, origin_id, origin_kind)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _notification_values(n: Notification, at: float) -> tuple[object, ...]:
    """The first nine values of _INSERT_NOTIFICATION and _INSERT_FOLLOW_UP."""
    params = json.dumps(n.params, ensure_ascii=False, sort_keys=True)
    return (
        at,
        n.channel,
        n.contact_id,
        n.recipient,
        n.template,
        params,
        n.language,
        n.ticket_id,
        n.priority,
    )


def _current_from_row(row: sqlite3.Row) -> DeviceRecord:
    """A device row joined with its newest event: the newer of the two seqs and contacts."""
    record = _device_from_row(row)
    high = max(x for x in (_pos_out_opt(row["e_high"]), record.last_seq, -1) if x is not None)
    record = replace(record, high_seq=None if high < 0 else high)
    seq = _pos_out_opt(row["e_seq"])
    if seq is None or (record.last_seq is not None and seq <= record.last_seq):
        return record
    return replace(
        record,
        last_seq=seq,
        last_link=row["e_link"],
        last_seen=max(row["e_at"], record.last_seen or row["e_at"]),
    )


def _shared(text: Any) -> Any:
    """One copy of a column's text that many device rows repeat (a county has 200,000 rows).

    Untyped, as a row's value is.
    """
    return None if text is None else sys.intern(text)


def _device_from_row(row: sqlite3.Row) -> DeviceRecord:
    return DeviceRecord(
        device_id=row["device_id"],
        kind=_shared(row["kind"]),
        key=row["key"],
        heartbeat_interval_s=row["heartbeat_interval_s"],
        created_at=row["created_at"],
        key_version=row["key_version"],
        household_code=row["household_code"],
        label=row["label"],
        enabled=bool(row["enabled"]),
        status=_shared(row["status"]),
        low_battery=bool(row["low_battery"]),
        tamper=bool(row["tamper"]),
        power_loss=bool(row["power_loss"]),
        firmware=_shared(row["firmware"]),
        battery_pct=row["battery_pct"],
        battery_mv=row["battery_mv"],
        rssi_dbm=row["rssi_dbm"],
        uptime_s=row["uptime_s"],
        last_seen=row["last_seen"],
        last_link=_shared(row["last_link"]),
        last_seq=_pos_out_opt(row["last_seq"]),
        downlink_seq=_pos_out(row["downlink_seq"]),
        next_key=row["next_key"],
        next_key_id=row["next_key_id"],
        counters_reset_at=row["counters_reset_at"],
        pending_heartbeat_s=row["pending_heartbeat_s"],
        pending_clock=bool(row["pending_clock"]),
    )


def _device_values(d: DeviceRecord) -> tuple[object, ...]:
    """The values of _DEVICE_COLUMNS, in order."""
    return (
        d.device_id,
        d.kind,
        d.key,
        d.heartbeat_interval_s,
        d.created_at,
        d.key_version,
        d.household_code,
        d.label,
        d.enabled,
        d.status,
        d.low_battery,
        d.firmware,
        d.battery_pct,
        d.battery_mv,
        d.rssi_dbm,
        d.uptime_s,
        d.last_seen,
        d.last_link,
        _pos_in_opt(d.last_seq),
        _pos_in(d.downlink_seq),
        d.next_key,
        d.next_key_id,
        d.counters_reset_at,
        d.pending_heartbeat_s,
        d.pending_clock,
    )


class _Writes:
    """A port's writes over one open SQLite transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        # One trip to the connection's thread (a cursor's execute, fetch and close are three,
        # and each waits for the event loop to come round while the writer lock is held).
        return list(await self._conn.execute_fetchall(sql, args))


_Fetch = Callable[[str, Sequence[Any]], Awaitable[list[sqlite3.Row]]]


class _Reads:
    """A port's reads over the store's reader connection."""

    def __init__(self, fetch: _Fetch) -> None:
        self._read = fetch

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return await self._read(sql, args)


class SqliteDeviceWrites(_Writes):
    """Device writes inside one SQLite transaction."""

    async def add(self, device: DeviceRecord) -> None:
        """Register a device; RegistryError if the id exists."""
        try:
            await self._conn.execute(_INSERT_DEVICE, _device_values(device))
        except sqlite3.IntegrityError as exc:
            raise RegistryError(f"device {device.device_id} cannot be added: {exc}") from exc

    async def insert_events(self, rows: Sequence[EventRow]) -> None:
        """Store accepted uplinks."""
        await self._conn.executemany(
            "INSERT INTO events (device_id, seq, msg_type, device_time, received_at, transport,"
            " link, raw, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.device_id,
                    _pos_in(r.seq),
                    r.msg_type,
                    r.device_time,
                    r.received_at,
                    r.transport,
                    r.link,
                    r.raw,
                    r.fields,
                )
                for r in rows
            ],
        )

    async def stored_seqs(self, device_id: str, seqs: Sequence[int]) -> set[int]:
        """Which of `seqs` are already stored for the device."""
        if not seqs:
            return set()
        marks = ", ".join("?" for _ in seqs)
        rows = await self._rows(
            f"SELECT seq FROM events WHERE device_id = ? AND seq IN ({marks})",  # noqa: S608
            [device_id, *(_pos_in(s) for s in seqs)],
        )
        return {_pos_out(row[0]) for row in rows}

    async def stored_macs(self, device_id: str, seqs: Sequence[int]) -> dict[int, bytes]:
        """The MAC (last 8 bytes of the raw frame) stored at each of `seqs` that is stored."""
        found: dict[int, bytes] = {}
        for start in range(0, len(seqs), _IN_CHUNK):
            chunk = list(seqs[start : start + _IN_CHUNK])
            marks = ", ".join("?" for _ in chunk)
            rows = await self._rows(
                f"SELECT seq, substr(raw, -8) FROM events WHERE device_id = ?"  # noqa: S608
                f" AND seq IN ({marks})",
                [device_id, *(_pos_in(s) for s in chunk)],
            )
            for row in rows:
                found[_pos_out(row[0])] = bytes(row[1])
        return found

    async def key_events_after(
        self, device_id: str, position: int, limit: int
    ) -> list[StoredKeyPress]:
        """The device's stored key events after `position` in its order, the first `limit`."""
        rows = await self._rows(
            "SELECT e.seq, json_extract(e.fields, '$.key'), e.device_time, e.received_at"
            " FROM events e JOIN devices d ON d.device_id = e.device_id"
            " WHERE e.device_id = ? AND e.seq > ? AND e.msg_type = 'KeyEvent'"
            " AND e.received_at >= coalesce(d.counters_reset_at, 0)"
            " ORDER BY e.seq LIMIT ?",
            (device_id, _pos_in(position), limit),
        )
        presses: list[StoredKeyPress] = []
        for stored, key, device_time, received_at in rows:
            seq = _pos_out(stored)
            if key not in Key.__members__:
                raise StoreCorruptError(f"device {device_id} event {seq}: no key {key!r}")
            presses.append(StoredKeyPress(seq, Key[key], int(device_time), received_at))
        return presses

    async def set_next_key(self, device_id: str, key: bytes, key_id: int) -> None:
        """Start (or restart) a key rotation to `key`, named `key_id` in frame headers."""
        await self._conn.execute(
            "UPDATE devices SET next_key = ?, next_key_id = ? WHERE device_id = ?",
            (key, key_id, device_id),
        )

    async def promote_key(self, device_id: str, key_id: int) -> None:
        """The device used its next key (`key_id`): it becomes the key; the old one is gone."""
        await self._conn.execute(
            "UPDATE devices SET key = next_key, key_version = next_key_id, next_key = NULL,"
            " next_key_id = NULL WHERE device_id = ? AND next_key_id = ?",
            (device_id, key_id),
        )

    async def reset_counters(self, device_id: str, at: float) -> None:
        """Forget the device's order: its next frame sets it again."""
        await self._conn.execute(
            "UPDATE devices SET last_seq = NULL, counters_reset_at = ? WHERE device_id = ?",
            (at, device_id),
        )

    async def set_pending_config(
        self, device_id: str, heartbeat_s: int | None, clock: bool
    ) -> None:
        """What `bidao device configure` asked for (None / False: nothing of that kind)."""
        await self._conn.execute(
            "UPDATE devices SET pending_heartbeat_s = ?, pending_clock = ? WHERE device_id = ?",
            (heartbeat_s, int(clock), device_id),
        )

    async def config_done(self, device_id: str, *, heartbeat: bool, clock: bool) -> None:
        """The box confirmed the pending interval (heartbeat) and/or clock."""
        await self._conn.execute(
            "UPDATE devices SET"
            " pending_heartbeat_s = CASE WHEN ? THEN NULL ELSE pending_heartbeat_s END,"
            " pending_clock = CASE WHEN ? THEN 0 ELSE pending_clock END WHERE device_id = ?",
            (int(heartbeat), int(clock), device_id),
        )

    async def mark_seen(self, rows: Sequence[DeviceSeen]) -> None:
        """Update last contact, link and sequence numbers."""
        await self._conn.executemany(
            "UPDATE devices SET last_seen = ?, last_link = ?,"
            # No order yet: the stored value of position 0, the lowest (-2**63, which is not
            # an SQLite integer literal).
            " last_seq = max(coalesce(last_seq, -9223372036854775807 - 1), ?),"
            " downlink_seq = max(downlink_seq, ?) WHERE device_id = ?",
            [
                (
                    r.last_seen,
                    r.last_link,
                    _pos_in(r.last_seq),
                    _pos_in(r.downlink_seq),
                    r.device_id,
                )
                for r in rows
            ],
        )

    async def set_downlink_seq(self, device_id: str, seq: int) -> None:
        """Persist the newest downlink sequence number used for the device."""
        await self._conn.execute(
            "UPDATE devices SET downlink_seq = max(downlink_seq, ?) WHERE device_id = ?",
            (_pos_in(seq), device_id),
        )

    async def update_telemetry(self, rows: Sequence[Telemetry]) -> None:
        """Update battery, signal, firmware, uptime and reporting interval."""
        await self._conn.executemany(
            "UPDATE devices SET firmware = ?, battery_pct = ?, battery_mv = ?, rssi_dbm = ?,"
            " uptime_s = ?, heartbeat_interval_s = ? WHERE device_id = ?",
            [
                (
                    r.firmware,
                    r.battery_pct,
                    r.battery_mv,
                    r.rssi_dbm,
                    r.uptime_s,
                    r.heartbeat_interval_s,
                    r.device_id,
                )
                for r in rows
            ],
        )

    async def apply_transitions(self, rows: Sequence[Transition]) -> None:
        """Record status changes and set the devices' current status flags."""
        await self._conn.executemany(
            "INSERT INTO device_transitions (device_id, at, kind, detail) VALUES (?, ?, ?, ?)",
            [(r.device_id, r.at, r.kind, r.detail) for r in rows],
        )
        for row in rows:
            arg: object
            if row.kind in ("online", "offline"):
                sql, arg = "UPDATE devices SET status = ? WHERE device_id = ?", row.kind
            else:
                column = _FLAG_COLUMNS[row.kind]
                sql = f"UPDATE devices SET {column} = ? WHERE device_id = ?"  # noqa: S608
                arg = int(row.kind == column)
            await self._conn.execute(sql, (arg, row.device_id))

    async def get(self, device_id: str) -> DeviceRecord | None:
        """One device as of this transaction, or None."""
        rows = await self._rows("SELECT * FROM devices WHERE device_id = ?", (device_id,))
        return _device_from_row(rows[0]) if rows else None

    async def set_household(self, device_id: str, household_code: str | None) -> None:
        """Attach the device to a household, or to none."""
        await self._conn.execute(
            "UPDATE devices SET household_code = ? WHERE device_id = ?", (household_code, device_id)
        )

    async def set_enabled(self, device_id: str, enabled: bool) -> None:
        """Enable the device, or retire it (its frames are refused; its history stays)."""
        await self._conn.execute(
            "UPDATE devices SET enabled = ? WHERE device_id = ?", (int(enabled), device_id)
        )

    async def add_history(self, entry: HistoryEntry) -> int:
        """Append one change to a device's registration; returns its id."""
        cursor = await self._conn.execute(
            "INSERT INTO device_history (device_id, at, action, from_household, to_household,"
            " unit_code, other_device, actor, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.device_id,
                entry.at,
                entry.action,
                entry.from_household,
                entry.to_household,
                entry.unit_code,
                entry.other_device,
                entry.actor,
                entry.note,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def installed_unit(self, device_id: str) -> str | None:
        """The grid unit the device was last known to be in, from its history, or None."""
        rows = await self._rows(
            "SELECT coalesce(h.unit_code, (SELECT neighbourhood_code FROM households"
            " WHERE code = coalesce(h.to_household, h.from_household))) AS unit"
            " FROM device_history h WHERE h.device_id = ? ORDER BY h.id DESC",
            (device_id,),
        )
        return next((r["unit"] for r in rows if r["unit"] is not None), None)

    async def last_heard(self, device_id: str) -> float | None:
        """When the device's newest frame was received (exact, from its events), or None."""
        rows = await self._rows(
            "SELECT max(received_at) FROM events WHERE device_id = ?", (device_id,)
        )
        value = rows[0][0]
        return None if value is None else float(value)

    async def raise_alarm(
        self, kind: AlarmKind, device_id: str | None, detail: str, at: float
    ) -> OperatorAlarm:
        """Open an alarm, or count a repeat on the open one of the same kind and device."""
        rows = await self._rows(
            "SELECT * FROM operator_alarms WHERE kind = ? AND device_id IS ?"
            " AND cleared_at IS NULL",
            (kind, device_id),
        )
        if rows:
            await self._conn.execute(
                "UPDATE operator_alarms SET count = count + 1, last_at = max(last_at, ?),"
                " detail = ? WHERE id = ?",
                (at, detail, rows[0]["id"]),
            )
            alarm_id = int(rows[0]["id"])
        else:
            cursor = await self._conn.execute(
                "INSERT INTO operator_alarms (kind, device_id, detail, at, last_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (kind, device_id, detail, at, at),
            )
            assert cursor.lastrowid is not None
            alarm_id = cursor.lastrowid
        found = await self._rows("SELECT * FROM operator_alarms WHERE id = ?", (alarm_id,))
        return _alarm(found[0])

    async def alarm_notified(self, alarm_id: int, at: float) -> None:
        """Note that people were sent a message about the alarm at `at`."""
        await self._conn.execute(
            "UPDATE operator_alarms SET notified_at = ? WHERE id = ?", (at, alarm_id)
        )

    async def clear_alarm(self, alarm_id: int, at: float, by: str) -> OperatorAlarm | None:
        """Clear an open alarm; the alarm as cleared, or None if there is no open one."""
        await self._conn.execute(
            "UPDATE operator_alarms SET cleared_at = ?, cleared_by = ?"
            " WHERE id = ? AND cleared_at IS NULL",
            (at, by, alarm_id),
        )
        rows = await self._rows(
            "SELECT * FROM operator_alarms WHERE id = ? AND cleared_at = ? AND cleared_by = ?",
            (alarm_id, at, by),
        )
        return _alarm(rows[0]) if rows else None

    async def offline_notice_sent(self, notice: OfflineNotice) -> None:
        """Remember that the device's people were told it is offline."""
        await self._conn.execute(
            "INSERT OR REPLACE INTO device_offline_notices (device_id, last_heard, notified_at)"
            " VALUES (?, ?, ?)",
            (notice.device_id, notice.last_heard, notice.notified_at),
        )

    async def take_offline_notice(self, device_id: str) -> OfflineNotice | None:
        """The notice of the device's offline spell, removed; None if none was sent."""
        rows = await self._rows(
            "DELETE FROM device_offline_notices WHERE device_id = ?"
            " RETURNING device_id, last_heard, notified_at",
            (device_id,),
        )
        return OfflineNotice(rows[0][0], rows[0][1], rows[0][2]) if rows else None

    async def health_alarm(self, device_id: str, kind: HealthKind) -> HealthAlarm | None:
        """The device's open spell of the condition (not cleared), or None."""
        rows = await self._rows(
            "SELECT * FROM device_health_alarms WHERE device_id = ? AND kind = ?"
            " AND cleared_at IS NULL",
            (device_id, kind),
        )
        return _health(rows[0]) if rows else None

    async def open_health_alarms(
        self, device_ids: Collection[str]
    ) -> dict[tuple[str, HealthKind], HealthAlarm]:
        """The open spells of these devices, by (device, condition), in one read."""
        ids = list(device_ids)
        found: dict[tuple[str, HealthKind], HealthAlarm] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = await self._rows(
                "SELECT * FROM device_health_alarms"  # noqa: S608 (placeholders only)
                f" WHERE cleared_at IS NULL AND device_id IN ({marks})",
                chunk,
            )
            for alarm in map(_health, rows):
                found[alarm.device_id, alarm.kind] = alarm
        return found

    async def save_health_alarm(self, alarm: HealthAlarm) -> HealthAlarm:
        """Insert a new spell (`id` None) or update one; the spell as stored, with its id."""
        values = (
            alarm.since,
            alarm.told_at,
            ",".join(str(t) for t in alarm.told),
            alarm.ok_since,
            alarm.cleared_at,
        )
        if alarm.id is not None:
            await self._conn.execute(
                "UPDATE device_health_alarms SET since = ?, told_at = ?, told = ?, ok_since = ?,"
                " cleared_at = ? WHERE id = ?",
                (*values, alarm.id),
            )
            return alarm
        cursor = await self._conn.execute(
            "INSERT INTO device_health_alarms (device_id, kind, since, told_at, told, ok_since,"
            " cleared_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (alarm.device_id, alarm.kind, *values),
        )
        assert cursor.lastrowid is not None
        return replace(alarm, id=cursor.lastrowid)


_FLAG_COLUMNS: dict[str, str] = {
    "low_battery": "low_battery",
    "battery_ok": "low_battery",
    "tamper": "tamper",
    "tamper_ok": "tamper",
    "power_loss": "power_loss",
    "power_ok": "power_loss",
}
"""The device column each health transition sets (to 1 when it is the column's name)."""


def _health(row: sqlite3.Row) -> HealthAlarm:
    told = row["told"]
    return HealthAlarm(
        device_id=row["device_id"],
        kind=row["kind"],
        since=row["since"],
        told_at=row["told_at"],
        told=tuple(int(t) for t in told.split(",")) if told else (),
        ok_since=row["ok_since"],
        cleared_at=row["cleared_at"],
        id=row["id"],
    )


def _alarm(row: sqlite3.Row) -> OperatorAlarm:
    return OperatorAlarm(
        id=row["id"],
        kind=row["kind"],
        device_id=row["device_id"],
        detail=row["detail"],
        at=row["at"],
        last_at=row["last_at"],
        count=row["count"],
        notified_at=row["notified_at"],
        cleared_at=row["cleared_at"],
        cleared_by=row["cleared_by"],
    )


def _history(row: sqlite3.Row) -> HistoryEntry:
    return HistoryEntry(
        device_id=row["device_id"],
        at=row["at"],
        action=row["action"],
        actor=row["actor"],
        from_household=row["from_household"],
        to_household=row["to_household"],
        unit_code=row["unit_code"],
        other_device=row["other_device"],
        note=row["note"],
        id=row["id"],
    )


class SqliteDeadlineWrites(_Writes):
    """Deadline writes inside one SQLite transaction."""

    async def set(self, rows: Sequence[Deadline]) -> None:
        """Create or move deadlines."""
        await self._conn.executemany(
            "INSERT INTO deadlines (kind, subject, due_at) VALUES (?, ?, ?)"
            " ON CONFLICT (kind, subject) DO UPDATE SET due_at = excluded.due_at",
            [(r.kind, r.subject, r.due_at) for r in rows],
        )

    async def clear_kind(self, kind: str, limit: int) -> int:
        """Remove up to `limit` deadlines of `kind`; returns how many were removed."""
        cursor = await self._conn.execute(
            "DELETE FROM deadlines WHERE rowid IN"
            " (SELECT rowid FROM deadlines WHERE kind = ? LIMIT ?)",
            (kind, limit),
        )
        return max(0, cursor.rowcount)

    async def clear(self, keys: Sequence[tuple[str, str]]) -> None:
        """Remove deadlines by (kind, subject)."""
        await self._conn.executemany(
            "DELETE FROM deadlines WHERE kind = ? AND subject = ?", list(keys)
        )

    async def due(self, now: float, limit: int) -> list[Deadline]:
        """Deadlines due at or before `now`, earliest first."""
        rows = await self._rows(
            "SELECT kind, subject, due_at FROM deadlines WHERE due_at <= ? ORDER BY due_at LIMIT ?",
            (now, limit),
        )
        return [Deadline(row[0], row[1], row[2]) for row in rows]

    async def record_failure(self, deadline: Deadline, reason: str, at: float) -> int:
        """Count one more failed attempt at the deadline; returns its attempts so far."""
        rows = await self._rows(
            "INSERT INTO deadline_failures (kind, subject, due_at, attempts, reason, failed_at,"
            " status) VALUES (?, ?, ?, 1, ?, ?, 'retrying')"
            " ON CONFLICT (kind, subject) WHERE status = 'retrying' DO UPDATE SET"
            " attempts = attempts + 1, reason = excluded.reason, failed_at = excluded.failed_at"
            " RETURNING attempts",
            (deadline.kind, deadline.subject, deadline.due_at, reason, at),
        )
        return int(rows[0][0])

    async def quarantine(self, deadline: Deadline) -> None:
        """Mark the deadline's failure final and remove the deadline."""
        key = (deadline.kind, deadline.subject)
        await self._conn.execute(
            "UPDATE deadline_failures SET status = 'quarantined'"
            " WHERE status = 'retrying' AND kind = ? AND subject = ?",
            key,
        )
        await self._conn.execute("DELETE FROM deadlines WHERE kind = ? AND subject = ?", key)


class SqliteGridWrites(_Writes):
    """Grid writes inside one SQLite transaction."""

    async def insert(self, rows: Sequence[GridRow]) -> None:
        """Insert new grid rows, in order; ConflictError if one conflicts with a stored row."""
        for _, group in itertools.groupby(rows, type):
            writes = [_grid_insert(row) for row in group]
            table, sql, _ = writes[0]
            try:
                await self._conn.executemany(sql, [values for _, _, values in writes])
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"{table}: a row conflicts with a stored one: {exc}") from exc

    async def update(self, rows: Sequence[GridRow]) -> None:
        """Set what an import may change of stored grid rows, found by code or id."""
        for _, group in itertools.groupby(rows, type):
            writes = [_grid_update(row) for row in group]
            table, sql, _ = writes[0]
            try:
                await self._conn.executemany(sql, [values for _, _, values in writes])
            except sqlite3.IntegrityError as exc:
                raise ConflictError(
                    f"{table}: an update conflicts with stored rows: {exc}"
                ) from exc

    async def household_info(self, household_code: str) -> HouseholdInfo | None:
        """The household, its grid units up to the county, and its first resident."""
        rows = await self._rows(
            "SELECT code, neighbourhood_code, address FROM households WHERE code = ?",
            (household_code,),
        )
        if not rows:
            return None
        chain = await self._rows(
            "WITH RECURSIVE up(code, level, name, parent_code, depth) AS ("
            " SELECT code, level, name, parent_code, 0 FROM grid_units WHERE code = ?"
            " UNION ALL SELECT g.code, g.level, g.name, g.parent_code, up.depth + 1"
            " FROM grid_units g JOIN up ON g.code = up.parent_code WHERE up.depth < 10)"
            " SELECT code, level, name FROM up ORDER BY depth",
            (rows[0]["neighbourhood_code"],),
        )
        residents = await self._rows(
            "SELECT name, phone, consent, key_safe_code, health_notes FROM residents"
            " WHERE household_code = ? ORDER BY id LIMIT 1",
            (household_code,),
        )
        resident = residents[0] if residents else None
        return HouseholdInfo(
            code=household_code,
            address=rows[0]["address"],
            unit_chain=tuple(r["code"] for r in chain),
            unit_names={r["code"]: r["name"] for r in chain},
            unit_levels={r["code"]: r["level"] for r in chain},
            resident_name=resident["name"] if resident else household_code,
            resident_phone=resident["phone"] if resident else None,
            consent=bool(resident["consent"]) if resident else False,
            key_safe_code=resident["key_safe_code"] if resident else None,
            health_notes=resident["health_notes"] if resident else None,
        )

    async def unit_contacts(self, unit_chain: Sequence[str], role: Role) -> list[Contact]:
        """Contacts with `role` at the nearest unit of the chain that has any."""
        return (await self.unit_contacts_by_role(unit_chain, (role,)))[role]

    async def unit_contacts_by_role(
        self, unit_chain: Sequence[str], roles: Collection[Role]
    ) -> dict[Role, list[Contact]]:
        """For each role, `unit_contacts` of it, in one read.

        A call for help's transaction reads every role of its chain: one statement, not one
        per unit and role.
        """
        found: dict[Role, list[Contact]] = {role: [] for role in roles}
        if not unit_chain or not roles:
            return found
        units, wanted = list(dict.fromkeys(unit_chain)), list(found)
        unit_marks, role_marks = ", ".join("?" for _ in units), ", ".join("?" for _ in wanted)
        rows = await self._rows(
            f"SELECT * FROM contacts WHERE unit_code IN ({unit_marks})"  # noqa: S608 - marks
            f" AND role IN ({role_marks}) ORDER BY id",
            (*units, *wanted),
        )
        nearest = {unit: depth for depth, unit in enumerate(units)}
        at: dict[Role, int] = {}
        for row in rows:
            role, depth = row["role"], nearest[row["unit_code"]]
            if depth < at.get(role, len(units)):
                at[role], found[role] = depth, []
            if depth == at[role]:
                found[role].append(_contact(row))
        return found

    async def household_contacts(self, household_code: str) -> list[Contact]:
        """The contacts who belong to the household (its family), by id."""
        rows = await self._rows(
            "SELECT * FROM contacts WHERE household_code = ? ORDER BY id", (household_code,)
        )
        return [_contact(r) for r in rows]

    async def contacts_by_id(self, ids: Sequence[int]) -> list[Contact]:
        """The contacts with these ids."""
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        rows = await self._rows(
            f"SELECT * FROM contacts WHERE id IN ({marks}) ORDER BY id",  # noqa: S608
            list(ids),
        )
        return [_contact(r) for r in rows]

    async def set_bad_number(self, contact_id: int) -> None:
        """Flag a contact's number for an administrator."""
        await self._conn.execute("UPDATE contacts SET bad_number = 1 WHERE id = ?", (contact_id,))

    async def lives_alone(self, household_code: str) -> bool:
        """Whether a resident of the household is flagged as living alone."""
        rows = await self._rows(
            "SELECT 1 FROM residents WHERE household_code = ? AND lives_alone = 1 LIMIT 1",
            (household_code,),
        )
        return bool(rows)


class SqliteTicketWrites(_Writes):
    """Ticket writes inside one SQLite transaction."""

    async def set_work_group_cursor(self, event_id: int) -> None:
        """The work groups' poster has handled every audit row up to `event_id`."""
        await self._conn.execute(
            "INSERT INTO work_group_cursor (id, event_id) VALUES (1, ?)"
            " ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id",
            (event_id,),
        )

    async def live(self, household_code: str) -> Ticket | None:
        """The household's open, accepted or on-site call (not an alarm of the water watch)."""
        return await self.live_of_kind(household_code, "call")

    async def live_of_kind(self, household_code: str, kind: TicketKind) -> Ticket | None:
        """The household's open, accepted or on-site ticket of `kind`."""
        rows = await self._rows(
            "SELECT * FROM tickets WHERE household_code = ? AND kind = ?"
            " AND status IN ('open', 'accepted', 'on_site') ORDER BY id DESC LIMIT 1",
            (household_code, kind),
        )
        return _ticket(rows[0]) if rows else None

    async def latest_unrated(self, household_code: str) -> Ticket | None:
        """The household's most recently resolved ticket that has not been rated."""
        rows = await self._rows(
            "SELECT * FROM tickets WHERE household_code = ? AND status = 'resolved'"
            " AND kind = 'call' ORDER BY resolved_at DESC LIMIT 1",
            (household_code,),
        )
        return _ticket(rows[0]) if rows else None

    async def get(self, ticket_id: int) -> Ticket | None:
        """One ticket."""
        rows = await self._rows("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        return _ticket(rows[0]) if rows else None

    async def insert(self, ticket: Ticket) -> int:
        """Open a ticket (its id is ignored), rules and cursor included; returns its id."""
        cursor = await self._conn.execute(_INSERT_TICKET, _ticket_values(ticket))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def save(self, ticket: Ticket, was: TicketStatus) -> bool:
        """Store the ticket's new state; False if its stored status is no longer `was`."""
        cursor = await self._conn.execute(
            _SAVE_TICKET, (*_ticket_values(ticket), ticket.id, was.value)
        )
        return cursor.rowcount == 1

    async def add_events(self, rows: Sequence[TicketEvent]) -> None:
        """Append audit rows."""
        await self._conn.executemany(
            "INSERT INTO ticket_events (ticket_id, at, kind, contact_id, channel, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [(r.ticket_id, r.at, r.kind, r.contact_id, r.channel, r.detail) for r in rows],
        )

    async def add_feedback(self, feedback: Feedback) -> None:
        """Record a thumbs press."""
        await self._conn.execute(
            "INSERT INTO feedback (household_code, device_id, at, rating, ticket_id)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                feedback.household_code,
                feedback.device_id,
                feedback.at,
                feedback.rating,
                feedback.ticket_id,
            ),
        )


class SqliteOutboxWrites(_Writes):
    """Outbox writes inside one SQLite transaction."""

    async def enqueue(self, notifications: Sequence[Notification], at: float) -> None:
        """Write notifications into the outbox."""
        await self._conn.executemany(
            _INSERT_NOTIFICATION,
            [_notification_values(n, at) for n in notifications],
        )

    async def enqueue_follow_up(
        self, origin_id: int, kind: FollowUpKind, notification: Notification, due_at: float
    ) -> bool:
        """Write the one fallback or retry of a notification; False if it exists already."""
        cursor = await self._conn.execute(
            _INSERT_FOLLOW_UP,
            (*_notification_values(notification, due_at), due_at, origin_id, kind),
        )
        return cursor.rowcount == 1

    async def due(
        self,
        now: float,
        limit: int,
        in_doubt: bool,
        skip_recipients: Sequence[str] = (),
        urgent: bool | None = None,
    ) -> list[OutboxRow]:
        """Pending notifications due at `now` (in doubt or not), urgent first, oldest first.

        Those to `skip_recipients` (numbers with a send in flight) are left out; `urgent`
        True keeps only urgent ones (priority URGENT and above), False only the others.
        """
        skip, marks = _skipping(skip_recipients)
        rows = await self._rows(
            "SELECT * FROM notifications WHERE status = 'pending'"  # noqa: S608 - fixed marks
            f" AND next_attempt_at <= ? AND in_doubt = ?{skip}{_urgency(urgent)}"
            " ORDER BY priority DESC, id LIMIT ?",
            (now, int(in_doubt), *marks, limit),
        )
        return [
            OutboxRow(r["id"], _notification(r), r["attempts"], r["claimed_at"], r["origin_kind"])
            for r in rows
        ]

    async def merged_members(self, leader_ids: Sequence[int]) -> dict[int, list[Notification]]:
        """The notifications merged into each leader, oldest first."""
        out: dict[int, list[Notification]] = {i: [] for i in leader_ids}
        if not leader_ids:
            return out
        marks = ", ".join("?" for _ in leader_ids)
        rows = await self._rows(
            f"SELECT * FROM notifications WHERE merged_into IN ({marks}) ORDER BY id",  # noqa: S608
            list(leader_ids),
        )
        for row in rows:
            out[row["merged_into"]].append(_notification(row))
        return out

    async def recent_sends(self, recipient: str, channel: str, since: float) -> list[float]:
        """When messages to `recipient` on `channel` were handed over since `since`."""
        rows = await self._rows(
            "SELECT claimed_at FROM notifications WHERE recipient = ? AND channel = ?"
            " AND status IN ('sending', 'sent', 'delivered') AND claimed_at >= ?"
            " ORDER BY claimed_at",
            (recipient, channel, since),
        )
        return [float(r[0]) for r in rows]

    async def recent_texts(
        self, recipient: str, channel: str, since: float
    ) -> list[tuple[float, str]]:
        """(when, text) of messages to `recipient` on `channel` handed over since `since`."""
        rows = await self._rows(
            "SELECT claimed_at, sent_text FROM notifications WHERE recipient = ? AND channel = ?"
            " AND status IN ('sending', 'sent', 'delivered') AND claimed_at >= ?"
            " AND sent_text IS NOT NULL ORDER BY claimed_at",
            (recipient, channel, since),
        )
        return [(float(r[0]), str(r[1])) for r in rows]

    async def notified_contacts(self, ticket_id: int) -> list[int]:
        """Every contact that has been sent something about the ticket."""
        rows = await self._rows(
            "SELECT DISTINCT contact_id FROM notifications"
            " WHERE ticket_id = ? AND contact_id IS NOT NULL ORDER BY contact_id",
            (ticket_id,),
        )
        return [int(r[0]) for r in rows]

    async def mark_sending(self, ids: Sequence[int], at: float) -> None:
        """Claim notifications for sending: one more attempt each."""
        await self._conn.executemany(
            "UPDATE notifications SET status = 'sending', attempts = attempts + 1,"
            " claimed_at = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
            [(at, at, i) for i in ids],
        )

    async def defer(self, ids: Sequence[int], until: float) -> None:
        """Hold pending notifications back until `until` (throttling); no attempt is used."""
        await self._conn.executemany(
            "UPDATE notifications SET next_attempt_at = ? WHERE id = ? AND status = 'pending'",
            [(until, i) for i in ids],
        )

    async def merge(self, leader_id: int, ids: Sequence[int], at: float) -> None:
        """Fold pending notifications into `leader_id`, which is sent for all of them."""
        await self._conn.executemany(
            "UPDATE notifications SET status = 'merged', merged_into = ?, updated_at = ?"
            " WHERE id = ? AND status = 'pending'",
            [(leader_id, at, i) for i in ids],
        )

    async def sent(self, notification_id: int, sent: SentNotification, at: float) -> None:
        """The provider took it (or, for delivery "delivered", it has arrived)."""
        await self._conn.execute(
            "UPDATE notifications SET status = ?, provider = ?, provider_id = ?,"
            " delivery = coalesce(delivery, ?), updated_at = ?, sent_at = ?,"
            " sent_text = coalesce(?, sent_text), last_error = NULL, in_doubt = 0"
            " WHERE id = ? AND status IN ('pending', 'sending')",
            (
                status_for_delivery(sent.delivery),
                sent.provider,
                sent.provider_id,
                sent.delivery,
                at,
                at,
                sent.text,
                notification_id,
            ),
        )

    async def retry(
        self, notification_id: int, next_attempt_at: float, error: str, at: float, in_doubt: bool
    ) -> None:
        """Sending failed for now; try again at `next_attempt_at` (after a lookup, if in doubt)."""
        await self._conn.execute(
            "UPDATE notifications SET status = 'pending', next_attempt_at = ?, last_error = ?,"
            " updated_at = ?, in_doubt = ? WHERE id = ? AND status = 'sending'",
            (next_attempt_at, error, at, int(in_doubt), notification_id),
        )

    async def lookup_failed(
        self, notification_id: int, next_attempt_at: float, error: str, at: float
    ) -> None:
        """An in-doubt lookup failed: one more attempt used; look again at `next_attempt_at`."""
        await self._conn.execute(
            "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = ?,"
            " last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
            (next_attempt_at, error, at, notification_id),
        )

    async def quarantine(self, notification_id: int, error: str, at: float, attempts: int) -> None:
        """Give up on a notification after `attempts`: failed, with its reason and time."""
        await self._conn.execute(
            "UPDATE notifications SET status = 'failed', last_error = ?, updated_at = ?,"
            " quarantined_at = ?, in_doubt = 0, attempts = max(attempts, ?)"
            " WHERE id = ? AND status IN ('pending', 'sending')",
            (error, at, at, attempts, notification_id),
        )

    async def resolved_doubt(self, notification_id: int, next_attempt_at: float) -> None:
        """An in-doubt notification was not taken by the provider: send it normally when due."""
        await self._conn.execute(
            "UPDATE notifications SET in_doubt = 0, next_attempt_at = ?"
            " WHERE id = ? AND status = 'pending'",
            (next_attempt_at, notification_id),
        )

    async def voice_twin_exists(self, notification_id: int) -> bool:
        """Whether the same message went to the same person by voice already (no fallback)."""
        rows = await self._rows(
            "SELECT 1 FROM notifications a JOIN notifications b ON b.channel = 'voice'"
            " AND b.recipient = a.recipient AND b.template = a.template AND b.params = a.params"
            " AND b.ticket_id IS a.ticket_id AND b.id <> a.id WHERE a.id = ? LIMIT 1",
            (notification_id,),
        )
        return bool(rows)

    async def known_provider_ids(self, provider_ids: Sequence[str]) -> set[str]:
        """Which of these provider ids belong to notifications already."""
        if not provider_ids:
            return set()
        marks = ", ".join("?" for _ in provider_ids)
        rows = await self._rows(
            f"SELECT provider_id FROM notifications WHERE provider_id IN ({marks})",  # noqa: S608
            list(provider_ids),
        )
        return {str(r[0]) for r in rows}

    async def keypress(self, notification_id: int, digit: str, at: float) -> bool:
        """Record the first key pressed on a call; False if there is no such notification."""
        cursor = await self._conn.execute(
            "UPDATE notifications SET keypress = coalesce(keypress, ?), updated_at = ?"
            " WHERE id = ?",
            (digit, at, notification_id),
        )
        return cursor.rowcount == 1

    async def failed(self, notification_id: int, error: str, at: float, bad_number: bool) -> None:
        """Sending failed for good; a bad number flags the contact for an administrator."""
        await self._conn.execute(
            "UPDATE notifications SET status = 'failed', last_error = ?, updated_at = ?"
            " WHERE id = ?",
            (error, at, notification_id),
        )
        if bad_number:
            await self._conn.execute(
                "UPDATE contacts SET bad_number = 1 WHERE id ="
                " (SELECT contact_id FROM notifications WHERE id = ?)",
                (notification_id,),
            )

    async def withdraw(self, notification_ids: Sequence[int], reason: str, at: float) -> None:
        """Messages due but no longer needed (a call again for a ticket someone took).

        Never sent: failed, with delivery "canceled" and the reason.
        """
        await self._conn.executemany(
            "UPDATE notifications SET status = 'failed', delivery = 'canceled', last_error = ?,"
            " updated_at = ? WHERE id = ? AND status IN ('pending', 'sending')",
            [(reason, at, i) for i in notification_ids],
        )

    async def delivery(
        self, notification_id: int, provider_id: str, delivery: str, at: float
    ) -> OutboxRecord | None:
        """Apply a provider status callback; never moves backwards; None if it changed nothing."""
        rows = await self._rows("SELECT * FROM notifications WHERE id = ?", (notification_id,))
        if not rows or (rows[0]["provider_id"] not in (None, provider_id)):
            return None
        row = rows[0]
        if not delivery_advances(row["delivery"], delivery):
            return None
        status = status_for_delivery(delivery)
        await self._conn.execute(
            "UPDATE notifications SET delivery = ?, status = ?, provider_id = ?, updated_at = ?,"
            " sent_at = coalesce(sent_at, ?), in_doubt = 0 WHERE id = ?",
            (delivery, status, provider_id, at, at, notification_id),
        )
        merged = await self._rows(
            "SELECT 1 FROM notifications WHERE merged_into = ? LIMIT 1", (notification_id,)
        )
        return OutboxRecord(
            id=notification_id,
            notification=_notification(row),
            status=status,
            delivery=delivery,
            keypress=row["keypress"],
            origin_kind=row["origin_kind"],
            merged=bool(merged),
        )

    async def release_in_doubt(self, at: float) -> int:
        """Rows left "sending" by a crash become pending and in doubt, due at `at`."""
        cursor = await self._conn.execute(
            "UPDATE notifications SET status = 'pending', in_doubt = 1, next_attempt_at = ?,"
            " last_error = 'in doubt after a restart' WHERE status = 'sending'",
            (at,),
        )
        return cursor.rowcount


class SqliteIndicationWrites(_Writes):
    """Indication writes inside one SQLite transaction."""

    async def add(self, rows: Sequence[tuple[str, Indication]], at: float) -> None:
        """Queue (device_id, indication) pairs; each supersedes its ticket's pending one."""
        for device_id, indication in rows:
            await self._conn.execute(
                "UPDATE indications SET status = 'superseded', updated_at = ?"
                " WHERE device_id = ? AND ticket_ref = ? AND status = 'pending'",
                (at, device_id, indication.ticket_ref),
            )
            await self._conn.execute(
                "INSERT INTO indications (device_id, ticket_ref, kind, led, voice_prompt,"
                " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 0)",
                (
                    device_id,
                    indication.ticket_ref,
                    int(indication.kind),
                    int(indication.led),
                    indication.voice_prompt,
                    at,
                ),
            )

    async def due(self, now: float, limit: int, heard: Sequence[str]) -> list[PendingIndication]:
        """Pending indications due by `now`, or of a device in `heard`, oldest first."""
        marks = ", ".join("?" for _ in heard)
        heard_clause = f" OR device_id IN ({marks})" if heard else ""
        rows = await self._rows(
            "SELECT * FROM indications WHERE status = 'pending'"  # noqa: S608 - only placeholders
            f" AND (next_attempt_at <= ?{heard_clause}) ORDER BY id LIMIT ?",
            (now, *heard, limit),
        )
        return [
            PendingIndication(r["id"], r["device_id"], _indication(r), r["attempts"]) for r in rows
        ]

    async def delivered(self, ids: Sequence[int], at: float) -> None:
        """Mark indications as handed to the box's link.

        One that a newer indication replaced while it was being handed over was delivered
        all the same (the box heard it): it is marked so, not left as superseded.
        """
        await self._conn.executemany(
            "UPDATE indications SET status = 'delivered', attempts = attempts + 1,"
            " updated_at = ? WHERE id = ? AND status IN ('pending', 'superseded')",
            [(at, i) for i in ids],
        )

    async def retry(self, retries: Sequence[IndicationRetry], at: float) -> None:
        """Count a failed attempt on each and set when it is tried again."""
        await self._conn.executemany(
            "UPDATE indications SET attempts = attempts + 1, next_attempt_at = ?,"
            " last_error = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
            [(r.next_attempt_at, r.error, at, r.id) for r in retries],
        )

    async def resend(self, ids: Sequence[int], at: float) -> int:
        """Delivered indications the box refused (stale) become pending again, due at `at`.

        One that a later indication for the same box and ticket replaced stays as it is;
        returns how many were queued again.
        """
        queued = 0
        for row_id in ids:
            cursor = await self._conn.execute(
                "UPDATE indications SET status = 'pending', next_attempt_at = ?,"
                " last_error = 'refused by the box as stale', updated_at = ?"
                " WHERE id = ? AND status = 'delivered' AND NOT EXISTS ("
                " SELECT 1 FROM indications AS later WHERE later.device_id = indications.device_id"
                " AND later.ticket_ref = indications.ticket_ref AND later.id > indications.id)",
                (at, at, row_id),
            )
            queued += cursor.rowcount
        return queued


class SqliteDeviceReads(_Reads):
    """Committed devices rows, read on the reader connection."""

    async def all(self) -> list[DeviceRecord]:
        """Every registered device."""
        return [_device_from_row(r) for r in await self._fetch("SELECT * FROM devices")]

    async def get(self, device_id: str) -> DeviceRecord | None:
        """One device, or None."""
        rows = await self._fetch("SELECT * FROM devices WHERE device_id = ?", (device_id,))
        return _device_from_row(rows[0]) if rows else None

    async def count_events(self, device_id: str | None = None) -> int:
        """Stored events, for one device or all."""
        if device_id is None:
            rows = await self._fetch("SELECT count(*) FROM events")
        else:
            rows = await self._fetch(
                "SELECT count(*) FROM events WHERE device_id = ?", (device_id,)
            )
        return int(rows[0][0])

    async def event_seqs(self) -> list[tuple[str, int]]:
        """(device_id, seq) of every stored event, in storage order."""
        rows = await self._fetch("SELECT device_id, seq FROM events ORDER BY id")
        return [(r[0], _pos_out(r[1])) for r in rows]

    async def transitions(self, device_id: str | None = None) -> list[Transition]:
        """Recorded status changes, oldest first."""
        sql = "SELECT device_id, at, kind, detail FROM device_transitions"
        args: tuple[str, ...] = ()
        if device_id is not None:
            sql, args = sql + " WHERE device_id = ?", (device_id,)
        rows = await self._fetch(sql + " ORDER BY id", args)
        return [Transition(r[0], r[1], r[2], r[3]) for r in rows]

    async def silent_boxes(self, since: float) -> list[str]:
        """Call boxes registered before `since` with no key press since then."""
        rows = await self._fetch(
            "SELECT device_id FROM devices d WHERE kind = 'call_box' AND created_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.device_id = d.device_id"
            " AND e.msg_type = 'KeyEvent' AND e.received_at >= ?) ORDER BY device_id",
            (since, since),
        )
        return [r[0] for r in rows]

    async def current(self, device_id: str) -> DeviceRecord | None:
        """One device, its newest seq, link and contact taken from its newest event, or None."""
        found = await self.current_many([device_id])
        return found[0] if found else None

    async def current_many(self, device_ids: Sequence[str]) -> list[DeviceRecord]:
        """`current` for several devices in one read; unknown ids are left out."""
        records: list[DeviceRecord] = []
        for start in range(0, len(device_ids), _IN_CHUNK):
            chunk = device_ids[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            sql = f"{_CURRENT_DEVICES} WHERE d.device_id IN ({marks})"
            rows = await self._fetch(sql, chunk)
            records.extend(_current_from_row(row) for row in rows)
        return records

    async def count(self) -> int:
        """How many devices are registered."""
        rows = await self._fetch("SELECT count(*) FROM devices")
        return int(rows[0][0])

    async def status_counts(self) -> dict[DeviceStatus, int]:
        """How many devices are in each status (statuses with none are left out)."""
        rows = await self._fetch("SELECT status, count(*) FROM devices GROUP BY status")
        return {r[0]: int(r[1]) for r in rows}

    async def watched(self, after: str = "", limit: int = -1) -> list[WatchedDevice]:
        """Devices not offline with an id above `after`, up to `limit` (-1: all), by id.

        What silence supervision needs of them, read in pages at start.
        """
        rows = await self._fetch(
            "SELECT device_id, status, heartbeat_interval_s, created_at, last_link FROM devices"
            " WHERE status != 'offline' AND device_id > ? ORDER BY device_id LIMIT ?",
            (after, limit),
        )
        return [WatchedDevice(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def history(self, device_id: str) -> list[HistoryEntry]:
        """The changes to one device's registration, oldest first."""
        rows = await self._fetch(
            "SELECT * FROM device_history WHERE device_id = ? ORDER BY id", (device_id,)
        )
        return [_history(r) for r in rows]

    async def history_after(self, after_id: int, limit: int) -> list[HistoryEntry]:
        """Up to `limit` changes to any device with an id above `after_id`, oldest first."""
        rows = await self._fetch(
            "SELECT * FROM device_history WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [_history(r) for r in rows]

    async def history_head(self) -> int:
        """The id of the newest change to any device (0 if none)."""
        rows = await self._fetch("SELECT coalesce(max(id), 0) FROM device_history")
        return int(rows[0][0])

    async def alarms(self, *, cleared: bool = False) -> list[OperatorAlarm]:
        """Open alarms (with `cleared`, every alarm), oldest first."""
        where = "" if cleared else " WHERE cleared_at IS NULL"
        rows = await self._fetch(f"SELECT * FROM operator_alarms{where} ORDER BY id")  # noqa: S608
        return [_alarm(r) for r in rows]

    async def offline_notices(self) -> list[OfflineNotice]:
        """Offline spells whose notice was sent, by device."""
        rows = await self._fetch(
            "SELECT device_id, last_heard, notified_at FROM device_offline_notices"
            " ORDER BY device_id"
        )
        return [OfflineNotice(r[0], r[1], r[2]) for r in rows]

    async def health_alarms(self, *, cleared: bool = False) -> list[HealthAlarm]:
        """Open health spells (with `cleared`, every spell), oldest first."""
        where = "" if cleared else " WHERE cleared_at IS NULL"
        rows = await self._fetch(
            f"SELECT * FROM device_health_alarms{where} ORDER BY since, id"  # noqa: S608
        )
        return [_health(r) for r in rows]

    async def offline_spells(self, start: float, end: float) -> list[OfflineSpell]:
        """Offline spells of call boxes that overlap [start, end), by device and start."""
        rows = await self._fetch(
            "SELECT device_id, household_code, at, ended FROM ("
            " SELECT t.device_id, d.household_code, t.kind, t.at,"
            " LEAD(t.at) OVER (PARTITION BY t.device_id ORDER BY t.at, t.id) AS ended"
            " FROM device_transitions t JOIN devices d ON d.device_id = t.device_id"
            " WHERE d.kind = 'call_box' AND t.kind IN ('online', 'offline'))"
            " WHERE kind = 'offline' AND at < ? AND (ended IS NULL OR ended > ?)"
            " ORDER BY device_id, at",
            (end, start),
        )
        return [OfflineSpell(r[0], r[1], r[2], r[3]) for r in rows]


class SqliteDeadlineReads(_Reads):
    """Committed deadlines rows, read on the reader connection."""

    async def next_at(self) -> float | None:
        """The earliest due time, or None if nothing is pending."""
        rows = await self._fetch("SELECT min(due_at) FROM deadlines")
        return None if rows[0][0] is None else float(rows[0][0])

    async def quarantined_count(self) -> int:
        """How many deadlines were quarantined after their handler kept failing."""
        rows = await self._fetch(
            "SELECT count(*) FROM deadline_failures WHERE status = 'quarantined'"
        )
        return int(rows[0][0])

    async def failures(self) -> list[DeadlineFailure]:
        """Every deadline failure being retried or quarantined, oldest first."""
        rows = await self._fetch(
            "SELECT kind, subject, due_at, attempts, reason, failed_at, status"
            " FROM deadline_failures ORDER BY id"
        )
        return [DeadlineFailure(*r) for r in rows]


class SqliteGridReads(_Reads):
    """Committed grid rows, read on the reader connection."""

    async def _grid_select(
        self, table: str, column: str, values: Sequence[str]
    ) -> list[sqlite3.Row]:
        """Rows of a grid table whose `column` is one of `values`, by rowid, on the reader."""
        found: list[sqlite3.Row] = []
        unique = sorted(set(values))
        for start in range(0, len(unique), _GRID_KEYS_PER_QUERY):
            chunk = unique[start : start + _GRID_KEYS_PER_QUERY]
            marks = ", ".join("?" for _ in chunk)
            found += await self._fetch(
                f"SELECT rowid AS grid_rowid, * FROM {table}"  # noqa: S608 - fixed names
                f" WHERE {column} IN ({marks})",
                chunk,
            )
        found.sort(key=lambda r: int(r["grid_rowid"]))
        return found

    async def units_by_code(self, codes: Sequence[str]) -> list[GridUnit]:
        """The grid units with these codes."""
        rows = await self._grid_select("grid_units", "code", codes)
        return [GridUnit(r["code"], r["level"], r["name"], r["parent_code"]) for r in rows]

    async def households_by_code(self, codes: Sequence[str]) -> list[HouseholdRow]:
        """The households with these codes."""
        rows = await self._grid_select("households", "code", codes)
        return [HouseholdRow(r["code"], r["neighbourhood_code"], r["address"]) for r in rows]

    async def residents_of(self, household_codes: Sequence[str]) -> list[ResidentRow]:
        """The residents of these households, oldest first."""
        rows = await self._grid_select("residents", "household_code", household_codes)
        return [
            ResidentRow(
                household_code=r["household_code"],
                name=r["name"],
                phone=r["phone"],
                lives_alone=bool(r["lives_alone"]),
                five_guarantee=bool(r["five_guarantee"]),
                needs_care=bool(r["needs_care"]),
                consent=bool(r["consent"]),
                key_safe_code=r["key_safe_code"],
                health_notes=r["health_notes"],
                id=r["id"],
            )
            for r in rows
        ]

    async def devices_by_id(self, device_ids: Sequence[str]) -> list[DeviceRecord]:
        """The devices with these ids."""
        rows = await self._grid_select("devices", "device_id", device_ids)
        return [_device_from_row(r) for r in rows]

    async def devices_of(self, household_codes: Sequence[str]) -> list[DeviceRecord]:
        """The devices registered to these households."""
        rows = await self._grid_select("devices", "household_code", household_codes)
        return [_device_from_row(r) for r in rows]

    async def contacts_of(
        self, unit_codes: Sequence[str], household_codes: Sequence[str]
    ) -> list[ContactRow]:
        """The contacts of these units and of these households."""
        rows = await self._grid_select("contacts", "unit_code", unit_codes)
        rows += await self._grid_select("contacts", "household_code", household_codes)
        return [
            ContactRow(
                name=r["name"],
                role=r["role"],
                phone=r["phone"],
                unit_code=r["unit_code"],
                household_code=r["household_code"],
                language=r["language"],
                available_from=r["available_from"],
                available_to=r["available_to"],
                id=r["id"],
                notify=_notify_events(r["notify"]),
            )
            for r in rows
        ]

    async def units(self) -> dict[str, GridUnit]:
        """Every grid unit by code."""
        rows = await self._fetch("SELECT code, level, name, parent_code FROM grid_units")
        return {r[0]: GridUnit(r[0], r[1], r[2], r[3]) for r in rows}

    async def contacts(self) -> list[Contact]:
        """Every contact."""
        return [_contact(r) for r in await self._fetch("SELECT * FROM contacts ORDER BY id")]

    async def contacts_by_id(self, ids: Sequence[int]) -> list[Contact]:
        """The contacts with these ids, by id; unknown ids are left out."""
        found: list[Contact] = []
        unique = sorted(set(ids))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = await self._fetch(
                f"SELECT * FROM contacts WHERE id IN ({marks}) ORDER BY id",  # noqa: S608
                chunk,
            )
            found += [_contact(r) for r in rows]
        return found


class SqliteTicketReads(_Reads):
    """Committed tickets rows, read on the reader connection."""

    async def get(self, ticket_id: int) -> Ticket | None:
        """One ticket, as committed."""
        rows = await self._fetch("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        return _ticket(rows[0]) if rows else None

    async def all(self) -> list[Ticket]:
        """Every ticket, oldest first."""
        return [_ticket(r) for r in await self._fetch("SELECT * FROM tickets ORDER BY id")]

    async def live(self) -> list[Ticket]:
        """Every open, accepted or on-site ticket."""
        rows = await self._fetch(
            "SELECT * FROM tickets WHERE status IN ('open', 'accepted', 'on_site') ORDER BY id"
        )
        return [_ticket(r) for r in rows]

    async def opened(self, start: float, end: float) -> list[Ticket]:
        """Tickets opened in [start, end), oldest first."""
        rows = await self._fetch(
            "SELECT * FROM tickets WHERE opened_at >= ? AND opened_at < ? ORDER BY id",
            (start, end),
        )
        return [_ticket(r) for r in rows]

    async def events(self, ticket_id: int) -> list[TicketEvent]:
        """A ticket's audit trail, oldest first."""
        rows = await self._fetch(
            "SELECT ticket_id, at, kind, channel, contact_id, detail FROM ticket_events"
            " WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
        return [TicketEvent(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def feedback(self) -> list[Feedback]:
        """Every thumbs press, oldest first."""
        rows = await self._fetch(
            "SELECT household_code, device_id, at, rating, ticket_id FROM feedback ORDER BY id"
        )
        return [Feedback(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def find(self, query: TicketQuery) -> list[Ticket]:
        """The tickets that match `query`, newest first."""
        where: list[str] = []
        args: list[object] = []
        if query.statuses:
            where.append(f"status IN ({', '.join('?' for _ in query.statuses)})")
            args += [s.value for s in query.statuses]
        if query.village_codes:
            where.append(f"village_code IN ({', '.join('?' for _ in query.village_codes)})")
            args += query.village_codes
        if query.household_code is not None:
            where.append("household_code = ?")
            args.append(query.household_code)
        if query.opened_since is not None:
            where.append("(opened_at >= ? OR status IN ('open', 'accepted', 'on_site'))")
            args.append(query.opened_since)
        sql = "SELECT * FROM tickets"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY opened_at DESC, id DESC"
        if query.limit is not None:
            sql += " LIMIT ?"
            args.append(query.limit)
        return [_ticket(r) for r in await self._fetch(sql, args)]

    async def change_mark(self) -> tuple[int, int]:
        """The newest ticket event's id and the newest operator alarm's (id, count) sum."""
        rows = await self._fetch(
            "SELECT (SELECT coalesce(max(id), 0) FROM ticket_events),"
            " (SELECT coalesce(max(id), 0) + coalesce(sum(count), 0)"
            " + coalesce(sum(cleared_at IS NOT NULL), 0) FROM operator_alarms)"
        )
        return int(rows[0][0]), int(rows[0][1])

    async def feedback_of(self, ticket_id: int) -> list[Feedback]:
        """The thumbs presses that rated this ticket, oldest first."""
        rows = await self._fetch(
            "SELECT household_code, device_id, at, rating, ticket_id FROM feedback"
            " WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
        return [Feedback(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def events_after(self, after_id: int, limit: int) -> list[tuple[int, TicketEvent]]:
        """Up to `limit` audit rows of any ticket with an id above `after_id`, with their ids."""
        rows = await self._fetch(
            "SELECT id, ticket_id, at, kind, channel, contact_id, detail FROM ticket_events"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [(r[0], TicketEvent(r[1], r[2], r[3], r[4], r[5], r[6])) for r in rows]

    async def work_group_cursor(self) -> int | None:
        """The last audit row the work groups' poster has handled; None before its first run."""
        rows = await self._fetch("SELECT event_id FROM work_group_cursor WHERE id = 1")
        return int(rows[0][0]) if rows else None


class SqliteOutboxReads(_Reads):
    """Committed outbox rows, read on the reader connection."""

    async def notifications(self) -> list[Notification]:
        """Every notification written, oldest first."""
        rows = await self._fetch("SELECT * FROM notifications ORDER BY id")
        return [_notification(r) for r in rows]

    async def get(self, notification_id: int) -> Notification | None:
        """One notification as written."""
        rows = await self._fetch("SELECT * FROM notifications WHERE id = ?", (notification_id,))
        return _notification(rows[0]) if rows else None

    async def with_members(
        self, notification_id: int
    ) -> tuple[Notification, list[Notification]] | None:
        """A notification as written, and those merged into it (oldest first)."""
        rows = await self._fetch(
            "SELECT * FROM notifications WHERE id = ? OR merged_into = ? ORDER BY id",
            (notification_id, notification_id),
        )
        leader = next((r for r in rows if r["id"] == notification_id), None)
        if leader is None:
            return None
        return _notification(leader), [_notification(r) for r in rows if r is not leader]

    async def entries(self) -> list[OutboxEntry]:
        """Every notification with its delivery story, oldest first."""
        names = [f.name for f in fields(OutboxEntry)]
        rows = await self._fetch(
            f"SELECT {', '.join(names)} FROM notifications ORDER BY id"  # noqa: S608 - fixed names
        )
        return [OutboxEntry(*r) for r in rows]

    async def of_ticket(self, ticket_id: int) -> list[TicketMessage]:
        """Every notification about one ticket with its delivery story, oldest first."""
        names = [f.name for f in fields(TicketMessage)]
        rows = await self._fetch(
            f"SELECT {', '.join(names)} FROM notifications"  # noqa: S608 - fixed names
            " WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
        return [TicketMessage(*r) for r in rows]

    async def quarantined(self, since: float = 0.0) -> list[OutboxEntry]:
        """Notifications given up on since `since` after their last attempt, newest first."""
        names = [f.name for f in fields(OutboxEntry)]
        rows = await self._fetch(
            f"SELECT {', '.join(names)} FROM notifications"  # noqa: S608 - fixed names
            " WHERE quarantined_at >= ? ORDER BY quarantined_at DESC, id DESC",
            (since,),
        )
        return [OutboxEntry(*r) for r in rows]

    async def states(self) -> list[tuple[int, str, int, str | None]]:
        """(id, status, attempts, delivery) of every notification, oldest first."""
        rows = await self._fetch(
            "SELECT id, status, attempts, delivery FROM notifications ORDER BY id"
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def next_at(
        self, skip_recipients: Sequence[str] = (), urgent: bool | None = None
    ) -> float | None:
        """When the next pending notification (not to `skip_recipients`) is due, or None.

        `urgent` True looks at urgent ones only, False at the others, None at all.
        """
        skip, marks = _skipping(skip_recipients)
        rows = await self._fetch(
            "SELECT min(next_attempt_at) FROM notifications"  # noqa: S608 - fixed marks
            f" WHERE status = 'pending'{skip}{_urgency(urgent)}",
            marks,
        )
        return None if rows[0][0] is None else float(rows[0][0])


class SqliteIndicationReads(_Reads):
    """Committed indications rows, read on the reader connection."""

    async def next_at(self) -> float | None:
        """When the next pending indication is due, or None."""
        rows = await self._fetch(
            "SELECT min(next_attempt_at) FROM indications WHERE status = 'pending'"
        )
        return None if rows[0][0] is None else float(rows[0][0])

    async def all(self, device_id: str | None = None) -> list[IndicationRecord]:
        """Every indication (of one device), oldest first."""
        if device_id is None:
            rows = await self._fetch("SELECT * FROM indications ORDER BY id")
        else:
            rows = await self._fetch(
                "SELECT * FROM indications WHERE device_id = ? ORDER BY id", (device_id,)
            )
        return [
            IndicationRecord(
                r["id"], r["device_id"], _indication(r), r["created_at"], r["status"], r["attempts"]
            )
            for r in rows
        ]


def _indication(row: sqlite3.Row) -> Indication:
    return Indication(
        IndicationKind(row["kind"]), row["ticket_ref"], LedPattern(row["led"]), row["voice_prompt"]
    )


def _watch(row: sqlite3.Row) -> WaterWatch:
    # A watch written before migration 0025 has its history inside the state (history NULL).
    return watch_from_record(json.loads(row["state"]), row["history"])


class SqliteWaterWrites(_Writes):
    """The water watch inside one SQLite transaction."""

    async def watch(self, household_code: str) -> WaterWatch | None:
        """The household's stored watch, or None."""
        rows = await self._rows(
            "SELECT state, history FROM water_watches WHERE household_code = ?",
            (household_code,),
        )
        return _watch(rows[0]) if rows else None

    async def watches(self, household_codes: Collection[str]) -> dict[str, WaterWatch]:
        """The stored watches of these households (left out: never watched), in one read."""
        codes = list(household_codes)
        found: dict[str, WaterWatch] = {}
        for start in range(0, len(codes), _IN_CHUNK):
            chunk = codes[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = await self._rows(
                "SELECT household_code, state, history FROM water_watches"  # noqa: S608
                f" WHERE household_code IN ({marks})",
                chunk,
            )
            found.update((r["household_code"], _watch(r)) for r in rows)
        return found

    async def save(self, watch: WaterWatch, at: float) -> None:
        """Store the household's watch (insert or replace)."""
        await self.save_many([watch], at)

    async def save_many(self, watches: Sequence[WaterWatch], at: float) -> None:
        """Store these households' watches (insert or replace), in one statement.

        The history goes packed into a column of its own (`DayHistory.packed`), the rest as
        JSON: a 4-week watch's text is 700 characters instead of 1,550, and this runs for every
        reading with water use.
        """
        await self._conn.executemany(
            "INSERT INTO water_watches (household_code, phase, state, history, updated_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (household_code) DO UPDATE SET"
            " phase = excluded.phase, state = excluded.state, history = excluded.history,"
            " updated_at = excluded.updated_at",
            [
                (
                    watch.household,
                    watch.phase.value,
                    json.dumps(watch_to_record(watch, history=False), separators=(",", ":")),
                    cast("DayHistory", watch.history).packed(),
                    at,
                )
                for watch in watches
            ],
        )

    async def add_log(self, lines: Sequence[WaterLogLine]) -> None:
        """Append lines to the households' records."""
        await self._conn.executemany(
            "INSERT INTO water_log (household_code, at, kind, detail) VALUES (?, ?, ?, ?)",
            [(line.household_code, line.at, line.kind, line.detail) for line in lines],
        )

    async def add_request(self, request: WaterRequest) -> int:
        """Queue a request for the running gateway; returns its id."""
        cursor = await self._conn.execute(
            "INSERT INTO water_requests (household_code, action, until, by_contact, channel,"
            " requested_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                request.household_code,
                request.action,
                request.until,
                request.by_contact,
                request.channel,
                request.requested_at,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def pending_requests(self, limit: int) -> list[WaterRequest]:
        """Requests not yet applied, oldest first."""
        rows = await self._rows(
            "SELECT * FROM water_requests WHERE done_at IS NULL ORDER BY id LIMIT ?", (limit,)
        )
        return [_water_request(r) for r in rows]

    async def request_done(self, request_id: int, at: float, outcome: str) -> None:
        """Record that a request was applied (or refused: `outcome` says which)."""
        await self._conn.execute(
            "UPDATE water_requests SET done_at = ?, outcome = ? WHERE id = ?",
            (at, outcome, request_id),
        )


class SqliteWaterReads(_Reads):
    """Committed water watches, read on the reader connection."""

    async def watch(self, household_code: str) -> WaterWatch | None:
        """The household's stored watch, or None."""
        rows = await self._fetch(
            "SELECT state, history FROM water_watches WHERE household_code = ?",
            (household_code,),
        )
        return _watch(rows[0]) if rows else None

    async def log(self, household_code: str, limit: int = 200) -> list[WaterLogLine]:
        """The household's newest record lines, oldest first."""
        rows = await self._fetch(
            "SELECT * FROM (SELECT * FROM water_log WHERE household_code = ?"
            " ORDER BY id DESC LIMIT ?) ORDER BY id",
            (household_code, limit),
        )
        return [WaterLogLine(r["household_code"], r["at"], r["kind"], r["detail"]) for r in rows]

    async def households(self, after: str, limit: int) -> list[str]:
        """Codes of watched households after `after`, in code order."""
        rows = await self._fetch(
            "SELECT household_code FROM water_watches WHERE household_code > ?"
            " ORDER BY household_code LIMIT ?",
            (after, limit),
        )
        return [r["household_code"] for r in rows]

    async def requests(self, household_code: str, limit: int = 20) -> list[WaterRequest]:
        """The household's newest requests, oldest first (pending ones included)."""
        rows = await self._fetch(
            "SELECT * FROM (SELECT * FROM water_requests WHERE household_code = ?"
            " ORDER BY id DESC LIMIT ?) ORDER BY id",
            (household_code, limit),
        )
        return [_water_request(r) for r in rows]


def _water_request(row: sqlite3.Row) -> WaterRequest:
    return WaterRequest(
        household_code=row["household_code"],
        action=row["action"],
        requested_at=row["requested_at"],
        until=row["until"],
        by_contact=row["by_contact"],
        channel=row["channel"],
        id=row["id"],
        done_at=row["done_at"],
        outcome=row["outcome"],
    )


class SqliteUnitOfWork:
    """The write ports over one open SQLite transaction."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._savepoints = itertools.count(1)
        self.devices = SqliteDeviceWrites(conn)
        self.deadlines = SqliteDeadlineWrites(conn)
        self.grid = SqliteGridWrites(conn)
        self.tickets = SqliteTicketWrites(conn)
        self.outbox = SqliteOutboxWrites(conn)
        self.indications = SqliteIndicationWrites(conn)
        self.water = SqliteWaterWrites(conn)
        self.access = SqliteAccessWrites(conn)
        self.installs = SqliteInstallWrites(conn)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A nested scope: if its body raises, only its writes are undone, then it re-raises."""
        name = f"sp_{next(self._savepoints)}"
        try:
            await self._conn.execute(f"SAVEPOINT {name}")
        except sqlite3.Error as exc:
            raise _translate(exc, self._path) from exc
        try:
            yield
        except BaseException as exc:
            try:
                await self._conn.execute(f"ROLLBACK TO {name}")
                await self._conn.execute(f"RELEASE {name}")
            except sqlite3.Error as undo:
                raise _translate(undo, self._path) from exc
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, self._path) from exc
            raise
        try:
            await self._conn.execute(f"RELEASE {name}")
        except sqlite3.Error as exc:
            raise _translate(exc, self._path) from exc


def _translate(exc: sqlite3.Error, path: Path) -> StoreError:
    """The store error for a driver error: what the caller can do about it, naming the file."""
    match exc:
        case sqlite3.IntegrityError():
            return ConflictError(f"{path}: a write conflicts with stored rows: {exc}")
        case sqlite3.OperationalError():
            return StoreUnavailableError(f"{path} cannot be used now: {exc}")
        case sqlite3.DatabaseError():
            return StoreCorruptError(f"{path} is not a Bidao database: {exc}")
        case _:
            return StoreError(f"{path}: {exc}")


class SqliteStore:
    """The store in one SQLite file: one writer connection, one reader connection.

    No sqlite3 error leaves it: each is translated into a gateway.errors.StoreError.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = WriterLock()
        self.devices = SqliteDeviceReads(self._fetch)
        self.deadlines = SqliteDeadlineReads(self._fetch)
        self.grid = SqliteGridReads(self._fetch)
        self.tickets = SqliteTicketReads(self._fetch)
        self.outbox = SqliteOutboxReads(self._fetch)
        self.indications = SqliteIndicationReads(self._fetch)
        self.water = SqliteWaterReads(self._fetch)
        self.access = SqliteAccessReads(self._fetch)
        self.directory = SqliteDirectoryReads(self._fetch)
        self.installs = SqliteInstallReads(self._fetch)

    async def open(self) -> None:
        """Connect, set the pragmas and apply pending migrations."""
        if self._writer is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {self.path.parent}: {exc.strerror or exc}") from None
        try:
            self._writer = await self._connect()
            await self._migrate(self._writer)
            self._reader = await self._connect()
        except sqlite3.OperationalError as exc:
            await self.close()
            raise StoreUnavailableError(f"cannot open {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            await self.close()
            raise _translate(exc, self.path) from None
        except BaseException:
            await self.close()
            raise

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            for pragma in _PRAGMAS:
                await conn.execute(pragma)
        except BaseException:
            await conn.close()  # its thread would otherwise keep the process alive
            raise
        return conn

    async def close(self) -> None:
        """Close both connections; safe to call twice."""
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    async def _migrate(self, conn: aiosqlite.Connection) -> None:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        async with conn.execute("SELECT version, name, sha256 FROM schema_migrations") as cur:
            applied = {int(r[0]): (r[1], r[2]) async for r in cur}
        shipped = migrations()
        known = {version for version, _, _ in shipped}
        if unknown := sorted(set(applied) - known):
            raise MigrationError(f"database has migrations {unknown} that this code lacks")
        for version, name, sql in shipped:
            digest = hashlib.sha256(sql.encode()).hexdigest()
            if version in applied:
                if applied[version][1] != digest:
                    raise MigrationError(f"migration {name} changed after it was applied")
                continue
            keys_off = sql.startswith(_FOREIGN_KEYS_OFF)
            if keys_off:  # outside the transaction: SQLite ignores it within one
                await conn.execute("PRAGMA foreign_keys=OFF")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process (a gateway starting beside `bidao import`) may have applied
                # it while this one waited for the write lock: looked at again under the lock.
                if await _applied_meanwhile(conn, version, name, digest):
                    await conn.execute("COMMIT")
                    continue
                for statement in _statements(sql):
                    await conn.execute(statement)
                if keys_off:
                    await _check_references(conn, name)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?, datetime('now'))",
                    (version, name, digest),
                )
                await conn.execute("COMMIT")
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            finally:
                if keys_off:
                    await conn.execute("PRAGMA foreign_keys=ON")

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise StoreError("store is not open")
        return conn

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[SqliteUnitOfWork]:
        """One serialised write transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error).

        An `urgent` one (a call for help) is next in line, ahead of ordinary ones waiting.
        """
        await self._lock.acquire(urgent=urgent)
        try:
            conn = self._require(self._writer)
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
            try:
                yield SqliteUnitOfWork(conn, self.path)
            except sqlite3.Error as exc:
                await self._rollback(conn)
                raise _translate(exc, self.path) from exc
            except BaseException:
                await self._rollback(conn)
                raise
            try:
                await conn.execute("COMMIT")
            except sqlite3.Error as exc:
                await self._rollback(conn)
                raise _translate(exc, self.path) from exc
        finally:
            self._lock.release()

    def writers_waiting(self) -> tuple[int, int]:
        """(urgent, ordinary) transactions waiting for the writer (a test probe)."""
        return self._lock.waiting()

    def rows_changed(self) -> int:
        """Rows inserted, updated or deleted through the writer since it opened (a test probe)."""
        return self._require(self._writer).total_changes

    async def _rollback(self, conn: aiosqlite.Connection) -> None:
        try:
            await conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                raise _translate(exc, self.path) from exc
            # SQLite already rolled the transaction back (a full disk, an I/O error).

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._require(self._reader)
        try:
            # One step on the reader's thread, from the query to its last row: reads share
            # the connection, and another read run between the two would see this one's
            # snapshot, older than what was committed before it was asked for.
            return list(await conn.execute_fetchall(sql, args))
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc


def _skipping(recipients: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """A `recipient NOT IN (...)` clause and its parameters; nothing if none is skipped."""
    if not recipients:
        return "", ()
    marks = ", ".join("?" for _ in recipients)
    return f" AND recipient NOT IN ({marks})", tuple(recipients)


def _urgency(urgent: bool | None) -> str:
    """A clause keeping urgent notifications only (True), the others (False), or all (None)."""
    if urgent is None:
        return ""
    return f" AND priority {'>=' if urgent else '<'} {URGENT}"


_FOREIGN_KEYS_OFF = "-- bidao: foreign keys off"
"""The first line of a migration that rebuilds a table other tables refer to: it runs with
foreign keys off (SQLite's way to rebuild a referenced table), and every reference is
checked before it commits."""


async def _check_references(conn: aiosqlite.Connection, name: str) -> None:
    """MigrationError if a migration run with foreign keys off left a reference broken."""
    async with conn.execute("PRAGMA foreign_key_check") as cursor:
        broken = await cursor.fetchall()
    if broken:
        tables = sorted({str(row[0]) for row in broken})
        raise MigrationError(f"migration {name} broke references in {', '.join(tables)}")


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement knows where each ends)."""
    out: list[str] = []
    current = ""
    for line in sql.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in current.splitlines()
    ):
        raise MigrationError(f"incomplete statement at the end of a migration: {current[:80]!r}")
    return out


async def _applied_meanwhile(
    conn: aiosqlite.Connection, version: int, name: str, digest: str
) -> bool:
    """Whether another process applied this migration (the same one, or MigrationError)."""
    async with conn.execute(
        "SELECT sha256 FROM schema_migrations WHERE version = ?", (version,)
    ) as cur:
        row = await cur.fetchone()
    if row is not None and row[0] != digest:
        raise MigrationError(f"migration {name} changed after it was applied")
    return row is not None
