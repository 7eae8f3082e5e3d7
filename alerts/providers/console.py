"""The embedded default: prints each message and keeps a record (demos, development)."""

from __future__ import annotations

import sys
from typing import TextIO

from alerts.notification import Channel
from alerts.providers.base import LookupUnavailableError, OutgoingMessage, Receipt, SentItem


class ConsoleProvider:
    """Writes every SMS and call to a stream; nothing leaves the machine."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self.sent: list[OutgoingMessage] = []
        self.ended: list[str] = []

    @property
    def name(self) -> str:
        """The provider's name."""
        return "console"

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Print the message as the recipient would get it."""
        self.sent.append(message)
        kind = "SMS" if message.channel == "sms" else "CALL"
        self._stream.write(f"[{kind} to {message.to}] {message.text}\n")
        self._stream.flush()
        return Receipt(f"console-{message.notification_id}", "delivered")

    async def sent_since(
        self,
        channel: Channel,  # noqa: ARG002 - the interface's arguments; the console has no record
        to: str,  # noqa: ARG002
        since: float,  # noqa: ARG002
    ) -> list[SentItem]:
        """The console keeps nothing across a restart, so it cannot tell."""
        raise LookupUnavailableError("the console provider keeps no record across restarts")

    async def end_call(self, provider_id: str) -> None:
        """Print that the call was ended."""
        self.ended.append(provider_id)
        self._stream.write(f"[HANG UP {provider_id}]\n")
        self._stream.flush()
