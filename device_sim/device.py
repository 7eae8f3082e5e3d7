"""One simulated device: its key, sequence numbers, unacknowledged frames and what it was told.

`SimulatedDevice` is pure state (no I/O): it builds uplink frames as firmware would and
applies downlinks handed to it. Transports (`device_sim.mqtt`, `device_sim.serial`) move
the bytes; they may call it from another thread, so its state sits behind one lock.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

from firmware_protocol import (
    KEY_LEN,
    MAC_LEN,
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
    compute_mac,
    decode,
    encode,
    parse_device_id,
    unwrap_key,
)
from firmware_protocol.indications import LED_TIMINGS, heard

DeviceKind = Literal["call_box", "water_meter"]
DEVICE_KINDS: tuple[DeviceKind, ...] = get_args(DeviceKind)
DEFAULT_INTERVAL_S: dict[DeviceKind, int] = {"call_box": 60, "water_meter": 900}
SEQ_MAX = 0xFFFFFFFF
FLEET_BASE_ID = 0xB1DA000000000000
FLEET_KEY_LABEL = b"bidao-sim-fleet"
HOURS_PER_DAY = 24
SECONDS_PER_HOUR = 3600

_DOWNLINK_TYPES = (Ack, Indication, Config, Provision)


def box_says(indication: Indication) -> str:
    """What a box does with an indication, as firmware would: its LED and its prompt's words."""
    said = heard(indication)
    if said is None:
        return f"{indication.kind.name}: no stored prompt {indication.voice_prompt}"
    led = LED_TIMINGS[said.led]
    light = (
        "LED off"
        if led.colour == "none"
        else f"LED {led.colour} "
        + ("steady" if not led.off_ms else f"blinking {led.on_ms}/{led.off_ms} ms")
        + f" for {said.led_s} s"
    )
    return f"{indication.kind.name} (prompt {said.prompt}, {light}): {said.zh} / {said.en}"


def fleet_identity(index: int) -> tuple[str, bytes]:
    """(device_id, key) of the index-th generated fleet device; tests register the same."""
    device_id = f"{FLEET_BASE_ID + index:016x}"
    key = hmac.new(FLEET_KEY_LABEL, device_id.encode(), hashlib.sha256).digest()[:KEY_LEN]
    return device_id, key


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
        if kind not in DEVICE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(DEVICE_KINDS)}, got {kind!r}")
        if len(key) != KEY_LEN:
            raise ValueError(f"device key must be {KEY_LEN} bytes, got {len(key)}")
        if not 0 <= first_seq <= SEQ_MAX:
            raise ValueError(f"first_seq must be within 0..{SEQ_MAX}, got {first_seq}")
        self.device_id = parse_device_id(device_id)
        self.kind: DeviceKind = kind
        self.key = bytes(key)
        self.key_version = 0
        self.next_seq = first_seq
        self.heartbeat_interval_s = DEFAULT_INTERVAL_S[kind]
        self.report_interval_s = DEFAULT_INTERVAL_S[kind]
        self.clock_offset_s = 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[int, bytes] = {}
        self.acked: set[int] = set()
        self.nacked: dict[int, AckCode] = {}
        self.duplicate_acks = 0
        self.indications: list[Indication] = []
        self.configs: list[Config] = []
        self.rejected_downlinks = 0
        self.rejected_provisions = 0
        self.last_downlink_seq = 0
        self.started_at = clock()

    def __repr__(self) -> str:
        """Identity and progress; the key is not printed."""
        return (
            f"SimulatedDevice({self.device_id}, {self.kind}, next_seq={self.next_seq}, "
            f"pending={self.pending_count}, key_version={self.key_version})"
        )

    def now(self) -> int:
        """The device's own clock in unix seconds (as corrected by CONFIG)."""
        return max(0, int(self._clock() + self.clock_offset_s))

    @property
    def pending(self) -> dict[int, bytes]:
        """A copy of the frames built but not yet acknowledged, by sequence number."""
        with self._lock:
            return dict(self._pending)

    @property
    def pending_count(self) -> int:
        """How many frames wait for an ack."""
        return len(self._pending)

    def _build(self, message: Message) -> bytes:
        with self._lock:
            seq = self.next_seq
            frame = encode(Envelope(self.device_id, seq, self.now(), message), self.key)
            # Only a frame that encoded takes a sequence number.
            self.next_seq = seq + 1
            self._pending[seq] = frame
            return frame

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
        """Every unacknowledged frame again, same bytes and sequence numbers, oldest first."""
        with self._lock:
            return [self._pending[seq] for seq in sorted(self._pending)]

    def handle_downlink(self, data: bytes) -> Envelope | None:
        """Verify and apply one downlink; anything forged, replayed or misdirected is counted."""
        with self._lock:
            try:
                envelope = decode(bytes(data), self.key)
            except (ProtocolError, TypeError, ValueError):
                self.rejected_downlinks += 1
                return None
            if (
                envelope.device_id != self.device_id
                or envelope.seq <= self.last_downlink_seq
                or not isinstance(envelope.message, _DOWNLINK_TYPES)
            ):
                self.rejected_downlinks += 1
                return None
            self.last_downlink_seq = envelope.seq
            self._apply(envelope)
            return envelope

    def _apply(self, envelope: Envelope) -> None:
        message = envelope.message
        if isinstance(message, Ack):
            self._apply_ack(message)
        elif isinstance(message, Indication):
            self.indications.append(message)
        elif isinstance(message, Config):
            self.configs.append(message)
            self.heartbeat_interval_s = message.heartbeat_interval_s
            self.report_interval_s = message.report_interval_s
            if message.clock_unix:
                self.clock_offset_s = message.clock_unix - self._clock()
        elif isinstance(message, Provision):
            self._apply_provision(envelope.seq, message)

    def _apply_ack(self, ack: Ack) -> None:
        seq = ack.acked_seq
        if ack.is_ack:
            self._pending.pop(seq, None)
            self.nacked.pop(seq, None)
            self.acked.add(seq)
            if ack.code == AckCode.DUPLICATE:
                self.duplicate_acks += 1
            return
        self.nacked[seq] = ack.code
        # A nack ends resending, except "retry later".
        if ack.code != AckCode.NACK_RETRY_LATER:
            self._pending.pop(seq, None)

    def _apply_provision(self, seq: int, provision: Provision) -> None:
        try:
            new_key = unwrap_key(
                self.key, self.device_id, seq, provision.wrapped_key, provision.key_check
            )
        except ProtocolError:
            self.rejected_provisions += 1
            return
        self.key = new_key
        self.key_version = provision.key_version
        # Frames still waiting for an ack keep their seq and content; the gateway now
        # verifies with the new key, so their MAC is recomputed with it.
        for pending_seq, frame in self._pending.items():
            signed = frame[:-MAC_LEN]
            self._pending[pending_seq] = signed + compute_mac(new_key, signed)


_TYPICAL_HOUSEHOLD_LPH: tuple[int, ...] = (
    # 00-05: asleep; 06-08: washing and breakfast; midday cooking; evening meal and bath.
    *(0, 0, 0, 0, 0, 10),
    *(40, 60, 30, 10, 10, 20),
    *(40, 20, 10, 10, 10, 30),
    *(50, 40, 20, 10, 5, 0),
)


@dataclass(frozen=True, slots=True)
class MeterSample:
    """One simulated meter reading."""

    at: int
    total_litres: int
    flow_lph: int


@dataclass(frozen=True, slots=True)
class MeterModel:
    """Household water use: litres in each local hour of the day, or none at all."""

    hourly_litres: tuple[int, ...] = _TYPICAL_HOUSEHOLD_LPH
    no_use: bool = False
    utc_offset_s: int = 8 * SECONDS_PER_HOUR
    """Offset of the household's local time (China Standard Time by default)."""

    def __post_init__(self) -> None:
        """Reject a pattern that is not 24 non-negative hourly amounts."""
        if len(self.hourly_litres) != HOURS_PER_DAY or min(self.hourly_litres) < 0:
            raise ValueError("hourly_litres must be 24 non-negative amounts")

    @property
    def daily_litres(self) -> int:
        """Litres used in one whole day."""
        return 0 if self.no_use else sum(self.hourly_litres)

    def _rate(self, unix: float) -> int:
        hour = int(unix + self.utc_offset_s) // SECONDS_PER_HOUR % HOURS_PER_DAY
        return self.hourly_litres[hour]

    def total_at(self, start_litres: int, start_unix: float, now_unix: float) -> int:
        """The cumulative reading at `now_unix` for a meter that read `start_litres` before."""
        if self.no_use or now_unix <= start_unix:
            return start_litres
        total = float(start_litres)
        t = start_unix
        while t < now_unix:
            local = t + self.utc_offset_s
            hour_end = (local // SECONDS_PER_HOUR + 1) * SECONDS_PER_HOUR - self.utc_offset_s
            step = min(hour_end, now_unix) - t
            total += self._rate(t) * step / SECONDS_PER_HOUR
            t += step
        # Rounding guards against float drift on hour boundaries (e.g. 99.99999 litres).
        return int(round(total, 6))

    def flow_at(self, now_unix: float) -> int:
        """Current flow in litres per hour."""
        return 0 if self.no_use else self._rate(now_unix)

    def readings(
        self, start_litres: int, start_unix: int, interval_s: int, count: int
    ) -> Iterator[MeterSample]:
        """`count` readings every `interval_s` seconds, the first one at `start_unix`."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        for i in range(count):
            at = start_unix + i * interval_s
            yield MeterSample(at, self.total_at(start_litres, start_unix, at), self.flow_at(at))
