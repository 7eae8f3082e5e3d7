"""The outbox sender: delivers, retries with backoff, gives up on bad numbers, survives restarts."""

from __future__ import annotations

import io
from pathlib import Path

from alerts import Notification
from alerts.providers.base import OutgoingMessage, ProviderError, Receipt
from alerts.providers.console import ConsoleProvider
from gateway.clock import ManualClock
from gateway.service import GatewayService
from tests.gateway.grid import CONTACTS_CSV, HOUSEHOLDS_CSV, SECRETARY, UNITS_CSV
from tests.gateway.support import gateway_settings, wait_for


class FlakyProvider:
    """Fails the first `failures` sends like a provider having a bad minute."""

    def __init__(self, failures: int, error: ProviderError | None = None) -> None:
        self.failures = failures
        self.error = error or ProviderError("503 Service Unavailable")
        self.calls: list[OutgoingMessage] = []

    @property
    def name(self) -> str:
        return "flaky"

    async def send(self, message: OutgoingMessage) -> Receipt:
        self.calls.append(message)
        if len(self.calls) <= self.failures:
            raise self.error
        return Receipt(f"SM{message.notification_id:032d}", "queued")


async def enqueue(gw: GatewayService, *notifications: Notification) -> None:
    async with gw.store.transaction() as uow:
        await uow.enqueue(list(notifications), gw.clock.now())
    gw.outbox.wake()


SMS = Notification(
    "sms", "13800000001", "ticket_taken", {"ticket": "7", "owner": "李书记"}, contact_id=SECRETARY
)


async def settled(gw: GatewayService, expected: list[tuple[int, str, int, str | None]]) -> None:
    async def reached() -> bool:
        return await gw.store.outbox_states() == expected

    await wait_for(reached, what=f"outbox states {expected}")


async def grid(gw: GatewayService) -> None:
    for kind, text in (
        ("units", UNITS_CSV),
        ("households", HOUSEHOLDS_CSV),
        ("contacts", CONTACTS_CSV),
    ):
        await gw.import_csv(kind, text)  # type: ignore[arg-type]


async def test_console_prints_chinese_first_and_records(tmp_path: Path, clock: ManualClock) -> None:
    out = io.StringIO()
    console = ConsoleProvider(out)
    english = Notification(
        "voice", "+447700900123", "ticket_taken", {"ticket": "7", "owner": "Li"}, language="en"
    )
    async with GatewayService(gateway_settings(tmp_path, None), clock, console) as gw:
        await grid(gw)
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
        await grid(gw)
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
        await grid(gw)
        await enqueue(gw, SMS)
        await wait_for(lambda: len(provider.calls) == 1)
        await clock.advance(3600)
        states = await gw.store.outbox_states()
        contacts = {c.id: c for c in await gw.store.contacts()}
    assert states == [(1, "failed", 1, None)]
    assert contacts[SECRETARY].bad_number
    assert len(provider.calls) == 1


async def test_in_doubt_after_a_crash_waits_before_resending(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = FlakyProvider(failures=0)
    settings = gateway_settings(tmp_path, None, notify={"in_doubt_resend_s": 120})
    async with GatewayService(settings, clock, provider) as gw:
        await grid(gw)
        async with gw.store.transaction() as uow:
            await uow.enqueue([SMS], clock.now())
            # As if the sender died after marking it "sending", before the provider answered.
            assert len(await uow.claim_notifications(clock.now(), 10)) == 1
    async with GatewayService(settings, clock, provider) as gw:
        await settled(gw, [(1, "pending", 1, None)])  # released, due after the grace
        await clock.advance(119)
        assert provider.calls == []
        await clock.advance(2)
        await wait_for(lambda: len(provider.calls) == 1, what="resent after the grace")
