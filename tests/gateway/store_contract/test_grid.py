"""The grid as the domain reads it: a household's place and who answers for it."""

from __future__ import annotations

from gateway.domain.grid import ContactRow, HouseholdInfo, Role
from gateway.store.ports import Store
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import (
    by_id,
    contact_ids,
    import_contacts,
    seed_grid,
)

NEIGHBOURHOOD = "341504-101-001-1-3-1"
GROUP = "341504-101-001-1-3"
AREA = "341504-101-001-1"
VILLAGE = "341504-101-001"
TOWNSHIP = "341504-101"
COUNTY = "341504"
CHAIN = (NEIGHBOURHOOD, GROUP, AREA, VILLAGE, TOWNSHIP, COUNTY)


async def _info(store: Store, code: str) -> HouseholdInfo | None:
    async with store.transaction() as uow:
        return await uow.grid.household_info(code)


async def test_household_info_builds_the_unit_chain_up_to_the_county(
    store: Store,
) -> None:
    await seed_grid(store)
    info = await _info(store, HOUSEHOLD)
    assert info is not None
    assert info.code == HOUSEHOLD
    assert info.address == "桥元村三组12号"
    assert info.unit_chain == CHAIN
    assert [info.unit_levels[c] for c in info.unit_chain] == [
        "neighbourhood",
        "group",
        "area",
        "village",
        "township",
        "county",
    ]
    assert [info.unit_names[c] for c in info.unit_chain] == [
        "一邻",
        "三组",
        "一片",
        "桥元村",
        "三元镇",
        "叶集区",
    ]
    assert info.place == "桥元村三组12号"  # the imported address
    assert info.unit_at("village") == VILLAGE


async def test_household_info_carries_the_first_resident_and_their_consent(
    store: Store,
) -> None:
    await seed_grid(store)
    consenting = await _info(store, HOUSEHOLD)
    assert consenting is not None
    assert (
        consenting.resident_name,
        consenting.resident_phone,
        consenting.consent,
        consenting.key_safe_code,
        consenting.health_notes,
    ) == ("张桂兰", "13912345678", True, "4321", "高血压")
    other = await _info(store, "341504-101-001-0002")
    assert other is not None
    assert (other.resident_name, other.resident_phone, other.consent, other.key_safe_code) == (
        "李德福",
        None,
        False,
        None,
    )
    assert other.unit_chain == CHAIN


async def test_an_unknown_household_has_no_info(store: Store) -> None:
    await seed_grid(store)
    assert await _info(store, "341504-101-001-9999") is None


async def test_the_import_registers_the_households_box(store: Store) -> None:
    await seed_grid(store)
    box = await store.devices.get(BOX_ID)
    assert box is not None
    assert (box.kind, box.household_code) == ("call_box", HOUSEHOLD)


async def test_contacts_for_role_takes_the_nearest_unit_that_has_any(
    store: Store,
) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        chief = await uow.grid.unit_contacts(CHAIN, "neighbour_chief")
        secretary = await uow.grid.unit_contacts(CHAIN, "village_secretary")
        worker = await uow.grid.unit_contacts(CHAIN, "grid_worker")
        duty = await uow.grid.unit_contacts(CHAIN, "township_duty")
    assert [c.id for c in chief] == [ids["钱邻长"]]
    assert [(c.id, c.unit_code) for c in secretary] == [(ids["李书记"], VILLAGE)]
    assert [(c.name, c.available_from, c.available_to) for c in worker] == [
        ("赵网格员", "07:00", "21:00")
    ]
    assert [c.phone for c in duty] == ["13800000007"]
    # A nearer unit with its own secretary wins over the village; all of that unit's are given.
    await import_contacts(
        store,
        [
            f"刘代书记,village_secretary,{GROUP},,13800000011,zh-CN,,",
            f"陈代书记,village_secretary,{GROUP},,13800000012,zh-CN,,",
        ],
    )
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        nearer = await uow.grid.unit_contacts(CHAIN, "village_secretary")
        from_village = await uow.grid.unit_contacts(CHAIN[3:], "village_secretary")
    assert sorted(c.id for c in nearer) == sorted([ids["刘代书记"], ids["陈代书记"]])
    assert [c.id for c in from_village] == [ids["李书记"]]


async def test_contacts_for_every_role_in_one_read_are_those_of_each_role(store: Store) -> None:
    await seed_grid(store)
    await import_contacts(store, [f"刘代书记,village_secretary,{GROUP},,13800000011,zh-CN,,"])
    roles: tuple[Role, ...] = (
        "neighbour_chief",
        "village_secretary",
        "grid_worker",
        "township_duty",
        "family",
    )
    async with store.transaction() as uow:
        for chain in (CHAIN, CHAIN[3:], CHAIN[:2], ()):
            together = await uow.grid.unit_contacts_by_role(chain, roles)
            one_by_one = {role: await uow.grid.unit_contacts(chain, role) for role in roles}
            assert together == one_by_one, chain
        assert await uow.grid.unit_contacts_by_role(CHAIN, ()) == {}
    assert [c.name for c in together["village_secretary"]] == []  # the empty chain
    async with store.transaction() as uow:
        full = await uow.grid.unit_contacts_by_role(CHAIN, roles)
    assert [c.name for c in full["village_secretary"]] == ["刘代书记"]  # the nearer unit's


async def test_contacts_for_role_is_empty_when_no_unit_has_one(store: Store) -> None:
    await seed_grid(store)
    async with store.transaction() as uow:
        assert await uow.grid.unit_contacts(CHAIN[:2], "village_secretary") == []
        assert await uow.grid.unit_contacts((), "village_secretary") == []
        # Family members belong to a household, never to a unit.
        assert await uow.grid.unit_contacts(CHAIN, "family") == []


async def test_contacts_by_id_gives_exactly_the_known_ones(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    wanted = [ids["张小红"], ids["吴值班"], 10_000]
    async with store.transaction() as uow:
        found = by_id(await uow.grid.contacts_by_id(wanted))
        assert await uow.grid.contacts_by_id([]) == []
    assert sorted(found) == sorted([ids["张小红"], ids["吴值班"]])
    daughter = found[ids["张小红"]]
    assert (
        daughter.role,
        daughter.phone,
        daughter.language,
        daughter.household_code,
        daughter.unit_code,
        daughter.bad_number,
    ) == ("family", "+447700900123", "en", HOUSEHOLD, None, False)


async def test_a_bad_number_is_flagged_on_the_contact(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        await uow.grid.set_bad_number(ids["孙组长"])
    async with store.transaction() as uow:
        flagged = by_id(await uow.grid.contacts_by_id([ids["孙组长"], ids["周片长"]]))
    assert flagged[ids["孙组长"]].bad_number
    assert not flagged[ids["周片长"]].bad_number


async def test_household_contacts_are_its_family_with_what_they_chose(store: Store) -> None:
    await seed_grid(store)
    ids = await contact_ids(store)
    async with store.transaction() as uow:
        await uow.grid.insert(
            [
                ContactRow("张大伟", "family", "13700000001", household_code=HOUSEHOLD),
                ContactRow(
                    "张小明",
                    "family",
                    "13700000002",
                    household_code=HOUSEHOLD,
                    notify=("accepted", "resolved"),
                ),
                ContactRow("张无声", "family", "13700000003", household_code=HOUSEHOLD, notify=()),
            ]
        )
    async with store.transaction() as uow:
        family = await uow.grid.household_contacts(HOUSEHOLD)
        assert await uow.grid.household_contacts("no-such-household") == []
    assert [(c.name, c.notify) for c in family] == [
        ("张小红", None),  # as imported without a choice: the role's defaults
        ("张大伟", None),
        ("张小明", ("accepted", "resolved")),
        ("张无声", ()),  # told nothing
    ]
    assert family[0].id == ids["张小红"]
