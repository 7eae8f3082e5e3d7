"""The notification as the domain writes it into the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Channel = Literal["sms", "voice"]

URGENT = 10
"""Priority of a call for help: never held back by throttling."""
NORMAL = 0


@dataclass(frozen=True, slots=True)
class Notification:
    """One message for one recipient: a template and its parameters, rendered when sent."""

    channel: Channel
    recipient: str
    template: str
    params: dict[str, str] = field(default_factory=dict)
    language: str = "zh-CN"
    contact_id: int | None = None
    ticket_id: int | None = None
    priority: int = NORMAL
