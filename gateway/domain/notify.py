"""Rules of notification delivery that hold whatever the store or the provider."""

from __future__ import annotations

from typing import Literal

FollowUpKind = Literal["fallback", "retry"]
OutboxStatus = Literal["pending", "sending", "sent", "delivered", "failed", "merged"]

# Provider delivery states in the order they can happen; a callback never moves one back.
DELIVERY_RANK: dict[str, int] = {
    "queued": 1,
    "accepted": 1,
    "sending": 2,
    "initiated": 2,
    "sent": 3,
    "ringing": 3,
    "in-progress": 4,
    "answered": 4,
    "delivered": 5,
    "undelivered": 5,
    "failed": 5,
    "completed": 5,
    "busy": 5,
    "no-answer": 5,
    "canceled": 5,
}
FINAL_DELIVERY: dict[str, Literal["delivered", "failed"]] = {
    "delivered": "delivered",
    "completed": "delivered",
    "undelivered": "failed",
    "failed": "failed",
    "busy": "failed",
    "no-answer": "failed",
    "canceled": "failed",
}


def delivery_advances(current: str | None, reported: str) -> bool:
    """Whether a reported delivery state is later than the current one (unknown ranks 0)."""
    return DELIVERY_RANK.get(reported, 0) > DELIVERY_RANK.get(current or "", 0)


def status_for_delivery(delivery: str) -> Literal["sent", "delivered", "failed"]:
    """The outbox status a delivery state puts a notification in."""
    return FINAL_DELIVERY.get(delivery, "sent")
