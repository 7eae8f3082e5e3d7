"""The embedded default: prints each message and keeps a record (demos, development)."""

from __future__ import annotations

import sys
from typing import TextIO

from alerts.providers.base import OutgoingMessage, Receipt


class ConsoleProvider:
    """Writes every SMS and call to a stream; nothing leaves the machine."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self.sent: list[OutgoingMessage] = []

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
