"""Both providers configured: mainland numbers through Alibaba Cloud, others through Twilio,
each with its own receipts; and which numbers count as mainland."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from alerts.providers.routing import is_mainland
from api.app import http_component
from api.runner import build_provider
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork
from gateway.application import for_service
from gateway.clock import ManualClock
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from tests.api.aliyun_support import aliyun_notify, fake_aliyun
from tests.api.test_aliyun_calls import CHIEF_PHONE, FAMILY_PHONE, SECRETARY_PHONE, Line, _up
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import gateway_settings, load_grid, wait_for

ACCOUNT = "AC" + "4e7a" * 8
TOKEN = "routing-test-auth-token"


@pytest.mark.parametrize(
    ("number", "mainland"),
    [
        ("+8613800000001", True),
        ("008613800000001", True),
        ("13800000001", True),
        ("057188880000", True),
        ("0571-8888-0000", True),
        ("+447700900123", False),
        ("00447700900123", False),
        ("+85291234567", False),  # Hong Kong: abroad for mainland carriers
        ("12345", False),
    ],
)
def test_which_numbers_are_mainland(number: str, mainland: bool) -> None:
    assert is_mainland(number) is mainland


@pytest.fixture
async def both(
    tmp_path: Path, broker: MosquittoBroker, clock: ManualClock
) -> AsyncIterator[tuple[Line, FakePhoneNetwork]]:
    port = free_loopback_port()
    public_url = f"http://127.0.0.1:{port}"
    with fake_aliyun(public_url) as fake, FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        notify = aliyun_notify(
            public_url,
            fake,
            twilio_account_sid=ACCOUNT,
            twilio_auth_token=TOKEN,
            twilio_from="+8657100000000",
            twilio_api_base_url=phones.url,
            bridge_to_resident=False,
            send_timeout_s=20.0,
        )
        settings = gateway_settings(tmp_path, broker, http={"port": port}, notify=notify)
        gw = GatewayService(settings, clock, build_provider(settings))
        gw.add_component("http", http_component(for_service(gw)))
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY, clock=clock.now)
        async with gw:
            await load_grid(gw)
            assert gw.mqtt is not None
            await gw.mqtt.wait_connected(10)
            await wait_for(lambda: asyncio.to_thread(_up, public_url), what="HTTP server up")
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                yield Line(gw, box, fleet, clock, public_url, fake=fake), phones
                await asyncio.to_thread(fake.wait_idle)
                await asyncio.to_thread(phones.wait_idle)


async def test_mainland_numbers_go_through_aliyun_and_others_through_twilio(
    both: tuple[Line, FakePhoneNetwork],
) -> None:
    line, phones = both
    line.fake.phone(SECRETARY_PHONE).digits = ""
    await line.call_for_help()
    await line.until(
        lambda es: len(es) >= 4 and all(e.status == "delivered" for e in es[:4]),
        "every first message delivered, each through its provider",
    )
    family = phones.received(FAMILY_PHONE)
    assert [r.kind for r in family] == ["sms"]
    assert family[0].body.startswith("[Bidao] ")  # English, as the family member asked
    assert not line.fake.received(FAMILY_PHONE)
    assert [r.kind for r in line.fake.received(CHIEF_PHONE)] == ["sms"]
    assert sorted(r.kind for r in line.fake.received(SECRETARY_PHONE)) == ["call", "sms"]
    assert all(r.to == FAMILY_PHONE for r in phones.records)
    entries = {e.recipient: e for e in await line.entries()}
    assert entries[FAMILY_PHONE].provider_id == family[0].sid
