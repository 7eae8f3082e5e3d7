"""The SQLite store: migrations, durability settings, unit of work semantics."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import threading
from pathlib import Path

import pytest

from gateway.domain.devices import DeviceRecord, DeviceSeen, EventRow, Transition
from gateway.domain.water import DayRecord, Phase, WaterWatch, watch_to_record
from gateway.errors import ConflictError, MigrationError, RegistryError
from gateway.store.ports import Deadline
from gateway.store.sqlite import SqliteStore, migrations

KEY = bytes(range(16))


def device(device_id: str = "00000000000000a1") -> DeviceRecord:
    return DeviceRecord(
        device_id=device_id, kind="call_box", key=KEY, heartbeat_interval_s=60, created_at=1.0
    )


def event(seq: int, device_id: str = "00000000000000a1") -> EventRow:
    return EventRow(device_id, seq, "Heartbeat", 0, 2.0, "mqtt", "mqtt", b"\x01", "{}")


async def test_open_applies_migrations_and_durability_pragmas(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "b.db") as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [v for v, _, _ in migrations()]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Reopening applies nothing twice.
    await store.open()
    await store.close()
    await store.close()  # closing twice is harmless


async def test_synchronous_full_on_the_writer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        async with store.transaction() as uow:
            conn = uow._conn  # the writer connection's own setting
            async with conn.execute("PRAGMA synchronous") as cur:
                row = await cur.fetchone()
        assert row is not None
        assert row[0] == 2  # FULL
    finally:
        await store.close()


async def test_edited_migration_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "b.db") as conn:
        conn.execute("UPDATE schema_migrations SET sha256 = 'x' WHERE version = 1")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await SqliteStore(tmp_path / "b.db").open()


async def test_database_newer_than_code_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    await store.close()
    with sqlite3.connect(tmp_path / "b.db") as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'future', 'x', 'now')")
    with pytest.raises(MigrationError, match="999"):
        await SqliteStore(tmp_path / "b.db").open()


async def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        async with store.transaction() as uow:
            await uow.devices.add(device())

        async def insert_twice() -> None:
            async with store.transaction() as uow:
                await uow.devices.insert_events([event(1)])
                await uow.devices.insert_events([event(1)])  # (device, seq) is unique

        with pytest.raises(ConflictError, match="UNIQUE constraint failed"):
            await insert_twice()
        assert await store.devices.count_events() == 0
    finally:
        await store.close()


async def test_duplicate_device_is_a_registry_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        async with store.transaction() as uow:
            await uow.devices.add(device())

        async def add_again() -> None:
            async with store.transaction() as uow:
                await uow.devices.add(device())

        with pytest.raises(RegistryError):
            await add_again()
    finally:
        await store.close()


async def test_unit_of_work_round_trip(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        async with store.transaction() as uow:
            await uow.devices.add(device())
            await uow.devices.insert_events([event(1), event(2), event(5)])
            await uow.devices.mark_seen([DeviceSeen("00000000000000a1", 9.0, "mqtt", 5, 3)])
            await uow.devices.apply_transitions([Transition("00000000000000a1", 9.0, "online")])
            await uow.deadlines.set(
                [Deadline("device_silent", "00000000000000a1", 100.0), Deadline("x", "y", 50.0)]
            )
            assert await uow.devices.stored_seqs("00000000000000a1", [1, 3, 5]) == {1, 5}
            assert [d.subject for d in await uow.deadlines.due(60.0, 10)] == ["y"]
        stored = await store.devices.get("00000000000000a1")
        assert stored is not None
        assert (stored.last_seq, stored.downlink_seq, stored.status) == (5, 3, "online")
        assert "key=<hidden>" in repr(stored)
        assert await store.deadlines.next_at() == 50.0
        async with store.transaction() as uow:
            # Sequence numbers only move forward.
            await uow.devices.mark_seen([DeviceSeen("00000000000000a1", 10.0, "s1", 2, 1)])
            await uow.deadlines.clear([("x", "y")])
        stored = await store.devices.get("00000000000000a1")
        assert stored is not None
        assert (stored.last_seq, stored.downlink_seq, stored.last_link) == (5, 3, "s1")
        assert await store.deadlines.next_at() == 100.0
    finally:
        await store.close()


async def test_an_older_database_is_upgraded_with_its_outbox_kept(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    shipped = migrations()
    with sqlite3.connect(db) as conn:
        # As the code of two migrations ago left it, with a message already sent.
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
            " sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        for version, name, sql in shipped[:2]:
            conn.executescript(sql)
            digest = hashlib.sha256(sql.encode()).hexdigest()
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?, 'then')", (version, name, digest)
            )
        conn.execute(
            "INSERT INTO notifications (created_at, channel, recipient, template, params,"
            " language, status, provider_id, updated_at)"
            " VALUES (1, 'sms', '13800000001', 'ticket_taken', '{}', 'zh-CN', 'sent', 'SM1', 5)"
        )
    store = SqliteStore(db)
    await store.open()
    try:
        entries = await store.outbox.entries()
        assert [(e.status, e.provider_id, e.origin_kind) for e in entries] == [
            ("sent", "SM1", None)
        ]
        # The rebuilt table still points at itself for follow-ups.
        async with store.transaction() as uow:
            notification = (await store.outbox.notifications())[0]
            assert await uow.outbox.enqueue_follow_up(1, "fallback", notification, 10.0)
            assert not await uow.outbox.enqueue_follow_up(1, "fallback", notification, 11.0)
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [v for v, _, _ in shipped]


async def test_a_read_sees_what_was_committed_before_it_while_another_read_is_under_way(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    started, release = threading.Event(), threading.Event()

    def paused(value: int) -> int:
        started.set()
        release.wait(10)
        return value

    try:
        # Reads share one connection: hold one in the middle of its first step.
        assert store._reader is not None
        await store._reader.create_function("paused", 1, paused)
        slow = asyncio.create_task(store._fetch("SELECT paused(count(*)) FROM devices"))
        assert await asyncio.to_thread(started.wait, 10)
        async with store.transaction() as uow:
            await uow.devices.add(device())
        fresh = asyncio.create_task(store.devices.get(device().device_id))
        await asyncio.sleep(0)  # asked for after the commit, while the slow read is under way
        release.set()
        assert (await slow)[0][0] == 0  # it began before the commit
        assert await fresh is not None
    finally:
        release.set()
        await store.close()


async def test_a_water_watch_keeps_its_history_packed_apart_from_its_state(
    tmp_path: Path,
) -> None:
    days = tuple(
        DayRecord(20000 + d, 400 + d, longest_quiet_s=3600.0 + d / 3, lived=True) for d in range(28)
    )
    watch = WaterWatch(
        household="H1", phase=Phase.WATCHING, quiet_since=5.0, volume_l=12.5, history=days
    )
    older = WaterWatch(household="H2", phase=Phase.WATCHING, quiet_since=6.0, history=days[:3])
    store = SqliteStore(tmp_path / "b.db")
    await store.open()
    try:
        with sqlite3.connect(tmp_path / "b.db") as conn:
            conn.execute("INSERT INTO grid_units (code, name, level) VALUES ('U', 'U', 'county')")
            conn.executemany(
                "INSERT INTO households (code, neighbourhood_code) VALUES (?, 'U')",
                [("H1",), ("H2",)],
            )
            # As the store wrote a watch before migration 0025: the history inside the state.
            conn.execute(
                "INSERT INTO water_watches (household_code, phase, state, updated_at)"
                " VALUES ('H2', 'watching', ?, 1.0)",
                (json.dumps(watch_to_record(older)),),
            )
        async with store.transaction() as uow:
            await uow.water.save(watch, 7.0)
        with sqlite3.connect(tmp_path / "b.db") as conn:
            state, history = conn.execute(
                "SELECT state, history FROM water_watches WHERE household_code = 'H1'"
            ).fetchone()
        assert "history" not in json.loads(state)
        assert len(history) == 15 * 28
        async with store.transaction() as uow:
            assert await uow.water.watches(["H1", "H2"]) == {"H1": watch, "H2": older}
            assert await uow.water.watch("H2") == older
        assert await store.water.watch("H1") == watch
        assert await store.water.watch("H2") == older
    finally:
        await store.close()
