"""`python -m bench.burst` against a real broker and a stand-in gateway."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from bench.burst import main
from device_sim.device import fleet_identity
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from tests.device_sim.support import FLEET_SIZE, EchoGateway


@pytest.fixture
def echo(broker: MosquittoBroker) -> Iterator[EchoGateway]:
    """A stand-in gateway that knows the first FLEET_SIZE fleet devices."""
    with EchoGateway(broker.port, dict(fleet_identity(i) for i in range(FLEET_SIZE))) as gateway:
        yield gateway


def test_a_burst_publishes_valid_frames_without_waiting_for_acks(
    broker: MosquittoBroker, echo: EchoGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    echo.silent = True  # a load generator does not care whether the gateway answers
    argv = ["--port", str(broker.port), "--devices", str(FLEET_SIZE)]
    assert main([*argv, "--frames", "300", "--session", "7"]) == 0
    line = rf"^300 frames from {FLEET_SIZE} devices published in [\d.]+ s"
    assert re.search(line, capsys.readouterr().out, re.MULTILINE)
    deadline = time.monotonic() + 60
    while len(echo.uplinks) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(echo.uplinks) == 300  # every one verified with its device's key
    assert echo.rejected == 0
    first = echo.uplinks[0].device_id
    assert sorted(e.seq for e in echo.uplinks if e.device_id == first) == list(range(1, 16))
    assert {e.session for e in echo.uplinks} == {7}


def test_a_burst_without_a_broker(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_loopback_port()
    assert main(["--port", str(port), "--frames", "5"]) == 2
    assert "cannot publish to the broker" in capsys.readouterr().out
