"""What the box says is true: each indication checked word for word against what happened.

Real parts: the gateway on the test mosquitto, the SQLite store, the box simulated over
MQTT; the words come from the one table (firmware_protocol.indications) the box would play.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import (
    AckCode,
    AlarmKind,
    Indication,
    IndicationKind,
    Key,
    LedPattern,
)
from firmware_protocol.indications import ARE_YOU_OK_ANSWER_S, heard, indication
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY, DEPUTY, SECRETARY
from tests.gateway.support import gateway_settings, load_grid, sample, wait_for

MINUTE = 60.0
METER, METER_KEY = "b1da0000000000f1", bytes(range(48, 64))


@dataclass
class Village:
    gw: GatewayService
    box: SimulatedDevice
    meter: SimulatedDevice
    fleet: MqttFleet
    clock: ManualClock

    async def send(self, device: SimulatedDevice, frame: bytes) -> int:
        """Send a frame; wait until the gateway answered it (ack or nack); its seq."""
        seq = device.next_seq - 1
        await self.fleet.send(device.device_id, frame)
        await wait_for(lambda: seq in device.acked or seq in device.nacked, what="answered")
        return seq

    async def hears(self, count: int) -> Indication:
        """The box's `count`-th indication, once it has arrived."""
        await wait_for(lambda: len(self.box.indications) >= count, what=f"indication {count}")
        return self.box.indications[count - 1]

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)
        await self.gw.scheduler.fire_due(self.clock.now())

    def words(self, shown: Indication) -> tuple[LedPattern, str, str]:
        said = heard(shown)
        assert said is not None, f"the box has no prompt {shown.voice_prompt} for {shown.kind}"
        return said.led, said.zh, said.en


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    meter = SimulatedDevice(METER, "water_meter", METER_KEY, clock=clock.now)
    async with GatewayService(gateway_settings(tmp_path, broker), clock) as gw:
        await load_grid(gw)
        await gw.register_device(METER, "water_meter", METER_KEY)
        assert gw.mqtt is not None
        await gw.mqtt.wait_connected(10)
        async with MqttFleet("127.0.0.1", broker.port, [box, meter]) as fleet:
            yield Village(gw, box, meter, fleet, clock)


async def test_call_registered_then_help_coming_names_who_accepted(village: Village) -> None:
    v = village
    await v.send(v.box, v.box.press(Key.GREEN_CALL))
    ticket = (await v.gw.store.tickets.all())[-1]
    registered = await v.hears(1)
    # Registered, not "accepted": nobody has accepted yet, and the box does not say so.
    assert (registered.kind, registered.ticket_ref, registered.voice_prompt) == (
        IndicationKind.CALL_REGISTERED,
        ticket.id,
        1,
    )
    assert v.words(registered) == (
        LedPattern.GREEN_BLINK,
        "您的呼叫已登记，正在为您联系帮手，请稍候。",
        "Your call is registered. We are contacting someone to help you; please wait.",
    )
    assert ticket.owner_contact_id is None

    await v.gw.tickets.accept(ticket.id, SECRETARY, "voice_keypress")
    coming = await v.hears(2)
    assert (coming.kind, coming.voice_prompt) == (IndicationKind.HELPER_ON_THE_WAY, 21)
    assert v.words(coming) == (
        LedPattern.GREEN_SOLID,
        "村书记已接下您的呼叫，正在赶来。",
        "The village secretary has taken your call and is on the way.",
    )
    # Handed over to the deputy before arriving: the box hears who is coming now.
    await v.gw.tickets.reassign(ticket.id, DEPUTY, SECRETARY, "dashboard")
    handed = await v.hears(3)
    assert v.words(handed)[1:] == (
        "副书记已接下您的呼叫，正在赶来。",
        "The deputy secretary has taken your call and is on the way.",
    )


async def test_when_the_chain_runs_out_the_box_says_nobody_could_be_reached(
    village: Village,
) -> None:
    v = village
    await v.send(v.box, v.box.press(Key.GREEN_CALL))
    assert (await v.hears(1)).kind == IndicationKind.CALL_REGISTERED
    # Nobody accepts: deputy, grid worker, township, then the chain is exhausted.
    for _ in range(4):
        await v.advance(5 * MINUTE + 1)
    ticket = (await v.gw.store.tickets.all())[-1]
    kinds = [e.kind for e in await v.gw.store.tickets.events(ticket.id)]
    assert kinds.count("escalated") == 3
    assert kinds[-1] == "escalation_exhausted"
    told = await v.hears(2)
    assert (told.kind, told.ticket_ref, told.voice_prompt) == (
        IndicationKind.NOBODY_REACHED,
        ticket.id,
        8,
    )
    assert v.words(told) == (
        LedPattern.RED_BLINK,
        "没有联系到能来帮助您的人。请拨打110或120，或联系您的家人。",
        (
            "Nobody who can come to help you could be reached. Please call 110 or 120, or "
            "your family."
        ),
    )
    # Someone called earlier can still take it, and then the box says so.
    await v.gw.tickets.accept(ticket.id, DEPUTY, "voice_keypress")
    assert (await v.hears(3)).voice_prompt == 22


async def ask_are_you_ok(v: Village) -> None:
    """What the water watch will do: write the question; the sender delivers it."""
    await v.send(v.box, v.box.heartbeat())  # the box is heard, so it can be reached
    async with v.gw.store.transaction() as uow:
        await uow.indications.add(
            [(BOX_ID, indication(IndicationKind.ARE_YOU_OK, 0))], v.clock.now()
        )
    v.gw.indications.wake()


async def test_a_thumbs_up_within_the_window_answers_are_you_ok(village: Village) -> None:
    v = village
    await ask_are_you_ok(v)
    asked = await v.hears(1)
    assert v.words(asked) == (
        LedPattern.AMBER_BLINK,
        "您还好吗？平安请按大拇指向上键；需要帮助请按绿键。",
        "Are you OK? If you are, press thumbs-up. If you need help, press the green key.",
    )
    await wait_for(
        lambda: sample(v.gw, "bidao_indications_total", outcome="delivered") == 1,
        what="question delivered",
    )
    await v.advance(ARE_YOU_OK_ANSWER_S - 1)
    await v.send(v.box, v.box.press(Key.THUMBS_UP))
    noted = await v.hears(2)
    assert (noted.kind, noted.ticket_ref) == (IndicationKind.ANSWER_NOTED, 0)
    assert v.words(noted)[1:] == ("收到您的回答，谢谢。", "Thank you, your answer is noted.")
    assert sample(v.gw, "bidao_tickets_total", event="are_you_ok_answered") == 1
    # The answer is stored: the question and the noted answer, in order.
    stored = [r.indication.kind for r in await v.gw.store.indications.all(BOX_ID)]
    assert stored == [IndicationKind.ARE_YOU_OK, IndicationKind.ANSWER_NOTED]
    # One answer per question: the next thumbs-up has nothing to answer or rate.
    await v.send(v.box, v.box.press(Key.THUMBS_UP))
    assert (await v.hears(3)).kind == IndicationKind.NOTHING_TO_RATE
    assert sample(v.gw, "bidao_tickets_total", event="are_you_ok_answered") == 1
    assert await v.gw.store.tickets.all() == []


async def test_a_thumbs_up_after_the_window_is_no_answer(village: Village) -> None:
    v = village
    await ask_are_you_ok(v)
    await v.hears(1)
    await wait_for(
        lambda: sample(v.gw, "bidao_indications_total", outcome="delivered") == 1,
        what="question delivered",
    )
    await v.advance(ARE_YOU_OK_ANSWER_S + 1)
    await v.send(v.box, v.box.press(Key.THUMBS_UP))
    late = await v.hears(2)
    assert late.kind == IndicationKind.NOTHING_TO_RATE
    assert v.words(late)[1:] == ("现在没有需要评价的事。", "There is nothing to rate now.")
    assert sample(v.gw, "bidao_tickets_total", event="are_you_ok_answered") == 0


async def test_keys_and_readings_only_from_the_kinds_that_have_them(village: Village) -> None:
    v = village
    # A meter's green key: refused with a nack, never a ticket, never stored.
    seq = await v.send(v.meter, v.meter.press(Key.GREEN_CALL))
    assert v.meter.nacked == {seq: AckCode.NACK_NOT_FOR_KIND}
    # A call box's water reading and leak alarm: refused the same way.
    reading = await v.send(v.box, v.box.water_reading(1234, 0, 0))
    leak = await v.send(v.box, v.box.alarm(AlarmKind.LEAK))
    assert v.box.nacked == {
        reading: AckCode.NACK_NOT_FOR_KIND,
        leak: AckCode.NACK_NOT_FOR_KIND,
    }
    assert sample(v.gw, "bidao_frames_nacked_total", transport="mqtt", reason="wrong_kind") == 3
    assert await v.gw.store.tickets.all() == []
    assert await v.gw.store.devices.count_events() == 0
    assert await v.gw.store.devices.alarms() == []
    # What each kind does have is taken: a meter's leak, a box's low battery and its key.
    ok = [
        await v.send(v.meter, v.meter.water_reading(1234, 10, 0)),
        await v.send(v.meter, v.meter.alarm(AlarmKind.LEAK)),
    ]
    assert set(ok) <= v.meter.acked
    await v.send(v.box, v.box.alarm(AlarmKind.LOW_BATTERY, value=3300))
    await v.send(v.box, v.box.press(Key.GREEN_CALL))
    assert not v.box.pending
    assert len(v.box.nacked) == 2
    assert [t.device_id for t in await v.gw.store.tickets.all()] == [BOX_ID]
    assert await v.gw.store.devices.count_events() == 4
