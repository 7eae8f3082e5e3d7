"""SQLite implementations of the access ports and of the directory (pages of households).

Users, sessions, tokens and the audit log; households with their residents, filtered in SQL
(scope as a recursive walk down the grid). Used by gateway.store.sqlite only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiosqlite

from gateway.domain.access import ApiToken, AuditEntry, SessionRecord, User
from gateway.domain.grid import HouseholdRow, ResidentRow
from gateway.store.ports import HouseholdEntry, HouseholdQuery

_Fetch = Callable[[str, Sequence[Any]], Awaitable[list[sqlite3.Row]]]
_IN_CHUNK = 500


class SqliteAccessWrites:
    """Users, sessions, tokens and the audit log inside one SQLite transaction."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add_user(self, user: User, password_hash: str | None) -> int:
        """Store a new user with its units; returns its id."""
        cursor = await self._conn.execute(
            "INSERT INTO users (login, name, role, password_hash, contact_id, created_at,"
            " password_changed_at, disabled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                user.login,
                user.name,
                user.role,
                password_hash,
                user.contact_id,
                user.created_at,
                user.created_at if password_hash is not None else None,
                user.disabled_at,
            ),
        )
        assert cursor.lastrowid is not None
        user_id = cursor.lastrowid
        await self._conn.executemany(
            "INSERT INTO user_units (user_id, unit_code) VALUES (?, ?)",
            [(user_id, code) for code in user.units],
        )
        return user_id

    async def set_password(self, user_id: int, password_hash: str, at: float) -> None:
        """Replace the user's password digest."""
        await self._conn.execute(
            "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
            (password_hash, at, user_id),
        )

    async def set_disabled(self, user_id: int, at: float | None) -> None:
        """Disable the user at `at` (None: enable again)."""
        await self._conn.execute("UPDATE users SET disabled_at = ? WHERE id = ?", (at, user_id))

    async def add_session(self, token_sha256: str, session: SessionRecord) -> None:
        """Store a new session under the digest of its secret."""
        await self._conn.execute(
            "INSERT INTO user_sessions (token_sha256, user_id, created_at, expires_at, client)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                token_sha256,
                session.user_id,
                session.created_at,
                session.expires_at,
                session.client,
            ),
        )

    async def end_session(self, token_sha256: str, at: float) -> None:
        """End one session."""
        await self._conn.execute(
            "UPDATE user_sessions SET ended_at = ? WHERE token_sha256 = ? AND ended_at IS NULL",
            (at, token_sha256),
        )

    async def end_sessions_of(self, user_id: int, at: float) -> int:
        """End every live session of the user; returns how many."""
        cursor = await self._conn.execute(
            "UPDATE user_sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL",
            (at, user_id),
        )
        return cursor.rowcount

    async def add_token(
        self, user_id: int, name: str, token_sha256: str, at: float, expires_at: float | None
    ) -> int:
        """Store a new API token; returns its id."""
        cursor = await self._conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_sha256, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (user_id, name, token_sha256, at, expires_at),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def revoke_tokens_of(self, user_id: int, at: float) -> int:
        """Revoke every token of the user; returns how many."""
        cursor = await self._conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            (at, user_id),
        )
        return cursor.rowcount

    async def audit(self, entry: AuditEntry) -> int:
        """Append one line to the audit log; returns its id."""
        cursor = await self._conn.execute(
            "INSERT INTO audit_log (at, user_id, login, action, target, detail, client, outcome)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                entry.at,
                entry.user_id,
                entry.login,
                entry.action,
                entry.target,
                entry.detail,
                entry.client,
                entry.outcome,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def _user(row: sqlite3.Row, units: Sequence[str]) -> User:
    return User(
        id=row["id"],
        login=row["login"],
        name=row["name"],
        role=row["role"],
        units=tuple(units),
        contact_id=row["contact_id"],
        created_at=row["created_at"],
        disabled_at=row["disabled_at"],
        has_password=row["password_hash"] is not None,
    )


def _token(row: sqlite3.Row) -> ApiToken:
    return ApiToken(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class SqliteAccessReads:
    """Committed users, sessions, tokens and audit lines, on the reader connection."""

    def __init__(self, fetch: _Fetch) -> None:
        self._fetch = fetch

    async def _units(self, user_ids: Sequence[int]) -> dict[int, list[str]]:
        found: dict[int, list[str]] = {}
        unique = sorted(set(user_ids))
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            rows = await self._fetch(
                f"SELECT user_id, unit_code FROM user_units WHERE user_id IN ({marks})"  # noqa: S608 - marks only
                " ORDER BY user_id, unit_code",
                chunk,
            )
            for r in rows:
                found.setdefault(r["user_id"], []).append(r["unit_code"])
        return found

    async def user_by_login(self, login: str) -> tuple[User, str | None] | None:
        """The user with this login (any case) and their password digest, or None."""
        rows = await self._fetch("SELECT * FROM users WHERE login = ?", (login,))
        if not rows:
            return None
        units = await self._units([rows[0]["id"]])
        return _user(rows[0], units.get(rows[0]["id"], [])), rows[0]["password_hash"]

    async def user(self, user_id: int) -> User | None:
        """The user with this id, or None."""
        rows = await self._fetch("SELECT * FROM users WHERE id = ?", (user_id,))
        if not rows:
            return None
        units = await self._units([user_id])
        return _user(rows[0], units.get(user_id, []))

    async def users(self) -> list[User]:
        """Every user, by id."""
        rows = await self._fetch("SELECT * FROM users ORDER BY id", ())
        units = await self._units([r["id"] for r in rows])
        return [_user(r, units.get(r["id"], [])) for r in rows]

    async def session(self, token_sha256: str) -> SessionRecord | None:
        """The session stored under this digest, or None."""
        rows = await self._fetch(
            "SELECT * FROM user_sessions WHERE token_sha256 = ?", (token_sha256,)
        )
        if not rows:
            return None
        r = rows[0]
        return SessionRecord(
            user_id=r["user_id"],
            created_at=r["created_at"],
            expires_at=r["expires_at"],
            client=r["client"],
            ended_at=r["ended_at"],
        )

    async def token(self, token_sha256: str) -> ApiToken | None:
        """The API token stored under this digest, or None."""
        rows = await self._fetch("SELECT * FROM api_tokens WHERE token_sha256 = ?", (token_sha256,))
        return _token(rows[0]) if rows else None

    async def tokens_of(self, user_id: int) -> list[ApiToken]:
        """The user's tokens, by id."""
        rows = await self._fetch(
            "SELECT * FROM api_tokens WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [_token(r) for r in rows]

    async def audit_log(self, limit: int, user_id: int | None = None) -> list[AuditEntry]:
        """The newest audit lines (of one user if given), newest first."""
        rows = await self._fetch(
            "SELECT * FROM audit_log WHERE ? IS NULL OR user_id = ? ORDER BY id DESC LIMIT ?",
            (user_id, user_id, limit),
        )
        return [
            AuditEntry(
                at=r["at"],
                user_id=r["user_id"],
                login=r["login"],
                action=r["action"],
                target=r["target"],
                detail=r["detail"],
                client=r["client"],
                outcome=r["outcome"],
                id=r["id"],
            )
            for r in rows
        ]

    async def family_households(self, contact_id: int) -> list[str]:
        """Households whose family contacts share this contact's phone number, by code."""
        rows = await self._fetch(
            "SELECT DISTINCT c.household_code FROM contacts c"
            " JOIN contacts me ON me.id = ? AND me.phone = c.phone"
            " WHERE c.role = 'family' AND c.household_code IS NOT NULL"
            " ORDER BY c.household_code",
            (contact_id,),
        )
        return [r[0] for r in rows]


_SCOPE_CTE = (
    "WITH RECURSIVE scope(code) AS (SELECT code FROM grid_units WHERE code IN ({marks})"
    " UNION SELECT g.code FROM grid_units g JOIN scope s ON g.parent_code = s.code)"
)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqliteDirectoryReads:
    """Pages of households with their residents, filtered in SQL."""

    def __init__(self, fetch: _Fetch) -> None:
        self._fetch = fetch

    def _where(self, query: HouseholdQuery, *, paged: bool) -> tuple[str, str, list[Any]]:
        """The WITH clauses, the WHERE clause and their parameters."""
        ctes: list[str] = []
        args: list[Any] = []
        where: list[str] = []
        wanted = (query.unit,) if query.unit else None
        for name, roots in (("scope", query.roots), ("wanted", wanted)):
            if roots is None:
                continue
            marks = ", ".join("?" for _ in roots) or "NULL"
            cte = _SCOPE_CTE.format(marks=marks).replace("scope", name)
            ctes.append(cte.removeprefix("WITH RECURSIVE "))
            args += roots
            where.append(f"h.neighbourhood_code IN (SELECT code FROM {name})")  # noqa: S608 - fixed names
        if query.households is not None:
            marks = ", ".join("?" for _ in query.households) or "NULL"
            where.append(f"h.code IN ({marks})")
            args += query.households
        if query.text:
            like = f"%{_escape_like(query.text)}%"
            where.append(
                "(h.code LIKE ? ESCAPE '\\' OR h.address LIKE ? ESCAPE '\\' OR EXISTS"
                " (SELECT 1 FROM residents r WHERE r.household_code = h.code"
                " AND r.name LIKE ? ESCAPE '\\'))"
            )
            args += [like, like, like]
        if query.lives_alone is not None:
            where.append(
                ("" if query.lives_alone else "NOT ")  # noqa: S608 - fixed parts
                + "EXISTS (SELECT 1 FROM residents r WHERE r.household_code = h.code"
                " AND r.lives_alone = 1)"
            )
        if paged and query.after is not None:
            where.append("h.code > ?")
            args.append(query.after)
        with_sql = ("WITH RECURSIVE " + ", ".join(ctes) + " ") if ctes else ""
        where_sql = (" WHERE " + " AND ".join(where)) if where else ""
        return with_sql, where_sql, args

    async def households(self, query: HouseholdQuery) -> list[HouseholdEntry]:
        """One page of households with their residents, by code."""
        with_sql, where_sql, args = self._where(query, paged=True)
        rows = await self._fetch(
            f"{with_sql}SELECT h.* FROM households h{where_sql}"  # noqa: S608 - built of fixed parts
            " ORDER BY h.code LIMIT ?",
            [*args, query.limit],
        )
        households = [HouseholdRow(r["code"], r["neighbourhood_code"], r["address"]) for r in rows]
        residents: dict[str, list[ResidentRow]] = {}
        codes = [h.code for h in households]
        for start in range(0, len(codes), _IN_CHUNK):
            chunk = codes[start : start + _IN_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for r in await self._fetch(
                f"SELECT * FROM residents WHERE household_code IN ({marks}) ORDER BY id",  # noqa: S608 - marks only
                chunk,
            ):
                residents.setdefault(r["household_code"], []).append(
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
                )
        return [HouseholdEntry(h, tuple(residents.get(h.code, ()))) for h in households]

    async def count_households(self, query: HouseholdQuery) -> int:
        """How many households match, ignoring `after` and `limit`."""
        with_sql, where_sql, args = self._where(query, paged=False)
        rows = await self._fetch(
            f"{with_sql}SELECT count(*) FROM households h{where_sql}",  # noqa: S608 - fixed parts
            args,
        )
        return int(rows[0][0])
