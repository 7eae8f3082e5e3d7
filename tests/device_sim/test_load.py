"""`bidao sim load` against a real broker and the stand-in gateway; the report's rendering."""

from __future__ import annotations

import re

import pytest

from device_sim.cli import main
from device_sim.load import LoadSummary
from device_sim.scenario import Report, Step
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from tests.device_sim.support import FLEET_SIZE, EchoGateway


def test_load_sends_at_a_rate_and_sums_up_what_came_back(
    broker: MosquittoBroker, echo: EchoGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["load", "--port", str(broker.port), "--devices", str(FLEET_SIZE)]
    assert main([*argv, "--rate", "200", "--duration", "1", "--timeout", "20", "--quiet"]) == 0
    out = capsys.readouterr().out
    found = re.search(
        r"^sent (\d+), acked (\d+), retransmitted (\d+), unacked 0$", out, re.MULTILINE
    )
    assert found is not None, out
    sent, acked = int(found[1]), int(found[2])
    assert sent == acked > 0
    assert len({(u.device_id, u.session, u.seq) for u in echo.uplinks}) == sent
    assert re.search(
        r"^ack latency p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms$", out, re.MULTILINE
    )


def test_load_without_a_broker(capsys: pytest.CaptureFixture[str]) -> None:
    port = str(free_loopback_port())
    assert main(["load", "--port", port, "--duration", "1", "--quiet"]) == 2
    assert "cannot reach the broker at 127.0.0.1:" in capsys.readouterr().out


def test_percentiles_are_nearest_rank() -> None:
    summary = LoadSummary(1, 1.0, 1.0, latencies=[i / 1000 for i in range(1, 101)])
    assert (summary.percentile(50), summary.percentile(99)) == (0.05, 0.099)
    assert LoadSummary(1, 1.0, 1.0).lines()[-1] == "ack latency p50 -, p99 -, max -"


def test_a_report_shows_each_step_chinese_first_and_fails_on_any_cross() -> None:
    first = Step("green_acked", ok=True, seen="ack")
    assert Report("elder-calls", [first]).passed
    report = Report(
        "elder-calls", [first, Step("secretary_accepts", ok=False, seen="未看到 not seen")]
    )
    assert not report.passed
    assert list(report.lines()) == [
        "== 场景 elder-calls / Scenario elder-calls ==",
        "✓ 1. 预期 老人按绿键，呼叫盒收到网关确认",
        "      expected: the resident presses green; the box gets the gateway's ack",
        "      实际 seen: ack",
        "✗ 2. 预期 书记的电话响起，他按1接单",
        "      expected: the secretary's phone rings and he presses 1 to accept",
        "      实际 seen: 未看到 not seen",
        "未通过：1/2 步，第 2 步起出错 / FAILED: 1/2 steps, wrong from step 2",
    ]
    assert not Report("nothing").passed
