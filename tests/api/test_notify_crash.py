"""The sender killed between the provider taking a call and the row recording it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from device_sim.phones import FakePhoneNetwork
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from tests.api.crash_support import CrashedGateway, outbox, write_config
from tests.gateway.support import twilio_notify, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ACCOUNT = "AC" + "c0ffee00" * 4
TOKEN = "crash-test-token"
SECRETARY_PHONE, CHIEF_PHONE = "13800000001", "13800000004"


async def test_sender_killed_after_the_provider_took_the_call_sends_nothing_twice(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    http = free_loopback_port()
    with FakePhoneNetwork(ACCOUNT, TOKEN) as phones:
        phones.script(SECRETARY_PHONE).digits = ""
        notify = twilio_notify(f"http://127.0.0.1:{http}", phones, call_retry_after_s=3600)
        config = write_config(tmp_path, broker, "bidao-notify-crash", http, notify)
        async with CrashedGateway(config) as gateway:
            phones.before_reply = gateway.kill_at_the_call
            async with gateway.pressed_until_killed(broker):
                # What the dead gateway had sent is handled before it is back, as a provider
                # does long before a real restart: one it has not listed yet would (by
                # design) be sent again at once.
                await asyncio.to_thread(phones.wait_answered)
                gateway.start()

                def all_handed_over() -> bool:
                    rows = outbox(gateway.db, retries=False)
                    return len(rows) >= 3 and all(r[0] in ("sent", "delivered") for r in rows)

                await wait_for(all_handed_over, timeout=60, what="everything handed over")
            await asyncio.to_thread(phones.wait_idle)
            await gateway.stop()
        rows = outbox(gateway.db, retries=False)
        taken = [r.sid for r in phones.records if not r.parent_sid]
        assert sorted(taken) == sorted(sid for _, sid, _ in rows)  # each taken once, owned once
        assert rows[0][2] == 1  # the call in doubt was found at the provider, not placed again
        # It was answered with no key (as its lost callbacks would have said): the secretary
        # is to be called again, as after any unanswered call (`call_retry_after_s`, an hour).
        assert outbox(gateway.db, retries=True) == [("pending", "", 0)]
        to_secretary = [r.kind for r in phones.received(SECRETARY_PHONE)]
        assert sorted(to_secretary) == ["call", "sms"]
        assert [r.kind for r in phones.received(CHIEF_PHONE)] == ["sms"]
