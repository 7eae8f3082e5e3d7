"""Device health alarms: a device offline, on low battery, tampered with or without power.

Who is told. The installers (contacts with role `installer`) of the nearest unit of the
device's household that has any, walking up the grid as a ticket does; and, for the call box
of a resident living alone, the household's family too (a box that cannot call is their
elder's lifeline). A water meter offline is the installer's to mend whether or not its
household is watched: the water watch itself treats it as blind, never as zero use. A device
with no household (or one that does not exist), or whose household's units have no installer,
raises an operator alarm (`bidao alarms`) saying so, and its family is still told.

How often. Each condition is a spell (`gateway.domain.devices.HealthAlarm`): it begins with
the Supervisor's transition (`offline`, `low_battery`, `tamper`, `power_loss`) and is told
only once it has lasted `supervision.health_raise_after_s[kind]` without a break (a short
blip is told to nobody). Its end (`online`, `battery_ok`, `tamper_ok`, `power_ok`) starts the
all-clear's own hold-off, `health_clear_after_s`: if the condition comes back meanwhile, the
spell simply goes on; otherwise the all-clear goes to exactly those who were told. So a
flapping device costs its people one alarm and one all-clear, not one per flap, and a
heartbeat costs nothing here: this runs only on transitions (`Supervisor.on_transitions`),
which a heartbeat that changes nothing never writes, and on its own deadlines.

How. Every message is an SMS through the durable outbox, written in the same transaction as
the spell's row (normal priority, merged by the hourly throttle like any reminder). No voice
call: a ringing phone stays the sign that a person needs help, and nothing here is that.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts import Notification
from alerts.notification import NORMAL
from gateway.clock import Clock
from gateway.config import SupervisionSettings
from gateway.domain.devices import (
    HEALTH_KINDS,
    AlarmKind,
    DeviceRecord,
    HealthAlarm,
    HealthKind,
    Transition,
    health_change,
)
from gateway.domain.grid import Contact, HouseholdInfo
from gateway.metrics import GatewayMetrics
from gateway.store.ports import Deadline, UnitOfWork

log = logging.getLogger(__name__)

HEALTH_DEADLINE = "device_health"
"""A health spell's hold-off ends: tell it, or send its all-clear (subject `device/kind`)."""
_DEVICE_WORD = {"call_box": "box", "water_meter": "meter"}


def alarm_template(device: DeviceRecord, kind: HealthKind, *, ok: bool = False) -> str:
    """The installer's template: `health_box_offline`, `health_meter_tamper_ok` and so on."""
    return f"health_{_DEVICE_WORD[device.kind]}_{kind}" + ("_ok" if ok else "")


def family_template(kind: HealthKind, *, ok: bool = False) -> str:
    """The family's template (call boxes only), such as `health_family_power_loss`."""
    return f"health_family_{kind}" + ("_ok" if ok else "")


def local_time(unix: float, timezone: str) -> str:
    """A moment as people read it in the villages: "11-30 14:07" (month-day hour:minute)."""
    return datetime.fromtimestamp(unix, ZoneInfo(timezone)).strftime("%m-%d %H:%M")


def health_words(
    device: DeviceRecord,
    household: HouseholdInfo | None,
    alarm: HealthAlarm,
    timezone: str,
    until: float | None = None,
    *,
    family: bool = False,
) -> dict[str, str]:
    """The parameters of a health alarm (and, with `until`, of its all-clear).

    The family's words name the resident's box, not its number (`family`: no `device`).
    """
    params = {
        "resident": household.resident_name if household is not None else "",
        "place": household.place if household is not None else "",
        "since": local_time(alarm.since, timezone),
    }
    if not family:
        label = device.device_id if not device.label else f"{device.device_id}（{device.label}）"
        params["device"] = label
    if until is not None:
        params["until"] = local_time(until, timezone)
    return params


def _subject(device_id: str, kind: HealthKind) -> str:
    return f"{device_id}/{kind}"


def _parse_subject(subject: str) -> tuple[str, HealthKind] | None:
    device_id, _, kind = subject.partition("/")
    for known in HEALTH_KINDS:
        if kind == known:
            return device_id, known
    return None


class DeviceHealth:
    """Health spells from transitions, told after their hold-off, cleared after theirs."""

    def __init__(
        self,
        clock: Clock,
        settings: SupervisionSettings,
        timezone: str,
        metrics: GatewayMetrics,
        notifications_committed: Callable[[bool], None] | None = None,
        deadline_set: Callable[[float], None] | None = None,
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._timezone = timezone
        self._metrics = metrics
        self._notifications_committed = notifications_committed
        self._deadline_set = deadline_set
        self._started_at: float | None = None

    def start(self) -> None:
        """Note the gateway's start: an offline spell's hold-off never counts the downtime."""
        if self._started_at is None:
            self._started_at = self._clock.now()

    def raise_after(self, kind: HealthKind) -> float:
        """How long a condition must last before anyone is told."""
        return self._settings.health_raise_after_s.get(kind, 0.0)

    # -- transitions (inside the transaction that writes them) ---------------------------

    async def on_transitions(
        self, uow: UnitOfWork, transitions: Sequence[Transition]
    ) -> Callable[[], None] | None:
        """Open, continue or end the spells the transitions are about; set their deadlines."""
        moved: list[Deadline] = []
        dropped: list[tuple[str, str]] = []
        # One read for the batch (most transitions are devices coming online with no spell).
        spells = await uow.devices.open_health_alarms({t.device_id for t in transitions})
        for t in transitions:
            kind, begins = health_change(t.kind)
            key = (t.device_id, kind)
            alarm = spells.get(key)
            subject = _subject(t.device_id, kind)
            if begins:
                if alarm is None:
                    since = await self._began(uow, t, kind)
                    spells[key] = await uow.devices.save_health_alarm(
                        HealthAlarm(t.device_id, kind, since)
                    )
                    moved.append(Deadline(HEALTH_DEADLINE, subject, t.at + self.raise_after(kind)))
                elif alarm.state == "clearing":  # back within the all-clear's hold-off
                    spells[key] = await uow.devices.save_health_alarm(replace(alarm, ok_since=None))
                    dropped.append((HEALTH_DEADLINE, subject))
            elif alarm is not None and alarm.state == "pending":  # a blip: nobody was told
                await uow.devices.save_health_alarm(replace(alarm, cleared_at=t.at))
                del spells[key]
                dropped.append((HEALTH_DEADLINE, subject))
            elif alarm is not None and alarm.state == "told":
                spells[key] = await uow.devices.save_health_alarm(replace(alarm, ok_since=t.at))
                moved.append(
                    Deadline(HEALTH_DEADLINE, subject, t.at + self._settings.health_clear_after_s)
                )
        if dropped:
            await uow.deadlines.clear(dropped)
        if moved:
            await uow.deadlines.set(moved)
        if not moved:
            return None
        due = min(d.due_at for d in moved)
        return lambda: self._deadline_set(due) if self._deadline_set is not None else None

    async def _began(self, uow: UnitOfWork, t: Transition, kind: HealthKind) -> float:
        """When the condition began: for offline, when the device was last heard."""
        if kind != "offline":
            return t.at
        heard = await uow.devices.last_heard(t.device_id)
        if heard is not None:
            return heard
        device = await uow.devices.get(t.device_id)
        return device.created_at if device is not None else t.at

    # -- deadlines ------------------------------------------------------------------------

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        """Tell the spells whose hold-off passed; send the all-clears whose hold-off passed."""
        started = self._started_at if self._started_at is not None else -math.inf
        notifications: list[Notification] = []
        alarms: list[AlarmKind] = []
        rearmed: list[Deadline] = []
        for deadline in deadlines:
            parsed = _parse_subject(deadline.subject)
            if parsed is None:
                log.error(
                    "a health deadline names no condition", extra={"subject": deadline.subject}
                )
                continue
            device_id, kind = parsed
            alarm = await uow.devices.health_alarm(device_id, kind)
            if alarm is None or alarm.state == "told":
                continue  # ended, or told already: a deadline left behind
            device = await uow.devices.get(device_id)
            if device is None or not device.enabled:
                # A retired device is nobody's to mend.
                await uow.devices.save_health_alarm(replace(alarm, cleared_at=now))
                continue
            if alarm.state == "clearing":
                notifications += await self._all_clear(uow, device, alarm, now)
                continue
            hold_off = self.raise_after(kind)
            if kind == "offline" and deadline.due_at < started + hold_off:
                # Set before this start: the downtime is no silence (nothing could be heard).
                rearmed.append(Deadline(HEALTH_DEADLINE, deadline.subject, started + hold_off))
                continue
            told, raised = await self._tell(uow, device, alarm, now)
            notifications += told
            alarms += raised
        if rearmed:
            await uow.deadlines.set(rearmed)
        if notifications:
            await uow.outbox.enqueue(notifications, now)

        def after() -> None:
            for kind in alarms:
                self._metrics.operator_alarms.labels(kind).inc()
            for n in notifications:
                self._metrics.device_notices.labels(n.template).inc()
            if notifications and self._notifications_committed is not None:
                self._notifications_committed(False)  # noqa: FBT003 - the sender's wake(urgent)
            if rearmed and self._deadline_set is not None:
                self._deadline_set(min(d.due_at for d in rearmed))

        return after

    async def _tell(
        self, uow: UnitOfWork, device: DeviceRecord, alarm: HealthAlarm, now: float
    ) -> tuple[list[Notification], list[AlarmKind]]:
        """The alarm to the installers (and family); an operator alarm if nobody is found."""
        household = (
            await uow.grid.household_info(device.household_code)
            if device.household_code is not None
            else None
        )
        since = local_time(alarm.since, self._timezone)
        raised: list[AlarmKind] = []
        installers: list[Contact] = []
        family: list[Contact] = []
        if household is None:
            where = (
                "no household"
                if device.household_code is None
                else f"household {device.household_code}, which does not exist"
            )
            detail = f"{alarm.kind} since {since}: {device.kind} {device.device_id} has {where}"
            await uow.devices.raise_alarm("health_no_household", device.device_id, detail, now)
            raised.append("health_no_household")
        else:
            installers = await uow.grid.unit_contacts(household.unit_chain, "installer")
            family = await self._family(uow, device, household)
            if not [c for c in installers if not c.bad_number]:
                detail = (
                    f"{alarm.kind} since {since}: no installer on record for household "
                    f"{household.code} or the units above it"
                )
                await uow.devices.raise_alarm("health_no_installer", device.device_id, detail, now)
                raised.append("health_no_installer")
        for kind in raised:
            log.error(
                "operator alarm: a device health alarm has nobody to go to",
                extra={"kind": kind, "device_id": device.device_id, "health": alarm.kind},
            )
        params = health_words(device, household, alarm, self._timezone)
        words = health_words(device, household, alarm, self._timezone, family=True)
        notifications = [
            _sms(c, alarm_template(device, alarm.kind), params)
            for c in installers
            if not c.bad_number
        ] + [_sms(c, family_template(alarm.kind), words) for c in family if not c.bad_number]
        told = tuple(n.contact_id for n in notifications if n.contact_id is not None)
        await uow.devices.save_health_alarm(replace(alarm, told_at=now, told=told))
        log.info(
            "device health alarm told",
            extra={"device_id": device.device_id, "health": alarm.kind, "told": len(told)},
        )
        return notifications, raised

    async def _family(
        self, uow: UnitOfWork, device: DeviceRecord, household: HouseholdInfo
    ) -> list[Contact]:
        """The family of a resident living alone, for a call box; else nobody."""
        if device.kind != "call_box" or not await uow.grid.lives_alone(household.code):
            return []
        return [
            c
            for c in await uow.grid.household_contacts(household.code)
            if c.role == "family" and c.notify != ()  # () is "told of nothing"
        ]

    async def _all_clear(
        self, uow: UnitOfWork, device: DeviceRecord, alarm: HealthAlarm, now: float
    ) -> list[Notification]:
        """The all-clear, to exactly those who were told the alarm."""
        assert alarm.ok_since is not None
        household = (
            await uow.grid.household_info(device.household_code)
            if device.household_code is not None
            else None
        )
        until = alarm.ok_since
        params = health_words(device, household, alarm, self._timezone, until)
        words = health_words(device, household, alarm, self._timezone, until, family=True)
        out: list[Notification] = []
        for c in await uow.grid.contacts_by_id(alarm.told):
            if c.bad_number:
                continue
            if c.role == "family":
                out.append(_sms(c, family_template(alarm.kind, ok=True), words))
            else:
                out.append(_sms(c, alarm_template(device, alarm.kind, ok=True), params))
        await uow.devices.save_health_alarm(replace(alarm, cleared_at=now))
        log.info(
            "device health all-clear",
            extra={"device_id": device.device_id, "health": alarm.kind, "told": len(out)},
        )
        return out


def _sms(contact: Contact, template: str, params: dict[str, str]) -> Notification:
    return Notification(
        channel="sms",
        recipient=contact.phone,
        template=template,
        params=dict(params),
        language=contact.language,
        contact_id=contact.id,
        priority=NORMAL,
    )
