"""Device supervision: silence, online/offline and battery, at as little cost per frame as possible.

What a frame that changes nothing a person sees (same battery band, same signal band, device
still online) writes: its event row and nothing else. Why that is enough:

- Dedupe and the replay window. The event row, keyed by the frame's position (session and
  seq) and known by its MAC, is committed with the frame before the ack, so it is both the
  audit record and the durable dedupe key: a copy of an acked frame finds its row. The
  window needs the newest committed position, which is
  kept in memory; after a crash it is read back from the newest event of the device (one
  indexed read when the device's first frame arrives), never from the device row, so it is
  exact however far the row lags. The newest link comes back the same way.
- Last contact. The device row's `last_seen` is rewritten only when it is
  `pipeline.last_seen_flush_s` behind the frame; it tells a person roughly when a device was
  last heard, and online/offline (what matters) is exact. A crash loses at most that lag.
- Health. Battery, signal and firmware in the device row are rewritten only when the battery
  moves to another `battery_band_pct` band, the signal to another `rssi_band_db` band, the
  firmware or the reporting interval changes; every frame's exact figures are in its event.
- Downlink sequence numbers are reserved in blocks ahead of use (`registry`), unchanged.
- Silence. No deadline row per frame: the time each device falls silent is kept in memory
  (`SilenceWatch`), a frame only moves it forward, and one heap entry per device is
  re-armed when it comes due if the device was heard meanwhile (re-arm on due), so a device
  heartbeating steadily costs no write at all. Nothing of it is stored, and nothing needs to
  be: after a (re)start the clocks count from the start, so a device is declared offline only
  after it has been silent for its intervals since the gateway came up, never because of the
  downtime. The devices watched at start are read in pages of ten scheduler batches when
  the part starts, so the first frames' reads and acks slip in between the pages.
- Link outages. The same holds while a link is down (the MQTT broker link, a serial line:
  `link_down` / `link_up`, told by the services' outage watch): a device last heard on a
  link that is down is not declared offline while it is down (nothing could be heard), and
  when the link is back the silence of every device last heard on it counts from the
  link's return, so a broker outage never declares the whole fleet offline at once. A
  device that really died meanwhile is declared offline `missed_intervals` after the return.

Offline transitions are written in batches of `scheduler_batch` per transaction. With each
a durable deadline (`device_offline_notice`) is set for the moment the device will have been
silent `offline_notify_after_s` since it was last heard (or since the start, whichever is
later): the services tell its people then, once per offline spell (gateway/services/devices.py).

Health flags. Low battery (a heartbeat below `low_battery_pct`, ok again only at the line
plus `battery_ok_margin_pct`, or the device's own alarm), tamper (the device's alarm, or the
tamper bit of every meter reading) and power loss (the device's alarm) are kept in memory
(`DeviceState`) beside the status; only a change writes a transition. Every batch of
transitions, from frames or from silence, is handed to the listeners registered with
`on_transitions` inside its transaction (the services' device health alarms), so they learn
of a change without looking at any frame that changes nothing.

Device changes made by another process (`bidao device attach|move|replace|remove` beside a
running gateway) reach the registry's cache through `DeviceChanges`: it polls the
`device_history` table (one indexed read of its newest id) every `changes_poll_s` and
re-reads the devices named by new rows, so a move or a removal is in effect within that
bound; a call for help also reads its box's household inside its own transaction.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from firmware_protocol import AlarmKind, DeviceAlarm, Heartbeat, MeterStatus, WaterReading
from gateway.clock import Clock, sleep_until_or_woken
from gateway.config import SupervisionSettings
from gateway.domain.devices import (
    DeviceStatus,
    HistoryEntry,
    Telemetry,
    Transition,
    TransitionKind,
)
from gateway.ingest.pipeline import AcceptedFrame
from gateway.ingest.registry import SILENT_DEADLINE, DeviceRegistry, DeviceState
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Deadline, Store, UnitOfWork

log = logging.getLogger(__name__)

MAINS_POWERED = 255
OFFLINE_NOTICE_DEADLINE = "device_offline_notice"
"""A call box offline long enough that its people are told (handled by the services)."""
_HISTORY_PAGE = 500
_REARM_CHUNK = 5000
"""Devices walked between yields when a link comes back."""
_DUE_CHUNK = 2000
"""Due silence entries looked at between yields. After a start every device is armed for the
same moment (the start plus three intervals), so 100,000 boxes come due at once: looked at in
one go, mostly to re-arm the ones heard since, they stopped the event loop for about 0.2 s
(idle machine, 200,000 devices watched), in the middle of a county's steady load."""

TransitionListener = Callable[
    [UnitOfWork, Sequence[Transition]], Awaitable[Callable[[], None] | None]
]
"""Called inside the transaction that writes transitions (never for a frame that changes
nothing); what it returns runs once that transaction has committed."""


@dataclass(slots=True)
class _Watched:
    """When a device falls silent, and the heap entry that will look at it."""

    silent_at: float
    interval_s: int
    armed_at: float
    status: DeviceStatus
    link: str | None = None
    """The link it was last heard on when armed from the store (None: not known)."""


class SilenceWatch:
    """Per device, when it falls silent; due devices come out of a heap re-armed on due."""

    def __init__(self) -> None:
        self._watched: dict[str, _Watched] = {}
        self._heap: list[tuple[float, str]] = []
        self.wake = asyncio.Event()
        """Set when a device's silence comes due earlier than the heap's head did."""

    def __len__(self) -> int:
        """Devices watched."""
        return len(self._watched)

    def __contains__(self, device_id: object) -> bool:
        """Whether the device is watched."""
        return device_id in self._watched

    def heard(self, device_id: str, silent_at: float, interval_s: int) -> None:
        """The device was heard: it falls silent at `silent_at` (memory only, O(1))."""
        watched = self._watched.get(device_id)
        if watched is None:
            self.arm(device_id, silent_at, interval_s, "online")
            return
        watched.interval_s, watched.status = interval_s, "online"
        if silent_at < watched.armed_at:  # a shorter interval: the heap must look earlier
            self._push(device_id, watched, silent_at)
        watched.silent_at = silent_at

    def arm(
        self,
        device_id: str,
        silent_at: float,
        interval_s: int,
        status: DeviceStatus,
        link: str | None = None,
    ) -> None:
        """Watch a device from now on (replacing what was known of it)."""
        watched = _Watched(silent_at, interval_s, silent_at, status, link)
        self._watched[device_id] = watched
        self._push(device_id, watched, silent_at)

    def arm_if_new(
        self,
        device_id: str,
        silent_at: float,
        interval_s: int,
        status: DeviceStatus,
        link: str | None = None,
    ) -> None:
        """Watch a device unless it is watched already."""
        if device_id not in self._watched:
            self.arm(device_id, silent_at, interval_s, status, link)

    def get(self, device_id: str) -> _Watched | None:
        """What is known of a watched device's silence, or None if it is not watched."""
        return self._watched.get(device_id)

    def entries(self) -> list[tuple[str, _Watched]]:
        """Every watched device (a copy: the watch may change while it is walked)."""
        return list(self._watched.items())

    def postpone(self, device_id: str, silent_at: float) -> bool:
        """The device falls silent no earlier than `silent_at`; whether that moved it.

        Memory only: its heap entry, due earlier, re-arms it when it comes due.
        """
        watched = self._watched.get(device_id)
        if watched is None or silent_at <= watched.silent_at:
            return False
        watched.silent_at = silent_at
        return True

    def _push(self, device_id: str, watched: _Watched, at: float) -> None:
        head = self._heap[0][0] if self._heap else math.inf
        watched.armed_at = at
        heapq.heappush(self._heap, (at, device_id))
        if at < head:
            self.wake.set()

    def next_at(self) -> float | None:
        """When the heap's head comes due, or None if nothing is watched."""
        return self._heap[0][0] if self._heap else None

    def pop_silent(self, now: float, limit: int | None = None) -> list[tuple[str, _Watched]]:
        """Devices silent at `now`, no longer watched; the others due are re-armed.

        At most `limit` due entries are looked at; the rest stay due (`next_at` says so).
        """
        silent: list[tuple[str, _Watched]] = []
        heap = self._heap
        left = math.inf if limit is None else limit
        while heap and heap[0][0] <= now and left > 0:
            left -= 1
            at, device_id = heapq.heappop(heap)
            watched = self._watched.get(device_id)
            if watched is None or watched.armed_at != at:
                continue  # a stale entry: the device was re-armed earlier or is gone
            if watched.silent_at > now:
                watched.armed_at = watched.silent_at  # heard meanwhile: re-arm on due
                heapq.heappush(heap, (watched.silent_at, device_id))
                continue
            del self._watched[device_id]
            silent.append((device_id, watched))
        return silent

    def forget(self, device_id: str) -> None:
        """Stop watching the device (its heap entry goes stale)."""
        self._watched.pop(device_id, None)


_Flag = Literal["low_battery", "tamper", "power_loss"]
"""A health flag of a device (a field of DeviceState and of the device row)."""
_ALARM_FLAGS: dict[AlarmKind, _Flag] = {
    AlarmKind.LOW_BATTERY: "low_battery",
    AlarmKind.TAMPER: "tamper",
    AlarmKind.POWER_LOSS: "power_loss",
}
_FLAG_CLEARED: dict[_Flag, TransitionKind] = {
    "low_battery": "battery_ok",
    "tamper": "tamper_ok",
    "power_loss": "power_ok",
}


def _band(value: int | None, width: int) -> int | None:
    return None if value is None else value // width


class Supervisor:
    """Silence, online/offline and battery transitions for the frames being committed."""

    def __init__(
        self,
        registry: DeviceRegistry,
        store: Store,
        clock: Clock,
        settings: SupervisionSettings,
        metrics: GatewayMetrics,
    ) -> None:
        self._registry = registry
        self._store = store
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self.watch = SilenceWatch()
        self._started_at: float | None = None
        self._bulk_armed = False
        self._deadline_set: Callable[[float], None] | None = None
        self._listeners: list[TransitionListener] = []
        self._down: dict[str, float] = {}
        """Links that are down, and since when: their devices cannot be heard."""
        self._held: dict[str, dict[str, _Watched]] = {}
        """Devices that came due while their link was down, by link: re-armed on its return."""
        registry.watch_registrations(self._registered)

    def on_transitions(self, listener: TransitionListener) -> None:
        """Have `listener` see every batch of transitions written, in their transaction.

        This is how the services learn that a device went offline, came back, or raised or
        cleared a health flag, without looking at every frame.
        """
        self._listeners.append(listener)

    async def _tell_listeners(
        self, uow: UnitOfWork, transitions: Sequence[Transition]
    ) -> list[Callable[[], None]]:
        hooks: list[Callable[[], None]] = []
        for listener in self._listeners:
            hook = await listener(uow, transitions)
            if hook is not None:
                hooks.append(hook)
        return hooks

    @property
    def links_down(self) -> dict[str, float]:
        """The links told down and not yet back, with the time each went down."""
        return dict(self._down)

    def unheard(self, device_id: str) -> bool:
        """Whether the device cannot be heard now: the link it was last heard on is down."""
        if not self._down:
            return False
        link = self.last_link(device_id)
        return link is not None and link in self._down

    def link_down(self, link: str, at: float) -> None:
        """`link` is down since `at`: devices last heard on it are not declared offline."""
        self._down.setdefault(link, at)

    async def link_up(self, link: str, at: float) -> int:
        """`link` is back at `at`: its devices' silence counts from here, as from a start.

        Walks the watched devices once (yielding to the loop every few thousand), then
        re-arms those that came due while the link was down. Returns how many moved.
        """
        missed = self._settings.missed_intervals
        moved = 0
        for index, (device_id, watched) in enumerate(self.watch.entries()):
            if index % _REARM_CHUNK == _REARM_CHUNK - 1:
                await asyncio.sleep(0)
            if self._link_of(device_id, watched) == link:
                moved += self.watch.postpone(device_id, at + missed * watched.interval_s)
        # Held until now, so none of them was declared offline meanwhile.
        self._down.pop(link, None)
        held = self._held.pop(link, {})
        for device_id, watched in held.items():
            interval = watched.interval_s
            self.watch.arm_if_new(device_id, at + missed * interval, interval, watched.status, link)
        if moved or held:
            log.info(
                "link back: device silence counts from its return",
                extra={"link": link, "devices": moved + len(held)},
            )
        return moved + len(held)

    def last_link(self, device_id: str) -> str | None:
        """The link the device was last heard on, as far as this gateway knows (None: unknown)."""
        state = self._registry.cached(device_id)
        if state is not None and state.last_link is not None:
            return state.last_link
        watched = self.watch.get(device_id)
        return watched.link if watched is not None else None

    def _link_of(self, device_id: str, watched: _Watched) -> str | None:
        state = self._registry.cached(device_id)
        if state is not None and state.last_link is not None:
            return state.last_link
        return watched.link

    def _hold_unheard(self, silent: list[tuple[str, _Watched]]) -> list[tuple[str, _Watched]]:
        """The devices to declare offline; those whose link is down are held for its return."""
        if not self._down:
            return silent
        kept: list[tuple[str, _Watched]] = []
        for device_id, watched in silent:
            link = self._link_of(device_id, watched)
            if link is not None and link in self._down:
                self._held.setdefault(link, {})[device_id] = watched
            else:
                kept.append((device_id, watched))
        return kept

    def on_deadline_set(self, callback: Callable[[float], None]) -> None:
        """Call `callback(due_at)` after committing offline-notice deadlines (the scheduler)."""
        self._deadline_set = callback

    def start(self) -> None:
        """Note the gateway's start: silence of devices not heard since counts from here."""
        if self._started_at is None:
            self._started_at = self._clock.now()

    def _registered(self, device_id: str, silent_at: float, interval_s: int) -> None:
        self.watch.arm(device_id, silent_at, interval_s, "unknown")

    def _health_changed(self, state: DeviceState, row: Telemetry) -> bool:
        firmware, battery, rssi = state.stored_health
        width, db = self._settings.battery_band_pct, self._settings.rssi_band_db
        return (
            firmware != row.firmware
            or _band(battery, width) != _band(row.battery_pct, width)
            or _band(rssi, db) != _band(row.rssi_dbm, db)
            or state.interval_s != row.heartbeat_interval_s
        )

    async def stage(
        self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]
    ) -> Callable[[], None] | None:
        """Write transitions and changed health; silence is moved in memory once committed."""
        last_contact: dict[str, float] = {}
        intervals: dict[str, int] = {}
        flags: dict[tuple[str, _Flag], bool] = {}
        telemetry: dict[str, Telemetry] = {}
        states: dict[str, DeviceState] = {}
        for frame in frames:
            device_id = frame.state.device_id
            states[device_id] = frame.state
            received = frame.inbound.received_at
            last_contact[device_id] = max(received, last_contact.get(device_id, received))
            message = frame.envelope.message
            if isinstance(message, Heartbeat):
                battery = None if message.battery_pct == MAINS_POWERED else message.battery_pct
                telemetry[device_id] = Telemetry(
                    device_id=device_id,
                    firmware=".".join(str(p) for p in message.firmware),
                    battery_pct=battery,
                    battery_mv=message.battery_mv,
                    rssi_dbm=message.rssi_dbm,
                    uptime_s=message.uptime_s,
                    heartbeat_interval_s=message.heartbeat_interval_s,
                )
                intervals[device_id] = message.heartbeat_interval_s
                if battery is not None:
                    flags[device_id, "low_battery"] = self._battery_low(frame.state, battery)
            elif isinstance(message, DeviceAlarm) and message.alarm in _ALARM_FLAGS:
                flags[device_id, _ALARM_FLAGS[message.alarm]] = message.active
            elif isinstance(message, WaterReading):
                # A meter states its tamper switch in every reading.
                flags[device_id, "tamper"] = bool(message.status & MeterStatus.TAMPER)

        transitions: list[Transition] = []
        for device_id, state in states.items():
            if state.status != "online":
                detail = "first contact" if state.status == "unknown" else "back after silence"
                transitions.append(Transition(device_id, last_contact[device_id], "online", detail))
        for (device_id, flag), raised in flags.items():
            if raised != getattr(states[device_id], flag):
                kind = flag if raised else _FLAG_CLEARED[flag]
                transitions.append(Transition(device_id, last_contact[device_id], kind))
        changed = [t for t in telemetry.values() if self._health_changed(states[t.device_id], t)]
        if changed:
            await uow.devices.update_telemetry(changed)
        hooks: list[Callable[[], None]] = []
        if transitions:
            await uow.devices.apply_transitions(transitions)
            hooks = await self._tell_listeners(uow, transitions)

        def on_commit() -> None:
            for hook in hooks:
                hook()
            for row in changed:
                # Kept per device until it changes: one copy of each firmware's text.
                firmware = None if row.firmware is None else sys.intern(row.firmware)
                states[row.device_id].stored_health = (firmware, row.battery_pct, row.rssi_dbm)
            for device_id, interval in intervals.items():
                states[device_id].interval_s = interval
            self._apply(states, transitions)
            missed = self._settings.missed_intervals
            for device_id, state in states.items():
                silent_at = last_contact[device_id] + missed * state.interval_s
                self.watch.heard(device_id, silent_at, state.interval_s)

        return on_commit

    async def on_due(
        self,
        uow: UnitOfWork,  # noqa: ARG002 - part of the DeadlineHandler contract
        deadlines: Sequence[Deadline],
        now: float,  # noqa: ARG002 - part of the DeadlineHandler contract
    ) -> Callable[[], None] | None:
        """A stored silence deadline (a grid import's new box): watch the device from it."""
        started = self._started_at if self._started_at is not None else -math.inf
        missed = self._settings.missed_intervals

        def on_commit() -> None:
            for deadline in deadlines:
                state = self._registry.cached(deadline.subject)
                if state is not None and state.status == "offline":
                    continue
                interval = (
                    state.interval_s
                    if state is not None
                    else max(self._settings.heartbeat_interval_s.values())
                )
                # Silence never counts from before the start (the downtime).
                silent_at = max(deadline.due_at, started + missed * interval)
                status: DeviceStatus = state.status if state is not None else "unknown"
                self.watch.arm_if_new(deadline.subject, silent_at, interval, status)

        return on_commit

    async def run(self) -> None:
        """Declare silent devices offline as they come due; runs until cancelled."""
        self.start()
        if not self._bulk_armed:
            await self._arm_from_store()
            self._bulk_armed = True
        while True:
            self.watch.wake.clear()
            now = self._clock.now()
            silent = self._hold_unheard(self.watch.pop_silent(now, _DUE_CHUNK))
            if silent:
                try:
                    await self._declare_offline(silent)
                except BaseException:
                    for device_id, watched in silent:  # looked at again after a restart
                        self.watch.arm_if_new(
                            device_id, watched.silent_at, watched.interval_s, watched.status
                        )
                    raise
                continue
            due = self.watch.next_at()
            if due is not None and due <= now:
                await asyncio.sleep(0)  # more came due: frames go first, then the next chunk
                continue
            await sleep_until_or_woken(self._clock, due, self.watch.wake)

    async def _arm_from_store(self) -> None:
        """Watch every device not offline (one bulk read); stored silence rows are not needed."""
        assert self._started_at is not None
        missed = self._settings.missed_intervals
        started = self._started_at
        after, page = "", self._settings.scheduler_batch * 10
        while True:
            # In pages, so the first frames' reads and acks are not held behind 200,000 rows.
            devices = await self._store.devices.watched(after, page)
            for device in devices:
                silent_at = max(started, device.created_at) + missed * device.heartbeat_interval_s
                self.watch.arm_if_new(
                    device.device_id,
                    silent_at,
                    device.heartbeat_interval_s,
                    device.status,
                    device.last_link,
                )
            if len(devices) < page:
                break
            after = devices[-1].device_id
        log.info("silence supervision armed", extra={"devices": len(self.watch)})
        # Stored silence rows (from before, or an import) are covered now; remove them in
        # chunks so they never all come due at once.
        while True:
            async with self._store.transaction() as uow:
                removed = await uow.deadlines.clear_kind(
                    SILENT_DEADLINE, self._settings.scheduler_batch
                )
            if removed < self._settings.scheduler_batch:
                break

    async def _declare_offline(self, silent: list[tuple[str, _Watched]]) -> None:
        missed = self._settings.missed_intervals
        batch = self._settings.scheduler_batch
        for start in range(0, len(silent), batch):
            chunk = silent[start : start + batch]
            befores: dict[str, DeviceStatus] = {}
            transitions: list[Transition] = []
            for device_id, watched in chunk:
                state = self._registry.cached(device_id)
                before = state.status if state is not None else watched.status
                if before == "offline":
                    continue
                befores[device_id] = before
                interval = state.interval_s if state is not None else watched.interval_s
                transitions.append(
                    Transition(
                        device_id,
                        watched.silent_at,
                        "offline",
                        f"no frame for {missed} reporting intervals of {interval} s",
                    )
                )
            if not transitions:
                continue
            notices: list[Deadline] = []
            hooks: list[Callable[[], None]] = []
            async with self._store.transaction() as uow:
                # A frame committed while this waited for the store brought it back.
                transitions = [t for t in transitions if t.device_id not in self.watch]
                await uow.devices.apply_transitions(transitions)
                notices = [
                    Deadline(OFFLINE_NOTICE_DEADLINE, t.device_id, due)
                    for t in transitions
                    if (due := self._notice_due(t.device_id, chunk)) is not None
                ]
                await uow.deadlines.set(notices)
                hooks = await self._tell_listeners(uow, transitions)
            for hook in hooks:
                hook()
            if notices and self._deadline_set is not None:
                self._deadline_set(min(d.due_at for d in notices))
            for transition in transitions:
                state = self._registry.cached(transition.device_id)
                if state is not None:
                    state.status = "offline"
                self._registry.count_transition(befores[transition.device_id], "offline")
                self._metrics.device_transitions.labels("offline").inc()

    def _notice_due(self, device_id: str, chunk: list[tuple[str, _Watched]]) -> float | None:
        """When a device just declared offline will have been silent long enough to tell."""
        state = self._registry.cached(device_id)
        if state is not None and state.record.kind != "call_box":
            return None
        watched = next(w for d, w in chunk if d == device_id)
        # Silence counts from its last frame, or from the start if not heard since.
        last_heard = watched.silent_at - self._settings.missed_intervals * watched.interval_s
        return last_heard + self._settings.offline_notify_after_s

    def _battery_low(self, state: DeviceState, battery_pct: int) -> bool:
        """Low below the line; once low, ok again only at the line plus the margin."""
        line = self._settings.low_battery_pct
        if state.low_battery:
            return battery_pct < line + self._settings.battery_ok_margin_pct
        return battery_pct < line

    def _apply(self, states: dict[str, DeviceState], transitions: Sequence[Transition]) -> None:
        for transition in transitions:
            state = states[transition.device_id]
            if transition.kind in ("online", "offline"):
                self._registry.count_transition(state.status, transition.kind)
                state.status = transition.kind
            elif transition.kind in ("low_battery", "battery_ok"):
                state.low_battery = transition.kind == "low_battery"
            elif transition.kind in ("tamper", "tamper_ok"):
                state.tamper = transition.kind == "tamper"
            else:
                state.power_loss = transition.kind == "power_loss"
            self._metrics.device_transitions.labels(transition.kind).inc()


class DeviceChanges:
    """Brings changes made to devices by another process into the running gateway.

    Every change to a device's registration writes a `device_history` row (the CLI's
    attach, move, replace, remove; a registration). This polls for rows newer than the
    last seen every `changes_poll_s` and re-reads the devices they name: a cached device's
    record is swapped (its runtime fields kept), so its next frame is screened with its new
    household or, retired, refused with the disabled nack; a newly registered one is cached
    at once (no "unknown device" period) and watched for silence; a retired one is no longer
    watched.
    """

    def __init__(
        self,
        store: Store,
        registry: DeviceRegistry,
        supervisor: Supervisor,
        clock: Clock,
        settings: SupervisionSettings,
    ) -> None:
        self._store = store
        self._registry = registry
        self._supervisor = supervisor
        self._clock = clock
        self._settings = settings
        self._seen: int | None = None
        self.applied = 0
        """Changes applied so far (a test probe and a log field)."""
        self._households_changed: list[Callable[[set[str]], None]] = []

    def on_households_changed(self, callback: Callable[[set[str]], None]) -> None:
        """Tell `callback` the households a batch of changes moved devices into or out of.

        The water watch looks at them again: a meter added makes a household watched.
        """
        self._households_changed.append(callback)

    async def start(self) -> None:
        """Remember the newest change: everything before it is in the store already."""
        if self._seen is None:
            self._seen = await self._store.devices.history_head()

    async def run(self) -> None:
        """Poll for changes until cancelled."""
        await self.start()
        while True:
            await self.poll()
            await self._clock.sleep(self._settings.changes_poll_s)

    async def poll(self) -> int:
        """Apply the changes made since the last poll; returns how many there were."""
        await self.start()
        assert self._seen is not None
        applied = 0
        while True:
            changes = await self._store.devices.history_after(self._seen, _HISTORY_PAGE)
            if not changes:
                break
            await self._apply(changes)
            self._seen = changes[-1].id or self._seen
            applied += len(changes)
        self.applied += applied
        return applied

    async def _apply(self, changes: Sequence[HistoryEntry]) -> None:
        added = {c.device_id for c in changes if c.action == "added"}
        wanted = sorted({c.device_id for c in changes})
        current = await self._store.devices.current_many(wanted)
        for record in current:
            if self._registry.cached(record.device_id) is None and record.device_id not in added:
                continue
            self._registry.replace_record(record)
            if not record.enabled:
                self._supervisor.watch.forget(record.device_id)
            elif record.device_id in added:
                interval = record.heartbeat_interval_s
                silent_at = self._clock.now() + self._settings.missed_intervals * interval
                self._supervisor.watch.arm_if_new(record.device_id, silent_at, interval, "unknown")
        households = {
            code for c in changes for code in (c.from_household, c.to_household) if code
        } | {r.household_code for r in current if r.household_code}
        if households:
            for callback in self._households_changed:
                callback(households)
        log.info("device changes applied", extra={"changes": len(changes)})
