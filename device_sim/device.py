"""One simulated device: its key, sequence numbers, unacknowledged frames and what it was told.

`SimulatedDevice` is pure state (no I/O): it builds uplink frames as firmware would and
applies downlinks handed to it. Transports (`device_sim.mqtt`, `device_sim.serial`) move
the bytes; they may call it from another thread, so its state sits behind one lock.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from firmware_protocol import (
    ACKED_MAC_LEN,
    KEY_LEN,
    RESERVED,
    Ack,
    AckAction,
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
    decode_message,
    encode,
    parse_device_id,
    parse_frame,
    position,
    unwrap_key,
    verify_frame,
)
from firmware_protocol.indications import CALL_NOT_SENT, LED_TIMINGS, BoxSaysAlone, heard

DeviceKind = Literal["call_box", "water_meter"]
DEVICE_KINDS: tuple[DeviceKind, ...] = get_args(DeviceKind)
DEFAULT_INTERVAL_S: dict[DeviceKind, int] = {"call_box": 60, "water_meter": 900}
SEQ_MAX = 0xFFFFFFFE
"""The highest seq (and session) a device uses: 0xFFFFFFFF is reserved (erased flash)."""
FLEET_BASE_ID = 0xB1DA000000000000
FLEET_KEY_LABEL = b"bidao-sim-fleet"
HOURS_PER_DAY = 24
SECONDS_PER_HOUR = 3600
U16_MAX = 0xFFFF
QUEUE_MAX = 32
"""Frames a box keeps waiting for their ACK (docs/protocol.md section 6)."""
PRESS_COUNT_MAX = 255
"""The most presses one KEY_EVENT carries."""
BACKOFF_FIRST_S = 2.0
BACKOFF_MAX_S = 300.0
BACKOFF_JITTER = 0.2
"""Resend backoff: 2 s, 4 s, 8 s ... capped at 5 minutes, +-20 % jitter, reset by any ACK."""
WANTED_HEARTBEAT_GAP_S = 60.0
"""A refused stale downlink asks for a heartbeat at most once a minute."""

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


class Jitter(Protocol):
    """Where the resend jitter comes from (random.Random, or a fixed one in tests)."""

    def uniform(self, a: float, b: float) -> float:
        """A number between a and b."""
        ...


@dataclass(slots=True)
class KeySlot:
    """One of the two key slots (A/B) in the box's flash."""

    key: bytes
    key_id: int


@dataclass(slots=True)
class _Queued:
    """A frame waiting for its ACK: its numbers, what it says and its bytes."""

    session: int
    seq: int
    timestamp: int
    message: Message
    frame: bytes

    @property
    def urgent(self) -> bool:
        """A green call or an alarm: sent before readings and heartbeats, never dropped."""
        message = self.message
        return isinstance(message, DeviceAlarm) or (
            isinstance(message, KeyEvent) and message.key == Key.GREEN_CALL
        )

    @property
    def rank(self) -> int:
        """What a full queue keeps first (section 6): the higher, the longer it is kept."""
        return _rank(self.message)


RANK_ROUTINE, RANK_KEY, RANK_ALARM, RANK_CALL = range(4)
"""A full queue's ranks: heartbeats and readings; red, thumbs and long green presses;
alarms; green calls (never dropped)."""


def _rank(message: Message) -> int:
    if isinstance(message, KeyEvent):
        call = message.key == Key.GREEN_CALL and not message.long_press
        return RANK_CALL if call else RANK_KEY
    return RANK_ALARM if isinstance(message, DeviceAlarm) else RANK_ROUTINE


class SimulatedDevice:
    """Builds uplink frames like firmware would, and keeps each until the gateway acks it.

    It follows docs/protocol.md as firmware does: a boot session counter kept in "flash"
    (`flash_session`, read at `reboot`, reserved 0xFFFFFFFF meaning erased), seqs counted in
    RAM per session, frames renumbered into a new session when the gateway answers
    NACK_RESYNC or NACK_SEQ_REUSED, and two key slots: the active one and the one a PROVISION
    stored, used for sending at once and made active by the first ACK MACed with it.
    """

    def __init__(  # noqa: PLR0915 - one statement per piece of the box's state
        self,
        device_id: str,
        kind: DeviceKind,
        key: bytes,
        *,
        first_seq: int = 1,
        session: int = 1,
        key_id: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if kind not in DEVICE_KINDS:
            raise ValueError(f"kind must be one of {', '.join(DEVICE_KINDS)}, got {kind!r}")
        if len(key) != KEY_LEN:
            raise ValueError(f"device key must be {KEY_LEN} bytes, got {len(key)}")
        if not 0 <= first_seq <= RESERVED:
            raise ValueError(f"first_seq must be within 0..{RESERVED}, got {first_seq}")
        if not 0 <= session <= RESERVED:
            raise ValueError(f"session must be within 0..{RESERVED}, got {session}")
        self.device_id = parse_device_id(device_id)
        self.kind: DeviceKind = kind
        self.active = KeySlot(bytes(key), key_id)
        self.stored: KeySlot | None = None
        """Slot B: a key from a PROVISION, sent with at once, active after its first ACK."""
        self.flash_session = session
        self.session = session
        self.next_seq = first_seq
        self.heartbeat_interval_s = DEFAULT_INTERVAL_S[kind]
        self.report_interval_s = DEFAULT_INTERVAL_S[kind]
        self.clock_offset_s = 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: dict[int, _Queued] = {}
        self.acked: set[int] = set()
        self.acked_positions: set[int] = set()
        self.nacked: dict[int, AckCode] = {}
        self.duplicate_acks = 0
        self.resyncs = 0
        self.indications: list[Indication] = []
        self.configs: list[Config] = []
        self.provisions = 0
        self.lose_provisions = 0
        """PROVISIONs to lose on the air before one arrives (a scenario's radio)."""
        self.rejected_downlinks = 0
        self.rejected_provisions = 0
        self.stale_downlinks = 0
        self.unanswered = 0
        self.last_downlink_seq = 0
        self._resend: list[bytes] = []
        self.heartbeat_wanted = False
        """A stale but authentic downlink was refused: a heartbeat tells the gateway."""
        self._wanted_heartbeat_at: float | None = None
        self.started_at = clock()
        self.jitter: Jitter = random.Random()  # noqa: S311 - jitter, not secrecy
        """Where the resend jitter comes from (a test may fix it)."""
        self.backoff_s = BACKOFF_FIRST_S
        """The base delay before the next resend; doubled by each, reset by any ACK."""
        self.dropped_frames = 0
        """Frames a full queue dropped or did not take (never a green call)."""
        self.held_presses = 0
        """Green presses a queue full of calls could not take: sent as one KEY_EVENT (with
        this press count) as soon as a place frees."""
        self._held_at = 0
        self.said_alone: list[BoxSaysAlone] = []
        """What the box said by itself (no downlink), in order."""
        self.queue_max: int | None = QUEUE_MAX
        """The queue's bound as firmware keeps it; None: a load generator that keeps all."""

    def __repr__(self) -> str:
        """Identity and progress; the key is not printed."""
        return (
            f"SimulatedDevice({self.device_id}, {self.kind}, session={self.session}, "
            f"next_seq={self.next_seq}, pending={self.pending_count}, key_id={self.key_id})"
        )

    @property
    def key(self) -> bytes:
        """The key frames are sent with now: slot B once a PROVISION stored it."""
        return (self.stored or self.active).key

    @property
    def key_id(self) -> int:
        """The key id frames carry now."""
        return (self.stored or self.active).key_id

    @property
    def key_version(self) -> int:
        """The key id of the active (confirmed) slot."""
        return self.active.key_id

    def now(self) -> int:
        """The device's own clock in unix seconds (as corrected by CONFIG)."""
        return max(0, int(self._clock() + self.clock_offset_s))

    @property
    def pending(self) -> dict[int, bytes]:
        """A copy of the frames built but not yet acknowledged, by seq."""
        with self._lock:
            return {q.seq: q.frame for q in self._queue.values()}

    @property
    def pending_positions(self) -> list[tuple[int, int]]:
        """(session, seq) of every frame waiting for its ACK, oldest first."""
        with self._lock:
            return [(q.session, q.seq) for _, q in sorted(self._queue.items())]

    @property
    def queued_frames(self) -> list[tuple[int, int, bytes]]:
        """(session, seq, frame) of every frame waiting for its ACK, in position order."""
        with self._lock:
            return [(q.session, q.seq, q.frame) for _, q in sorted(self._queue.items())]

    @property
    def pending_count(self) -> int:
        """How many frames wait for an ack."""
        return len(self._queue)

    # -- boot and counters ------------------------------------------------------------

    def reboot(self, *, erase_counter: bool = False, flash_value: int | None = None) -> None:
        """Power cycle: RAM is lost, flash is read. Queued frames survive (they are in flash).

        `erase_counter` wipes the stored session (erased flash reads 0xFFFFFFFF);
        `flash_value` puts any value there first (a corrupt or stale counter).
        """
        with self._lock:
            if erase_counter:
                self.flash_session = RESERVED
            if flash_value is not None:
                self.flash_session = flash_value
            stored = self.flash_session
            # Erased (or otherwise reserved) flash: session 0; the gateway resynchronises it.
            self.session = 0 if stored >= SEQ_MAX else stored + 1
            self.flash_session = self.session  # written before the first frame of the session
            self.next_seq = 1
            self.last_downlink_seq = 0
            self.started_at = self._clock()

    def _new_session(self, above: int) -> None:
        current = self.session if self.session <= SEQ_MAX else 0  # a reserved value counts as 0
        session = max(current, above) + 1
        self.session = 0 if session > SEQ_MAX else session
        self.flash_session = self.session
        self.next_seq = 1

    def _take_position(self) -> tuple[int, int]:
        if self.next_seq > SEQ_MAX or self.next_seq == 0:
            self._new_session(self.session)
        seq = self.next_seq
        self.next_seq += 1
        return self.session, seq

    def _encode(self, queued: _Queued) -> bytes:
        envelope = Envelope(
            self.device_id,
            queued.seq,
            queued.timestamp,
            queued.message,
            queued.session,
            self.key_id,
        )
        return encode(envelope, self.key)

    def _build(self, message: Message) -> bytes:
        with self._lock:
            if not self._make_room(message):
                return self._not_queued(message)
            return self._queue_new(message, self.now())

    def _queue_new(self, message: Message, timestamp: int) -> bytes:
        session, seq = self.session, self.next_seq
        if seq > SEQ_MAX or seq == 0:
            session, seq = self.session + 1, 1
        queued = _Queued(session, seq, timestamp, message, b"")
        queued.frame = self._encode(queued)  # only a frame that encodes takes a number
        if (session, seq) != (self.session, self.next_seq):
            self._new_session(self.session)
        self.next_seq = seq + 1
        self._queue[position(session, seq)] = queued
        return queued.frame

    def _full(self) -> bool:
        return self.queue_max is not None and len(self._queue) >= self.queue_max

    def _make_room(self, message: Message) -> bool:
        """Room for `message` in a queue of at most `queue_max` (docs/protocol.md section 6).

        A full queue drops its oldest frame of the lowest rank, if that rank is not above the
        new frame's: heartbeats and readings, then red and thumbs keys, then alarms (one a
        newer alarm of its kind replaces first). A green call is never dropped.
        """
        if not self._full():
            return True
        ranked = sorted(self._queue.items(), key=lambda item: (item[1].rank, item[0]))
        pos, lowest = ranked[0]
        if lowest.rank > min(_rank(message), RANK_ALARM):
            return False
        if lowest.rank == RANK_ALARM:
            # Oldest first; one a newer alarm of its kind replaces goes before any other.
            alarms = [(p, q.message.alarm) for p, q in ranked if isinstance(q.message, DeviceAlarm)]
            kinds = [kind for _, kind in alarms]
            pos = next((p for i, (p, kind) in enumerate(alarms) if kind in kinds[i + 1 :]), pos)
        del self._queue[pos]
        self.dropped_frames += 1
        return True

    def _not_queued(self, message: Message) -> bytes:
        """A frame a full queue cannot take: a green press is held, anything else dropped.

        A key press tells the resident the box is cut off (its calls keep going). The box
        sends its first waiting frame again at once instead: that is what is returned.
        """
        if isinstance(message, KeyEvent):
            if _rank(message) == RANK_CALL:
                self.held_presses = min(self.held_presses + message.press_count, PRESS_COUNT_MAX)
                self._held_at = self.now()
            else:
                self.dropped_frames += 1
            self.said_alone.append(CALL_NOT_SENT)
        else:
            self.dropped_frames += 1
        first = min(self._queue.items(), key=lambda item: (not item[1].urgent, item[0]))
        return first[1].frame

    def _release_held(self) -> None:
        """Held green presses become one call as soon as the queue has a place; sent at once."""
        if self.held_presses and not self._full():
            count, self.held_presses = self.held_presses, 0
            self._resend.append(self._queue_new(KeyEvent(Key.GREEN_CALL, count), self._held_at))

    def _renumber(self, pos: int, above: int) -> None:
        """The nacked frame again under the next number of a session above `above`.

        Only that frame: others still queued may have been stored already (their ACK on the
        way), and renumbering them would store them twice. A stale one gets its own nack.
        """
        if self.session <= above or self.session > SEQ_MAX:
            self._new_session(above)
        self.resyncs += 1
        queued = self._queue.pop(pos)
        session, seq = self._take_position()
        fresh = _Queued(session, seq, queued.timestamp, queued.message, b"")
        fresh.frame = self._encode(fresh)
        self._queue[position(session, seq)] = fresh
        self._resend = [fresh.frame]

    def _remac(self) -> None:
        """Queued frames keep their numbers and content; their MAC follows the sending key."""
        for queued in self._queue.values():
            queued.frame = self._encode(queued)
        self._resend = [q.frame for _, q in sorted(self._queue.items())]

    def take_resend(self) -> list[bytes]:
        """Frames to send at once: renumbered or re-MACed after a nack (no backoff then)."""
        with self._lock:
            frames, self._resend = self._resend, []
            return frames

    # -- uplinks ----------------------------------------------------------------------

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
        self.heartbeat_wanted = False
        return self._build(
            Heartbeat(
                battery_pct,
                battery_mv,
                rssi_dbm,
                firmware,
                max(0, uptime),
                self.heartbeat_interval_s,
                min(self.unanswered, U16_MAX),
                min(self.rejected_downlinks, U16_MAX),
                self.last_downlink_seq,
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
        """Every unacknowledged frame again, same bytes and numbers; the backoff doubles.

        Green calls and alarms first, then the rest; each group oldest first.
        """
        with self._lock:
            if self._queue:
                self.unanswered += 1
                self.backoff_s = min(self.backoff_s * 2, BACKOFF_MAX_S)
            ordered = sorted(self._queue.items(), key=lambda item: (not item[1].urgent, item[0]))
            return [q.frame for _, q in ordered]

    def resend_delay_s(self) -> float:
        """How long to wait before the next resend: the backoff with +-20 % jitter."""
        with self._lock:
            return self.backoff_s * self.jitter.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)

    def take_wanted_heartbeat(self) -> bytes | None:
        """The heartbeat a refused stale downlink asked for, at most once a minute; else None.

        Its `last_downlink_seq` moves the gateway's downlink counter above the box's.
        """
        with self._lock:
            now = self._clock()
            last = self._wanted_heartbeat_at
            if not self.heartbeat_wanted or (
                last is not None and now - last < WANTED_HEARTBEAT_GAP_S
            ):
                return None
            self._wanted_heartbeat_at = now
        return self.heartbeat()

    # -- downlinks --------------------------------------------------------------------

    def handle_downlink(self, data: bytes) -> Envelope | None:  # noqa: PLR0911 - one per check
        """Verify and apply one downlink; anything forged, replayed or misdirected is counted."""
        with self._lock:
            try:
                frame = parse_frame(bytes(data))
            except (ProtocolError, TypeError, ValueError):
                self.rejected_downlinks += 1
                return None
            slot = next(
                (s for s in (self.active, self.stored) if s and s.key_id == frame.key_id), None
            )
            if slot is None or frame.device_id != self.device_id:
                self.rejected_downlinks += 1
                return None
            try:
                verify_frame(frame, slot.key)
                message = decode_message(frame)
            except ProtocolError:
                self.rejected_downlinks += 1
                return None
            if not isinstance(message, _DOWNLINK_TYPES):
                self.rejected_downlinks += 1
                return None
            envelope = Envelope(
                frame.device_id,
                frame.seq,
                frame.timestamp,
                message,
                frame.session,
                frame.key_id,
            )
            if isinstance(message, Ack):
                return envelope if self._apply_ack(message, frame.mac, slot) else None
            # Indication, CONFIG, PROVISION: for this session, each newer than the last.
            if frame.session != self.session or frame.seq <= self.last_downlink_seq:
                self.rejected_downlinks += 1
                self.stale_downlinks += 1
                self.heartbeat_wanted = True
                return None
            self.last_downlink_seq = frame.seq
            self._apply(envelope, slot)
            return envelope

    def _apply(self, envelope: Envelope, slot: KeySlot) -> None:
        message = envelope.message
        if isinstance(message, Indication):
            self.indications.append(message)
        elif isinstance(message, Config):
            self.configs.append(message)
            if message.heartbeat_interval_s:
                self.heartbeat_interval_s = message.heartbeat_interval_s
            if message.report_interval_s:
                self.report_interval_s = message.report_interval_s
            if message.clock_unix:
                self.clock_offset_s = message.clock_unix - self._clock()
        elif isinstance(message, Provision):
            if self.lose_provisions:
                self.lose_provisions -= 1
                return
            self._apply_provision(envelope, message, slot)

    def _apply_ack(self, ack: Ack, _mac: bytes, slot: KeySlot) -> bool:
        pos = position(ack.acked_session, ack.acked_seq)
        queued = self._queue.get(pos)
        if queued is None or queued.frame[-8:][:ACKED_MAC_LEN] != ack.acked_mac:
            return False  # not (or no longer) ours: an old copy, or for other content
        self.unanswered = 0
        self.backoff_s = BACKOFF_FIRST_S
        if self.stored is not None and slot is self.stored:
            # The first ACK MACed with the stored key: it becomes the only key.
            self.active, self.stored = self.stored, None
        action = ack.code.action
        if action is AckAction.DROP:
            del self._queue[pos]
            self._release_held()
            if ack.is_ack:
                self.acked.add(ack.acked_seq)
                self.acked_positions.add(pos)
                self.nacked.pop(ack.acked_seq, None)
                if ack.code == AckCode.DUPLICATE:
                    self.duplicate_acks += 1
            else:
                self.nacked[ack.acked_seq] = ack.code
        elif action is AckAction.RESEND_LATER:
            self.nacked[ack.acked_seq] = ack.code
        elif action is AckAction.RENUMBER:
            self.nacked[ack.acked_seq] = ack.code
            self._renumber(pos, ack.last_session)
        else:  # REVERT_KEY: the key that MACed this nack is the one the gateway holds.
            self.nacked[ack.acked_seq] = ack.code
            self.active, self.stored = slot, None
            self._remac()
        return True

    def _apply_provision(self, envelope: Envelope, provision: Provision, slot: KeySlot) -> None:
        message = envelope.message
        assert isinstance(message, Provision)
        try:
            new_key = unwrap_key(
                slot.key,
                self.device_id,
                envelope.session,
                envelope.seq,
                provision.wrapped_key,
                provision.key_check,
            )
        except ProtocolError:
            self.rejected_provisions += 1
            return
        self.provisions += 1
        if slot is self.stored:
            # MACed with the stored key: the gateway holds it as its key, so it is confirmed.
            self.active = slot
        # Slot B is written (and read back) before the first frame uses it.
        self.stored = KeySlot(new_key, provision.key_id)
        self._remac()


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
