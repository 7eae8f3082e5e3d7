"""Notifications end to end: the real twilio library, the fake phone network, real webhooks."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from api.app import http_component
from api.runner import build_provider
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import AnswerLost, ApiReply, FakePhoneNetwork, Record, twilio_signature
from firmware_protocol import IndicationKind, Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from gateway.store.ports import OutboxEntry
from tests.api.phone_line import BoxLine
from tests.gateway.grid import BOX_ID, BOX_KEY, DEPUTY, SECRETARY
from tests.gateway.support import gateway_settings, load_grid, sample, twilio_notify, wait_for

ACCOUNT = "AC" + "b1da" * 8
TOKEN = "fake-network-auth-token"
SECRETARY_PHONE, DEPUTY_PHONE, CHIEF_PHONE = "13800000001", "13800000002", "13800000004"
RESIDENT_PHONE = "13912345678"


@dataclass
class Line(BoxLine):
    phones: FakePhoneNetwork = field(kw_only=True)

    def wait_idle(self) -> None:
        self.phones.wait_idle()

    def taken(self) -> set[str]:
        return {r.sid for r in self.phones.records if not r.parent_sid}


@pytest.fixture
def notify_overrides() -> dict[str, object]:
    """Notification settings a test changes (parametrize this name to override)."""
    return {}


@pytest.fixture
async def line(
    tmp_path: Path,
    broker: MosquittoBroker,
    clock: ManualClock,
    notify_overrides: dict[str, object],
) -> AsyncIterator[Line]:
    port = free_loopback_port()
    public_url = f"http://127.0.0.1:{port}"
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        settings = gateway_settings(
            tmp_path,
            broker,
            http={"port": port},
            notify=twilio_notify(
                public_url,
                phones,
                **{
                    "retry_initial_s": 10,
                    # Only a guard: on a loaded machine a 2 s limit made ordinary sends in doubt.
                    "send_timeout_s": 20.0,
                    "call_retry_after_s": 60,
                    **notify_overrides,  # a test's own settings win
                },
            ),
        )
        gw = GatewayService(settings, clock, build_provider(settings))
        gw.add_component("http", http_component(for_service(gw)))
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        async with gw:
            await load_grid(gw)
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            await wait_for(lambda: asyncio.to_thread(_up, public_url), what="HTTP server up")
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                yield Line(gw, box, fleet, clock, public_url, phones=phones)
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
    events = await line.gw.store.tickets.events(ticket.id)
    assert [(e.kind, e.channel) for e in events][1] == ("accepted", "voice_keypress")
    await wait_for(
        lambda: any(i.kind == IndicationKind.HELPER_ON_THE_WAY for i in line.box.indications),
        what="the box hears help is coming",
    )
    await line.each_sent_once()
    call = next(r for r in line.phones.received(SECRETARY_PHONE) if r.kind == "call")
    assert call.pressed == "1"
    assert 'language="cmn-CN"' in call.spoken[0]
    assert "张桂兰（桥元村三组12号，电话13912345678）按下了呼叫键" in call.spoken[0]
    assert "您已接单" in call.spoken[1]
    # Put through to the resident's own phone, then the resident hangs up.
    assert "正在为您接通老人的电话" in call.spoken[1]
    assert call.connected_to == RESIDENT_PHONE
    resident = line.phones.received(RESIDENT_PHONE)
    assert [(r.kind, r.parent_sid, r.ended_by) for r in resident] == [("call", call.sid, "callee")]
    kinds = [k for k, _ in await line.events()]
    assert kinds == ["opened", "accepted", "bridged", "bridge_ended"]
    assert (await line.ticket()).bridged_call is None
    sms = [r.body for r in line.phones.received(SECRETARY_PHONE) if r.kind == "sms"]
    assert sms[0].startswith("【必到】张桂兰")
    # The one who is going gets the key-safe code and health notes; nobody else does.
    # How to report (arrival on the box) and, to the one who is going, the key-safe code.
    assert sum(s.startswith("【必到】您已接下工单1") for s in sms[1:]) == 1
    assert sum("钥匙盒密码4321；健康提示：高血压" in s for s in sms[1:]) == 1
    others = [r.body for r in line.phones.records if r.to != SECRETARY_PHONE and r.kind == "sms"]
    assert others
    assert not any("4321" in body or "高血压" in body for body in others)
    chief = [r.body for r in line.phones.received(CHIEF_PHONE)]
    assert chief[-1] == "【必到】工单1已由李书记接单，您无需前往。"

    await line.until(
        lambda es: {e.status for e in es} == {"delivered"},
        "every SMS delivered and every call completed",
    )


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
    kinds = [e.kind for e in await line.gw.store.tickets.events((await line.ticket()).id)]
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

    await line.until(
        lambda es: len(es) == 5 and all(e.status == "delivered" for e in es[:4]),
        "final states despite reordering",
    )
    entries = await line.entries()
    # The secretary's call and SMS, the chief's SMS, the family's SMS.
    assert [e.delivery for e in entries[:4]] == ["completed", "delivered", "delivered", "delivered"]
    assert [e.attempts for e in entries[:4]] == [1, 1, 1, 1]  # each sent once
    # The call was completed without a key (a machine?): it is placed once more, later.
    assert (entries[4].origin_id, entries[4].origin_kind, entries[4].status) == (
        1,
        "retry",
        "pending",
    )
    await line.each_sent_once()


async def test_provider_outage_is_retried_until_delivered(line: Line) -> None:
    line.phones.failures_left = 2
    line.phones.script(SECRETARY_PHONE).digits = ""
    await line.call_for_help()

    async def retried() -> bool:
        # Both refused sends are recorded (to retry later) before the clock moves past them.
        if line.phones.failures_left:
            return False
        return all(s[1] != "sending" for s in await line.gw.store.outbox.states())

    await wait_for(retried, what="both refused attempts recorded")
    await line.clock.advance(30)
    line.gw.outbox.wake()

    await line.until(
        lambda es: len(es) >= 3 and all(e.status == "delivered" for e in es[:3]),
        "delivered after the outage",
    )
    assert len(line.phones.received(SECRETARY_PHONE)) == 2  # one call, one SMS
    await line.each_sent_once()


async def test_a_lost_answer_from_the_provider_is_not_sent_twice(line: Line) -> None:
    # The provider takes the call but its answer never comes back: in doubt.
    line.phones.script(SECRETARY_PHONE).digits = ""
    lost: list[Record] = []

    def cut(record: Record) -> None:
        if record.kind == "call" and not lost:
            lost.append(record)
            raise AnswerLost

    line.phones.before_reply = cut
    await line.call_for_help()
    # In doubt, then settled by its status callbacks or by the lookup, whichever comes first.
    await line.until(
        lambda es: len(es) >= 3 and es[0].attempts == 1 and es[0].status != "sending",
        "the call's answer lost",
    )
    assert lost
    await line.clock.advance(30)  # past the retry backoff: look it up at the provider
    line.gw.outbox.wake()
    await line.until(
        lambda es: all(e.status in ("sent", "delivered") for e in es[:3]), "all handed over"
    )
    calls = [r for r in line.phones.received(SECRETARY_PHONE) if r.kind == "call"]
    assert len(calls) == 1
    assert (await line.entries())[0].provider_id == calls[0].sid
    await line.each_sent_once()


async def test_unanswered_call_is_placed_once_more_then_the_next_is_called(line: Line) -> None:
    line.phones.script(SECRETARY_PHONE).behaviour = "voicemail"
    line.phones.script(DEPUTY_PHONE).digits = ""
    await line.call_for_help()
    await line.until(
        lambda es: any(e.origin_kind == "retry" for e in es), "the call is to be placed again"
    )
    assert not any(r.kind == "call" for r in line.phones.received(DEPUTY_PHONE))
    await line.clock.advance(61)  # the retry is due; the 5-minute accept clock is not
    await wait_for(
        lambda: any(r.kind == "call" for r in line.phones.received(DEPUTY_PHONE)),
        timeout=20,
        what="the deputy is called at once after the second unanswered call",
    )
    secretary_calls = [r for r in line.phones.received(SECRETARY_PHONE) if r.kind == "call"]
    assert len(secretary_calls) >= 2
    assert all(not r.pressed for r in secretary_calls)
    events = await line.events()
    assert ("no_answer", "step 0") in events
    assert ("escalated", "deputy_secretary: no answer") in events
    assert (await line.ticket()).status == "open"
    await line.each_sent_once()


async def test_a_call_again_is_withdrawn_when_someone_took_the_ticket_meanwhile(
    line: Line,
) -> None:
    """The secretary's phone went to voicemail, so he is to be called again in a minute;
    the deputy takes the ticket from the dashboard before that: no call again, nobody else."""
    line.phones.script(SECRETARY_PHONE).behaviour = "voicemail"
    ticket = await line.call_for_help()
    await line.until(
        lambda es: any(e.origin_kind == "retry" for e in es), "the call is to be placed again"
    )
    await for_service(line.gw).accept_ticket(ticket.id, DEPUTY, "dashboard")
    await line.status_is("accepted")
    await line.clock.advance(61)  # the call again falls due
    await line.until(
        lambda es: any(e.origin_kind == "retry" and e.status == "failed" for e in es),
        "the call again withdrawn",
    )
    retry = next(e for e in await line.entries() if e.origin_kind == "retry")
    assert (retry.delivery, retry.provider_id, retry.attempts) == ("canceled", None, 0)
    secretary_calls = [r for r in line.phones.received(SECRETARY_PHONE) if r.kind == "call"]
    assert len(secretary_calls) == 1
    assert not any(r.kind == "call" for r in line.phones.received(DEPUTY_PHONE))
    assert sample(line.gw, "bidao_notifications_total", channel="voice", outcome="withdrawn") == 1


@pytest.mark.parametrize(("code", "fallback"), [("30003", True), ("30005", False)])
async def test_failed_sms_falls_back_to_voice(line: Line, code: str, fallback: bool) -> None:
    chief = line.phones.script(CHIEF_PHONE)
    chief.sms_fails, chief.sms_error_code, chief.digits = True, code, ""
    line.phones.script(SECRETARY_PHONE).digits = ""
    await line.call_for_help()
    await line.until(
        lambda es: any(e.recipient == CHIEF_PHONE and e.status == "failed" for e in es),
        "the SMS to the chief failed",
    )
    if fallback:
        await line.until(
            lambda es: any(e.origin_kind == "fallback" and e.status == "delivered" for e in es),
            "the voice fallback went through",
        )
        call = next(r for r in line.phones.received(CHIEF_PHONE) if r.kind == "call")
        assert "张桂兰（桥元村三组12号）已呼叫书记，请知悉" in call.spoken[0]
    else:
        # An unknown number is flagged for an administrator; a call would fail too.
        await asyncio.to_thread(line.phones.wait_idle)
        contacts = {c.phone: c for c in await line.gw.store.grid.contacts()}
        assert contacts[CHIEF_PHONE].bad_number
        assert not any(r.kind == "call" for r in line.phones.received(CHIEF_PHONE))
    # The secretary's SMS went through: no fallback call on top of the call already made.
    assert not any(
        e.origin_kind == "fallback" and e.recipient == SECRETARY_PHONE for e in await line.entries()
    )
    await line.each_sent_once()


async def test_red_key_ends_the_call_put_through_to_the_resident(line: Line) -> None:
    line.phones.script(RESIDENT_PHONE).talk_s = 60.0
    await line.call_for_help()

    async def bridged() -> bool:
        return (await line.ticket()).bridged_call is not None

    await wait_for(bridged, timeout=60, what="secretary put through to the resident")
    call = next(r for r in line.phones.received(SECRETARY_PHONE) if r.kind == "call")
    await line.fleet.send(BOX_ID, line.box.press(Key.RED_HANGUP))
    await wait_for(lambda: call.ended_by == "hangup", timeout=60, what="the call ended")
    ticket = await line.ticket()
    assert (ticket.status, ticket.bridged_call) == ("accepted", None)
    assert ("red_key", "call ended") in await line.events()
    # Counted once the provider has answered the hang-up, which may be after the call ended.
    await wait_for(
        lambda: sample(line.gw, "bidao_tickets_total", event="call_ended_by_red_key") == 1,
        what="the hang-up counted",
    )


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


async def heartbeat_acked(line: Line) -> None:
    """The box sends a heartbeat and the gateway acknowledges it."""
    await line.fleet.send(BOX_ID, line.box.heartbeat())
    await wait_for(lambda: not line.box.pending, what="heartbeat acked")


@pytest.mark.parametrize("notify_overrides", [{"max_attempts": 3}])
@pytest.mark.parametrize("reply", ["html", "truncated", "empty"])
async def test_a_provider_answering_200_with_a_broken_body_never_stops_the_gateway(
    line: Line, reply: ApiReply
) -> None:
    # Every request about the secretary's number is answered 200 OK with a broken body.
    line.phones.script(SECRETARY_PHONE).api_reply = reply
    line.phones.script(DEPUTY_PHONE).digits = ""
    await line.call_for_help()
    # Another number is not held up: the chief hears of the call at once.
    await line.until(
        lambda es: any(e.recipient == CHIEF_PHONE and e.status == "delivered" for e in es),
        "the chief's SMS delivered while the secretary's fail",
    )

    def given_up(entries: list[OutboxEntry]) -> bool:
        # The call for help, its one retry and its SMS to the secretary: all quarantined.
        calls = [
            e for e in entries if (e.recipient, e.template) == (SECRETARY_PHONE, "ticket_call")
        ]
        return len(calls) == 3 and all(e.quarantined_at is not None for e in calls)

    for _ in range(40):
        await heartbeat_acked(line)
        await line.until(lambda es: all(e.status != "sending" for e in es), "attempts settled")
        if given_up(await line.entries()):
            break
        await line.clock.advance(61)
        line.gw.outbox.wake()
    else:
        pytest.fail(f"not quarantined: {await line.entries()}")
    await heartbeat_acked(line)  # still acknowledging once it gave up

    await line.until(lambda es: all(e.status != "sending" for e in es), "attempts settled")
    entries = await line.entries()
    mine = [e for e in entries if e.recipient == SECRETARY_PHONE]
    # Nothing to the secretary's number was ever taken (a later reminder may still wait).
    assert all(e.status in ("pending", "failed", "merged") for e in mine), mine
    quarantined = [e for e in mine if e.quarantined_at is not None]
    assert all(e.status == "failed" and e.attempts == 3 for e in quarantined)
    for entry in quarantined:
        assert entry.last_error is not None
        assert entry.last_error.startswith("quarantined after 3 attempts: unreadable_answer")
    assert line.phones.broken_replies >= 3 * len(quarantined)
    assert not line.phones.received(SECRETARY_PHONE), "a broken answer takes nothing"
    listed = await line.gw.store.outbox.quarantined()
    assert {e.id for e in listed} == {e.id for e in quarantined}
    assert sample(line.gw, "bidao_notifications_total", channel="voice", outcome="quarantined") >= 2
    assert sample(line.gw, "bidao_notifications_total", channel="sms", outcome="quarantined") >= 1
    # The outbox reports itself degraded: by the failures in a row, or (once a send to
    # someone else went through) by the quarantines, noted just after their rows commit.
    await wait_for(lambda: line.gw.outbox.degraded_reason is not None, what="degraded")
    reason = line.gw.outbox.degraded_reason or ""
    assert "quarantined in the last" in reason or "unreadable_answer" in reason, reason
    # Two calls that never went count as no answer: the ticket moved on to the deputy, and
    # everyone else's messages went through.
    assert ("escalated", "deputy_secretary: no answer") in await line.events() or any(
        e.recipient == DEPUTY_PHONE for e in entries
    )
    others = [e for e in entries if e.recipient != SECRETARY_PHONE]
    assert others
    assert all(e.quarantined_at is None and e.status != "failed" for e in others)
    await line.each_sent_once()
