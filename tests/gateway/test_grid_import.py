"""CSV import: a good file lands whole, a bad one not at all with every error by line; reruns
change nothing."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.domain.devices import DeviceRecord
from gateway.domain.grid import GridRow
from gateway.ingest.registry import SILENT_DEADLINE
from gateway.runtime.service import GatewayService
from gateway.services import grid_import
from gateway.services.grid_import import ImportInterruptedError, ImportRejectedError, ImportResult
from gateway.services.import_locales import en
from gateway.store.sqlite import SqliteGridWrites
from tests.gateway.grid import (
    BOX_ID,
    CONTACTS_CSV,
    HOUSEHOLD,
    HOUSEHOLDS_CSV,
    UNITS_CSV,
    household_box,
    households_csv,
)
from tests.gateway.support import gateway_settings, sample

NEIGHBOURHOOD = "341504-101-001-1-3-1"
HOUSEHOLDS_HEADER = HOUSEHOLDS_CSV.splitlines()[0]
TABLES = ("grid_units", "households", "residents", "contacts", "devices", "deadlines")


def _count(gw: GatewayService, sql: str) -> int:
    """One number from the gateway's real SQLite file, read beside the gateway."""
    with sqlite3.connect(gw.settings.database_path) as db:
        return int(db.execute(sql).fetchone()[0])


def _counts(gw: GatewayService) -> dict[str, int]:
    return {t: _count(gw, f"SELECT count(*) FROM {t}") for t in TABLES}


def _duplicates(gw: GatewayService) -> int:
    """Rows that share a natural key with another row, in any grid table."""
    return sum(
        _count(
            gw, f"SELECT count(*) FROM (SELECT 1 FROM {table} GROUP BY {key} HAVING count(*) > 1)"
        )
        for table, key in (
            ("residents", "household_code, name"),
            ("contacts", "role, coalesce(unit_code, ''), coalesce(household_code, ''), phone"),
            ("devices", "device_id"),
            ("households", "code"),
            ("grid_units", "code"),
        )
    )


def _reasons(result: ImportResult) -> dict[int, tuple[str, str]]:
    """Line -> (column, reason) of every error; one error per rejected row in these tests."""
    found = {e.line: (e.column, e.message) for e in result.errors}
    assert len(found) == len(result.errors) == result.rejected
    return found


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
async def test_a_file_with_bad_rows_is_rejected_whole_with_every_error(
    tmp_path: Path, clock: ManualClock, newline: str
) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        bad = HOUSEHOLDS_CSV + (
            "341504-101-001-0003,341504-101-001,村口,王五,12ab,是,否,0,0,,,,\n"
            f"341504-101-001-0004,{NEIGHBOURHOOD},村口,赵六,,maybe,0,0,0,,,b1da00000000000x,00\n"
            f"341504-101-001-0001,{NEIGHBOURHOOD},重复,张三,,0,0,0,0,,,,\n"
            f",{NEIGHBOURHOOD},,,,0,0,0,0,,,,\n"
        ).replace("\n", newline)  # Excel on Windows writes CRLF
        result = await gw.import_csv("households", bad)
        errors = {(e.line, e.column) for e in result.errors}
        assert errors == {
            (4, "neighbourhood_code"),  # a village is not a neighbourhood
            (4, "resident_phone"),
            (5, "lives_alone"),
            (5, "device_id"),
            (6, "household_code"),  # twice in one file
            (7, "household_code"),  # required
            (7, "resident_name"),
        }
        messages = [str(e) for e in result.errors]
        assert "line 4, neighbourhood_code: 341504-101-001 is a village, not a neighbourhood" in (
            messages
        )
        assert "line 6, household_code: this household is already on line 2" in messages
        assert "line 4, resident_phone: " + en.MESSAGES["phone_characters"] in messages
        assert "line 5, lives_alone: expected 1/0 or 是/否, got 'maybe'" in messages
        assert (result.inserted, result.rejected, result.devices, result.written) == (
            0,
            4,
            0,
            False,
        )
        assert result.error_count == len(result.errors) == 7
        # Nothing of the file was written, not even its good rows.
        assert _counts(gw)["households"] == _counts(gw)["devices"] == 0
        assert sample(gw, "bidao_import_rows_total", kind="households", outcome="rejected") == 4
        assert sample(gw, "bidao_import_files_rejected_total", kind="households") == 1

        # The good rows alone: each household with its resident and its box.
        result = await gw.import_csv("households", HOUSEHOLDS_CSV.replace("\n", newline))
        assert (result.inserted, result.rejected, result.devices) == (2, 0, 1)
        assert _count(gw, "SELECT count(*) FROM households") == 2
        assert _count(gw, "SELECT count(*) FROM residents") == 2
        device = await gw.store.devices.get(BOX_ID)
        assert device is not None
        assert device.household_code == HOUSEHOLD


async def test_units_must_sit_in_the_level_above(tmp_path: Path, clock: ManualClock) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        text = (
            "code,level,name,parent_code\n"
            "C,county,县,\n"  # line 2
            "V,village,村,C\n"  # 3: a village in a county
            "X,street,街,C\n"  # 4: no such level
            "T,county,镇,C\n"  # 5: a county with a parent
            "A,area,片,V\n"  # 6: its parent row was rejected
            "N,neighbourhood,邻,G\n"  # 7: parents may come later in the file
            "G,group,组,A2\n"  # 8
            "A2,area,片,V2\n"  # 9
            "V2,village,村,T2\n"  # 10
            "T2,township,镇,C\n"  # 11
            "C,county,县,\n"  # 12: the same code twice
            "Z,group,组,nowhere\n"  # 13
        )
        result = await gw.import_csv("units", text)
        assert _reasons(result) == {
            3: ("parent_code", "a village must sit in a township, not a county"),
            4: ("level", f"must be one of {', '.join(grid_import.LEVELS)}, got 'street'"),
            5: ("parent_code", "a county has no parent"),
            6: ("parent_code", "its parent V (line 3) is rejected"),
            12: ("code", "this unit is already on line 2"),
            13: ("parent_code", "unknown parent nowhere: not in the grid nor in this file"),
        }
        assert (result.inserted, result.updated, result.unchanged) == (0, 0, 0)
        assert _count(gw, "SELECT count(*) FROM grid_units") == 0

        good = "".join(
            line + "\n"
            for number, line in enumerate(text.splitlines(), 1)
            if number not in (3, 4, 5, 6, 12, 13)
        )
        result = await gw.import_csv("units", good)
        assert (result.inserted, result.updated, result.unchanged, result.rejected) == (6, 0, 0, 0)
        again = await gw.import_csv("units", good)
        assert (again.inserted, again.updated, again.unchanged) == (0, 0, 6)

        changed = await gw.import_csv(
            "units",
            "code,level,name,parent_code\n"
            "G,group,二组,A2\n"  # a new name: updated
            "N,group,邻,A2\n"  # another level (and parent): refused
            "V2,village,村,C\n",  # another parent: refused
        )
        assert (changed.updated, changed.rejected) == (0, 2)
        messages = [str(e) for e in changed.errors]
        assert (
            "line 3, level: N is a neighbourhood in the grid; its level is not changed by import"
            in (messages)
        )
        assert (
            "line 4, parent_code: V2 sits in T2 in the grid; moving it is not done by import"
            in (messages)
        )
        assert _count(gw, "SELECT count(*) FROM grid_units WHERE name = '二组'") == 0
        renamed = await gw.import_csv("units", "code,level,name,parent_code\nG,group,二组,A2\n")
        assert (renamed.updated, renamed.rejected) == (1, 0)
        assert _count(gw, "SELECT count(*) FROM grid_units WHERE code = 'G' AND name = '二组'") == 1
        assert (
            _count(gw, "SELECT count(*) FROM grid_units WHERE code = 'N' AND level = 'group'") == 0
        )


async def test_contacts_need_a_known_unit_or_household_and_reruns_do_not_duplicate(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        await gw.import_csv("households", HOUSEHOLDS_CSV)
        bad = CONTACTS_CSV + (
            "某人,mayor,341504,,13800000009,,,\n"
            "某人,family,341504,,13800000009,,,\n"
            "某人,grid_worker,nowhere,,13800000009,,25:00,\n"
            "李书记,village_secretary,341504-101-001,,13800000001,zh-CN,,\n"
        )
        result = await gw.import_csv("contacts", bad)
        errors = {(e.line, e.column) for e in result.errors}
        assert errors == {
            (10, "role"),
            (11, "household_code"),
            (12, "unit_code"),
            (12, "available_from"),
            (13, "phone"),  # the same contact as line 2
        }
        assert (result.inserted, result.rejected) == (0, 4)
        assert _count(gw, "SELECT count(*) FROM contacts") == 0

        first = await gw.import_csv("contacts", CONTACTS_CSV)
        assert (first.rows, first.inserted, first.rejected) == (8, 8, 0)
        again = await gw.import_csv("contacts", CONTACTS_CSV)
        assert (again.rows, again.inserted, again.updated, again.unchanged) == (8, 0, 0, 8)
        assert _count(gw, "SELECT count(*) FROM contacts") == 8

        hours = CONTACTS_CSV.replace(
            "13800000003,zh-CN,07:00,21:00", "13800000003,zh-CN,08:00,20:00"
        )
        changed = await gw.import_csv("contacts", hours)
        assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 7)
        assert _count(gw, "SELECT count(*) FROM contacts WHERE available_from = '08:00'") == 1
        assert _count(gw, "SELECT count(*) FROM contacts") == 8
        assert _duplicates(gw) == 0


async def test_a_box_key_or_household_is_not_changed_by_import(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        await gw.import_csv("households", HOUSEHOLDS_CSV)
        lines = HOUSEHOLDS_CSV.splitlines()
        other_key = HOUSEHOLDS_CSV.replace(bytes(range(16)).hex(), "ff" * 16)
        moved = "\n".join(
            [
                lines[0],
                lines[1].replace(f",{BOX_ID},{bytes(range(16)).hex()}", ",,"),
                lines[2].removesuffix(",,") + f",{BOX_ID},{bytes(range(16)).hex()}",
            ]
        )
        second_box = HOUSEHOLDS_CSV.replace(BOX_ID, "b1da0000000000ff")
        for text, line, column, reason in (
            (
                other_key,
                2,
                "device_key",
                (
                    f"differs from the registered key of {BOX_ID}; "
                    "keys are rotated by provisioning, not by import"
                ),
            ),
            (
                moved,
                3,
                "device_id",
                (
                    f"call box {BOX_ID} is registered to household {HOUSEHOLD}; "
                    "a box is moved by provisioning, not by import"
                ),
            ),
            (
                second_box,
                2,
                "device_id",
                (
                    f"household {HOUSEHOLD} already has call box {BOX_ID}; "
                    "a box is replaced by provisioning, not by import"
                ),
            ),
        ):
            result = await gw.import_csv("households", text)
            assert _reasons(result) == {line: (column, reason)}
            assert result.devices == 0
        device = await gw.store.devices.get(BOX_ID)
        assert device is not None
        assert (device.household_code, device.key) == (HOUSEHOLD, bytes(range(16)))
        assert _count(gw, "SELECT count(*) FROM devices") == 1


def _ten_thousand(
    bad_rows: bool = True,
) -> tuple[str, dict[int, tuple[str, str]], dict[int, int]]:
    """10,000 household rows, a few of them bad, and two quoted fields spanning lines.

    Returns the file, line -> (column, reason) of the bad rows, and row number -> line.
    Without `bad_rows`, the same file with those rows good.
    """
    bad: dict[int, str] = {}
    records: list[str] = []
    for i in range(10_000):
        address = '"桥元村\n三组\n5000号"' if i == 5000 else f"{i}号"
        notes = '"高血压\n糖尿病"' if i == 3 else ""
        code, unit, phone, alone, name = f"H{i:05d}", NEIGHBOURHOOD, f"139{i:08d}", "1", f"居民{i}"
        device, key = f"{0xB1DA100000000000 + i:016x}", f"{i:032x}"
        extra = ""
        if not bad_rows:
            pass
        elif i == 17:
            phone = bad[i] = "12ab"
        elif i == 1234:
            unit = bad[i] = "341504-101-001"
        elif i == 2500:
            alone = bad[i] = "maybe"
        elif i == 4000:
            code = bad[i] = "H00010"
        elif i == 5001:
            key = bad[i] = "abcd"
        elif i == 6000:
            device = bad[i] = f"{0xB1DA100000000000 + 42:016x}"
        elif i == 7777:
            name = bad[i] = ""
        elif i == 8000:
            extra = bad[i] = ",surplus"
        elif i == 9999:
            unit = bad[i] = "nowhere-1"
        records.append(
            f"{code},{unit},{address},{name},{phone},{alone},0,0,1,,{notes},{device},{key}{extra}"
        )
    line_of: dict[int, int] = {}
    line = 2
    for i, record in enumerate(records):
        line_of[i] = line
        line += record.count("\n") + 1
    # The quoted notes of row 3 take two lines: row 17 sits on line 2 + 17 + 1.
    assert line_of[17] == 20
    assert line_of[5001] == 5001 + 2 + 1 + 2  # after row 5000's three-line address
    reasons = {
        17: ("resident_phone", en.MESSAGES["phone_characters"]),
        1234: ("neighbourhood_code", "341504-101-001 is a village, not a neighbourhood"),
        2500: ("lives_alone", "expected 1/0 or 是/否, got 'maybe'"),
        4000: ("household_code", f"this household is already on line {line_of[10]}"),
        5001: ("device_key", "must be 32 hex digits"),
        6000: ("device_id", f"this call box is already on line {line_of[42]}"),
        7777: ("resident_name", "required"),
        8000: ("-", "14 fields, but the header has 13"),
        9999: ("neighbourhood_code", "unknown unit nowhere-1: import the units first"),
    }
    assert set(reasons) == set(bad) or not bad_rows
    text = "\n".join([HOUSEHOLDS_HEADER, *records]) + "\n"
    return text, {line_of[i]: reason for i, reason in reasons.items()}, line_of


async def test_ten_thousand_households_with_a_few_bad_rows_and_a_rerun(
    tmp_path: Path, clock: ManualClock
) -> None:
    text, reasons, line_of = _ten_thousand()
    good = 10_000 - len(reasons)
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        started = time.perf_counter()
        result = await gw.import_csv("households", text)
        elapsed = time.perf_counter() - started
        print(f"checked 10,000 households ({good} good), wrote none, in {elapsed:.2f} s")
        assert _reasons(result) == reasons
        assert (result.rows, result.inserted, result.rejected) == (10_000, 0, len(reasons))
        assert _counts(gw)["households"] == _counts(gw)["devices"] == 0
        assert sample(gw, "bidao_import_rows_total", kind="households", outcome="rejected") == 9

        text, _, line_of = _ten_thousand(bad_rows=False)
        good = 10_000
        started = time.perf_counter()
        result = await gw.import_csv("households", text)
        elapsed = time.perf_counter() - started
        print(f"imported 10,000 households and their boxes in {elapsed:.2f} s")
        assert (result.rows, result.inserted, result.updated, result.unchanged) == (
            10_000,
            good,
            0,
            0,
        )
        assert (result.rejected, result.devices) == (0, good)
        counts = _counts(gw)
        assert (counts["households"], counts["residents"], counts["devices"]) == (good,) * 3
        assert (
            _count(gw, f"SELECT count(*) FROM deadlines WHERE kind = '{SILENT_DEADLINE}'") == good
        )
        device = await gw.store.devices.get(f"{0xB1DA100000000000 + 42:016x}")
        assert device is not None
        assert (device.household_code, device.key) == ("H00042", bytes.fromhex(f"{42:032x}"))
        assert (
            _count(gw, "SELECT count(*) FROM households WHERE address = '桥元村 三组 5000号'") == 1
        )
        assert (
            _count(gw, "SELECT count(*) FROM residents WHERE health_notes = '高血压 糖尿病'") == 1
        )
        assert _count(gw, "SELECT phone FROM residents WHERE household_code = 'H00017'") == (
            13900000017
        )
        assert sample(gw, "bidao_import_rows_total", kind="households", outcome="inserted") == good
        due = _count(
            gw, "SELECT CAST(due_at AS INTEGER) FROM deadlines WHERE subject = 'b1da100000000000'"
        )

        await clock.advance(60.0)
        started = time.perf_counter()
        again = await gw.import_csv("households", text)
        print(f"reran it in {time.perf_counter() - started:.2f} s")
        assert (again.inserted, again.updated, again.unchanged, again.devices) == (0, 0, good, 0)
        assert again.errors == result.errors == ()
        assert _counts(gw) == counts
        assert _duplicates(gw) == 0
        # Only a new box gets a silence deadline: the rerun left the armed ones alone.
        assert (
            _count(
                gw,
                "SELECT CAST(due_at AS INTEGER) FROM deadlines WHERE subject = 'b1da100000000000'",
            )
            == due
        )
        assert sample(gw, "bidao_import_rows_total", kind="households", outcome="unchanged") == good

        # One household moves house number, another resident gets a phone of her own.
        lines = text.split("\n")
        i, j = line_of[100] - 1, line_of[200] - 1
        lines[i] = lines[i].replace(",100号,", ",100号之一,")
        lines[j] = lines[j].replace(",13900000200,", ",13700000200,")
        changed = await gw.import_csv("households", "\n".join(lines))
        assert (changed.inserted, changed.updated, changed.unchanged) == (0, 2, good - 2)
        assert _count(gw, "SELECT count(*) FROM households WHERE address = '100号之一'") == 1
        assert _count(gw, "SELECT count(*) FROM residents WHERE phone = '13700000200'") == 1
        assert _counts(gw) == counts


async def test_check_writes_nothing(tmp_path: Path, clock: ManualClock) -> None:
    text, reasons, _ = _ten_thousand()
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        before = _counts(gw)
        result = await gw.import_csv("households", text, check=True)
        assert result.check
        assert _reasons(result) == reasons
        assert (result.inserted, result.devices) == (10_000 - len(reasons),) * 2
        assert _counts(gw) == before
        assert sample(gw, "bidao_import_rows_total", kind="households", outcome="inserted") == 0
        assert sample(gw, "bidao_import_rows_total", kind="households", outcome="rejected") == 0
        assert result.summary() == (
            "checked, nothing written: 9 of 10000 households rows have errors; "
            "an import would reject the whole file"
        )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            "household_code,address\nH1,x\n",
            "line 1, neighbourhood_code: required column missing",
        ),
        (
            HOUSEHOLDS_HEADER + ",floor\n",
            "line 1, floor: unknown column for households",
        ),
        (
            HOUSEHOLDS_HEADER + ",address\n",
            "line 1, address: column appears twice",
        ),
        (
            HOUSEHOLDS_CSV.encode()  # UTF-8, then one line saved as GBK
            + f"H3,{NEIGHBOURHOOD},三组,王五,,0,0,0,0,,,,\n".encode("gbk"),
            "line 4, -: not UTF-8 text (byte 0xc8)",
        ),
        ("", "line 1, -: empty file: no header row"),
        ("\n\n", "line 1, -: empty file: no header row"),
        (
            HOUSEHOLDS_HEADER
            + "\n"
            + "".join(f"H{i},{NEIGHBOURHOOD},,某,,,,,,,,,\n" for i in range(6)),
            "line 7, -: more than 5 rows; split the file",
        ),
    ],
)
async def test_a_bad_file_is_rejected_whole(
    tmp_path: Path,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    data: str | bytes,
    message: str,
) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        monkeypatch.setattr(grid_import, "MAX_ROWS", 5)
        with pytest.raises(ImportRejectedError) as rejected:
            await gw.import_csv("households", data)
        assert message in str(rejected.value)
        assert "file rejected, nothing imported" in str(rejected.value)
        assert _count(gw, "SELECT count(*) FROM households") == 0
        assert sample(gw, "bidao_import_files_rejected_total", kind="households") == 1


async def test_an_import_commits_in_chunks_of_whole_households(
    tmp_path: Path, clock: ManualClock
) -> None:
    households, chunk = 1_000, 64
    settings = gateway_settings(tmp_path, None, grid_import={"chunk_rows": chunk})
    async with GatewayService(settings, clock) as gw:
        units = await gw.import_csv("units", UNITS_CSV)
        assert units.transactions == 1
        result = await gw.import_csv("households", households_csv(households))
        assert (result.inserted, result.devices) == (households, households)
        assert result.transactions == math.ceil(households / chunk) == 16
        assert sample(gw, "bidao_import_transactions_total", kind="households") == 16
        counts = _counts(gw)
        assert (counts["households"], counts["residents"], counts["devices"]) == (households,) * 3

        # Nothing to write, nothing committed; a check never commits.
        again = await gw.import_csv("households", households_csv(households))
        assert (again.unchanged, again.transactions) == (households, 0)
        checked = await gw.import_csv("households", households_csv(10, households), check=True)
        assert (checked.inserted, checked.transactions) == (10, 0)
        assert sample(gw, "bidao_import_transactions_total", kind="households") == 16
        assert _counts(gw) == counts


async def test_a_failed_chunk_leaves_whole_households_and_a_rerun_finishes(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    households, chunk, failing = 1_000, 64, 5
    settings = gateway_settings(tmp_path, None, grid_import={"chunk_rows": chunk})
    real_insert = SqliteGridWrites.insert
    chunks = 0

    async def insert_failing_on_a_chunk(self: SqliteGridWrites, rows: Sequence[GridRow]) -> None:
        nonlocal chunks
        chunks += 1
        if chunks == failing:
            # The chunk's households and residents are written, then its boxes fail.
            await real_insert(self, [r for r in rows if not isinstance(r, DeviceRecord)])
            raise sqlite3.OperationalError("disk I/O error")
        await real_insert(self, rows)

    text = households_csv(households)
    async with GatewayService(settings, clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        monkeypatch.setattr(SqliteGridWrites, "insert", insert_failing_on_a_chunk)
        with pytest.raises(ImportInterruptedError) as interrupted:
            await gw.import_csv("households", text)
        written = (failing - 1) * chunk
        assert interrupted.value.written == written
        assert f"interrupted after {written} of {households} rows" in str(interrupted.value)
        assert "disk I/O error" in str(interrupted.value)
        counts = _counts(gw)
        assert (counts["households"], counts["residents"], counts["devices"]) == (written,) * 3
        assert counts["deadlines"] == written
        # Every household that is in has its resident and its box.
        assert (
            _count(
                gw,
                "SELECT count(*) FROM households h"
                " JOIN residents r ON r.household_code = h.code"
                " JOIN devices d ON d.household_code = h.code",
            )
            == written
        )
        assert sample(gw, "bidao_import_rows_total", kind="households", outcome="inserted") == (
            written
        )

        monkeypatch.setattr(SqliteGridWrites, "insert", real_insert)
        rerun = await gw.import_csv("households", text)
        assert (rerun.inserted, rerun.unchanged, rerun.rejected) == (
            households - written,
            written,
            0,
        )
        assert rerun.devices == households - written
        counts = _counts(gw)
        assert (counts["households"], counts["residents"], counts["devices"]) == (households,) * 3
        assert counts["deadlines"] == households
        assert _duplicates(gw) == 0
        last_id, last_key = household_box(households - 1)
        device = await gw.store.devices.get(last_id)
        assert device is not None
        assert (device.household_code, device.key) == (f"G{households - 1:06d}", last_key)


async def test_a_units_file_in_chunks_writes_parents_first(
    tmp_path: Path, clock: ManualClock
) -> None:
    # Children listed before their parents, over more chunks than there are levels.
    lines = UNITS_CSV.splitlines()
    extra = [f"341504-101-001-1-3-{i},neighbourhood,{i}邻,341504-101-001-1-3" for i in range(2, 12)]
    text = "\n".join([lines[0], *extra, *reversed(lines[1:])]) + "\n"
    settings = gateway_settings(tmp_path, None, grid_import={"chunk_rows": 2})
    async with GatewayService(settings, clock) as gw:
        result = await gw.import_csv("units", text)
        assert (result.inserted, result.rejected) == (16, 0), result.errors
        assert result.transactions == 8
        assert _count(gw, "SELECT count(*) FROM grid_units") == 16


async def test_matching_rows_waits_for_no_writer(tmp_path: Path, clock: ManualClock) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        await gw.import_csv("households", HOUSEHOLDS_CSV)
        async with gw.store.transaction(), asyncio.timeout(30):
            # A writer holds the store: reads by natural key and a whole check still finish.
            assert [h.code for h in await gw.store.grid.households_by_code([HOUSEHOLD])] == [
                HOUSEHOLD
            ]
            assert [d.device_id for d in await gw.store.grid.devices_of([HOUSEHOLD])] == [BOX_ID]
            checked = await gw.import_csv("households", households_csv(500), check=True)
            assert (checked.inserted, checked.rejected) == (500, 0)


async def test_a_box_registered_during_an_import_stops_it_cleanly(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = gateway_settings(tmp_path, None, grid_import={"chunk_rows": 10})
    async with GatewayService(settings, clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        raced, raced_key = household_box(15)
        store = gw.store
        real_read = type(store.grid).devices_by_id

        async def read_then_race(self: object, device_ids: Sequence[str]) -> list[DeviceRecord]:
            found = await real_read(store.grid, device_ids)
            if raced in device_ids and not await store.devices.get(raced):
                # Another writer registers the box between the import's read and its write.
                await gw.register_device(raced, "call_box", raced_key)
            return found

        monkeypatch.setattr(type(store.grid), "devices_by_id", read_then_race)
        text = households_csv(30)
        with pytest.raises(ImportInterruptedError) as interrupted:
            await gw.import_csv("households", text)
        assert interrupted.value.written == 10
        moved = (
            f"line 17, device_id: call box {raced} is registered to no household; "
            "a box is moved by provisioning, not by import"
        )
        # The check found the chunk new, so its write meets the box on the key.
        assert "UNIQUE constraint failed: devices.device_id" in str(interrupted.value)
        assert _count(gw, "SELECT count(*) FROM households") == 10
        monkeypatch.setattr(type(store.grid), "devices_by_id", real_read)

        rerun = await gw.import_csv("households", text)
        assert (rerun.inserted, rerun.unchanged, rerun.rejected) == (0, 0, 1)
        assert [str(e) for e in rerun.errors] == [moved]
        assert _count(gw, "SELECT count(*) FROM households") == 10
        assert _count(gw, "SELECT count(*) FROM devices") == 11
        assert _duplicates(gw) == 0


async def test_a_row_made_wrong_after_the_check_stops_the_import_cleanly(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = gateway_settings(tmp_path, None, grid_import={"chunk_rows": 10})
    async with GatewayService(settings, clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        store = gw.store
        real_units = type(store.grid).units_by_code
        calls = 0

        async def units_gone_after_the_check(self: object, codes: Sequence[str]) -> list[object]:
            # The check reads the units 3 times (3 chunks); then the grid loses them.
            nonlocal calls
            calls += 1
            return [] if calls > 4 else list(await real_units(store.grid, codes))

        monkeypatch.setattr(type(store.grid), "units_by_code", units_gone_after_the_check)
        with pytest.raises(ImportInterruptedError) as interrupted:
            await gw.import_csv("households", households_csv(30))
        assert interrupted.value.written == 10
        assert (
            f"line 12, neighbourhood_code: unknown unit {NEIGHBOURHOOD}: import the units first "
            "(changed since the file was checked)"
        ) in str(interrupted.value)
        assert _count(gw, "SELECT count(*) FROM households") == 10
        assert _count(gw, "SELECT count(*) FROM devices") == 10


async def test_a_phone_written_another_way_is_the_same_contact(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        await gw.import_csv("units", UNITS_CSV)
        await gw.import_csv("households", HOUSEHOLDS_CSV)
        assert (await gw.import_csv("contacts", CONTACTS_CSV)).inserted == 8
        retyped = (
            CONTACTS_CSV.replace(",13800000001,", ",138-0000-0001,")
            .replace(",13800000002,", ",+86 138 0000 0002,")
            .replace(",+447700900123,", ",0044 7700 900123,")
            .replace(",07:00,21:00", ",7点,21:00")
        )
        again = await gw.import_csv("contacts", retyped)
        assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 8, 0)
        assert _count(gw, "SELECT count(*) FROM contacts") == 8
        assert _duplicates(gw) == 0


async def test_chinese_headers_and_values_import_like_english_ones(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with GatewayService(gateway_settings(tmp_path, None), clock) as gw:
        english = await gw.import_csv("units", UNITS_CSV)
        assert english.inserted == 6
        chinese = "代码,层级,名称,上级代码\n" + "".join(
            line.replace(",county,", ",县,")
            .replace(",township,", ",镇,")
            .replace(",village,", ",村,")
            .replace(",area,", ",片,")
            .replace(",group,", ",组,")
            .replace(",neighbourhood,", ",邻,")
            + "\n"
            for line in UNITS_CSV.splitlines()[1:]
        )
        again = await gw.import_csv("units", chinese)
        assert (again.unchanged, again.rejected) == (6, 0), again.errors
