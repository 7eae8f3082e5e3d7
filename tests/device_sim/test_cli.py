"""`bidao sim` commands against a real broker and the stand-in gateway."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import firmware_protocol as fp
from device_sim.cli import main
from gateway.runtime.broker import MosquittoBroker, free_loopback_port
from tests.device_sim.support import BOX_ID, BOX_KEY, FLEET_SIZE, EchoGateway


def run(*argv: str) -> int:
    """One `bidao sim` command, in this process."""
    return main(argv)


def box_args(port: int, state: Path) -> list[str]:
    return [
        "--port",
        str(port),
        "--device-id",
        BOX_ID.upper(),
        "--key",
        BOX_KEY.hex(),
        "--state-dir",
        str(state),
        "--timeout",
        "5",
    ]


def test_box_press_starts_a_session_per_run_like_firmware_at_boot(
    broker: MosquittoBroker, echo: EchoGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("box", *box_args(broker.port, tmp_path), "press", "green", "--count", "3") == 0
    assert run("box", *box_args(broker.port, tmp_path), "press", "red", "--long") == 0
    out = capsys.readouterr().out
    assert f"acked: {BOX_ID} session 1 seq 1" in out
    assert f"acked: {BOX_ID} session 2 seq 1" in out
    assert [e.message for e in echo.uplinks] == [
        fp.KeyEvent(fp.Key.GREEN_CALL, 3),
        fp.KeyEvent(fp.Key.RED_HANGUP, 1, True),
    ]
    assert (tmp_path / f"{BOX_ID}.session").read_text() == "2"


def test_meter_reading_and_refusal(
    broker: MosquittoBroker, echo: EchoGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = box_args(broker.port, tmp_path)
    assert (
        run("meter", *args, "--session", "40", "reading", "--litres", "1234", "--flow", "60") == 0
    )
    assert echo.uplinks[-1].message == fp.WaterReading(1234, 60)
    assert (echo.uplinks[-1].session, echo.uplinks[-1].seq) == (40, 1)
    echo.code = fp.AckCode.NACK_DEVICE_DISABLED
    assert run("meter", *args, "reading", "--litres", "1240") == 1
    assert "refused: NACK_DEVICE_DISABLED" in capsys.readouterr().out


def test_unanswered_and_unreachable(
    broker: MosquittoBroker, echo: EchoGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    echo.silent = True
    args = box_args(broker.port, tmp_path)
    args[-1] = "0.2"
    assert run("box", *args, "press", "up") == 1
    assert "no ack within 0.2 s" in capsys.readouterr().out
    assert run("box", *box_args(free_loopback_port(), tmp_path), "press", "up") == 2
    assert "cannot reach the broker" in capsys.readouterr().out


def test_fleet_publishes_and_counts(
    broker: MosquittoBroker, echo: EchoGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["fleet", "--port", str(broker.port), "--devices", str(FLEET_SIZE), "--frames", "250"]
    assert run(*argv, "--timeout", "20") == 0
    out = capsys.readouterr().out
    assert re.search(rf"^250 frames from {FLEET_SIZE} devices acked in [\d.]+ s", out, re.MULTILINE)
    assert "acked 250 (0 duplicate), refused 0, unanswered 0" in out
    assert len(echo.uplinks) == 250


@pytest.mark.parametrize(
    "argv",
    [
        ["box", "--device-id", "xyz", "--key", "00" * 16, "press", "green"],
        ["box", "--device-id", BOX_ID, "--key", "00" * 15, "press", "green"],
        ["box", "--device-id", BOX_ID, "--key", "00" * 16, "press", "green", "--count", "0"],
        ["box", "--device-id", BOX_ID, "--key", "00" * 16, "press", "blue"],
        ["meter", "--device-id", BOX_ID, "--key", "00" * 16, "reading", "--litres", "-1"],
        ["fleet", "--devices", "0"],
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_fleet_reports_what_went_unanswered(
    broker: MosquittoBroker, echo: EchoGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    echo.silent = True
    argv = ["fleet", "--port", str(broker.port), "--devices", "3", "--frames", "7"]
    assert run(*argv, "--timeout", "0.2") == 1
    out = capsys.readouterr().out
    assert "incomplete: 7 frames still unacknowledged" in out
    assert "acked 0 (0 duplicate), refused 0, unanswered 7" in out
