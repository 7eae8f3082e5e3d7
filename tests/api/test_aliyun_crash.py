"""The sender killed between Alibaba Cloud taking a call and the row recording it: the
call's receipt, pushed again until the restarted gateway takes it, settles it; nothing is
sent twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from tests.api.aliyun_support import aliyun_notify, fake_aliyun
from tests.api.crash_support import CrashedGateway, outbox, write_config
from tests.gateway.support import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SECRETARY_PHONE, CHIEF_PHONE = "13800000001", "13800000004"


async def test_sender_killed_after_aliyun_took_the_call_sends_nothing_twice(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    http = free_loopback_port()
    with fake_aliyun(f"http://127.0.0.1:{http}") as fake:
        fake.push_retry_s = 0.2
        notify = aliyun_notify(f"http://127.0.0.1:{http}", fake, call_retry_after_s=3600)
        config = write_config(tmp_path, broker, "bidao-aliyun-crash", http, notify)
        async with CrashedGateway(config) as gateway:
            fake.before_reply = gateway.kill_at_the_call
            async with gateway.pressed_until_killed(broker):
                gateway.start()

                def settled() -> bool:
                    rows = outbox(gateway.db)
                    return (
                        len(rows) >= 6
                        and rows[0][0] == "delivered"
                        and all(r[0] in ("sent", "delivered", "failed") for r in rows)
                    )

                await wait_for(settled, timeout=90, what="the call settled by its receipt")
            await asyncio.to_thread(fake.wait_idle, 30)
            await gateway.stop()
        rows = outbox(gateway.db)
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
