"""Provisioning for installers: devices registered from a manufacturer's CSV, install checks.

`Provisioning` registers a batch of devices (serials and keys) all or nothing: every row is
checked first and each bad row named; a key is written to the store and never read back out
by anything a person sees.

`InstallChecks` runs the install check of a device (gateway.domain.installs): while a check
is running, the box's key presses are the installer's. They are recorded for the check,
acknowledged to the box like any frame, and kept from the ticket service and the water watch
(the `screened` wrapper around those handlers), so no ticket is raised and nobody is called.
The check passes the moment its last key (or a rising meter reading) arrives; when its time
(`provisioning.install_check_s`) runs out first, a deadline ends it as failed with what was
missing. Every change is told to the listeners of `subscribe` (the dashboard's live page).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from firmware_protocol import KEY_LEN, KeyEvent, WaterReading
from gateway.clock import Clock
from gateway.config import DeviceKind, ProvisioningSettings, SupervisionSettings
from gateway.domain.devices import DeviceRecord, HistoryEntry
from gateway.domain.installs import KEY_NAMES, CheckStep, InstallCheck
from gateway.errors import ConflictError
from gateway.ingest.pipeline import AcceptedFrame, IngestHandler, OnCommit
from gateway.metrics import GatewayMetrics
from gateway.services.devices import DeviceAdminError, canonical_id
from gateway.store.ports import Deadline, Store, UnitOfWork

log = logging.getLogger(__name__)

CHECK_DEADLINE = "install_check"
DEVICE_KINDS: tuple[DeviceKind, ...] = ("call_box", "water_meter")
LABEL_MAX_CHARS = 64
_HEX_KEY = re.compile(r"[0-9a-fA-F]{32}")
SERIAL_COLUMNS = ("serial", "device_id")
"""The column a manufacturer's CSV names the device id in (the first found)."""


# -- a manufacturer's batch ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One good row of a manufacturer's CSV (`line`: its line in the file, the header is 1)."""

    line: int
    device_id: str
    kind: DeviceKind
    key: bytes
    label: str | None = None


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row of a batch cannot be registered; `code` names it for the words."""

    line: int
    serial: str
    code: Literal[
        "bad_header",
        "too_many_rows",
        "empty",
        "bad_serial",
        "bad_key",
        "bad_kind",
        "bad_label",
        "duplicate_serial",
        "already_registered",
    ]
    other_line: int | None = None
    """For duplicate_serial: the line that has the serial first."""


class BatchRefusedError(DeviceAdminError):
    """A batch not registered at all: `rows` says what is wrong with which row."""

    def __init__(self, rows: Sequence[RowProblem]) -> None:
        first = rows[0]
        super().__init__(
            "batch_refused",
            f"batch refused: {len(rows)} bad rows, first line {first.line}: {first.code}",
            rows=str(len(rows)),
        )
        self.rows = tuple(rows)


def parse_batch(text: str, default_kind: DeviceKind, max_rows: int) -> list[BatchRow]:
    """The rows of a manufacturer's CSV (serial or device_id, key, optional kind and label).

    BatchRefusedError naming every bad row (nothing is partly good).
    """
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    serial_column = next((c for c in SERIAL_COLUMNS if c in header), None)
    if serial_column is None or "key" not in header:
        raise BatchRefusedError([RowProblem(1, "", "bad_header")])
    reader.fieldnames = header
    rows: list[BatchRow] = []
    problems: list[RowProblem] = []
    first_line: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        serial = (record.get(serial_column) or "").strip()
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue  # a blank line
        if len(rows) + len(problems) >= max_rows:
            problems.append(RowProblem(line, serial, "too_many_rows"))
            break
        problem = _row_problem(record, serial, line, default_kind, first_line)
        if isinstance(problem, RowProblem):
            problems.append(problem)
        else:
            rows.append(problem)
    if problems:
        raise BatchRefusedError(problems)
    if not rows:
        raise BatchRefusedError([RowProblem(1, "", "empty")])
    return rows


def _row_problem(
    record: dict[str, str | None],
    serial: str,
    line: int,
    default_kind: DeviceKind,
    first_line: dict[str, int],
) -> BatchRow | RowProblem:
    try:
        device_id = canonical_id(serial)
    except DeviceAdminError:
        return RowProblem(line, serial, "bad_serial")
    if device_id in first_line:
        return RowProblem(line, serial, "duplicate_serial", first_line[device_id])
    first_line[device_id] = line
    key_text = (record.get("key") or "").strip()
    if not _HEX_KEY.fullmatch(key_text):
        return RowProblem(line, serial, "bad_key")
    kind_text = (record.get("kind") or "").strip() or default_kind
    kind = next((k for k in DEVICE_KINDS if k == kind_text), None)
    if kind is None:
        return RowProblem(line, serial, "bad_kind")
    label = (record.get("label") or "").strip() or None
    if label is not None and len(label) > LABEL_MAX_CHARS:
        return RowProblem(line, serial, "bad_label")
    key = bytes.fromhex(key_text)
    assert len(key) == KEY_LEN
    return BatchRow(line, device_id, kind, key, label)


class Provisioning:
    """Registers manufacturers' batches of devices in one transaction."""

    def __init__(self, store: Store, clock: Clock, supervision: SupervisionSettings) -> None:
        self._store = store
        self._clock = clock
        self._supervision = supervision

    async def register_batch(
        self, rows: Sequence[BatchRow], unit_code: str | None, actor: str
    ) -> list[DeviceRecord]:
        """Register every row in `unit_code`, or none: BatchRefusedError naming the rows."""
        if unit_code is not None and not await self._store.grid.units_by_code([unit_code]):
            raise DeviceAdminError("no_unit", f"no grid unit {unit_code}", unit=unit_code)
        now = self._clock.now()
        records = [
            DeviceRecord(
                device_id=row.device_id,
                kind=row.kind,
                key=row.key,
                heartbeat_interval_s=self._supervision.heartbeat_interval_s[row.kind],
                created_at=now,
                label=row.label,
            )
            for row in rows
        ]
        async with self._store.transaction() as uow:
            taken = [
                RowProblem(row.line, row.device_id, "already_registered")
                for row in rows
                if await uow.devices.get(row.device_id) is not None
            ]
            if taken:
                raise BatchRefusedError(taken)
            for record in records:
                try:
                    await uow.devices.add(record)
                except ConflictError:
                    line = next(r.line for r in rows if r.device_id == record.device_id)
                    raise BatchRefusedError(
                        [RowProblem(line, record.device_id, "already_registered")]
                    ) from None
                await uow.devices.add_history(
                    HistoryEntry(
                        record.device_id, now, "added", actor, unit_code=unit_code, note="batch"
                    )
                )
        log.info("devices registered from a batch", extra={"count": len(records)})
        return records


# -- install checks ----------------------------------------------------------------------


CheckChange = Literal["started", "step", "passed", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class CheckEvent:
    """A change of an install check, as told to the live page: the check as it is now."""

    change: CheckChange
    check: InstallCheck


CheckListener = Callable[[CheckEvent], None]


class _Screened:
    """An ingest handler that does not see the presses of boxes under an install check."""

    def __init__(self, checks: InstallChecks, handler: IngestHandler) -> None:
        self._checks = checks
        self._handler = handler

    async def stage(self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]) -> OnCommit | None:
        running = await self._checks.running(uow, frames)
        kept = [f for f in frames if not withholds(f, running)]
        if not kept:
            return None
        return await self._handler.stage(uow, kept)


def withholds(frame: AcceptedFrame, running: dict[str, InstallCheck]) -> bool:
    """Whether the frame is a key press of a box under a running check (the installer's)."""
    check = running.get(frame.state.device_id)
    return (
        check is not None
        and isinstance(frame.envelope.message, KeyEvent)
        and check.running_at(frame.inbound.received_at)
    )


class InstallChecks:
    """Runs install checks: records keys and readings, passes or fails each check."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: ProvisioningSettings,
        deadline_set: Callable[[float], None] | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings
        self._metrics = metrics
        self._deadline_set = deadline_set or (lambda _at: None)
        self._listeners: list[CheckListener] = []
        self._batch: tuple[UnitOfWork, dict[str, InstallCheck]] | None = None

    async def running(
        self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]
    ) -> dict[str, InstallCheck]:
        """The running checks by device, read once per ingest transaction that needs them.

        Read from the store, not memory: a check started by `bidao device check` in another
        process holds from the very next press. Only a batch with a key press or a meter
        reading asks (heartbeats never do); the partial index keeps it to the few running.
        """
        if self._batch is not None and self._batch[0] is uow:
            return self._batch[1]
        running: dict[str, InstallCheck] = {}
        if any(isinstance(f.envelope.message, KeyEvent | WaterReading) for f in frames):
            running = {c.device_id: c for c in await uow.installs.all_running()}
        # Held until the next batch's transaction, so no other one can be taken for it.
        self._batch = (uow, running)
        return running

    def screened(self, handler: IngestHandler) -> IngestHandler:
        """`handler`, kept from the key presses of boxes whose check is running."""
        return _Screened(self, handler)

    def subscribe(self, listener: CheckListener) -> Callable[[], None]:
        """Call `listener` with every change of every check; returns the unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _tell(self, events: Sequence[CheckEvent]) -> None:
        for event in events:
            if self._metrics is not None and event.change != "step":
                self._metrics.install_checks.labels(event.change).inc()
            for listener in list(self._listeners):
                try:
                    listener(event)
                except Exception:
                    log.exception("an install check listener failed")

    async def start(self, device_id: str, actor: str) -> InstallCheck:
        """Start a check of the device (ending a running one); DeviceAdminError if it cannot."""
        now = self._clock.now()
        async with self._store.transaction() as uow:
            device = await uow.devices.get(device_id)
            if device is None:
                raise DeviceAdminError(
                    "not_registered", f"device {device_id} is not registered", device=device_id
                )
            if not device.enabled:
                raise DeviceAdminError(
                    "retired", f"device {device_id} was removed", device=device_id
                )
            old = await uow.installs.running(device_id)
            if old is not None:
                await uow.installs.finish(old.id, "cancelled", now, "restarted")
                await uow.deadlines.clear([(CHECK_DEADLINE, str(old.id))])
            check = InstallCheck(
                0, device_id, device.kind, now, now + self._settings.install_check_s, actor
            )
            check = replace(check, id=await uow.installs.start(check))
            await uow.deadlines.set([Deadline(CHECK_DEADLINE, str(check.id), check.ends_at)])
        events = [CheckEvent("started", check)]
        if old is not None:
            ended = replace(old, state="cancelled", ended_at=now, reason="restarted")
            events.insert(0, CheckEvent("cancelled", ended))
        self._deadline_set(check.ends_at)
        self._tell(events)
        log.info("install check started", extra={"device_id": device_id, "check": check.id})
        return check

    async def cancel(self, check_id: int) -> InstallCheck:
        """End a running check as cancelled; DeviceAdminError if it is not running."""
        now = self._clock.now()
        async with self._store.transaction() as uow:
            check = await uow.installs.get(check_id)
            if check is None or check.state != "running":
                raise DeviceAdminError(
                    "check_not_running", f"install check {check_id} is not running"
                )
            await uow.installs.finish(check_id, "cancelled", now, "cancelled")
            await uow.deadlines.clear([(CHECK_DEADLINE, str(check_id))])
        ended = replace(check, state="cancelled", ended_at=now, reason="cancelled")
        self._tell([CheckEvent("cancelled", ended)])
        return ended

    async def stage(self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]) -> OnCommit | None:
        """Record the keys and readings of devices under a running check; pass a check."""
        running = await self.running(uow, frames)
        if not running:
            return None
        steps: dict[str, list[CheckStep]] = {}
        for frame in sorted(frames, key=lambda f: (f.state.device_id, f.envelope.position)):
            device_id = frame.state.device_id
            check = running.get(device_id)
            at = frame.inbound.received_at
            if check is None or not check.running_at(at):
                continue
            step = _step(check, frame.envelope.message, at)
            if step is not None:
                steps.setdefault(device_id, []).append(step)
        if not steps:
            return None
        changed: list[CheckEvent] = []
        for device_id, found in steps.items():
            check = running[device_id]
            await uow.installs.add_steps(check.id, found)
            check = replace(check, steps=check.steps + tuple(found))
            if check.verdict() is None:
                at = found[-1].at
                await uow.installs.finish(check.id, "passed", at, None)
                await uow.deadlines.clear([(CHECK_DEADLINE, str(check.id))])
                changed.append(CheckEvent("passed", replace(check, state="passed", ended_at=at)))
            else:
                changed.append(CheckEvent("step", check))

        presses = sum(1 for found in steps.values() for step in found if step.what != "reading")

        def after() -> None:
            if self._metrics is not None and presses:
                self._metrics.install_checks.labels("press_withheld").inc(presses)
            self._tell(changed)

        return after

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        """A check's time ran out: it fails with what did not arrive (or passes, if all did)."""
        ended: list[CheckEvent] = []
        for deadline in deadlines:
            if not deadline.subject.isdigit():
                log.error("install check deadline without a check id: %r", deadline.subject)
                continue
            check = await uow.installs.get(int(deadline.subject))
            if check is None or check.state != "running":
                continue
            reason = check.verdict()
            if reason is None:
                await uow.installs.finish(check.id, "passed", now, None)
                ended.append(CheckEvent("passed", replace(check, state="passed", ended_at=now)))
            else:
                await uow.installs.finish(check.id, "failed", now, reason)
                ended.append(
                    CheckEvent(
                        "failed", replace(check, state="failed", ended_at=now, reason=reason)
                    )
                )
        if not ended:
            return None

        return lambda: self._tell(ended)


def _step(check: InstallCheck, message: object, at: float) -> CheckStep | None:
    """What a frame is to a check: a key of a call box, a reading of a meter, or nothing."""
    if isinstance(message, KeyEvent) and check.kind == "call_box":
        return CheckStep(at, KEY_NAMES[message.key])
    if isinstance(message, WaterReading) and check.kind == "water_meter":
        return CheckStep(at, "reading", message.total_litres, message.flow_lph)
    return None
