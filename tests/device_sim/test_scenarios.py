"""`bidao sim scenario NAME` as a tester runs it: a subprocess that starts its own gateway.

Each scenario starts `bidao run` (accelerated where its story needs hours), the fake phone
network and a seeded village, over MQTT (the gateway's embedded mosquitto) or over a serial
line (socket://), and must end with every step passed. A gateway without responders must
make elder-calls fail, with a ✗ where the secretary should have answered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.runtime.broker import free_loopback_port

BIDAO = Path(sys.executable).with_name("bidao")  # the console script of this virtualenv
BUILT = [
    "elder-calls",
    "nobody-answers",
    "red-cancel",
    "spoof-and-replay",
    "box-reboot",
    "zero-water",
    "meter-offline",
    "key-rotation",
    "broker-outage",
    "storm",
]


def scenario(*argv: str) -> subprocess.CompletedProcess[str]:
    """One `bidao sim scenario ...` run, as a tester types it."""
    return subprocess.run(
        [str(BIDAO), "sim", "scenario", *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=280,
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("transport", ["mqtt", "serial"])
@pytest.mark.parametrize("name", BUILT)
def test_every_scenario_passes_against_its_own_gateway(name: str, transport: str) -> None:
    done = scenario(name, "--gateway-started-by-scenario", "--transport", transport)
    print(done.stdout)
    assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
    report = done.stdout[done.stdout.index(f"== 场景 {name} / Scenario {name} ==") :]
    lines = report.splitlines()
    steps = [line for line in lines if line[:1] in "✓✗"]
    assert len(steps) >= 3
    assert all(line.startswith("✓") for line in steps), report
    assert (
        lines[-1] == f"通过：{len(steps)}/{len(steps)} 步 / PASSED: {len(steps)}/{len(steps)} steps"
    )
    assert f", {transport}" in lines[3]  # the stage said which line the devices are on


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_elder_calls_fails_where_a_gateway_without_responders_calls_nobody() -> None:
    done = scenario("elder-calls", "--without-contacts", "--step-timeout", "5", "--json")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is False
    assert [(s["step"], s["ok"]) for s in report["steps"]] == [
        ("gateway_up", True),
        ("green_acked", True),
        ("secretary_accepts", False),
    ]
    failed = report["steps"][-1]
    assert failed["expected"] == [
        "书记的电话响起，他按1接单",
        "the secretary's phone rings and he presses 1 to accept",
    ]
    assert failed["seen"] == "未看到 not seen"


def test_an_unknown_scenario_is_a_usage_error() -> None:
    done = scenario("tea-party")
    assert done.returncode == 2
    assert "invalid choice: 'tea-party'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def running_gateway(tmp_path: Path) -> Iterator[Path]:
    """A gateway already running (`bidao run`, its own mosquitto): its settings file."""
    settings = tmp_path / "bidao.toml"
    settings.write_text(
        f'data_dir = "{tmp_path / "gateway"}"\nlog_format = "text"\n'
        f"[mqtt]\nport = {free_loopback_port()}\n[http]\nport = {free_loopback_port()}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIDAO_")}
    gateway = subprocess.Popen(
        [str(BIDAO), "run", "--config", str(settings)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        yield settings
    finally:
        gateway.terminate()
        assert gateway.wait(30) == 0


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_scenarios_play_against_a_gateway_already_running(running_gateway: Path) -> None:
    for name in ("box-reboot", "spoof-and-replay", "key-rotation"):
        done = scenario(name, "--against", str(running_gateway))
        assert (done.returncode, done.stderr) == (0, ""), done.stdout + done.stderr
        assert done.stdout.splitlines()[-1].startswith("通过：")
    done = scenario("elder-calls", "--against", str(running_gateway))
    assert done.returncode == 2
    assert done.stderr == (
        "bidao sim scenario: elder-calls needs a gateway of its own (its phones, meter or "
        "broker); the ones that play against a running gateway: box-reboot, key-rotation, "
        "spoof-and-replay\n"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ctrl_c_stops_the_scenario_and_everything_it_started(tmp_path: Path) -> None:
    data = tmp_path / "stage"
    scenario_process = subprocess.Popen(
        [str(BIDAO), "sim", "scenario", "zero-water", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a terminal of its own: Ctrl-C goes to the whole group
    )
    assert scenario_process.stdout is not None
    # Once the story is under way (the meter's first reading acked), the tester presses Ctrl-C.
    for line in scenario_process.stdout:
        if line.startswith("✓ 水表的读数和心跳被确认"):
            break
    os.killpg(scenario_process.pid, signal.SIGINT)
    scenario_process.communicate(timeout=60)
    assert scenario_process.returncode == 130
    left = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True, check=False)
    assert left.stdout == ""
