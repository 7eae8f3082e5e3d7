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
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace

from firmware_protocol import KEY_LEN, ProtocolError, parse_device_id
from gateway.clock import Clock
from gateway.config import DeviceKind, SupervisionSettings
from gateway.domain.devices import DeviceRecord, DeviceStatus
from gateway.errors import RegistryError
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Store

log = logging.getLogger(__name__)

SILENT_DEADLINE = "device_silent"
DOWNLINK_SEQ_BLOCK = 1024
"""Downlink sequence numbers are stored this far ahead, so sending needs no write."""


@dataclass(slots=True)
class DeviceState:
    """A device's record plus the fields the gateway changes while it runs."""

    record: DeviceRecord
    last_seq: int | None
    downlink_seq: int
    """The last downlink sequence number used."""
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

    @classmethod
    def from_record(cls, record: DeviceRecord) -> DeviceState:
        """The state as stored."""
        return cls(
            record=record,
            last_seq=record.last_seq,
            # After a restart every number up to the stored mark may have been used.
            downlink_seq=record.downlink_seq,
            downlink_reserved=record.downlink_seq,
            status=record.status,
            low_battery=record.low_battery,
            interval_s=record.heartbeat_interval_s,
            last_link=record.last_link,
            stored_seen=record.last_seen,
            stored_health=(record.firmware, record.battery_pct, record.rssi_dbm),
        )

    @property
    def device_id(self) -> str:
        """The device id."""
        return self.record.device_id

    @property
    def key(self) -> bytes:
        """The device's current MAC key."""
        return self.record.key

    def reservation_for(self, count: int) -> int | None:
        """A new high-water mark to store before `count` more downlinks, or None if not needed."""
        if self.downlink_seq + count <= self.downlink_reserved:
            return None
        return self.downlink_seq + count + DOWNLINK_SEQ_BLOCK

    def reserved(self, mark: int) -> None:
        """Record that `mark` has been stored."""
        self.downlink_reserved = max(self.downlink_reserved, mark)

    def allocate_downlink_seq(self) -> int:
        """The next downlink sequence number; call it right before the frame is written."""
        self.downlink_seq += 1
        return self.downlink_seq


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
        state = DeviceState.from_record(record)
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
                self._devices[record.device_id] = DeviceState.from_record(record)
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
        self._devices[device_id] = DeviceState.from_record(record)
        self._unknown.pop(device_id, None)
        if self._armed is not None:
            # A box installed but never heard from must be noticed too.
            self._armed(device_id, now + self._supervision.missed_intervals * interval, interval)
        log.info("device registered", extra={"device_id": device_id, "kind": kind})
        return record

    def replace_record(self, record: DeviceRecord) -> None:
        """Swap in a changed record (new key, disabled) keeping the runtime fields."""
        state = self._devices.get(record.device_id)
        if state is None:
            self._devices[record.device_id] = DeviceState.from_record(record)
        else:
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
