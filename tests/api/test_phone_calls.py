"""Notifications end to end: the real twilio library, the fake phone network, real webhooks."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from api.app import http_component
from api.cli import build_provider
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork, twilio_signature
from firmware_protocol import IndicationKind, Key
from gateway.broker import MosquittoBroker, free_loopback_port
from gateway.clock import ManualClock
from gateway.service import GatewayService
from gateway.store import Ticket
from tests.gateway.grid import BOX_ID, BOX_KEY, CONTACTS_CSV, HOUSEHOLDS_CSV, SECRETARY, UNITS_CSV
from tests.gateway.support import gateway_settings, wait_for

ACCOUNT = "AC" + "b1da" * 8
TOKEN = "fake-network-auth-token"
SECRETARY_PHONE, DEPUTY_PHONE, CHIEF_PHONE = "13800000001", "13800000002", "13800000004"


@dataclass
class Line:
    gw: GatewayService
    phones: FakePhoneNetwork
    box: SimulatedDevice
    fleet: MqttFleet
    clock: ManualClock
    public_url: str

    async def call_for_help(self) -> Ticket:
        await self.fleet.send(BOX_ID, self.box.press(Key.GREEN_CALL))
        await wait_for(lambda: not self.box.pending, what="press acked")
        return (await self.gw.store.tickets())[-1]

    async def ticket(self) -> Ticket:
        return (await self.gw.store.tickets())[-1]

    async def status_is(self, status: str) -> None:
        async def reached() -> bool:
            return (await self.ticket()).status == status

        await wait_for(reached, timeout=20, what=f"ticket {status}")


@pytest.fixture
async def line(tmp_path: Path, broker: MosquittoBroker, clock: ManualClock) -> AsyncIterator[Line]:
    port = free_loopback_port()
    public_url = f"http://127.0.0.1:{port}"
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        settings = gateway_settings(
            tmp_path,
            broker,
            http={"port": port},
            notify={
                "provider": "twilio",
                "public_url": public_url,
                "twilio_account_sid": ACCOUNT,
                "twilio_auth_token": TOKEN,
                "twilio_from": "+8657100000000",
                "twilio_api_base_url": phones.url,
                "retry_initial_s": 10,
            },
        )
        gw = GatewayService(settings, clock, build_provider(settings))
        gw.add_component("http", http_component(gw))
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        async with gw:
            for kind, text in (
                ("units", UNITS_CSV),
                ("households", HOUSEHOLDS_CSV),
                ("contacts", CONTACTS_CSV),
            ):
                await gw.import_csv(kind, text)  # type: ignore[arg-type]
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            await wait_for(lambda: asyncio.to_thread(_up, public_url), what="HTTP server up")
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                yield Line(gw, phones, box, fleet, clock, public_url)
                await asyncio.to_thread(phones.wait_idle)


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1):
            return True
    except OSError:
        return False


async def test_secretary_presses_1_and_the_ticket_is_accepted(line: Line) -> None:
    ticket = await line.call_for_help()
    await line.status_is("accepted")
    ticket = await line.ticket()
    assert ticket.owner_contact_id == SECRETARY
    events = await line.gw.store.ticket_events(ticket.id)
    assert [(e.kind, e.channel) for e in events][-1] == ("accepted", "voice_keypress")
    await wait_for(
        lambda: any(i.kind == IndicationKind.HELPER_ON_THE_WAY for i in line.box.indications),
        what="the box hears help is coming",
    )
    call = next(r for r in line.phones.received(SECRETARY_PHONE) if r.kind == "call")
    assert call.pressed == "1"
    assert 'language="cmn-CN"' in call.spoken[0]
    assert "张桂兰，桥元村三组，按下了呼叫键" in call.spoken[0]
    assert "您已接单" in call.spoken[1]
    sms = next(r for r in line.phones.received(SECRETARY_PHONE) if r.kind == "sms")
    assert sms.body.startswith("【必到】张桂兰")
    await asyncio.to_thread(line.phones.wait_idle)

    async def all_delivered() -> bool:
        return {s[1] for s in await line.gw.store.outbox_states()} <= {"delivered"}

    await wait_for(all_delivered, what="every SMS delivered and every call completed")


async def test_secretary_presses_2_and_the_deputy_is_called(line: Line) -> None:
    line.phones.script(SECRETARY_PHONE).digits = "2"
    line.phones.script(DEPUTY_PHONE).digits = ""  # answers, presses nothing
    await line.call_for_help()
    await wait_for(
        lambda: any(r.kind == "call" for r in line.phones.received(DEPUTY_PHONE)),
        timeout=20,
        what="deputy called",
    )
    assert (await line.ticket()).status == "open"
    kinds = [e.kind for e in await line.gw.store.ticket_events((await line.ticket()).id)]
    assert kinds[:3] == ["opened", "declined", "escalated"]


async def test_voicemail_does_not_accept(line: Line) -> None:
    line.phones.script(SECRETARY_PHONE).behaviour = "voicemail"
    await line.call_for_help()
    await wait_for(
        lambda: (
            "completed" in [s for r in line.phones.received(SECRETARY_PHONE) for s in r.statuses]
        ),
        timeout=20,
        what="call ended",
    )
    await asyncio.to_thread(line.phones.wait_idle)
    assert (await line.ticket()).status == "open"
    assert all(not r.pressed for r in line.phones.received(SECRETARY_PHONE))


async def test_duplicated_and_reordered_callbacks_leave_the_right_state(line: Line) -> None:
    for number in (SECRETARY_PHONE, CHIEF_PHONE):
        script = line.phones.script(number)
        script.duplicate_callbacks = True
        script.reverse_callbacks = True
        script.digits = ""
    await line.call_for_help()

    async def settled() -> bool:
        states = await line.gw.store.outbox_states()
        return len(states) == 3 and all(s[1] == "delivered" for s in states)

    await wait_for(settled, timeout=20, what="final states despite reordering")
    states = await line.gw.store.outbox_states()
    assert [s[3] for s in states] == ["completed", "delivered", "delivered"]
    assert [s[2] for s in states] == [1, 1, 1]  # each sent once


async def test_provider_outage_is_retried_until_delivered(line: Line) -> None:
    line.phones.failures_left = 2
    line.phones.script(SECRETARY_PHONE).digits = ""
    await line.call_for_help()

    async def retried() -> bool:
        return any(s[1] == "pending" and s[2] >= 1 for s in await line.gw.store.outbox_states())

    await wait_for(retried, what="first attempts failed")
    await line.clock.advance(30)
    line.gw.outbox.wake()

    async def delivered() -> bool:
        states = await line.gw.store.outbox_states()
        return len(states) == 3 and all(s[1] == "delivered" for s in states)

    await wait_for(delivered, timeout=20, what="delivered after the outage")
    assert len(line.phones.received(SECRETARY_PHONE)) == 2  # one call, one SMS


@pytest.mark.parametrize("forgery", ["missing", "wrong_token", "wrong_url"])
async def test_forged_webhooks_get_403_and_change_nothing(line: Line, forgery: str) -> None:
    line.phones.script(SECRETARY_PHONE).digits = ""
    ticket = await line.call_for_help()
    url = f"{line.public_url}/webhooks/twilio/gather/1"
    params = {"CallSid": "CA" + "0" * 32, "Digits": "1", "AccountSid": ACCOUNT}
    signature = {
        "missing": "",
        "wrong_token": twilio_signature("not-the-token", url, params),
        "wrong_url": twilio_signature(
            TOKEN, "http://evil.invalid/webhooks/twilio/gather/1", params
        ),
    }[forgery]
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(params).encode(), method="POST"
    )
    if signature:
        request.add_header("X-Twilio-Signature", signature)
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
    assert refused.value.code == 403
    refused.value.close()
    assert (await line.ticket()).status == "open"
    assert ticket.id == (await line.ticket()).id
    rejected = line.gw.metrics.registry.get_sample_value(
        "bidao_webhooks_rejected_total", {"reason": "bad_signature"}
    )
    assert rejected == 1
