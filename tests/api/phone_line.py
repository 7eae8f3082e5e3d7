"""A call box on the test broker and a gateway whose provider is a fake phone network:
what the phone-call stories share, whichever fake (Twilio's or Alibaba Cloud's) answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Key
from gateway.clock import ManualClock
from gateway.domain.tickets import Ticket
from gateway.runtime.service import GatewayService
from gateway.store.ports import OutboxEntry
from tests.gateway.grid import BOX_ID
from tests.gateway.support import wait_for


@dataclass
class BoxLine:
    """The box, the gateway and the clock; subclasses name the fake network."""

    gw: GatewayService
    box: SimulatedDevice
    fleet: MqttFleet
    clock: ManualClock
    public_url: str

    async def call_for_help(self) -> Ticket:
        await self.fleet.send(BOX_ID, self.box.press(Key.GREEN_CALL))
        await wait_for(lambda: not self.box.pending, what="press acked")
        return (await self.gw.store.tickets.all())[-1]

    async def ticket(self) -> Ticket:
        return (await self.gw.store.tickets.all())[-1]

    async def status_is(self, status: str) -> None:
        async def reached() -> bool:
            return (await self.ticket()).status == status

        await wait_for(reached, timeout=60, what=f"ticket {status}")

    async def entries(self) -> list[OutboxEntry]:
        return await self.gw.store.outbox.entries()

    async def events(self) -> list[tuple[str, str]]:
        return [(e.kind, e.detail) for e in await self.gw.store.tickets.events(1)]

    async def until(self, predicate: Callable[[list[OutboxEntry]], bool], what: str) -> None:
        async def reached() -> bool:
            return predicate(await self.entries())

        await wait_for(reached, timeout=60, what=what)

    def wait_idle(self) -> None:
        """Until the fake network has nothing left to do (callbacks sent)."""
        raise NotImplementedError

    def taken(self) -> set[str]:
        """The provider ids of every message the fake network took."""
        raise NotImplementedError

    async def each_sent_once(self) -> None:
        """Every message the network took belongs to exactly one notification, and back.

        Checked once the system is still: a call's last status callback (no answer, say)
        may move the ticket on and send more after any one look, so the look is repeated
        until every message due is handed over and the network is idle.
        """

        async def still() -> bool:
            now = self.clock.now()
            entries = await self.entries()
            if any(
                e.status == "sending" or (e.status == "pending" and e.next_attempt_at <= now)
                for e in entries
            ):
                return False
            await asyncio.to_thread(self.wait_idle)
            return self.taken() == {e.provider_id for e in await self.entries() if e.provider_id}

        await wait_for(still, timeout=60, what="every message taken owned by a notification")
        owned = [e.provider_id for e in await self.entries() if e.provider_id]
        assert len(owned) == len(set(owned)), "a provider id owned twice"
