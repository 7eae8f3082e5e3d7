"""Device supervision: silence deadlines, online/offline and battery transitions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from firmware_protocol import AlarmKind, DeviceAlarm, Heartbeat
from gateway.config import SupervisionSettings
from gateway.domain.devices import Telemetry, Transition
from gateway.ingest.pipeline import AcceptedFrame
from gateway.ingest.registry import SILENT_DEADLINE, DeviceRegistry, DeviceState
from gateway.metrics import GatewayMetrics
from gateway.scheduler import DeadlineScheduler
from gateway.store.ports import Deadline, UnitOfWork

MAINS_POWERED = 255


class Supervisor:
    """Keeps each device's silence deadline at last contact + N missed intervals."""

    def __init__(
        self,
        registry: DeviceRegistry,
        scheduler: DeadlineScheduler,
        settings: SupervisionSettings,
        metrics: GatewayMetrics,
    ) -> None:
        self._registry = registry
        self._scheduler = scheduler
        self._settings = settings
        self._metrics = metrics

    async def stage(
        self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]
    ) -> Callable[[], None] | None:
        """Record contact, telemetry and transitions for the frames being committed."""
        last_contact: dict[str, float] = {}
        intervals: dict[str, int] = {}
        low_battery: dict[str, bool] = {}
        telemetry: list[Telemetry] = []
        states: dict[str, DeviceState] = {}
        for frame in frames:
            device_id = frame.state.device_id
            states[device_id] = frame.state
            received = frame.inbound.received_at
            last_contact[device_id] = max(received, last_contact.get(device_id, received))
            message = frame.envelope.message
            if isinstance(message, Heartbeat):
                battery = None if message.battery_pct == MAINS_POWERED else message.battery_pct
                telemetry.append(
                    Telemetry(
                        device_id=device_id,
                        firmware=".".join(str(p) for p in message.firmware),
                        battery_pct=battery,
                        battery_mv=message.battery_mv,
                        rssi_dbm=message.rssi_dbm,
                        uptime_s=message.uptime_s,
                        heartbeat_interval_s=message.heartbeat_interval_s,
                    )
                )
                intervals[device_id] = message.heartbeat_interval_s
                if battery is not None:
                    low_battery[device_id] = battery < self._settings.low_battery_pct
            elif isinstance(message, DeviceAlarm) and message.alarm == AlarmKind.LOW_BATTERY:
                low_battery[device_id] = message.active

        transitions: list[Transition] = []
        deadlines: list[Deadline] = []
        for device_id, state in states.items():
            at = last_contact[device_id]
            if state.status != "online":
                detail = "first contact" if state.status == "unknown" else "back after silence"
                transitions.append(Transition(device_id, at, "online", detail))
            low = low_battery.get(device_id)
            if low is not None and low != state.low_battery:
                transitions.append(
                    Transition(device_id, at, "low_battery" if low else "battery_ok")
                )
            interval = intervals.get(device_id, state.interval_s)
            due = at + self._settings.missed_intervals * interval
            deadlines.append(Deadline(SILENT_DEADLINE, device_id, due))
        await uow.devices.update_telemetry(telemetry)
        await uow.devices.apply_transitions(transitions)
        await uow.deadlines.set(deadlines)

        def on_commit() -> None:
            for device_id, interval in intervals.items():
                states[device_id].interval_s = interval
            self._apply(states, transitions)
            if deadlines:
                self._scheduler.notify(min(d.due_at for d in deadlines))

        return on_commit

    async def on_due(
        self,
        uow: UnitOfWork,
        deadlines: Sequence[Deadline],
        now: float,  # noqa: ARG002 - part of the DeadlineHandler contract
    ) -> Callable[[], None] | None:
        """Mark devices offline whose silence deadline passed."""
        states: dict[str, DeviceState] = {}
        transitions: list[Transition] = []
        for deadline in deadlines:
            state = await self._registry.lookup(deadline.subject)
            if state is None or state.status == "offline":
                continue
            states[state.device_id] = state
            missed = self._settings.missed_intervals
            transitions.append(
                Transition(
                    state.device_id,
                    deadline.due_at,
                    "offline",
                    f"no frame for {missed} reporting intervals of {state.interval_s} s",
                )
            )
        await uow.devices.apply_transitions(transitions)
        return lambda: self._apply(states, transitions)

    def _apply(self, states: dict[str, DeviceState], transitions: Sequence[Transition]) -> None:
        for transition in transitions:
            state = states[transition.device_id]
            if transition.kind in ("online", "offline"):
                state.status = transition.kind
            else:
                state.low_battery = transition.kind == "low_battery"
            self._metrics.device_transitions.labels(transition.kind).inc()
        if transitions:
            self._registry.update_gauges()
