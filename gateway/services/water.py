"""The water watch, wired: readings and key presses in, asks, alarms and all-clears out.

The rule is the pure state machine `gateway.domain.water.decide`. This service feeds it:

- as an ingest handler (run after the ticket service, in the same transaction), a watched
  household's meter readings become `Reading` (and the meter's LEAK flag `FlowObserved`),
  and key presses on its call box `SignOfLife`; a thumbs-up while the box is being asked
  "are you OK?" is `Answered` (`claims_thumbs_up`, asked by the ticket service first so
  that one press is never also a rating);
- as the deadline handler of kind `water_watch` (one deadline per household, set or
  cleared as each decision says), the household's clock coming due is `Due`;
- as a listener of device supervision's transitions (`Supervisor.on_transitions`), a
  watched household's meter declared offline is `MeterOffline`: the quiet clock stops at
  once (blind is not zero) and the community worker is told the watch is blind only after
  `water.blind_notice_after_s`; any frame from the meter afterwards is `MeterOnline` (a
  reading brings it back by itself), with the restored notice to those told;
- from commands: `away` / `clear_away`; requests made beside the running gateway
  (`bidao household away`, a grid import) are queued in the store (`water_requests`) and
  applied here, in order, every `water.requests_poll_s` (`run`): this service is the only
  writer of watches, so its cache is never overwritten behind its back;
- a long thumbs-up on a watched household's box marks the home away for AWAY_NOTED_S (the
  box hears AWAY_NOTED), or, when it is away, ends away mode (AWAY_ENDED);
- from the outage watch (`gateway.services.outages`): `OutageEnded` for every watched
  household whose meter was last heard on the link that was down, in chunks.

A household is watched when one of its residents lives alone (or it is listed in
`water.watch_households`) and it has a water meter. Its effects, written in the same
transaction: "are you OK?" as a durable box indication; a zero-use or leak alarm as a ticket
of its own kind (`TicketService.open_alarm`: family and community worker by voice and SMS,
escalating like a call); the all-clear resolves it and tells everyone it told
(`TicketService.all_clear`); the away reminder, the blind / restored notices and the
day's first water use (to family whose contacts-file `notify` lists `first_use`) as plain
SMS through the outbox, where the throttle merges them with a number's other messages; the
record lines (`water_log`).

Cost. Watches are cached in memory after their first use, and the cache is updated only
once the transaction has committed (a batch that is retried is decided again from the
committed state). A quiet reading changes only the watch's `last_reading_at`: nothing is
written for it. The watch row is written when anything else changes. So per reading the
cost does not depend on the number of meters, and a quiet meter costs no write.

Restart. The watch rows and their deadlines are durable. A watch loaded from the store for a
deadline takes its last reading time from the meter's newest stored frame (quiet readings
are not written into the watch row), so the rule sees what was really received: readings
that stopped are stale and raise nothing (blind is not zero), readings that kept coming
keep the quiet clock running from the true last sign of life.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from alerts import Notification
from alerts.notification import NORMAL, URGENT
from firmware_protocol import IndicationKind, Key, KeyEvent, Message, MeterStatus, WaterReading
from firmware_protocol.indications import AWAY_NOTED_S, are_you_ok
from gateway.clock import Clock
from gateway.config import Settings
from gateway.domain.devices import DeviceKind, Transition
from gateway.domain.grid import HouseholdInfo
from gateway.domain.tickets import TicketKind
from gateway.domain.water import (
    DEADLINE_KIND,
    Answered,
    AwayCleared,
    AwaySet,
    ClearDeadline,
    Context,
    Due,
    Event,
    Facts,
    FlowObserved,
    MeterOffline,
    MeterOnline,
    Notice,
    OutageEnded,
    Phase,
    Reading,
    SetDeadline,
    SignOfLife,
    Watchers,
    WaterDecision,
    WaterRules,
    WaterWatch,
    decide,
    new_watch,
)
from gateway.errors import GatewayError
from gateway.ingest.pipeline import AcceptedFrame, OnCommit
from gateway.metrics import GatewayMetrics
from gateway.services.tickets import TicketService
from gateway.store.ports import Deadline, Store, UnitOfWork, WaterLogLine, WaterRequest

__all__ = ["DEADLINE_KIND", "WaterService", "WaterWatchError", "is_away"]

_REQUEST_PAGE = 100

log = logging.getLogger(__name__)

_ALARMS: dict[str, tuple[TicketKind, bool]] = {
    "zero_use_alarm": ("no_water", True),
    "zero_use_all_clear": ("no_water", False),
    "leak_alarm": ("leak", True),
    "leak_all_clear": ("leak", False),
}
"""Notices that are tickets: the ticket kind, and whether the notice opens (or clears) it."""

_PLAIN = {
    "away_reminder": "water_away_reminder",
    "watch_blind": "water_watch_blind",
    "watch_restored": "water_watch_restored",
    "first_use_today": "water_first_use_today",
}
"""Notices sent as plain SMS, and their templates (`meter_offline` goes to installers, whom
device health tells; the watch is given none)."""


GOOD_NEWS_EVENT = "first_use"
"""The contacts file's `notify` event of a family member who chose to hear, each day, when
water was first used (`gateway.services.grid_import.NOTIFY_EVENTS`)."""

LINK_DOWN_RETRY_S = 600.0
"""A household's clock that comes due while its meter's link is down is looked at again
this much later (the deadline is moved, the watch is not changed)."""


class WaterWatchError(GatewayError):
    """A water-watch command that cannot be done (the household is not watched, ...)."""


@dataclass(slots=True)
class _Entry:
    """A watched household in memory: its watch and its meter."""

    watch: WaterWatch
    meter: str | None
    stored: WaterWatch | None
    """The watch as last written (None: never); a change beyond the reading time is written."""
    from_store: bool = True
    """Loaded from the store and not yet given a reading: its reading time may be old."""


async def _write_deadlines(uow: UnitOfWork, deadlines: Mapping[str, float | None]) -> None:
    """Set the households' watch deadlines (due time) or clear them (None)."""
    due = [Deadline(DEADLINE_KIND, h, at) for h, at in deadlines.items() if at is not None]
    if due:
        await uow.deadlines.set(due)
    cleared = [(DEADLINE_KIND, h) for h, at in deadlines.items() if at is None]
    if cleared:
        await uow.deadlines.clear(cleared)


@dataclass(slots=True)
class _Deferred:
    """A batch's plain writes, gathered: the last watch and deadline per household win."""

    watches: dict[str, WaterWatch] = field(default_factory=dict)
    logs: list[WaterLogLine] = field(default_factory=list)
    deadlines: dict[str, float | None] = field(default_factory=dict)
    """Due time to set, or None to clear."""

    async def watch(self, watch: WaterWatch) -> None:
        self.watches[watch.household] = watch

    async def log(self, lines: Sequence[WaterLogLine]) -> None:
        self.logs.extend(lines)

    async def deadline(self, household: str, due_at: float | None) -> None:
        self.deadlines[household] = due_at

    async def flush(self, uow: UnitOfWork, now: float) -> None:
        if self.watches:
            await uow.water.save_many(list(self.watches.values()), now)
        if self.logs:
            await uow.water.add_log(self.logs)
        await _write_deadlines(uow, self.deadlines)


@dataclass(slots=True)
class _Immediate:
    """The same writes as `_Deferred`, made at once (every step but an ingest batch's)."""

    uow: UnitOfWork
    now: float

    async def watch(self, watch: WaterWatch) -> None:
        await self.uow.water.save(watch, self.now)

    async def log(self, lines: Sequence[WaterLogLine]) -> None:
        await self.uow.water.add_log(lines)

    async def deadline(self, household: str, due_at: float | None) -> None:
        await _write_deadlines(self.uow, {household: due_at})


@dataclass(slots=True)
class _Step:
    """One transaction's work: new watches (cached once committed) and what to do then."""

    uow: UnitOfWork
    now: float
    entries: dict[str, _Entry | None]
    after: list[OnCommit]
    counts: list[str]
    indications: bool = False
    notifications: bool = False
    urgent: bool = False
    """Among the notifications, an urgent one (the outbox's urgent lane must be woken)."""
    deferred: _Deferred | None = None
    """Ingest batches: the watches, record lines and deadlines written once, at the end."""
    deadline: float | None = None
    """The earliest watch deadline set (the scheduler is told once committed)."""

    def writes(self) -> _Deferred | _Immediate:
        """Where this step's plain writes go: gathered for the batch's end, or made at once."""
        return self.deferred or _Immediate(self.uow, self.now)

    async def set_deadline(self, household: str, due_at: float | None) -> None:
        """Set the household's watch deadline (None: clear it)."""
        await self.writes().deadline(household, due_at)
        if due_at is not None:
            self.deadline = due_at if self.deadline is None else min(self.deadline, due_at)


class WaterService:
    """Feeds the zero-use rule from frames, deadlines and commands, and acts on its decisions."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        tickets: TicketService,
        metrics: GatewayMetrics,
        *,
        indications_committed: Callable[[], None] | None = None,
        notifications_committed: Callable[[bool], None] | None = None,
        deadline_set: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._settings = settings.water
        self._rules: WaterRules = settings.water.rules()
        self._zone = ZoneInfo(settings.tickets.timezone)
        self._tickets = tickets
        self._metrics = metrics
        self._indications_committed = indications_committed
        self._notifications_committed = notifications_committed
        self._deadline_set = deadline_set
        self._cache: dict[str, _Entry | None] = {}
        """Household -> its watch; None: looked at and not watched."""
        self._loaded: dict[str, tuple[str, WaterWatch | None]] = {}
        """Met for the first time in the batch being staged: its meter and stored watch."""
        self._unheard: Callable[[str], bool] = lambda _meter: False
        self._requests_wake = asyncio.Event()
        self.requests_applied = 0
        """Requests applied (or refused) so far: a test probe and a log field."""

    def set_unheard(self, unheard: Callable[[str], bool]) -> None:
        """`unheard(meter_id)`: the meter's link is down now (device supervision knows)."""
        self._unheard = unheard

    @property
    def answer_window_s(self) -> float:
        """How long after "are you OK?" a thumbs-up is its answer (the ticket service too)."""
        return self._rules.answer_window_s

    # -- ingest -------------------------------------------------------------------------

    async def stage(self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]) -> OnCommit | None:
        """Readings and key presses of watched households, decided in the ingest transaction."""
        if not self._settings.enabled:
            return None
        new = {
            h
            for f in frames
            if (h := f.state.record.household_code) is not None
            and h not in self._cache
            and _events_of(f.state.record.kind, f.envelope.message, f.inbound.received_at)
        }
        try:
            # The households this batch meets for the first time: three reads for the batch.
            self._loaded.update(await self._load(uow, new))
            return await self._stage(uow, frames)
        finally:
            self._loaded.clear()

    async def _load(
        self, uow: UnitOfWork, households: Collection[str]
    ) -> dict[str, tuple[str, WaterWatch | None]]:
        """Look households up: the watched ones' meter and stored watch, in three reads.

        Those not watched (nobody living alone nor listed, or no water meter) are cached as
        such at once: there is nothing of theirs to commit.
        """
        codes = sorted(households)
        if not codes:
            return {}
        watched = set(self._settings.watch_households) | {
            r.household_code for r in await self._store.grid.residents_of(codes) if r.lives_alone
        }
        meters: dict[str, str] = {}
        for d in await self._store.grid.devices_of(codes):
            if d.kind == "water_meter" and d.household_code is not None:
                meters.setdefault(d.household_code, d.device_id)
        kept = {h: meters[h] for h in codes if h in watched and h in meters}
        stored = await uow.water.watches(list(kept)) if kept else {}
        for household in codes:
            if household not in kept:
                self._cache[household] = None
        return {h: (meter, stored.get(h)) for h, meter in kept.items()}

    async def _stage(self, uow: UnitOfWork, frames: Sequence[AcceptedFrame]) -> OnCommit | None:
        step: _Step | None = None
        for frame in sorted(frames, key=lambda f: (f.state.device_id, f.envelope.position)):
            record = frame.state.record
            household = record.household_code
            message = frame.envelope.message
            if household is None:
                continue
            at = frame.inbound.received_at
            events = _events_of(record.kind, message, at)
            if not events:
                continue
            if household in self._cache and self._cache[household] is None:
                continue  # the usual case for households nobody watches: no work at all
            step = step or _Step(uow, at, {}, [], [], deferred=_Deferred())
            if isinstance(events[0], MeterOnline):
                entry = await self._entry(uow, household, step.entries)
                if entry is None or entry.watch.offline_since is None:
                    step.entries.setdefault(household, entry)
                    continue  # the usual heartbeat: nothing to decide
            step.now = at
            for found in events:
                event = found
                if isinstance(found, SignOfLife) and isinstance(message, KeyEvent):
                    event = await self._press(step, household, message, at)
                await self._apply(step, household, event)
        if step is None:
            return None
        if step.deferred is not None:
            await step.deferred.flush(uow, step.now)
        return self._finish(step)

    async def _press(self, step: _Step, household: str, message: KeyEvent, at: float) -> Event:
        """A long thumbs-up: away or back; a thumbs-up answering "are you OK?"; else life."""
        if message.key != Key.THUMBS_UP:
            return SignOfLife(at, "key")
        if message.long_press:
            # Decided on the committed watch, as `claims_thumbs_up` told the box.
            committed = await self._entry(step.uow, household, {})
            if committed is not None and is_away(committed.watch, at):
                return AwayCleared(at)
            return AwaySet(at, at + AWAY_NOTED_S, None)
        entry = await self._entry(step.uow, household, step.entries)
        if entry is not None and self._answers(entry.watch, at):
            return Answered(at)
        return SignOfLife(at, "key")

    def _answers(self, watch: WaterWatch, at: float) -> bool:
        return (
            watch.phase == Phase.ASKING
            and watch.asked_at is not None
            and watch.asked_at <= at <= watch.asked_at + self._rules.answer_window_s
        )

    async def claims_thumbs_up(
        self, uow: UnitOfWork, household: str, at: float, *, long_press: bool = False
    ) -> IndicationKind | None:
        """The box's words when a thumbs-up is the watch's; None: it is not.

        A thumbs-up within the answer window answers "are you OK?" (ANSWER_NOTED); a long
        one on a watched household's box marks the home away (AWAY_NOTED) or, when it is
        away, back (AWAY_ENDED). Asked by the ticket service before a thumbs-up rates a
        ticket; `stage` then decides the same press the same way, so a press has one meaning.
        """
        if not self._settings.enabled:
            return None
        entry = await self._entry(uow, household, {})
        if entry is None:
            return None
        if long_press:
            return (
                IndicationKind.AWAY_ENDED if is_away(entry.watch, at) else IndicationKind.AWAY_NOTED
            )
        if self._answers(entry.watch, at):
            return IndicationKind.ANSWER_NOTED
        return None

    # -- device supervision -------------------------------------------------------------

    async def on_transitions(
        self, uow: UnitOfWork, transitions: Sequence[Transition]
    ) -> OnCommit | None:
        """A watched household's meter declared offline: the watch is blind, not quiet.

        Runs in the transaction that writes the transitions (`Supervisor.on_transitions`).
        Coming back online is seen in `stage`, from the meter's own frames.
        """
        if not self._settings.enabled:
            return None
        step: _Step | None = None
        for transition in transitions:
            if transition.kind != "offline":
                continue
            device = await uow.devices.get(transition.device_id)
            if device is None or device.kind != "water_meter":
                continue
            household = device.household_code
            if household is None or (household in self._cache and self._cache[household] is None):
                continue
            step = step or _Step(uow, transition.at, {}, [], [])
            step.now = transition.at
            entry = await self._entry(uow, household, step.entries)
            if entry is None or entry.meter != device.device_id:
                step.entries.setdefault(household, entry)
                continue
            heard = await uow.devices.last_heard(device.device_id)
            await self._apply(step, household, MeterOffline(transition.at, heard))
        return self._finish(step) if step is not None else None

    # -- deadlines ----------------------------------------------------------------------

    async def on_due(
        self, uow: UnitOfWork, deadlines: Sequence[Deadline], now: float
    ) -> Callable[[], None] | None:
        """Households whose clock came due: ask, alarm, end away, remind."""
        step = _Step(uow, now, {}, [], [])
        for deadline in deadlines:
            step.now = deadline.due_at
            entry = await self._entry(uow, deadline.subject, step.entries)
            if entry is None:
                continue
            if entry.meter is not None and self._unheard(entry.meter):
                # Its link is down: neither the meter nor the box can be heard, so nothing
                # is decided now (no ask, no alarm on data the outage cut short); looked at
                # again later, and the outage's end restarts the quiet clock.
                later = max(deadline.due_at, now) + LINK_DOWN_RETRY_S
                await step.set_deadline(deadline.subject, later)
                step.counts.append("link_down_postponed")
                continue
            if entry.from_store and entry.meter is not None:
                # Quiet readings are not written into the row: the meter's frames say when
                # it was last heard.
                heard = await uow.devices.last_heard(entry.meter)
                last = entry.watch.last_reading_at
                if heard is not None and (last is None or heard > last):
                    entry.watch = replace(entry.watch, last_reading_at=heard)
                entry.from_store = False
            await self._apply(step, deadline.subject, Due(deadline.due_at))
        return self._finish(step)

    # -- commands -----------------------------------------------------------------------

    async def away(self, household: str, until: float, by: int | None = None) -> None:
        """Mark the home away until `until` (no zero-use alarm until then)."""
        await self._command(household, lambda now: AwaySet(now, until, by))

    async def clear_away(self, household: str) -> None:
        """End away mode by hand."""
        await self._command(household, AwayCleared)

    # -- requests made beside the running gateway ----------------------------------------

    def wake_requests(self) -> None:
        """A request was queued in this process: apply it now rather than at the next poll."""
        self._requests_wake.set()

    async def run(self) -> None:
        """Apply queued requests every `water.requests_poll_s` (or when woken), until cancelled."""
        while True:
            await self.apply_requests()
            self._requests_wake.clear()
            sleeper = asyncio.ensure_future(self._clock.sleep(self._settings.requests_poll_s))
            waker = asyncio.ensure_future(self._requests_wake.wait())
            try:
                await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    async def apply_requests(self) -> int:
        """Apply the queued requests, oldest first, a page per transaction; returns how many."""
        done = 0
        while True:
            forget: list[str | None] = []
            async with self._store.transaction() as uow:
                requests = await uow.water.pending_requests(_REQUEST_PAGE)
                if not requests:
                    break
                now = self._clock.now()
                step = _Step(uow, now, {}, [], [])
                for request in requests:
                    outcome = await self._request(step, request, forget)
                    assert request.id is not None
                    await uow.water.request_done(request.id, now, outcome)
                    log.info(
                        "water-watch request",
                        extra={
                            "household": request.household_code,
                            "action": request.action,
                            "outcome": outcome,
                        },
                    )
            self._finish(step)()
            for household in forget:
                self.forget(household)
            done += len(requests)
        self.requests_applied += done
        return done

    async def _request(  # noqa: PLR0911 - one refusal per reason, said as it is found
        self, step: _Step, request: WaterRequest, forget: list[str | None]
    ) -> str:
        household = request.household_code
        if request.action == "recheck" or household is None:
            forget.append(household)
            return "applied"
        if not self._settings.enabled:
            return "refused: the water watch is off"
        if household in self._cache and self._cache[household] is None:
            # Looked at afresh: its meter or its resident may be new since it was looked at.
            del self._cache[household]
        entry = await self._entry(step.uow, household, step.entries)
        if entry is None:
            return "refused: not watched"
        if request.action == "away":
            until = request.until or 0.0
            if until <= step.now:
                return "refused: the return time has passed"
            await self._apply(step, household, AwaySet(step.now, until, request.by_contact))
            return "applied"
        if not is_away(entry.watch, step.now):
            return "refused: not marked away"
        await self._apply(step, household, AwayCleared(step.now))
        return "applied"

    async def outage_ended(
        self, began_at: float, meter_affected: Callable[[str], bool] | None = None
    ) -> int:
        """Restart the watched households' quiet clocks after an outage; returns how many.

        `meter_affected(meter_id)` picks the households whose meter could not be heard (the
        meters last heard on the link that was down); None: every watched household (the
        gateway itself was down). Chunks of `water.outage_chunk` households, one
        transaction each, so ingest is never held up for long and nothing fires in a burst:
        restarting only moves clocks later.
        """
        after, done = "", 0
        while True:
            households = await self._store.water.households(after, self._settings.outage_chunk)
            if not households:
                return done
            async with self._store.transaction() as uow:
                now = self._clock.now()
                step = _Step(uow, now, {}, [], [])
                for household in households:
                    if meter_affected is not None:
                        entry = await self._entry(uow, household, step.entries)
                        meter = entry.meter if entry is not None else None
                        if meter is None or not meter_affected(meter):
                            continue
                    await self._apply(step, household, OutageEnded(now, began_at))
                    done += 1
            hook = self._finish(step)
            hook()
            after = households[-1]

    async def _command(self, household: str, event: Callable[[float], Event]) -> None:
        async with self._store.transaction() as uow:
            now = self._clock.now()
            step = _Step(uow, now, {}, [], [])
            entry = await self._entry(uow, household, step.entries)
            if entry is None:
                raise WaterWatchError(
                    f"household {household} is not watched (nobody living alone, or no meter)"
                )
            await self._apply(step, household, event(now))
        self._finish(step)()

    # -- applying a decision ------------------------------------------------------------

    async def _entry(
        self, uow: UnitOfWork, household: str, pending: dict[str, _Entry | None]
    ) -> _Entry | None:
        if household in pending:
            return pending[household]
        if household in self._cache:
            cached = self._cache[household]
            return None if cached is None else replace(cached)
        found = self._loaded.get(household)
        if found is None:
            found = (await self._load(uow, [household])).get(household)
            if found is None:
                return None  # not watched (and cached as such)
        meter, stored = found
        return _Entry(stored or new_watch(household), meter, stored, stored is not None)

    async def _apply(self, step: _Step, household: str, event: Event) -> None:
        entry = await self._entry(step.uow, household, step.entries)
        if entry is None:
            step.entries[household] = None
            return
        context = Context(self._zone)
        decision = decide(entry.watch, event, self._rules, context)
        if decision.notices or "first_use_today" in decision.counts:
            # Who is told is looked up only when someone may be told (the day's first use:
            # once a day, for the family who chose to hear it).
            context = Context(self._zone, await self._watchers(step.uow, household))
            decision = decide(entry.watch, event, self._rules, context)
        if isinstance(event, Reading):
            entry.from_store = False
        entry.watch = decision.watch
        step.entries[household] = entry
        await self._write(step, entry, decision)

    async def _watchers(self, uow: UnitOfWork, household: str) -> Watchers:
        info = await uow.grid.household_info(household)
        relatives = [c for c in await uow.grid.household_contacts(household) if c.role == "family"]
        family = tuple(c.id for c in relatives)
        good_news = tuple(
            c.id for c in relatives if c.notify is not None and GOOD_NEWS_EVENT in c.notify
        )
        workers: tuple[int, ...] = ()
        if info is not None:
            workers = tuple(
                c.id for c in await uow.grid.unit_contacts(info.unit_chain, "grid_worker")
            )
        # Installers hear of meters offline from device health, for every device alike.
        return Watchers(
            family=family, community_workers=workers, installers=(), good_news=good_news
        )

    async def _write(self, step: _Step, entry: _Entry, decision: WaterDecision) -> None:
        uow, watch = step.uow, decision.watch
        household = watch.household
        writes = step.writes()
        if (
            entry.stored is None
            or replace(watch, last_reading_at=entry.stored.last_reading_at) != entry.stored
        ):
            await writes.watch(watch)
            entry.stored = watch
        if decision.logs:
            await writes.log(
                [WaterLogLine(household, line.at, line.kind, line.detail) for line in decision.logs]
            )
        match decision.deadline:
            case SetDeadline(due_at):
                await step.set_deadline(household, due_at)
            case ClearDeadline():
                await step.set_deadline(household, None)
        step.counts.extend(decision.counts)
        if decision.asks:
            boxes = [
                d.device_id
                for d in await self._store.grid.devices_of([household])
                if d.kind == "call_box" and d.enabled
            ]
            await uow.indications.add(
                [(box, are_you_ok(self._rules.answer_window_s)) for box in boxes], step.now
            )
            step.indications = step.indications or bool(boxes)
            await self._ask_by_phone(step, household, decision.asks[0].facts)
        for notice in decision.notices:
            await self._notice(step, notice)

    async def _ask_by_phone(self, step: _Step, household: str, facts: Facts) -> None:
        """Ring the resident's own phone with the question; pressing 1 answers it."""
        if not self._settings.ask_by_phone:
            return
        info = await step.uow.grid.household_info(household)
        if info is None or not info.resident_phone:
            return
        params = {
            **_household_params(info),
            **self._params(facts),
            "household": household,
            "minutes": str(round(self._rules.answer_window_s / 60)),
            "away_days": _days(self._settings.away_by_phone_s),
        }
        await step.uow.outbox.enqueue(
            [
                Notification(
                    channel="voice",
                    recipient=info.resident_phone,
                    template=(
                        "water_ask_resident_morning"
                        if facts.reason == "morning"
                        else "water_ask_resident"
                    ),
                    params=params,
                    priority=URGENT,  # the answer window is minutes long
                )
            ],
            step.now,
        )
        step.notifications = True
        step.urgent = True

    async def answered_by_phone(self, household: str) -> None:
        """The resident pressed 1 on the "are you OK?" call: an answer, or a sign of life.

        Within the answer window it cancels the alarm as thumbs-up on the box would; after
        it, the resident is alive and well, so an alarm already raised is cleared.
        """
        await self._command(household, Answered)

    async def away_by_phone(self, household: str) -> None:
        """The resident pressed 2 on the "are you OK?" call: not at home.

        The home is marked away for `water.away_by_phone_s` (the call said how long); water
        used at home after that ends it by itself (gateway.domain.water, `away_settle_s`).
        """
        until = self._clock.now() + self._settings.away_by_phone_s
        await self._command(household, lambda now: AwaySet(now, until, None))

    async def _notice(self, step: _Step, notice: Notice) -> None:
        params = self._params(notice.facts)
        if notice.kind in _ALARMS:
            kind, opens = _ALARMS[notice.kind]
            if opens:
                hook = await self._tickets.open_alarm(
                    step.uow, notice.household, kind, params, notice.facts.at
                )
            else:
                hook = await self._tickets.all_clear(
                    step.uow, notice.household, kind, params, notice.facts.at
                )
            if hook is not None:
                step.after.append(hook)
            return
        template = _PLAIN.get(notice.kind)
        if template is None or not notice.recipients:
            return
        info = await step.uow.grid.household_info(notice.household)
        if info is None:
            return
        people = await step.uow.grid.contacts_by_id(sorted(set(notice.recipients)))
        await step.uow.outbox.enqueue(
            [
                Notification(
                    channel="sms",
                    recipient=person.phone,
                    template=template,
                    params={**_household_params(info), **params},
                    language=person.language,
                    contact_id=person.id,
                    priority=NORMAL,
                )
                for person in people
                if not person.bad_number
            ],
            step.now,
        )
        step.notifications = True

    def _params(self, facts: Facts) -> dict[str, str]:
        """The facts as the words say them: local times, hours of quiet in active hours."""
        params = {"now": self._time(facts.at, facts.at)}
        if facts.quiet_since is not None:
            params["since"] = self._time(facts.quiet_since, facts.at)
        if facts.quiet_active_s is not None:
            params["hours"] = _hours(facts.quiet_active_s)
        if facts.flow_since is not None:
            params["since"] = self._time(facts.flow_since, facts.at)
            params["hours"] = _hours(facts.at - facts.flow_since)
        if facts.away_until is not None:
            params["until"] = self._time(facts.away_until, facts.at)
        if facts.offline_since is not None:
            params["since"] = self._time(facts.offline_since, facts.at)
        if facts.reason == "morning" and facts.routine is not None:
            usual = facts.routine.usual_first_use_by_min
            if usual is not None:
                params["reason"] = "morning"
                params["usual"] = f"{usual // 60:02d}:{usual % 60:02d}"
        if facts.first_use_today_min is not None:
            hour, minute = divmod(facts.first_use_today_min, 60)
            params["first_use"] = f"{hour:02d}:{minute:02d}"
        if facts.cleared_by is not None:
            # A thumbs-up on the box and pressing 1 on the phone both arrive as an answer;
            # only the phone's comes by `answered_by_phone` (the box's is a key press first).
            params["cleared_by"] = {"water": "water", "answer": "answer"}.get(
                facts.cleared_by, "key"
            )
        if facts.away_until is not None and facts.alarm_at is not None:
            params["cleared_by"] = "away"
        return params

    def _time(self, t: float, now: float) -> str:
        """HH:MM when `t` is on the day of `now`, else MM-DD HH:MM (local)."""
        local = datetime.fromtimestamp(t, self._zone)
        if local.date() == datetime.fromtimestamp(now, self._zone).date():
            return local.strftime("%H:%M")
        return local.strftime("%m-%d %H:%M")

    def _finish(self, step: _Step) -> OnCommit:
        """What to do once the transaction has committed: cache, wake, count."""

        def after() -> None:
            for household, entry in step.entries.items():
                self._cache[household] = entry
            if step.notifications and self._notifications_committed is not None:
                self._notifications_committed(step.urgent)
            if step.indications and self._indications_committed is not None:
                self._indications_committed()
            if step.deadline is not None and self._deadline_set is not None:
                self._deadline_set(step.deadline)
            for hook in step.after:
                hook()
            for outcome in step.counts:
                self._metrics.water.labels(outcome).inc()

        return after

    def forget(self, household: str | None = None) -> None:
        """Drop cached watches (one household's, or all) so they are read again when used."""
        if household is None:
            self._cache.clear()
        else:
            self._cache.pop(household, None)


def _events_of(kind: DeviceKind, message: Message, at: float) -> list[Event]:
    """What a frame of a household's device is to its watch."""
    if isinstance(message, WaterReading) and kind == "water_meter":
        reading: list[Event] = [Reading(at, float(message.total_litres))]
        if message.status & MeterStatus.LEAK:
            reading.append(FlowObserved(at, at))
        return reading
    if isinstance(message, KeyEvent) and kind == "call_box":
        return [SignOfLife(at, "key")]
    if kind == "water_meter":
        return [MeterOnline(at)]  # a heartbeat: it ends a blind spell, if any
    return []


def _days(seconds: float) -> str:
    """Whole days as the words say them ("3"), or days and a fraction ("1.5")."""
    days = seconds / 86400
    return f"{days:.0f}" if days == round(days) else f"{days:.1f}"


def is_away(watch: WaterWatch, at: float) -> bool:
    """Whether the home is marked away at `at` (before the first reading too)."""
    return watch.phase == Phase.AWAY or (
        watch.phase == Phase.NEW and watch.away_until is not None and watch.away_until > at
    )


def _hours(seconds: float) -> str:
    """Hours as said in messages: one decimal, without a trailing .0."""
    return f"{seconds / 3600:.1f}".removesuffix(".0")


def _household_params(info: HouseholdInfo) -> dict[str, str]:
    return {"resident": info.resident_name, "place": info.place}
