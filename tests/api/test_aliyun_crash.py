"""The sender killed between Alibaba Cloud taking a call and the row recording it: the
call's receipt, pushed again until the restarted gateway takes it, settles it; nothing is
sent twice."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from device_sim.aliyun import AliyunRecord, FakeAliyun
from device_sim.device import SimulatedDevice
from device_sim.mqtt import MqttFleet
from firmware_protocol import Key
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from tests.api.aliyun_support import aliyun_notify, fake_aliyun
from tests.api.test_notify_crash import prepare
from tests.gateway.grid import BOX_ID, BOX_KEY
from tests.gateway.support import send_until_acked, start_gateway, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SECRETARY_PHONE, CHIEF_PHONE = "13800000001", "13800000004"


def toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f'"{k}" = "{v}"' for k, v in value.items()) + " }"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def write_config(tmp_path: Path, broker: MosquittoBroker, fake: FakeAliyun, http: int) -> Path:
    notify = aliyun_notify(f"http://127.0.0.1:{http}", fake, call_retry_after_s=3600)
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "gateway"}"\n'
        'log_format = "text"\nlog_level = "WARNING"\n'
        "[mqtt]\n"
        f"embedded_broker = false\nport = {broker.port}\n"
        'client_id = "bidao-aliyun-crash"\nreconnect_initial_s = 0.05\nreconnect_max_s = 0.5\n'
        f"[http]\nport = {http}\n"
        "[notify]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in notify.items()),
        encoding="utf-8",
    )
    return config


def outbox(db: Path) -> list[tuple[str, str, int]]:
    """(status, provider id, attempts) of every notification."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            rows = conn.execute(
                "SELECT status, coalesce(provider_id, ''), attempts FROM notifications ORDER BY id"
            )
            return [(r[0], r[1], r[2]) for r in rows]
    except sqlite3.OperationalError:
        return []


async def test_sender_killed_after_aliyun_took_the_call_sends_nothing_twice(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    log = tmp_path / "gateway.log"
    db = tmp_path / "gateway" / "bidao.db"
    http = free_loopback_port()
    with fake_aliyun(f"http://127.0.0.1:{http}") as fake:
        fake.push_retry_s = 0.2
        config = write_config(tmp_path, broker, fake, http)
        await prepare(config)
        gateway = start_gateway(config, log)
        killed = threading.Event()

        def crash(record: AliyunRecord) -> None:
            # Alibaba Cloud has taken the call; the gateway dies before the answer.
            if record.kind == "call" and not killed.is_set():
                gateway.kill()
                gateway.wait()
                killed.set()

        fake.before_reply = crash
        box = SimulatedDevice(BOX_ID, "call_box", BOX_KEY)
        try:
            async with MqttFleet("127.0.0.1", broker.port, [box]) as fleet:
                await send_until_acked(fleet, box, box.press(Key.GREEN_CALL))
                await wait_for(killed.is_set, timeout=60, what="killed at the provider's answer")
                assert outbox(db)[0] == ("sending", "", 1)  # in doubt: taken, not recorded
                gateway = start_gateway(config, log)

                def settled() -> bool:
                    rows = outbox(db)
                    return (
                        len(rows) >= 6
                        and rows[0][0] == "delivered"
                        and all(r[0] in ("sent", "delivered", "failed") for r in rows)
                    )

                await wait_for(settled, timeout=90, what="the call settled by its receipt")
            await asyncio.to_thread(fake.wait_idle, 30)
            gateway.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(gateway.wait, 30) == 0, log.read_text()[-3000:]
        finally:
            if gateway.poll() is None:
                gateway.kill()
                gateway.wait()
        rows = outbox(db)
        # Each message taken is owned by one row, and each row's by one message taken: by its
        # BizId/CallId, or as out-<OutId> when the in-doubt lookup found it (the SMS listing
        # gives no BizId), whichever sends were in flight when the sender was killed.
        taken = sorted(
            r.id if r.id in {sid for _, sid, _ in rows} else f"out-{r.out_id}" for r in fake.records
        )
        assert taken == sorted(sid for _, sid, _ in rows if sid)
        assert rows[0][2] == 1  # the call in doubt was settled, not placed again
        to_secretary = [r.kind for r in fake.received(SECRETARY_PHONE)]
        assert to_secretary.count("call") == 1
        assert [r.kind for r in fake.received(CHIEF_PHONE)] == ["sms", "sms"]
