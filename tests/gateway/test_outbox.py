"""The outbox sender: delivers, retries with backoff, gives up on bad numbers, survives restarts."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path

import pytest

from alerts import Notification, fits_sms
from alerts.notification import URGENT, Channel
from alerts.providers.base import (
    LookupUnavailableError,
    OutgoingMessage,
    ProviderError,
    Receipt,
    SentItem,
)
from alerts.providers.console import ConsoleProvider
from gateway.clock import ManualClock
from gateway.runtime.service import GatewayService
from tests.gateway.grid import SECRETARY
from tests.gateway.support import gateway_settings, load_grid, wait_for


class FlakyProvider:
    """Fails the first `failures` sends like a provider having a bad minute.

    `taken` is what the provider holds; with `lookup` off it cannot say (like the console).
    """

    def __init__(
        self, failures: int, error: ProviderError | None = None, *, lookup: bool = False
    ) -> None:
        self.failures = failures
        self.error = error or ProviderError("503 Service Unavailable")
        self.lookup = lookup
        self.calls: list[OutgoingMessage] = []
        self.taken: list[tuple[OutgoingMessage, SentItem]] = []

    @property
    def name(self) -> str:
        return "flaky"

    async def send(self, message: OutgoingMessage) -> Receipt:
        self.calls.append(message)
        if len(self.calls) <= self.failures:
            raise self.error
        sid = f"SM{len(self.calls):032d}"
        self.taken.append((message, SentItem(sid, "queued", message.text)))
        return Receipt(sid, "queued")

    async def sent_since(self, channel: Channel, to: str, since: float) -> list[SentItem]:
        if not self.lookup:
            raise LookupUnavailableError("no lookup")
        return [item for m, item in self.taken if (m.channel, m.to) == (channel, to)]

    async def end_call(self, provider_id: str) -> None:
        raise ProviderError("no calls here")


async def enqueue(gw: GatewayService, *notifications: Notification) -> None:
    async with gw.store.transaction() as uow:
        await uow.outbox.enqueue(list(notifications), gw.clock.now())
    gw.outbox.wake()


SMS = Notification(
    "sms", "13800000001", "ticket_taken", {"ticket": "7", "owner": "李书记"}, contact_id=SECRETARY
)


async def settled(gw: GatewayService, expected: list[tuple[int, str, int, str | None]]) -> None:
    async def reached() -> bool:
        return await gw.store.outbox.states() == expected

    await wait_for(reached, what=f"outbox states {expected}")


async def test_console_prints_chinese_first_and_records(tmp_path: Path, clock: ManualClock) -> None:
    out = io.StringIO()
    console = ConsoleProvider(out)
    english = Notification(
        "voice", "+447700900123", "ticket_taken", {"ticket": "7", "owner": "Li"}, language="en"
    )
    async with GatewayService(gateway_settings(tmp_path, None), clock, console) as gw:
        await load_grid(gw)
        await enqueue(gw, SMS, english)
        await wait_for(lambda: len(console.sent) == 2, what="both sent")
        await settled(gw, [(1, "delivered", 1, "delivered"), (2, "delivered", 1, "delivered")])
    assert out.getvalue().splitlines() == [
        "[SMS to 13800000001] 【必到】工单7已由李书记接单，您无需前往。",
        "[CALL to +447700900123] [Bidao] Ticket 7 was accepted by Li; you need not go.",
    ]


async def test_provider_outage_is_retried_with_backoff_until_delivered(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = FlakyProvider(failures=3)
    settings = gateway_settings(tmp_path, None, notify={"retry_initial_s": 10, "retry_max_s": 60})
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        await enqueue(gw, SMS)
        await wait_for(lambda: len(provider.calls) == 1, what="first try")
        for attempt in range(2, 5):
            await clock.advance(61)
            await wait_for(lambda: len(provider.calls) >= attempt, what=f"try {attempt}")  # noqa: B023 - awaited at once
        await settled(gw, [(1, "sent", 4, "queued")])
    # The same notification each time: one message, never a second one.
    assert {m.notification_id for m in provider.calls} == {1}


async def test_bad_number_fails_at_once_and_flags_the_contact(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = FlakyProvider(
        failures=1, error=ProviderError("invalid number", bad_number=True, code="21211")
    )
    async with GatewayService(gateway_settings(tmp_path, None), clock, provider) as gw:
        await load_grid(gw)
        await enqueue(gw, SMS)
        await settled(gw, [(1, "failed", 1, None)])
        await clock.advance(3600)  # and it is never tried again
        states = await gw.store.outbox.states()
        contacts = {c.id: c for c in await gw.store.grid.contacts()}
    assert states == [(1, "failed", 1, None)]
    assert contacts[SECRETARY].bad_number
    assert len(provider.calls) == 1


async def claimed_then_crashed(gw: GatewayService) -> None:
    """As if the sender died after marking a notification "sending", before the answer."""
    async with gw.store.transaction() as uow:
        await uow.outbox.enqueue([SMS], gw.clock.now())
        await uow.outbox.mark_sending([1], gw.clock.now())


async def test_in_doubt_after_a_crash_waits_before_resending(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = FlakyProvider(failures=0)  # cannot look up what it took
    settings = gateway_settings(tmp_path, None, notify={"in_doubt_resend_s": 120})
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        await claimed_then_crashed(gw)
    async with GatewayService(settings, clock, provider) as gw:
        await settled(gw, [(1, "pending", 1, None)])  # released, due after the grace
        await clock.advance(119)
        assert provider.calls == []
        await clock.advance(2)
        await wait_for(lambda: len(provider.calls) == 1, what="resent after the grace")
        await settled(gw, [(1, "sent", 2, "queued")])


async def test_in_doubt_after_a_crash_is_found_at_the_provider_and_not_resent(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = FlakyProvider(failures=0, lookup=True)
    settings = gateway_settings(tmp_path, None)
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        await claimed_then_crashed(gw)
    # The provider took it just before the crash; its answer never reached the row.
    text = "【必到】工单7已由李书记接单，您无需前往。"
    provider.taken.append(
        (
            OutgoingMessage(1, "sms", SMS.recipient, text, SMS.template),
            SentItem("SM-taken-before-the-crash", "sent", text),
        )
    )
    async with GatewayService(settings, clock, provider) as gw:
        await settled(gw, [(1, "sent", 1, "sent")])
        entries = await gw.store.outbox.entries()
    assert entries[0].provider_id == "SM-taken-before-the-crash"
    assert provider.calls == []


async def test_in_doubt_found_undelivered_at_the_provider_falls_back_to_a_call(
    tmp_path: Path, clock: ManualClock
) -> None:
    """The lookup finds the SMS taken but undelivered: as its callback would, that makes
    the call that stands in for it (it is not just written down as failed)."""
    provider = FlakyProvider(failures=0, lookup=True)
    settings = gateway_settings(tmp_path, None)
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        await claimed_then_crashed(gw)
    text = "【必到】工单7已由李书记接单，您无需前往。"
    provider.taken.append(
        (
            OutgoingMessage(1, "sms", SMS.recipient, text, SMS.template),
            SentItem("SM-undelivered", "undelivered", text),
        )
    )
    async with GatewayService(settings, clock, provider) as gw:
        await wait_for(lambda: len(provider.calls) == 1, what="the call standing in for it")
        entries = await gw.store.outbox.entries()
    first = entries[0]
    assert (first.id, first.status, first.provider_id) == (1, "failed", "SM-undelivered")
    assert [(c.channel, c.to) for c in provider.calls] == [("voice", SMS.recipient)]


async def test_in_doubt_and_not_taken_is_sent_at_once(tmp_path: Path, clock: ManualClock) -> None:
    provider = FlakyProvider(failures=0, lookup=True)
    settings = gateway_settings(tmp_path, None)
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        await claimed_then_crashed(gw)
    async with GatewayService(settings, clock, provider) as gw:
        await settled(gw, [(1, "sent", 2, "queued")])
    assert len(provider.calls) == 1


def alarm(n: int) -> Notification:
    return Notification(
        "sms", "13800000003", "ticket_overdue", {"ticket": str(n), "place": "桥元村三组"}
    )


async def sender_settled(gw: GatewayService) -> bool:
    """Nothing being sent and nothing due now: the sender has done what it can.

    Read in one go: a row claimed between two reads would be neither due in one nor
    being sent in the other.
    """
    now = gw.clock.now()
    return not any(
        e.status == "sending" or (e.status == "pending" and e.next_attempt_at <= now)
        for e in await gw.store.outbox.entries()
    )


async def test_throttle_merges_a_storm_and_lets_the_urgent_call_through(
    tmp_path: Path, clock: ManualClock
) -> None:
    console = ConsoleProvider(io.StringIO())
    limit, hour = 5, 3600.0
    settings = gateway_settings(
        tmp_path, None, notify={"throttle_per_window": limit, "throttle_window_s": hour}
    )

    # Only this number's messages: the village's box, never heard, is offline and its
    # health alarm goes to the family after an hour (tests/gateway/test_device_health.py).
    def sent() -> list[OutgoingMessage]:
        return [m for m in console.sent if m.to == "13800000003"]

    async with GatewayService(settings, clock, console) as gw:
        await load_grid(gw)
        for n in range(1, 51):  # 50 alarms for one number within the hour
            await enqueue(gw, alarm(n))
            await wait_for(lambda: sender_settled(gw), what="sender settled")
            if n == 30:
                urgent = Notification(
                    "sms",
                    "13800000003",
                    "ticket_call",
                    {"resident": "张桂兰", "place": "桥元村三组", "ticket": "9"},
                    priority=URGENT,
                )
                await enqueue(gw, urgent)
                await wait_for(
                    lambda: sent()[-1].template == "ticket_call",
                    what="the urgent call goes at once, over the limit",
                )
            await clock.advance(hour / 50)
        alarms = [m for m in sent() if m.template != "ticket_call"]
        assert [m.params["ticket"] for m in alarms] == ["1", "2", "3", "4", "5"]
        assert len(sent()) == limit + 1
        # As sends age out of the window, everything held back goes as one message.
        await clock.advance(hour)
        await wait_for(lambda: len(sent()) == limit + 2, what="the merged message")
        await wait_for(lambda: sender_settled(gw), what="sender settled")
        merged = sent()[-1]
        assert merged.text.startswith(
            "【必到】您有45条提醒：工单6（桥元村三组）已超过办理时限，请督办；工单7（桥元村三组）"
        )
        assert fits_sms(merged.text)
        assert merged.text.endswith("…")
        entries = await gw.store.outbox.entries()
    assert len(sent()) == limit + 2  # 51 notifications, 7 messages
    assert sum(e.status == "merged" for e in entries) == 44
    leader = next(e for e in entries if e.sent_text == merged.text)
    assert {e.merged_into for e in entries if e.status == "merged"} == {leader.id}


async def test_identical_texts_are_merged_with_a_count(tmp_path: Path, clock: ManualClock) -> None:
    console = ConsoleProvider(io.StringIO())
    settings = gateway_settings(tmp_path, None, notify={"throttle_per_window": 1})
    async with GatewayService(settings, clock, console) as gw:
        await load_grid(gw)
        await enqueue(gw, alarm(1))
        await wait_for(lambda: len(console.sent) == 1)
        for _ in range(3):
            await enqueue(gw, alarm(2))
        await wait_for(lambda: sender_settled(gw), what="held back")
        await clock.advance(3601)
        await wait_for(lambda: len(console.sent) == 2, what="the merged message")
    assert (
        console.sent[1].text
        == "【必到】工单2（桥元村三组）已超过办理时限，请督办。（同一提醒共3条）"
    )


async def advance_to_retry(gw: GatewayService, clock: ManualClock) -> None:
    """Move the clock exactly to the next retry: one attempt, never two in one step (a
    longer step wakes the sender again at each retry falling within it)."""
    entries = await gw.store.outbox.entries()
    due = min(e.next_attempt_at for e in entries if e.status == "pending")
    await clock.advance(max(0.0, due - clock.now()))


def degraded(gw: GatewayService) -> str | None:
    """What the sender says is wrong with the provider (read afresh each time)."""
    return gw.outbox.degraded_reason


async def test_degraded_while_sends_keep_failing_and_healthy_after_a_success(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = FlakyProvider(failures=3)
    notify = {"retry_initial_s": 10, "retry_max_s": 60, "degraded_after_failures": 3}
    async with GatewayService(
        gateway_settings(tmp_path, None, notify=notify), clock, provider
    ) as gw:
        await load_grid(gw)
        assert degraded(gw) is None
        await enqueue(gw, SMS)
        for attempt in range(1, 4):
            await wait_for(lambda: len(provider.calls) >= attempt, what=f"try {attempt}")  # noqa: B023 - awaited at once
            await wait_for(lambda: sender_settled(gw), what="attempt recorded")
            if attempt < 3:
                assert degraded(gw) is None
                await advance_to_retry(gw, clock)
        assert degraded(gw) == ("the last 3 sends failed: 503 Service Unavailable")
        await advance_to_retry(gw, clock)
        await settled(gw, [(1, "sent", 4, "queued")])
        # The sender counts the success in memory just after its row commits.
        await wait_for(lambda: degraded(gw) is None, what="healthy after a success")


async def test_quarantined_after_max_attempts_and_degraded_for_a_window(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = FlakyProvider(failures=2)
    notify = {"max_attempts": 2, "retry_initial_s": 10, "degraded_window_s": 600}
    async with GatewayService(
        gateway_settings(tmp_path, None, notify=notify), clock, provider
    ) as gw:
        await load_grid(gw)
        await enqueue(gw, dataclasses.replace(SMS, channel="voice"))
        await wait_for(lambda: len(provider.calls) == 1, what="first try")
        await wait_for(lambda: sender_settled(gw), what="retry recorded")
        await clock.advance(11)
        await wait_for(lambda: len(provider.calls) == 2, what="second try")
        await wait_for(lambda: sender_settled(gw), what="quarantine recorded")
        (entry, *_) = await gw.store.outbox.quarantined()
        # The sender notes the quarantine in memory just after its row commits.
        await wait_for(
            lambda: degraded(gw) == "1 notifications quarantined in the last 600 s",
            what="degraded by the quarantine",
        )
        await clock.advance(601)
        assert degraded(gw) is None
    assert (entry.status, entry.attempts) == ("failed", 2)
    assert entry.last_error == "quarantined after 2 attempts: 503 Service Unavailable"


async def test_a_call_falling_due_while_the_sender_claims_is_placed_at_once(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = FlakyProvider(failures=0)
    settings = gateway_settings(tmp_path, None, notify={"retry_initial_s": 10})
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        call = dataclasses.replace(SMS, channel="voice", priority=URGENT)
        async with gw.store.transaction() as uow:
            await uow.outbox.enqueue([call], clock.now())
            await uow.outbox.defer([1], clock.now() + 60)  # placed again in a minute
        reads = gw.store.outbox
        next_at = reads.next_at
        moved: list[float] = []

        async def time_moves_on_meanwhile(
            skip_recipients: Sequence[str] = (), urgent: bool | None = None
        ) -> float | None:
            # The sender has claimed what was due; the call falls due before it asks when
            # to look again.
            if urgent and not moved:
                moved.append(clock.now())
                await clock.advance(61)
            return await next_at(skip_recipients, urgent)

        monkeypatch.setattr(reads, "next_at", time_moves_on_meanwhile)
        gw.outbox.wake()
        await wait_for(lambda: len(provider.calls) == 1, what="the call placed once due")
        await settled(gw, [(1, "sent", 1, "queued")])
    assert moved
