"""`bidao sim phones`: the fake phone network run and driven from the command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import pytest

from alerts.providers.base import OutgoingMessage, ProviderError
from alerts.providers.twilio_provider import TwilioProvider
from device_sim.cli import DEFAULT_ACCOUNT, DEFAULT_TOKEN, main


def run(*argv: str) -> int:
    """One `bidao sim` command, in this process."""
    return main(argv)


@pytest.fixture
def network() -> Iterator[str]:
    """`bidao sim phones serve` in its own process on a free port; yields its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from api.cli import main; raise SystemExit(main())",
            "sim",
            "phones",
            "serve",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("fake phone network on http://127.0.0.1:"), first
        yield first.split()[4]
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def provider(url: str) -> TwilioProvider:
    """The real twilio library pointed at the fake network (callbacks go nowhere)."""
    return TwilioProvider(
        DEFAULT_ACCOUNT, DEFAULT_TOKEN, "+8657100000000", "http://127.0.0.1:9", url
    )


def test_phones_received_set_and_outage(network: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("phones", "received", "--url", network) == 0
    assert "nothing received yet" in capsys.readouterr().out

    assert (
        run("phones", "set", "13800000001", "--url", network, "--sms-fails", "--digits", "2") == 0
    )
    out = capsys.readouterr().out
    assert "13800000001:" in out
    assert "digits=2" in out
    assert "sms_fails=True" in out

    text = "【必到】张桂兰，桥元村三组，按下了呼叫键，请尽快联系或上门。工单1。"
    receipt = asyncio.run(
        provider(network).send(OutgoingMessage(1, "sms", "13800000001", text, "ticket_call"))
    )
    assert receipt.provider_id.startswith("SM")
    assert run("phones", "received", "13800000001", "--url", network) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[:2] == ["13800000001", "SMS"]
    assert line.endswith(text)

    assert run("phones", "outage", "--url", network, "--failures", "1") == 0
    assert "failures_left=1" in capsys.readouterr().out
    message = OutgoingMessage(2, "sms", "13800000002", "【必到】测试", "ticket_call")
    with pytest.raises(ProviderError) as outage:
        asyncio.run(provider(network).send(message))
    assert not outage.value.permanent  # a 503: retried later
    assert asyncio.run(provider(network).send(message)).provider_id.startswith("SM")


def test_phones_commands_say_when_the_network_is_not_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "http://127.0.0.1:9"
    assert run("phones", "received", "--url", url) == 2
    assert "cannot reach the fake phone network" in capsys.readouterr().out
