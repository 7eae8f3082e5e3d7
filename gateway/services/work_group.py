"""The village work group: each ticket's progress posted to the group a village configures.

Officials coordinate in graded WeCom (企业微信) groups; a group robot posts there, for the
nearest unit of the ticket's household that has one (`work_group.groups`): opened,
accepted by whom, arrived, resolved, rated, overdue, with names and times and never a
health note, a key-safe code or a personal link. It informs; the call that asks one person
to act is never replaced by it.

The poster reads the tickets' audit trail in order from its cursor (kept in the store) and
moves the cursor past each row once it is posted or needs no post, so a restart goes on
where it stopped; a post the robot refuses (its limit of 20 a minute, an outage) is tried
again at the next round. A post made just before a crash may be made twice.
"""

from __future__ import annotations

import asyncio
import logging
import string
from collections.abc import Mapping
from typing import Protocol

from alerts.providers.base import ProviderError
from gateway.clock import Clock, sleep_until_or_woken
from gateway.config import WorkGroupSettings
from gateway.domain.tickets import Ticket, TicketEvent
from gateway.metrics import GatewayMetrics
from gateway.services.device_health import local_time
from gateway.services.work_group_locales import en, zh_cn
from gateway.store.ports import Store

log = logging.getLogger(__name__)

WORDS: Mapping[str, Mapping[str, str]] = {"zh-CN": zh_cn.TEXT, "en": en.TEXT}
"""The posts by language, by the audit row's kind (the kinds a group hears about)."""
LANGUAGE = "zh-CN"
_UNIT_DEPTH = 12


class GroupPoster(Protocol):
    """Posts a text to a group robot's webhook URL."""

    async def post(self, url: str, text: str) -> None:
        """Post it; ProviderError if the robot did not take it."""
        ...


class WorkGroups:
    """Posts new ticket progress to the village work groups until cancelled."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: WorkGroupSettings,
        poster: GroupPoster,
        metrics: GatewayMetrics,
        timezone: str,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._poster = poster
        self._metrics = metrics
        self._timezone = timezone
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for new progress now."""
        self._wake.set()

    async def run(self) -> None:
        """Post, then wait for the next round (or a wake-up), until cancelled."""
        while True:
            self._wake.clear()
            await self.post_new()
            due = self._clock.now() + self._settings.poll_s
            await sleep_until_or_woken(self._clock, due, self._wake)

    async def post_new(self) -> int:
        """Post what happened since the cursor; how many posts were made."""
        cursor = await self._store.tickets.work_group_cursor()
        if cursor is None:
            cursor = await self._start_at_the_end()
        posted = 0
        for event_id, event in await self._store.tickets.events_after(cursor, self._settings.batch):
            post = await self._post_for(event)
            if post is not None:
                url, text = post
                try:
                    await self._poster.post(url, text)
                except ProviderError as exc:
                    self._metrics.work_group_posts.labels("failed").inc()
                    log.warning(
                        "work group post not taken; tried again later",
                        extra={"event": event_id, "error": f"{exc.code} {exc}"},
                    )
                    break
                self._metrics.work_group_posts.labels("posted").inc()
                posted += 1
            async with self._store.transaction() as uow:
                await uow.tickets.set_work_group_cursor(event_id)
        return posted

    async def _start_at_the_end(self) -> int:
        """Before the first run: past every row there is (history is not posted)."""
        last = 0
        while page := await self._store.tickets.events_after(last, 1000):
            last = page[-1][0]
        async with self._store.transaction() as uow:
            await uow.tickets.set_work_group_cursor(last)
        return last

    async def _post_for(self, event: TicketEvent) -> tuple[str, str] | None:
        """(robot URL, text) of the post an audit row makes; None if it makes none."""
        template = WORDS[LANGUAGE].get(event.kind)
        if template is None:
            return None
        ticket = await self._store.tickets.get(event.ticket_id)
        if ticket is None or ticket.household_code is None:
            return None
        url = await self._group_of(ticket.household_code)
        if url is None:
            return None
        return url, string.Template(template).substitute(await self._params(ticket, event))

    async def _group_of(self, household_code: str) -> str | None:
        households = await self._store.grid.households_by_code([household_code])
        if not households:
            return None
        units = await self._store.grid.units()
        code: str | None = households[0].neighbourhood_code
        for _ in range(_UNIT_DEPTH):
            if code is None:
                return None
            if code in self._settings.groups:
                return self._settings.groups[code]
            unit = units.get(code)
            code = unit.parent_code if unit is not None else None
        return None

    async def _params(self, ticket: Ticket, event: TicketEvent) -> dict[str, str]:
        """Names and times only: never health notes, key-safe codes or links."""
        assert ticket.household_code is not None
        residents = await self._store.grid.residents_of([ticket.household_code])
        households = await self._store.grid.households_by_code([ticket.household_code])
        owner_id = event.contact_id if event.contact_id is not None else ticket.owner_contact_id
        owners = await self._store.grid.contacts_by_id([owner_id] if owner_id else [])
        return {
            "ticket": str(ticket.id),
            "resident": residents[0].name if residents else "-",
            "place": households[0].address if households else "-",
            "owner": owners[0].name if owners else "-",
            "now": local_time(event.at, self._timezone),
        }
