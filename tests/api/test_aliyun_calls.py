"""Notifications end to end through Alibaba Cloud: the official SDKs, the fake endpoint
(which checks their signatures), receipts pushed to the real webhooks."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.app import http_component
from api.runner import build_provider
from device_sim.aliyun import AliyunRecord, FakeAliyun
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import AnswerLost
from firmware_protocol import IndicationKind
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from tests.api.aliyun_support import RECEIPT_TOKEN, aliyun_notify, approved, fake_aliyun
from tests.api.phone_line import BoxLine
from tests.gateway.grid import BOX_ID, BOX_KEY, SECRETARY
from tests.gateway.support import gateway_settings, load_grid, sample, wait_for

SECRETARY_PHONE, DEPUTY_PHONE, CHIEF_PHONE = "13800000001", "13800000002", "13800000004"
FAMILY_PHONE = "+447700900123"


@dataclass
class Line(BoxLine):
    fake: FakeAliyun = field(kw_only=True)

    def calls(self, number: str) -> list[str]:
        """What each call to `number` said first."""
        return [r.text for r in self.fake.received(number) if r.kind == "call"]

    def wait_idle(self) -> None:
        self.fake.wait_idle()

    def taken(self) -> set[str]:
        return {r.id for r in self.fake.records}


def _cut_first_sms_to(number: str) -> Callable[[AliyunRecord], None]:
    """A `before_reply` that loses the answer to the first SMS to `number` (it is taken)."""
    lost: list[AliyunRecord] = []

    def cut(record: AliyunRecord) -> None:
        if record.kind == "sms" and record.to == number and not lost:
            lost.append(record)
            raise AnswerLost

    return cut


@pytest.fixture
def notify_overrides() -> dict[str, object]:
    """Notification settings a test changes (parametrize this name to override)."""
    return {}


@pytest.fixture
async def line(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock, notify_overrides: dict[str, object]
) -> AsyncIterator[Line]:
    port = free_loopback_port()
    public_url = f"http://127.0.0.1:{port}"
    with fake_aliyun(public_url) as fake:
        fake.push_retry_s = 0.05
        more: dict[str, object] = {
            "retry_initial_s": 10,
            "send_timeout_s": 20.0,
            "call_retry_after_s": 60,
            "bridge_to_resident": False,
            **notify_overrides,  # a test's own settings win
        }
        notify = aliyun_notify(public_url, fake, **more)
        settings = gateway_settings(tmp_path, broker, http={"port": port}, notify=notify)
        gw = GatewayService(settings, clock, build_provider(settings))
        gw.add_component("http", http_component(for_service(gw)))
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        async with gw:
            await load_grid(gw)
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            await wait_for(lambda: asyncio.to_thread(_up, public_url), what="HTTP server up")
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                yield Line(gw, box, fleet, clock, public_url, fake=fake)
                await asyncio.to_thread(fake.wait_idle)


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        exc.close()
        return True
    except OSError:
        return False


async def test_sms_under_its_template_and_a_1_pressed_accepts_the_ticket(line: Line) -> None:
    codes, _ = approved()
    await line.call_for_help()

    async def accepted() -> bool:
        return (await line.ticket()).status == "accepted"

    await wait_for(accepted, timeout=60, what="accepted by a key")
    ticket = await line.ticket()
    assert ticket.owner_contact_id == SECRETARY
    events = await line.gw.store.tickets.events(ticket.id)
    assert [(e.kind, e.channel) for e in events][1] == ("accepted", "voice_keypress")
    await wait_for(
        lambda: any(i.kind == IndicationKind.HELPER_ON_THE_WAY for i in line.box.indications),
        what="the box hears help is coming",
    )
    call = next(r for r in line.fake.received(SECRETARY_PHONE) if r.kind == "call")
    assert (call.action, call.template_code, call.out_id) == (
        "IvrCall",
        codes["tts.ticket_call"],
        "1",
    )
    assert call.heard[0].startswith("张桂兰（桥元村三组12号，电话13912345678）按下了呼叫键")
    assert call.heard[0].endswith("接单并前往请按1，无法前往、转给下一位请按2。")
    assert call.pressed == "1"
    assert call.heard[1].startswith("您已接单")
    assert call.menu == {"1": codes["tts.voice_accepted"], "2": codes["tts.voice_passed_on"]}
    sms = [r for r in line.fake.received(SECRETARY_PHONE) if r.kind == "sms"]
    first = sms[0]
    assert first.template_code == codes["sms.ticket_call"]
    assert first.params == {
        "resident": "张桂兰",
        "place": "桥元村三组12号",
        "phone": "13912345678",
        "ticket": "1",
    }
    assert first.text == (
        "【必到】张桂兰（桥元村三组12号，电话13912345678）按下了呼叫键，请尽快联系或上门。工单1。"
    )
    await line.until(
        lambda es: any(
            e.template == "ticket_accepted_link" and e.status == "delivered" for e in es
        ),
        "the one going is told how to report",
    )
    # Carriers take no variable links: the plain variant's template goes out.
    told = [r for r in line.fake.received(SECRETARY_PHONE) if r.kind == "sms"][1:]
    assert codes["sms.ticket_accepted"] in {r.template_code for r in told}
    assert not any("http" in r.text for r in told)
    await line.each_sent_once()
    mine = [e for e in await line.entries() if e.recipient == SECRETARY_PHONE]
    assert {e.status for e in mine} == {"delivered"}
    assert all(e.attempts == 1 for e in mine)


async def test_a_2_pressed_passes_it_on_and_the_deputy_is_called(line: Line) -> None:
    line.fake.phone(SECRETARY_PHONE).digits = "2"
    line.fake.phone(DEPUTY_PHONE).digits = ""
    await line.call_for_help()
    await wait_for(lambda: bool(line.calls(DEPUTY_PHONE)), timeout=60, what="deputy called")
    assert (await line.ticket()).status == "open"
    kinds = [e.kind for e in await line.gw.store.tickets.events((await line.ticket()).id)]
    assert kinds[:3] == ["opened", "declined", "escalated"]
    secretary = next(r for r in line.fake.received(SECRETARY_PHONE) if r.kind == "call")
    assert secretary.heard[1] == "好的，已转给下一位。"
    await line.each_sent_once()


async def test_no_answer_is_called_once_more_then_the_next_is_called(line: Line) -> None:
    line.fake.phone(SECRETARY_PHONE).behaviour = "no_answer"
    line.fake.phone(DEPUTY_PHONE).digits = ""
    await line.call_for_help()
    await line.until(
        lambda es: any(e.origin_kind == "retry" for e in es), "the call is to be placed again"
    )
    assert not line.calls(DEPUTY_PHONE)
    await line.clock.advance(61)
    await wait_for(lambda: bool(line.calls(DEPUTY_PHONE)), timeout=60, what="deputy called")
    assert len(line.calls(SECRETARY_PHONE)) >= 2
    events = await line.events()
    assert ("no_answer", "step 0") in events
    assert ("escalated", "deputy_secretary: no answer") in events
    await line.each_sent_once()


@pytest.mark.parametrize("blacklisted", [False, True])
async def test_a_failed_sms_falls_back_to_voice_but_a_blacklisted_number_is_flagged(
    line: Line, blacklisted: bool
) -> None:
    chief = line.fake.phone(CHIEF_PHONE)
    chief.digits = ""
    if blacklisted:
        chief.behaviour = "blacklisted"
    else:
        chief.sms_fails = True
    line.fake.phone(SECRETARY_PHONE).digits = ""
    await line.call_for_help()
    await line.until(
        lambda es: any(e.recipient == CHIEF_PHONE and e.status == "failed" for e in es),
        "the SMS to the chief failed",
    )
    if not blacklisted:
        await line.until(
            lambda es: any(e.origin_kind == "fallback" and e.status == "delivered" for e in es),
            "the voice fallback went through",
        )
        [said] = line.calls(CHIEF_PHONE)
        assert said.startswith("张桂兰（桥元村三组12号）已呼叫书记，请知悉。工单1。")
    else:
        await asyncio.to_thread(line.fake.wait_idle)
        contacts = {c.phone: c for c in await line.gw.store.grid.contacts()}
        assert contacts[CHIEF_PHONE].bad_number
        assert not line.calls(CHIEF_PHONE)
    await line.each_sent_once()


async def test_duplicated_and_reordered_receipts_leave_the_right_state(line: Line) -> None:
    line.fake.hold_receipts = True
    line.fake.phone(SECRETARY_PHONE).digits = "1"
    await line.call_for_help()
    await line.until(
        lambda es: len(es) >= 4 and all(e.status == "sent" for e in es[:3]), "all handed over"
    )
    await asyncio.to_thread(line.fake.wait_idle)
    assert line.fake.held
    line.fake.release_receipts(reverse=True, duplicate=True)

    async def accepted() -> bool:
        return (await line.ticket()).status == "accepted"

    await wait_for(accepted, timeout=60, what="accepted by the key in the receipt")
    entries = await line.entries()
    first = {e.id: e for e in entries[:3]}
    assert first[1].delivery == "completed"
    assert all(e.attempts == 1 for e in first.values())
    events = await line.gw.store.tickets.events(1)
    assert [e.kind for e in events].count("accepted") == 1  # the duplicate changed nothing
    assert not any(e.origin_kind == "retry" for e in entries)  # answered with a key
    await line.each_sent_once()


async def test_a_receipt_on_a_wrong_url_is_refused_and_changes_nothing(line: Line) -> None:
    line.fake.hold_receipts = True
    line.fake.phone(SECRETARY_PHONE).digits = "1"
    await line.call_for_help()
    await line.until(lambda es: len(es) >= 1 and es[0].status == "sent", "the call placed")
    call = next(r for r in line.fake.received(SECRETARY_PHONE) if r.kind == "call")
    forged = json.dumps(
        [{"call_id": call.id, "out_id": "1", "status_code": "200000", "dtmf": "1"}]
    ).encode()
    for token in ("not-" + RECEIPT_TOKEN, RECEIPT_TOKEN[:-1]):
        request = urllib.request.Request(
            f"{line.public_url}/webhooks/aliyun/{token}/voice-report", data=forged, method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            await asyncio.to_thread(urllib.request.urlopen, request, timeout=5)
        refused.value.close()
        assert refused.value.code == 403
    assert (await line.ticket()).status == "open"
    assert (await line.entries())[0].delivery != "completed"


@pytest.mark.parametrize(
    "notify_overrides", [{"aliyun_access_key_secret": "not-the-secret", "max_attempts": 2}]
)
async def test_a_wrong_access_key_secret_is_refused_by_the_endpoint_and_alarms_the_operator(
    line: Line,
) -> None:
    await line.call_for_help()

    async def alarmed() -> bool:
        return any(a.kind == "provider_refused" for a in await line.gw.store.devices.alarms())

    await wait_for(alarmed, timeout=60, what="an operator alarm")
    assert line.fake.records == []
    assert set(line.fake.rejected) == {"SignatureDoesNotMatch"}
    [alarm] = [a for a in await line.gw.store.devices.alarms() if a.kind == "provider_refused"]
    assert "SignatureDoesNotMatch" in alarm.detail


async def test_the_carrier_s_flow_control_holds_and_retries(line: Line) -> None:
    line.fake.per_number_per_hour = 1
    line.fake.phone(SECRETARY_PHONE).digits = ""
    await line.call_for_help()
    await line.until(
        lambda es: any(
            e.recipient == SECRETARY_PHONE and (e.last_error or "").startswith("isv.BUSINESS")
            for e in es
        ),
        "the second message to the secretary held by flow control",
    )
    held = next(
        e
        for e in await line.entries()
        if e.recipient == SECRETARY_PHONE and (e.last_error or "").startswith("isv.BUSINESS")
    )
    assert held.status == "pending"  # to be retried, not failed
    contacts = {c.phone: c for c in await line.gw.store.grid.contacts()}
    assert not contacts[SECRETARY_PHONE].bad_number
    assert ("provider:isv.BUSINESS_LIMIT_CONTROL") not in {
        a.device_id for a in await line.gw.store.devices.alarms()
    }
    line.fake.per_number_per_hour = None
    await line.clock.advance(30)
    line.gw.outbox.wake()
    await line.until(
        lambda es: next(e for e in es if e.id == held.id).status == "delivered",
        "sent once the carrier lets it through",
    )
    await line.each_sent_once()


async def test_an_sms_taken_but_its_answer_lost_is_found_by_query_send_details(
    line: Line,
) -> None:
    line.fake.hold_receipts = True  # no receipt settles it: only the lookup can
    line.fake.phone(SECRETARY_PHONE).digits = ""
    line.fake.before_reply = _cut_first_sms_to(CHIEF_PHONE)  # the gateway cannot know: in doubt
    await line.call_for_help()
    await line.until(
        lambda es: any(
            e.recipient == CHIEF_PHONE and e.attempts == 1 and e.status == "pending" for e in es
        ),
        "the SMS to the chief in doubt",
    )
    await line.clock.advance(30)  # past the backoff: look it up before sending again
    line.gw.outbox.wake()
    await line.until(
        lambda es: next(e for e in es if e.recipient == CHIEF_PHONE).provider_id is not None,
        "found at the provider",
    )
    chief = next(e for e in await line.entries() if e.recipient == CHIEF_PHONE)
    [taken] = line.fake.received(CHIEF_PHONE)
    assert (chief.provider_id, chief.status) == (f"out-{taken.out_id}", "delivered")
    assert str(chief.id) == taken.out_id
    assert (
        sample(line.gw, "bidao_notifications_total", channel="sms", outcome="found_at_provider")
        == 1
    )


@pytest.mark.parametrize(
    "notify_overrides", [{"carrier_limits": [{"channel": "sms", "window_s": 60, "count": 1}]}]
)
async def test_carrier_limits_hold_a_message_until_allowed_and_urgent_ones_go_at_once(
    line: Line,
) -> None:
    codes, _ = approved()
    await line.call_for_help()
    await line.until(
        lambda es: any(e.template == "ticket_accepted_link" for e in es),
        "the secretary accepted: what to report is due",
    )
    await asyncio.to_thread(line.fake.wait_idle)

    def sms() -> list[str]:
        return [r.template_code for r in line.fake.received(SECRETARY_PHONE) if r.kind == "sms"]

    now = line.clock.now()
    await line.until(
        lambda es: any(
            e.template == "ticket_accepted_link" and e.next_attempt_at > now for e in es
        ),
        "the next SMS held by the carrier's limit",
    )
    told = next(e for e in await line.entries() if e.template == "ticket_accepted_link")
    assert told.status == "pending"
    # Urgent messages (the call for help, the key-safe code for the one going) go at once.
    await wait_for(lambda: len(sms()) == 2, timeout=60, what="the urgent SMS sent")
    assert sms() == [codes["sms.ticket_call"], codes["sms.ticket_access"]]
    assert sample(line.gw, "bidao_notifications_total", channel="sms", outcome="carrier_limit") >= 1
    # Held until the minute since the first SMS is over (the clock has not moved yet).
    assert told.next_attempt_at == now + 60
    await line.clock.advance(61)
    line.gw.outbox.wake()
    await wait_for(lambda: len(sms()) == 3, timeout=60, what="sent once the minute is over")
    assert sms()[2] == codes["sms.ticket_accepted"]
    assert not any(e.merged_into for e in await line.entries())
    await line.each_sent_once()


async def test_an_sms_found_by_the_lookup_takes_its_late_receipt_and_falls_back_to_a_call(
    line: Line,
) -> None:
    line.fake.hold_receipts = True
    line.fake.phone(SECRETARY_PHONE).digits = ""
    chief = line.fake.phone(CHIEF_PHONE)
    chief.sms_fails, chief.digits = True, ""
    line.fake.before_reply = _cut_first_sms_to(CHIEF_PHONE)
    await line.call_for_help()
    await line.until(
        lambda es: any(
            e.recipient == CHIEF_PHONE and e.attempts == 1 and e.status == "pending" for e in es
        ),
        "the SMS to the chief in doubt",
    )
    await line.clock.advance(30)
    line.gw.outbox.wake()
    await line.until(
        lambda es: next(e for e in es if e.recipient == CHIEF_PHONE).status == "sent",
        "found at the provider; its failure is left to the receipt",
    )
    line.fake.release_receipts()
    await line.until(
        lambda es: any(e.origin_kind == "fallback" and e.recipient == CHIEF_PHONE for e in es),
        "the late receipt says it failed: a call instead",
    )
    sms = next(e for e in await line.entries() if e.recipient == CHIEF_PHONE)
    assert (sms.status, sms.delivery) == ("failed", "undelivered")
    await wait_for(lambda: bool(line.calls(CHIEF_PHONE)), timeout=60, what="the chief called")
    assert len([r for r in line.fake.received(CHIEF_PHONE) if r.kind == "sms"]) == 1
