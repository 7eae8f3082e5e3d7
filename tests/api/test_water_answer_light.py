"""The box's amber "are you OK?" light lasts as long as the answer window the gateway is set to.

Her meter and box talk MQTT to a real broker; the clock is the test's. The indication the box
receives is decoded by the simulated box, which shows its light as firmware would, from the
protocol's table (firmware_protocol/indications.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice, box_says
from firmware_protocol import IndicationKind
from firmware_protocol.indications import ARE_YOU_OK_PROMPTS, are_you_ok, heard
from gateway.clock import ManualClock
from gateway.config import load_settings
from gateway.errors import ConfigError
from gateway.runtime.broker import MosquittoBroker
from tests.api.test_water_watch import (
    DAUGHTER_PHONE,
    GRID_WORKER_PHONE,
    METER_ID,
    METER_KEY,
    RESIDENT_PHONE,
    Home,
    eight_quiet_hours_after_breakfast,
    yesterday_at,
)
from tests.api.village import open_village
from tests.gateway.grid import HOUSEHOLD

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
async def home(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[Home]:
    """Her home from 05:00 yesterday, with a five-minute answer window."""
    clock = ManualClock(start=yesterday_at(5))
    meter = SimulatedDevice(METER_ID, "water_meter", METER_KEY, clock=clock.now)
    async with open_village(
        tmp_path, broker, clock, devices=[(meter, HOUSEHOLD)], water={"answer_window_s": 300}
    ) as v:
        v.phones.script(RESIDENT_PHONE).digits = ""
        v.phones.script(GRID_WORKER_PHONE).digits = ""
        v.phones.script(DAUGHTER_PHONE).digits = ""
        h = Home(v)
        await h.reading()
        await h.heartbeat()
        yield h


async def test_the_amber_light_lasts_the_answer_window(home: Home) -> None:
    h, v = home, home.v
    await eight_quiet_hours_after_breakfast(h)
    asked = [i for i in v.box.indications if i.kind == IndicationKind.ARE_YOU_OK]
    assert len(asked) == 1
    said = heard(asked[0])
    assert said is not None
    assert (said.prompt, said.led_s) == (12, 300)
    assert "LED amber blinking 500/1500 ms for 300 s" in box_says(asked[0])
    assert said.zh == "您还好吗？平安请按大拇指向上键；需要帮助请按绿键。"
    # Five minutes without an answer (the light out): the alarm goes out.
    await h.passes(15 * 60)
    assert (await v.sms_to(DAUGHTER_PHONE, 1))[0].startswith("[Bidao] Water alarm: 张桂兰")


def test_every_window_has_a_light_of_its_length_and_the_same_words() -> None:
    for window_s, prompt in ARE_YOU_OK_PROMPTS.items():
        message = are_you_ok(window_s)
        said = heard(message)
        assert said is not None
        assert (message.voice_prompt, said.led_s, said.kind) == (
            prompt,
            window_s,
            IndicationKind.ARE_YOU_OK,
        )
        assert said.en.startswith("Are you OK?")


def test_a_window_the_box_cannot_show_is_refused_plainly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(data_dir=tmp_path, water={"answer_window_s": 420})
    assert str(refused.value) == (
        "setting 'water.answer_window_s': the call box's amber light can last 300, 600, 900, "
        "1200, 1800 s; answer_window_s 420 is none of them"
    )
    with pytest.raises(ValueError, match="no 'are you OK\\?' prompt for 420 s"):
        are_you_ok(420)
