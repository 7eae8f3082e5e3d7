"""SQLite implementations of the install-check ports. Used by gateway.store.sqlite only."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite

from gateway.domain.installs import CheckReason, CheckState, CheckStep, InstallCheck

_Fetch = Callable[[str, Sequence[Any]], Awaitable[list[sqlite3.Row]]]

_CHECK_COLUMNS = "id, device_id, kind, started_at, ends_at, started_by, state, ended_at, reason"


def _check(row: sqlite3.Row, steps: Sequence[sqlite3.Row]) -> InstallCheck:
    state: CheckState = row["state"]
    reason: CheckReason | None = row["reason"]
    return InstallCheck(
        id=int(row["id"]),
        device_id=row["device_id"],
        kind=row["kind"],
        started_at=float(row["started_at"]),
        ends_at=float(row["ends_at"]),
        started_by=row["started_by"],
        state=state,
        ended_at=row["ended_at"],
        reason=reason,
        steps=tuple(
            CheckStep(float(s["at"]), s["what"], s["litres"], s["flow_lph"]) for s in steps
        ),
    )


async def _checks(
    fetch: _Fetch, where: str, args: Sequence[Any], *, limit: int | None = None
) -> list[InstallCheck]:
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    rows = await fetch(
        f"SELECT {_CHECK_COLUMNS} FROM install_checks"  # noqa: S608 - fixed clauses, marks
        f" WHERE {where} ORDER BY id DESC{tail}",
        args,
    )
    if not rows:
        return []
    ids = [int(r["id"]) for r in rows]
    marks = ", ".join("?" for _ in ids)
    steps = await fetch(
        f"SELECT check_id, at, what, litres, flow_lph FROM install_check_steps"  # noqa: S608
        f" WHERE check_id IN ({marks}) ORDER BY id",
        ids,
    )
    by_check: dict[int, list[sqlite3.Row]] = {}
    for s in steps:
        by_check.setdefault(int(s["check_id"]), []).append(s)
    return [_check(r, by_check.get(int(r["id"]), [])) for r in rows]


class SqliteInstallWrites:
    """Install checks inside one SQLite transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def _fetch(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(await self._conn.execute_fetchall(sql, args))  # one trip to its thread

    async def start(self, check: InstallCheck) -> int:
        """Store a new running check (its id is ignored); returns its id."""
        cursor = await self._conn.execute(
            "INSERT INTO install_checks (device_id, kind, started_at, ends_at, started_by,"
            " state) VALUES (?, ?, ?, ?, ?, 'running')",
            (check.device_id, check.kind, check.started_at, check.ends_at, check.started_by),
        )
        assert cursor.lastrowid is not None
        return int(cursor.lastrowid)

    async def get(self, check_id: int) -> InstallCheck | None:
        """One check with its steps, or None."""
        found = await _checks(self._fetch, "id = ?", (check_id,))
        return found[0] if found else None

    async def running(self, device_id: str) -> InstallCheck | None:
        """The device's running check, or None."""
        found = await _checks(self._fetch, "device_id = ? AND state = 'running'", (device_id,))
        return found[0] if found else None

    async def all_running(self) -> list[InstallCheck]:
        """Every running check, with its steps."""
        return await _checks(self._fetch, "state = 'running'", ())

    async def add_steps(self, check_id: int, steps: Sequence[CheckStep]) -> None:
        """Record keys or readings that arrived for a check."""
        await self._conn.executemany(
            "INSERT INTO install_check_steps (check_id, at, what, litres, flow_lph)"
            " VALUES (?, ?, ?, ?, ?)",
            [(check_id, s.at, s.what, s.litres, s.flow_lph) for s in steps],
        )

    async def finish(
        self, check_id: int, state: CheckState, at: float, reason: CheckReason | None
    ) -> None:
        """End a running check as passed, failed or cancelled."""
        await self._conn.execute(
            "UPDATE install_checks SET state = ?, ended_at = ?, reason = ?"
            " WHERE id = ? AND state = 'running'",
            (state, at, reason, check_id),
        )


class SqliteInstallReads:
    """Committed install checks, read on the reader connection."""

    def __init__(self, fetch: _Fetch) -> None:
        self._read = fetch

    async def get(self, check_id: int) -> InstallCheck | None:
        """One check with its steps, or None."""
        found = await _checks(self._read, "id = ?", (check_id,))
        return found[0] if found else None

    async def running(self) -> list[InstallCheck]:
        """Every running check, newest first."""
        return await _checks(self._read, "state = 'running'", ())

    async def of_device(self, device_id: str, limit: int = 20) -> list[InstallCheck]:
        """The device's newest checks, newest first."""
        return await _checks(self._read, "device_id = ?", (device_id,), limit=limit)

    async def latest(self, device_ids: Sequence[str]) -> dict[str, InstallCheck]:
        """The latest check of each device that had one."""
        out: dict[str, InstallCheck] = {}
        for start in range(0, len(device_ids), 500):
            chunk = list(device_ids[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            found = await _checks(
                self._read,
                f"id IN (SELECT MAX(id) FROM install_checks WHERE device_id IN ({marks})"  # noqa: S608
                " GROUP BY device_id)",
                chunk,
            )
            out.update({c.device_id: c for c in found})
        return out
