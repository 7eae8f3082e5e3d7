"""The device registry: the store's devices, loaded lazily and cached for the hot path.

Nothing is loaded at start-up: a device is read on its first frame (or first downlink), one
indexed read of its row and its newest event, so start-up costs the same for 1,000 devices
as for 200,000. The newest event gives the exact newest committed seq and link even when the
device row lags behind them (the row's contact fields are flushed coarsely, see the
pipeline), so dedupe and the replay window stay exact after a crash.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, replace

from firmware_protocol import KEY_LEN, ProtocolError, parse_device_id, position, split_position
from gateway.clock import Clock
from gateway.config import DeviceKind, SupervisionSettings
from gateway.domain.devices import DeviceRecord, DeviceStatus, HistoryAction, HistoryEntry
from gateway.errors import RegistryError
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Store

log = logging.getLogger(__name__)

SILENT_DEADLINE = "device_silent"
DOWNLINK_SEQ_BLOCK = 1024
"""Downlink sequence numbers are stored this far ahead, so sending needs no write.

Only indications, CONFIG and PROVISION take one: an ACK names the frame it answers (its
session, seq and MAC) and carries downlink seq 0, so acknowledging writes nothing."""


@dataclass(slots=True)
class DeviceState:
    """A device's record plus the fields the gateway changes while it runs."""

    record: DeviceRecord
    last_seq: int | None
    """Position (session << 32 | seq) of the newest frame accepted since the last reset."""
    high_seq: int | None
    """The highest position ever stored: resynchronisation points the device above it."""
    downlink_seq: int
    """session << 32 | the last downlink seq used in that session."""
    downlink_reserved: int
    """The stored high-water mark: every seq up to it may be used without another write."""
    status: DeviceStatus
    low_battery: bool
    interval_s: int
    last_link: str | None
    stored_seen: float | None
    """The last contact as stored in the device row (flushed coarsely)."""
    stored_health: tuple[str | None, int | None, int | None]
    """(firmware, battery %, signal dBm) as stored in the device row."""
    clock_sent_at: float | None = None
    """When a CONFIG with the time was last handed to the device's link."""
    own_from: int | None = None
    """Position of the first downlink seq this run of the gateway used since it last learnt
    the box's counter: every number from it up to `downlink_seq` went out from this run."""
    tamper: bool = False
    """The device reports its case opened (as stored; changed only by a transition)."""
    power_loss: bool = False
    """The device reports a mains power loss (as stored; changed only by a transition)."""
    high_exact: bool = False
    """`high_seq` was read with the device's events (or the device is new), so no event of
    it is stored above `high_seq`: a frame above it needs no look for a stored copy."""

    @classmethod
    def from_record(cls, record: DeviceRecord, *, high_exact: bool = False) -> DeviceState:
        """The state as stored (`high_exact` when the record was read with its events)."""
        return cls(
            record=record,
            last_seq=record.last_seq,
            high_seq=record.high_seq if record.high_seq is not None else record.last_seq,
            # After a restart every number up to the stored mark may have been used.
            downlink_seq=record.downlink_seq,
            downlink_reserved=record.downlink_seq,
            status=record.status,
            low_battery=record.low_battery,
            interval_s=record.heartbeat_interval_s,
            last_link=record.last_link,
            stored_seen=record.last_seen,
            stored_health=(record.firmware, record.battery_pct, record.rssi_dbm),
            tamper=record.tamper,
            power_loss=record.power_loss,
            high_exact=high_exact,
        )

    @property
    def device_id(self) -> str:
        """The device id."""
        return self.record.device_id

    @property
    def key(self) -> bytes:
        """The device's current MAC key."""
        return self.record.key

    @property
    def session(self) -> int:
        """The device's current session, as far as the gateway knows (0 before any frame)."""
        newest = self.last_seq if self.last_seq is not None else self.high_seq
        return 0 if newest is None else split_position(newest)[0]

    def resync_point(self) -> tuple[int, int]:
        """(last_session, last_seq) an ACK reports: the highest position ever stored."""
        return split_position(self.high_seq) if self.high_seq is not None else (0, 0)

    def accepted(self, pos: int) -> None:
        """Note an accepted position (after its commit)."""
        self.last_seq = pos if self.last_seq is None else max(self.last_seq, pos)
        self.high_seq = pos if self.high_seq is None else max(self.high_seq, pos)

    def heard_downlink_seq(self, session: int, seq: int) -> tuple[int, bool] | None:
        """A heartbeat of `session` says the box last accepted downlink `seq` (0: none).

        The counter never stays below it. Returns (its position, refused): `refused` when
        the box had that number from an earlier run of the gateway (a database restored
        from an older copy), not from this run; then every downlink this run sent it in the
        session, all numbered at or below it, was refused as stale and must be sent again
        (docs/protocol.md section 10). None for another session's counter or no number.
        """
        if seq == 0 or session != self.session:
            return None
        heard = position(session, seq)
        ours = self.own_from is not None and self.own_from <= heard <= self.downlink_seq
        if heard > self.downlink_seq:
            self.downlink_seq = heard
            self.own_from = None  # the numbers above it start a new run of our own
        return heard, not ours

    def _next_downlink(self) -> int:
        return max(self.downlink_seq, position(self.session, 0)) + 1

    def reservation_for(self, count: int) -> int | None:
        """A new high-water mark to store before `count` more downlinks, or None if not needed."""
        last = self._next_downlink() + count - 1
        if last <= self.downlink_reserved:
            return None
        return last + DOWNLINK_SEQ_BLOCK

    def reserved(self, mark: int) -> None:
        """Record that `mark` has been stored."""
        self.downlink_reserved = max(self.downlink_reserved, mark)

    def allocate_downlink_seq(self) -> tuple[int, int]:
        """(session, seq) for the next downlink; call it right before the frame is written."""
        self.downlink_seq = self._next_downlink()
        session, seq = split_position(self.downlink_seq)
        if self.own_from is None or split_position(self.own_from)[0] != session:
            self.own_from = self.downlink_seq
        return session, seq


class DeviceRegistry:
    """Registered devices; hits come from memory, misses are looked up once and remembered."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        supervision: SupervisionSettings,
        metrics: GatewayMetrics,
        unknown_cache_s: float = 30.0,
        armed: Callable[[str, float, int], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._supervision = supervision
        self._metrics = metrics
        self._unknown_cache_s = unknown_cache_s
        self._devices: dict[str, DeviceState] = {}
        self._unknown: dict[str, float] = {}
        self._armed = armed
        self._online = 0
        self._offline = 0

    def watch_registrations(self, armed: Callable[[str, float, int], None]) -> None:
        """Call `armed(device_id, silent_at, interval_s)` for every device registered."""
        self._armed = armed

    async def load(self) -> None:
        """Forget cached devices and count devices online and offline (one aggregate read).

        Devices themselves are read lazily, on their first frame.
        """
        self._devices.clear()
        self._unknown.clear()
        counts = await self._store.devices.status_counts()
        self._online, self._offline = counts.get("online", 0), counts.get("offline", 0)
        self._publish_gauges()

    def cached(self, device_id: str) -> DeviceState | None:
        """The device if it is in memory."""
        return self._devices.get(device_id)

    def all(self) -> list[DeviceState]:
        """Every cached device."""
        return list(self._devices.values())

    async def lookup(self, device_id: str) -> DeviceState | None:
        """The device, reading the store at most once per cache period for an unknown id."""
        state = self._devices.get(device_id)
        if state is not None:
            return state
        now = self._clock.now()
        if now - self._unknown.get(device_id, float("-inf")) < self._unknown_cache_s:
            return None
        record = await self._store.devices.current(device_id)
        state = self._devices.get(device_id)
        if state is not None:
            return state  # loaded by another task meanwhile
        if record is None:
            if len(self._unknown) > 100_000:
                self._unknown.clear()
            self._unknown[device_id] = now
            return None
        state = DeviceState.from_record(record, high_exact=True)
        self._devices[device_id] = state
        return state

    async def preload(self, device_ids: Collection[str]) -> None:
        """Bring these devices into memory with one read (a batch of first contacts)."""
        now = self._clock.now()
        wanted = [
            d
            for d in device_ids
            if d not in self._devices
            and now - self._unknown.get(d, float("-inf")) >= self._unknown_cache_s
        ]
        if not wanted:
            return
        for record in await self._store.devices.current_many(wanted):
            if record.device_id not in self._devices:
                self._devices[record.device_id] = DeviceState.from_record(record, high_exact=True)
        # What the read did not find is unknown: `lookup` answers those from memory.
        if len(self._unknown) > 100_000:
            self._unknown.clear()
        for device_id in wanted:
            if device_id not in self._devices:
                self._unknown[device_id] = now

    async def register(
        self,
        device_id: str,
        kind: DeviceKind,
        key: bytes | None = None,
        household_code: str | None = None,
        label: str | None = None,
    ) -> DeviceRecord:
        """Add a device (a random key if none is given) and arm its silence deadline."""
        try:
            device_id = parse_device_id(device_id)
        except ProtocolError as exc:
            raise RegistryError(str(exc)) from exc
        if key is None:
            key = secrets.token_bytes(KEY_LEN)
        if len(key) != KEY_LEN:
            raise RegistryError(f"device key must be {KEY_LEN} bytes, got {len(key)}")
        now = self._clock.now()
        interval = self._supervision.heartbeat_interval_s[kind]
        record = DeviceRecord(
            device_id=device_id,
            kind=kind,
            key=key,
            heartbeat_interval_s=interval,
            created_at=now,
            household_code=household_code,
            label=label,
        )
        async with self._store.transaction() as uow:
            await uow.devices.add(record)
        self._devices[device_id] = DeviceState.from_record(record, high_exact=True)
        self._unknown.pop(device_id, None)
        if self._armed is not None:
            # A box installed but never heard from must be noticed too.
            self._armed(device_id, now + self._supervision.missed_intervals * interval, interval)
        log.info("device registered", extra={"device_id": device_id, "kind": kind})
        return record

    async def rotate_key(self, device_id: str, actor: str) -> DeviceRecord:
        """Start a key rotation: a new random key as the next key (docs/protocol.md section 9).

        The running gateway sends PROVISION after the device's next frame MACed with the old
        key, and again after every such frame, until a frame MACed with the new key arrives.
        """

        async def change(record: DeviceRecord) -> tuple[DeviceRecord, str]:
            # A rotation restarted before the box used its key takes a fresh id, so a box
            # holding the abandoned key is told NACK_UNKNOWN_KEY, never silently ignored.
            after = record.key_version if record.next_key_id is None else record.next_key_id
            key_id = (after + 1) % 256
            if key_id == record.key_version:
                key_id = (key_id + 1) % 256
            key = secrets.token_bytes(KEY_LEN)
            return replace(record, next_key=key, next_key_id=key_id), f"key_id {key_id}"

        return await self._protocol_change(device_id, "key_rotation", actor, change)

    async def configure(
        self, device_id: str, heartbeat_s: int | None, clock: bool, actor: str
    ) -> DeviceRecord:
        """Ask for a CONFIG: a heartbeat interval and/or the clock, sent after its next frame."""
        if heartbeat_s is not None and not 1 <= heartbeat_s <= 0xFFFF:
            raise RegistryError(f"heartbeat interval must be 1..65535 s, got {heartbeat_s}")
        if heartbeat_s is None and not clock:
            raise RegistryError("nothing to configure: give --heartbeat-s and/or --clock")

        async def change(record: DeviceRecord) -> tuple[DeviceRecord, str]:
            note = " ".join(
                part
                for part in (
                    f"heartbeat_s {heartbeat_s}" if heartbeat_s is not None else "",
                    "clock" if clock else "",
                )
                if part
            )
            return replace(record, pending_heartbeat_s=heartbeat_s, pending_clock=clock), note

        return await self._protocol_change(device_id, "configured", actor, change)

    async def reset_counters(self, device_id: str, actor: str) -> DeviceRecord:
        """Forget the device's order: its next frame sets it again (section 6)."""
        now = self._clock.now()

        async def change(record: DeviceRecord) -> tuple[DeviceRecord, str]:
            return replace(record, last_seq=None, counters_reset_at=now), ""

        return await self._protocol_change(device_id, "counters_reset", actor, change)

    async def _protocol_change(
        self,
        device_id: str,
        action: HistoryAction,
        actor: str,
        change: Callable[[DeviceRecord], Awaitable[tuple[DeviceRecord, str]]],
    ) -> DeviceRecord:
        try:
            device_id = parse_device_id(device_id)
        except ProtocolError as exc:
            raise RegistryError(str(exc)) from exc
        now = self._clock.now()
        async with self._store.transaction() as uow:
            record = await uow.devices.get(device_id)
            if record is None:
                raise RegistryError(f"unknown device {device_id}")
            if not record.enabled:
                raise RegistryError(f"device {device_id} was removed")
            changed, note = await change(record)
            if action == "key_rotation":
                assert changed.next_key is not None
                assert changed.next_key_id is not None
                await uow.devices.set_next_key(device_id, changed.next_key, changed.next_key_id)
            elif action == "configured":
                await uow.devices.set_pending_config(
                    device_id, changed.pending_heartbeat_s, changed.pending_clock
                )
            else:
                assert changed.counters_reset_at is not None
                await uow.devices.reset_counters(device_id, changed.counters_reset_at)
            await uow.devices.add_history(HistoryEntry(device_id, now, action, actor, note=note))
        if device_id in self._devices:
            self.replace_record(changed)
        log.info("device protocol change", extra={"device_id": device_id, "action": action})
        return changed

    def replace_record(self, record: DeviceRecord) -> None:
        """Swap in a changed record (new key, disabled) keeping the runtime fields."""
        state = self._devices.get(record.device_id)
        if state is None:
            self._devices[record.device_id] = DeviceState.from_record(record)
            return
        if record.counters_reset_at != state.record.counters_reset_at:
            # `bidao device reset-counters`: the device's next frame sets its order again.
            state.last_seq = record.last_seq
        state.record = replace(record)

    def count_transition(self, before: DeviceStatus, after: DeviceStatus) -> None:
        """Move one device between the online and offline counts."""
        if before == after:
            return
        self._online += (after == "online") - (before == "online")
        self._offline += (after == "offline") - (before == "offline")
        self._publish_gauges()

    def _publish_gauges(self) -> None:
        self._metrics.devices_online.set(self._online)
        self._metrics.devices_offline.set(self._offline)
