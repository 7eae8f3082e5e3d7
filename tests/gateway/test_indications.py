"""Box indications are durable: retried until the box is reached, kept over a restart, fresh."""

from __future__ import annotations

import asyncio
from pathlib import Path

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Indication, IndicationKind, LedPattern, position
from gateway.config import Settings
from gateway.domain.devices import DeviceRecord
from gateway.ingest.registry import DeviceState
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from gateway.store.sqlite import SqliteStore
from tests.gateway.support import gateway_settings, sample, send_until_acked, wait_for

BOX = "00000000000000e1"
KEY = bytes(range(32, 48))
ON_THE_WAY = Indication(IndicationKind.HELPER_ON_THE_WAY, 7, LedPattern.GREEN_BLINK, 2)
ACCEPTED = Indication(IndicationKind.CALL_REGISTERED, 7, LedPattern.GREEN_SOLID, 1)
ARRIVED = Indication(IndicationKind.HELPER_ARRIVED, 7, LedPattern.GREEN_SOLID, 3)
OTHER_TICKET = Indication(IndicationKind.RESOLVED, 8, LedPattern.GREEN_SOLID, 4)


def slow_retry_settings(tmp_path: Path, broker: MosquittoBroker) -> Settings:
    """Retries an hour apart, so only hearing from the box (or a start) can deliver."""
    return gateway_settings(
        tmp_path, broker, indications={"retry_initial_s": 3600, "retry_max_s": 3600}
    )


async def commit_indications(store: SqliteStore, *rows: Indication, at: float) -> None:
    """Write indications for BOX in one transaction each, as ticket changes would."""
    for indication in rows:
        async with store.transaction() as uow:
            await uow.indications.add([(BOX, indication)], at)


async def delivered(gw: GatewayService, device_id: str) -> bool:
    """Whether the device's one indication row is marked delivered."""
    [row] = await gw.store.indications.all(device_id)
    return row.status == "delivered"


async def test_an_indication_waits_for_the_box_and_goes_when_it_is_heard(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    box = SimulatedDevice(BOX, "call_box", KEY)
    async with (
        GatewayService(slow_retry_settings(tmp_path, broker)) as gw,
        MqttFleet("127.0.0.1", broker.port, [box]) as fleet,
    ):
        await gw.register_device(BOX, "call_box", KEY)
        await commit_indications(gw.store, ON_THE_WAY, at=gw.clock.now())
        gw.indications.wake()
        # Never heard on any link: nowhere to send it yet, so it waits.
        await wait_for(
            lambda: sample(gw, "bidao_indications_total", outcome="retry") == 1,
            what="a first attempt",
        )
        [row] = await gw.store.indications.all(BOX)
        assert (row.status, row.attempts) == ("pending", 1)
        await send_until_acked(fleet, box, box.heartbeat())
        await wait_for(lambda: bool(box.indications), what="the indication after the box spoke")
        assert box.indications == [ON_THE_WAY]
        # Marked delivered once handed to the link, which may be just after the box heard it.
        await wait_for(lambda: delivered(gw, BOX), what="the row marked delivered")
        assert sample(gw, "bidao_downlinks_sent_total", link="mqtt", type="Indication") == 1


async def test_an_indication_committed_before_a_crash_is_delivered_after_the_restart(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    settings = slow_retry_settings(tmp_path, broker)
    box = SimulatedDevice(BOX, "call_box", KEY)
    async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
        async with GatewayService(settings) as gw:
            await gw.register_device(BOX, "call_box", KEY)
            await send_until_acked(fleet, box, box.heartbeat())
            now = gw.clock.now()
        # What a gateway killed right after the ticket's commit leaves behind: the row only.
        store = SqliteStore(settings.database_path)
        await store.open()
        try:
            await commit_indications(store, ACCEPTED, at=now)
        finally:
            await store.close()
        async with GatewayService(settings) as gw:
            await wait_for(lambda: bool(box.indications), what="the indication after restart")
            assert box.indications == [ACCEPTED]
            await wait_for(lambda: delivered(gw, BOX), what="the row marked delivered")


async def test_a_box_back_after_a_while_hears_only_each_tickets_newest_indication(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    box = SimulatedDevice(BOX, "call_box", KEY)
    async with (
        GatewayService(slow_retry_settings(tmp_path, broker)) as gw,
        MqttFleet("127.0.0.1", broker.port, [box]) as fleet,
    ):
        await gw.register_device(BOX, "call_box", KEY)
        now = gw.clock.now()
        await commit_indications(gw.store, ACCEPTED, ON_THE_WAY, OTHER_TICKET, ARRIVED, at=now)
        gw.indications.wake()
        await wait_for(
            lambda: sample(gw, "bidao_indications_total", outcome="retry") >= 1,
            what="attempts while the box is away",
        )
        await send_until_acked(fleet, box, box.heartbeat())
        await wait_for(lambda: len(box.indications) == 2, what="one indication per ticket")
        assert sorted(box.indications, key=lambda i: i.ticket_ref) == [ARRIVED, OTHER_TICKET]

        async def settled() -> bool:
            # Delivered once the box's answer to them is handled, which may come after they
            # reached the box.
            rows = await gw.store.indications.all(BOX)
            return sum(r.status == "delivered" for r in rows) == 2

        await wait_for(settled, what="both marked delivered")
        states = [(r.indication, r.status) for r in await gw.store.indications.all(BOX)]
        assert states == [
            (ACCEPTED, "superseded"),
            (ON_THE_WAY, "superseded"),
            (OTHER_TICKET, "delivered"),
            (ARRIVED, "delivered"),
        ]
        assert sample(gw, "bidao_indications_total", outcome="delivered") == 2


def test_the_gateway_tells_a_number_the_box_had_from_an_older_run_from_its_own() -> None:
    """After a start the gateway numbers from its stored mark; a heartbeat naming a number
    this run did not use says the box refused this run's downlinks (restored database)."""
    session = 5
    record = DeviceRecord(
        BOX, "call_box", KEY, 60, 0.0, last_seq=position(session, 9), downlink_seq=position(5, 4)
    )
    state = DeviceState.from_record(record)
    assert state.heard_downlink_seq(session, 3) == (position(session, 3), True)  # before us
    assert state.allocate_downlink_seq() == (session, 5)
    assert state.allocate_downlink_seq() == (session, 6)
    assert state.heard_downlink_seq(session, 6) == (position(session, 6), False)  # ours
    assert state.heard_downlink_seq(session, 5) == (position(session, 5), False)
    # The box had 20 from a run whose numbers the restored database forgot: ahead of us.
    assert state.heard_downlink_seq(session, 20) == (position(session, 20), True)
    assert state.allocate_downlink_seq() == (session, 21)  # never below the box's number
    assert state.heard_downlink_seq(session, 21) == (position(session, 21), False)
    assert state.heard_downlink_seq(session, 0) is None  # nothing accepted yet
    assert state.heard_downlink_seq(session - 1, 40) is None  # an older session's counter
    assert state.allocate_downlink_seq() == (session, 22)


async def test_an_indication_the_box_heard_while_its_ticket_moved_on_is_marked_delivered(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    """The red key pressed right after green: the cancel commits while "call registered" is
    being handed to the box. The box hears both, in order, and both rows say delivered."""
    box = SimulatedDevice(BOX, "call_box", KEY)
    cancelled = Indication(IndicationKind.CANCELLED, 7, LedPattern.RED_SOLID, 6)
    async with (
        GatewayService(slow_retry_settings(tmp_path, broker)) as gw,
        MqttFleet("127.0.0.1", broker.port, [box]) as fleet,
    ):
        await gw.register_device(BOX, "call_box", KEY)
        await send_until_acked(fleet, box, box.heartbeat())
        assert gw.mqtt is not None
        link = gw.mqtt
        hand_over = link.send_downlink

        async def ticket_moves_on_meanwhile(device_id: str, frame: bytes) -> None:
            if not any(r.indication == cancelled for r in await gw.store.indications.all(BOX)):
                await commit_indications(gw.store, cancelled, at=gw.clock.now())
            await hand_over(device_id, frame)

        link.send_downlink = ticket_moves_on_meanwhile  # type: ignore[method-assign]
        await commit_indications(gw.store, ACCEPTED, at=gw.clock.now())
        gw.indications.wake()
        await wait_for(lambda: len(box.indications) == 2, what="both indications on the box")
        assert box.indications == [ACCEPTED, cancelled]

        async def both_delivered() -> bool:
            rows = await gw.store.indications.all(BOX)
            return [r.status for r in rows] == ["delivered", "delivered"]

        await wait_for(both_delivered, what="both rows marked delivered")
        assert sample(gw, "bidao_indications_total", outcome="delivered") == 2


async def test_an_indication_the_broker_never_confirmed_reaches_the_box_after_a_reconnect(
    tmp_path: Path, broker: MosquittoBroker, no_leaked_tasks: None
) -> None:
    """Handed to the link (so marked delivered), then the broker hangs before reading it and
    is killed: the link publishes it again on its next connection, and the box hears it."""
    box = SimulatedDevice(BOX, "call_box", KEY)
    # A box keeps its session a day (docs/protocol.md section 7): the broker queues for it.
    async with (
        GatewayService(slow_retry_settings(tmp_path, broker)) as gw,
        MqttFleet("127.0.0.1", broker.port, [box], session_expiry_s=86400) as fleet,
    ):
        assert gw.mqtt is not None
        await gw.register_device(BOX, "call_box", KEY)
        await send_until_acked(fleet, box, box.heartbeat())
        # A graceful restart saves the box's session and subscription, so the broker that
        # comes back after the kill below queues the box's downlinks even before it returns.
        await asyncio.to_thread(broker.restart)
        await gw.mqtt.wait_connected(30)
        await send_until_acked(fleet, box, box.heartbeat())
        broker.pause()
        await commit_indications(gw.store, ACCEPTED, at=gw.clock.now())
        gw.indications.wake()
        await wait_for(lambda: delivered(gw, BOX), what="the indication handed to the link")
        assert gw.mqtt.in_flight == 1  # written to a broker that reads nothing
        broker.kill()
        broker.start()
        await broker.wait_ready()
        await wait_for(lambda: box.indications == [ACCEPTED], what="the box hears it after all")
        assert sample(gw, "bidao_downlinks_resent_total") == 1
        assert sample(gw, "bidao_indications_total", outcome="delivered") == 1
