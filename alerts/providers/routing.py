"""Two providers behind one: mainland numbers through the domestic one, others abroad.

A number is mainland when it starts with +86 (or 0086), or is written the mainland way
without a country code: an 11-digit mobile number starting with 1, or a landline starting
with 0 that is not an international prefix (00).
"""

from __future__ import annotations

import re

from alerts.notification import Channel
from alerts.providers.base import OutgoingMessage, Provider, Receipt, SentItem

_MAINLAND_LOCAL = re.compile(r"1[3-9][0-9]{9}|0[1-9][0-9]{8,10}")


def is_mainland(number: str) -> bool:
    """Whether `number` is a mainland Chinese number."""
    compact = number.replace(" ", "").replace("-", "")
    if compact.startswith(("+86", "0086")):
        return True
    return _MAINLAND_LOCAL.fullmatch(compact) is not None


class RoutingProvider:
    """Sends each message through the provider for its number's country."""

    def __init__(self, domestic: Provider, abroad: Provider) -> None:
        self._domestic = domestic
        self._abroad = abroad

    @property
    def name(self) -> str:
        """Both providers' names."""
        return f"{self._domestic.name}+{self._abroad.name}"

    def _for(self, number: str) -> Provider:
        return self._domestic if is_mainland(number) else self._abroad

    def can_merge(self, to: str) -> bool:
        """Whether the provider for `to` can send a digest (see the outbox's merging)."""
        can_merge = getattr(self._for(to), "can_merge", None)
        return True if can_merge is None else bool(can_merge(to))

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Send through the provider for the recipient's number."""
        return await self._for(message.to).send(message)

    async def sent_since(self, channel: Channel, to: str, since: float) -> list[SentItem]:
        """Ask the provider that would have sent to `to`."""
        return await self._for(to).sent_since(channel, to, since)

    async def end_call(self, provider_id: str) -> None:
        """Hang up through the provider whose id this is (Twilio's call ids start with CA)."""
        owner = self._abroad if provider_id.startswith("CA") else self._domestic
        await owner.end_call(provider_id)
