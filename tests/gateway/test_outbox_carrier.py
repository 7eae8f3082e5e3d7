"""The outbox and what carriers impose: the same text not sent to a number again within a
while, and no digests through a provider that sends approved templates only."""

from __future__ import annotations

import io
from pathlib import Path

from alerts.providers.base import OutgoingMessage
from alerts.providers.console import ConsoleProvider
from gateway.clock import ManualClock
from gateway.runtime.service import GatewayService
from tests.gateway.support import gateway_settings, load_grid, wait_for
from tests.gateway.test_outbox import alarm, enqueue, sender_settled

CHIEF_PHONE = "13800000003"


class TemplatesOnly(ConsoleProvider):
    """A console that, like a mainland provider, cannot send a digest."""

    def can_merge(self, _to: str) -> bool:
        return False


def sent(console: ConsoleProvider) -> list[OutgoingMessage]:
    return [m for m in console.sent if m.to == CHIEF_PHONE]


async def test_the_same_text_waits_for_the_window_and_a_different_one_goes(
    tmp_path: Path, clock: ManualClock
) -> None:
    console = ConsoleProvider(io.StringIO())
    settings = gateway_settings(tmp_path, None, notify={"identical_text_window_s": 600})
    async with GatewayService(settings, clock, console) as gw:
        await load_grid(gw)
        start = clock.now()
        await enqueue(gw, alarm(1))
        await wait_for(lambda: len(sent(console)) == 1, what="the first one sent")
        await enqueue(gw, alarm(1))
        await wait_for(lambda: sender_settled(gw), what="the same text held")
        again = (await gw.store.outbox.entries())[-1]
        assert (again.status, again.next_attempt_at) == ("pending", start + 600)
        await enqueue(gw, alarm(2))
        await wait_for(lambda: len(sent(console)) == 2, what="a different text goes at once")
        await clock.advance(601)
        gw.outbox.wake()
        await wait_for(lambda: len(sent(console)) == 3, what="the same text, once allowed")
    assert [m.params["ticket"] for m in sent(console)] == ["1", "2", "1"]


async def test_a_provider_without_digests_gets_held_messages_one_by_one(
    tmp_path: Path, clock: ManualClock
) -> None:
    console = TemplatesOnly(io.StringIO())
    settings = gateway_settings(tmp_path, None, notify={"throttle_per_window": 1})
    async with GatewayService(settings, clock, console) as gw:
        await load_grid(gw)
        await enqueue(gw, alarm(1))
        await wait_for(lambda: len(sent(console)) == 1, what="the first one sent")
        await enqueue(gw, alarm(2), alarm(3), alarm(4))
        await wait_for(lambda: sender_settled(gw), what="held back")
        for count in (2, 3, 4):
            await clock.advance(3601)
            gw.outbox.wake()

            def arrived(n: int = count) -> bool:
                return len(sent(console)) == n

            await wait_for(arrived, what=f"message {count}")
        entries = await gw.store.outbox.entries()
    assert [m.params["ticket"] for m in sent(console)] == ["1", "2", "3", "4"]
    assert not any(e.status == "merged" for e in entries)
    assert all("您有" not in m.text for m in sent(console))
