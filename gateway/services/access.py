"""Users, sign-in, sessions, API tokens and the audit log; the Principal of each request.

Passwords are hashed with argon2id (its cost in `http.password_*`), off the event loop.
Session secrets and API tokens are random; only their SHA-256 digests are stored, so a copy
of the database signs nobody in. Failed sign-ins are counted per login and per client
address over `http.signin_window_s`; past the limits, sign-in is refused without looking at
the password until the window has passed.

AccessError (a GatewayError) carries a `code` a caller can act on:

    bad_login, too_short, too_long, bad_name, login_taken, no_such_user, unit_not_allowed,
    unit_needed, one_unit, no_such_unit, wrong_level, bad_contact, bad_credentials,
    rate_limited, disabled, not_signed_in, session_expired, bad_token, forbidden, not_found,
    no_contact, bad_input
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from gateway.clock import Clock
from gateway.config import HttpSettings
from gateway.domain.access import (
    LOGIN,
    NAME_MAX_CHARS,
    TOKEN_NAME_MAX_CHARS,
    UNIT_LEVELS,
    ApiToken,
    AuditEntry,
    AuthVia,
    Principal,
    SessionRecord,
    User,
    UserRole,
    bad_password,
    descendants,
)
from gateway.errors import ConflictError, GatewayError
from gateway.services.ticket_views import match_contacts
from gateway.store.ports import Store

_FAILURE_KEYS_MAX = 10_000
"""Past this many logins or addresses with recent failures, expired ones are dropped."""
TOKEN_PREFIX = "bdo_"  # noqa: S105 - a prefix that marks a token, not a secret
_RESPONDER_ROLES = ("administrator", "township_officer", "secretary", "grid_worker")


class AccessError(GatewayError):
    """A request about users or sign-in that cannot be carried out; `code` says why."""

    def __init__(self, code: str, message: str, **params: str) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A new session: its secret (for the cookie, never stored) and whose it is."""

    secret: str
    principal: Principal
    expires_at: float


def digest(secret: str) -> str:
    """The SHA-256 hex digest a session secret or token is stored under."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class _Failures:
    """Failed attempts per key within a sliding window (memory only: a restart forgets)."""

    def __init__(self, window_s: float, limit: int) -> None:
        self._window = window_s
        self._limit = limit
        self._seen: dict[str, deque[float]] = {}

    def _trim(self, key: str, now: float) -> deque[float]:
        times = self._seen.setdefault(key, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._seen[key]
            return deque()
        return times

    def blocked_for(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        times = self._trim(key, now)
        if len(times) < self._limit:
            return 0.0
        return times[-self._limit] + self._window - now

    def add(self, key: str, now: float) -> None:
        """Count one failure; with too many keys, drop those whose failures have all expired."""
        self._trim(key, now)
        self._seen.setdefault(key, deque()).append(now)
        if len(self._seen) > _FAILURE_KEYS_MAX:
            for old in [k for k, times in self._seen.items() if times[-1] <= now - self._window]:
                del self._seen[old]

    def forget(self, key: str) -> None:
        """Forget the failures of `key` (after a good sign-in)."""
        self._seen.pop(key, None)


class AccessService:
    """Manages users and answers who is asking, for the command line and the API."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: HttpSettings,
        on_signin: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._on_signin = on_signin or (lambda _outcome: None)
        self._hasher = PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_cost=settings.password_memory_kib,
            parallelism=1,
        )
        self._by_login = _Failures(settings.signin_window_s, settings.signin_max_failures_per_login)
        self._by_address = _Failures(
            settings.signin_window_s, settings.signin_max_failures_per_address
        )
        self._dummy_hash: str | None = None

    # -- users (the command line) -------------------------------------------------------

    async def _hash(self, password: str) -> str:
        why = bad_password(password)
        if why is not None:
            raise AccessError(why, f"the password is {why.replace('_', ' ')}")
        return await asyncio.to_thread(self._hasher.hash, password)

    async def _units(self, role: UserRole, units: Sequence[str]) -> tuple[str, ...]:
        levels = UNIT_LEVELS[role]
        codes = tuple(dict.fromkeys(u.strip() for u in units if u.strip()))
        if not levels:
            if codes:
                raise AccessError("unit_not_allowed", f"a {role} has no units", role=role)
            return ()
        if not codes:
            raise AccessError("unit_needed", f"a {role} needs a unit (--unit)", role=role)
        if role in ("township_officer", "secretary") and len(codes) != 1:
            raise AccessError("one_unit", f"a {role} has exactly one unit", role=role)
        found = {u.code: u for u in await self._store.grid.units_by_code(codes)}
        for code in codes:
            unit = found.get(code)
            if unit is None:
                raise AccessError("no_such_unit", f"no grid unit {code}", unit=code)
            if unit.level not in levels:
                raise AccessError(
                    "wrong_level",
                    f"unit {code} is a {unit.level}; a {role} needs a {' or '.join(levels)}",
                    unit=code,
                    role=role,
                    level=unit.level,
                    needs=",".join(levels),
                )
        return codes

    async def _contact(self, role: UserRole, text: str | None) -> int | None:
        if text is None or not text.strip():
            if role == "family":
                raise AccessError("bad_contact", "a family user needs their family contact")
            return None
        found = match_contacts(await self._store.grid.contacts(), text)
        if len(found) != 1:
            raise AccessError("bad_contact", f"contact {text!r}: {len(found)} match", contact=text)
        contact = found[0]
        wanted = (
            ("family",) if role == "family" else ("installer",) if role == "installer" else None
        )
        if wanted is not None and contact.role not in wanted:
            raise AccessError(
                "bad_contact",
                f"contact {contact.id} is a {contact.role}; a {role} user needs a {wanted[0]}",
                contact=text,
            )
        if role in _RESPONDER_ROLES and contact.role in ("family", "installer"):
            raise AccessError(
                "bad_contact",
                f"contact {contact.id} is a {contact.role}, not a responder",
                contact=text,
            )
        return contact.id

    async def add_user(
        self,
        login: str,
        name: str,
        role: UserRole,
        password: str | None,
        units: Sequence[str],
        contact: str | None,
        actor: str,
    ) -> User:
        """Add a user; AccessError (nothing written) for a bad login, unit, contact or password."""
        if LOGIN.fullmatch(login) is None:
            raise AccessError(
                "bad_login", f"login {login!r} is not 2-64 letters or digits", login=login
            )
        name = name.strip() or login
        if len(name) > NAME_MAX_CHARS:
            raise AccessError("bad_name", f"the name is longer than {NAME_MAX_CHARS} characters")
        codes = await self._units(role, units)
        contact_id = await self._contact(role, contact)
        if await self._store.access.user_by_login(login) is not None:
            raise AccessError("login_taken", f"login {login!r} is taken", login=login)
        hashed = None if password is None else await self._hash(password)
        now = self._clock.now()
        user = User(0, login, name, role, codes, contact_id, now, has_password=hashed is not None)
        try:
            async with self._store.transaction() as uow:
                user_id = await uow.access.add_user(user, hashed)
                await uow.access.audit(
                    AuditEntry(now, None, actor, "user.add", login, f"role={role}")
                )
        except ConflictError:
            raise AccessError("login_taken", f"login {login!r} is taken", login=login) from None
        return replace(user, id=user_id)

    async def user(self, login: str) -> User:
        """The user with this login; AccessError("no_such_user") if none."""
        found = await self._store.access.user_by_login(login)
        if found is None:
            raise AccessError("no_such_user", f"no user {login!r}", login=login)
        return found[0]

    async def set_password(self, login: str, password: str, actor: str) -> User:
        """Set a new password; the user's sessions end (they sign in again)."""
        user = await self.user(login)
        hashed = await self._hash(password)
        now = self._clock.now()
        async with self._store.transaction() as uow:
            await uow.access.set_password(user.id, hashed, now)
            await uow.access.end_sessions_of(user.id, now)
            await uow.access.audit(AuditEntry(now, None, actor, "user.passwd", login))
        return replace(user, has_password=True)

    async def issue_token(
        self, login: str, name: str, expires_s: float | None, actor: str
    ) -> tuple[ApiToken, str]:
        """A new API token for the user, and its secret (shown once, never stored)."""
        user = await self.user(login)
        name = name.strip()
        if not name or len(name) > TOKEN_NAME_MAX_CHARS:
            raise AccessError("bad_name", f"a token name is 1-{TOKEN_NAME_MAX_CHARS} characters")
        if expires_s is not None and expires_s <= 0:
            raise AccessError("bad_input", "a token's lifetime must be positive")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock.now()
        expires_at = None if expires_s is None else now + expires_s
        async with self._store.transaction() as uow:
            token_id = await uow.access.add_token(user.id, name, digest(secret), now, expires_at)
            await uow.access.audit(AuditEntry(now, None, actor, "user.token", login, name))
        return ApiToken(token_id, user.id, name, now, expires_at), secret

    async def users(self) -> list[User]:
        """Every user, by id."""
        return await self._store.access.users()

    async def tokens(self, login: str) -> list[ApiToken]:
        """The user's API tokens (never their secrets)."""
        return await self._store.access.tokens_of((await self.user(login)).id)

    async def set_disabled(self, login: str, disabled: bool, actor: str) -> User:
        """Disable a user (their sessions end, their tokens are refused) or enable them again."""
        user = await self.user(login)
        now = self._clock.now()
        async with self._store.transaction() as uow:
            await uow.access.set_disabled(user.id, now if disabled else None)
            if disabled:
                await uow.access.end_sessions_of(user.id, now)
            await uow.access.audit(
                AuditEntry(now, None, actor, "user.disable" if disabled else "user.enable", login)
            )
        return replace(user, disabled_at=now if disabled else None)

    # -- sign-in ------------------------------------------------------------------------

    def _refuse(self, outcome: str) -> None:
        self._on_signin(outcome)

    async def _verify(self, password_hash: str | None, password: str) -> bool:
        if password_hash is None:
            # Spend the same time as a real check, so logins cannot be told apart by it.
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(self._hasher.hash, secrets.token_hex(16))
            password_hash = self._dummy_hash
            password = "\0" + password
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def sign_in(self, login: str, password: str, client: str) -> SignedIn:
        """A new session for a right login and password.

        AccessError: bad_credentials (either was wrong: which is not said), disabled,
        rate_limited (params: retry_after_s).
        """
        now = self._clock.now()
        key = login.strip().lower()
        wait = max(self._by_login.blocked_for(key, now), self._by_address.blocked_for(client, now))
        if wait > 0:
            self._refuse("rate_limited")  # counted, not audited: a flood writes nothing
            raise AccessError(
                "rate_limited",
                f"too many failed sign-ins; try again in {int(wait) + 1} s",
                retry_after_s=str(int(wait) + 1),
            )
        found = await self._store.access.user_by_login(login) if LOGIN.fullmatch(login) else None
        user, password_hash = found if found is not None else (None, None)
        good = await self._verify(password_hash, password)
        if user is None or not good:
            self._by_login.add(key, now)
            self._by_address.add(client, now)
            self._refuse("bad_credentials")
            await self._audit_signin(user, login, client, "bad_credentials")
            raise AccessError("bad_credentials", "wrong login or password")
        if not user.enabled:
            self._refuse("disabled")
            await self._audit_signin(user, login, client, "disabled")
            raise AccessError("disabled", f"user {login!r} is disabled", login=login)
        self._by_login.forget(key)
        secret = secrets.token_urlsafe(32)
        expires_at = now + self._settings.session_ttl_s
        async with self._store.transaction() as uow:
            await uow.access.add_session(
                digest(secret), SessionRecord(user.id, now, expires_at, client[:200])
            )
            await uow.access.audit(
                AuditEntry(now, user.id, user.login, "sign_in", user.login, client=client[:200])
            )
        self._on_signin("ok")
        return SignedIn(secret, await self.principal(user, "session"), expires_at)

    async def _audit_signin(self, user: User | None, login: str, client: str, outcome: str) -> None:
        async with self._store.transaction() as uow:
            await uow.access.audit(
                AuditEntry(
                    self._clock.now(),
                    user.id if user is not None else None,
                    login[:64],
                    "sign_in",
                    login[:64],
                    client=client[:200],
                    outcome=outcome,
                )
            )

    async def sign_out(self, secret: str, principal: Principal, client: str) -> None:
        """End the session with this secret."""
        now = self._clock.now()
        async with self._store.transaction() as uow:
            await uow.access.end_session(digest(secret), now)
            await uow.access.audit(
                AuditEntry(now, principal.user_id, principal.login, "sign_out", client=client)
            )

    async def from_session(self, secret: str) -> Principal:
        """Who a session secret belongs to; AccessError not_signed_in or session_expired."""
        session = await self._store.access.session(digest(secret))
        if session is None or session.ended_at is not None:
            raise AccessError("not_signed_in", "not signed in")
        if session.expires_at <= self._clock.now():
            raise AccessError("session_expired", "the sign-in has expired")
        return await self._principal_of(session.user_id, "session")

    async def from_token(self, secret: str) -> Principal:
        """Who an API token belongs to; AccessError bad_token if it is unknown, revoked or old."""
        token = await self._store.access.token(digest(secret))
        if token is None or token.revoked_at is not None:
            raise AccessError("bad_token", "unknown or revoked API token")
        if token.expires_at is not None and token.expires_at <= self._clock.now():
            raise AccessError("bad_token", "the API token has expired")
        return await self._principal_of(token.user_id, "token")

    async def _principal_of(self, user_id: int, via: AuthVia) -> Principal:
        user = await self._store.access.user(user_id)
        if user is None:
            raise AccessError("not_signed_in", "not signed in")
        if not user.enabled:
            raise AccessError("disabled", f"user {user.login!r} is disabled", login=user.login)
        return await self.principal(user, via)

    async def principal(self, user: User, via: AuthVia) -> Principal:
        """The user's scope as of now (units below theirs; a family member's households)."""
        units: frozenset[str] | None = None
        households: frozenset[str] | None = None
        if user.role == "family":
            codes = (
                await self._store.access.family_households(user.contact_id)
                if user.contact_id is not None
                else []
            )
            households = frozenset(codes)
            units = frozenset()
        elif user.role != "administrator":
            units = descendants(await self._store.grid.units(), user.units)
        return Principal(
            user_id=user.id,
            login=user.login,
            name=user.name,
            role=user.role,
            roots=user.units,
            units=units,
            households=households,
            contact_id=user.contact_id,
            via=via,
        )

    async def audit(
        self,
        principal: Principal,
        action: str,
        target: str = "",
        detail: str = "",
        client: str = "",
        outcome: str = "ok",
    ) -> None:
        """Record a write (or a refused one) with who made it."""
        async with self._store.transaction() as uow:
            await uow.access.audit(
                AuditEntry(
                    self._clock.now(),
                    principal.user_id,
                    principal.login,
                    action,
                    target,
                    detail[:500],
                    client[:200],
                    outcome,
                )
            )

    async def audit_log(self, limit: int, user_id: int | None = None) -> list[AuditEntry]:
        """The newest audit lines, newest first."""
        return await self._store.access.audit_log(limit, user_id)
