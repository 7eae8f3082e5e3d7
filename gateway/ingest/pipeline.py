"""Ingest: decode, authenticate, reject replays, dedupe, group-commit, then acknowledge.

Two lanes. A frame's lane is chosen from the message type byte of its header before anything
else is checked: key events and device alarms (a call for help, a leak) take the urgent lane,
everything else (heartbeats, readings, and whatever does not parse) the telemetry lane. Each
lane has its own worker: the urgent one commits small batches at once and never waits
behind a batch of telemetry (only behind the one transaction holding the store, if any);
telemetry keeps its large group commits. Within a lane frames are taken in arrival order.

A device's order across the lanes. An urgent frame carries with it every earlier frame of
the same device still waiting in the telemetry lane: they are taken out of that lane and
go, in their order, in the same batch and transaction just ahead of it. So a key event
never commits before an earlier frame of its device that is still queued, and the replay
window (measured from the newest committed seq) can never pass over a frame that was
already waiting; the device's frames reach the store in the order they arrived. A telemetry
batch already taken (being screened or committed) may commit after the urgent frame; that
is safe: its frames passed the window when they were screened, the duplicate check in the
transaction reads the device's newest seq at commit time and looks older seqs up in the
store, and the newest seq and the stored mark only ever grow.

Choosing a lane needs no MAC, so a forged frame can choose the urgent lane. It is bounded:
after `urgent_burst` urgent batches in a row while telemetry waits, the urgent worker lets
one telemetry batch finish first, and it yields to the loop between its batches. A forged
frame fails its MAC check and never reaches a transaction; what it may carry along is only
the named device's own queued frames, which are committed as they would have been.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from firmware_protocol import (
    RESERVED,
    AckCode,
    Config,
    Envelope,
    Frame,
    Heartbeat,
    Message,
    MessageType,
    ProtocolError,
    Provision,
    decode_message,
    parse_frame,
    verify_frame,
    wrap_key,
)
from firmware_protocol.sequence import place
from gateway.clock import Clock
from gateway.config import PipelineSettings
from gateway.domain.devices import DeviceSeen, EventRow
from gateway.errors import ConflictError, StoreCorruptError, StoreError
from gateway.ingest.downlink import Downlinker, DownlinkError, Reply
from gateway.ingest.kinds import WRONG_KIND, WRONG_KIND_CODE, wrong_kind
from gateway.ingest.links import InboundFrame
from gateway.ingest.registry import DeviceRegistry, DeviceState
from gateway.logs import RateLimitedLog
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Store, UnitOfWork

log = logging.getLogger(__name__)

OnCommit = Callable[[], None]
Heard = Callable[[Sequence[str]], None]
DownlinkHeard = Callable[[str, int, bool], None]
"""Called with (device_id, position of the box's last accepted downlink, refused): see
`DeviceState.heard_downlink_seq`."""
Lane = Literal["urgent", "telemetry"]

_URGENT_TYPES = frozenset({MessageType.KEY_EVENT.value, MessageType.DEVICE_ALARM.value})
_TYPE_AT = 1
_DEVICE_ID = slice(2, 10)
_SCREEN_YIELD_EVERY = 64
"""A telemetry batch being screened lets a waiting urgent frame in this often (frames)."""


def lane_of(data: bytes) -> Lane:
    """The lane of a frame, from the message type byte of its header (no MAC, no decode)."""
    if len(data) > _TYPE_AT and data[_TYPE_AT] in _URGENT_TYPES:
        return "urgent"
    return "telemetry"


@dataclass(slots=True)
class _Waiting:
    """A frame in the telemetry lane; `carried` once an urgent frame of its device took it."""

    item: InboundFrame
    device: bytes
    carried: bool = False


@dataclass(frozen=True, slots=True)
class AcceptedFrame:
    """A verified, new uplink that is being committed."""

    inbound: InboundFrame
    envelope: Envelope
    state: DeviceState
    frame: Frame
    """The frame as received: its MAC tells a copy from a new frame that reused the numbers."""


class IngestHandler(Protocol):
    """Domain logic run inside the ingest transaction for the frames it accepts."""

    async def stage(self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]) -> OnCommit | None:
        """Write the frames' effects; return what to do to in-memory state once committed."""
        ...


@dataclass(slots=True)
class _Batch:
    """What screening decided for each frame of a batch."""

    items: list[InboundFrame]
    urgent: bool = False
    """The urgent lane's: its transaction is next in line for the store's writer."""
    candidates: list[AcceptedFrame] = field(default_factory=list)
    """Verified new-looking frames; those with an old seq are checked against the store."""
    replies: list[Reply] = field(default_factory=list)
    """Nacks: frames that authenticated but cannot be stored (now or ever)."""
    refused: list[InboundFrame] = field(default_factory=list)
    """Frames already settled when the queue was full; each is owed NACK_RETRY_LATER."""
    duplicates: list[AcceptedFrame] = field(default_factory=list)
    accepted: list[AcceptedFrame] = field(default_factory=list)
    on_commit: list[OnCommit] = field(default_factory=list)
    outgoing: list[Reply] = field(default_factory=list)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_JSON = json.JSONEncoder(separators=(",", ":"))
"""One encoder for every event: json.dumps with options builds a new one per call."""


def message_fields(message: Message) -> dict[str, Any]:
    """The message's fields as JSON-ready values (enums by name, bytes as hex)."""
    names = _FIELD_NAMES.get(type(message))
    if names is None:
        names = _FIELD_NAMES[type(message)] = tuple(f.name for f in dataclasses.fields(message))
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(message, name)
        if isinstance(value, enum.Enum):
            value = value.name
        elif isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


class Pipeline:
    """One worker that turns frames into committed events and acks, in batches."""

    def __init__(
        self,
        store: Store,
        registry: DeviceRegistry,
        clock: Clock,
        settings: PipelineSettings,
        metrics: GatewayMetrics,
        downlinks: Downlinker,
        handlers: Sequence[IngestHandler] = (),
    ) -> None:
        self._store = store
        self._downlinks = downlinks
        self._registry = registry
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._handlers = list(handlers)
        self._urgent: deque[InboundFrame] = deque()
        self._telemetry: deque[_Waiting] = deque()
        self._by_device: dict[bytes, deque[_Waiting]] = {}
        """Telemetry frames still waiting, per device id (header bytes), in arrival order."""
        self._telemetry_live = 0
        """Telemetry frames waiting and not carried off by an urgent frame."""
        self._urgent_ready = asyncio.Event()
        self._telemetry_ready = asyncio.Event()
        self._telemetry_progress = asyncio.Event()
        self._telemetry_batches = 0
        self._halt = False
        # Read when scraped, not set on every frame.
        metrics.pipeline_queue.set_function(self._waiting)
        metrics.pipeline_lane_queue.labels("urgent").set_function(self._urgent.__len__)
        metrics.pipeline_lane_queue.labels("telemetry").set_function(lambda: self._telemetry_live)
        self._reject_log = RateLimitedLog(log, settings.reject_log_interval_s)
        self._busy: set[Lane] = set()
        # Refusals are bounded too: past this, a refused frame gets no nack (it is settled,
        # so the device, not the broker, sends it again when no ack comes).
        self._refused: deque[InboundFrame] = deque(maxlen=settings.queue_max)
        self._heard: list[Heard] = []
        self._downlink_heard: list[DownlinkHeard] = []

    def add_handler(self, handler: IngestHandler) -> None:
        """Run `handler` in every ingest transaction from now on."""
        self._handlers.append(handler)

    def on_heard(self, callback: Heard) -> None:
        """Call `callback` with the devices whose frames a batch just committed or deduplicated."""
        self._heard.append(callback)

    def on_downlink_heard(self, callback: DownlinkHeard) -> None:
        """Call `callback` for each committed heartbeat naming the box's last accepted downlink.

        (device_id, its position, refused): refused when that number was not used by this run
        of the gateway, so what this run sent the box in that session was refused as stale.
        """
        self._downlink_heard.append(callback)

    def submit_nowait(self, frame: InboundFrame) -> bool:
        """Queue a frame; every frame handed in is settled exactly once, queued or not.

        Links hold a credit (their frames waiting here) and settings keep the credits within
        the queue, so the queue is never full. If it is all the same, the frame is refused:
        settled at once (a transport must not keep it in flight) and answered with
        NACK_RETRY_LATER, so the device's own retransmission brings it back. Returns False then.
        """
        if self._waiting() >= self._settings.queue_max:
            self._refused.append(frame)
            _settle(frame)
            return False
        data = frame.data
        if len(data) > _TYPE_AT and data[_TYPE_AT] in _URGENT_TYPES:
            self._urgent.append(frame)
            self._urgent_ready.set()
            return True
        waiting = _Waiting(frame, data[_DEVICE_ID])
        self._telemetry.append(waiting)
        mine = self._by_device.get(waiting.device)
        if mine is None:
            self._by_device[waiting.device] = deque((waiting,))
        else:
            mine.append(waiting)
        self._telemetry_live += 1
        self._telemetry_ready.set()
        return True

    def _waiting(self) -> int:
        return len(self._urgent) + self._telemetry_live

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch in progress."""
        return not self._urgent and not self._telemetry_live and not self._busy

    async def drain(self, timeout: float) -> bool:
        """Wait until every queued frame has been processed; False on timeout."""
        deadline = time.monotonic() + timeout
        while not self.idle:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def run(self) -> None:
        """Run both lanes until cancelled; if one fails, the other finishes its batch first."""
        self._halt = False
        workers = [
            asyncio.create_task(self._run_urgent(), name="pipeline-urgent"),
            asyncio.create_task(self._run_telemetry(), name="pipeline-telemetry"),
        ]
        try:
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            self._halt = True
            for event in (self._urgent_ready, self._telemetry_ready, self._telemetry_progress):
                event.set()
            await asyncio.wait(workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        failures = [w.exception() for w in done if w.exception() is not None]
        if failures:
            raise failures[0]  # type: ignore[misc]

    async def _run_telemetry(self) -> None:
        """Telemetry in large batches (group commits), in arrival order."""
        while not self._halt:
            if not self._telemetry_live:
                self._telemetry_ready.clear()
                await self._telemetry_ready.wait()
                continue
            self._busy.add("telemetry")
            try:
                if self._telemetry_live == 1 and self._settings.batch_linger_s > 0:
                    await asyncio.sleep(self._settings.batch_linger_s)
                batch = self._take_telemetry(self._settings.batch_max)
                await self._answer_refused_now()
                if batch:
                    await self._process_isolating(batch, "telemetry")
            finally:
                self._busy.discard("telemetry")
                self._telemetry_batches += 1
                self._telemetry_progress.set()

    async def _run_urgent(self) -> None:
        """Key events and alarms in small batches, committed at once; bounded by `urgent_burst`."""
        burst, seen = 0, self._telemetry_batches
        while not self._halt:
            if not self._urgent:
                self._urgent_ready.clear()
                await self._urgent_ready.wait()
                continue
            if seen != self._telemetry_batches:
                burst, seen = 0, self._telemetry_batches
            if burst >= self._settings.urgent_burst and self._telemetry_live:
                # Telemetry has waited through a burst: one of its batches goes first.
                self._metrics.pipeline_urgent_yields.inc()
                while seen == self._telemetry_batches and self._telemetry_live and not self._halt:
                    self._telemetry_progress.clear()
                    await self._telemetry_progress.wait()
                continue
            self._busy.add("urgent")
            try:
                batch = self._take_urgent(self._settings.urgent_batch_max)
                await self._answer_refused_now()
                await self._process_isolating(batch, "urgent")
            finally:
                self._busy.discard("urgent")
            burst += 1
            await asyncio.sleep(0)  # the links and the telemetry lane run between batches

    def _take_telemetry(self, limit: int) -> list[InboundFrame]:
        """Up to `limit` waiting telemetry frames, oldest first (carried ones are skipped)."""
        batch: list[InboundFrame] = []
        lane, by_device = self._telemetry, self._by_device
        while lane and len(batch) < limit:
            waiting = lane.popleft()
            if waiting.carried:
                continue
            mine = by_device[waiting.device]
            mine.popleft()
            if not mine:
                del by_device[waiting.device]
            batch.append(waiting.item)
        self._telemetry_live -= len(batch)
        return batch

    def _take_urgent(self, limit: int) -> list[InboundFrame]:
        """Up to `limit` urgent frames, each after its device's earlier telemetry still waiting."""
        batch: list[InboundFrame] = []
        taken = 0
        while self._urgent and taken < limit:
            item = self._urgent.popleft()
            earlier = self._by_device.pop(item.data[_DEVICE_ID], None)
            if earlier:
                for waiting in earlier:
                    waiting.carried = True
                    batch.append(waiting.item)
                self._telemetry_live -= len(earlier)
            batch.append(item)
            taken += 1
        return batch

    async def _answer_refused_now(self) -> None:
        refused = list(self._refused)
        self._refused.clear()
        if refused:
            await self._answer_refused(refused)

    async def _process_isolating(self, items: list[InboundFrame], lane: Lane) -> None:
        """Process a batch; if domain code fails, retry frame by frame so one bad frame is alone."""
        try:
            await self._process(items, lane)
        except asyncio.CancelledError:
            raise
        except Exception:
            if len(items) == 1:
                self._metrics.frames_rejected.labels(
                    items[0].link.transport, "internal_error"
                ).inc()
                log.exception("frame could not be processed; it is not acknowledged")
                _settle(items[0])
                return
            for item in items:
                await self._process_isolating([item], lane)

    async def _answer_refused(self, items: list[InboundFrame]) -> None:
        """Tell each authenticated sender of a refused frame to retry later."""
        batch = _Batch([])
        for item in items:
            frame = self._parse(item)
            if frame is None:
                continue
            state = self._registry.cached(frame.device_id) or await self._registry.lookup(
                frame.device_id
            )
            if state is None:
                self._reject(item, "unknown_device", frame.device_id)
                continue
            key = state.record.key_for(frame.key_id)
            if key is None:
                self._reject(item, "unknown_key", frame.device_id)
                continue
            try:
                verify_frame(frame, key)
            except ProtocolError as exc:
                self._reject(item, exc.reason, frame.device_id)
                continue
            self._nack(item, frame, state, AckCode.NACK_RETRY_LATER, "overload", batch)
        if batch.replies:
            try:
                await self._commit_with_retry(batch)
            except Exception:
                log.exception("nacks for refused frames could not be prepared")
                return
            await self._downlinks.send_replies(batch.outgoing)

    async def _process(self, items: list[InboundFrame], lane: Lane) -> None:
        batch = _Batch(items, urgent=lane == "urgent")
        started = self._timed(batch, "queued", *(item.arrived for item in items))
        seen: dict[tuple[str, int], bytes] = {}
        cached = self._registry.cached
        parsed = [(item, self._parse(item)) for item in items]
        # Known devices come from memory; the batch's first contacts cost one read together.
        first = {f.device_id for _, f in parsed if f is not None and cached(f.device_id) is None}
        if first:
            await self._registry.preload(first)
        for index, (item, frame) in enumerate(parsed):
            if lane == "telemetry" and self._urgent and not index % _SCREEN_YIELD_EVERY:
                await asyncio.sleep(0)  # a call for help waits for no more than this many
            if frame is None:
                continue
            state = cached(frame.device_id) or await self._registry.lookup(frame.device_id)
            accepted = self._screen(item, frame, state, batch)
            if accepted is None:
                continue
            key = (accepted.state.device_id, accepted.envelope.position)
            mac = seen.get(key)
            if mac is None:
                seen[key] = accepted.frame.mac
                batch.candidates.append(accepted)
            elif mac == accepted.frame.mac:
                batch.duplicates.append(accepted)
            else:
                reused = AckCode.NACK_SEQ_REUSED
                self._nack(item, frame, accepted.state, reused, "seq_reused", batch)
        self._timed(batch, "screened", started)
        if batch.candidates or batch.duplicates or batch.replies:
            await self._commit_with_retry(batch)
        committed = time.perf_counter()
        await self._after_commit(batch)
        self._timed(batch, "acked", committed)

    def _timed(self, batch: _Batch, stage: str, *since: float) -> float:
        """Now; for an urgent batch, also the time since each of `since` as that stage."""
        now = time.perf_counter()
        if batch.urgent:
            histogram = self._metrics.urgent_stages.labels(stage)
            for start in since:
                histogram.observe(now - start)
        return now

    def _parse(self, item: InboundFrame) -> Frame | None:
        """The frame's structure, and that it came on its own device's topic."""
        try:
            frame = parse_frame(item.data)
        except ProtocolError as exc:
            self._reject(item, exc.reason, item.topic_device_id)
            return None
        if item.topic_device_id is not None and item.topic_device_id != frame.device_id:
            self._reject(item, "topic_mismatch", item.topic_device_id)
            return None
        return frame

    def _screen(
        self, item: InboundFrame, frame: Frame, state: DeviceState | None, batch: _Batch
    ) -> AcceptedFrame | None:
        """Every other check that needs no transaction; rejects are final, nacks get a reply."""
        if state is None:
            self._reject(item, "unknown_device", frame.device_id)
            return None
        if not is_uplink_type(frame.msg_type):
            # A downlink type on the uplink topic is never answered (it may be our own echo).
            self._reject(item, "downlink_type_on_uplink", frame.device_id)
            return None
        key = state.record.key_for(frame.key_id)
        if key is None:
            # Not a key the gateway holds: answered with the current key, which the box keeps
            # until a rotation is confirmed, so it can fall back to it.
            self._nack(item, frame, state, AckCode.NACK_UNKNOWN_KEY, "unknown_key", batch)
            return None
        try:
            verify_frame(frame, key)
        except ProtocolError as exc:
            self._reject(item, exc.reason, frame.device_id)
            return None
        # From here on the sender is authenticated, so it may be told what is wrong.
        message: Message | None = None
        if not state.record.enabled:
            code, reason = AckCode.NACK_DEVICE_DISABLED, "device_disabled"
        elif frame.session == RESERVED or frame.seq in (0, RESERVED):
            code, reason = AckCode.NACK_RESYNC, "reserved_counter"
        else:
            try:
                message = decode_message(frame)
            except ProtocolError as exc:
                code, reason = AckCode.NACK_INVALID_PAYLOAD, exc.reason
        if message is not None and wrong_kind(state.record.kind, message):
            message, code, reason = None, WRONG_KIND_CODE, WRONG_KIND
        if message is None:
            self._nack(item, frame, state, code, reason, batch)
            return None
        envelope = Envelope(
            frame.device_id, frame.seq, frame.timestamp, message, frame.session, frame.key_id
        )
        return AcceptedFrame(item, envelope, state, frame)

    def _nack(
        self,
        item: InboundFrame,
        frame: Frame,
        state: DeviceState,
        code: AckCode,
        reason: str,
        batch: _Batch,
    ) -> None:
        self._metrics.frames_nacked.labels(item.link.transport, reason).inc()
        self._reject_log.warning(
            (frame.device_id, reason),
            self._clock.now(),
            "uplink nacked",
            device_id=frame.device_id,
            reason=reason,
        )
        batch.replies.append(Reply(item.link, state, frame, code))

    def _reject(self, item: InboundFrame, reason: str, device_id: str | None) -> None:
        self._metrics.frames_rejected.labels(item.link.transport, reason).inc()
        self._reject_log.warning(
            (device_id or "-", reason),
            self._clock.now(),
            "frame rejected",
            device_id=device_id or "-",
            reason=reason,
            link=item.link.name,
        )

    def _placed(self, cand: AcceptedFrame, stored_mac: bytes | None) -> AckCode | None:
        """The fate of a frame not after its device's newest: None to accept it, else the code.

        Stored with the same MAC: a copy (DUPLICATE). Stored with another MAC: the numbers were
        used for other content (NACK_SEQ_REUSED, the box renumbers it). Not stored: accepted
        late if it is of the newest session and at most `replay_window` below the newest seq
        (or the device has no order yet), otherwise NACK_RESYNC.
        """
        code = place(
            cand.state.last_seq,
            cand.frame.session,
            cand.frame.seq,
            cand.frame.mac,
            stored_mac,
            self._settings.replay_window,
        )
        return None if code == AckCode.ACCEPTED else code

    async def _protocol_writes(self, uow: UnitOfWork, accepted: Sequence[AcceptedFrame]) -> None:
        """Key promotion and confirmed configuration, in the frames' own transaction."""
        now = self._clock.now()
        done: dict[str, tuple[bool, bool]] = {}
        for frame in accepted:
            record = frame.state.record
            if record.next_key_id is not None and frame.frame.key_id == record.next_key_id:
                await uow.devices.promote_key(record.device_id, record.next_key_id)
            heartbeat, clock = done.get(record.device_id, (False, False))
            message = frame.envelope.message
            if (
                record.pending_heartbeat_s is not None
                and isinstance(message, Heartbeat)
                and message.heartbeat_interval_s == record.pending_heartbeat_s
            ):
                heartbeat = True
            if (
                record.pending_clock
                and frame.state.clock_sent_at is not None
                and self._clock_ok(frame.envelope.timestamp, now)
            ):
                clock = True
            if heartbeat or clock:
                done[record.device_id] = (heartbeat, clock)
        for device_id, (heartbeat, clock) in done.items():
            await uow.devices.config_done(device_id, heartbeat=heartbeat, clock=clock)
        if done:
            states = {f.state.device_id: f.state for f in accepted}
            for device_id, (heartbeat, clock) in done.items():
                state = states[device_id]
                state.record = dataclasses.replace(
                    state.record,
                    pending_heartbeat_s=None if heartbeat else state.record.pending_heartbeat_s,
                    pending_clock=False if clock else state.record.pending_clock,
                )

    def _clock_ok(self, timestamp: int, now: float) -> bool:
        return timestamp != 0 and abs(timestamp - now) <= self._settings.clock_drift_max_s

    async def _follow_up(self, accepted: Sequence[AcceptedFrame]) -> None:
        """After the acks: PROVISION and CONFIG where due, through the one downlink path.

        PROVISION follows every frame still MACed with the old key while a rotation waits;
        CONFIG follows when an operator asked for it or the box's clock is unset or drifted.
        """
        if not accepted:
            return
        now = self._clock.now()
        by_device: dict[str, list[AcceptedFrame]] = defaultdict(list)
        for frame in accepted:
            by_device[frame.state.device_id].append(frame)
        for device_id, frames in by_device.items():
            state = frames[0].state
            record = state.record
            if record.next_key is not None and any(
                f.frame.key_id == record.key_version for f in frames
            ):
                await self._send(device_id, _provision)
            clock = 0
            if record.pending_clock or any(
                not self._clock_ok(f.envelope.timestamp, now) for f in frames
            ):
                due = (
                    state.clock_sent_at is None
                    or now - state.clock_sent_at >= self._settings.clock_resend_s
                    or record.pending_clock
                )
                if due:
                    clock = int(now)
            heartbeat = record.pending_heartbeat_s or 0
            sent = (clock or heartbeat) and await self._send(device_id, Config(heartbeat, 0, clock))
            if sent and clock:
                state.clock_sent_at = now

    async def _send(self, device_id: str, message: Message | Callable[..., Message]) -> bool:
        try:
            await self._downlinks.send(device_id, message)
        except DownlinkError as exc:
            log.info(
                "follow-up downlink not sent", extra={"device_id": device_id, "reason": exc.reason}
            )
            return False
        return True

    async def _commit_with_retry(self, batch: _Batch) -> None:
        delay = self._settings.commit_retry_initial_s
        while True:
            try:
                await self._commit(batch)
            except (StoreError, OSError) as exc:
                if isinstance(exc, ConflictError | StoreCorruptError):
                    raise  # not a passing failure: the pipeline's supervisor takes it
                self._metrics.commit_failures.inc()
                log.warning("ingest commit failed, retrying", extra={"error": str(exc)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._settings.commit_retry_max_s)
            else:
                return

    async def _commit(self, batch: _Batch) -> None:
        started = time.perf_counter()
        accepted: list[AcceptedFrame] = []
        duplicates = list(batch.duplicates)
        on_commit: list[OnCommit] = []
        nacks: list[Reply] = []
        async with self._store.transaction(urgent=batch.urgent) as uow:
            entered = self._timed(batch, "writer_wait", started)
            old: dict[str, list[AcceptedFrame]] = defaultdict(list)
            unstored: list[AcceptedFrame] = []
            for cand in batch.candidates:
                state, position = cand.state, cand.envelope.position
                if state.last_seq is not None and position > state.last_seq:
                    accepted.append(cand)
                elif state.high_exact and (state.high_seq is None or position > state.high_seq):
                    # No order since a reset (or a device never heard), and nothing stored
                    # at or above this position: there is no stored copy to look for.
                    unstored.append(cand)
                else:
                    # Not after the newest: a copy, a reuse of the numbers, late, or stale.
                    old[state.device_id].append(cand)
            placed: list[tuple[AcceptedFrame, bytes | None]] = [(c, None) for c in unstored]
            for device_id, cands in old.items():
                stored = await uow.devices.stored_macs(
                    device_id, [c.envelope.position for c in cands]
                )
                placed.extend((cand, stored.get(cand.envelope.position)) for cand in cands)
            for cand, stored_mac in placed:
                verdict = self._placed(cand, stored_mac)
                if verdict is None:
                    accepted.append(cand)
                elif verdict == AckCode.DUPLICATE:
                    duplicates.append(cand)
                else:
                    reason = "seq_reused" if verdict == AckCode.NACK_SEQ_REUSED else "stale"
                    self._metrics.frames_nacked.labels(cand.inbound.link.transport, reason).inc()
                    nacks.append(Reply(cand.inbound.link, cand.state, cand.frame, verdict))
            # Each device's frames take effect in its own order, whatever order they came in.
            accepted.sort(key=lambda a: (a.state.device_id, a.envelope.position))
            replies = [
                *batch.replies,
                *nacks,
                *(Reply(a.inbound.link, a.state, a.frame, AckCode.ACCEPTED) for a in accepted),
                *(Reply(d.inbound.link, d.state, d.frame, AckCode.DUPLICATE) for d in duplicates),
            ]
            marks: dict[str, int] = {}
            await uow.devices.insert_events([_event_row(a) for a in accepted])
            await self._protocol_writes(uow, accepted)
            seen = _seen_rows(accepted, marks, self._settings.last_seen_flush_s)
            await _write_seen(uow, seen, marks)
            if accepted:
                for handler in self._handlers:
                    callback = await handler.stage(uow, accepted)
                    if callback is not None:
                        on_commit.append(callback)
        _flushed(accepted, seen)
        batch.accepted, batch.duplicates, batch.on_commit = accepted, duplicates, on_commit
        batch.outgoing = replies
        done = self._timed(batch, "write", entered)
        self._metrics.commit_latency.observe(done - started)
        self._metrics.commit_batch_size.observe(len(accepted))

    async def _after_commit(self, batch: _Batch) -> None:
        # Counted per batch: a labelled child costs a lock and a lookup each time.
        received: Counter[tuple[str, str]] = Counter()
        downlinks_heard: list[tuple[str, int, bool]] = []
        for frame in batch.accepted:
            state = frame.state
            state.accepted(frame.envelope.position)
            state.last_link = frame.inbound.link.name
            if frame.frame.key_id != state.record.key_version:
                state.record = dataclasses.replace(
                    state.record,
                    key=state.record.next_key or state.record.key,
                    key_version=frame.frame.key_id,
                    next_key=None,
                    next_key_id=None,
                )
            message = frame.envelope.message
            if isinstance(message, Heartbeat):
                counter = state.heard_downlink_seq(
                    frame.envelope.session, message.last_downlink_seq
                )
                if counter is not None:
                    downlinks_heard.append((state.device_id, *counter))
            received[frame.inbound.link.transport, type(frame.envelope.message).__name__] += 1
        for labels, count in received.items():
            self._metrics.frames_received.labels(*labels).inc(count)
        duplicates = Counter(dup.inbound.link.transport for dup in batch.duplicates)
        for transport, count in duplicates.items():
            self._metrics.duplicates.labels(transport).inc(count)
        for callback in batch.on_commit:
            callback()
        await self._downlinks.send_replies(batch.outgoing)
        for item in batch.items:
            _settle(item)
        await self._follow_up(batch.accepted)
        if self._heard and (batch.accepted or batch.duplicates):
            heard = {f.state.device_id for f in (*batch.accepted, *batch.duplicates)}
            for listener in self._heard:
                try:
                    listener(sorted(heard))
                except Exception:
                    self._metrics.callback_errors.labels("pipeline_heard").inc()
                    log.exception("a listener for heard devices failed")
        self._tell_downlinks_heard(downlinks_heard)

    def _tell_downlinks_heard(self, heard: Sequence[tuple[str, int, bool]]) -> None:
        for device_id, heard_at, refused in heard:
            for listener in self._downlink_heard:
                try:
                    listener(device_id, heard_at, refused)
                except Exception:
                    self._metrics.callback_errors.labels("pipeline_downlink_heard").inc()
                    log.exception("a listener for the boxes' downlink counters failed")


def is_uplink_type(msg_type: int) -> bool:
    """Uplink message types are 0x01..0x7F, downlink ones 0x81..0xFF."""
    return msg_type < 0x80


def _provision(state: DeviceState, session: int, seq: int) -> Message:
    """PROVISION of the device's next key, wrapped for this very downlink's header."""
    record = state.record
    assert record.next_key is not None
    assert record.next_key_id is not None
    wrapped, check = wrap_key(record.key, record.device_id, session, seq, record.next_key)
    return Provision(record.next_key_id, wrapped, check)


def _settle(item: InboundFrame) -> None:
    if item.settle is not None:
        try:
            item.settle()
        except Exception:
            log.exception("settling a frame failed")


def _event_row(frame: AcceptedFrame) -> EventRow:
    env = frame.envelope
    return EventRow(
        device_id=env.device_id,
        seq=env.position,
        msg_type=type(env.message).__name__,
        device_time=env.timestamp,
        received_at=frame.inbound.received_at,
        transport=frame.inbound.link.transport,
        link=frame.inbound.link.name,
        raw=frame.inbound.data,
        fields=_JSON.encode(message_fields(env.message)),
    )


async def _write_seen(uow: UnitOfWork, seen: dict[str, DeviceSeen], marks: dict[str, int]) -> None:
    """Store the contact rows due a flush and every downlink reservation (nothing else)."""
    if seen:
        await uow.devices.mark_seen(list(seen.values()))
    for device_id, mark in marks.items():
        if device_id not in seen:
            await uow.devices.set_downlink_seq(device_id, mark)


def _flushed(accepted: Sequence[AcceptedFrame], seen: dict[str, DeviceSeen]) -> None:
    """Note in memory the last contact just stored in the device rows."""
    for frame in accepted:
        flushed = seen.get(frame.state.device_id)
        if flushed is not None:
            frame.state.stored_seen = flushed.last_seen


def _seen_rows(
    accepted: Sequence[AcceptedFrame], reservations: dict[str, int], flush_s: float
) -> dict[str, DeviceSeen]:
    """Newest contact, link and highest seq of each device whose row lags `flush_s` or more."""
    latest: dict[str, tuple[float, str, int]] = {}
    for frame in accepted:
        stored = frame.state.stored_seen
        if stored is not None and frame.inbound.received_at - stored < flush_s:
            continue
        device_id = frame.envelope.device_id  # the id the state was looked up by
        seq, last_seen = frame.envelope.position, frame.inbound.received_at
        prior = latest.get(device_id)
        if prior is not None:
            last_seen, seq = max(last_seen, prior[0]), max(seq, prior[2])
        latest[device_id] = (last_seen, frame.inbound.link.name, seq)
    return {
        device_id: DeviceSeen(device_id, last_seen, link, seq, reservations.get(device_id, 0))
        for device_id, (last_seen, link, seq) in latest.items()
    }
