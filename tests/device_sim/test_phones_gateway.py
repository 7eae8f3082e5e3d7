"""The fake phone network against the real gateway: what the secretary hears is the truth.

The gateway's webhooks serve the TwiML, the real twilio library places the calls, and
`bidao sim phones received` (a subprocess) shows what the phones got.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from alerts import render
from api.app import http_component
from api.runner import build_provider
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork
from firmware_protocol import IndicationKind, Key
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY, CONTACTS_CSV, HOUSEHOLDS_CSV
from tests.gateway.support import gateway_settings, load_grid, twilio_notify, wait_for

ACCOUNT = "AC" + "b1da" * 8
TOKEN = "fake-network-auth-token"
SECRETARY_PHONE, RESIDENT_PHONE = "13800000001", "13912345678"
CALLED = (
    f"【必到】张桂兰（桥元村三组12号，电话{RESIDENT_PHONE}）按下了呼叫键，请尽快联系或上门。工单1。"
)
"""The first words of the call: the SMS as it is, with the address and the resident's phone."""


@dataclass
class Village:
    gw: GatewayService
    phones: FakePhoneNetwork
    box: SimulatedDevice
    fleet: MqttFleet
    names: list[str]


@pytest.fixture
async def village(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[Village]:
    port = free_loopback_port()
    public_url = f"http://127.0.0.1:{port}"
    names: list[str] = []
    for name, text in (("contacts.csv", CONTACTS_CSV), ("households.csv", HOUSEHOLDS_CSV)):
        (tmp_path / name).write_text(text, encoding="utf-8")
        names += ["--names", str(tmp_path / name)]
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        settings = gateway_settings(
            tmp_path,
            broker,
            http={"port": port},
            notify=twilio_notify(public_url, phones),
        )
        gw = GatewayService(settings, clock, build_provider(settings))
        gw.add_component("http", http_component(for_service(gw)))
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        async with gw:
            await load_grid(gw)
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            await wait_for(lambda: asyncio.to_thread(_up, public_url), what="HTTP server up")
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                yield Village(gw, phones, box, fleet, names)
                await asyncio.to_thread(phones.wait_idle)


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1):
            return True
    except OSError:
        return False


def received(village: Village, *argv: str) -> str:
    """`bidao sim phones received` in its own process; its output."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.entry import main; raise SystemExit(main())",
            "sim",
            "phones",
            "received",
            "--url",
            village.phones.url,
            "--tz",
            "Asia/Shanghai",
            *village.names,
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def secretary_call_over(village: Village) -> None:
    await village.fleet.send(BOX_ID, village.box.press(Key.GREEN_CALL))

    def over() -> bool:
        calls = [r for r in village.phones.received(SECRETARY_PHONE) if r.kind == "call"]
        return bool(calls) and calls[0].statuses[-1:] == ["completed"]

    await wait_for(over, timeout=60, what="the secretary's call is over")
    await asyncio.to_thread(village.phones.wait_idle)


def said(template: str) -> str:
    """A fixed voice text as the gateway words it in Chinese."""
    return render(template, "zh-CN", {})


async def test_the_secretary_hears_the_call_presses_1_and_hears_what_follows(
    village: Village,
) -> None:
    await secretary_call_over(village)
    entries: list[dict[str, Any]] = json.loads(
        await asyncio.to_thread(
            received, village, "--ticket", "1", "--to", SECRETARY_PHONE, "--json"
        )
    )
    call = next(e for e in entries if e["channel"] == "call")
    assert (call["name"], call["role"], call["pressed"], call["tickets"]) == (
        "李书记",
        "village_secretary",
        "1",
        [1],
    )
    heard = [(h["kind"], h["text"]) for h in call["transcript"]]
    assert heard == [
        # The call reads the SMS as it is, signature included: the house address as imported
        # and the resident's phone, which is the number the call is then put through to.
        ("say", CALLED),
        ("say", said("voice_menu")),
        ("keypress", "1"),
        ("say", said("voice_accepted")),
        ("say", said("voice_connecting")),
        ("dial", RESIDENT_PHONE),
        ("end", "hangup"),
    ]
    assert all(said("voice_no_input") not in text for _kind, text in heard)
    # What the accepted words promise happened: the box says someone is coming ...
    assert IndicationKind.HELPER_ON_THE_WAY in [i.kind for i in village.box.indications]

    # ... and an SMS tells the secretary how to report arriving (a long green press).
    def reports() -> list[str]:
        return [
            r.body
            for r in village.phones.received(SECRETARY_PHONE)
            if r.kind == "sms" and r.body.startswith("【必到】您已接下工单1：")
        ]

    await wait_for(lambda: bool(reports()), what="the SMS on how to report")
    await asyncio.to_thread(village.phones.wait_idle)
    assert len(reports()) == 1
    assert "到达后请在老人的呼叫盒上长按绿键，记录您已到达" in reports()[0]

    shown = await asyncio.to_thread(received, village, "--ticket", "1")
    assert "    按键 pressed：1" in shown.splitlines()
    assert "    转接 put through to：13912345678 张桂兰（居民） → 已接听 answered" in shown
    assert "没有收到按键" not in shown


async def test_nine_repeats_the_call_and_no_key_is_told_goodbye(village: Village) -> None:
    village.phones.script(SECRETARY_PHONE).digits = "9,"
    await secretary_call_over(village)
    (call,) = [r for r in village.phones.received(SECRETARY_PHONE) if r.kind == "call"]
    first = CALLED
    assert [(h.kind, h.text) for h in call.transcript] == [
        ("say", first),
        ("say", said("voice_menu")),
        ("keypress", "9"),
        ("say", first),
        ("say", said("voice_menu")),
        ("no_key", "8"),
        ("say", said("voice_no_input")),
        ("end", "done"),
    ]
    assert (call.pressed, call.statuses[-1]) == ("9", "completed")


async def test_a_long_press_from_the_command_line_reaches_the_real_gateway(
    village: Village, broker: MosquittoBroker, tmp_path: Path
) -> None:
    argv = [
        *("--port", str(broker.port), "--device-id", BOX_ID, "--key", BOX_KEY.hex()),
        *("--state-dir", str(tmp_path / "sim"), "--session", "7", "--timeout", "20"),
    ]
    done = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-c",
            "from api.entry import main; raise SystemExit(main())",
            *("sim", "box", *argv, "press", "green", "--long"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"acked: {BOX_ID} session 7 seq 1" in done.stdout
    # With no ticket open, a green press, long or short, is a call for help.
    assert [t.id for t in await village.gw.store.tickets.all()] == [1]
