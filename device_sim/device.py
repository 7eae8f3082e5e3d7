"""One simulated device: its key, sequence numbers, unacknowledged frames and what it was told."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from firmware_protocol import (
    Ack,
    AckCode,
    AlarmKind,
    Config,
    DeviceAlarm,
    Envelope,
    Heartbeat,
    Indication,
    Key,
    KeyEvent,
    Message,
    MeterStatus,
    ProtocolError,
    Provision,
    WaterReading,
    decode,
    encode,
    parse_device_id,
    unwrap_key,
)

DeviceKind = Literal["call_box", "water_meter"]
DEFAULT_INTERVAL_S: dict[DeviceKind, int] = {"call_box": 60, "water_meter": 900}


class SimulatedDevice:
    """Builds uplink frames like firmware would, and keeps each until the gateway acks it."""

    def __init__(
        self,
        device_id: str,
        kind: DeviceKind,
        key: bytes,
        *,
        first_seq: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.device_id = parse_device_id(device_id)
        self.kind: DeviceKind = kind
        self.key = key
        self.key_version = 0
        self.next_seq = first_seq
        self.heartbeat_interval_s = DEFAULT_INTERVAL_S[kind]
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[int, Envelope] = {}
        self.acked: set[int] = set()
        self.nacked: dict[int, AckCode] = {}
        self.indications: list[Indication] = []
        self.configs: list[Config] = []
        self.rejected_downlinks = 0
        self.last_downlink_seq = 0
        self.started_at = clock()

    @property
    def pending(self) -> dict[int, bytes]:
        """Frames sent but not yet acknowledged, by sequence number (encoded with today's key)."""
        with self._lock:
            return {seq: encode(env, self.key) for seq, env in self._pending.items()}

    @property
    def pending_count(self) -> int:
        """How many frames wait for an ack."""
        return len(self._pending)

    def _build(self, message: Message) -> bytes:
        with self._lock:
            seq = self.next_seq
            self.next_seq += 1
            envelope = Envelope(self.device_id, seq, int(self._clock()), message)
            self._pending[seq] = envelope
            return encode(envelope, self.key)

    def press(self, key: Key, count: int = 1, long_press: bool = False) -> bytes:
        """A key press frame."""
        return self._build(KeyEvent(key, count, long_press))

    def heartbeat(
        self,
        *,
        battery_pct: int = 90,
        battery_mv: int = 3000,
        rssi_dbm: int = -65,
        firmware: tuple[int, int, int] = (1, 0, 0),
        uptime_s: int | None = None,
        interval_s: int | None = None,
    ) -> bytes:
        """A heartbeat frame; the interval, once given, is kept for later heartbeats."""
        if interval_s is not None:
            self.heartbeat_interval_s = interval_s
        uptime = int(self._clock() - self.started_at) if uptime_s is None else uptime_s
        return self._build(
            Heartbeat(
                battery_pct,
                battery_mv,
                rssi_dbm,
                firmware,
                max(0, uptime),
                self.heartbeat_interval_s,
            )
        )

    def water_reading(
        self, total_litres: int, flow_lph: int = 0, status: int | MeterStatus = 0
    ) -> bytes:
        """A meter reading frame."""
        return self._build(WaterReading(total_litres, flow_lph, MeterStatus(status)))

    def alarm(self, kind: AlarmKind, active: bool = True, value: int = 0) -> bytes:
        """A device alarm frame."""
        return self._build(DeviceAlarm(kind, active, value))

    def retransmit_due(self) -> list[bytes]:
        """Every unacknowledged frame again, same sequence numbers, oldest first."""
        with self._lock:
            return [encode(self._pending[seq], self.key) for seq in sorted(self._pending)]

    def handle_downlink(self, data: bytes) -> Envelope | None:
        """Verify and apply one downlink; anything forged or replayed is counted and ignored."""
        with self._lock:
            try:
                envelope = decode(data, self.key)
            except ProtocolError:
                self.rejected_downlinks += 1
                return None
            if envelope.device_id != self.device_id or envelope.seq <= self.last_downlink_seq:
                self.rejected_downlinks += 1
                return None
            self.last_downlink_seq = envelope.seq
            self._apply(envelope)
            return envelope

    def _apply(self, envelope: Envelope) -> None:
        message = envelope.message
        if isinstance(message, Ack):
            self._pending.pop(message.acked_seq, None)
            if message.is_ack:
                self.acked.add(message.acked_seq)
            else:
                self.nacked[message.acked_seq] = message.code
        elif isinstance(message, Indication):
            self.indications.append(message)
        elif isinstance(message, Config):
            self.configs.append(message)
            self.heartbeat_interval_s = message.heartbeat_interval_s
        elif isinstance(message, Provision):
            try:
                new_key = unwrap_key(
                    self.key, self.device_id, envelope.seq, message.wrapped_key, message.key_check
                )
            except ProtocolError:
                self.rejected_downlinks += 1
                return
            self.key = new_key
            self.key_version = message.key_version


@dataclass(frozen=True, slots=True)
class MeterModel:
    """Household water use: litres per hour for each hour of the day, or none at all."""

    hourly_litres: tuple[int, ...] = (
        0,
        0,
        0,
        0,
        0,
        10,
        40,
        60,
        30,
        10,
        10,
        20,
        40,
        20,
        10,
        10,
        10,
        30,
        50,
        40,
        20,
        10,
        5,
        0,
    )
    no_use: bool = False

    def total_at(self, start_litres: int, start_unix: float, now_unix: float) -> int:
        """The cumulative reading at `now_unix` for a meter that read `start_litres` before."""
        if self.no_use or now_unix <= start_unix:
            return start_litres
        total = float(start_litres)
        t = start_unix
        while t < now_unix:
            hour_end = (int(t) // 3600 + 1) * 3600
            step = min(hour_end, now_unix) - t
            total += self.hourly_litres[int(t) // 3600 % 24] * step / 3600
            t += step
        return int(total)

    def flow_at(self, now_unix: float) -> int:
        """Current flow in litres per hour."""
        return 0 if self.no_use else self.hourly_litres[int(now_unix) // 3600 % 24]
