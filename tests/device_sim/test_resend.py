"""The simulator's transports resend as firmware does: they wait the backoff on the clock
they are given (2 s, 4 s, 8 s ... with jitter), green calls and alarms first, and any ACK
starts the backoff again. Time is a ManualClock: nothing here sleeps for a result."""

from __future__ import annotations

import asyncio

import pytest

import firmware_protocol as fp
from device_sim.device import BACKOFF_FIRST_S, SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.resend import Resender
from device_sim.serial import SerialConcentrator
from firmware_protocol import Key
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker
from tests.device_sim.support import BOX_ID, BOX_KEY, EchoGateway, ack_of, gateway, wait_until

pytestmark = pytest.mark.usefixtures("no_leaked_tasks")

LOW = 1 - 0.2
"""The jitter factor these boxes draw: always the lowest, -20 %."""


class _Lowest:
    """A jitter source that always gives the lowest value."""

    def uniform(self, low: float, _high: float) -> float:
        return low


def steady_box(clock: ManualClock) -> SimulatedDevice:
    device = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
    device.jitter = _Lowest()
    return device


def waits(resender: Resender | None) -> list[float]:
    assert resender is not None
    return [seconds for _, seconds in resender.waits]


async def test_an_mqtt_box_waits_its_backoff_and_any_ack_starts_it_again(
    broker: MosquittoBroker, echo: EchoGateway, clock: ManualClock
) -> None:
    box = steady_box(clock)
    echo.silent = True
    async with MqttFleet("127.0.0.1", broker.port, [box], clock=clock) as fleet:
        resender = fleet.resender
        red, green = box.press(Key.RED_HANGUP), box.press(Key.GREEN_CALL)
        await fleet.send(BOX_ID, red)
        await fleet.send(BOX_ID, green)
        await asyncio.to_thread(echo.wait, lambda: len(echo.uplinks) == 2)
        await wait_until(lambda: waits(resender) == [2 * LOW])
        await clock.advance(2 * LOW - 0.01)
        assert box.unanswered == 0  # not yet: nothing resent before the wait is over
        await clock.advance(0.01)
        # The queue again, the green call first; then the backoff doubles.
        await asyncio.to_thread(echo.wait, lambda: len(echo.uplinks) == 4)
        assert [e.seq for e in echo.uplinks[2:]] == [2, 1]
        await wait_until(lambda: waits(resender) == [2 * LOW, 4 * LOW])
        await clock.advance(4 * LOW - 0.01)
        assert box.unanswered == 1
        await clock.advance(0.01)
        await asyncio.to_thread(echo.wait, lambda: len(echo.uplinks) == 6)
        await wait_until(lambda: waits(resender) == [2 * LOW, 4 * LOW, 8 * LOW])
        # The gateway acks the red key only: the backoff starts again from 2 s, at once.
        await asyncio.to_thread(
            echo.send, BOX_ID, fp.Ack(1, fp.AckCode.ACCEPTED, 1, red[-8:-4]), seq=0
        )
        await wait_until(lambda: waits(resender)[-1:] == [2 * LOW] and len(waits(resender)) == 4)
        assert box.backoff_s == BACKOFF_FIRST_S
        await clock.advance(2 * LOW)
        await asyncio.to_thread(echo.wait, lambda: len(echo.uplinks) == 7)
        assert echo.uplinks[-1].seq == 2  # only the call still waits
        await wait_until(lambda: len(waits(resender)) == 5)
        echo.silent = False
        await clock.advance(4 * LOW)
        await fleet.wait_all_acked(10)
        assert box.acked == {1, 2}
        # Nothing waits: no timer runs, however long the box stays quiet.
        await clock.advance(3600)
        assert len(echo.uplinks) == 8
        assert box.backoff_s == BACKOFF_FIRST_S


async def test_a_serial_box_waits_its_backoff_too(clock: ManualClock) -> None:
    box = steady_box(clock)
    async with SerialConcentrator([box], clock=clock) as line, gateway(line) as gw:
        beat = box.heartbeat()
        await line.send(BOX_ID, beat)
        assert [e.seq for e in await gw.read_frames(1)] == [1]
        await wait_until(lambda: waits(line.resender) == [2 * LOW])
        await clock.advance(2 * LOW)
        [again] = await gw.read_items(1)
        assert again == beat  # the same bytes
        await wait_until(lambda: waits(line.resender) == [2 * LOW, 4 * LOW])
        await gw.write(ack_of(beat))
        await line.wait_all_acked(5)
        assert (box.backoff_s, box.unanswered) == (BACKOFF_FIRST_S, 0)
        await clock.advance(3600)
        assert waits(line.resender) == [2 * LOW, 4 * LOW]  # idle: nothing waits


async def test_without_a_clock_the_caller_resends(clock: ManualClock) -> None:
    box = steady_box(clock)
    async with SerialConcentrator([box]) as line, gateway(line) as gw:
        assert line.resender is None
        await line.send(BOX_ID, box.heartbeat())
        await gw.read_frames(1)
        assert await line.retransmit_pending() == 1
        await gw.read_frames(1)
