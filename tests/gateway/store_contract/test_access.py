"""Users, sessions, tokens, the audit log, and pages of households scoped to units."""

from __future__ import annotations

import pytest

from gateway.domain.access import AuditEntry, SessionRecord, User
from gateway.errors import ConflictError
from gateway.services.grid_import import GridImporter
from gateway.store.ports import HouseholdQuery, Store
from tests.gateway.grid import HOUSEHOLD, households_csv
from tests.gateway.store_contract.contract import T0, _importer, seed_grid

VILLAGE = "341504-101-001"
NEIGHBOURHOOD = "341504-101-001-1-3-1"


def _user(login: str, units: tuple[str, ...] = (VILLAGE,), contact: int | None = 1) -> User:
    return User(0, login, login.title(), "secretary", units, contact, T0)


async def test_users_with_units_sessions_and_tokens(store: Store) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        li = await uow.access.add_user(_user("li"), "hash-1")
        admin = await uow.access.add_user(
            User(0, "admin", "Admin", "administrator", (), None, T0), None
        )
        await uow.access.add_session("s1", SessionRecord(li, T0, T0 + 60, "127.0.0.1"))
        token = await uow.access.add_token(admin, "monitor", "t1", T0, None)
    found = await store.access.user_by_login("LI")
    assert found is not None
    user, digest = found
    assert (user.id, user.units, user.contact_id, digest) == (li, (VILLAGE,), 1, "hash-1")
    assert user.has_password
    assert [u.login for u in await store.access.users()] == ["li", "admin"]
    session = await store.access.session("s1")
    assert session == SessionRecord(li, T0, T0 + 60, "127.0.0.1")
    stored = await store.access.token("t1")
    assert stored is not None
    assert (stored.id, stored.user_id, stored.name) == (token, admin, "monitor")
    assert await store.access.session("nope") is None

    async with store.transaction() as uow:
        await uow.access.set_password(li, "hash-2", T0 + 1)
        assert await uow.access.end_sessions_of(li, T0 + 1) == 1
        assert await uow.access.revoke_tokens_of(admin, T0 + 2) == 1
        await uow.access.set_disabled(li, T0 + 3)
    again = await store.access.user_by_login("li")
    assert again is not None
    assert again[1] == "hash-2"
    assert again[0].disabled_at == T0 + 3
    ended = await store.access.session("s1")
    assert ended is not None
    assert ended.ended_at == T0 + 1
    revoked = await store.access.tokens_of(admin)
    assert [t.revoked_at for t in revoked] == [T0 + 2]


async def test_a_login_is_unique_in_any_case_and_units_must_exist(store: Store) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        await uow.access.add_user(_user("li"), None)
    with pytest.raises(ConflictError):
        async with store.transaction() as uow:
            await uow.access.add_user(_user("LI"), None)
    with pytest.raises(ConflictError):
        async with store.transaction() as uow:
            await uow.access.add_user(_user("wang", ("no-such-unit",)), None)
    assert [u.login for u in await store.access.users()] == ["li"]


async def test_the_audit_log_newest_first(store: Store) -> None:
    async with store.transaction() as uow:
        for n in range(3):
            await uow.access.audit(AuditEntry(T0 + n, None, "cli", f"action{n}", "x"))
    log = await store.access.audit_log(2)
    assert [e.action for e in log] == ["action2", "action1"]
    assert await store.access.audit_log(5, user_id=7) == []


async def test_family_households_are_found_by_the_family_contacts_phone(store: Store) -> None:
    await seed_grid(store)
    daughter = next(c for c in await store.grid.contacts() if c.role == "family")
    assert await store.access.family_households(daughter.id) == [HOUSEHOLD]
    secretary = next(c for c in await store.grid.contacts() if c.role == "village_secretary")
    assert await store.access.family_households(secretary.id) == []


async def test_pages_of_households_under_units_by_code(store: Store) -> None:
    await seed_grid(store)
    importer: GridImporter = _importer(store)
    result = await importer.import_csv("households", households_csv(1200))
    assert result.rejected == 0, result.errors
    directory = store.directory
    everyone = HouseholdQuery(limit=500)
    assert await directory.count_households(everyone) == 1202
    seen: list[str] = []
    after = None
    while True:
        page = await directory.households(HouseholdQuery(roots=(VILLAGE,), after=after, limit=500))
        seen += [e.household.code for e in page]
        if len(page) < 500:
            break
        after = page[-1].household.code
    assert len(seen) == 1202
    assert seen == sorted(set(seen))
    outside = HouseholdQuery(roots=("341504-101-002",))
    assert await directory.households(outside) == []
    assert await directory.count_households(outside) == 0
    named = await directory.households(HouseholdQuery(roots=(VILLAGE,), text="居民1199"))
    assert [e.household.code for e in named] == ["G001199"]
    assert named[0].residents[0].name == "居民1199"
    assert await directory.count_households(HouseholdQuery(text="100%")) == 0
    by_unit = HouseholdQuery(unit=NEIGHBOURHOOD, households=(HOUSEHOLD,))
    assert [e.household.code for e in await directory.households(by_unit)] == [HOUSEHOLD]
    not_alone = HouseholdQuery(lives_alone=False)
    assert await directory.count_households(not_alone) == 0
