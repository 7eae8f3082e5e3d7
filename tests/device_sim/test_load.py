"""`bidao sim load` against a real broker, the stand-in gateway and a real `bidao run`;
the report's rendering."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from device_sim.cli import main
from device_sim.device import DeviceKind
from device_sim.load import LoadSummary
from device_sim.scenario import Report, Step
from gateway.application import offline
from gateway.config import load_settings
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from tests.device_sim.support import FLEET_SIZE, EchoGateway
from tests.gateway.support import start_gateway

BIDAO = Path(sys.executable).with_name("bidao")  # the console script of this virtualenv
RUN = ["--session", "7", "--resend-after", "0.2", "--timeout", "20", "--json", "--quiet"]
"""A small real run: unanswered frames go again soon, and drain waits long for the rest."""


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


@pytest.mark.parametrize(
    "argv",
    [["--rate", "0"], ["--rate", "inf"], ["--duration", "nan"], ["--resend-after", "-1"]],
)
def test_bad_numbers_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["load", *argv])
    assert exit_info.value.code == 2
    assert "must be a number above 0" in capsys.readouterr().err


def test_percentiles_are_nearest_rank() -> None:
    summary = LoadSummary(1, 1.0, 1.0, latencies=[i / 1000 for i in range(1, 101)])
    assert (summary.percentile(50), summary.percentile(99)) == (0.05, 0.099)
    assert LoadSummary(1, 1.0, 1.0).lines()[2] == "ack latency p50 -, p99 -, max -"


def test_the_target_counts_as_reached_only_when_the_broker_took_it_on_schedule() -> None:
    on_time = LoadSummary(10, 100.0, 10.0, sending_s=10.0, broker_took=990, max_lag_s=0.02)
    assert on_time.reached
    assert on_time.lines()[-1].startswith("target reached: the broker took 99 frames/s in 10.0 s")
    assert not LoadSummary(10, 100.0, 10.0, sending_s=10.0, broker_took=900).reached
    stalled = LoadSummary(10, 100.0, 10.0, sending_s=10.0, broker_took=1000, max_lag_s=0.9)
    assert not stalled.reached
    assert stalled.lines()[-1].startswith("target NOT reached")
    assert stalled.as_json()["reached"] is False


def test_list_devices_names_each_device_of_a_run_with_its_kind_and_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert (
        main(["load", "--devices", "4", "--kind", "mixed", "--first", "2", "--list-devices"]) == 0
    )
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()]
    assert rows[0] == ["device_id", "kind", "key"]
    assert [(r[0], r[1]) for r in rows[1:]] == [
        ("b1da000000000002", "call_box"),
        ("b1da000000000003", "call_box"),
        ("b1da000000000004", "water_meter"),
        ("b1da000000000005", "water_meter"),
    ]
    assert all(len(bytes.fromhex(r[2])) == 16 for r in rows[1:])


def _metric(http_port: int, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    found = re.search(rf"^{name}\{{{re.escape(labels)}\}} (\S+)$", text, re.MULTILINE)
    return 0.0 if found is None else float(found[1])


def _wait_healthy(http_port: int, gateway: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert gateway.poll() is None, "the gateway exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail("the gateway did not report healthy")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_summary_is_what_a_real_gateway_did(broker: MosquittoBroker, tmp_path: Path) -> None:
    """Six devices of `--kind mixed`: four registered as they are, one meter registered as a
    box (its readings refused), one not registered (never answered, so resent)."""
    load = [str(BIDAO), "sim", "load", "--port", str(broker.port), "--devices", "6"]
    listed = subprocess.run(
        [*load, "--kind", "mixed", "--list-devices"], capture_output=True, text=True, check=True
    )
    devices = [line.split(",") for line in listed.stdout.splitlines()[1:]]
    http_port = free_loopback_port()
    config = tmp_path / "bidao.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "gateway"}"\nlog_format = "text"\n'
        f'[mqtt]\nembedded_broker = false\nport = {broker.port}\nclient_id = "load-test"\n'
        f"[http]\nport = {http_port}\n",
        encoding="utf-8",
    )

    async def register() -> None:
        async with offline(load_settings(config)) as application:
            for i, (device_id, kind, key) in enumerate(devices[:5]):
                # The fifth device is a meter registered as a box: its readings are refused.
                as_kind: DeviceKind = "call_box" if i == 4 or kind == "call_box" else "water_meter"
                await application.register_device(device_id, as_kind, bytes.fromhex(key), None)

    asyncio.run(register())
    gateway = start_gateway(config, tmp_path / "gateway.log")
    try:
        _wait_healthy(http_port, gateway)
        started = time.monotonic()
        done = subprocess.run(
            [*load, "--kind", "mixed", "--rate", "30", "--duration", "2", *RUN],
            capture_output=True,
            text=True,
            check=False,
            timeout=240,
        )
        wall = time.monotonic() - started
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        accepted = _metric(http_port, "bidao_acks_sent_total", 'code="ACCEPTED"')
        wrong_kind = _metric(http_port, "bidao_acks_sent_total", 'code="NACK_NOT_FOR_KIND"')
    finally:
        gateway.terminate()
        gateway.wait(60)
    assert done.returncode == 1, done.stdout + done.stderr  # one device never answered
    assert [line["event"] for line in lines] == ["sending", "summary"]
    summary = lines[1]
    sent = summary["sent"]

    def frames_of(i: int) -> int:
        return len(range(i, sent, 6))

    assert sent > 6
    assert summary["acked"] == accepted == sent - frames_of(4) - frames_of(5)
    assert summary["refused"] == frames_of(4) <= wrong_kind
    assert summary["unacked"] == frames_of(5)
    assert summary["retransmitted"] >= frames_of(5)  # each unanswered frame went again
    assert summary["renumbered"] == 0
    assert 0 < summary["p50_s"] <= summary["p99_s"] <= summary["max_s"] < wall
    assert summary["broker_took"] > 0


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
