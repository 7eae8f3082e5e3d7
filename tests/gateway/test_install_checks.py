"""Install checks and batches below the API: the rule, the CSV, a restart, the deadline.

A real SQLite file and the real scheduler; time is the test's ManualClock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.clock import ManualClock
from gateway.config import ProvisioningSettings, SupervisionSettings
from gateway.domain.installs import CheckStep, InstallCheck, install_state
from gateway.scheduler import DeadlineScheduler
from gateway.services.installs import (
    CHECK_DEADLINE,
    BatchRefusedError,
    CheckEvent,
    InstallChecks,
    Provisioning,
    parse_batch,
)
from gateway.store.sqlite import SqliteStore

BOX = "b1da0000000000e1"
KEY = "00112233445566778899aabbccddeeff"


def box_check(*keys: str) -> InstallCheck:
    return InstallCheck(
        1,
        BOX,
        "call_box",
        0.0,
        600.0,
        "user:sun",
        steps=tuple(CheckStep(1.0, k) for k in keys),  # type: ignore[arg-type]
    )


def test_a_box_needs_all_four_keys_and_a_meter_a_rising_total() -> None:
    assert box_check("green", "red", "thumbs_up").verdict() == "missing_keys"
    assert box_check("green", "red", "thumbs_up").keys_missing == ("thumbs_down",)
    assert box_check("thumbs_down", "green", "green", "red", "thumbs_up").verdict() is None
    meter = InstallCheck(2, BOX, "water_meter", 0.0, 600.0, "admin")
    assert meter.verdict() == "no_reading"
    flat = (CheckStep(1.0, "reading", 500), CheckStep(2.0, "reading", 500))
    assert InstallCheck(2, BOX, "water_meter", 0, 600, "a", steps=flat).verdict() == (
        "volume_not_rising"
    )
    rising = (*flat, CheckStep(3.0, "reading", 501))
    assert InstallCheck(2, BOX, "water_meter", 0, 600, "a", steps=rising).verdict() is None
    assert install_state(None) == ("pending", "never_checked")
    assert install_state(box_check()) == ("checking", None)


def test_a_batch_names_every_bad_row_and_takes_blank_lines_and_a_bom() -> None:
    rows = parse_batch(f"\ufeffSerial,Key,Label\n{BOX.upper()},{KEY},张家\n\n", "call_box", 10)
    assert [(r.line, r.device_id, r.kind, r.label) for r in rows] == [(2, BOX, "call_box", "张家")]
    with pytest.raises(BatchRefusedError) as refused:
        parse_batch(f"serial,key\n{BOX},{KEY}\nzz,{KEY}\n{BOX},{KEY[:-2]}\n", "call_box", 10)
    assert [(p.line, p.code, p.other_line) for p in refused.value.rows] == [
        (3, "bad_serial", None),
        (4, "duplicate_serial", 2),
    ]
    example = Path(__file__).parents[2] / "examples" / "devices.csv"
    kinds = [r.kind for r in parse_batch(example.read_text(encoding="utf-8"), "call_box", 10)]
    assert kinds == ["call_box", "call_box", "water_meter"]
    with pytest.raises(BatchRefusedError) as many:
        parse_batch("serial,key\n" + "".join(f"{i:016x},{KEY}\n" for i in range(3)), "call_box", 2)
    assert [(p.line, p.code) for p in many.value.rows] == [(4, "too_many_rows")]


async def test_a_check_fails_when_its_time_runs_out_whichever_process_started_it(
    tmp_path: Path, clock: ManualClock
) -> None:
    store = SqliteStore(tmp_path / "bidao.db")
    await store.open()
    try:
        settings = ProvisioningSettings(install_check_s=300)
        rows = parse_batch(f"serial,key\n{BOX},{KEY}\n", "call_box", 10)
        await Provisioning(store, clock, SupervisionSettings()).register_batch(rows, None, "t")
        first = InstallChecks(store, clock, settings)
        check = await first.start(BOX, "user:sun")
        assert (await store.deadlines.next_at()) == check.ends_at

        # Another process (the gateway started again) serves the check's deadline.
        again = InstallChecks(store, clock, settings)
        heard: list[CheckEvent] = []
        again.subscribe(heard.append)
        assert [c.id for c in await store.installs.running()] == [check.id]

        scheduler = DeadlineScheduler(store, clock)
        scheduler.register(CHECK_DEADLINE, again)
        await clock.advance(299)
        assert await scheduler.fire_due(clock.now()) == 0
        await clock.advance(1)
        assert await scheduler.fire_due(clock.now()) == 1
        assert [(e.change, e.check.reason) for e in heard] == [("failed", "missing_keys")]
        assert await store.installs.running() == []
        stored = await store.installs.get(check.id)
        assert stored is not None
        assert (stored.state, stored.reason, stored.keys_missing) == (
            "failed",
            "missing_keys",
            ("green", "red", "thumbs_up", "thumbs_down"),
        )
        latest = await store.installs.latest([BOX])
        assert install_state(latest[BOX]) == ("pending", "missing_keys")
    finally:
        await store.close()
