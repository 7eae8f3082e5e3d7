"""Calls for help first: key events and alarms overtake telemetry, urgent messages go on commit.

Each test runs a real gateway on a real SQLite store with the injected ManualClock; frames go
in through the link interface (`Pipeline.submit_nowait`), acks come back through a link
that records them, and the provider is one written for the test. No result depends on how
fast the machine is: backlogs are built before the pipeline may take anything.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import pytest

from alerts import Notification
from alerts.notification import NORMAL, URGENT, Channel
from alerts.providers.base import OutgoingMessage, ProviderError, Receipt, SentItem
from device_sim.device import SimulatedDevice, fleet_identity
from firmware_protocol import AlarmKind, Key, MessageType, position
from gateway.clock import ManualClock
from gateway.ingest.links import InboundFrame, TransportName
from gateway.ingest.pipeline import Lane, lane_of
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import gateway_settings, load_grid, sample, wait_for

SECRETARY_PHONE, CHIEF_PHONE, STRANGER_PHONE = "13800000001", "13800000004", "13900000099"


class RecordingLink:
    """A link at the edge of the test: keeps every downlink it is asked to send."""

    name = "recorder"
    transport: TransportName = "serial"

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def send_downlink(self, device_id: str, frame: bytes) -> None:
        self.sent.append((device_id, frame))

    async def send_replies(self, frames: Sequence[tuple[str, bytes]]) -> None:
        self.sent.extend(frames)


class RecordingProvider:
    """Takes every message at once, except those to `held` numbers, which wait for `release`.

    `on_call`, if set, is called as each message reaches the provider and its answer kept.
    """

    def __init__(self, *held: str, hold_all: bool = False) -> None:
        self.held = set(held)
        self.hold_all = hold_all
        self.release = asyncio.Event()
        self.calls: list[OutgoingMessage] = []
        self.taken: list[OutgoingMessage] = []
        self.waiting = 0
        self.on_call: Callable[[], int] | None = None
        self.seen_at_call: list[int] = []

    @property
    def name(self) -> str:
        return "recording"

    async def send(self, message: OutgoingMessage) -> Receipt:
        self.calls.append(message)
        if self.on_call is not None:
            self.seen_at_call.append(self.on_call())
        if self.hold_all or message.to in self.held:
            self.waiting += 1
            await self.release.wait()
        self.taken.append(message)
        return Receipt(f"SM{len(self.taken):032d}", "queued")

    async def sent_since(self, channel: Channel, to: str, since: float) -> list[SentItem]:
        return []

    async def end_call(self, provider_id: str) -> None:
        raise ProviderError("no calls here")


def fleet_device(index: int, kind: str = "call_box") -> SimulatedDevice:
    device_id, key = fleet_identity(1000 + index)
    return SimulatedDevice(device_id, "call_box" if kind == "call_box" else "water_meter", key)


def submit(
    gw: GatewayService, link: RecordingLink, frame: bytes, settle: Callable[[], None]
) -> None:
    accepted = gw.pipeline.submit_nowait(InboundFrame(frame, link, gw.clock.now(), settle=settle))
    assert accepted, "the pipeline's queue refused a frame"


def acks_to(device: SimulatedDevice, link: RecordingLink) -> None:
    """Hand the device every downlink sent to it."""
    for device_id, frame in link.sent:
        if device_id == device.device_id:
            device.handle_downlink(frame)


@pytest.mark.parametrize(
    ("build", "lane"),
    [
        (lambda d: d.press(Key.GREEN_CALL), "urgent"),
        (lambda d: d.press(Key.THUMBS_DOWN), "urgent"),
        (lambda d: d.alarm(AlarmKind.LEAK), "urgent"),
        (lambda d: d.heartbeat(), "telemetry"),
        (lambda d: d.water_reading(5), "telemetry"),
        (lambda _: b"\x01", "telemetry"),
        (lambda _: b"", "telemetry"),
    ],
)
def test_the_lane_is_chosen_from_the_header_type_byte(
    build: Callable[[SimulatedDevice], bytes], lane: Lane
) -> None:
    assert lane_of(build(fleet_device(0))) == lane


def test_urgent_types_are_the_key_event_and_the_alarm() -> None:
    urgent = {t for t in MessageType if lane_of(bytes([1, t.value]) + bytes(30)) == "urgent"}
    assert urgent == {MessageType.KEY_EVENT, MessageType.DEVICE_ALARM}


@pytest.mark.timeout(180)
async def test_a_green_press_overtakes_ten_thousand_heartbeats(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = RecordingProvider()
    settings = gateway_settings(tmp_path, None, pipeline={"queue_max": 20_000})
    devices = [fleet_device(i) for i in range(100)]
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    link = RecordingLink()
    settled: Counter[str] = Counter()
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        for device in devices:
            await gw.register_device(device.device_id, "call_box", device.key)
        gw.downlinks.add_link(link)
        provider.on_call = lambda: settled["heartbeat"]
        # The whole backlog is queued before the pipeline can take a frame (no await here):
        # 10,000 heartbeats, then the box's own heartbeat, then its green press.
        for n in range(100):
            for device in devices:
                submit(
                    gw, link, device.heartbeat(uptime_s=n), partial(settled.update, ["heartbeat"])
                )
        submit(gw, link, box.heartbeat(uptime_s=1), partial(settled.update, ["box"]))
        submit(gw, link, box.press(Key.GREEN_CALL), partial(settled.update, ["press"]))
        await wait_for(lambda: bool(provider.calls), timeout=60, what="the first notification")
        at_first_call = provider.seen_at_call[0]
        assert len(await gw.store.tickets.all()) == 1
        await wait_for(
            lambda: settled["heartbeat"] == 10_000, timeout=150, what="the backlog drained"
        )
        stored = await gw.store.devices.event_seqs()
        acks_to(box, link)
    print(f"\nheartbeats committed when the provider got the call for help: {at_first_call}")
    assert at_first_call < 2_500, "the call for help waited behind the telemetry backlog"
    assert {m.to for m in provider.calls} >= {SECRETARY_PHONE, CHIEF_PHONE}
    assert settled == {"heartbeat": 10_000, "box": 1, "press": 1}
    assert len(stored) == len(set(stored)) == 10_002
    # The box's earlier heartbeat went with its press (never behind it), in the device's order.
    own = [i for i, (device_id, _) in enumerate(stored) if device_id == BOX_ID]
    assert [stored[i][1] for i in own] == [position(1, 1), position(1, 2)]
    assert own[1] < 2_500
    assert box.acked == {1, 2}
    assert not box.pending
    # Where the press's time went inside the gateway is counted, stage by stage.
    stages = ("queued", "screened", "writer_wait", "write", "acked")
    counts = {s: sample(gw, "bidao_urgent_stage_seconds_count", stage=s) for s in stages}
    assert counts == {
        "queued": 2.0,
        "screened": 1.0,
        "writer_wait": 1.0,
        "write": 1.0,
        "acked": 1.0,
    }


async def test_a_green_press_is_committed_before_writes_that_waited_for_the_store_earlier(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = RecordingProvider()
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    link = RecordingLink()
    seen_by_ordinary: list[int] = []
    async with GatewayService(gateway_settings(tmp_path, None), clock, provider) as gw:
        await load_grid(gw)
        gw.downlinks.add_link(link)
        store = gw.store
        release = asyncio.Event()
        holding = asyncio.Event()

        async def hold() -> None:  # a long transaction (a telemetry batch, an import chunk)
            async with store.transaction():
                holding.set()
                await release.wait()

        async def ordinary() -> None:  # queued for the writer before the press arrives
            async with store.transaction():
                seen_by_ordinary.append(len(await store.tickets.all()))

        held = asyncio.create_task(hold())
        await holding.wait()
        queued = asyncio.create_task(ordinary())
        await wait_for(lambda: store.writers_waiting() == (0, 1), what="the ordinary waiter")
        submit(gw, link, box.press(Key.GREEN_CALL), lambda: None)
        await wait_for(lambda: store.writers_waiting() == (1, 1), what="the press waits too")
        release.set()
        await asyncio.gather(held, queued)
        await wait_for(lambda: bool(provider.calls), timeout=60, what="the call for help")
        acks_to(box, link)
    assert seen_by_ordinary == [1], "the press's ticket was committed before the earlier waiter"
    assert box.acked == {1}


def normal(phone: str) -> Notification:
    return Notification(
        "sms",
        phone,
        "ticket_call",
        {"resident": "张桂兰", "place": "桥元村三组", "ticket": "9"},
        priority=NORMAL,
    )


DAUGHTER_PHONE = "+447700900123"


async def test_an_urgent_notification_is_claimed_on_commit_beside_a_slow_normal_send(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = RecordingProvider(STRANGER_PHONE)
    notify = {"concurrency": 1, "urgent_concurrency": 2, "send_timeout_s": 3600}
    settings = gateway_settings(tmp_path, None, notify=notify)
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    link = RecordingLink()
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        gw.downlinks.add_link(link)
        started = clock.now()
        async with gw.store.transaction() as uow:
            await uow.outbox.enqueue([normal(STRANGER_PHONE)], started)
        gw.outbox.wake()
        await wait_for(lambda: provider.waiting == 1, what="the normal send hangs")
        submit(gw, link, box.press(Key.GREEN_CALL), lambda: None)
        # The secretary's call and SMS are urgent; the chief is only informed (normal).

        async def secretary_told() -> bool:
            entries = await gw.store.outbox.entries()
            return [e.status for e in entries if e.recipient == SECRETARY_PHONE] == ["sent"] * 2

        await wait_for(secretary_told, what="the call for help handed over beside the slow send")
        assert clock.now() == started, "the clock never moved: no poll interval passed"
        assert provider.waiting == 1
        entries = await gw.store.outbox.entries()
        states = [(e.recipient, e.priority >= URGENT, e.status) for e in entries]
        assert states == [
            (STRANGER_PHONE, False, "sending"),
            (SECRETARY_PHONE, True, "sent"),
            (SECRETARY_PHONE, True, "sent"),
            (CHIEF_PHONE, False, "pending"),  # the only normal slot is taken
            (DAUGHTER_PHONE, False, "pending"),  # the family is told, not asked to act
        ]
        provider.release.set()
        await wait_for(lambda: len(provider.taken) == 5, what="the normal sends go")
    assert [m.to for m in provider.taken][2:] == [STRANGER_PHONE, CHIEF_PHONE, DAUGHTER_PHONE]


async def test_a_provider_blocked_forever_does_not_block_ingest_commits(
    tmp_path: Path, clock: ManualClock
) -> None:
    provider = RecordingProvider(hold_all=True)
    settings = gateway_settings(tmp_path, None, notify={"send_timeout_s": 3600})
    box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    devices = [fleet_device(i) for i in range(10)]
    link = RecordingLink()
    async with GatewayService(settings, clock, provider) as gw:
        await load_grid(gw)
        for device in devices:
            await gw.register_device(device.device_id, "call_box", device.key)
        gw.downlinks.add_link(link)
        submit(gw, link, box.press(Key.GREEN_CALL), lambda: None)
        await wait_for(lambda: provider.waiting >= 2, what="the provider hangs on two numbers")
        for n in range(20):
            for device in devices:
                submit(gw, link, device.heartbeat(uptime_s=n), lambda: None)
        submit(gw, link, box.press(Key.RED_HANGUP), lambda: None)
        await wait_for(lambda: len(link.sent) >= 202, what="every frame acked")
        assert await gw.store.devices.count_events() == 202
        assert provider.taken == []
        assert provider.waiting >= 2
    for device in devices:
        acks_to(device, link)
        assert not device.pending


@pytest.mark.timeout(120)
async def test_a_forged_flood_on_the_urgent_lane_does_not_stop_telemetry_acks(
    tmp_path: Path, clock: ManualClock
) -> None:
    pipeline = {"urgent_batch_max": 8, "urgent_burst": 2, "batch_max": 50}
    settings = gateway_settings(tmp_path, None, pipeline=pipeline)
    meters = [fleet_device(i, "water_meter") for i in range(10)]
    victim = fleet_device(99)
    forger = SimulatedDevice(victim.device_id, "call_box", bytes(16))
    link = RecordingLink()
    settled: Counter[str] = Counter()
    forged_at_first_reading: list[int] = []

    def reading_settled() -> None:
        if not settled["reading"]:
            forged_at_first_reading.append(settled["forged"])
        settled["reading"] += 1

    async with GatewayService(settings, clock) as gw:
        await gw.register_device(victim.device_id, "call_box", victim.key)
        for meter in meters:
            await gw.register_device(meter.device_id, "water_meter", meter.key)
        gw.downlinks.add_link(link)
        for _ in range(2_000):
            submit(gw, link, forger.press(Key.GREEN_CALL), partial(settled.update, ["forged"]))
        for n in range(20):
            for meter in meters:
                submit(gw, link, meter.water_reading(n), reading_settled)
        await wait_for(lambda: settled["reading"] == 200, timeout=90, what="readings acked")
        await wait_for(lambda: settled["forged"] == 2_000, timeout=90, what="forgeries settled")
        bad_mac = sample(gw, "bidao_frames_rejected_total", transport="serial", reason="bad_mac")
        yields = sample(gw, "bidao_pipeline_urgent_yields_total")
        events = await gw.store.devices.count_events()
    print(f"\nforged frames handled before the first reading was acked: {forged_at_first_reading}")
    # At most `urgent_burst` urgent batches, and the one in flight, before telemetry's turn.
    assert forged_at_first_reading[0] <= (2 + 1) * 8
    assert bad_mac == 2_000
    assert yields >= 1
    assert events == 200
    for meter in meters:
        acks_to(meter, link)
        assert meter.acked == set(range(1, 21))
