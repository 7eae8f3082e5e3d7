"""What every provider implements: send one rendered message, say what happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from alerts.notification import Channel


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A notification ready for a provider: rendered text plus template and parameters.

    SMS providers that need pre-approved templates (mainland carriers) use the template
    id and parameters; others send the text. Voice providers speak the text.
    """

    notification_id: int
    channel: Channel
    to: str
    text: str
    template: str
    params: dict[str, str] = field(default_factory=dict)
    language: str = "zh-CN"


@dataclass(frozen=True, slots=True)
class Receipt:
    """The provider accepted the message under its own id."""

    provider_id: str
    status: str = "queued"


class ProviderError(Exception):
    """The provider did not take the message.

    `permanent` errors are not retried; `bad_number` ones also flag the contact for an
    administrator (invalid, unreachable or opted-out numbers).
    """

    def __init__(
        self, message: str, *, permanent: bool = False, bad_number: bool = False, code: str = ""
    ) -> None:
        super().__init__(message)
        self.permanent = permanent or bad_number
        self.bad_number = bad_number
        self.code = code


class Provider(Protocol):
    """Sends SMS and places voice calls."""

    @property
    def name(self) -> str:
        """Short name stored with each notification it sent."""
        ...

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Hand the message to the provider; ProviderError if it was not taken."""
        ...
