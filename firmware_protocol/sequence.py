"""The receiver's sequence rules as pure functions: what the gateway answers, and why.

A device's frames are ordered by their position, (session, seq). The gateway keeps the newest
position it accepted (`last`, None before the first frame or after a counter reset) and the
MAC of every frame it stored. docs/protocol.md section 6 gives the reasoning; the `streams`
of the golden vectors are generated from `SequenceTracker`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_protocol.frame import RESERVED, position, split_position
from firmware_protocol.messages import AckCode

REPLAY_WINDOW = 4096
"""A frame of the newest session at most this many seqs below the newest is accepted late."""


def reserved_counter(session: int, seq: int) -> bool:
    """Session 0xFFFFFFFF, seq 0 and seq 0xFFFFFFFF are never sent: NACK_RESYNC."""
    return session == RESERVED or seq in (0, RESERVED)


def place(
    last: int | None,
    session: int,
    seq: int,
    mac: bytes,
    stored_mac: bytes | None,
    window: int = REPLAY_WINDOW,
) -> AckCode:
    """ACCEPTED, DUPLICATE, NACK_SEQ_REUSED or NACK_RESYNC for an authenticated frame.

    `stored_mac` is the MAC of the frame stored at (session, seq), if any.
    """
    if reserved_counter(session, seq):
        return AckCode.NACK_RESYNC
    pos = position(session, seq)
    if stored_mac is not None:
        return AckCode.DUPLICATE if stored_mac == mac else AckCode.NACK_SEQ_REUSED
    if last is None or pos > last:
        return AckCode.ACCEPTED
    last_session, last_seq = split_position(last)
    if session == last_session and last_seq - seq <= window:
        return AckCode.ACCEPTED
    return AckCode.NACK_RESYNC


@dataclass(slots=True)
class SequenceTracker:
    """One device's receiver state; `offer` answers a frame as the gateway does."""

    window: int = REPLAY_WINDOW
    last: int | None = None
    high: int | None = None
    stored: dict[int, bytes] = field(default_factory=dict)

    def offer(self, session: int, seq: int, mac: bytes) -> tuple[AckCode, int, int]:
        """(code, last_session, last_seq) of the ACK for an authenticated frame."""
        pos = position(session, seq)
        code = place(self.last, session, seq, mac, self.stored.get(pos), self.window)
        if code == AckCode.ACCEPTED:
            self.stored[pos] = mac
            self.last = pos if self.last is None else max(self.last, pos)
            self.high = pos if self.high is None else max(self.high, pos)
        last_session, last_seq = split_position(self.high) if self.high is not None else (0, 0)
        return code, last_session, last_seq

    def reset(self) -> None:
        """`bidao device reset-counters`: the next frame sets the order again."""
        self.last = None


def next_session(current: int, last_session: int) -> int:
    """The session a device starts after NACK_RESYNC / NACK_SEQ_REUSED (never 0xFFFFFFFF)."""
    nxt = max(current, last_session) + 1
    return 0 if nxt >= RESERVED else nxt
