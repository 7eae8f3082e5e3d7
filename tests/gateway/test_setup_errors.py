"""A box set up wrongly never loses a call for help; a box silent for a day is noticed.

Real parts: the gateway on the test mosquitto, the box simulated over MQTT, the real twilio
library against the fake phone network, `bidao` as a subprocess on the same data folder.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api.runner import build_provider
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork
from firmware_protocol import AckCode, IndicationKind, Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.domain.devices import DeviceRecord
from gateway.domain.tickets import decide as real_decide
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY, HOUSEHOLD
from tests.gateway.support import gateway_settings, load_grid, sample, wait_for
from tests.gateway.village import (
    ACCOUNT,
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    LOOSE_BOX,
    LOOSE_KEY,
    NOBODY_REACHED_ZH,
    POLL_S,
    TOKEN,
    TOWNSHIP_PHONE,
    TYPO_BOX,
    TYPO_HOUSEHOLD,
    TYPO_KEY,
    Village,
)


async def test_a_box_without_a_household_is_acked_raises_an_alarm_and_tells_the_township(
    village: Village,
) -> None:
    gw = village.gw
    # As an installer would: the box registered to its township, no household yet.
    await for_service(gw).register_device(
        LOOSE_BOX, "call_box", LOOSE_KEY, unit_code="341504-101", actor="installer"
    )

    seq = await village.press(LOOSE_BOX)

    assert seq in village.boxes[LOOSE_BOX].acked
    alarms = await gw.store.devices.alarms()
    assert [(a.kind, a.device_id, a.count) for a in alarms] == [("unassigned_call", LOOSE_BOX, 1)]
    # The resident hears the truth: nobody is being called for this box.
    [ticket] = await gw.store.tickets.all()
    assert await village.box_hears(LOOSE_BOX) == (
        IndicationKind.NOBODY_REACHED,
        ticket.id,
        NOBODY_REACHED_ZH,
    )
    assert await village.texts_to(TOWNSHIP_PHONE) == [
        "【必到】呼叫盒b1da000000000002按下了呼叫键，但未绑定住户，无法通知责任人。请尽快核实。"
    ]
    assert sample(gw, "bidao_operator_alarms_total", kind="unassigned_call") == 1
    # The press is on record; nobody else was sent anything.
    assert [t.device_id for t in await gw.store.tickets.all()] == [LOOSE_BOX]
    assert {n.recipient for n in await gw.store.outbox.notifications()} == {TOWNSHIP_PHONE}

    listed = await village.cli("alarms")
    assert listed.returncode == 0, listed.stderr
    assert "未绑定住户的呼叫" in listed.stdout
    assert LOOSE_BOX in listed.stdout
    assert "共 1 条告警" in listed.stdout

    # Pressed again at once: counted on the same alarm; the township is not texted twice.
    await village.press(LOOSE_BOX)
    alarms = await gw.store.devices.alarms()
    assert [(a.kind, a.count) for a in alarms] == [("unassigned_call", 2)]
    cleared = await village.cli("alarms", "clear", str(alarms[0].id), "--by", "operator")
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout.startswith(f"告警 {alarms[0].id} 已清除（未绑定住户的呼叫")
    assert await gw.store.devices.alarms() == []
    assert len(await village.texts_to(TOWNSHIP_PHONE)) == 1


async def test_a_box_registered_to_a_household_that_does_not_exist_still_gets_its_ack(
    village: Village,
) -> None:
    gw = village.gw
    # A box registered before `device add` checked households (the CLI refuses it now).
    async with gw.store.transaction() as uow:
        await uow.devices.add(
            DeviceRecord(
                device_id=TYPO_BOX,
                kind="call_box",
                key=TYPO_KEY,
                heartbeat_interval_s=60,
                created_at=village.clock.now(),
                household_code=TYPO_HOUSEHOLD,
            )
        )

    seq = await village.press(TYPO_BOX)

    # Acked, never failed on the foreign key; the township of the code's village is told.
    assert seq in village.boxes[TYPO_BOX].acked
    assert seq not in village.boxes[TYPO_BOX].nacked
    alarms = await gw.store.devices.alarms()
    assert [(a.kind, a.device_id, a.detail) for a in alarms] == [
        ("unknown_household", TYPO_BOX, f"household {TYPO_HOUSEHOLD} does not exist")
    ]
    assert await village.texts_to(TOWNSHIP_PHONE) == [
        (
            "【必到】呼叫盒b1da000000000003按下了呼叫键，但它登记的住户341504-101-001-0099不存在，"
            "无法通知责任人。请尽快核实。"
        )
    ]
    tickets = await gw.store.tickets.all()
    assert [(t.device_id, t.household_code) for t in tickets] == [(TYPO_BOX, None)]
    assert await village.box_hears(TYPO_BOX) == (
        IndicationKind.NOBODY_REACHED,
        tickets[0].id,
        NOBODY_REACHED_ZH,
    )

    # The installer puts it right: attach is refused (it has a household), move is not.
    refused = await village.cli("device", "attach", TYPO_BOX, HOUSEHOLD)
    assert refused.returncode == 2
    assert "请用 bidao device move" in refused.stderr
    moved = await village.cli("device", "move", TYPO_BOX, "341504-101-001-0002")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.startswith(
        f"已将 {TYPO_BOX} 从住户 {TYPO_HOUSEHOLD} 移到住户 341504-101-001-0002\n"
    )


async def test_a_rule_that_raises_costs_no_ack_and_no_other_call(
    village: Village, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = village.gw

    def broken(ticket, command, context, now):  # type: ignore[no-untyped-def]
        if ticket.household_code == HOUSEHOLD:
            raise RuntimeError("a bug in the rules")
        return real_decide(ticket, command, context, now)

    monkeypatch.setattr("gateway.services.tickets.decide", broken)
    await for_service(gw).register_device(
        LOOSE_BOX, "call_box", LOOSE_KEY, unit_code="341504-101", actor="installer"
    )
    # Both pressed together: whether in one batch or two, each is settled on its own.
    box, loose = village.boxes[BOX_ID], village.boxes[LOOSE_BOX]
    await village.fleet.send(BOX_ID, box.press(Key.GREEN_CALL))
    await village.fleet.send(LOOSE_BOX, loose.press(Key.GREEN_CALL))
    await wait_for(lambda: not box.pending and not loose.pending, what="both presses acked")
    assert not box.nacked
    assert not loose.nacked

    kinds = {a.kind: a for a in await gw.store.devices.alarms()}
    assert set(kinds) == {"call_failed", "unassigned_call"}
    assert kinds["call_failed"].detail == "RuntimeError: a bug in the rules"
    # The failed press left nothing half-written; the other press's ticket stands.
    assert [t.device_id for t in await gw.store.tickets.all()] == [LOOSE_BOX]
    # The press that became no ticket: its box hears that nobody could be reached.
    assert await village.box_hears(BOX_ID) == (IndicationKind.NOBODY_REACHED, 0, NOBODY_REACHED_ZH)
    texts = await village.texts_to(TOWNSHIP_PHONE, 2)
    assert sorted(texts) == sorted(
        [
            (
                "【必到】张桂兰（桥元村三组12号）的呼叫盒b1da000000000001按下了呼叫键，"
                "但系统未能生成工单，责任人可能没有收到通知。请尽快联系老人。"
            ),
            "【必到】呼叫盒b1da000000000002按下了呼叫键，但未绑定住户，无法通知责任人。请尽快核实。",
        ]
    )


async def test_a_move_and_a_removal_by_the_cli_reach_the_running_gateway(
    village: Village,
) -> None:
    gw, box = village.gw, village.boxes[BOX_ID]
    await village.press(BOX_ID, Key.THUMBS_UP)  # the box is now cached by the gateway
    state = gw.registry.cached(BOX_ID)
    assert state is not None
    assert state.record.household_code == HOUSEHOLD

    moved = await village.cli("device", "move", BOX_ID, "341504-101-001-0002", "--by", "老王")
    assert moved.returncode == 0, moved.stderr
    assert "正在运行的网关最迟 5 秒内生效。" in moved.stdout
    await village.clock.advance(POLL_S)
    await wait_for(lambda: state.record.household_code == "341504-101-001-0002", what="move seen")

    removed = await village.cli("device", "remove", BOX_ID, "--by", "老王")
    assert removed.returncode == 0, removed.stderr
    await village.clock.advance(POLL_S)
    await wait_for(lambda: not state.record.enabled, what="removal seen")
    seq = await village.press(BOX_ID)
    assert box.nacked[seq] == AckCode.NACK_DEVICE_DISABLED

    history = await gw.store.devices.history(BOX_ID)
    assert [(h.action, h.from_household, h.to_household, h.actor) for h in history] == [
        ("moved", HOUSEHOLD, "341504-101-001-0002", "老王"),
        ("removed", "341504-101-001-0002", None, "老王"),
    ]


async def test_a_box_silent_for_a_day_is_told_once_and_back_online_is_told(
    village: Village,
) -> None:
    gw, clock, box = village.gw, village.clock, village.boxes[BOX_ID]
    await village.fleet.send(BOX_ID, box.heartbeat())
    await wait_for(lambda: not box.pending, what="heartbeat acked")
    heard_at = clock.now()

    # Three missed minutes: offline; the day's notice is due a day after the last frame.
    await clock.advance(3 * 60 + 1)
    await wait_for(
        lambda: (s := gw.registry.cached(BOX_ID)) is not None and s.status == "offline",
        what="declared offline",
    )
    await clock.advance(heard_at + 86_400 - clock.now() - 1)
    assert village.phones.received(GRID_WORKER_PHONE) == []
    await clock.advance(1)
    assert await village.texts_to(GRID_WORKER_PHONE) == [
        "【必到】张桂兰家的呼叫盒已24小时没有信号，请帮忙查看电源和网络。"
    ]
    # 张桂兰 lives alone: her daughter heard within the hour from the device health alarm
    # (tests/gateway/test_device_health.py), so the day's notice is not sent to her again.
    [daughter] = await village.texts_to(DAUGHTER_PHONE)
    assert daughter.startswith("[Bidao] The call box at 张桂兰's home (桥元村三组12号) has had no")
    assert {n.template for n in await gw.store.outbox.notifications()} == {
        "device_offline",
        "health_family_offline",
    }

    # Once per spell: another day of silence sends nothing more.
    await clock.advance(86_400)
    assert len(await gw.store.outbox.notifications()) == 2

    # Back after 2 days and 1 hour of silence.
    await clock.advance(heard_at + 49 * 3600 - clock.now())
    await village.fleet.send(BOX_ID, box.heartbeat())
    await wait_for(lambda: not box.pending, what="heartbeat acked")
    texts = await village.texts_to(GRID_WORKER_PHONE, 2)
    assert texts[1] == "【必到】张桂兰家的呼叫盒已恢复信号（此前49小时没有信号）。"
    assert await gw.store.devices.offline_notices() == []
    assert sample(gw, "bidao_device_notices_total", kind="device_back_online") == 1


async def test_no_storm_of_offline_notices_after_a_restart(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> None:
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        settings = gateway_settings(
            tmp_path,
            broker,
            notify={
                "provider": "twilio",
                "twilio_account_sid": ACCOUNT,
                "twilio_auth_token": TOKEN,
                "twilio_from": "+8657100000000",
                "twilio_api_base_url": phones.url,
                "send_timeout_s": 20.0,  # only a guard: 2 s made ordinary sends in doubt under load
            },
            supervision={"changes_poll_s": 3600.0},
        )
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        gw = GatewayService(settings, clock, build_provider(settings))
        async with gw:
            await load_grid(gw)
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                await fleet.send(BOX_ID, box.heartbeat())
                await wait_for(lambda: not box.pending, what="heartbeat acked")
            heard_at = clock.now()
            await clock.advance(3 * 60 + 1)
            await wait_for(
                lambda: (s := gw.registry.cached(BOX_ID)) is not None and s.status == "offline",
                what="declared offline",
            )
            gw.request_stop()
            await gw.stopped()

        # Down for three days: the stored notice is long overdue, but the gateway heard
        # nothing because it was not listening. It waits a whole day of listening first.
        await clock.advance(3 * 86_400)
        again = GatewayService(settings, clock, build_provider(settings))
        async with again:
            started = clock.now()
            await again.scheduler.fire_due(clock.now())
            assert await again.store.outbox.notifications() == []
            await clock.advance(86_400 - 1)
            assert await again.store.outbox.notifications() == []
            await clock.advance(1)
            hours = int((started + 86_400 - heard_at) // 3600)
            assert hours == 4 * 24
            await wait_for(
                lambda: len(phones.received(GRID_WORKER_PHONE)) == 1, timeout=20, what="one SMS"
            )
            sms = phones.received(GRID_WORKER_PHONE)
            assert [r.body for r in sms] == [
                f"【必到】张桂兰家的呼叫盒已{hours}小时没有信号，请帮忙查看电源和网络。"
            ]
            # And the daughter, told by the health alarm an hour after the restart.
            assert {n.template for n in await again.store.outbox.notifications()} == {
                "device_offline",
                "health_family_offline",
            }
            await asyncio.to_thread(phones.wait_idle)
