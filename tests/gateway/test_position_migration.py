"""Migration 0013: positions stored before it (as they were) read the same after it."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from firmware_protocol import Key
from gateway.domain.devices import DeviceSeen
from gateway.domain.tickets import BoxPress
from gateway.store.sqlite import SqliteStore, migrations
from tests.gateway.grid import BOX_ID, HOUSEHOLD
from tests.gateway.store_contract.contract import T0, event, seed_grid, ticket

LOW, HIGH = 3 << 32 | 9, 0x7FFF_FFFF << 32 | 0xFFFF_FFFE
"""Positions a database of migration 0012 could hold (below 2**63)."""
SHIFT = "9223372036854775807 + 1"


async def test_positions_stored_before_0013_read_the_same_and_keep_their_order(
    tmp_path: Path,
) -> None:
    db = tmp_path / "b.db"
    store = SqliteStore(db)
    await store.open()
    try:
        await seed_grid(store)
        async with store.transaction() as uow:
            await uow.devices.insert_events(
                [
                    replace(event(p, BOX_ID, msg_type=kind), device_time=7, fields=fields)
                    for p, kind, fields in (
                        (LOW, "KeyEvent", '{"key": "GREEN_CALL"}'),
                        (HIGH, "Heartbeat", "{}"),
                    )
                ]
            )
            await uow.devices.mark_seen([DeviceSeen(BOX_ID, T0, "mqtt", HIGH, LOW)])
            ticket_id = await uow.tickets.insert(
                replace(
                    ticket(HOUSEHOLD, BOX_ID, presses=1, at=T0),
                    latest_press=BoxPress(BOX_ID, HIGH, 7),
                )
            )
        before = await store.devices.current(BOX_ID)
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:
        # Back to what the code of migration 0012 wrote: the same schema, positions as they are.
        conn.execute(f"UPDATE events SET seq = seq + {SHIFT}")
        conn.execute(
            f"UPDATE devices SET last_seq = last_seq + {SHIFT},"
            f" downlink_seq = downlink_seq + {SHIFT}"
        )
        conn.execute(f"UPDATE tickets SET latest_press_position = latest_press_position + {SHIFT}")
        conn.execute("DELETE FROM schema_migrations WHERE version = 13")
        rows = conn.execute("SELECT seq FROM events ORDER BY seq").fetchall()
        assert rows == [(LOW,), (HIGH,)]
    store = SqliteStore(db)
    await store.open()
    try:
        assert await store.devices.current(BOX_ID) == before
        assert before is not None
        assert (before.last_seq, before.high_seq, before.downlink_seq) == (HIGH, HIGH, LOW)
        assert sorted(await store.devices.event_seqs()) == [(BOX_ID, LOW), (BOX_ID, HIGH)]
        found = await store.tickets.get(ticket_id)
        assert found is not None
        assert found.latest_press == BoxPress(BOX_ID, HIGH, 7)
        async with store.transaction() as uow:
            # Old and new positions in one order: a session above 2**31 comes after them.
            above = 0x8000_0000 << 32 | 1
            await uow.devices.insert_events(
                [
                    replace(
                        event(above, BOX_ID, msg_type="KeyEvent"),
                        device_time=7,
                        fields='{"key": "RED_HANGUP"}',
                    )
                ]
            )
            presses = await uow.devices.key_events_after(BOX_ID, 0, 10)
        assert [(p.position, p.key) for p in presses] == [
            (LOW, Key.GREEN_CALL),
            (above, Key.RED_HANGUP),
        ]
    finally:
        await store.close()
    with sqlite3.connect(db) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions[-1] == migrations()[-1][0]  # 0013 and every later one applied
        assert 13 in versions
