"""The sender killed between the provider taking a call and the row recording it."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from device_sim.phones import FakePhoneNetwork, Record
from firmware_protocol import Key
from gateway.config import load_settings
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from gateway.runtime.service import GatewayService
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import load_grid, send_until_acked, start_gateway, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ACCOUNT = "AC" + "c0ffee00" * 4
TOKEN = "crash-test-token"
SECRETARY_PHONE, CHIEF_PHONE = "13800000001", "13800000004"


def write_config(tmp_path: Path, broker: MosquittoBroker, phones: FakePhoneNetwork) -> Path:
    http = free_loopback_port()
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "gateway"}"\n'
        'log_format = "text"\nlog_level = "WARNING"\n'
        "[mqtt]\n"
        f"embedded_broker = false\nport = {broker.port}\n"
        'client_id = "bidao-notify-crash"\nreconnect_initial_s = 0.05\nreconnect_max_s = 0.5\n'
        f"[http]\nport = {http}\n"
        "[notify]\n"
        'provider = "twilio"\n'
        f'public_url = "http://127.0.0.1:{http}"\n'
        f'twilio_account_sid = "{ACCOUNT}"\ntwilio_auth_token = "{TOKEN}"\n'
        'twilio_from = "+8657100000000"\n'
        f'twilio_api_base_url = "{phones.url}"\n'
        "call_retry_after_s = 3600\n"
    )
    return config


def outbox(db: Path, *, retries: bool = False) -> list[tuple[str, str, int]]:
    """(status, provider id, attempts) of every notification (with `retries`, only the calls
    to be placed again after no answer; without, every other)."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            rows = conn.execute(
                "SELECT status, coalesce(provider_id, ''), attempts FROM notifications"
                " WHERE (coalesce(origin_kind, '') = 'retry') = ? ORDER BY id",
                (retries,),
            )
            return [(r[0], r[1], r[2]) for r in rows]
    except sqlite3.OperationalError:
        return []


async def prepare(config: Path) -> None:
    service = GatewayService(load_settings(config))
    await service.store.open()
    try:
        await load_grid(service)
    finally:
        await service.store.close()


async def test_sender_killed_after_the_provider_took_the_call_sends_nothing_twice(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    log = tmp_path / "gateway.log"
    db = tmp_path / "gateway" / "bidao.db"
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        phones.script(SECRETARY_PHONE).digits = ""
        config = write_config(tmp_path, broker, phones)
        await prepare(config)
        gateway = start_gateway(config, log)
        killed = threading.Event()

        def crash(record: Record) -> None:
            # The network has taken the call; the gateway dies before the answer. Sends run
            # concurrently, so an SMS may be taken (and answered) before the call is.
            if record.kind == "call" and not killed.is_set():
                gateway.kill()
                gateway.wait()
                killed.set()

        phones.before_reply = crash
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
        try:
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                await send_until_acked(fleet, box, box.press(Key.GREEN_CALL))
                await wait_for(killed.is_set, timeout=60, what="killed at the provider's answer")
                assert outbox(db)[0] == ("sending", "", 1)  # in doubt: taken, not recorded
                # What the dead gateway had sent is handled before it is back, as a provider
                # does long before a real restart: one it has not listed yet would (by
                # design) be sent again at once.
                await asyncio.to_thread(phones.wait_answered)
                gateway = start_gateway(config, log)

                def all_handed_over() -> bool:
                    rows = outbox(db)
                    return len(rows) >= 3 and all(r[0] in ("sent", "delivered") for r in rows)

                await wait_for(all_handed_over, timeout=60, what="everything handed over")
            await asyncio.to_thread(phones.wait_idle)
            gateway.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(gateway.wait, 30) == 0, log.read_text()[-3000:]
        finally:
            if gateway.poll() is None:
                gateway.kill()
                gateway.wait()
        rows = outbox(db)
        taken = [r.sid for r in phones.records if not r.parent_sid]
        assert sorted(taken) == sorted(sid for _, sid, _ in rows)  # each taken once, owned once
        assert rows[0][2] == 1  # the call in doubt was found at the provider, not placed again
        # It was answered with no key (as its lost callbacks would have said): the secretary
        # is to be called again, as after any unanswered call (`call_retry_after_s`, an hour).
        assert outbox(db, retries=True) == [("pending", "", 0)]
        to_secretary = [r.kind for r in phones.received(SECRETARY_PHONE)]
        assert sorted(to_secretary) == ["call", "sms"]
        assert [r.kind for r in phones.received(CHIEF_PHONE)] == ["sms"]
