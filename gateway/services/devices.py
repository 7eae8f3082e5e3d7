"""Device administration and the alarms about boxes that people must hear of.

`DeviceAdmin`: register, attach, move, replace and remove boxes, each checked against the
grid and written with a `device_history` row in one transaction. The history doubles as the
change feed a running gateway polls (`gateway.ingest.supervision.DeviceChanges`), so a
change made by `bidao device ...` in another process is seen within
`supervision.changes_poll_s`.

`DeviceAlarms`: what happens when a call for help cannot reach the people it is for.

- A green press from a box without a household, from one registered to a household that
  does not exist, or one that could not become a ticket for any other reason (a store
  constraint, a bug in the rules) is still acknowledged (the ticket service isolates each
  press in a savepoint and hands the failure here), and raises an operator alarm: a durable
  `operator_alarms` row (one open per kind and box; repeats are counted), a metric, an error
  log line, and an SMS to the township duty contacts of the box's unit, if one is known
  (`bidao alarms` lists, `bidao alarms clear ID` clears).
- A call box silent for `supervision.offline_notify_after_s`: its household's family and
  the grid worker of its unit get an SMS, once per offline spell (a deadline row set with
  the offline transition, a notice row once sent), and a "back online" SMS when it reports
  again after that. The family of a resident living alone is left out: they were told
  within the hour by the device health alarms (gateway/services/device_health.py), which
  also tell the area's installers of every device offline, low battery, tamper or power
  loss.
"""

from __future__ import annotations

import logging
import math
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from alerts import Notification
from alerts.notification import NORMAL, URGENT
from firmware_protocol import KEY_LEN, ProtocolError, parse_device_id
from gateway.clock import Clock
from gateway.config import DeviceKind, SupervisionSettings
from gateway.domain.devices import (
    AlarmKind,
    DeviceRecord,
    HistoryEntry,
    OfflineNotice,
    OperatorAlarm,
)
from gateway.domain.grid import Contact, GridUnit, HouseholdInfo
from gateway.errors import RegistryError
from gateway.ingest.pipeline import AcceptedFrame, OnCommit
from gateway.ingest.registry import DeviceRegistry
from gateway.ingest.supervision import OFFLINE_NOTICE_DEADLINE
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Deadline, Store, UnitOfWork

log = logging.getLogger(__name__)

HOUR_S = 3600.0


class DeviceAdminError(RegistryError):
    """A device change refused: `code` names the reason, `params` fill its words.

    The words for people are kept by the command line, one module per language; the
    message of the exception is the English one, for logs.
    """

    def __init__(self, code: str, message: str, **params: str) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


@dataclass(frozen=True, slots=True)
class Added:
    """A device just registered, and whether its key was generated (to be shown once)."""

    record: DeviceRecord
    key_generated: bool


class DeviceAdmin:
    """Registration changes, checked against the grid, each with its history row."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        supervision: SupervisionSettings,
        registry: DeviceRegistry | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._supervision = supervision
        self._registry = registry

    def _seen(self, record: DeviceRecord) -> None:
        """Keep this process's registry (if it caches the device) in step."""
        if self._registry is not None and self._registry.cached(record.device_id) is not None:
            self._registry.replace_record(record)

    async def _unit(self, unit_code: str | None) -> None:
        if unit_code is not None and not await self._store.grid.units_by_code([unit_code]):
            raise DeviceAdminError("no_unit", f"no grid unit {unit_code}", unit=unit_code)

    async def _household(self, uow: UnitOfWork, household: str) -> HouseholdInfo:
        info = await uow.grid.household_info(household)
        if info is None:
            raise DeviceAdminError("no_household", f"no household {household}", household=household)
        return info

    async def _device(self, uow: UnitOfWork, device_id: str) -> DeviceRecord:
        record = await uow.devices.get(device_id)
        if record is None:
            raise DeviceAdminError(
                "not_registered", f"device {device_id} is not registered", device=device_id
            )
        if not record.enabled:
            raise DeviceAdminError("retired", f"device {device_id} was removed", device=device_id)
        return record

    async def add(
        self,
        device_id: str,
        kind: DeviceKind,
        key: bytes | None,
        household: str | None,
        label: str | None,
        unit: str | None,
        actor: str,
    ) -> Added:
        """Register a device; refused (nothing written) for an unknown household or unit."""
        device_id = canonical_id(device_id)
        generated = key is None
        if key is None:
            key = secrets.token_bytes(KEY_LEN)
        if len(key) != KEY_LEN:
            raise DeviceAdminError(
                "bad_key", f"device key must be {KEY_LEN} bytes", length=str(KEY_LEN)
            )
        await self._unit(unit)
        now = self._clock.now()
        record = DeviceRecord(
            device_id=device_id,
            kind=kind,
            key=key,
            heartbeat_interval_s=self._supervision.heartbeat_interval_s[kind],
            created_at=now,
            household_code=household,
            label=label,
        )
        async with self._store.transaction() as uow:
            if await uow.devices.get(device_id) is not None:
                raise DeviceAdminError(
                    "already_registered",
                    f"device {device_id} is registered already",
                    device=device_id,
                )
            if household is not None:
                await self._household(uow, household)
            await uow.devices.add(record)
            await uow.devices.add_history(
                HistoryEntry(device_id, now, "added", actor, to_household=household, unit_code=unit)
            )
        log.info("device registered", extra={"device_id": device_id, "household": household})
        return Added(record, generated)

    async def attach(self, device_id: str, household: str, actor: str) -> DeviceRecord:
        """Attach a box that has no household to one."""
        device_id = canonical_id(device_id)
        async with self._store.transaction() as uow:
            record = await self._device(uow, device_id)
            if record.household_code is not None:
                raise DeviceAdminError(
                    "has_household",
                    f"device {device_id} belongs to {record.household_code}; use move",
                    device=device_id,
                    household=record.household_code,
                )
            await self._household(uow, household)
            await uow.devices.set_household(device_id, household)
            await uow.devices.add_history(
                HistoryEntry(
                    device_id, self._clock.now(), "attached", actor, to_household=household
                )
            )
            record = replace(record, household_code=household)
        self._seen(record)
        return record

    async def move(self, device_id: str, household: str, actor: str) -> DeviceRecord:
        """Move a box from its household to another."""
        device_id = canonical_id(device_id)
        async with self._store.transaction() as uow:
            record = await self._device(uow, device_id)
            before = record.household_code
            if before is None:
                raise DeviceAdminError(
                    "no_household_yet",
                    f"device {device_id} has no household; use attach",
                    device=device_id,
                )
            if before == household:
                raise DeviceAdminError(
                    "same_household",
                    f"device {device_id} belongs to {household} already",
                    device=device_id,
                    household=household,
                )
            await self._household(uow, household)
            await uow.devices.set_household(device_id, household)
            await uow.devices.add_history(
                HistoryEntry(
                    device_id,
                    self._clock.now(),
                    "moved",
                    actor,
                    from_household=before,
                    to_household=household,
                )
            )
            record = replace(record, household_code=household)
        self._seen(record)
        return record

    async def replace(
        self, old_id: str, new_id: str, key: bytes | None, actor: str
    ) -> tuple[DeviceRecord, Added]:
        """The new box takes over the old one's household; the old one is retired.

        The new box may be registered already (with no household); if not, it is registered
        here with the old one's kind (and a generated key unless one is given).
        """
        old_id, new_id = canonical_id(old_id), canonical_id(new_id)
        if old_id == new_id:
            raise DeviceAdminError("replace_same", "a device cannot replace itself", device=old_id)
        if key is not None and len(key) != KEY_LEN:
            raise DeviceAdminError(
                "bad_key", f"device key must be {KEY_LEN} bytes", length=str(KEY_LEN)
            )
        now = self._clock.now()
        async with self._store.transaction() as uow:
            old = await self._device(uow, old_id)
            household = old.household_code
            unit = await uow.devices.installed_unit(old_id) if household is None else None
            existing = await uow.devices.get(new_id)
            generated = False
            if existing is None:
                generated = key is None
                new = DeviceRecord(
                    device_id=new_id,
                    kind=old.kind,
                    key=key if key is not None else secrets.token_bytes(KEY_LEN),
                    heartbeat_interval_s=self._supervision.heartbeat_interval_s[old.kind],
                    created_at=now,
                    household_code=household,
                    label=old.label,
                )
                await uow.devices.add(new)
                await uow.devices.add_history(HistoryEntry(new_id, now, "added", actor))
            else:
                new = await self._device(uow, new_id)
                if new.household_code is not None:
                    raise DeviceAdminError(
                        "new_has_household",
                        f"device {new_id} belongs to {new.household_code}",
                        device=new_id,
                        household=new.household_code,
                    )
                if new.kind != old.kind:
                    raise DeviceAdminError(
                        "kind_mismatch",
                        f"device {new_id} is a {new.kind}, {old_id} a {old.kind}",
                        device=new_id,
                        other=old_id,
                    )
                if key is not None:
                    raise DeviceAdminError(
                        "key_for_registered",
                        f"device {new_id} is registered already with its own key",
                        device=new_id,
                    )
                await uow.devices.set_household(new_id, household)
                new = replace(new, household_code=household)
            await self._retire(uow, old_id)
            await uow.devices.add_history(
                HistoryEntry(
                    old_id, now, "replaced", actor, from_household=household, other_device=new_id
                )
            )
            await uow.devices.add_history(
                HistoryEntry(
                    new_id,
                    now,
                    "replaces",
                    actor,
                    to_household=household,
                    unit_code=unit,
                    other_device=old_id,
                )
            )
            old = replace(old, enabled=False, household_code=None)
        self._seen(old)
        self._seen(new)
        return old, Added(new, generated)

    async def remove(self, device_id: str, actor: str) -> DeviceRecord:
        """Retire a box: it keeps its history and events; its frames are refused from now on."""
        device_id = canonical_id(device_id)
        async with self._store.transaction() as uow:
            record = await self._device(uow, device_id)
            await self._retire(uow, device_id)
            await uow.devices.add_history(
                HistoryEntry(
                    device_id,
                    self._clock.now(),
                    "removed",
                    actor,
                    from_household=record.household_code,
                )
            )
            record = replace(record, enabled=False, household_code=None)
        self._seen(record)
        return record

    async def _retire(self, uow: UnitOfWork, device_id: str) -> None:
        await uow.devices.set_enabled(device_id, False)
        await uow.devices.set_household(device_id, None)
        # A retired box is nobody's to worry about: no "offline for a day" for it.
        await uow.deadlines.clear([(OFFLINE_NOTICE_DEADLINE, device_id)])
        await uow.devices.take_offline_notice(device_id)


def canonical_id(device_id: str) -> str:
    """The device id in its one spelling (16 lower-case hex digits), or DeviceAdminError."""
    try:
        return parse_device_id(device_id)
    except ProtocolError:
        raise DeviceAdminError(
            "bad_id", f"{device_id!r} is not 16 hex digits", device=device_id
        ) from None


def unit_chain(unit_code: str, units: dict[str, GridUnit]) -> tuple[str, ...]:
    """The unit and its ancestors, nearest first (as far as the grid knows them)."""
    chain: list[str] = []
    code: str | None = unit_code
    while code is not None and code in units and code not in chain:
        chain.append(code)
        code = units[code].parent_code
    return tuple(chain)


def unit_by_prefix(household_code: str, units: dict[str, GridUnit]) -> str | None:
    """The most specific unit whose code begins the household code at a '-', or None.

    A mistyped household number still names its village.
    """
    parts = household_code.split("-")
    for end in range(len(parts) - 1, 0, -1):
        code = "-".join(parts[:end])
        if code in units:
            return code
    return None


def _hours(seconds: float) -> str:
    """Whole hours, rounded down: "24" is true after 24 h 59 min too."""
    return str(max(0, math.floor(seconds / HOUR_S)))


def alarm_words(
    device: DeviceRecord, household: HouseholdInfo | None, kind: AlarmKind
) -> tuple[str, dict[str, str]]:
    """The township's SMS about a green press that reached nobody: template and parameters.

    `household` is the box's household if it exists (then the press failed for another
    reason, `kind` "call_failed"); otherwise the box has no household or an unknown one.
    """
    label = device.device_id if not device.label else f"{device.device_id}（{device.label}）"
    if household is not None and kind == "call_failed":
        params = {"device": label, "resident": household.resident_name, "place": household.place}
        return "device_call_failed", params
    if device.household_code is not None:
        return "device_unknown_household_call", {
            "device": label,
            "household": device.household_code,
        }
    return "device_unassigned_call", {"device": label}


def notice_words(household: HouseholdInfo, silent_for: float) -> dict[str, str]:
    """The parameters of "device_offline" and "device_back_online" after `silent_for` s."""
    return {"resident": household.resident_name, "hours": _hours(silent_for)}


class DeviceAlarms:
    """Operator alarms for calls that reached nobody; offline and back-online notices."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: SupervisionSettings,
        metrics: GatewayMetrics,
        notifications_committed: Callable[[bool], None] | None = None,
        deadline_set: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._notifications_committed = notifications_committed
        self._deadline_set = deadline_set
        self._started_at: float | None = None

    def start(self) -> None:
        """Note the gateway's start: silence before it is not counted (no storm on restart)."""
        if self._started_at is None:
            self._started_at = self._clock.now()

    # -- calls that reached nobody ------------------------------------------------------

    async def call_not_ticketed(
        self,
        uow: UnitOfWork,
        device: DeviceRecord,
        household: HouseholdInfo | None,
        at: float,
        error: BaseException | None = None,
        *,
        green: bool = True,
    ) -> OnCommit:
        """A press from `device` reached nobody (or failed): alarm, log, count, tell the township.

        Runs inside the ingest transaction after the press's own writes were undone.
        """
        code = device.household_code
        kind: AlarmKind
        if error is not None:
            kind = "call_failed" if green else "press_failed"
            detail = f"{type(error).__name__}: {error}"[:500]
        elif code is None:
            kind, detail = "unassigned_call", "call from a box without a household"
        else:
            kind, detail = "unknown_household", f"household {code} does not exist"
        alarm = await uow.devices.raise_alarm(kind, device.device_id, detail, at)
        log.error(
            "operator alarm: a press reached nobody",
            extra={"kind": kind, "device_id": device.device_id, "detail": detail},
            exc_info=error,
        )
        notifications: list[Notification] = []
        if green and self._due_notice(alarm, at):
            notifications = await self._tell_township(uow, device, household, kind)
            if notifications:
                await uow.outbox.enqueue(notifications, at)
                await uow.devices.alarm_notified(alarm.id, at)

        def after() -> None:
            self._metrics.operator_alarms.labels(kind).inc()
            if notifications and self._notifications_committed is not None:
                self._notifications_committed(True)  # noqa: FBT003 - the sender's wake(urgent)

        return after

    def _due_notice(self, alarm: OperatorAlarm, at: float) -> bool:
        return (
            alarm.notified_at is None or at - alarm.notified_at >= self._settings.alarm_renotify_s
        )

    async def _tell_township(
        self,
        uow: UnitOfWork,
        device: DeviceRecord,
        household: HouseholdInfo | None,
        kind: AlarmKind,
    ) -> list[Notification]:
        """SMS to the township duty contacts of the box's unit, if its unit is known."""
        chain = household.unit_chain if household is not None else await self._chain_of(uow, device)
        if not chain:
            log.error(
                "nobody to tell of the alarm: the box's unit is not known",
                extra={"device_id": device.device_id},
            )
            return []
        template, params = alarm_words(device, household, kind)
        duty = await uow.grid.unit_contacts(chain, "township_duty")
        return [_sms(c, template, params, URGENT) for c in duty if not c.bad_number]

    async def _chain_of(self, uow: UnitOfWork, device: DeviceRecord) -> tuple[str, ...]:
        """Where a box without a (known) household is: its history, or its household code."""
        units = await self._store.grid.units()
        unit = await uow.devices.installed_unit(device.device_id)
        if unit is None and device.household_code is not None:
            unit = unit_by_prefix(device.household_code, units)
        return unit_chain(unit, units) if unit is not None else ()

    # -- offline for a day --------------------------------------------------------------

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        """A box silent for `offline_notify_after_s`: tell its family and grid worker once."""
        started = self._started_at if self._started_at is not None else -math.inf
        after_s = self._settings.offline_notify_after_s
        rearmed: list[Deadline] = []
        notifications: list[Notification] = []
        for deadline in deadlines:
            device = await uow.devices.get(deadline.subject)
            if (
                device is None
                or device.kind != "call_box"
                or not device.enabled
                or device.status != "offline"
            ):
                continue
            if deadline.due_at < started + after_s:
                # Set before this start: the downtime is no silence (nothing could be heard),
                # so the box must be silent for the whole period while the gateway listens.
                rearmed.append(Deadline(deadline.kind, deadline.subject, started + after_s))
                continue
            last_heard = await uow.devices.last_heard(device.device_id) or device.created_at
            await uow.devices.offline_notice_sent(OfflineNotice(device.device_id, last_heard, now))
            notifications.extend(
                await self._household_notice(uow, device, "device_offline", now - last_heard)
            )
        if rearmed:
            await uow.deadlines.set(rearmed)
        if notifications:
            await uow.outbox.enqueue(notifications, now)

        def after() -> None:
            if rearmed and self._deadline_set is not None:
                self._deadline_set(min(d.due_at for d in rearmed))
            self._notified(notifications)

        return after

    async def stage(self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]) -> OnCommit | None:
        """Boxes heard again after being offline: no day notice; "back online" if one went."""
        returning: dict[str, AcceptedFrame] = {}
        for frame in frames:
            if frame.state.status == "offline" and frame.state.device_id not in returning:
                returning[frame.state.device_id] = frame
        if not returning:
            return None
        await uow.deadlines.clear([(OFFLINE_NOTICE_DEADLINE, d) for d in returning])
        notifications: list[Notification] = []
        for device_id, frame in returning.items():
            notice = await uow.devices.take_offline_notice(device_id)
            if notice is None:
                continue
            silent_for = frame.inbound.received_at - notice.last_heard
            notifications.extend(
                await self._household_notice(
                    uow, frame.state.record, "device_back_online", silent_for
                )
            )
        if notifications:
            await uow.outbox.enqueue(notifications, frames[0].inbound.received_at)
        return lambda: self._notified(notifications)

    async def _household_notice(
        self, uow: UnitOfWork, device: DeviceRecord, template: str, silent_for: float
    ) -> list[Notification]:
        """The notice to the box's family and the grid worker of its unit."""
        if device.household_code is None:
            return []
        info = await uow.grid.household_info(device.household_code)
        if info is None:
            return []
        # The family of a resident living alone hears of the box from its health alarms
        # (gateway/services/device_health.py) within the hour; not a second time here.
        family_ids = (
            []
            if await uow.grid.lives_alone(info.code)
            else [
                c.id
                for c in await self._store.grid.contacts_of([], [info.code])
                if c.role == "family" and c.id is not None
            ]
        )
        people: list[Contact] = [
            *await uow.grid.contacts_by_id(family_ids),
            *await uow.grid.unit_contacts(info.unit_chain, "grid_worker"),
        ]
        params = notice_words(info, silent_for)
        return [_sms(c, template, params, NORMAL) for c in people if not c.bad_number]

    def _notified(self, notifications: Sequence[Notification]) -> None:
        for n in notifications:
            self._metrics.device_notices.labels(n.template).inc()
        if notifications and self._notifications_committed is not None:
            self._notifications_committed(False)  # noqa: FBT003 - the sender's wake(urgent)


def _sms(contact: Contact, template: str, params: dict[str, str], priority: int) -> Notification:
    return Notification(
        channel="sms",
        recipient=contact.phone,
        template=template,
        params=dict(params),
        language=contact.language,
        contact_id=contact.id,
        priority=priority,
    )
