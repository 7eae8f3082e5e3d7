"""Protocol v2 stories against a real broker and the running gateway: a box never stays out.

Counter loss, erased flash and reserved counters resynchronise within one retry; other
content under used numbers is renumbered and stored (a green press opens its ticket); a key
rotation interrupted at any step ends with the box working; the operator commands work end
to end with the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import RESERVED, AckCode, IndicationKind, Key, position, split_position
from gateway.application import Application, for_service
from gateway.clock import ManualClock
from gateway.ingest import registry
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import gateway_settings, load_grid, sample, wait_for

DAY = 86_400.0


@dataclass
class Site:
    gw: GatewayService
    app: Application
    broker: MosquittoBroker
    clock: ManualClock
    fleets: dict[int, MqttFleet] = field(default_factory=dict)

    async def send(self, box: SimulatedDevice, frame: bytes) -> None:
        """Send from the box's own connection (kept open, so downlinks after the ACK reach it);
        the box resends at once after a renumber or a re-signing, as firmware does."""
        fleet = self.fleets.get(id(box))
        if fleet is None:
            fleet = self.fleets[id(box)] = MqttFleet("127.0.0.1", self.broker.port, [box])
            await fleet.__aenter__()
        await fleet.send(box.device_id, frame)
        await fleet.wait_all_acked(10)

    async def tickets(self) -> int:
        return len(await self.gw.store.tickets.all())

    async def has_ticket(self) -> bool:
        return await self.tickets() > 0

    def nacks(self, code: AckCode) -> float:
        return sample(self.gw, "bidao_acks_sent_total", code=code.name)


@pytest.fixture
async def site(tmp_path: Path, broker: MosquittoBroker, clock: ManualClock) -> AsyncIterator[Site]:
    settings = gateway_settings(tmp_path, broker, http={"enabled": False})
    async with GatewayService(settings, clock) as gw:
        await load_grid(gw)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        site = Site(gw, for_service(gw), broker, clock)
        try:
            yield site
        finally:
            for fleet in site.fleets.values():
                await fleet.close()


def box(clock: ManualClock, **kwargs: int) -> SimulatedDevice:
    return SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now, **kwargs)


async def test_a_box_that_lost_its_counter_is_back_within_one_retry(site: Site) -> None:
    device = box(site.clock, session=7)
    for _ in range(3):
        await site.send(device, device.heartbeat())
    device.reboot(erase_counter=True)  # erased flash: session 0
    assert device.session == 0
    await site.send(device, device.press(Key.GREEN_CALL))
    assert device.resyncs == 1
    assert site.nacks(AckCode.NACK_RESYNC) == 1
    assert device.session == 8  # above the gateway's newest (7, 3)
    await wait_for(site.has_ticket, what="the green press opened its ticket")
    state = site.gw.registry.cached(BOX_ID)
    assert state is not None
    assert state.last_seq == position(8, 1)


async def test_blank_flash_and_a_reserved_counter_recover(site: Site) -> None:
    device = box(site.clock, session=RESERVED)  # what an erased counter reads as, sent as is
    await site.send(device, device.heartbeat())
    assert site.nacks(AckCode.NACK_RESYNC) == 1
    assert device.session == 1
    device.reboot(flash_value=RESERVED - 1)  # the next session would be the reserved one
    assert device.session == 0
    await site.send(device, device.press(Key.GREEN_CALL))
    assert site.nacks(AckCode.NACK_RESYNC) == 2
    assert device.session == 2
    await wait_for(site.has_ticket, what="the green press opened its ticket")


async def test_a_green_press_reusing_a_heartbeats_numbers_opens_a_ticket(site: Site) -> None:
    before = box(site.clock, session=4)
    await site.send(before, before.heartbeat())
    # The box restarted without writing its session: the same numbers, other content.
    after = box(site.clock, session=4)
    await site.send(after, after.press(Key.GREEN_CALL))
    assert site.nacks(AckCode.NACK_SEQ_REUSED) == 1
    assert site.nacks(AckCode.DUPLICATE) == 0  # never a duplicate for other content
    assert after.session == 5
    await wait_for(site.has_ticket, what="the green press opened its ticket")
    assert await site.gw.store.devices.count_events(BOX_ID) == 2


async def test_a_copy_is_a_duplicate_and_changes_nothing(site: Site) -> None:
    device = box(site.clock)
    frame = device.press(Key.GREEN_CALL)
    await site.send(device, frame)
    await wait_for(site.has_ticket, what="ticket")
    await site.fleets[id(device)].send(BOX_ID, frame)
    await wait_for(lambda: site.nacks(AckCode.DUPLICATE) == 1, what="copy answered")
    assert await site.tickets() == 1
    assert await site.gw.store.devices.count_events(BOX_ID) == 1


async def test_reset_counters_lets_a_lower_session_in(site: Site) -> None:
    device = box(site.clock, session=900)
    await site.send(device, device.heartbeat())
    await site.app.reset_device_counters(BOX_ID, "test")
    fresh = box(site.clock, session=3)
    await site.send(fresh, fresh.press(Key.GREEN_CALL))
    assert fresh.resyncs == 0
    assert site.nacks(AckCode.NACK_RESYNC) == 0
    await wait_for(site.has_ticket, what="ticket")


async def rotated(site: Site, device: SimulatedDevice) -> None:
    """The rotation finished on both sides and the box's green press opens a ticket."""
    record = await site.gw.store.devices.get(BOX_ID)
    assert record is not None
    assert (record.next_key, record.key_version) == (None, 1)
    assert (device.active.key, device.active.key_id, device.stored) == (record.key, 1, None)
    assert record.key != BOX_KEY
    await site.send(device, device.press(Key.GREEN_CALL))
    await wait_for(site.has_ticket, what="ticket after the rotation")


async def test_key_rotation_with_the_simulator(site: Site) -> None:
    device = box(site.clock)
    await site.send(device, device.heartbeat())
    await site.app.rotate_device_key(BOX_ID, "test")
    await site.send(device, device.heartbeat())  # acked with the old key, then PROVISION
    await wait_for(lambda: device.provisions == 1, what="PROVISION received")
    assert (device.key_id, device.key_version) == (1, 0)  # stored in slot B, not confirmed
    await site.send(device, device.heartbeat())  # MACed with the new key: confirmed both ways
    await rotated(site, device)


async def test_a_lost_provision_and_a_day_offline_end_with_the_box_working(site: Site) -> None:
    device = box(site.clock)
    await site.send(device, device.heartbeat())
    await site.app.rotate_device_key(BOX_ID, "test")
    device.lose_provisions = 1
    await site.send(device, device.heartbeat())
    await wait_for(lambda: device.lose_provisions == 0, what="PROVISION lost")
    assert device.key_id == 0
    await site.clock.advance(DAY)  # the box is away for a day, the gateway keeps both keys
    await site.send(device, device.heartbeat())  # old key still accepted; PROVISION again
    await wait_for(lambda: device.provisions == 1, what="second PROVISION received")
    await site.send(device, device.heartbeat())
    await rotated(site, device)


async def test_a_reset_between_storing_and_switching_ends_with_the_box_working(
    site: Site,
) -> None:
    device = box(site.clock)
    await site.send(device, device.heartbeat())
    await site.app.rotate_device_key(BOX_ID, "test")
    await site.send(device, device.heartbeat())
    await wait_for(lambda: device.provisions == 1, what="PROVISION received")
    device.reboot()  # slot B survives in flash; the box comes back sending with it
    assert device.key_id == 1
    await site.send(device, device.heartbeat())
    await rotated(site, device)


async def test_a_frame_under_a_key_the_gateway_dropped_is_re_signed(site: Site) -> None:
    device = box(site.clock)
    await site.send(device, device.heartbeat())
    await site.app.rotate_device_key(BOX_ID, "test")
    await site.send(device, device.heartbeat())
    await wait_for(lambda: device.provisions == 1, what="PROVISION received")
    # A second rotation before the box used the first new key: the gateway now holds keys
    # 0 and 2; the box's key 1 is unknown, answered with key 0, and the box falls back.
    await site.app.rotate_device_key(BOX_ID, "test")
    record = await site.gw.store.devices.get(BOX_ID)
    assert record is not None
    assert record.next_key_id == 2
    await site.send(device, device.heartbeat())  # key 1: NACK_UNKNOWN_KEY, re-signed with 0
    assert site.nacks(AckCode.NACK_UNKNOWN_KEY) == 1
    await wait_for(lambda: device.provisions == 2, what="PROVISION of key 2 received")
    assert device.key_id == 2
    await site.send(device, device.heartbeat())
    record = await site.gw.store.devices.get(BOX_ID)
    assert record is not None
    assert (record.next_key, record.key_version, record.key) == (None, 2, device.active.key)
    assert device.stored is None
    await site.send(device, device.press(Key.GREEN_CALL))
    await wait_for(site.has_ticket, what="ticket after the rotation")


async def test_configure_and_automatic_clock(site: Site) -> None:
    device = box(site.clock)
    device.clock_offset_s = -10 * DAY  # a box whose clock drifted far
    await site.send(device, device.heartbeat())
    await wait_for(lambda: bool(device.configs), what="automatic clock CONFIG")
    assert abs(device.now() - site.clock.now()) <= 1
    await site.app.configure_device(BOX_ID, 300, False, "test")
    await site.send(device, device.heartbeat())
    await wait_for(lambda: device.heartbeat_interval_s == 300, what="interval configured")
    await site.send(device, device.heartbeat())  # reports 300: confirmed, no more CONFIG
    record = await site.gw.store.devices.get(BOX_ID)
    assert record is not None
    assert record.pending_heartbeat_s is None
    sent = len(device.configs)
    await site.send(device, device.heartbeat())
    assert len(device.configs) == sent
    assert device.configs[0].clock_unix == int(site.clock.now())


async def test_a_box_in_the_highest_session_is_acknowledged_and_gets_its_ticket(
    site: Site,
) -> None:
    """Positions of session 2**31 and above do not fit a signed 64-bit integer as they are;
    the store keeps them all the same, so such a box is never locked out."""
    top = RESERVED - 1  # 0xFFFFFFFE, the highest session
    device = box(site.clock, session=top, first_seq=top - 1)
    await site.send(device, device.heartbeat())
    await site.send(device, device.press(Key.GREEN_CALL))
    assert device.acked_positions == {position(top, top - 1), position(top, top)}
    assert (device.nacked, device.resyncs, device.session) == ({}, 0, top)
    await wait_for(site.has_ticket, what="the green press opened its ticket")
    [ticket] = await site.gw.store.tickets.all()
    assert ticket.latest_press is not None
    assert (ticket.latest_press.device_id, ticket.latest_press.position) == (
        BOX_ID,
        position(top, top),
    )
    assert await site.gw.store.devices.count_events(BOX_ID) == 2
    state = await site.gw.store.devices.current(BOX_ID)
    assert state is not None
    assert state.last_seq == position(top, top)


def backup_database(live: Path, copy: Path) -> None:
    """A consistent copy of a running gateway's database, through SQLite's backup API."""
    with (
        contextlib.closing(sqlite3.connect(live)) as source,
        contextlib.closing(sqlite3.connect(copy)) as target,
    ):
        source.backup(target)


def restore_database(copy: Path, live: Path) -> None:
    """Put an older copy in place of a stopped gateway's database (its WAL goes too)."""
    for suffix in ("-wal", "-shm"):
        Path(f"{live}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(copy, live)


def stored_positions(db: Path) -> list[int]:
    """Positions of the box's stored frames, as stored (one row per stored frame)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT seq FROM events WHERE device_id = ?", (BOX_ID,)).fetchall()
    return sorted(seq + (1 << 63) for (seq,) in rows)  # stored as position - 2**63


def stored_downlink_seq(db: Path) -> int:
    """The box's downlink seq as stored: every number up to it may have been used."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        (mark,) = conn.execute(
            "SELECT downlink_seq FROM devices WHERE device_id = ?", (BOX_ID,)
        ).fetchone()
    return split_position(mark + (1 << 63))[1]


async def all_delivered(gw: GatewayService) -> bool:
    """Whether every indication written is marked as handed to the box."""
    return all(i.status == "delivered" for i in await gw.store.indications.all(BOX_ID))


async def a_call_and_its_cancel(site: Site, device: SimulatedDevice) -> None:
    """A green press (the box hears its call registered), then the red key cancels it."""
    heard = len(device.indications)
    await site.send(device, device.press(Key.GREEN_CALL))
    await wait_for(
        lambda: [i.kind for i in device.indications[heard:]] == [IndicationKind.CALL_REGISTERED],
        what="call registered on the box",
    )
    await site.send(device, device.press(Key.RED_HANGUP))
    await wait_for(
        lambda: (
            [i.kind for i in device.indications[heard:]]
            == [IndicationKind.CALL_REGISTERED, IndicationKind.CANCELLED]
        ),
        what="call cancelled on the box",
    )


async def test_a_gateway_restored_from_an_older_backup_serves_the_box(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The box's downlink counter and positions are ahead of the restored database: its
    frames are accepted (newer, not replays), the first downlink it refuses as stale makes
    it send a heartbeat that moves the gateway's counter above its own, and what it refused
    reaches it again; nothing lost, nothing doubled."""
    # Downlink numbers are reserved 4 at a time instead of 1024, so a few calls take the
    # box's counter past what the backup reserved (the rule is the same).
    monkeypatch.setattr(registry, "DOWNLINK_SEQ_BLOCK", 4)
    settings = gateway_settings(tmp_path, broker, http={"enabled": False})
    db, backup = settings.database_path, tmp_path / "backup.db"
    device = box(clock, session=5)
    fleets: dict[int, MqttFleet] = {}
    try:
        async with GatewayService(settings, clock) as gw:
            await load_grid(gw)
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            site = Site(gw, for_service(gw), broker, clock, fleets)
            await site.send(device, device.heartbeat())
            await a_call_and_its_cancel(site, device)
            await wait_for(lambda: all_delivered(gw), what="indications marked delivered")
            await asyncio.to_thread(backup_database, db, backup)
            at_backup = list(device.acked_positions)
            seen_at_backup = device.last_downlink_seq
            for _ in range(6):
                await a_call_and_its_cancel(site, device)
            await site.send(device, device.heartbeat())
            state = gw.registry.cached(BOX_ID)
            assert state is not None
            assert device.last_downlink_seq == split_position(state.downlink_seq)[1]
        restore_database(backup, db)
        restored = stored_positions(db)
        assert sorted(at_backup) == restored  # the backup has what was stored before it
        backed_up_mark = stored_downlink_seq(db)
        assert seen_at_backup <= backed_up_mark < device.last_downlink_seq
        ahead = device.last_downlink_seq
        sent_before = device.next_seq
        refused_before = device.stale_downlinks
        async with GatewayService(settings, clock) as gw:
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            site = Site(gw, for_service(gw), broker, clock, fleets)
            # The box's next green press: newer than the restored newest position, so it is
            # accepted at once (never a replay nack), and its ticket opens.
            await site.send(device, device.press(Key.GREEN_CALL))
            await wait_for(site.has_ticket, what="the green press opened a ticket")
            # Its first indication carries a number the box already used: refused, and the
            # heartbeat the box sends at once moves the gateway's counter above the box's.
            await wait_for(
                lambda: device.stale_downlinks == refused_before + 1, what="a stale downlink"
            )
            await wait_for(
                lambda: (
                    device.indications[-1].kind == IndicationKind.CALL_REGISTERED
                    and device.last_downlink_seq > ahead
                ),
                what="the box hears its call registered",
            )
            await fleets[id(device)].wait_all_acked(10)
            assert device.stale_downlinks == refused_before + 1
            assert sample(gw, "bidao_indications_total", outcome="refused_stale") == 1
            await site.send(device, device.press(Key.RED_HANGUP))
            await wait_for(
                lambda: device.indications[-1].kind == IndicationKind.CANCELLED,
                what="the red key cancels the call",
            )
            assert device.stale_downlinks == refused_before + 1  # in step again
        assert (device.nacked, device.resyncs, device.pending_count) == ({}, 0, 0)
        sent_after = [position(device.session, q) for q in range(sent_before, device.next_seq)]
        assert device.acked_positions >= set(sent_after)
        # Each frame sent after the restore is stored once, beside what the backup kept.
        assert stored_positions(db) == sorted([*restored, *sent_after])
    finally:
        for fleet in fleets.values():
            await fleet.close()
