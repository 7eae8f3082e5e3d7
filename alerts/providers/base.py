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


@dataclass(frozen=True, slots=True)
class SentItem:
    """A message or call the provider holds for a number (for settling in-doubt sends)."""

    provider_id: str
    status: str
    body: str | None = None
    """The SMS text; None for calls."""
    reference: str | None = None
    """The notification id the message was sent under, where the provider keeps one."""


class ProviderError(Exception):
    """The provider did not take the message.

    `permanent` errors are not retried; `bad_number` ones also flag the contact for an
    administrator (invalid, unreachable or opted-out numbers). `operator_alarm` ones need an
    administrator (a template not approved, no balance, a wrong key): an operator alarm.
    """

    operator_alarm = False

    def __init__(
        self, message: str, *, permanent: bool = False, bad_number: bool = False, code: str = ""
    ) -> None:
        super().__init__(message)
        self.permanent = permanent or bad_number
        self.bad_number = bad_number
        self.code = code


class LookupUnavailableError(ProviderError):
    """The provider cannot say what it has already taken.

    The console, or a provider without a query API: an in-doubt message then waits for
    its status callback instead.
    """


class Provider(Protocol):
    """Sends SMS and places voice calls; a domestic SMS/voice provider implements the same.

    A mainland provider sends `template` with `params` under its pre-approved template id
    and signature, and speaks `text` as a TTS voice notification that asks for a key. A
    provider may also have `can_merge(to) -> bool`: False where a digest of several
    messages cannot be sent (approved templates only), so they go one by one.
    """

    @property
    def name(self) -> str:
        """Short name stored with each notification it sent."""
        ...

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Hand the message to the provider; ProviderError if it was not taken."""
        ...

    async def sent_since(self, channel: Channel, to: str, since: float) -> list[SentItem]:
        """What the provider took for `to` on `channel` since `since` (unix seconds).

        LookupUnavailableError if it cannot tell.
        """
        ...

    async def end_call(self, provider_id: str) -> None:
        """Hang up a call in progress (the resident pressed the red key); ProviderError if not."""
        ...
