"""CSV import: row-level errors, nothing half-imported, and 10,000 households at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.grid_import import ImportRejectedError
from gateway.service import GatewayService
from tests.gateway.grid import CONTACTS_CSV, HOUSEHOLDS_CSV, UNITS_CSV
from tests.gateway.support import gateway_settings


async def test_bad_rows_are_all_reported_and_nothing_is_written(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        bad = HOUSEHOLDS_CSV + (
            "341504-101-001-0003,341504-101-001,村口,王五,12ab,是,否,0,0,,,,\n"
            "341504-101-001-0004,341504-101-001-1-3-1,村口,赵六,,maybe,0,0,0,,,b1da00000000000x,00\n"
            "341504-101-001-0001,341504-101-001-1-3-1,重复,张三,,0,0,0,0,,,,\n"
            ",341504-101-001-1-3-1,,,,0,0,0,0,,,,\n"
        )
        with pytest.raises(ImportRejectedError) as rejected:
            await gw.import_csv("households", bad)
        errors = {(e.row, e.column) for e in rejected.value.errors}
        assert (4, "neighbourhood_code") in errors  # a village is not a neighbourhood
        assert (4, "resident_phone") in errors
        assert (5, "lives_alone") in errors
        assert (5, "device_id") in errors
        assert (6, "household_code") in errors  # twice in one file
        assert (7, "household_code") in errors  # required
        assert (7, "resident_name") in errors
        assert "nothing imported" in str(rejected.value)
        # The good rows of the file were not written either.
        assert await gw.store.get_device("b1da000000000001") is None
        async with gw.store.transaction() as uow:
            assert await uow.existing_keys("households", ["341504-101-001-0001"]) == {}


async def test_units_must_sit_in_the_level_above(tmp_path: Path, clock: ManualClock) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        text = (
            "code,level,name,parent_code\n"
            "C,county,县,\nV,village,村,C\nX,street,街,C\nT,county,镇,C\n"
        )
        with pytest.raises(ImportRejectedError) as rejected:
            await gw.import_csv("units", text)
        messages = [str(e) for e in rejected.value.errors]
        assert any("a village must sit in a township, not a county" in m for m in messages)
        assert any("row 4, level" in m for m in messages)
        assert any("a county has no parent" in m for m in messages)


async def test_contacts_need_a_known_unit_or_household(tmp_path: Path, clock: ManualClock) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        await gw.import_csv("households", HOUSEHOLDS_CSV)
        bad = CONTACTS_CSV + (
            "某人,mayor,341504,,13800000009,,,\n"
            "某人,family,341504,,13800000009,,,\n"
            "某人,grid_worker,nowhere,,13800000009,,25:00,\n"
        )
        with pytest.raises(ImportRejectedError) as rejected:
            await gw.import_csv("contacts", bad)
        errors = {(e.row, e.column) for e in rejected.value.errors}
        assert errors == {
            (10, "role"),
            (11, "household_code"),
            (12, "unit_code"),
            (12, "available_from"),
        }
        result = await gw.import_csv("contacts", CONTACTS_CSV)
        assert result.rows == 8


async def test_ten_thousand_households_with_their_boxes(tmp_path: Path, clock: ManualClock) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        header = HOUSEHOLDS_CSV.splitlines()[0]
        rows = [
            f"H{i:05d},341504-101-001-1-3-1,{i}号,居民{i},139{i:08d},1,0,0,1,,,"
            f"{0xB1DA100000000000 + i:016x},{i:032x}"
            for i in range(10_000)
        ]
        started = time.perf_counter()
        result = await gw.import_csv("households", "\n".join([header, *rows]) + "\n")
        elapsed = time.perf_counter() - started
        print(f"imported 10,000 households and boxes in {elapsed:.2f} s")
        assert (result.rows, result.devices) == (10_000, 10_000)
        device = await gw.store.get_device(f"{0xB1DA100000000000 + 42:016x}")
        assert device is not None
        assert device.household_code == "H00042"
        assert device.key == bytes.fromhex(f"{42:032x}")
