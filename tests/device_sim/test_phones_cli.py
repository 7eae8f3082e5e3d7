"""`bidao sim phones`: the fake phone network run and driven from the command line."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.providers.base import OutgoingMessage, ProviderError
from alerts.providers.twilio_provider import TwilioProvider
from device_sim.cli import DEFAULT_ACCOUNT, DEFAULT_TOKEN, main
from device_sim.phones_view import width as _width
from tests.device_sim.test_phones import twiml_server
from tests.gateway.grid import CONTACTS_CSV, HOUSEHOLDS_CSV


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
            "from api.entry import main; raise SystemExit(main())",
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


def provider(url: str, public_url: str = "http://127.0.0.1:9") -> TwilioProvider:
    """The real twilio library pointed at the fake network (callbacks go to `public_url`)."""
    return TwilioProvider(DEFAULT_ACCOUNT, DEFAULT_TOKEN, "+8657100000000", public_url, url)


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
    header, line, body, count = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["时间", "Time"]
    assert re.split(" {2,}", line)[1:4] == [
        "13800000001",
        "短信 SMS",
        "未送达 undelivered（错误码 error code 30003）",
    ]
    assert (body, count) == (f"    {text}", "共1条 1 items")

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


# -- `phones received`: times, names, tickets, filters -----------------------------------

MENU_TEXT = "接单并前往请按1，无法前往、转给下一位请按2，重听请按9。"
CALL_TEXT = "【必到】张桂兰，桥元村三组，按下了呼叫键，请尽快联系或上门。工单1。"
ACCEPTED = "您已接单，请尽快前往。老人会收到正在赶来的提示。"


def received(url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """`bidao sim phones received` in its own process."""
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.entry import main; raise SystemExit(main())",
            "sim",
            "phones",
            "received",
            "--url",
            url,
            *argv,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def twiml(form: dict[str, str]) -> str:
    if form["_path"].startswith("/webhooks/twilio/voice/"):
        return (
            '<?xml version="1.0" encoding="UTF-8"?><Response>'
            '<Gather numDigits="1" timeout="8" action="/webhooks/twilio/gather/3">'
            f'<Say language="cmn-CN">{CALL_TEXT.removeprefix("【必到】")}</Say>'
            f'<Say language="cmn-CN">{MENU_TEXT}</Say></Gather>'
            '<Say language="cmn-CN">没有收到按键，再见。</Say></Response>'
        )
    if form["_path"].startswith("/webhooks/twilio/gather/"):
        return f'<Response><Say language="cmn-CN">{ACCEPTED}</Say></Response>'
    return ""


def settled(url: str, count: int) -> list[dict[str, Any]]:
    """What the network took, once `count` records have reached their final status."""
    final = {"delivered", "undelivered", "completed", "busy", "no-answer", "failed"}
    for _ in range(2000):  # bounded: a condition, polled
        with urllib.request.urlopen(f"{url}/phones", timeout=10) as answer:
            records: list[dict[str, Any]] = json.loads(answer.read())
        done = [r for r in records if r["statuses"] and r["statuses"][-1] in final]
        if len(done) >= count:
            return records
        threading.Event().wait(0.01)
    raise AssertionError(f"the network did not settle: {records}")


def test_phones_received_shows_times_names_transcripts_and_filters(
    network: str, tmp_path: Path
) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(CONTACTS_CSV, encoding="utf-8")
    households = tmp_path / "households.csv"
    households.write_text(HOUSEHOLDS_CSV, encoding="utf-8")
    names = ["--names", str(contacts), "--names", str(households), "--tz", "Asia/Shanghai"]
    with twiml_server(twiml) as voice:
        send = provider(network, voice.removesuffix("/voice"))
        asyncio.run(send.send(OutgoingMessage(1, "sms", "13800000001", CALL_TEXT, "ticket_call")))
        asyncio.run(send.send(OutgoingMessage(2, "voice", "13800000001", CALL_TEXT, "ticket_call")))
        informed = "【必到】张桂兰，桥元村三组，已呼叫书记，请知悉。工单2。"
        asyncio.run(
            send.send(OutgoingMessage(3, "sms", "13800000004", informed, "ticket_informed"))
        )
        asyncio.run(send.send(OutgoingMessage(4, "sms", "13700000009", "【必到】工单12。", "x")))
        settled(network, 4)

    about_1 = received(network, *names, "--ticket", "1", "--json")
    assert about_1.returncode == 0, about_1.stderr
    sms, call = json.loads(about_1.stdout)
    assert (sms["channel"], sms["to"], sms["name"], sms["role"]) == (
        "sms",
        "13800000001",
        "李书记",
        "village_secretary",
    )
    assert (sms["text"], sms["status"], sms["tickets"], sms["notification"]) == (
        CALL_TEXT,
        "delivered",
        [1],
        1,
    )
    shanghai = ZoneInfo("Asia/Shanghai")
    local = datetime.fromtimestamp(call["at"], shanghai)
    assert call["time"] == local.isoformat(timespec="seconds")
    assert call["time"].endswith("+08:00")
    assert (call["channel"], call["status"], call["pressed"], call["notification"]) == (
        "call",
        "completed",
        "1",
        2,
    )
    assert [(h["kind"], h["text"]) for h in call["transcript"]] == [
        ("say", CALL_TEXT.removeprefix("【必到】")),
        ("say", MENU_TEXT),
        ("keypress", "1"),
        ("say", ACCEPTED),
        ("end", "done"),
    ]

    shown = received(network, *names, "--ticket", "1")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["时间", "Time", "收件人", "To", "渠道", "Channel", "状态", "State"]
    when = local.strftime("%Y-%m-%d %H:%M:%S")
    call_line = next(i for i, line in enumerate(lines) if "电话 call" in line)
    assert lines[call_line].startswith(f"{when}  13800000001 李书记（村书记）  电话 call")
    assert re.split(" {2,}", lines[call_line])[-1].startswith("已接听 answered（通话")
    assert lines[call_line + 1 : call_line + 6] == [
        f"    听到 heard：{CALL_TEXT.removeprefix('【必到】')}",
        f"    听到 heard：{MENU_TEXT}",
        "    按键 pressed：1",
        f"    听到 heard：{ACCEPTED}",
        "    结束 ended：说完挂断 hung up after the last words",
    ]
    assert "没有收到按键" not in shown.stdout
    # The columns line up although names are double-width: the channel starts at one place.
    starts = {_width(lines[0][: lines[0].index("渠道")])}
    for line in lines:
        for channel in ("短信 SMS", "电话 call"):
            if channel in line:
                starts.add(_width(line[: line.index(channel)]))
    assert len(starts) == 1
    assert lines[-1] == "共2条 2 items"

    chief = received(network, *names, "--to", "13800000004")
    assert "13800000004 钱邻长（邻长）" in chief.stdout
    assert "已呼叫书记，请知悉。工单2。" in chief.stdout
    assert "工单1" not in chief.stdout
    # 工单12 is not ticket 1; a number nobody has is shown as the number alone.
    twelve = json.loads(received(network, "--ticket", "12", "--json").stdout)
    assert [(e["to"], e["name"], e["tickets"]) for e in twelve] == [("13700000009", "", [12])]
    assert json.loads(received(network, "--since", "2099-01-01 00:00", "--json").stdout) == []
    assert len(json.loads(received(network, "--since", "1h", "--json").stdout)) == 4
    nothing = received(network, "--ticket", "99")
    assert nothing.stdout.strip() == "没有符合条件的短信或电话 nothing matches"


def test_phones_received_says_what_is_wrong_with_its_input(network: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("who,number\n李书记,13800000001\n", encoding="utf-8")
    for argv, message in (
        (["--names", str(bad)], "must name a phone column"),
        (["--names", str(tmp_path / "missing.csv")], "cannot read it"),
        (["--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--since", "yesterday-ish"], "--since 'yesterday-ish': write 30m"),
    ):
        result = received(network, *argv)
        assert result.returncode == 2, argv
        assert message in result.stderr, (argv, result.stderr)
        assert "Traceback" not in result.stderr


def test_phones_set_refuses_keys_a_phone_cannot_press(
    network: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("phones", "set", "13800000001", "--url", network, "--digits", "9,1") == 0
    assert "digits=9,1" in capsys.readouterr().out
    assert run("phones", "set", "13800000001", "--url", network, "--digits", "yes") == 2
    assert "refused: digits are keys (0-9, * and #)" in capsys.readouterr().err
